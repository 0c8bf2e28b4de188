//! SED's networks, built from the layers of [`crate::nn`].
//!
//! - [`io_encoder`]: the shared IO encoder ("IOEmbed", LGRL's task encoder);
//! - [`synthesizer`]: the LGRL synthesizer;
//! - [`trace_embed`]: TraceEmbed's encoder of execution-trace states;
//! - [`debugger`]: the SED debugger (IOEmbed, program encoder, TraceEmbed, edit decoder);
//! - [`pooled`]: the decoder head both share (one LSTM stream per IO pair, max over pairs);
//! - [`grids`]: worlds to grid tensors;
//! - [`preset`]: named model sizes (`paper`, `tiny`) and parameter summaries;
//! - [`load`]: models from checkpoints and the embedded defaults ([`defaults`]).

pub mod debugger;
pub mod defaults;
pub mod grids;
pub mod io_encoder;
pub mod load;
pub mod pooled;
pub mod preset;
pub mod synthesizer;
pub mod trace_embed;
