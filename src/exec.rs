//! The batch execution protocol of `karel exec`: JSON lines in, one JSON line out per line in.
//!
//! Request, one per line:
//!
//! ```json
//! {"program": "DEF run m( move m)", "input": [indices…] | "<ASCII map>", "trace": true, "max_steps": 1000}
//! ```
//!
//! `trace` (default false) and `max_steps` (default 1000) are optional. `input` is the sorted list of
//! set indices of the world tensor (`channel * 324 + row * 18 + col`), or an ASCII map
//! ([`crate::world::ascii`]).
//!
//! Response, in the same order as the requests:
//!
//! ```json
//! {"status": "ok", "output": [...], "events": [["move", 3, 3, null, true]]}
//! {"status": "error", "error": "crash", "message": "...", "events": [...]}
//! {"status": "error", "error": "timeout", "message": "..."}
//! {"status": "syntax_error", "message": "..."}
//! {"status": "invalid_input", "message": "..."}
//! ```
//!
//! - `status`/`error` are the strict verdict of the reference's evaluation executor: a failed
//!   action is a `crash`, reaching the step limit a `timeout`.
//! - `output` (only with `ok`) is the final world, in the encoding of the input.
//! - `events` (only when `trace` is true and the program parsed) are the reference's trace events
//!   `[type, first_token, last_token, cond_value, success]` of the run in trace mode, truncated as
//!   the reference truncates them. When that run times out they are the reference's
//!   timeout-heuristic events (the conformance corpus leaves them out in that case).
//! - Resources are bounded per request: a run takes at most `max_steps` steps (at most
//!   2³² − 1, about 20 s), and a traced run keeps at most [`MAX_TRACE_EVENTS`] events in memory
//!   whatever its step limit (a run the truncation rules cut early, such as a timeout blamed on
//!   an early loop, is answered exactly); a trace that would hold more events gets
//!   `invalid_input`. Messages quote at most a short prefix of an unknown word, so memory stays
//!   proportional to the line.
//! - A line that is not a valid request gets `invalid_input` and the stream goes on.
//!
//! [`run_stream`] reads requests on one thread and runs them in batches on all cores, keeping the
//! order; memory stays bounded whatever the input size, and a batch is answered as soon as the
//! input pauses, so the protocol also works interactively, line by line.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, BufRead, Write};
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::lang::{self, ParseOptions};
use crate::vm::{
    self, Chunk, Event, EventValue, Outcome, RunConfig, Vm, DEFAULT_MAX_STEPS, MAX_TRACE_EVENTS,
};
use crate::world::World;

/// A request line. The program borrows from the line when it holds no escapes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Request<'a> {
    #[serde(borrow)]
    program: Cow<'a, str>,
    input: WorldInput,
    #[serde(default)]
    trace: bool,
    #[serde(default)]
    max_steps: Option<u32>,
}

/// A world as indices or as an ASCII map; the output uses the same encoding.
#[derive(Debug)]
enum WorldInput {
    Indices(Vec<u64>),
    Ascii(String),
}

/// Reads an array of indices or a string directly (an untagged enum would buffer the value).
impl<'de> Deserialize<'de> for WorldInput {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InputVisitor;

        impl<'de> serde::de::Visitor<'de> for InputVisitor {
            type Value = WorldInput;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of tensor indices or an ASCII map")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<WorldInput, A::Error> {
                let mut indices = Vec::with_capacity(seq.size_hint().unwrap_or(128));
                while let Some(index) = seq.next_element::<u64>()? {
                    indices.push(index);
                }
                Ok(WorldInput::Indices(indices))
            }

            fn visit_str<E: serde::de::Error>(self, map: &str) -> Result<WorldInput, E> {
                Ok(WorldInput::Ascii(map.to_string()))
            }
        }

        deserializer.deserialize_any(InputVisitor)
    }
}

/// A response line.
#[derive(Debug, Default, Serialize)]
struct Response {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<WorldOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    events: Option<Vec<EventJson>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WorldOutput {
    Indices(Vec<u32>),
    Ascii(String),
}

/// `[type, first_token, last_token, cond_value, success]`.
#[derive(Debug, Serialize)]
struct EventJson(&'static str, u32, u32, Option<ValueJson>, bool);

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum ValueJson {
    Bool(bool),
    Count(u8),
}

/// Converts trace events to the protocol's arrays.
fn events_json(events: &[Event]) -> Vec<EventJson> {
    events
        .iter()
        .map(|e| {
            EventJson(
                e.kind.name(),
                e.span.first,
                e.span.last,
                e.value.map(|v| match v {
                    EventValue::Cond(b) => ValueJson::Bool(b),
                    EventValue::Remaining(n) => ValueJson::Count(n),
                }),
                e.success,
            )
        })
        .collect()
}

/// The most recently compiled programs of a thread, keyed by source text. Requests usually
/// repeat a program over several worlds in a row (a task's examples, a search's candidates), and
/// the batches hand consecutive lines to the same thread; a small recency cache catches those
/// repeats at a fixed memory cost. (A large cache costs more than it saves on streams of distinct
/// programs: its growth alone outweighs the parsing it avoids.)
type CacheEntry = (String, Result<Arc<Chunk>, String>);

const CACHE_SIZE: usize = 16;

thread_local! {
    static RECENT: RefCell<VecDeque<CacheEntry>> = RefCell::new(VecDeque::with_capacity(CACHE_SIZE));
    static VM: RefCell<Vm> = RefCell::new(Vm::new());
}

/// Longest program text the cache keeps (real programs are far shorter), so that its memory
/// stays small whatever the input.
const CACHEABLE_BYTES: usize = 4096;

fn compiled(program: &str) -> Result<Arc<Chunk>, String> {
    let compile = || {
        lang::parse_program(program, &ParseOptions::default())
            .map(|program| Arc::new(vm::compile(&program)))
            .map_err(|e| e.to_string())
    };
    if program.len() > CACHEABLE_BYTES {
        return compile();
    }
    RECENT.with(|recent| {
        let mut recent = recent.borrow_mut();
        if let Some((_, hit)) = recent.iter().find(|(source, _)| source == program) {
            return hit.clone();
        }
        let result = compile();
        if recent.len() == CACHE_SIZE {
            recent.pop_front();
        }
        recent.push_back((program.to_string(), result.clone()));
        result
    })
}

/// Longest message of an answer, in characters: messages that quote the request (a JSON error
/// naming an unknown field, a bad line of a map) are cut, so that an answer stays short whatever
/// the request.
pub const MAX_MESSAGE_CHARS: usize = 500;

fn invalid(message: String) -> Response {
    let message = match message.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    };
    Response {
        status: "invalid_input",
        message: Some(message),
        ..Response::default()
    }
}

/// Answers one request line.
pub fn respond(line: &str) -> String {
    let response = answer(line);
    // Serialising these plain structures cannot fail.
    serde_json::to_string(&response).unwrap_or_else(|e| {
        format!(r#"{{"status":"invalid_input","message":"cannot encode the response: {e}"}}"#)
    })
}

fn answer(line: &str) -> Response {
    let request: Request = match serde_json::from_str(line) {
        Ok(request) => request,
        Err(_) if line.trim().is_empty() => {
            return invalid("empty line: expected a JSON request".to_string())
        }
        Err(e) => return invalid(format!("not a request: {e}")),
    };
    let world = match &request.input {
        WorldInput::Indices(indices) => World::from_indices(indices.iter().copied()),
        WorldInput::Ascii(map) => World::from_ascii(map),
    };
    let world = match world {
        Ok(world) => world,
        Err(e) => return invalid(format!("invalid input world: {e}")),
    };
    let chunk = match compiled(&request.program) {
        Ok(chunk) => chunk,
        Err(message) => {
            return Response {
                status: "syntax_error",
                message: Some(message),
                ..Response::default()
            }
        }
    };
    let max_steps = request.max_steps.unwrap_or(DEFAULT_MAX_STEPS);
    let (outcome, final_world, events) = if request.trace {
        let run = match vm::run_with_trace_limited(&chunk, &world, max_steps, MAX_TRACE_EVENTS) {
            Ok(run) => run,
            Err(too_long) => {
                return invalid(format!("{too_long}: lower max_steps or ask for no trace"))
            }
        };
        (
            run.execution.outcome(),
            run.world,
            Some(events_json(run.trace.events())),
        )
    } else {
        let mut final_world = world;
        let execution = VM.with(|machine| {
            machine.borrow_mut().run(
                &chunk,
                &mut final_world,
                &RunConfig::with_max_steps(max_steps),
            )
        });
        (execution.outcome(), final_world, None)
    };
    match outcome {
        Outcome::Ok => Response {
            status: "ok",
            output: Some(match request.input {
                WorldInput::Indices(_) => WorldOutput::Indices(final_world.to_indices()),
                WorldInput::Ascii(_) => WorldOutput::Ascii(final_world.to_ascii()),
            }),
            events,
            ..Response::default()
        },
        Outcome::Crash(failure) => Response {
            status: "error",
            error: Some("crash"),
            events,
            message: Some(format!(
                "`{}` failed at token {}",
                failure.action.name(),
                failure.at.span.first
            )),
            ..Response::default()
        },
        Outcome::Timeout => Response {
            status: "error",
            error: Some("timeout"),
            events,
            message: Some(format!("the step limit of {max_steps} was reached")),
            ..Response::default()
        },
    }
}

/// What a stream processed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    pub lines: u64,
}

/// Reads requests from `input` and writes one response per line to `output`, in order. Each
/// block of complete lines that a read returns (at most the reader's buffer, whatever has
/// arrived on a pipe) is answered in parallel on the threads of `pool`, written and flushed before
/// the next read: memory stays bounded and an interactive client gets each answer at once.
/// Returns when the input ends.
pub fn run_stream<R, W>(
    input: R,
    output: &mut W,
    pool: &rayon::ThreadPool,
) -> io::Result<StreamStats>
where
    R: BufRead,
    W: Write,
{
    let mut input = input;
    let mut stats = StreamStats::default();
    // Complete lines not yet answered, and the start of an incomplete one.
    let mut block: Vec<u8> = Vec::new();
    loop {
        let available = input.fill_buf()?;
        if available.is_empty() {
            if !block.is_empty() {
                stats.lines += answer_block(&block, output, pool)?;
            }
            return Ok(stats);
        }
        let taken = available.len();
        match available.iter().rposition(|&b| b == b'\n') {
            Some(last_newline) => {
                block.extend_from_slice(&available[..=last_newline]);
                input.consume(last_newline + 1);
                stats.lines += answer_block(&block, output, pool)?;
                block.clear();
            }
            None => {
                block.extend_from_slice(available);
                input.consume(taken);
            }
        }
    }
}

/// Answers the lines of `block` (split at `\n`, a final `\r` removed) in parallel and writes the
/// responses in order. Returns the number of lines.
fn answer_block<W: Write>(
    block: &[u8],
    output: &mut W,
    pool: &rayon::ThreadPool,
) -> io::Result<u64> {
    let block = block.strip_suffix(b"\n").unwrap_or(block);
    let lines: Vec<&[u8]> = block
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
        .collect();
    let responses: Vec<String> = pool.install(|| {
        lines
            .par_iter()
            .map(|line| match std::str::from_utf8(line) {
                Ok(line) => respond(line),
                Err(e) => serde_json::to_string(&invalid(format!("the line is not UTF-8: {e}")))
                    .unwrap_or_default(),
            })
            .collect()
    });
    for response in &responses {
        output.write_all(response.as_bytes())?;
        output.write_all(b"\n")?;
    }
    output.flush()?;
    Ok(lines.len() as u64)
}
