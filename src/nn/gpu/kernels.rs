//! The CUDA kernel sources (`kernels/*.cu`, embedded in the binary), their entry points, and their
//! compilation: by NVRTC for a GPU, or by the host C++ compiler for the emulator.
//!
//! Each source file is one NVRTC program; `#include "common.cuh"` is replaced by the header's
//! text, so no include paths are needed. The entry points and their parameter types are read off
//! the sources ([`signatures`]), so the emulator can check every launch's arguments against the
//! kernel it calls. [`Kernel`] is the table of those entry points that the backend launches,
//! each with its source file and launch codes; a test checks it against the sources.

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

/// Defines [`Kernel`] from one list of entry points: variant, entry-point name, source file and
/// launch codes (one per parameter, as [`Signature::codes`] writes them).
macro_rules! kernel_table {
    ($($variant:ident => $name:literal in $file:literal ($codes:literal),)*) => {
        /// An entry point of the kernel sources: every launch names its kernel by one of these.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Kernel {
            $(
                #[doc = concat!("`", $name, "` in `kernels/", $file, "` (`", $codes, "`).")]
                $variant,
            )*
        }

        impl Kernel {
            /// Every entry point, in table order.
            pub const ALL: &'static [Kernel] = &[$(Kernel::$variant),*];

            /// The entry point's name in its source (`extern "C"`, so also its symbol).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Kernel::$variant => $name,)*
                }
            }

            /// The file of [`SOURCES`] that defines it.
            pub const fn file(self) -> &'static str {
                match self {
                    $(Kernel::$variant => $file,)*
                }
            }

            /// Its parameters' launch codes ([`Signature::codes`]).
            pub const fn codes(self) -> &'static str {
                match self {
                    $(Kernel::$variant => $codes,)*
                }
            }
        }
    };
}

kernel_table! {
    // elementwise.cu
    Fill => "fill_f32" in "elementwise.cu" ("pfl"),
    AddAssign => "add_assign_f32" in "elementwise.cu" ("ppl"),
    Add => "add_f32" in "elementwise.cu" ("pppl"),
    Scale => "scale_f32" in "elementwise.cu" ("pfl"),
    AddBias => "add_bias_f32" in "elementwise.cu" ("ppli"),
    Relu => "relu_f32" in "elementwise.cu" ("ppl"),
    ReluBackward => "relu_backward_f32" in "elementwise.cu" ("pppl"),
    Lerp => "lerp_f32" in "elementwise.cu" ("ppfl"),
    SelectRows => "select_rows_f32" in "elementwise.cu" ("ppppli"),
    LstmCell => "lstm_cell_f32" in "elementwise.cu" ("pppppli"),
    LstmCellBackward => "lstm_cell_backward_f32" in "elementwise.cu" ("pppppppli"),
    BatchNormApply => "batch_norm_apply_f32" in "elementwise.cu" ("pppppplii"),
    BatchNormEval => "batch_norm_eval_f32" in "elementwise.cu" ("ppppppflii"),
    BatchNormBackward => "batch_norm_backward_f32" in "elementwise.cu" ("ppppppppflii"),
    SgdStep => "sgd_step_f32" in "elementwise.cu" ("ppfl"),
    AdamStep => "adam_step_f32" in "elementwise.cu" ("ppppfffffffl"),
    // reduce.cu
    SumRows => "sum_rows_f32" in "reduce.cu" ("ppii"),
    SumSquares => "sum_squares_f32" in "reduce.cu" ("ppl"),
    BatchNormStats => "batch_norm_stats_f32" in "reduce.cu" ("ppppiiid"),
    BatchNormSums => "batch_norm_sums_f32" in "reduce.cu" ("ppppppiii"),
    ConvBiasBackward => "conv_bias_backward_f32" in "reduce.cu" ("ppiii"),
    SumSplits => "sum_splits_f32" in "reduce.cu" ("ppili"),
    // gemm.cu
    Gemm => "gemm_f32" in "gemm.cu" ("pppiiiiiiii"),
    Conv3x3Forward => "conv3x3_forward_f32" in "gemm.cu" ("ppppiiiiii"),
    Conv3x3BackwardData => "conv3x3_backward_data_f32" in "gemm.cu" ("pppiiiiii"),
    Conv3x3BackwardWeight => "conv3x3_backward_weight_f32" in "gemm.cu" ("pppiiiiiii"),
    // rows.cu
    GatherRows => "gather_rows_f32" in "rows.cu" ("pppli"),
    SparseRows => "sparse_rows_f32" in "rows.cu" ("pppppli"),
    MaxGroups => "max_groups_f32" in "rows.cu" ("ppplii"),
    MaxGroupsBackward => "max_groups_backward_f32" in "rows.cu" ("pppli"),
    StridedCopy => "strided_copy_f32" in "rows.cu" ("pllpllll"),
    // loss.cu
    CrossEntropy => "cross_entropy_f32" in "loss.cu" ("pppppuiid"),
    LogSoftmax => "log_softmax_f32" in "loss.cu" ("ppii"),
}

impl std::fmt::Display for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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

/// NVRTC, for the CUDA device and for the compile check, loaded at run time by its library
/// names of CUDA 12 and 13 (`libnvrtc.so`, `libnvrtc.so.13`, `libnvrtc.so.12`; the wheels
/// `nvidia-cuda-nvrtc-cu12` and `nvidia-cuda-nvrtc` ship only the versioned names). The C API
/// used here is the same in both versions.
#[cfg(feature = "cuda")]
pub mod nvrtc {
    use std::ffi::{c_char, c_int, c_void, CStr, CString};
    use std::sync::OnceLock;

    /// The names tried, in order.
    pub const LIBRARY_NAMES: &[&str] = if cfg!(windows) {
        &["nvrtc64_130_0.dll", "nvrtc64_120_0.dll"]
    } else {
        &["libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"]
    };

    type Program = *mut c_void;
    type Status = c_int;

    /// The entry points used, resolved once.
    struct Api {
        name: &'static str,
        version: unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status,
        create: unsafe extern "C" fn(
            *mut Program,
            *const c_char,
            *const c_char,
            c_int,
            *const *const c_char,
            *const *const c_char,
        ) -> Status,
        compile: unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status,
        log_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
        log: unsafe extern "C" fn(Program, *mut c_char) -> Status,
        ptx_size: unsafe extern "C" fn(Program, *mut usize) -> Status,
        ptx: unsafe extern "C" fn(Program, *mut c_char) -> Status,
        destroy: unsafe extern "C" fn(*mut Program) -> Status,
        error_string: unsafe extern "C" fn(Status) -> *const c_char,
        // Kept loaded for the entry points' lifetime (the process's).
        _library: libloading::Library,
    }

    fn api() -> Result<&'static Api, String> {
        static API: OnceLock<Result<Api, String>> = OnceLock::new();
        API.get_or_init(load).as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Api, String> {
        for &name in LIBRARY_NAMES {
            // SAFETY: NVRTC's initialisers have no preconditions.
            let Ok(library) = (unsafe { libloading::Library::new(name) }) else {
                continue;
            };
            // SAFETY: each symbol is NVRTC's C function of the declared type (nvrtc.h).
            unsafe {
                macro_rules! entry {
                    ($symbol:literal) => {
                        *library.get($symbol).map_err(|e| format!("{name}: {e}"))?
                    };
                }
                return Ok(Api {
                    name,
                    version: entry!(b"nvrtcVersion\0"),
                    create: entry!(b"nvrtcCreateProgram\0"),
                    compile: entry!(b"nvrtcCompileProgram\0"),
                    log_size: entry!(b"nvrtcGetProgramLogSize\0"),
                    log: entry!(b"nvrtcGetProgramLog\0"),
                    ptx_size: entry!(b"nvrtcGetPTXSize\0"),
                    ptx: entry!(b"nvrtcGetPTX\0"),
                    destroy: entry!(b"nvrtcDestroyProgram\0"),
                    error_string: entry!(b"nvrtcGetErrorString\0"),
                    _library: library,
                });
            }
        }
        Err(format!(
            "NVRTC cannot be loaded: none of {} is on the library path (install the CUDA \
             toolkit, or `pip install nvidia-cuda-nvrtc-cu12` or `nvidia-cuda-nvrtc` and add its \
             lib folder to LD_LIBRARY_PATH)",
            LIBRARY_NAMES.join(", ")
        ))
    }

    /// Whether NVRTC's library can be loaded.
    pub fn available() -> bool {
        api().is_ok()
    }

    /// Why NVRTC cannot be loaded, or the name of the library loaded.
    pub fn library() -> Result<&'static str, String> {
        api().map(|api| api.name)
    }

    fn check(api: &Api, status: Status, what: &str) -> Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: NVRTC returns a static NUL-terminated string for any status.
        let text = unsafe { CStr::from_ptr((api.error_string)(status)) };
        Err(format!("{what}: {}", text.to_string_lossy()))
    }

    /// Compiles one program for `arch` (e.g. `compute_90`): its PTX, or the compiler's log when
    /// it fails or warns (a warning counts as a failure).
    pub fn compile(name: &str, program: &str, arch: &str) -> Result<Vec<u8>, String> {
        let api = api()?;
        let source = CString::new(program).map_err(|_| format!("{name}: NUL in the source"))?;
        let title = CString::new(name).expect("file names have no NUL");
        let options: Vec<CString> = [
            format!("--gpu-architecture={arch}"),
            "--std=c++17".to_string(),
            // No implicit FMA contraction, as on the CPU backend: only explicit fmaf fuse.
            "--fmad=false".to_string(),
        ]
        .into_iter()
        .map(|o| CString::new(o).expect("options have no NUL"))
        .collect();
        let option_pointers: Vec<*const c_char> = options.iter().map(|o| o.as_ptr()).collect();
        let mut handle: Program = std::ptr::null_mut();
        // SAFETY: NUL-terminated strings that outlive the call; no headers.
        let status = unsafe {
            (api.create)(
                &mut handle,
                source.as_ptr(),
                title.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        check(api, status, &format!("{name}: cannot create the program"))?;
        // SAFETY: `handle` is a live program, destroyed below; the options outlive the call.
        let compiled = unsafe {
            (api.compile)(
                handle,
                option_pointers.len() as c_int,
                option_pointers.as_ptr(),
            )
        };
        let log = read(api, handle, api.log_size, api.log).unwrap_or_default();
        let log = String::from_utf8_lossy(&log)
            .trim_end_matches('\0')
            .trim()
            .to_string();
        let ptx = match check(api, compiled, "") {
            Ok(()) if log.is_empty() => read(api, handle, api.ptx_size, api.ptx)
                .map(|mut ptx| {
                    while ptx.last() == Some(&0) {
                        ptx.pop();
                    }
                    ptx
                })
                .map_err(|e| format!("{name}: no PTX{e}")),
            Ok(()) => Err(format!("{name} ({arch}) compiled with warnings:\n{log}")),
            Err(e) => Err(format!("{name} ({arch}) does not compile{e}:\n{log}")),
        };
        // SAFETY: the program is not used after this.
        unsafe { (api.destroy)(&mut handle) };
        ptx
    }

    /// Reads a sized output of a program (its log, its PTX), NUL included.
    fn read(
        api: &Api,
        handle: Program,
        size: unsafe extern "C" fn(Program, *mut usize) -> Status,
        fill: unsafe extern "C" fn(Program, *mut c_char) -> Status,
    ) -> Result<Vec<u8>, String> {
        let mut bytes = 0usize;
        // SAFETY: a live program and a plain out-parameter.
        check(api, unsafe { size(handle, &mut bytes) }, "")?;
        let mut buffer = vec![0u8; bytes.max(1)];
        // SAFETY: the buffer holds the size NVRTC gave.
        check(
            api,
            unsafe { fill(handle, buffer.as_mut_ptr() as *mut c_char) },
            "",
        )?;
        buffer.truncate(bytes);
        Ok(buffer)
    }

    /// The version of NVRTC, e.g. (12, 9); (0, 0) when it cannot be loaded.
    pub fn version() -> (i32, i32) {
        let Ok(api) = api() else { return (0, 0) };
        let (mut major, mut minor) = (0, 0);
        // SAFETY: plain out-parameters.
        unsafe { (api.version)(&mut major, &mut minor) };
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
    probe_f32(float* __restrict__ out, const float* __restrict__ x,
              float factor, long long n, unsigned int flags) {}
extern "C" __global__ void other_f32(const unsigned char* mask, double eps, int k) {}
"#;
        let found = signatures(source);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].name, "probe_f32");
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

    /// The kernel table and the sources agree: every entry is an entry point of the file it
    /// names, with the launch codes it lists, and every entry point of the sources is in it.
    #[test]
    fn kernel_table_matches_the_sources() {
        use std::collections::HashSet;
        let mut problems = Vec::new();
        let mut listed = HashSet::new();
        for &kernel in Kernel::ALL {
            if !listed.insert(kernel.name()) {
                problems.push(format!("{kernel} is listed twice"));
            }
            let Some((_, source)) = SOURCES.iter().find(|(file, _)| *file == kernel.file()) else {
                problems.push(format!("{kernel}: no source file `{}`", kernel.file()));
                continue;
            };
            match signatures(source).iter().find(|s| s.name == kernel.name()) {
                None => problems.push(format!("{kernel}: not an entry point of {}", kernel.file())),
                Some(s) if s.codes() != kernel.codes() => problems.push(format!(
                    "{kernel}: takes ({}) in {}, the table says ({})",
                    s.codes(),
                    kernel.file(),
                    kernel.codes()
                )),
                Some(_) => {}
            }
        }
        for (file, source) in SOURCES {
            for s in signatures(source) {
                if !listed.contains(s.name.as_str()) {
                    problems.push(format!("{} of {file} is not in the kernel table", s.name));
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(Kernel::ALL.len(), all_signatures().len());
    }
}
