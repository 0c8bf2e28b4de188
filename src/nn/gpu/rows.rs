//! The operations of `kernels/rows.cu`: row gathers, compressed-sparse-row sums (the
//! trace-to-token sum, its transpose and every scatter-add, as gathers over an inverse index
//! built on the host), strided copies (concatenation, slicing) and the maximum over groups of
//! rows with its gradient.

use super::device::Arg;
use super::kernels::Kernel;
use super::launch::int;
use super::tensor::{as_matrix, Buffer, GpuIndex, GpuTensor, Upload};
use super::GpuBackend;
use crate::nn::backend::{Backend, SparseRows};

/// `out` = the sparse rows `offsets/cols/weights` times `x` (`weights` None: all 1).
fn sparse_product(
    gpu: &GpuBackend,
    offsets: &[u32],
    cols: &[u32],
    weights: Option<&[f32]>,
    x: &GpuTensor,
    out_shape: &[usize],
) -> GpuTensor {
    let out = gpu.empty(out_shape);
    let (_, width) = as_matrix(x);
    let width = if x.len() == 0 {
        out.len().checked_div(out_shape[0]).unwrap_or(0)
    } else {
        width
    };
    let (offsets, cols) = (gpu.upload(offsets), gpu.upload(cols));
    let weights = weights.map(|w| gpu.upload(w));
    gpu.launch_1d(
        Kernel::SparseRows,
        out.len(),
        &[
            out.arg(),
            x.arg(),
            offsets.arg(),
            cols.arg(),
            weights.as_ref().map_or(Arg::Ptr(0), Upload::arg),
            Arg::I64(out.len() as i64),
            Arg::I32(int(width, "width")),
        ],
    );
    out
}

pub(super) fn gather_rows(gpu: &GpuBackend, table: &GpuTensor, rows: &[u32]) -> GpuTensor {
    let (n, width) = as_matrix(table);
    if let Some(&bad) = rows.iter().find(|&&r| r as usize >= n) {
        panic!("gather_rows: row {bad} of {n}");
    }
    let mut shape = table.shape.clone();
    shape[0] = rows.len();
    let out = gpu.empty(&shape);
    let indices = gpu.upload(rows);
    gpu.launch_1d(
        Kernel::GatherRows,
        out.len(),
        &[
            out.arg(),
            table.arg(),
            indices.arg(),
            Arg::I64(out.len() as i64),
            Arg::I32(int(width, "width")),
        ],
    );
    out
}

pub(super) fn scatter_add_rows(
    gpu: &GpuBackend,
    dy: &GpuTensor,
    rows: &[u32],
    table_rows: usize,
) -> GpuTensor {
    assert_eq!(
        dy.shape[0],
        rows.len(),
        "scatter_add_rows: one row index per row"
    );
    let mut shape = dy.shape.clone();
    shape[0] = table_rows;
    let (offsets, sources) = inverse_index(rows, table_rows);
    sparse_product(gpu, &offsets, &sources, None, dy, &shape)
}

pub(super) fn concat(gpu: &GpuBackend, parts: &[&GpuTensor], axis: usize) -> GpuTensor {
    let first = parts.first().expect("concat: at least one part");
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    for p in parts {
        let (mut a, mut b) = (p.shape.clone(), first.shape.clone());
        a[axis] = 0;
        b[axis] = 0;
        assert_eq!(a, b, "concat: shapes disagree off axis {axis}");
    }
    let out = gpu.empty(&shape);
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let mut offset = 0;
    for p in parts {
        let cols = p.shape[axis] * inner;
        gpu.launch_1d(
            Kernel::StridedCopy,
            outer * cols,
            &[
                out.arg(),
                Arg::I64((shape[axis] * inner) as i64),
                Arg::I64((offset * inner) as i64),
                p.arg(),
                Arg::I64(cols as i64),
                Arg::I64(0),
                Arg::I64(outer as i64),
                Arg::I64(cols as i64),
            ],
        );
        offset += p.shape[axis];
    }
    out
}

pub(super) fn slice(
    gpu: &GpuBackend,
    x: &GpuTensor,
    axis: usize,
    start: usize,
    len: usize,
) -> GpuTensor {
    assert!(start + len <= x.shape[axis], "slice out of range");
    let mut shape = x.shape.clone();
    shape[axis] = len;
    let out = gpu.empty(&shape);
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    gpu.launch_1d(
        Kernel::StridedCopy,
        out.len(),
        &[
            out.arg(),
            Arg::I64((len * inner) as i64),
            Arg::I64(0),
            x.arg(),
            Arg::I64((x.shape[axis] * inner) as i64),
            Arg::I64((start * inner) as i64),
            Arg::I64(outer as i64),
            Arg::I64((len * inner) as i64),
        ],
    );
    out
}

pub(super) fn max_groups(gpu: &GpuBackend, x: &GpuTensor, size: usize) -> (GpuTensor, GpuIndex) {
    let (rows, width) = as_matrix(x);
    assert!(
        size > 0 && rows % size == 0,
        "max_groups: rows not a multiple of the group size"
    );
    let mut shape = x.shape.clone();
    shape[0] = rows / size;
    let out = gpu.empty(&shape);
    let argmax = Buffer::new(&gpu.device, out.len());
    gpu.launch_1d(
        Kernel::MaxGroups,
        out.len(),
        &[
            out.arg(),
            Arg::Ptr(argmax.ptr),
            x.arg(),
            Arg::I64(out.len() as i64),
            Arg::I32(int(size, "group size")),
            Arg::I32(int(width, "width")),
        ],
    );
    (out, GpuIndex(argmax))
}

pub(super) fn max_groups_backward(
    gpu: &GpuBackend,
    dy: &GpuTensor,
    argmax: &GpuIndex,
    rows: usize,
) -> GpuTensor {
    let (_, width) = as_matrix(dy);
    assert_eq!(
        argmax.0.len,
        dy.len(),
        "max_groups_backward: one winner per element"
    );
    let mut shape = dy.shape.clone();
    shape[0] = rows;
    let dx = gpu.zeros(&shape);
    gpu.launch_1d(
        Kernel::MaxGroupsBackward,
        dy.len(),
        &[
            dx.arg(),
            dy.arg(),
            Arg::Ptr(argmax.0.ptr),
            Arg::I64(dy.len() as i64),
            Arg::I32(int(width, "width")),
        ],
    );
    dx
}

pub(super) fn sparse_rows(gpu: &GpuBackend, s: &SparseRows, x: &GpuTensor) -> GpuTensor {
    check_sparse("sparse_rows", &s.offsets, &s.cols, x.shape[0]);
    assert_eq!(
        s.weights.len(),
        s.cols.len(),
        "sparse_rows: one weight per entry"
    );
    let mut shape = x.shape.clone();
    shape[0] = s.rows();
    sparse_product(gpu, &s.offsets, &s.cols, Some(&s.weights), x, &shape)
}

pub(super) fn sparse_rows_backward(
    gpu: &GpuBackend,
    s: &SparseRows,
    dy: &GpuTensor,
    x_rows: usize,
) -> GpuTensor {
    check_sparse("sparse_rows_backward", &s.offsets, &s.cols, x_rows);
    assert_eq!(
        dy.shape[0],
        s.rows(),
        "sparse_rows_backward: one gradient row per row"
    );
    // Sᵀ in compressed rows: for each column of S, its entries in row order.
    let entries: Vec<u32> = (0..s.rows())
        .flat_map(|r| std::iter::repeat_n(r as u32, (s.offsets[r + 1] - s.offsets[r]) as usize))
        .collect();
    let (offsets, order) = inverse_index(&s.cols, x_rows);
    let rows: Vec<u32> = order.iter().map(|&e| entries[e as usize]).collect();
    let weights: Vec<f32> = order.iter().map(|&e| s.weights[e as usize]).collect();
    let mut shape = dy.shape.clone();
    shape[0] = x_rows;
    sparse_product(gpu, &offsets, &rows, Some(&weights), dy, &shape)
}

/// Checks a compressed-sparse-row matrix against the rows of the dense side.
fn check_sparse(what: &str, offsets: &[u32], cols: &[u32], x_rows: usize) {
    assert!(
        offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_none_or(|&l| l as usize == cols.len()),
        "{what}: malformed sparse rows"
    );
    if let Some(&bad) = cols.iter().find(|&&c| c as usize >= x_rows) {
        panic!("{what}: column {bad} of {x_rows}");
    }
}

/// The rows grouped by target: CSR offsets over `targets` rows and the source indices, each
/// row's sources in increasing order.
fn inverse_index(rows: &[u32], targets: usize) -> (Vec<u32>, Vec<u32>) {
    let mut offsets = vec![0u32; targets + 1];
    for &r in rows {
        assert!((r as usize) < targets, "row {r} of {targets}");
        offsets[r as usize + 1] += 1;
    }
    for t in 0..targets {
        offsets[t + 1] += offsets[t];
    }
    let mut cursor = offsets.clone();
    let mut sources = vec![0u32; rows.len()];
    for (i, &r) in rows.iter().enumerate() {
        sources[cursor[r as usize] as usize] = i as u32;
        cursor[r as usize] += 1;
    }
    (offsets, sources)
}
