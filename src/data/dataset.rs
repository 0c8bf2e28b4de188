//! Opening task files in any supported format, and writing them atomically.
//!
//! | format | extension | read | write |
//! |---|---|---|---|
//! | standard JSON lines | `.jsonl`, `.json` | yes | yes |
//! | our binary format | `.kds` | yes (random access) | yes |
//! | SED's pickles | `.pkl` (+ `.pkl.index`) | yes (random access) | no |

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::binary::{BinaryDataset, BinaryWriter};
use super::jsonl::{task_to_line, JsonlReader};
use super::pickle::PickleDataset;
use super::task::Task;
use super::DataError;
use crate::lang::ParseOptions;

/// A task file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The standard dataset's JSON lines.
    Standard,
    /// Our binary format (`.kds`).
    Binary,
    /// SED's preprocessed pickles (`.pkl` with `.pkl.index`), read only.
    Pickle,
}

impl Format {
    /// The format a path's extension names (standard JSON lines when unknown, `-` included).
    pub fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some("kds") => Format::Binary,
            Some("pkl") => Format::Pickle,
            _ => Format::Standard,
        }
    }

    /// The usual extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Standard => "jsonl",
            Format::Binary => "kds",
            Format::Pickle => "pkl",
        }
    }
}

/// Tasks read from a file, in order.
pub type TaskIter = Box<dyn Iterator<Item = Result<Task, DataError>> + Send>;

/// Opens a task file; `format` defaults to the one its extension names.
pub fn open(path: &Path, format: Option<Format>) -> Result<TaskIter, DataError> {
    match format.unwrap_or_else(|| Format::of_path(path)) {
        Format::Standard => Ok(Box::new(JsonlReader::open(path, ParseOptions::default())?)),
        Format::Binary => {
            let dataset = BinaryDataset::open(path)?;
            Ok(Box::new((0..dataset.len()).map(move |i| dataset.get(i))))
        }
        Format::Pickle => {
            let dataset = PickleDataset::open(path)?;
            Ok(Box::new((0..dataset.len()).map(move |i| dataset.get(i))))
        }
    }
}

/// Reads every task of a file. Malformed records are errors, unless `skip_invalid`: then they are
/// counted and left out.
pub fn read_all(
    path: &Path,
    format: Option<Format>,
    skip_invalid: bool,
) -> Result<(Vec<Task>, usize), DataError> {
    let mut tasks = Vec::new();
    let mut skipped = 0;
    for task in open(path, format)? {
        match task {
            Ok(task) => tasks.push(task),
            Err(DataError::Record { .. }) if skip_invalid => skipped += 1,
            Err(e) => return Err(e),
        }
    }
    Ok((tasks, skipped))
}

/// Writes tasks to a temporary file beside `path` and renames it over `path` in
/// [`TaskWriter::finish`], so that an interrupted run never leaves a partial file under the final
/// name. `-` writes standard JSON lines to standard output.
pub struct TaskWriter {
    sink: Sink,
    count: usize,
}

enum Sink {
    Stdout(BufWriter<io::Stdout>),
    Standard {
        out: BufWriter<File>,
        tmp: PathBuf,
        path: PathBuf,
    },
    Binary {
        out: BinaryWriter,
        tmp: PathBuf,
        path: PathBuf,
    },
}

/// The temporary name used while writing `path`.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("{name}.partial"))
}

impl TaskWriter {
    /// Starts writing `path` in `format` (standard JSON lines or binary).
    pub fn create(path: &Path, format: Format) -> Result<TaskWriter, DataError> {
        let sink = if path == Path::new("-") {
            Sink::Stdout(BufWriter::new(io::stdout()))
        } else {
            let tmp = partial_path(path);
            match format {
                Format::Standard => Sink::Standard {
                    out: BufWriter::with_capacity(
                        1 << 20,
                        File::create(&tmp).map_err(|e| DataError::io(path, e))?,
                    ),
                    tmp,
                    path: path.to_path_buf(),
                },
                Format::Binary => Sink::Binary {
                    out: BinaryWriter::create(&tmp).map_err(|e| e.naming(path))?,
                    tmp,
                    path: path.to_path_buf(),
                },
                Format::Pickle => {
                    return Err(DataError::format(
                        path,
                        "writing SED's pickle format is not supported: use standard or binary",
                    ))
                }
            }
        };
        Ok(TaskWriter { sink, count: 0 })
    }

    /// Continues a partial file of `format` for `path` whose first `keep` tasks are kept (the rest,
    /// if any, were written after the last checkpoint and are dropped). Returns the writer and
    /// the kept tasks.
    pub fn resume(
        path: &Path,
        format: Format,
        keep: usize,
    ) -> Result<(TaskWriter, Vec<Task>), DataError> {
        let tmp = partial_path(path);
        match format {
            Format::Binary => {
                let (mut tasks, offsets, end) = super::binary::scan_records(&tmp)?;
                if tasks.len() < keep {
                    return Err(DataError::format(
                        &tmp,
                        format!("holds {} tasks, the checkpoint says {keep}", tasks.len()),
                    ));
                }
                let valid = offsets.get(keep).copied().unwrap_or(end);
                tasks.truncate(keep);
                let out = BinaryWriter::append_after(&tmp, valid, offsets[..keep].to_vec())?;
                Ok((
                    TaskWriter {
                        sink: Sink::Binary {
                            out,
                            tmp,
                            path: path.to_path_buf(),
                        },
                        count: keep,
                    },
                    tasks,
                ))
            }
            Format::Standard => {
                let text = std::fs::read_to_string(&tmp).map_err(|e| DataError::io(&tmp, e))?;
                let mut tasks = Vec::with_capacity(keep);
                let mut valid = 0usize;
                for line in text.split_inclusive('\n').take(keep) {
                    if !line.ends_with('\n') {
                        break;
                    }
                    let task = super::jsonl::parse_task(line.trim_end(), &ParseOptions::default())
                        .map_err(|m| DataError::Record {
                            location: format!("{}:{}", tmp.display(), tasks.len() + 1),
                            message: m,
                        })?;
                    tasks.push(task);
                    valid += line.len();
                }
                if tasks.len() < keep {
                    return Err(DataError::format(
                        &tmp,
                        format!("holds {} tasks, the checkpoint says {keep}", tasks.len()),
                    ));
                }
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&tmp)
                    .map_err(|e| DataError::io(&tmp, e))?;
                file.set_len(valid as u64)
                    .map_err(|e| DataError::io(&tmp, e))?;
                let mut out = BufWriter::with_capacity(1 << 20, file);
                io::Seek::seek(&mut out, io::SeekFrom::End(0))
                    .map_err(|e| DataError::io(&tmp, e))?;
                Ok((
                    TaskWriter {
                        sink: Sink::Standard {
                            out,
                            tmp,
                            path: path.to_path_buf(),
                        },
                        count: keep,
                    },
                    tasks,
                ))
            }
            Format::Pickle => Err(DataError::format(path, "cannot write pickles")),
        }
    }

    /// Appends a task.
    pub fn write(&mut self, task: &Task) -> Result<(), DataError> {
        self.count += 1;
        match &mut self.sink {
            Sink::Stdout(out) => writeln!(out, "{}", task_to_line(task))
                .map_err(|e| DataError::io(Path::new("-"), e)),
            Sink::Standard { out, path, .. } => {
                writeln!(out, "{}", task_to_line(task)).map_err(|e| DataError::io(path, e))
            }
            Sink::Binary { out, path, .. } => out.write(task).map_err(|e| e.naming(path)),
        }
    }

    /// Number of tasks written.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Makes everything written so far durable (a checkpoint).
    pub fn flush(&mut self) -> Result<(), DataError> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush().map_err(|e| DataError::io(Path::new("-"), e)),
            Sink::Standard { out, path, .. } => {
                out.flush().map_err(|e| DataError::io(path, e))?;
                out.get_ref()
                    .sync_data()
                    .map_err(|e| DataError::io(path, e))
            }
            Sink::Binary { out, path, .. } => out.flush().map_err(|e| e.naming(path)),
        }
    }

    /// Abandons the file: the partial file is removed (for a run that cannot be resumed).
    pub fn discard(self) {
        match self.sink {
            Sink::Stdout(_) => {}
            Sink::Standard { out, tmp, .. } => {
                drop(out);
                let _ = std::fs::remove_file(tmp);
            }
            Sink::Binary { out, tmp, .. } => {
                drop(out);
                let _ = std::fs::remove_file(tmp);
            }
        }
    }

    /// Completes the file and gives it its final name.
    pub fn finish(self) -> Result<(), DataError> {
        match self.sink {
            Sink::Stdout(mut out) => out.flush().map_err(|e| DataError::io(Path::new("-"), e)),
            Sink::Standard { mut out, tmp, path } => {
                out.flush().map_err(|e| DataError::io(&path, e))?;
                out.get_ref()
                    .sync_all()
                    .map_err(|e| DataError::io(&path, e))?;
                std::fs::rename(&tmp, &path).map_err(|e| DataError::io(&path, e))
            }
            Sink::Binary { out, tmp, path } => {
                out.finish().map_err(|e| e.naming(&path))?;
                std::fs::rename(&tmp, &path).map_err(|e| DataError::io(&path, e))
            }
        }
    }
}
