//! A [`Device`] that runs the CUDA kernels on the CPU: the kernel sources, after
//! `emulation.hpp`, are compiled by the host C++ compiler (`$CXX`, else `c++`) into a shared
//! library, with one C entry per kernel that unpacks a `void**` argument array (the convention of
//! `cuLaunchKernel`). Blocks run one at a time, the threads of a block as fibers that switch at
//! `__syncthreads` (kernels whose source shows no barrier run each thread straight through), in
//! a [`ThreadOrder`]; shared memory is filled with NaN at every block start (`emulation.hpp`).
//! Every allocation has red zones of NaN bytes around it: a kernel that reads there gets NaN, one
//! that writes there fails its launch, naming the kernel.
//!
//! It is slow (every GPU thread in turn on one core) and exists for tests: the kernels' indexing, tiling,
//! barriers and reductions, and the GPU backend's launch code, are checked against the CPU
//! backend on machines without a GPU, and every launch's arguments are checked against the
//! kernel's parameter types, which a real GPU would not do.

use std::alloc::{alloc, dealloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use super::device::{Arg, Device, LaunchShape};
use super::kernels::{all_signatures, program, Kernel, Signature, SOURCES};

const HEADER: &str = include_str!("emulation.hpp");

type Entry = unsafe extern "C" fn(u32, u32, u32, u32, u32, u32, *mut *mut c_void);
type SetOrder = unsafe extern "C" fn(i32, u64);

/// The compiled kernels: the library and each kernel's entry and parameter codes.
struct Library {
    // Kept loaded for the entries' lifetime.
    _library: libloading::Library,
    entries: HashMap<String, (Entry, String)>,
    set_order: SetOrder,
}

/// The order in which the emulator runs the blocks of a grid and, between two barriers, the
/// threads of a block. A kernel whose results differ between orders has a race; the tests run
/// every kernel in each of [`ThreadOrder::ALL`] and require the same bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThreadOrder {
    #[default]
    Ascending,
    Descending,
    /// A seeded shuffle, new for every block and every stretch between barriers.
    Shuffled(u64),
}

impl ThreadOrder {
    /// The orders the tests check.
    pub const ALL: [ThreadOrder; 3] = [
        ThreadOrder::Ascending,
        ThreadOrder::Descending,
        ThreadOrder::Shuffled(0x5eed),
    ];

    fn code(self) -> (i32, u64) {
        match self {
            ThreadOrder::Ascending => (0, 0),
            ThreadOrder::Descending => (1, 0),
            ThreadOrder::Shuffled(seed) => (2, seed),
        }
    }
}

/// Bytes of guard before and after every allocation, filled with [`GUARD_BYTE`]: a kernel that
/// reads there gets NaN, one that writes there is reported after its launch, naming it.
const RED_ZONE: usize = 256;
const GUARD_BYTE: u8 = 0xff;

/// An allocation with its red zones: `data` is `RED_ZONE` bytes into the block of `layout`.
#[derive(Clone, Copy, Debug)]
struct Guarded {
    data: *mut u8,
    bytes: usize,
    layout: Layout,
}

// SAFETY: the pointer is only dereferenced under the device's locks, as the device memory it is.
unsafe impl Send for Guarded {}

impl Guarded {
    fn new(bytes: usize) -> Guarded {
        let layout = Layout::from_size_align(bytes + 2 * RED_ZONE, 256).expect("a valid layout");
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc(layout) };
        assert!(
            !base.is_null(),
            "emulated device: out of memory ({bytes} bytes)"
        );
        // Guard and fresh memory alike poisoned, so that reading what no kernel wrote shows.
        // SAFETY: `base` holds `layout.size()` bytes.
        unsafe { std::ptr::write_bytes(base, GUARD_BYTE, layout.size()) };
        Guarded {
            // SAFETY: within the block.
            data: unsafe { base.add(RED_ZONE) },
            bytes,
            layout,
        }
    }

    /// The first byte of either red zone that is no longer the guard byte, as a description.
    fn damage(&self) -> Option<String> {
        // SAFETY: both zones lie within the block of `layout`.
        let (before, after) = unsafe {
            (
                std::slice::from_raw_parts(self.data.sub(RED_ZONE), RED_ZONE),
                std::slice::from_raw_parts(self.data.add(self.bytes), RED_ZONE),
            )
        };
        if let Some(i) = before.iter().rposition(|&b| b != GUARD_BYTE) {
            return Some(format!(
                "{} bytes before an allocation of {} bytes",
                RED_ZONE - i,
                self.bytes
            ));
        }
        after.iter().position(|&b| b != GUARD_BYTE).map(|i| {
            format!(
                "{} bytes past the end of an allocation of {} bytes",
                i + 1,
                self.bytes
            )
        })
    }

    /// Restores the guard bytes (after a reported damage, so that it is reported once).
    fn repair(&self) {
        // SAFETY: both zones lie within the block of `layout`.
        unsafe {
            std::ptr::write_bytes(self.data.sub(RED_ZONE), GUARD_BYTE, RED_ZONE);
            std::ptr::write_bytes(self.data.add(self.bytes), GUARD_BYTE, RED_ZONE);
        }
    }

    fn release(self) {
        // SAFETY: allocated in `new` with this layout, released once.
        unsafe { dealloc(self.data.sub(RED_ZONE), self.layout) };
    }
}

/// Names whose use in a kernel's body means it may wait at a barrier (the helpers of
/// `common.cuh` and `gemm.cu` that call `__syncthreads`).
const BARRIER_USERS: &[&str] = &["__syncthreads", "block_sum", "block_max", "gemm_tile"];

/// Whether kernel `name`'s body (in any source) may wait at a barrier. Kernels that cannot are
/// run without fibers, much faster; one that reaches a barrier anyway traps.
fn uses_barriers(name: &str) -> bool {
    for (_, source) in SOURCES {
        let Some(at) = source.find(&format!(" {name}(")) else {
            continue;
        };
        let Some(open) = source[at..].find('{').map(|i| at + i) else {
            continue;
        };
        let mut depth = 0;
        for (i, c) in source[open..].char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        let body = &source[open..open + i];
                        return BARRIER_USERS.iter().any(|u| body.contains(u));
                    }
                }
                _ => {}
            }
        }
    }
    true
}

/// The C++ translation unit: the emulation header, every kernel source, and the entries.
fn translation_unit(signatures: &[Signature]) -> String {
    let mut text = String::from(HEADER);
    text.push('\n');
    for (i, (name, source)) in SOURCES.iter().enumerate() {
        let _ = writeln!(text, "// ---- {name}");
        // The shared header once; the other files' includes are dropped.
        let body = if i == 0 {
            program(source)
        } else {
            source.replacen("#include \"common.cuh\"", "", 1)
        };
        text.push_str(&body);
        text.push('\n');
    }
    text.push_str("// ---- entries\n");
    for s in signatures {
        let args: Vec<String> = s
            .types
            .iter()
            .enumerate()
            .map(|(i, ty)| format!("*({ty}*)args[{i}]"))
            .collect();
        let _ = writeln!(
            text,
            "extern \"C\" void karel_launch_{name}(unsigned gx, unsigned gy, unsigned gz, \
             unsigned bx, unsigned by, unsigned bz, void** args) {{\n    \
             emu::{launch}(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, [&] {{ {name}({args}); }});\n}}",
            launch = if uses_barriers(&s.name) {
                "launch"
            } else {
                "launch_direct"
            },
            name = s.name,
            args = args.join(", ")
        );
    }
    text
}

fn build() -> Result<Library, String> {
    let signatures = all_signatures();
    compile(&translation_unit(&signatures), &signatures, "kernels")
}

/// Compiles a translation unit of kernels and entries into a library and loads it; `tag` names
/// its temporary folder.
fn compile(unit: &str, signatures: &[Signature], tag: &str) -> Result<Library, String> {
    static BUILDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "karel-emulated-{tag}-{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let source = dir.join("kernels.cpp");
    let library = dir.join("libkernels.so");
    std::fs::write(&source, unit).map_err(|e| format!("cannot write {}: {e}", source.display()))?;
    let compiler = std::env::var("CXX").unwrap_or_else(|_| "c++".to_string());
    let mut command = Command::new(&compiler);
    // No contraction of a·b + c into FMAs: the kernels' explicit fmaf are what the GPU fuses
    // too (NVRTC runs with --fmad=false), and the CPU backend does not fuse either.
    command.args([
        "-std=c++20",
        "-O2",
        "-ffp-contract=off",
        "-shared",
        "-fPIC",
        "-w",
    ]);
    if cfg!(target_arch = "x86_64") {
        // The host's FMA instructions for `fmaf` (a library call otherwise).
        command.arg("-march=native");
    }
    let output = command
        .arg("-o")
        .arg(&library)
        .arg(&source)
        .output()
        .map_err(|e| format!("cannot run the C++ compiler `{compiler}`: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "the C++ compiler failed on the emulated kernels ({}):\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // SAFETY: the library was just built from the kernel sources; its initialisers are trivial.
    let lib = unsafe { libloading::Library::new(&library) }
        .map_err(|e| format!("cannot load {}: {e}", library.display()))?;
    let mut entries = HashMap::new();
    for s in signatures {
        let symbol = format!("karel_launch_{}", s.name);
        // SAFETY: every entry was generated with the `Entry` signature.
        let entry: Entry = unsafe {
            *lib.get::<Entry>(symbol.as_bytes())
                .map_err(|e| format!("{symbol}: {e}"))?
        };
        entries.insert(s.name.clone(), (entry, s.codes()));
    }
    // SAFETY: defined by the emulation header with this signature.
    let set_order: SetOrder = unsafe {
        *lib.get::<SetOrder>(b"karel_emu_set_order")
            .map_err(|e| format!("karel_emu_set_order: {e}"))?
    };
    std::fs::remove_dir_all(&dir).ok();
    Ok(Library {
        _library: lib,
        entries,
        set_order,
    })
}

/// The kernels compiled for the CPU, once per process.
fn library() -> Result<&'static Library, String> {
    static LIBRARY: OnceLock<Result<Library, String>> = OnceLock::new();
    LIBRARY.get_or_init(build).as_ref().map_err(Clone::clone)
}

/// The emulated GPU.
#[derive(Debug)]
pub struct EmulatedDevice {
    /// Live allocations by address.
    allocations: Mutex<BTreeMap<u64, Guarded>>,
    order: ThreadOrder,
}

/// One launch at a time in the process: the emulation's state is global.
static LAUNCHING: Mutex<()> = Mutex::new(());

impl EmulatedDevice {
    /// Compiles the kernels for the CPU (on first use in the process); an error if no C++
    /// compiler is found or the kernels do not compile.
    pub fn new() -> Result<Arc<EmulatedDevice>, String> {
        EmulatedDevice::with_order(ThreadOrder::Ascending)
    }

    /// The emulated GPU running blocks and threads in `order`.
    pub fn with_order(order: ThreadOrder) -> Result<Arc<EmulatedDevice>, String> {
        library()?;
        Ok(Arc::new(EmulatedDevice {
            allocations: Mutex::new(BTreeMap::new()),
            order,
        }))
    }
}

/// Compiles one kernel source (with `common.cuh`) on its own and runs kernel `name` once on
/// `buffers` (its parameters, all `float*`, in order) in `order`: for tests that feed the
/// emulator deliberately broken kernels and expect its checks to catch them.
pub fn run_source(
    source: &str,
    name: &str,
    grid: [u32; 3],
    block: [u32; 3],
    order: ThreadOrder,
    buffers: &mut [Vec<f32>],
) -> Result<(), String> {
    let signatures: Vec<Signature> = super::kernels::signatures(source)
        .into_iter()
        .filter(|s| s.name == name)
        .collect();
    let signature = signatures
        .first()
        .ok_or_else(|| format!("no kernel `{name}` in the source"))?;
    if signature.types.len() != buffers.len() || signature.types.iter().any(|t| !t.contains('*')) {
        return Err(format!(
            "kernel `{name}` takes ({}), not {} float buffers",
            signature.types.join(", "),
            buffers.len()
        ));
    }
    let mut unit = String::from(HEADER);
    unit.push('\n');
    unit.push_str(&program(source));
    let args: Vec<String> = (0..buffers.len())
        .map(|i| format!("*(float**)args[{i}]"))
        .collect();
    let _ = writeln!(
        unit,
        "\nextern \"C\" void karel_launch_{name}(unsigned gx, unsigned gy, unsigned gz, \
         unsigned bx, unsigned by, unsigned bz, void** args) {{\n    \
         emu::launch(dim3{{gx, gy, gz}}, dim3{{bx, by, bz}}, [&] {{ {name}({}); }});\n}}",
        args.join(", ")
    );
    let library = compile(&unit, &signatures, "test")?;
    let (entry, _) = library.entries[name];
    // The buffers in guarded allocations, as the device's are.
    let guarded: Vec<Guarded> = buffers
        .iter()
        .map(|b| {
            let g = Guarded::new(b.len().max(1) * 4);
            // SAFETY: the allocation holds at least `b.len()` floats.
            unsafe { std::ptr::copy_nonoverlapping(b.as_ptr(), g.data as *mut f32, b.len()) };
            g
        })
        .collect();
    let mut pointers: Vec<*mut f32> = guarded.iter().map(|g| g.data as *mut f32).collect();
    let mut arguments: Vec<*mut c_void> = pointers
        .iter_mut()
        .map(|p| p as *mut *mut f32 as *mut c_void)
        .collect();
    let _one = LAUNCHING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let (mode, seed) = order.code();
    let [gx, gy, gz] = grid;
    let [bx, by, bz] = block;
    // SAFETY: the entry unpacks `buffers.len()` float pointers, each to a live vector; the
    // kernel's indexing within them is what the caller tests.
    unsafe {
        (library.set_order)(mode, seed);
        entry(gx, gy, gz, bx, by, bz, arguments.as_mut_ptr());
    }
    let mut damage = None;
    for (b, g) in buffers.iter_mut().zip(guarded) {
        // SAFETY: as above.
        unsafe { std::ptr::copy_nonoverlapping(g.data as *const f32, b.as_mut_ptr(), b.len()) };
        damage = damage.or_else(|| g.damage());
        g.release();
    }
    match damage {
        Some(damage) => Err(format!(
            "kernel `{name}` wrote outside its buffers: {damage}"
        )),
        None => Ok(()),
    }
}

impl Device for EmulatedDevice {
    fn kind(&self) -> &'static str {
        "emulated"
    }

    fn describe(&self) -> String {
        "emulated GPU (kernels compiled for the CPU)".to_string()
    }

    fn max_blocks(&self) -> u32 {
        // Grid-stride loops cover every element whatever the grid; few blocks start fewer
        // fibers.
        4
    }

    fn alloc(&self, bytes: usize) -> u64 {
        if bytes == 0 {
            return 0;
        }
        let guarded = Guarded::new(bytes);
        let address = guarded.data as u64;
        self.allocations
            .lock()
            .expect("allocation table")
            .insert(address, guarded);
        address
    }

    fn free(&self, ptr: u64) {
        if ptr == 0 {
            return;
        }
        self.allocations
            .lock()
            .expect("allocation table")
            .remove(&ptr)
            .expect("emulated device: freeing memory it did not allocate")
            .release();
    }

    fn upload(&self, dst: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: `dst` is a live allocation of at least `data.len()` bytes (the backend's
        // invariant).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst as *mut u8, data.len()) };
    }

    fn download(&self, src: u64, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        // SAFETY: as in `upload`.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, out.as_mut_ptr(), out.len()) };
    }

    fn copy(&self, dst: u64, src: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // SAFETY: as in `upload`; tensors never overlap.
        unsafe { std::ptr::copy_nonoverlapping(src as *const u8, dst as *mut u8, bytes) };
    }

    fn zero(&self, dst: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        // SAFETY: as in `upload`.
        unsafe { std::ptr::write_bytes(dst as *mut u8, 0, bytes) };
    }

    fn launch(&self, kernel: Kernel, shape: LaunchShape, args: &[Arg]) {
        let name = kernel.name();
        let library = library().expect("compiled when the device was made");
        let (entry, codes) = library
            .entries
            .get(name)
            .unwrap_or_else(|| panic!("no kernel `{name}`"));
        let given: String = args.iter().map(Arg::code).collect();
        assert_eq!(
            &given, codes,
            "kernel `{name}` takes ({codes}), launched with ({given})"
        );
        if shape.grid.contains(&0) || shape.block.contains(&0) {
            return;
        }
        let mut values: Vec<u64> = args.iter().map(|a| u64::from_ne_bytes(a.bytes())).collect();
        let mut pointers: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        let _one = LAUNCHING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let [gx, gy, gz] = shape.grid;
        let [bx, by, bz] = shape.block;
        let (mode, seed) = self.order.code();
        // SAFETY: the entry unpacks exactly `codes.len()` arguments of the checked kinds, each
        // pointing to 8 bytes; device pointers are live host allocations.
        unsafe {
            (library.set_order)(mode, seed);
            entry(gx, gy, gz, bx, by, bz, pointers.as_mut_ptr());
        }
        // What the kernel may have written: the allocations its pointers point into. The table
        // is released before failing, so that unwinding can still free the tensors.
        let damage = {
            let table = self.allocations.lock().expect("allocation table");
            args.iter()
                .filter_map(|arg| match *arg {
                    Arg::Ptr(address) => table.range(..=address).next_back(),
                    _ => None,
                })
                .find_map(|(_, guarded)| {
                    let damage = guarded.damage()?;
                    guarded.repair();
                    Some(damage)
                })
        };
        if let Some(damage) = damage {
            panic!("kernel `{name}` wrote outside its buffers: {damage}");
        }
    }

    fn synchronize(&self) {}
}

impl Drop for EmulatedDevice {
    fn drop(&mut self) {
        let table = self.allocations.get_mut().expect("allocation table");
        for (_, guarded) in std::mem::take(table) {
            guarded.release();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernels_with_barriers_are_found() {
        use super::Kernel;
        for kernel in [
            Kernel::Gemm,
            Kernel::Conv3x3Forward,
            Kernel::SumSquares,
            Kernel::BatchNormStats,
        ] {
            assert!(super::uses_barriers(kernel.name()), "{kernel}");
        }
        for kernel in [
            Kernel::Add,
            Kernel::LstmCell,
            Kernel::CrossEntropy,
            Kernel::SparseRows,
        ] {
            assert!(!super::uses_barriers(kernel.name()), "{kernel}");
        }
    }
}
