//! SED's preprocessed dataset: `train.pkl`, `val.pkl`, `test.pkl` and their `.index` files.
//!
//! Each `.pkl` is a sequence of pickled dicts `{id, guid, examples: [{in, out}] × 6, code}`, written
//! by Python 2 (protocol 2): `in` and `out` are sorted index arrays (numpy `uint16` arrays, or
//! lists), `code` the token list; strings are Python 2 byte strings, read as Latin-1. The `.index`
//! file holds one little-endian u64 byte offset per record.
//!
//! This module holds a small pickle interpreter: the opcodes of protocols 0–4 that such files
//! use, numpy arrays rebuilt from `_reconstruct` + `BUILD`, and nothing that would run code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::task::{Example, Task};
use super::DataError;
use crate::lang::{self, ParseOptions};
use crate::world::World;

/// A value of the pickle machine.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A text string (Python 3 `str`, Python 2 `unicode`).
    Str(String),
    /// A byte string (Python 2 `str`, Python 3 `bytes`).
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// A class or function named by `GLOBAL`.
    Global {
        module: String,
        name: String,
    },
    /// The result of calling a global (`REDUCE`/`NEWOBJ`), with the state given by `BUILD`.
    Object {
        callable: Box<Value>,
        args: Box<Value>,
        state: Option<Box<Value>>,
    },
    Mark,
}

impl Value {
    /// The text of a string, byte strings read as Latin-1.
    pub fn text(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(s.clone()),
            Value::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
            _ => None,
        }
    }

    /// The value under `key` in a dict with string keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Dict(items) => items
                .iter()
                .find(|(k, _)| k.text().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The elements of a list or tuple.
    pub fn items(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) | Value::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// The integers of a list of ints or of a one-dimensional numpy integer array.
    pub fn integers(&self) -> Result<Vec<i64>, String> {
        match self {
            Value::List(items) | Value::Tuple(items) => items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Ok(*i),
                    other => Err(format!("expected an integer, found {}", kind(other))),
                })
                .collect(),
            Value::Object {
                callable, state, ..
            } if is_global(callable, "_reconstruct") => numpy_integers(state.as_deref()),
            other => Err(format!("expected an index array, found {}", kind(other))),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) | Value::Bytes(_) => "a string",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Global { .. } => "a global",
        Value::Object { .. } => "an object",
        Value::Mark => "a mark",
    }
}

fn is_global(value: &Value, wanted: &str) -> bool {
    matches!(value, Value::Global { name, .. } if name == wanted)
}

/// Decodes a numpy array's `BUILD` state `(version, shape, dtype, fortran, data)`.
fn numpy_integers(state: Option<&Value>) -> Result<Vec<i64>, String> {
    let state = state
        .and_then(Value::items)
        .ok_or("numpy array without state")?;
    let (shape, dtype, data) = match state {
        [_, shape, dtype, _, data] => (shape, dtype, data),
        _ => return Err("unexpected numpy array state".into()),
    };
    let len = match shape.items() {
        Some([Value::Int(n)]) => *n as usize,
        Some([]) => 1,
        _ => return Err("only one-dimensional arrays are supported".into()),
    };
    let (descr, big_endian) = match dtype {
        Value::Object { args, state, .. } => {
            let descr = args
                .items()
                .and_then(|a| a.first())
                .and_then(Value::text)
                .ok_or("numpy dtype without a type code")?;
            let order = state
                .as_deref()
                .and_then(Value::items)
                .and_then(|s| s.get(1))
                .and_then(Value::text);
            let big = descr.starts_with('>') || order.as_deref() == Some(">");
            (
                descr.trim_start_matches(['<', '>', '|', '=']).to_string(),
                big,
            )
        }
        _ => return Err("numpy array without a dtype".into()),
    };
    let (width, signed) = match descr.as_str() {
        "u1" | "uint8" | "B" => (1, false),
        "u2" | "uint16" | "H" => (2, false),
        "u4" | "uint32" | "I" => (4, false),
        "u8" | "uint64" | "Q" => (8, false),
        "i1" | "int8" | "b" => (1, true),
        "i2" | "int16" | "h" => (2, true),
        "i4" | "int32" | "i" => (4, true),
        "i8" | "int64" | "q" => (8, true),
        other => return Err(format!("unsupported numpy dtype `{other}`")),
    };
    let bytes = raw_bytes(data).ok_or("numpy array without data")?;
    if bytes.len() != len * width {
        return Err(format!(
            "numpy array of {len} × {width} bytes holds {} bytes",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(width)
        .map(|chunk| {
            let mut raw = [0u8; 8];
            if big_endian {
                for (i, b) in chunk.iter().rev().enumerate() {
                    raw[i] = *b;
                }
            } else {
                raw[..width].copy_from_slice(chunk);
            }
            let unsigned = u64::from_le_bytes(raw);
            if signed && width < 8 && unsigned >> (8 * width - 1) & 1 == 1 {
                (unsigned | (!0u64 << (8 * width))) as i64
            } else {
                unsigned as i64
            }
        })
        .collect())
}

/// The bytes of a byte string, however it was pickled: raw (`BINBYTES`, Python 2 strings),
/// as Latin-1 text, or as Python 3's protocol-2 form `_codecs.encode(text, 'latin1')`.
fn raw_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::Bytes(b) => Some(b.clone()),
        Value::Str(s) => Some(s.chars().map(|c| c as u32 as u8).collect()),
        Value::Object { callable, args, .. } if is_global(callable, "encode") => {
            args.items().and_then(|a| a.first()).and_then(raw_bytes)
        }
        _ => None,
    }
}

/// Unpickles one object starting at `bytes[0]`; returns it and the number of bytes read.
pub fn unpickle(bytes: &[u8]) -> Result<(Value, usize), String> {
    let mut m = Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
    };
    m.run().map(|v| (v, m.at))
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl Machine<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let mut raw = [0u8; 8];
        raw[..n].copy_from_slice(self.take(n)?);
        Ok(u64::from_le_bytes(raw))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| format!("unterminated line at byte {}", self.at))?;
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        self.at += end + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "stack underflow".to_string())
    }

    /// Pops everything above the topmost mark, and the mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or("no mark on the stack")?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "stack underflow".to_string())
    }

    fn put(&mut self, key: u32) -> Result<(), String> {
        let value = self.stack.last().ok_or("memoizing an empty stack")?.clone();
        self.memo.insert(key, value);
        Ok(())
    }

    fn get(&mut self, key: u32) -> Result<(), String> {
        let value = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("memo key {key} is not set"))?;
        self.stack.push(value);
        Ok(())
    }

    fn run(&mut self) -> Result<Value, String> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Value::Mark),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Dict(pairs(items)?));
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n {
                        return Err("stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    match self.top()? {
                        Value::Dict(items) => items.push((key, value)),
                        _ => return Err("SETITEM on a non-dict".into()),
                    }
                }
                b'u' => {
                    let items = pairs(self.pop_mark()?)?;
                    match self.top()? {
                        Value::Dict(existing) => existing.extend(items),
                        _ => return Err("SETITEMS on a non-dict".into()),
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    match self.top()? {
                        Value::List(items) => items.push(value),
                        _ => return Err("APPEND on a non-list".into()),
                    }
                }
                b'e' => {
                    let values = self.pop_mark()?;
                    match self.top()? {
                        Value::List(items) => items.extend(values),
                        _ => return Err("APPENDS on a non-list".into()),
                    }
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.stack.push(Value::Int(v as i64));
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.stack.push(Value::Int(v as i64));
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a => {
                    let n = self.uint(1)? as usize;
                    let raw = self.take(n)?;
                    if n > 8 {
                        return Err("integer too large".into());
                    }
                    let mut bytes = [0u8; 8];
                    bytes[..n].copy_from_slice(raw);
                    if n > 0 && raw[n - 1] & 0x80 != 0 {
                        bytes[n..].fill(0xff);
                    }
                    self.stack.push(Value::Int(i64::from_le_bytes(bytes)));
                }
                b'I' => {
                    let text = self.line()?;
                    let value = match text.as_str() {
                        "00" => Value::Bool(false),
                        "01" => Value::Bool(true),
                        t => Value::Int(t.parse().map_err(|_| format!("bad INT `{t}`"))?),
                    };
                    self.stack.push(value);
                }
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'G' => {
                    let raw: [u8; 8] = self.take(8)?.try_into().map_err(|_| "bad float")?;
                    self.stack.push(Value::Float(f64::from_be_bytes(raw)));
                }
                b'U' | b'T' | b'C' | b'B' => {
                    let n = self.uint(if matches!(op, b'U' | b'C') { 1 } else { 4 })? as usize;
                    let raw = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(raw));
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        0x8c => 1,
                        b'X' => 4,
                        _ => 8,
                    };
                    let n = self.uint(width)? as usize;
                    let text =
                        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "bad UTF-8")?;
                    self.stack.push(Value::Str(text));
                }
                b'q' => {
                    let key = self.uint(1)? as u32;
                    self.put(key)?;
                }
                b'r' => {
                    let key = self.uint(4)? as u32;
                    self.put(key)?;
                }
                b'p' => {
                    let key = self.line()?.parse().map_err(|_| "bad PUT key")?;
                    self.put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u32;
                    self.put(key)?;
                }
                b'h' => {
                    let key = self.uint(1)? as u32;
                    self.get(key)?;
                }
                b'j' => {
                    let key = self.uint(4)? as u32;
                    self.get(key)?;
                }
                b'g' => {
                    let key = self.line()?.parse().map_err(|_| "bad GET key")?;
                    self.get(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global { module, name });
                }
                0x93 => {
                    let name = self.pop()?.text().ok_or("STACK_GLOBAL without a name")?;
                    let module = self.pop()?.text().ok_or("STACK_GLOBAL without a module")?;
                    self.stack.push(Value::Global { module, name });
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.stack.push(Value::Object {
                        callable: Box::new(callable),
                        args: Box::new(args),
                        state: None,
                    });
                }
                b'b' => {
                    let new_state = self.pop()?;
                    match self.top()? {
                        Value::Object { state, .. } => *state = Some(Box::new(new_state)),
                        _ => return Err("BUILD on a non-object".into()),
                    }
                }
                other => {
                    return Err(format!(
                        "unsupported pickle opcode 0x{other:02x} at byte {}",
                        self.at - 1
                    ))
                }
            }
        }
    }
}

fn pairs(items: Vec<Value>) -> Result<Vec<(Value, Value)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("odd number of dict items".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut it = items.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

/// Converts one of SED's record dicts to a task.
pub fn record_to_task(record: &Value) -> Result<Task, String> {
    let guid = record.get("guid").and_then(Value::text).unwrap_or_default();
    let code = record
        .get("code")
        .and_then(Value::items)
        .ok_or("no `code` token list")?
        .iter()
        .map(|t| t.text().ok_or("a token is not a string"))
        .collect::<Result<Vec<_>, _>>()?;
    let program = lang::parse_program(&code.join(" "), &ParseOptions::default())
        .map_err(|e| format!("code: {e}"))?;
    let examples = record
        .get("examples")
        .and_then(Value::items)
        .ok_or("no `examples` list")?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let world = |key: &str| -> Result<World, String> {
                let indices = e
                    .get(key)
                    .ok_or_else(|| format!("example {i} has no `{key}`"))?
                    .integers()
                    .map_err(|m| format!("example {i} `{key}`: {m}"))?;
                let indices = indices
                    .into_iter()
                    .map(|x| {
                        u64::try_from(x).map_err(|_| format!("example {i} `{key}`: negative index"))
                    })
                    .collect::<Result<Vec<u64>, String>>()?;
                World::from_indices(indices).map_err(|m| format!("example {i} `{key}`: {m}"))
            };
            Ok(Example {
                input: world("in")?,
                output: world("out")?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Task {
        guid,
        program,
        examples,
    })
}

/// A `.pkl` file with its `.index`.
pub struct PickleDataset {
    path: PathBuf,
    bytes: Vec<u8>,
    offsets: Vec<u64>,
}

impl PickleDataset {
    /// Reads `path` and `path.index` (the offsets; without one, the records are read in sequence
    /// from the start).
    pub fn open(path: &Path) -> Result<PickleDataset, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let index_path = PathBuf::from(format!("{}.index", path.display()));
        let offsets = match std::fs::read(&index_path) {
            Ok(index) => {
                if index.len() % 8 != 0 {
                    return Err(DataError::format(
                        &index_path,
                        "length is not a multiple of 8",
                    ));
                }
                let offsets: Vec<u64> = index
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
                    .collect();
                if let Some(bad) = offsets.iter().find(|&&o| o >= bytes.len() as u64) {
                    return Err(DataError::format(
                        &index_path,
                        format!("offset {bad} is beyond the end of the .pkl"),
                    ));
                }
                offsets
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut offsets = Vec::new();
                let mut at = 0usize;
                while at < bytes.len() {
                    offsets.push(at as u64);
                    let (_, used) = unpickle(&bytes[at..]).map_err(|m| DataError::Record {
                        location: format!("{}@{at}", path.display()),
                        message: m,
                    })?;
                    at += used;
                }
                offsets
            }
            Err(e) => return Err(DataError::io(&index_path, e)),
        };
        Ok(PickleDataset {
            path: path.to_path_buf(),
            bytes,
            offsets,
        })
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Reads record `index`.
    pub fn get(&self, index: usize) -> Result<Task, DataError> {
        let offset = *self.offsets.get(index).ok_or_else(|| DataError::Record {
            location: format!("{}[{index}]", self.path.display()),
            message: format!("out of range ({} records)", self.len()),
        })? as usize;
        unpickle(&self.bytes[offset..])
            .and_then(|(value, _)| record_to_task(&value))
            .map_err(|message| DataError::Record {
                location: format!("{}[{index}]@{offset}", self.path.display()),
                message,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_small_hand_made_pickles() {
        // pickle.dumps({'a': [1, 300, -2], 'b': u'x'}, protocol=2) under Python 3.
        let bytes = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01M,\x01J\xfe\xff\xff\xffeX\x01\x00\x00\x00bq\x03X\x01\x00\x00\x00xq\x04u.";
        let (value, used) = unpickle(bytes).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(value.get("a").unwrap().integers().unwrap(), [1, 300, -2]);
        assert_eq!(value.get("b").unwrap().text().unwrap(), "x");
        assert!(unpickle(&bytes[..10]).is_err());
        assert!(unpickle(b"\x80\x02\xff.").is_err());
    }
}
