//! Models from checkpoints, for inference and for training runs: the metadata that names a
//! checkpoint's model and configuration, the model built from it, and the embedded defaults
//! ([`ModelSource`]). Training writes checkpoints with [`model_metadata`]; everything that runs a
//! model loads it here.

use std::path::Path;

use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::debugger::Debugger;
use super::synthesizer::Synthesizer;
use crate::data::{Task, GIVEN_EXAMPLES};
use crate::nn::checkpoint::{self, Metadata};
use crate::nn::param::Module;
use crate::nn::Backend;

/// Metadata key naming the model a checkpoint holds (`synthesizer` or `debugger`).
pub const KIND_KEY: &str = "model";
/// Metadata key of the model configuration (JSON).
pub const CONFIG_KEY: &str = "model_config";

/// The metadata that identifies a model in a checkpoint.
pub fn model_metadata(kind: &str, config: &impl Serialize) -> Metadata {
    let mut metadata = Metadata::default();
    metadata.set(KIND_KEY, kind);
    metadata.set(
        CONFIG_KEY,
        serde_json::to_string(config).expect("configurations serialize"),
    );
    metadata
}

/// The configuration of a checkpoint's model, checking that it holds a `kind` model. `name`
/// names the checkpoint in errors.
pub fn checkpoint_config<C: serde::de::DeserializeOwned>(
    name: &str,
    metadata: &Metadata,
    kind: &str,
) -> Result<C> {
    match metadata.get(KIND_KEY) {
        Some(k) if k == kind => {}
        Some(other) => bail!("{name} holds a {other}, not a {kind}"),
        None => bail!("{name} does not say which model it holds"),
    }
    let text = metadata
        .get(CONFIG_KEY)
        .with_context(|| format!("{name} has no model configuration"))?;
    serde_json::from_str(text).with_context(|| format!("{name}: unreadable model configuration"))
}

/// Where a model's weights come from.
#[derive(Clone, Copy, Debug)]
pub enum ModelSource<'a> {
    /// A checkpoint file.
    File(&'a Path),
    /// The default model built into the binary ([`super::defaults`]).
    Embedded,
}

impl<'a> ModelSource<'a> {
    /// The file if one is given, else the embedded default.
    pub fn or_default(path: Option<&'a Path>) -> ModelSource<'a> {
        path.map_or(ModelSource::Embedded, ModelSource::File)
    }

    /// The checkpoint's bytes and a name for messages.
    fn bytes(&self, kind: &str) -> Result<(std::borrow::Cow<'static, [u8]>, String)> {
        match self {
            ModelSource::File(path) => Ok((
                std::fs::read(path)
                    .with_context(|| format!("cannot read {}", path.display()))?
                    .into(),
                path.display().to_string(),
            )),
            ModelSource::Embedded => Ok((
                super::defaults::bytes(kind).into(),
                format!("the built-in {kind}"),
            )),
        }
    }
}

/// Loads a `kind` model for inference: builds it from the checkpoint's configuration and reads
/// its weights (an optimizer's state, if present, is ignored).
fn load_model<B: Backend, C: serde::de::DeserializeOwned, M: Module<B>>(
    backend: &B,
    source: ModelSource,
    kind: &str,
    build: impl FnOnce(C) -> M,
) -> Result<M> {
    let (bytes, name) = source.bytes(kind)?;
    let metadata = checkpoint::metadata_of_bytes(&bytes, &name)?;
    let config = checkpoint_config(&name, &metadata, kind)?;
    let mut model = build(config);
    checkpoint::load_bytes(&bytes, &name, backend, &mut model, None)?;
    Ok(model)
}

/// Loads a synthesizer for inference.
pub fn load_synthesizer<B: Backend>(backend: &B, source: ModelSource) -> Result<Synthesizer<B>> {
    load_model(backend, source, "synthesizer", |config| {
        Synthesizer::new(backend, config, &mut ChaCha8Rng::seed_from_u64(0))
    })
}

/// Loads a debugger for inference.
pub fn load_debugger<B: Backend>(backend: &B, source: ModelSource) -> Result<Debugger<B>> {
    load_model(backend, source, "debugger", |config| {
        Debugger::new(backend, config, &mut ChaCha8Rng::seed_from_u64(0))
    })
}

/// Checks that every task has the given examples the models read (5), so that batching never
/// meets a short task.
pub fn check_examples<'a>(tasks: impl IntoIterator<Item = &'a Task>, path: &Path) -> Result<()> {
    for (i, task) in tasks.into_iter().enumerate() {
        if task.given().len() < GIVEN_EXAMPLES {
            bail!(
                "{}: task {} (record {}) has {} examples; the models need {GIVEN_EXAMPLES} given examples",
                path.display(),
                task.guid,
                i + 1,
                task.examples.len()
            );
        }
    }
    Ok(())
}
