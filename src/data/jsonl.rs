//! The standard Karel dataset format (Bunel et al. 2018): one JSON object per line.
//!
//! ```json
//! {"guid": "43678876f276c054",
//!  "program_tokens": ["DEF", "run", "m(", "move", "m)"],
//!  "program_json": {"run": [{"type": "move"}]},
//!  "examples": [{"inpgrid_tensor": "383:1.0 …", "outgrid_tensor": "384:1.0 …",
//!                "inpgrid_json": {…}, "outgrid_json": {…}, "actions": ["move"]}, …]}
//! ```
//!
//! Reading needs `program_tokens` and, per example, an input and an output grid, each as a tensor
//! string or a grid object; `guid`, `program_json` and `actions` are optional. Where a record says
//! a thing twice (`program_tokens` and `program_json`, a tensor string and a grid object), the two
//! must agree, or the record is malformed. Writing fills every field. `program_json` uses Bunel's shape: a top-level `run` list,
//! `condition` for conditions, integer `times`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::task::{actions_of, Example, Task};
use super::DataError;
use crate::lang::{self, Cond, ParseOptions, Program, Stmt};
use crate::world::json::GridJson;
use crate::world::World;

#[derive(Debug, Deserialize)]
struct RecordIn {
    #[serde(default)]
    guid: Option<String>,
    program_tokens: Vec<String>,
    #[serde(default)]
    program_json: Option<Value>,
    examples: Vec<ExampleIn>,
}

#[derive(Debug, Deserialize)]
struct ExampleIn {
    #[serde(default)]
    inpgrid_tensor: Option<String>,
    #[serde(default)]
    outgrid_tensor: Option<String>,
    #[serde(default)]
    inpgrid_json: Option<GridJson>,
    #[serde(default)]
    outgrid_json: Option<GridJson>,
}

#[derive(Debug, Serialize)]
struct RecordOut<'a> {
    guid: &'a str,
    program_tokens: Vec<&'static str>,
    program_json: Value,
    examples: Vec<ExampleOut>,
}

#[derive(Debug, Serialize)]
struct ExampleOut {
    inpgrid_tensor: String,
    outgrid_tensor: String,
    inpgrid_json: GridJson,
    outgrid_json: GridJson,
    actions: Vec<&'static str>,
}

/// A grid from its tensor string or its grid object; when a record holds both, they must
/// describe the same world.
fn grid(tensor: &Option<String>, json: &Option<GridJson>, what: &str) -> Result<World, String> {
    let from_tensor =
        |text: &str| World::from_tensor_string(text).map_err(|e| format!("{what}: {e}"));
    let from_json =
        |grid: &GridJson| World::from_grid_json(grid).map_err(|e| format!("{what}: {e}"));
    match (tensor, json) {
        (Some(text), Some(grid)) => {
            let world = from_tensor(text)?;
            if from_json(grid)? != world {
                return Err(format!(
                    "{what}: the tensor string and the grid object describe different worlds"
                ));
            }
            Ok(world)
        }
        (Some(text), None) => from_tensor(text),
        (None, Some(grid)) => from_json(grid),
        (None, None) => Err(format!("{what}: neither a tensor string nor a grid object")),
    }
}

/// Reads Bunel's `program_json` (the shape [`program_json`] writes).
fn program_from_json(value: &Value) -> Result<Program, String> {
    fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
        v.get(key).ok_or_else(|| format!("`{key}` is missing"))
    }
    fn body(v: &Value) -> Result<Vec<Stmt>, String> {
        v.as_array()
            .ok_or("a body is not a list")?
            .iter()
            .map(stmt)
            .collect()
    }
    fn cond(v: &Value) -> Result<Cond, String> {
        let kind = field(v, "type")?
            .as_str()
            .ok_or("a condition type is not a string")?;
        if kind == "not" {
            let inner = cond(field(v, "condition")?)?;
            if inner.negated {
                return Err("`not` of a negated condition".into());
            }
            return Ok(Cond {
                negated: true,
                ..inner
            });
        }
        let atom = crate::lang::Atom::ALL
            .into_iter()
            .find(|a| a.name() == kind)
            .ok_or_else(|| format!("unknown condition `{kind}`"))?;
        Ok(Cond {
            atom,
            negated: false,
        })
    }
    fn stmt(v: &Value) -> Result<Stmt, String> {
        let kind = field(v, "type")?
            .as_str()
            .ok_or("a statement type is not a string")?;
        if let Some(action) = crate::lang::Action::ALL
            .into_iter()
            .find(|a| a.name() == kind)
        {
            return Ok(Stmt::Action(action));
        }
        Ok(match kind {
            "if" => Stmt::If {
                cond: cond(field(v, "condition")?)?,
                body: body(field(v, "body")?)?,
            },
            "ifElse" => Stmt::IfElse {
                cond: cond(field(v, "condition")?)?,
                then_body: body(field(v, "ifBody")?)?,
                else_body: body(field(v, "elseBody")?)?,
            },
            "while" => Stmt::While {
                cond: cond(field(v, "condition")?)?,
                body: body(field(v, "body")?)?,
            },
            "repeat" => {
                let times = field(v, "times")?
                    .as_u64()
                    .and_then(|n| u8::try_from(n).ok())
                    .and_then(crate::lang::RepeatCount::new)
                    .ok_or("`times` is not a repeat count of 2 to 10")?;
                Stmt::Repeat {
                    count: times,
                    body: body(field(v, "body")?)?,
                }
            }
            other => return Err(format!("unknown statement `{other}`")),
        })
    }
    Ok(Program::new(body(field(value, "run")?)?))
}

/// Parses one line of the standard format. `line_number` only names a guid when the record has
/// none.
pub fn parse_task(line: &str, options: &ParseOptions) -> Result<Task, String> {
    let record: RecordIn = serde_json::from_str(line).map_err(|e| e.to_string())?;
    let program = lang::parse_program(&record.program_tokens.join(" "), options)
        .map_err(|e| format!("program_tokens: {e}"))?;
    // serde_json bounds the nesting of `program_json` (128 levels), so reading it cannot
    // overflow the stack.
    if let Some(json) = &record.program_json {
        let from_json = program_from_json(json).map_err(|e| format!("program_json: {e}"))?;
        if from_json != program {
            return Err(format!(
                "program_tokens and program_json describe different programs (`{program}` and \
                 `{from_json}`)"
            ));
        }
    }
    let examples = record
        .examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            Ok(Example {
                input: grid(
                    &e.inpgrid_tensor,
                    &e.inpgrid_json,
                    &format!("example {i} input"),
                )?,
                output: grid(
                    &e.outgrid_tensor,
                    &e.outgrid_json,
                    &format!("example {i} output"),
                )?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Task {
        guid: record.guid.unwrap_or_default(),
        program,
        examples,
    })
}

/// One line of the standard format (without the newline).
pub fn task_to_line(task: &Task) -> String {
    let record = RecordOut {
        guid: &task.guid,
        program_tokens: task.program.tokens().iter().map(|t| t.text()).collect(),
        program_json: program_json(&task.program),
        examples: task
            .examples
            .iter()
            .map(|e| ExampleOut {
                inpgrid_tensor: e.input.to_tensor_string(),
                outgrid_tensor: e.output.to_tensor_string(),
                inpgrid_json: e.input.to_grid_json(),
                outgrid_json: e.output.to_grid_json(),
                actions: actions_of(&task.program, &e.input)
                    .into_iter()
                    .map(|a| a.name())
                    .collect(),
            })
            .collect(),
    };
    serde_json::to_string(&record).unwrap_or_default()
}

/// Bunel's `program_json` of a program.
pub fn program_json(program: &Program) -> Value {
    fn cond(c: Cond) -> Value {
        let atom = json!({"type": c.atom.name()});
        if c.negated {
            json!({"type": "not", "condition": atom})
        } else {
            atom
        }
    }
    fn body(stmts: &[Stmt]) -> Value {
        Value::Array(stmts.iter().map(stmt).collect())
    }
    fn stmt(s: &Stmt) -> Value {
        match s {
            Stmt::Action(a) => json!({"type": a.name()}),
            Stmt::If { cond: c, body: b } => {
                json!({"type": "if", "condition": cond(*c), "body": body(b)})
            }
            Stmt::IfElse {
                cond: c,
                then_body,
                else_body,
            } => json!({"type": "ifElse", "condition": cond(*c),
                "ifBody": body(then_body), "elseBody": body(else_body)}),
            Stmt::While { cond: c, body: b } => {
                json!({"type": "while", "condition": cond(*c), "body": body(b)})
            }
            Stmt::Repeat { count, body: b } => {
                json!({"type": "repeat", "times": count.get(), "body": body(b)})
            }
        }
    }
    json!({"run": body(&program.body)})
}

/// Reads the tasks of a standard-format file, one `Result` per non-empty line, each error naming
/// the file and line. A line that is not UTF-8 is a malformed record (so `--skip-invalid` skips
/// it); a byte-order mark at the start of the file is ignored.
pub struct JsonlReader {
    path: PathBuf,
    reader: BufReader<Box<dyn io::Read + Send>>,
    line: Vec<u8>,
    line_number: usize,
    options: ParseOptions,
}

impl JsonlReader {
    /// Opens `path` (`-` for standard input).
    pub fn open(path: &Path, options: ParseOptions) -> Result<JsonlReader, DataError> {
        let input: Box<dyn io::Read + Send> = if path == Path::new("-") {
            Box::new(io::stdin())
        } else {
            Box::new(File::open(path).map_err(|e| DataError::io(path, e))?)
        };
        Ok(JsonlReader {
            path: path.to_path_buf(),
            reader: BufReader::with_capacity(1 << 20, input),
            line: Vec::new(),
            line_number: 0,
            options,
        })
    }

    fn record_error(&self, message: String) -> DataError {
        DataError::Record {
            location: format!("{}:{}", self.path.display(), self.line_number),
            message,
        }
    }
}

impl Iterator for JsonlReader {
    type Item = Result<Task, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            self.line.clear();
            match self.reader.read_until(b'\n', &mut self.line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => return Some(Err(DataError::io(&self.path, e))),
            }
            self.line_number += 1;
            let mut bytes = &self.line[..];
            if self.line_number == 1 {
                bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
            }
            let line = match std::str::from_utf8(bytes) {
                Ok(line) => line,
                Err(e) => {
                    return Some(Err(self.record_error(format!(
                        "the line is not valid UTF-8 (byte {} of the line)",
                        e.valid_up_to() + 1
                    ))))
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(
                parse_task(line.trim_end(), &self.options)
                    .map_err(|message| self.record_error(message)),
            );
        }
    }
}

/// Writes tasks in the standard format.
pub fn write_tasks<'a, W: Write>(
    tasks: impl IntoIterator<Item = &'a Task>,
    out: &mut W,
) -> io::Result<()> {
    for task in tasks {
        out.write_all(task_to_line(task).as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
