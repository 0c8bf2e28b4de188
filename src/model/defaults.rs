//! The default models built into the binary: a `tiny` synthesizer and a `tiny` debugger (with
//! TraceEmbed), trained with the project's own `karel train` commands and exported without their
//! optimizer state (`karel model export`). `models/README.md` says how they were trained. They
//! are what `karel synthesize` and `karel eval` use when no checkpoint is given.

/// The synthesizer checkpoint.
pub const SYNTHESIZER: &[u8] = include_bytes!("../../models/tiny-synthesizer.safetensors");
/// The debugger checkpoint.
pub const DEBUGGER: &[u8] = include_bytes!("../../models/tiny-debugger.safetensors");

/// The checkpoint of a `kind` (`synthesizer` or `debugger`) model.
pub fn bytes(kind: &str) -> &'static [u8] {
    match kind {
        "debugger" => DEBUGGER,
        _ => SYNTHESIZER,
    }
}
