//! The data layer in Python: the mutator, python-Levenshtein's `editops` and the debugger's edit
//! stream, the task generator, and the dataset readers (standard JSON lines, SED's `.pkl` +
//! `.index`, `.kds`). Tasks cross as lines of the standard format; the package turns them into
//! dicts.

use std::path::PathBuf;

use karel::data::dataset::{self, TaskIter};
use karel::data::edits::{self, op_stream};
use karel::data::generate::{accepts_any, GenConfig, Generator, Shard, STALL_CANDIDATES};
use karel::data::jsonl::task_to_line;
use karel::data::mutate::{mutate_n, MutatorConfig};
use karel::data::DataError;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::program::{program_arg, token_strings, vocabulary_tokens, Program};

/// Most mutations of one `mutate` call (as `karel mutate -n`).
pub const MAX_MUTATIONS: usize = 100;
/// Most cells of `editops`'s cost matrix (source length + 1) × (target length + 1), after the
/// common prefix and suffix are stripped: 128 MB.
pub const MAX_EDIT_CELLS: usize = 1 << 24;
/// Most tasks of one `generate` call: as Python dicts, about 2 GB (`karel gen` writes files of
/// any size).
pub const MAX_GENERATE: usize = 100_000;

/// A mutant of `program`: a chain of `n` mutations (1 to 100) of SED's AST mutator (Appendix D),
/// each different from the program and the earlier ones, drawn from `seed` as `karel mutate`
/// draws them. `compat_original=True` keeps the original mutator's quirks. Raises `ValueError`
/// when the program has no mutation site.
#[pyfunction]
#[pyo3(signature = (program, n = 1, seed = 0, compat_original = false))]
pub fn mutate(
    py: Python<'_>,
    program: &Bound<'_, PyAny>,
    n: usize,
    seed: u64,
    compat_original: bool,
) -> PyResult<Program> {
    if !(1..=MAX_MUTATIONS).contains(&n) {
        return Err(PyValueError::new_err(format!(
            "n = {n}: use 1 to {MAX_MUTATIONS} mutations"
        )));
    }
    let program = program_arg(py, program)?;
    let source = &program.compiled.program;
    let config = MutatorConfig { compat_original };
    let chain = py
        .detach(|| mutate_n(source, n, &mut ChaCha8Rng::seed_from_u64(seed), &config))
        .map_err(|e| {
            PyValueError::new_err(format!("cannot mutate `{}`: {e}", program_text(source)))
        })?;
    match chain.into_iter().last() {
        Some((_, mutant)) => Ok(Program::from_program(mutant)),
        None => Err(PyValueError::new_err("the mutator returned no program")),
    }
}

fn program_text(program: &karel::lang::Program) -> String {
    karel::lang::token::tokens_to_string(&program.tokens())
}

/// python-Levenshtein's `editops(source, target)` over token sequences, exactly: the same
/// `(op, source_position, target_position)` tuples, ties broken the same way. `source` and
/// `target` are strings of space-separated tokens, sequences of token strings or `Program`s; any
/// token strings compare (the vocabulary is not required).
#[pyfunction]
pub fn editops(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
) -> PyResult<Vec<(&'static str, usize, usize)>> {
    let source = token_strings(source)?;
    let target = token_strings(target)?;
    check_edit_size(source.len(), target.len())?;
    let ops = py.detach(|| edits::editops(&source, &target));
    Ok(ops.iter().map(|e| (e.op.name(), e.src, e.dst)).collect())
}

fn check_edit_size(source: usize, target: usize) -> PyResult<()> {
    if (source + 1).saturating_mul(target + 1) > MAX_EDIT_CELLS {
        return Err(PyValueError::new_err(format!(
            "sequences of {source} and {target} tokens: the edit table would exceed {MAX_EDIT_CELLS} cells"
        )));
    }
    Ok(())
}

/// The debugger's edit stream turning `source` into `target`: one `(op, source_position)` per
/// step, op being `KEEP`, `DELETE`, `INSERT[t]` or `REPLACE[t]` (the form `karel edits` prints),
/// without the final `</s>`. Both are token sequences of the Karel vocabulary (strings,
/// sequences of token strings, or `Program`s).
#[pyfunction]
pub fn edit_ops(
    py: Python<'_>,
    source: &Bound<'_, PyAny>,
    target: &Bound<'_, PyAny>,
) -> PyResult<Vec<(String, usize)>> {
    let source = vocabulary_tokens(source)?;
    let target = vocabulary_tokens(target)?;
    check_edit_size(source.len(), target.len())?;
    let stream = py.detach(|| op_stream(&source, &target));
    Ok(stream
        .iter()
        .map(|p| (p.op.to_string(), p.position))
        .collect())
}

/// `count` tasks of the generator as lines of the standard format: the same tasks, in the same
/// order, as `karel gen --count COUNT --seed SEED` with the same settings (`config_json`: the
/// generator settings as JSON, the form `karel gen --print-config` writes; empty for the
/// defaults).
#[pyfunction]
#[pyo3(signature = (count, seed, config_json))]
pub fn generate_lines(
    py: Python<'_>,
    count: usize,
    seed: u64,
    config_json: &str,
) -> PyResult<Vec<String>> {
    if count > MAX_GENERATE {
        return Err(PyValueError::new_err(format!(
            "count = {count}: one call generates at most {MAX_GENERATE} tasks (use several seeds, or `karel gen` for files)"
        )));
    }
    let config = if config_json.trim().is_empty() {
        GenConfig::new()
    } else {
        serde_json::from_str::<GenConfig>(config_json)
            .map_err(|e| PyValueError::new_err(format!("bad generator config: {e}")))?
    };
    config
        .validate()
        .map_err(|e| PyValueError::new_err(format!("bad generator config: {e}")))?;
    py.detach(|| {
        if count > 0 && !accepts_any(&config, seed) {
            return Err(PyValueError::new_err(
                "the generator settings rejected every probe candidate (every program crashed or \
                 timed out on its inputs, or changed none of them)",
            ));
        }
        let mut generator = Generator::new(config, seed, Shard::WHOLE);
        let mut lines = Vec::with_capacity(count);
        let mut last_accepted = 0;
        while lines.len() < count {
            let round = generator.next_round(count - lines.len());
            match round.last() {
                Some((_, next)) => last_accepted = *next,
                None if generator.next_index - last_accepted >= STALL_CANDIDATES => {
                    return Err(PyValueError::new_err(format!(
                        "no task was accepted in the last {} candidates: the settings reject \
                         almost every program",
                        generator.next_index - last_accepted
                    )))
                }
                None => {}
            }
            lines.extend(round.iter().map(|(task, _)| task_to_line(task)));
        }
        Ok(lines)
    })
}

/// Tasks of a dataset file, one standard-format line each; see `karel_sed.read_dataset`.
#[pyclass(module = "karel_sed", unsendable)]
pub struct TaskReader {
    tasks: TaskIter,
}

#[pymethods]
impl TaskReader {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self) -> PyResult<Option<String>> {
        match self.tasks.next() {
            None => Ok(None),
            Some(Ok(task)) => Ok(Some(task_to_line(&task))),
            Some(Err(e @ DataError::Io { .. })) => Err(PyOSError::new_err(e.to_string())),
            Some(Err(e)) => Err(PyValueError::new_err(e.to_string())),
        }
    }
}

/// Opens a dataset file; its extension names the format: `.jsonl`/`.json` standard JSON lines,
/// `.pkl` SED's pickles (with the `.index` beside), `.kds` our binary format.
#[pyfunction]
pub fn open_dataset(path: PathBuf) -> PyResult<TaskReader> {
    match dataset::open(&path, None) {
        Ok(tasks) => Ok(TaskReader { tasks }),
        Err(e @ DataError::Io { .. }) => Err(PyOSError::new_err(e.to_string())),
        Err(e) => Err(PyValueError::new_err(e.to_string())),
    }
}
