//! Search strategies: which candidate SED's search gives the debugger next.
//!
//! A strategy is a [`Frontier`]: it is offered the new valid programs of each round (the
//! synthesizer's candidates, then each debugger answer), picks the next program to expand, and
//! says what to return when nothing is left. Everything else — executing candidates, the seen
//! set, observational merging, the budget of debugger calls, the candidates' ancestry — is the
//! search's own bookkeeping ([`super::sed::TaskSearch`]), the same for every strategy; a
//! strategy only chooses when a program counts as seen ([`Marking`]).
//!
//! Adding a strategy: a file beside these with its `Frontier`, and its line in
//! [`Strategy`] (variant, name, constructor).

mod best_first;
mod greedy;

use serde::{Deserialize, Serialize};

use super::sed::Candidate;
use crate::lang::Token;

/// When a program counts as seen, so that it is neither executed again nor expanded twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marking {
    /// As soon as it is met: a program is queued at most once. Merging compares a failing
    /// program's behaviour with the behaviours already queued.
    WhenMet,
    /// When it is expanded (given to the debugger): a program met again may be chosen again
    /// until then. Merging compares with the behaviours already expanded.
    WhenExpanded,
}

/// What a strategy may read of a search: its candidates so far and its seen set.
pub trait Pool {
    /// Candidate `id` (ids are positions in the order the candidates were met).
    fn candidate(&self, id: usize) -> &Candidate;
    /// Candidates met so far.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether a program counts as seen.
    fn is_seen(&self, tokens: &[Token]) -> bool;
    /// Given examples of the task: a candidate passing this many solves it.
    fn given(&self) -> usize;
}

/// A search strategy's state for one task.
pub trait Frontier: Send {
    /// When programs count as seen under this strategy.
    fn marking(&self) -> Marking;
    /// Takes the new candidates of one round, in the order they were met.
    fn offer(&mut self, pool: &dyn Pool, new: &[usize]);
    /// The next candidate to accept (if it passes) or expand; `None` when nothing is left.
    fn pick(&mut self, pool: &dyn Pool) -> Option<usize>;
    /// The candidate to return when nothing is left, given the last one picked.
    fn exhausted(&self, _pool: &dyn Pool, last: Option<usize>) -> Option<usize> {
        last
    }
}

/// The registered strategies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// SED's best-first search ([`best_first`]).
    BestFirst,
    /// SED's greedy search ([`greedy`]).
    Greedy,
}

impl Strategy {
    /// Every strategy, in the order the command line lists them.
    pub const ALL: &'static [Strategy] = &[Strategy::BestFirst, Strategy::Greedy];

    /// Its name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::BestFirst => "best-first",
            Strategy::Greedy => "greedy",
        }
    }

    /// A fresh frontier for one task's search.
    pub fn frontier(self) -> Box<dyn Frontier> {
        match self {
            Strategy::BestFirst => Box::<best_first::BestFirst>::default(),
            Strategy::Greedy => Box::<greedy::Greedy>::default(),
        }
    }
}
