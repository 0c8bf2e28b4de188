//! Data: synthesis tasks and their file formats, the task generator, the AST mutator, edit
//! sequences, and the debugger's training and benchmark examples.

pub mod edits;
pub mod mutate;
