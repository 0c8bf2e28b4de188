//! The CUDA kernel sources (`kernels/*.cu`, embedded in the binary), their entry points, and their
//! compilation: by NVRTC for a GPU, or by the host C++ compiler for the emulator.
//!
//! Each source file is one NVRTC program; `#include "common.cuh"` is replaced by the header's
//! text, so no include paths are needed. The entry points and their parameter types are read off
//! the sources ([`signatures`]), so the emulator can check every launch's arguments against the
//! kernel it calls.

/// The shared header.
pub const COMMON: &str = include_str!("../../../kernels/common.cuh");

/// The kernel sources, by file name.
pub const SOURCES: &[(&str, &str)] = &[
    (
        "elementwise.cu",
        include_str!("../../../kernels/elementwise.cu"),
    ),
    ("reduce.cu", include_str!("../../../kernels/reduce.cu")),
    ("gemm.cu", include_str!("../../../kernels/gemm.cu")),
    ("rows.cu", include_str!("../../../kernels/rows.cu")),
    ("loss.cu", include_str!("../../../kernels/loss.cu")),
];

/// The architectures CI compiles every kernel for.
pub const CHECKED_ARCHS: &[&str] = &["compute_80", "compute_90"];

const INCLUDE: &str = "#include \"common.cuh\"";

/// One source file as a self-contained program: the shared header pasted in place of its
/// include.
pub fn program(source: &str) -> String {
    source.replacen(INCLUDE, COMMON, 1)
}

/// An entry point: its name and its parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    /// Parameter types as C++ writes them, without `__restrict__` (`const float*`, `long long`).
    pub types: Vec<String>,
}

impl Signature {
    /// One character per parameter: `p` pointer, `i` int, `u` unsigned, `l` long long, `f`
    /// float, `d` double (the codes of [`super::device::Arg::code`]).
    pub fn codes(&self) -> String {
        self.types.iter().map(|t| type_code(t)).collect()
    }
}

fn type_code(ty: &str) -> char {
    if ty.contains('*') {
        return 'p';
    }
    match ty.split_whitespace().collect::<Vec<_>>().join(" ").as_str() {
        "int" => 'i',
        "unsigned" | "unsigned int" => 'u',
        "long long" => 'l',
        "float" => 'f',
        "double" => 'd',
        other => panic!("kernel parameter type `{other}` has no launch code"),
    }
}

/// The end of the parenthesised group that starts at `open` (the index of its `(`).
fn matching_paren(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in a kernel signature");
}

/// The entry points (`extern "C" __global__ void …`) of a source file.
pub fn signatures(source: &str) -> Vec<Signature> {
    const MARK: &str = "extern \"C\" __global__ void";
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find(MARK) {
        let mut text = rest[at + MARK.len()..].trim_start();
        if let Some(bounds) = text.strip_prefix("__launch_bounds__") {
            let open = bounds.find('(').expect("launch bounds");
            text = bounds[matching_paren(bounds, open) + 1..].trim_start();
        }
        let open = text.find('(').expect("a parameter list");
        let name = text[..open].trim().to_string();
        let close = matching_paren(text, open);
        let types = text[open + 1..close]
            .split(',')
            .map(|param| {
                let param = param.replace("__restrict__", " ");
                let param = param.trim();
                // The name is the last identifier.
                let cut = param
                    .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .map_or(0, |i| i + 1);
                param[..cut]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|t| !t.is_empty())
            .collect();
        out.push(Signature { name, types });
        rest = &text[close..];
    }
    out
}

/// Every entry point of every source file.
pub fn all_signatures() -> Vec<Signature> {
    SOURCES.iter().flat_map(|(_, s)| signatures(s)).collect()
}

/// NVRTC, for the CUDA device and for the compile check.
#[cfg(feature = "cuda")]
pub mod nvrtc {
    use std::ffi::{CStr, CString};

    use cudarc::nvrtc::{result, sys};

    /// Whether NVRTC's library can be loaded (cudarc panics on first use when it cannot).
    pub fn available() -> bool {
        // SAFETY: only tries to open the library.
        unsafe { sys::is_culib_present() }
    }

    /// Compiles one program for `arch` (e.g. `compute_90`): its PTX, or the compiler's log when
    /// it fails or warns (a warning counts as a failure).
    pub fn compile(name: &str, program: &str, arch: &str) -> Result<Vec<u8>, String> {
        let source = CString::new(program).map_err(|_| format!("{name}: NUL in the source"))?;
        let title = CString::new(name).expect("file names have no NUL");
        let options = [
            format!("--gpu-architecture={arch}"),
            "--std=c++17".to_string(),
            // No implicit FMA contraction, as on the CPU backend: only explicit fmaf fuse.
            "--fmad=false".to_string(),
        ];
        let handle = result::create_program(&source, Some(&title))
            .map_err(|e| format!("{name}: cannot create the program: {e:?}"))?;
        // SAFETY: `handle` is a live program; it is destroyed below.
        let compiled = unsafe { result::compile_program(handle, &options) };
        // SAFETY: as above.
        let log = unsafe { result::get_program_log(handle) }
            .map(|raw| {
                // SAFETY: NVRTC's log is NUL-terminated.
                unsafe { CStr::from_ptr(raw.as_ptr()) }
                    .to_string_lossy()
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let ptx = match compiled {
            Ok(()) if log.is_empty() => {
                // SAFETY: compiled successfully.
                unsafe { result::get_ptx(handle) }
                    .map(|raw| raw.iter().map(|&c| c as u8).collect::<Vec<u8>>())
                    .map_err(|e| format!("{name}: no PTX: {e:?}"))
            }
            Ok(()) => Err(format!("{name} ({arch}) compiled with warnings:\n{log}")),
            Err(e) => Err(format!("{name} ({arch}) does not compile ({e:?}):\n{log}")),
        };
        // SAFETY: the program is not used after this.
        unsafe { result::destroy_program(handle) }.ok();
        ptx
    }

    /// The version of NVRTC, e.g. (12, 9).
    pub fn version() -> (i32, i32) {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: plain out-parameters.
        unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
        (major, minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_read_off_the_sources() {
        let source = r#"
extern "C" __global__ void __launch_bounds__(KAREL_THREADS)
    scale_f32(float* __restrict__ out, const float* __restrict__ x,
              float factor, long long n, unsigned int flags) {}
extern "C" __global__ void other_f32(const unsigned char* mask, double eps, int k) {}
"#;
        let found = signatures(source);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "scale_f32");
        assert_eq!(
            found[0].types,
            [
                "float*",
                "const float*",
                "float",
                "long long",
                "unsigned int"
            ]
        );
        assert_eq!(found[0].codes(), "ppflu");
        assert_eq!(found[1].codes(), "pdi");
        // Every kernel of the project has a signature that maps to launch codes.
        let all = all_signatures();
        assert!(all.len() >= 30, "{} kernels", all.len());
        for s in &all {
            assert_eq!(s.codes().len(), s.types.len(), "{}", s.name);
        }
        let mut names: Vec<_> = all.iter().map(|s| s.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len(), "kernel names are unique");
    }
}
