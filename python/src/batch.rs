//! `run_batch`: many runs on all cores, numpy arrays in and out, the GIL released, no Python
//! object per item.

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex, OnceLock};

use karel::vm::{self, Outcome, RunConfig, Vm};
use karel::world::tensor::CHANNELS;
use karel::world::{World as KarelWorld, CELLS};
use numpy::{PyArray1, PyArray4, PyArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyString;
use rayon::prelude::*;

use crate::program::{parse_text, syntax_error, Compiled, Program};
use crate::world::{check_world_shape, tensor_bytes, write_world, WORLD_CELLS};

/// Most items of one call: an output array of 20 GB, as large as its input.
pub const MAX_BATCH: usize = 1 << 22;
/// Most threads a call may ask for.
pub const MAX_THREADS: usize = 1024;

/// Status codes of `run_batch`.
const OK: i8 = 0;
const CRASH: i8 = 1;
const TIMEOUT: i8 = 2;
const SYNTAX_ERROR: i8 = 3;

/// Items a thread takes at a time: large enough to amortise scheduling, small enough to balance.
const ITEMS_PER_TASK: usize = 64;

/// Thread pools by size, built on first use and kept (building one costs far more than a batch).
fn pool(threads: usize) -> PyResult<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<HashMap<usize, Arc<rayon::ThreadPool>>>> = OnceLock::new();
    let pools = POOLS.get_or_init(Default::default);
    let mut pools = pools
        .lock()
        .map_err(|_| PyValueError::new_err("a thread pool failed earlier in this process"))?;
    if let Some(pool) = pools.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("karel-sed-{i}"))
        .build()
        .map_err(|e| PyValueError::new_err(format!("cannot start {threads} threads: {e}")))?;
    let pool = Arc::new(pool);
    pools.insert(threads, pool.clone());
    Ok(pool)
}

/// A program of the batch: compiled, or the text that failed to parse.
enum Source {
    Text(String),
    Compiled(Arc<Compiled>),
}

/// The programs of a batch, as given: one for all inputs, or one per input.
fn sources(programs: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<Source>> {
    let single = |item: &Bound<'_, PyAny>| -> PyResult<Source> {
        if let Ok(program) = item.cast::<Program>() {
            return Ok(Source::Compiled(program.get().compiled.clone()));
        }
        if let Ok(text) = item.cast::<PyString>() {
            return Ok(Source::Text(text.to_cow()?.into_owned()));
        }
        Err(PyTypeError::new_err(format!(
            "programs holds a {}: each program is a str or a Program",
            item.get_type().name()?
        )))
    };
    if programs.cast::<Program>().is_ok() || programs.cast::<PyString>().is_ok() {
        return Ok(vec![single(programs)?]);
    }
    let items: Vec<Bound<'_, PyAny>> = match programs.try_iter() {
        Ok(iter) => iter.collect::<PyResult<_>>()?,
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "programs must be a str, a Program or a sequence of them, not {}",
                programs.get_type().name()?
            )))
        }
    };
    if items.len() != n && items.len() != 1 {
        return Err(PyValueError::new_err(format!(
            "{} programs for {n} inputs: give one program per input, or one for all",
            items.len()
        )));
    }
    items.iter().map(single).collect()
}

/// Compiles the distinct texts of `sources` in parallel; each item gets its program or `None`
/// for a syntax error.
fn compile_all(sources: &[Source]) -> Vec<Option<Arc<Compiled>>> {
    let mut distinct: HashMap<&str, usize> = HashMap::new();
    let mut texts: Vec<&str> = Vec::new();
    let slots: Vec<Option<usize>> = sources
        .iter()
        .map(|source| match source {
            Source::Text(text) => Some(*distinct.entry(text.as_str()).or_insert_with(|| {
                texts.push(text.as_str());
                texts.len() - 1
            })),
            Source::Compiled(_) => None,
        })
        .collect();
    let compiled: Vec<Option<Arc<Compiled>>> = texts
        .par_iter()
        .map(|text| parse_text(text).ok().map(Arc::new))
        .collect();
    sources
        .iter()
        .zip(slots)
        .map(|(source, slot)| match (source, slot) {
            (Source::Compiled(program), _) => Some(program.clone()),
            (Source::Text(_), Some(slot)) => compiled[slot].clone(),
            (Source::Text(_), None) => None,
        })
        .collect()
}

/// Runs programs on a batch of worlds: `(status, outputs)`.
///
/// - `programs`: one str or `Program` for all inputs, or a sequence of them, one per input (a
///   sequence of one is used for all);
/// - `inputs`: a numpy array of dtype bool or uint8, shape (N, 15, 18, 18) or (N, 16, 18, 18)
///   (channel 15 empty), N at most 2²²; an invalid world raises `ValueError` naming its index;
/// - `max_steps`: the step limit of every run (default 1000);
/// - `threads`: worker threads (default: all cores), 1 to 1024; results do not depend on it.
///
/// `status` is an int8 array of N codes (0 ok, 1 crash, 2 timeout, 3 syntax error) and
/// `outputs` a bool array (N, 15, 18, 18) holding the final worlds of the ok runs, zero elsewhere.
/// The GIL is released while the programs run; the input array must not be written meanwhile.
#[pyfunction]
#[pyo3(signature = (programs, inputs, max_steps = vm::DEFAULT_MAX_STEPS, threads = None))]
#[allow(clippy::type_complexity)]
pub fn run_batch<'py>(
    py: Python<'py>,
    programs: &Bound<'py, PyAny>,
    inputs: &Bound<'py, PyAny>,
    max_steps: u32,
    threads: Option<usize>,
) -> PyResult<(Bound<'py, PyArray1<i8>>, Bound<'py, PyArray4<bool>>)> {
    let tensor = tensor_bytes(inputs, "inputs")?;
    let channels = check_world_shape(tensor.shape(), 1, "inputs")?;
    let n = tensor.shape()[0];
    if n > MAX_BATCH {
        return Err(PyValueError::new_err(format!(
            "{n} inputs: a batch holds at most {MAX_BATCH}; split it"
        )));
    }
    let threads = match threads {
        None => None,
        Some(t) if (1..=MAX_THREADS).contains(&t) => Some(t),
        Some(t) => {
            return Err(PyValueError::new_err(format!(
                "threads = {t}: use 1 to {MAX_THREADS}, or None for all cores"
            )))
        }
    };
    let sources = sources(programs, n)?;
    // A syntax error of a single program for all inputs is the caller's mistake: raise it.
    if let [Source::Text(text)] = sources.as_slice() {
        if let Err(e) = parse_text(text) {
            return Err(syntax_error(py, &e, text));
        }
    }
    let input_bytes = tensor.bytes();
    let status = PyArray1::<i8>::zeros(py, [n], false);
    // The outputs are left uninitialised here and written whole by the workers, item by item
    // (zeroing 24 MB up front on this thread would cost as much as the runs).
    // SAFETY: `new` allocates a C-contiguous array of `n * WORLD_CELLS` bools that nothing else
    // references yet; it is only viewed as `MaybeUninit` until every item has been written.
    let outputs = unsafe { PyArray4::<bool>::new(py, [n, CHANNELS, 18, 18], false) };
    let outputs_out: &mut [MaybeUninit<bool>] = unsafe {
        std::slice::from_raw_parts_mut(outputs.data().cast::<MaybeUninit<bool>>(), n * WORLD_CELLS)
    };
    {
        let mut status_view = status.readwrite();
        let status_out = status_view.as_slice_mut()?;
        let input: &[u8] = &input_bytes;
        let work = || {
            run_all(
                &sources,
                input,
                channels * CELLS,
                max_steps,
                status_out,
                outputs_out,
            )
        };
        let outcome = match threads {
            None => py.detach(work),
            Some(t) => {
                let pool = pool(t)?;
                py.detach(|| pool.install(work))
            }
        };
        if let Err((index, message)) = outcome {
            return Err(PyValueError::new_err(format!("inputs[{index}]: {message}")));
        }
    }
    Ok((status, outputs))
}

/// Runs every item; on an invalid input world returns the lowest such index and its error.
fn run_all(
    sources: &[Source],
    input: &[u8],
    input_cells: usize,
    max_steps: u32,
    status: &mut [i8],
    outputs: &mut [MaybeUninit<bool>],
) -> Result<(), (usize, String)> {
    let programs = compile_all(sources);
    let config = RunConfig::with_max_steps(max_steps);
    let errors: Vec<(usize, String)> = status
        .par_chunks_mut(ITEMS_PER_TASK)
        .zip(outputs.par_chunks_mut(ITEMS_PER_TASK * WORLD_CELLS))
        .enumerate()
        .filter_map(|(task, (status, outputs))| {
            let mut machine = Vm::new();
            for (k, (code, out)) in status
                .iter_mut()
                .zip(outputs.chunks_exact_mut(WORLD_CELLS))
                .enumerate()
            {
                out.fill(MaybeUninit::new(false));
                // SAFETY: every element was just initialised.
                let out = unsafe { &mut *(out as *mut [MaybeUninit<bool>] as *mut [bool]) };
                let i = task * ITEMS_PER_TASK + k;
                let cells = &input[i * input_cells..(i + 1) * input_cells];
                // Only a 16-channel input can hold a cell of 10 markers.
                let world = KarelWorld::from_bytes(cells).and_then(|w| {
                    if input_cells > WORLD_CELLS {
                        w.check_fits_reference_tensor()?;
                    }
                    Ok(w)
                });
                let mut world = match world {
                    Ok(world) => world,
                    Err(e) => return Some((i, e.to_string())),
                };
                let program = match &programs[if programs.len() == 1 { 0 } else { i }] {
                    Some(program) => program,
                    None => {
                        *code = SYNTAX_ERROR;
                        continue;
                    }
                };
                let execution = machine.run(&program.chunk, &mut world, &config);
                *code = match execution.outcome() {
                    Outcome::Ok => {
                        write_world(&world, out);
                        OK
                    }
                    Outcome::Crash(_) => CRASH,
                    Outcome::Timeout => TIMEOUT,
                };
            }
            None
        })
        .collect();
    match errors.into_iter().min_by_key(|(index, _)| *index) {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
