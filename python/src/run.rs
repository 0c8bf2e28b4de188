//! `run` and `RunResult`: one program on one world, optionally traced; and `compat_execute`, the
//! native half of `karel_sed.compat.KarelExecutor` (karel-for-synthesis's executor).

use karel::lang::{BlockKind, Token};
use karel::vm::{
    self, Event, EventKind, EventValue, Execution, OnFailure, Outcome, RunConfig, Stop, Trace,
    MAX_TRACE_EVENTS,
};
use numpy::PyArray3;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use pyo3::IntoPyObjectExt;

use crate::program::{program_arg, Program};
use crate::world::{check_world_shape, tensor_bytes, to_tensor, world_error, World};

/// What `run` returns.
///
/// - `status`: `"ok"`, `"crash"` (a failed action: `move` into a wall, `pickMarker` on an empty
///   cell, `putMarker` on 9 markers) or `"timeout"` (the step limit: every action, condition
///   evaluation and repeat tick is a step, and the one reaching the limit fails);
/// - `output`: the final `World` when ok, else None;
/// - `steps`: steps counted, the failing one included (a traced run goes on after a failed
///   action, as the reference's trace mode does, and counts those steps too);
/// - `failure`: `(action, token_position)` of the failed action on a crash, else None;
/// - with `trace=True`: `events`, the reference's trace events as `karel exec` writes them,
///   `(type, first_token, last_token, cond_value, success)`, truncated as the reference truncates
///   them; `timesteps`, each event's index into `states`; and `states`, the worlds of the trace:
///   `states[0]` is the input and `states[k]` the world after the k-th action. Without a trace
///   these three are None.
#[pyclass(module = "karel_sed", frozen, get_all)]
pub struct RunResult {
    status: &'static str,
    output: Option<Py<World>>,
    steps: u32,
    failure: Option<(&'static str, u32)>,
    events: Option<Py<PyList>>,
    timesteps: Option<Vec<u32>>,
    states: Option<Py<PyList>>,
}

#[pymethods]
impl RunResult {
    fn __repr__(&self) -> String {
        let events = match &self.timesteps {
            Some(t) => format!(", {} events", t.len()),
            None => String::new(),
        };
        format!(
            "RunResult(status={:?}, steps={}{events})",
            self.status, self.steps
        )
    }
}

/// A trace event as the `karel exec` tuple `(type, first_token, last_token, cond_value, success)`.
fn event_tuple<'py>(py: Python<'py>, event: &Event) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(
        py,
        [
            event.kind.name().into_bound_py_any(py)?,
            event.span.first.into_bound_py_any(py)?,
            event.span.last.into_bound_py_any(py)?,
            event_value(py, event.value)?,
            event.success.into_bound_py_any(py)?,
        ],
    )
}

fn event_value<'py>(py: Python<'py>, value: Option<EventValue>) -> PyResult<Bound<'py, PyAny>> {
    match value {
        None => Ok(py.None().into_bound(py)),
        Some(EventValue::Cond(b)) => b.into_bound_py_any(py),
        Some(EventValue::Remaining(n)) => n.into_bound_py_any(py),
    }
}

/// Runs a program on a world and returns a `RunResult`.
///
/// `program` is a `Program`, program text or a sequence of token strings (a syntax error raises
/// `KarelSyntaxError`); `world` a `World`. `max_steps` (default 1000, the reference's limit; at
/// most 2³² − 1) bounds the run. With `trace=True` the result also holds the trace; a trace keeps
/// at most 2²⁰ events (a longer one raises `ValueError`: lower `max_steps`). The GIL is released
/// while the program runs.
#[pyfunction]
#[pyo3(signature = (program, world, max_steps = vm::DEFAULT_MAX_STEPS, trace = false))]
pub fn run(
    py: Python<'_>,
    program: &Bound<'_, PyAny>,
    world: PyRef<'_, World>,
    max_steps: u32,
    trace: bool,
) -> PyResult<RunResult> {
    let program = program_arg(py, program)?;
    let input = world.world.clone();
    let chunk = &program.compiled.chunk;
    if !trace {
        let (execution, output) = py.detach(|| vm::run(chunk, &input, max_steps));
        return result(py, &execution, output, None);
    }
    let traced = py
        .detach(|| vm::run_with_trace_limited(chunk, &input, max_steps, MAX_TRACE_EVENTS))
        .map_err(|e| {
            PyValueError::new_err(format!("{e}: lower max_steps or run without a trace"))
        })?;
    result(py, &traced.execution, traced.world, Some(&traced.trace))
}

fn result(
    py: Python<'_>,
    execution: &Execution,
    output: karel::world::World,
    trace: Option<&Trace>,
) -> PyResult<RunResult> {
    let (status, failure) = match execution.outcome() {
        Outcome::Ok => ("ok", None),
        Outcome::Crash(f) => ("crash", Some((f.action.name(), f.at.span.first))),
        Outcome::Timeout => ("timeout", None),
    };
    let output = match status {
        "ok" => Some(Py::new(py, World::new(output))?),
        _ => None,
    };
    let (events, timesteps, states) = match trace {
        None => (None, None, None),
        Some(trace) => {
            let events = PyList::empty(py);
            for event in trace.events() {
                events.append(event_tuple(py, event)?)?;
            }
            let states = PyList::empty(py);
            for state in trace.states() {
                states.append(Py::new(py, World::new(state))?)?;
            }
            let timesteps = trace.events().iter().map(|e| e.timestep).collect();
            (
                Some(events.unbind()),
                Some(timesteps),
                Some(states.unbind()),
            )
        }
    };
    Ok(RunResult {
        status,
        output,
        steps: execution.steps,
        failure,
        events,
        timesteps,
        states,
    })
}

/// karel-for-synthesis's `cond_span` of a block event: the condition's tokens inside `c( … c)`
/// (`not` to its inner `c)` for a negation), or the `R=n` token of a repeat.
fn cond_span(tokens: &[Token], kind: BlockKind, keyword: usize) -> (usize, usize) {
    match kind {
        BlockKind::Repeat => (keyword + 1, keyword + 1),
        _ => {
            let first = keyword + 2;
            if tokens.get(first) == Some(&Token::Not) {
                (first, first + 3)
            } else {
                (first, first)
            }
        }
    }
}

/// Outcome codes of `compat_execute`.
const COMPAT_OK: u8 = 0;
const COMPAT_RUNTIME_ERROR: u8 = 1;

/// The native half of `karel_sed.compat.KarelExecutor.execute`: runs `program` on the bool
/// tensor `grid` (15, 18, 18) as karel-for-synthesis 1.4.0 does and returns
/// `(code, output, grids, events)`: `code` 0 with the output tensor, or 1 (the reference raises
/// `ExecutorRuntimeException` untraced, returns no result traced); `grids` and `events` (as
/// `(timestep, type, span, cond_span, cond_value, success)`) only with `record_trace`.
#[pyfunction]
#[pyo3(signature = (program, grid, record_trace, strict, action_limit))]
#[allow(clippy::type_complexity)]
pub fn compat_execute<'py>(
    py: Python<'py>,
    program: PyRef<'py, Program>,
    grid: &Bound<'py, PyAny>,
    record_trace: bool,
    strict: bool,
    action_limit: u32,
) -> PyResult<(
    u8,
    Option<Bound<'py, PyArray3<bool>>>,
    Option<Bound<'py, PyList>>,
    Option<Bound<'py, PyList>>,
)> {
    let tensor = tensor_bytes(grid, "the grid")?;
    check_world_shape(tensor.shape(), 0, "the grid")?;
    let input = karel::world::World::from_bytes(&tensor.bytes()).map_err(world_error)?;
    let compiled = &program.compiled;
    if !record_trace {
        let mut world = input;
        let config = RunConfig {
            max_steps: action_limit,
            on_failure: if strict {
                OnFailure::Stop
            } else {
                OnFailure::Continue
            },
        };
        let execution = vm::Vm::new().run(&compiled.chunk, &mut world, &config);
        let failed = execution.stop == Stop::TimedOut || (strict && execution.stop == Stop::Failed);
        if failed {
            return Ok((COMPAT_RUNTIME_ERROR, None, None, None));
        }
        return Ok((COMPAT_OK, Some(to_tensor(py, &world)?), None, None));
    }
    let traced =
        vm::run_with_trace_limited(&compiled.chunk, &input, action_limit, MAX_TRACE_EVENTS)
            .map_err(|e| PyValueError::new_err(format!("{e}: lower the action limit")))?;
    let tokens = compiled.program.tokens();
    let events = PyList::empty(py);
    for event in traced.trace.events() {
        let span = (event.span.first, event.span.last);
        let (cond, value) = match event.kind {
            EventKind::Action(_) => (py.None().into_bound(py), py.None().into_bound(py)),
            EventKind::Block(kind) => (
                cond_span(&tokens, kind, event.span.first as usize).into_bound_py_any(py)?,
                event_value(py, event.value)?,
            ),
        };
        events.append(PyTuple::new(
            py,
            [
                event.timestep.into_bound_py_any(py)?,
                event.kind.name().into_bound_py_any(py)?,
                span.into_bound_py_any(py)?,
                cond,
                value,
                event.success.into_bound_py_any(py)?,
            ],
        )?)?;
    }
    let grids = PyList::empty(py);
    for state in traced.trace.states() {
        grids.append(to_tensor(py, &state)?)?;
    }
    let finished = traced.trace.end() == vm::TraceEnd::Finished;
    let (code, output) = if finished {
        (COMPAT_OK, Some(to_tensor(py, &traced.world)?))
    } else {
        (COMPAT_RUNTIME_ERROR, None)
    };
    Ok((code, output, Some(grids), Some(events)))
}
