//! `Program`, `parse` and `KarelSyntaxError`, and the conversions of Python values to programs
//! (a `Program`, a string, or a sequence of token strings) and to token sequences.

use std::sync::Arc;

use karel::lang::{self, ParseError, ParseOptions, Token};
use karel::vm::{self, Chunk};
use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyString, PyTuple};

create_exception!(
    karel_sed,
    KarelSyntaxError,
    PyValueError,
    "A program that does not parse. `str(e)` is the diagnostic; `e.position` is the 0-based \
     token position it points at (None at the end of the program)."
);

/// A parsed program and its bytecode, shared by every Python handle to it.
#[derive(Debug)]
pub struct Compiled {
    pub program: lang::Program,
    pub chunk: Chunk,
}

impl Compiled {
    pub fn new(program: lang::Program) -> Compiled {
        let chunk = vm::compile(&program);
        Compiled { program, chunk }
    }
}

/// Parses program text (tokens separated by white space) without touching Python.
pub fn parse_text(text: &str) -> Result<Compiled, ParseError> {
    lang::parse_program(text, &ParseOptions::default()).map(Compiled::new)
}

/// The Python exception of a parse error of `source`. Its `position` is the offending token's, or
/// for a word outside the vocabulary the index of that word.
pub fn syntax_error(py: Python<'_>, error: &ParseError, source: &str) -> PyErr {
    let err = KarelSyntaxError::new_err(error.to_string());
    let position = error.errors.first().and_then(|e| {
        e.token.or_else(|| {
            let before = source.get(..e.bytes.start)?;
            (!e.bytes.is_empty()).then(|| before.split_whitespace().count() as u32)
        })
    });
    if let Err(e) = err.value(py).setattr("position", position) {
        return e;
    }
    err
}

/// A Karel program: parsed once, compiled once, immutable.
///
/// `Program(text)` is `parse(text)`. `str(p)` is the token form (`DEF run m( move m)`),
/// `p.tokens` the list of tokens, `p.pretty()` an indented listing. Programs compare and hash by
/// their tokens and pickle as their text.
#[pyclass(module = "karel_sed", frozen)]
#[derive(Clone)]
pub struct Program {
    pub compiled: Arc<Compiled>,
}

impl Program {
    pub fn from_program(program: lang::Program) -> Program {
        Program {
            compiled: Arc::new(Compiled::new(program)),
        }
    }

    fn text(&self) -> String {
        lang::token::tokens_to_string(&self.compiled.program.tokens())
    }
}

#[pymethods]
impl Program {
    #[new]
    fn py_new(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Program> {
        program_arg(py, text)
    }

    /// The tokens, as strings.
    #[getter]
    fn tokens(&self) -> Vec<&'static str> {
        self.compiled
            .program
            .tokens()
            .iter()
            .map(|t| t.text())
            .collect()
    }

    /// An indented listing, one statement a line.
    fn pretty(&self) -> String {
        self.compiled.program.pretty()
    }

    fn __str__(&self) -> String {
        self.text()
    }

    fn __repr__(&self) -> String {
        format!("Program({:?})", self.text())
    }

    /// Number of tokens.
    fn __len__(&self) -> usize {
        self.compiled.program.token_len()
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        match other.cast::<Program>() {
            Ok(other) => self.compiled.program == other.get().compiled.program,
            Err(_) => false,
        }
    }

    fn __hash__(&self) -> u64 {
        karel::data::generate::program_hash(&self.compiled.program)
    }

    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let text = slf.get().text();
        Ok((
            slf.get_type().into_any(),
            PyTuple::new(py, [PyString::new(py, &text)])?,
        ))
    }
}

/// Parses a program: `text` holds tokens separated by white space (`DEF run m( move m)`), or is a
/// sequence of token strings. Raises `KarelSyntaxError` (a `ValueError`) with the diagnostic and
/// the token position.
#[pyfunction]
pub fn parse(py: Python<'_>, text: &Bound<'_, PyAny>) -> PyResult<Program> {
    program_arg(py, text)
}

/// A program from a `Program`, a string or a sequence of token strings.
pub fn program_arg(py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Program> {
    if let Ok(program) = value.cast::<Program>() {
        return Ok(program.get().clone());
    }
    let text = program_text(value)?;
    match py.detach(|| parse_text(&text)) {
        Ok(compiled) => Ok(Program {
            compiled: Arc::new(compiled),
        }),
        Err(e) => Err(syntax_error(py, &e, &text)),
    }
}

/// A program's source from a string or a sequence of token strings (joined with spaces).
pub fn program_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text.to_cow()?.into_owned());
    }
    match token_strings(value) {
        Ok(tokens) => Ok(tokens.join(" ")),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected a Program, a string or a sequence of token strings, got {}",
            value.get_type().name()?
        ))),
    }
}

/// A token sequence for the edit functions: a `Program`'s tokens, a string split at white space,
/// or a sequence of strings.
pub fn token_strings(value: &Bound<'_, PyAny>) -> PyResult<Vec<String>> {
    if let Ok(program) = value.cast::<Program>() {
        return Ok(program
            .get()
            .compiled
            .program
            .tokens()
            .iter()
            .map(|t| t.text().to_owned())
            .collect());
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(text
            .to_cow()?
            .split_whitespace()
            .map(str::to_owned)
            .collect());
    }
    let mut tokens = Vec::new();
    for item in value.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a Program, a string or a sequence of token strings, got {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })? {
        let item = item?;
        let token = item.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "a token sequence holds strings, not {}",
                item.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })?;
        tokens.push(token.to_cow()?.into_owned());
    }
    Ok(tokens)
}

/// A token sequence of the 43-token vocabulary.
pub fn vocabulary_tokens(value: &Bound<'_, PyAny>) -> PyResult<Vec<Token>> {
    token_strings(value)?
        .iter()
        .enumerate()
        .map(|(i, word)| {
            Token::from_text(word).ok_or_else(|| {
                let shown: String = word.chars().take(40).collect();
                PyValueError::new_err(format!(
                    "token {i}, `{shown}`, is not in the Karel vocabulary"
                ))
            })
        })
        .collect()
}
