//! `karel_sed._native`: the Python extension module of karel-sed.
//!
//! The Python package `karel_sed` re-exports everything here and adds the thin pure-Python layer
//! (`generate` and `read_dataset` returning dicts, the `compat` executor). The modules:
//!
//! - [`program`]: `Program`, `parse`, `KarelSyntaxError`, and how Python values become programs
//!   and token sequences;
//! - [`world`]: `World` and its numpy, index, ASCII and JSON forms;
//! - [`run`]: `run` and `RunResult`, and the compat executor's native half;
//! - [`batch`]: `run_batch`, many runs on all cores with the GIL released;
//! - [`data`]: the mutator, edit operations, the task generator and dataset readers.
//!
//! Every size a caller controls (step limits, thread counts, batch and sequence lengths, counts)
//! is bounded, and bad input raises a Python exception with the library's message.

use pyo3::prelude::*;

/// The extension's own allocations (ASTs, bytecode, index lists) are many and small; mimalloc
/// serves them several times faster than the system allocator. Python's and numpy's memory is
/// untouched.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod batch;
mod data;
mod program;
mod run;
mod world;

/// Native half of `karel_sed`; import `karel_sed` instead.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add(
        "KarelSyntaxError",
        py.get_type::<program::KarelSyntaxError>(),
    )?;
    m.add_class::<program::Program>()?;
    m.add_class::<world::World>()?;
    m.add_class::<run::RunResult>()?;
    m.add_class::<data::TaskReader>()?;
    m.add_function(wrap_pyfunction!(program::parse, m)?)?;
    m.add_function(wrap_pyfunction!(run::run, m)?)?;
    m.add_function(wrap_pyfunction!(run::compat_execute, m)?)?;
    m.add_function(wrap_pyfunction!(batch::run_batch, m)?)?;
    m.add_function(wrap_pyfunction!(data::mutate, m)?)?;
    m.add_function(wrap_pyfunction!(data::editops, m)?)?;
    m.add_function(wrap_pyfunction!(data::edit_ops, m)?)?;
    m.add_function(wrap_pyfunction!(data::generate_lines, m)?)?;
    m.add_function(wrap_pyfunction!(data::open_dataset, m)?)?;
    m.add("DEFAULT_MAX_STEPS", karel::vm::DEFAULT_MAX_STEPS)?;
    m.add("MAX_BATCH", batch::MAX_BATCH)?;
    m.add("MAX_THREADS", batch::MAX_THREADS)?;
    m.add("MAX_GENERATE", data::MAX_GENERATE)?;
    m.add("MAX_MUTATIONS", data::MAX_MUTATIONS)?;
    m.add("MAX_EDIT_CELLS", data::MAX_EDIT_CELLS)?;
    Ok(())
}
