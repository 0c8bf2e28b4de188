//! SED's networks, built from the layers of [`crate::nn`].
//!
//! - [`io_encoder`]: the shared IO encoder ("IOEmbed", LGRL's task encoder);
//! - [`synthesizer`]: the LGRL synthesizer.

pub mod io_encoder;
pub mod synthesizer;
