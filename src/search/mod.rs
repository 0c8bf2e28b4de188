//! Inference: decoding the models and SED's search.
//!
//! - [`beam`]: beam bookkeeping with the reference's finishing and early-stop rules.
//! - [`synthesis`]: the synthesizer's beam search (optionally grammar-constrained), batched
//!   across tasks.
//! - [`repair`]: the debugger's beam search over edit ops, batched across programs.
//! - [`sed`]: SED's search, as resumable per-task state machines whose debugger calls are
//!   batched across tasks; the debugger behind the [`Repairer`] trait.
//! - [`rewrite`]: the rewrite stage: every program within a few AST rewrites of a candidate,
//!   executed on the VM, the passing ones ranked.
//! - [`strategy`]: the search strategies (best-first, greedy) as implementations of
//!   [`strategy::Frontier`], registered in [`Strategy`].
//! - [`report`]: per-task evaluation records and the tables and curves computed from them.
//! - [`eval`]: the evaluation engine (a plan of configurations over a split, resumable, into a
//!   report) and the mutation benchmark.

pub mod beam;
pub mod eval;
pub mod repair;
pub mod report;
pub mod rewrite;
pub mod sed;
pub mod strategy;
pub mod synthesis;

pub use beam::Scored;
pub use rewrite::{Ranking, RewriteConfig};
pub use sed::{
    run_searches, Networks, NeuralRepairer, RankRequest, Ranker, RepairRequest, Repairer,
    SearchConfig, SearchMethod, SearchResult, SearchTiming, TaskSearch,
};
pub use strategy::Strategy;
pub use synthesis::{LikelihoodRanker, SynthesisConfig};
