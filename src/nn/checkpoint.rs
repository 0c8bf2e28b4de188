//! Checkpoints in safetensors: the model's parameters and buffers, the optimiser's state, and
//! metadata (model configuration, step, RNG state, anything else a trainer wants back).
//!
//! Tensor names: `model.<name>` for parameters and buffers, `<name>` being the PyTorch
//! `state_dict` key (see [`Module`]); `optim.<name>.exp_avg` and `optim.<name>.exp_avg_sq` for
//! Adam's moments (PyTorch's names). A PyTorch script loads the weights with
//! `{k[6:]: v for k, v in safetensors.torch.load_file(path).items() if k.startswith("model.")}`.
//! All tensors are little-endian `F32`.
//!
//! Files are written atomically (temporary file, then rename), so a crash leaves the previous
//! checkpoint intact. Loading checks the format, every name and every shape, and says what is
//! wrong: a truncated file, a missing or unexpected tensor, a shape that does not match the model.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use thiserror::Error;

use super::backend::Backend;
use super::optim::{Optimizer, OptimizerConfig};
use super::param::Module;

/// Metadata key naming the format.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "karel-sed checkpoint v1";

#[derive(Debug, Error)]
pub enum CheckpointError {
    /// The OS error is part of the message, not a separate cause, so that it is printed once.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error(
        "{path}: not a readable safetensors file ({message}); it may be truncated or corrupted"
    )]
    Format { path: String, message: String },
    #[error("{path}: {message}")]
    Mismatch { path: String, message: String },
}

/// What a checkpoint holds besides the tensors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metadata {
    /// Free-form entries: model configuration, step, RNG state, data position (JSON strings).
    pub entries: BTreeMap<String, String>,
}

impl Metadata {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(key.to_string(), value.into());
    }
}

/// Saves `module` (and `optimizer`, if any) with `metadata` to `path`, atomically.
pub fn save<B: Backend>(
    path: &Path,
    backend: &B,
    module: &mut impl Module<B>,
    optimizer: Option<&Optimizer<B>>,
    metadata: &Metadata,
) -> Result<(), CheckpointError> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut push = |name: String, tensor: &B::Tensor| {
        let bytes: Vec<u8> = backend
            .to_f32(tensor)
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        tensors.push((name, backend.shape(tensor), bytes));
    };
    module.visit_params("model", &mut |name, p| push(name.to_string(), &p.value));
    module.visit_buffers("model", &mut |name, t| push(name.to_string(), t));
    let mut info: HashMap<String, String> = metadata.entries.clone().into_iter().collect();
    info.insert(FORMAT_KEY.into(), FORMAT.into());
    if let Some(opt) = optimizer {
        info.insert(
            "optimizer".into(),
            serde_json::to_string(&opt.config).unwrap_or_default(),
        );
        info.insert("optimizer_step".into(), opt.step.to_string());
        for (name, m, v) in &opt.moments {
            let name = name.strip_prefix("model.").unwrap_or(name);
            push(format!("optim.{name}.exp_avg"), m);
            push(format!("optim.{name}.exp_avg_sq"), v);
        }
    }
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(Dtype::F32, shape.clone(), bytes).map(|view| (name.clone(), view))
        })
        .collect::<Result<_, _>>()
        .map_err(|e| CheckpointError::Format {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    let bytes = safetensors::serialize(views, Some(info)).map_err(|e| CheckpointError::Format {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    crate::fsutil::write_atomic(path, &bytes).map_err(|error| CheckpointError::Io {
        path: path.display().to_string(),
        error,
    })
}

/// Loads a checkpoint into `module` (and `optimizer`): every tensor of the module must be in the
/// file with the same shape, and the file must hold nothing else. Returns the metadata.
pub fn load<B: Backend>(
    path: &Path,
    backend: &B,
    module: &mut impl Module<B>,
    optimizer: Option<&mut Optimizer<B>>,
) -> Result<Metadata, CheckpointError> {
    let bytes = read_file(path)?;
    load_bytes(
        &bytes,
        &path.display().to_string(),
        backend,
        module,
        optimizer,
    )
}

/// [`load`] from the bytes of a checkpoint (e.g. one embedded in the binary); `name` names it in
/// errors.
pub fn load_bytes<B: Backend>(
    bytes: &[u8],
    name: &str,
    backend: &B,
    module: &mut impl Module<B>,
    optimizer: Option<&mut Optimizer<B>>,
) -> Result<Metadata, CheckpointError> {
    let display = name.to_string();
    let info = check_bytes(bytes, name)?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| CheckpointError::Format {
        path: display.clone(),
        message: e.to_string(),
    })?;
    let mut used = std::collections::HashSet::new();
    let mut problem: Option<String> = None;
    let mut read = |name: &str, target: &mut B::Tensor| {
        if problem.is_some() {
            return;
        }
        let expected = backend.shape(target);
        match file.tensor(name) {
            Err(_) => {
                problem = Some(format!(
                    "tensor `{name}` is missing (the model expects shape {expected:?})"
                ))
            }
            Ok(view) if view.dtype() != Dtype::F32 => {
                problem = Some(format!(
                    "tensor `{name}` is {:?}, expected F32",
                    view.dtype()
                ))
            }
            Ok(view) if view.shape() != expected.as_slice() => {
                problem = Some(format!(
                    "tensor `{name}` has shape {:?}, the model expects {expected:?}",
                    view.shape()
                ))
            }
            Ok(view) => {
                let values: Vec<f32> = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
                    problem = Some(format!(
                        "tensor `{name}` holds {} at index {bad}: the weights are damaged",
                        values[bad]
                    ));
                    return;
                }
                *target = backend.tensor_f32(&expected, &values);
                used.insert(name.to_string());
            }
        }
    };
    module.visit_params("model", &mut |name, p| read(name, &mut p.value));
    module.visit_buffers("model", &mut |name, t| read(name, t));
    // Without an optimizer to fill, its tensors are simply not read (loading for inference).
    let with_optimizer = optimizer.is_some();
    if let Some(opt) = optimizer {
        let config: Option<OptimizerConfig> = info
            .get("optimizer")
            .and_then(|c| serde_json::from_str(c).ok());
        if let Some(config) = config {
            opt.config = config;
        }
        opt.step = info
            .get("optimizer_step")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        opt.moments.clear();
        if matches!(opt.config, OptimizerConfig::Adam { .. }) && opt.step > 0 {
            let mut moments = Vec::new();
            module.visit_params("", &mut |name, p| {
                let mut m = backend.zeros(&backend.shape(&p.value));
                let mut v = m.clone();
                read(&format!("optim.{name}.exp_avg"), &mut m);
                read(&format!("optim.{name}.exp_avg_sq"), &mut v);
                moments.push((name.to_string(), m, v));
            });
            opt.moments = moments;
        }
    }
    if let Some(message) = problem {
        return Err(CheckpointError::Mismatch {
            path: display,
            message,
        });
    }
    if let Some(extra) = file.names().into_iter().find(|n| {
        !used.contains(*n)
            && (n.starts_with("model.") || (with_optimizer && n.starts_with("optim.")))
    }) {
        return Err(CheckpointError::Mismatch {
            path: display,
            message: format!("tensor `{extra}` does not belong to this model"),
        });
    }
    Ok(user_metadata(info))
}

/// The trainer's entries of a checkpoint's metadata (without the format and optimizer keys).
fn user_metadata(info: HashMap<String, String>) -> Metadata {
    let mut metadata = Metadata::default();
    for (k, v) in info {
        if k != FORMAT_KEY && k != "optimizer" && k != "optimizer_step" {
            metadata.entries.insert(k, v);
        }
    }
    metadata
}

/// Reads only the metadata of a checkpoint (to learn which model and configuration it holds),
/// checking that the file is a whole karel-sed checkpoint.
pub fn read_metadata(path: &Path) -> Result<Metadata, CheckpointError> {
    let bytes = read_file(path)?;
    metadata_of_bytes(&bytes, &path.display().to_string())
}

/// [`read_metadata`] of the bytes of a checkpoint.
pub fn metadata_of_bytes(bytes: &[u8], name: &str) -> Result<Metadata, CheckpointError> {
    Ok(user_metadata(check_bytes(bytes, name)?))
}

fn read_file(path: &Path) -> Result<Vec<u8>, CheckpointError> {
    std::fs::read(path).map_err(|error| CheckpointError::Io {
        path: path.display().to_string(),
        error,
    })
}

/// Checks that `bytes` are a whole safetensors file written by this crate; returns its metadata.
fn check_bytes(bytes: &[u8], name: &str) -> Result<HashMap<String, String>, CheckpointError> {
    let display = name.to_string();
    let format_error = |e: safetensors::SafeTensorError| CheckpointError::Format {
        path: display.clone(),
        message: e.to_string(),
    };
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(format_error)?;
    SafeTensors::deserialize(bytes).map_err(format_error)?;
    let info = header.metadata().clone().unwrap_or_default();
    if info.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) {
        return Err(CheckpointError::Mismatch {
            path: display,
            message: format!(
                "not a karel-sed checkpoint (expected metadata {FORMAT_KEY} = {FORMAT:?})"
            ),
        });
    }
    Ok(info)
}
