//! A [`Device`] on a CUDA GPU, through cudarc's driver API with the driver and NVRTC loaded at run
//! time (nothing of CUDA is needed to build). Each kernel source is compiled by NVRTC for the
//! device's compute capability on first use, once per device and process; `KAREL_DUMP_PTX=DIR`
//! writes the PTX there. All work runs on one stream; memory comes from the stream-ordered
//! allocator (`cuMemAllocAsync`, its pool told to keep freed memory), so freeing a tensor does
//! not wait for the GPU. Host data of an asynchronous upload is kept until the next
//! synchronisation, so it outlives the copy whatever the driver does with pageable memory.

use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::{result, sys};

use super::device::{Arg, Device, LaunchShape};
use super::kernels::{nvrtc, program, signatures, Kernel, SOURCES};

/// A loaded kernel: its function handle and parameter codes.
struct Loaded {
    function: sys::CUfunction,
    codes: String,
}

/// A CUDA device with the kernels loaded.
pub struct CudaDevice {
    ordinal: usize,
    name: String,
    capability: (i32, i32),
    context: sys::CUcontext,
    stream: sys::CUstream,
    kernels: HashMap<String, Loaded>,
    /// Host copies of uploads in flight, dropped at the next synchronisation.
    pending: Mutex<Vec<Box<[u8]>>>,
    /// Their size, to synchronise early when they grow large.
    pending_bytes: AtomicUsize,
}

/// Uploads in flight beyond which an upload first waits for the stream.
const PENDING_LIMIT: usize = 256 << 20;

// SAFETY: the context, stream and functions are driver handles usable from any thread once the
// context is current there, which every method ensures first.
unsafe impl Send for CudaDevice {}
// SAFETY: as above; the driver API is thread-safe.
unsafe impl Sync for CudaDevice {}

impl std::fmt::Debug for CudaDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CudaDevice({})", self.describe())
    }
}

fn check<T>(what: &str, result: Result<T, result::DriverError>) -> T {
    result.unwrap_or_else(|e| panic!("CUDA error in {what}: {e:?}"))
}

impl CudaDevice {
    /// The device `ordinal` with every kernel compiled and loaded, shared by all callers in the
    /// process. A clear error when there is no driver, no such device, or no NVRTC.
    pub fn new(ordinal: usize) -> Result<Arc<CudaDevice>, String> {
        static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<CudaDevice>>>> = OnceLock::new();
        let mut devices = DEVICES
            .get_or_init(Default::default)
            .lock()
            .map_err(|_| "the CUDA device table is poisoned".to_string())?;
        if let Some(device) = devices.get(&ordinal) {
            return Ok(device.clone());
        }
        let device = Arc::new(CudaDevice::open(ordinal)?);
        devices.insert(ordinal, device.clone());
        Ok(device)
    }

    fn open(ordinal: usize) -> Result<CudaDevice, String> {
        // SAFETY: only tries to open the library.
        if !unsafe { sys::is_culib_present() } {
            return Err(
                "no CUDA driver: libcuda.so cannot be loaded (is an NVIDIA driver \
                 installed?)"
                    .into(),
            );
        }
        nvrtc::library()?;
        result::init().map_err(|e| format!("cannot initialise CUDA: {e:?}"))?;
        let count = result::device::get_count().map_err(|e| format!("{e:?}"))?;
        if ordinal >= count as usize {
            return Err(format!(
                "there is no CUDA device {ordinal} ({count} device(s) found)"
            ));
        }
        let device =
            result::device::get(ordinal as i32).map_err(|e| format!("CUDA device: {e:?}"))?;
        let name = result::device::get_name(device).unwrap_or_else(|_| "unknown GPU".into());
        let attribute = |a| {
            // SAFETY: a valid device and attribute.
            unsafe { result::device::get_attribute(device, a) }.unwrap_or(0)
        };
        let capability = (
            attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
            attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
        );
        // SAFETY: a valid device; the primary context lives as long as the process.
        let context = unsafe { result::primary_ctx::retain(device) }
            .map_err(|e| format!("CUDA context: {e:?}"))?;
        // SAFETY: the context was just retained.
        unsafe { result::ctx::set_current(context) }.map_err(|e| format!("CUDA context: {e:?}"))?;
        let stream = result::stream::create(result::stream::StreamKind::NonBlocking)
            .map_err(|e| format!("CUDA stream: {e:?}"))?;
        // Keep freed memory in the pool: with the default threshold of 0 every synchronisation
        // would return it to the system, and the next step would map it again.
        // SAFETY: a valid device; the attribute takes a u64.
        unsafe {
            let pool = result::device::get_default_mem_pool(device)
                .map_err(|e| format!("CUDA memory pool: {e:?}"))?;
            let mut threshold = u64::MAX;
            result::mem_pool::set_attribute(
                pool,
                sys::CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD,
                &mut threshold as *mut u64 as *mut c_void,
            )
            .map_err(|e| format!("CUDA memory pool: {e:?}"))?;
        }
        let arch = format!("compute_{}{}", capability.0, capability.1);
        let dump = std::env::var_os("KAREL_DUMP_PTX").map(std::path::PathBuf::from);
        let mut kernels = HashMap::new();
        for (file, source) in SOURCES {
            let ptx = nvrtc::compile(file, &program(source), &arch)?;
            if let Some(dir) = &dump {
                std::fs::create_dir_all(dir).ok();
                std::fs::write(dir.join(file.replace(".cu", ".ptx")), &ptx).ok();
            }
            let image = CString::new(ptx).map_err(|_| format!("{file}: NUL in the PTX"))?;
            // SAFETY: NUL-terminated PTX from NVRTC, loaded into the current context.
            let module = unsafe { result::module::load_data(image.as_ptr() as *const c_void) }
                .map_err(|e| format!("{file}: the driver rejects the PTX: {e:?}"))?;
            for signature in signatures(source) {
                let symbol = CString::new(signature.name.clone()).expect("kernel names");
                // SAFETY: the module was just loaded and is never unloaded.
                let function = unsafe { result::module::get_function(module, symbol) }
                    .map_err(|e| format!("{}: {e:?}", signature.name))?;
                kernels.insert(
                    signature.name.clone(),
                    Loaded {
                        function,
                        codes: signature.codes(),
                    },
                );
            }
        }
        Ok(CudaDevice {
            ordinal,
            name,
            capability,
            context,
            stream,
            kernels,
            pending: Mutex::new(Vec::new()),
            pending_bytes: AtomicUsize::new(0),
        })
    }

    fn bind(&self) {
        // SAFETY: the context is alive for the process.
        check("binding the context", unsafe {
            result::ctx::set_current(self.context)
        });
    }
}

impl Device for CudaDevice {
    fn kind(&self) -> &'static str {
        "cuda"
    }

    fn describe(&self) -> String {
        format!(
            "CUDA device {}: {} (compute capability {}.{})",
            self.ordinal, self.name, self.capability.0, self.capability.1
        )
    }

    fn max_blocks(&self) -> u32 {
        65_535
    }

    fn alloc(&self, bytes: usize) -> u64 {
        if bytes == 0 {
            return 0;
        }
        self.bind();
        // SAFETY: the stream belongs to the current context.
        check(&format!("allocating {bytes} bytes"), unsafe {
            result::malloc_async(self.stream, bytes)
        })
    }

    fn free(&self, ptr: u64) {
        if ptr == 0 {
            return;
        }
        self.bind();
        // SAFETY: allocated on this stream by `alloc`, freed once.
        check("freeing memory", unsafe {
            result::free_async(ptr, self.stream)
        });
    }

    fn upload(&self, dst: u64, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.pending_bytes.load(Ordering::Relaxed) > PENDING_LIMIT {
            self.synchronize();
        }
        self.bind();
        let copy: Box<[u8]> = data.into();
        // SAFETY: `dst` holds at least `data.len()` bytes; `copy` stays alive in `pending`
        // until the stream has been synchronised, after the copy.
        check("copying to the device", unsafe {
            result::memcpy_htod_async(dst, &copy, self.stream)
        });
        self.pending_bytes.fetch_add(copy.len(), Ordering::Relaxed);
        self.pending.lock().expect("pending uploads").push(copy);
    }

    fn download(&self, src: u64, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        self.bind();
        // SAFETY: `src` holds at least `out.len()` bytes; the stream is synchronised before
        // `out` is read.
        check("copying from the device", unsafe {
            result::memcpy_dtoh_async(out, src, self.stream)
        });
        self.synchronize();
    }

    fn copy(&self, dst: u64, src: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.bind();
        // SAFETY: both hold at least `bytes` bytes.
        check("copying on the device", unsafe {
            result::memcpy_dtod_async(dst, src, bytes, self.stream)
        });
    }

    fn zero(&self, dst: u64, bytes: usize) {
        if bytes == 0 {
            return;
        }
        self.bind();
        // SAFETY: `dst` holds at least `bytes` bytes.
        check("clearing memory", unsafe {
            result::memset_d8_async(dst, 0, bytes, self.stream)
        });
    }

    fn launch(&self, which: Kernel, shape: LaunchShape, args: &[Arg]) {
        let name = which.name();
        let kernel = self
            .kernels
            .get(name)
            .unwrap_or_else(|| panic!("no kernel `{name}`"));
        let given: String = args.iter().map(Arg::code).collect();
        assert_eq!(
            given, kernel.codes,
            "kernel `{name}` takes ({}), launched with ({given})",
            kernel.codes
        );
        if shape.grid.contains(&0) {
            return;
        }
        let mut values: Vec<u64> = args.iter().map(|a| u64::from_ne_bytes(a.bytes())).collect();
        let mut params: Vec<*mut c_void> = values
            .iter_mut()
            .map(|v| v as *mut u64 as *mut c_void)
            .collect();
        self.bind();
        let [gx, gy, gz] = shape.grid;
        let [bx, by, bz] = shape.block;
        // SAFETY: the parameters match the kernel's (checked above), each points to its value,
        // and device pointers are live allocations of this device.
        check(&format!("launching {name}"), unsafe {
            result::launch_kernel(
                kernel.function,
                (gx, gy, gz),
                (bx, by, bz),
                0,
                self.stream,
                &mut params,
            )
        });
    }

    fn synchronize(&self) {
        self.bind();
        // SAFETY: the stream is alive.
        check("synchronising", unsafe {
            result::stream::synchronize(self.stream)
        });
        let mut pending = self.pending.lock().expect("pending uploads");
        pending.clear();
        self.pending_bytes.store(0, Ordering::Relaxed);
    }
}
