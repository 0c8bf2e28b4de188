//! Inference: decoding the models and SED's search.
//!
//! - [`beam`]: beam bookkeeping with the reference's finishing and early-stop rules.
//! - [`synthesis`]: the synthesizer's beam search (optionally grammar-constrained), batched
//!   across tasks.
//! - [`repair`]: the debugger's beam search over edit ops, batched across programs.
//! - [`sed`]: best-first and greedy SED search, as resumable per-task state machines whose
//!   debugger calls are batched across tasks.
//! - [`report`]: per-task evaluation records and the tables and curves computed from them.
//! - [`eval`]: the evaluation engine (a plan of configurations over a split, resumable, into a
//!   report) and the mutation benchmark.

pub mod beam;
pub mod eval;
pub mod repair;
pub mod report;
pub mod sed;
pub mod synthesis;

pub use beam::Scored;
pub use sed::{run_searches, SearchConfig, SearchResult, SearchTiming, Strategy, TaskSearch};
pub use synthesis::SynthesisConfig;
