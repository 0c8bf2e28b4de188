//! Data: synthesis tasks and their file formats, the task generator, the AST mutator, edit
//! sequences, and the debugger's training and benchmark examples.
//!
//! - [`task`]: [`Task`] (a program and 6 examples; 5 given, 1 held out).
//! - [`jsonl`]: the standard dataset format (Bunel et al.'s JSON lines).
//! - [`binary`]: our compact binary format, with random access and a checksum.
//! - [`pickle`]: SED's preprocessed `train.pkl`/`val.pkl`/`test.pkl` with their `.index` files.
//! - [`dataset`]: opening any of them by path, and format conversion.
//! - [`generate`]: the random task generator.
//! - [`mutate`]: the eight mutation operators of SED's first training stage.
//! - [`edits`]: edit-op targets (python-Levenshtein alignment, op streams, teacher forcing).
//! - [`repair`]: mutation-benchmark and debugger training examples (mutant, traces, target ops).
//! - [`stats`]: distribution statistics of programs.

pub mod binary;
pub mod dataset;
pub mod edits;
pub mod generate;
pub mod jsonl;
pub mod mutate;
pub mod pickle;
pub mod repair;
pub mod stats;
pub mod task;

use std::io;
use std::path::Path;

use thiserror::Error;

pub use task::{Example, Task, EXAMPLES_PER_TASK, GIVEN_EXAMPLES};

/// A failure reading or writing data: the file, and where in it, and what was wrong.
#[derive(Debug, Error)]
pub enum DataError {
    /// The OS error is part of the message, not a separate cause, so that it is printed once.
    #[error("{path}: {error}")]
    Io { path: String, error: io::Error },
    /// A malformed record: `location` is `file:line` or `file[index]`/`file@offset`.
    #[error("{location}: {message}")]
    Record { location: String, message: String },
    /// A file that is not in the expected format at all (bad magic, checksum, truncation).
    #[error("{path}: {message}")]
    Format { path: String, message: String },
}

impl DataError {
    pub fn io(path: &Path, error: io::Error) -> DataError {
        DataError::Io {
            path: path.display().to_string(),
            error,
        }
    }

    /// The same error naming `path` instead of the file it was about (a temporary file behind
    /// the user's path).
    pub fn naming(self, path: &Path) -> DataError {
        let path = path.display().to_string();
        match self {
            DataError::Io { error, .. } => DataError::Io { path, error },
            DataError::Format { message, .. } => DataError::Format { path, message },
            record @ DataError::Record { .. } => record,
        }
    }

    pub fn format(path: &Path, message: impl Into<String>) -> DataError {
        DataError::Format {
            path: path.display().to_string(),
            message: message.into(),
        }
    }
}
