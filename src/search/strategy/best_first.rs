//! Best-first search (the paper's Algorithm 2): every new program is queued (FIFO) in the bucket
//! of the number of given examples it passes, and the head of the highest non-empty bucket is
//! picked. With every bucket empty the search gives up with the first candidate it met (the
//! synthesizer's first).

use std::collections::VecDeque;

use super::{Frontier, Marking, Pool};

/// Buckets of candidate ids by given examples passed.
#[derive(Debug, Default)]
pub struct BestFirst {
    buckets: Vec<VecDeque<usize>>,
}

impl Frontier for BestFirst {
    fn marking(&self) -> Marking {
        Marking::WhenMet
    }

    fn offer(&mut self, pool: &dyn Pool, new: &[usize]) {
        for &id in new {
            let passed = pool.candidate(id).passed;
            if self.buckets.len() <= passed {
                self.buckets.resize_with(passed + 1, VecDeque::new);
            }
            self.buckets[passed].push_back(id);
        }
    }

    fn pick(&mut self, _pool: &dyn Pool) -> Option<usize> {
        self.buckets.iter_mut().rev().find_map(|b| b.pop_front())
    }

    fn exhausted(&self, pool: &dyn Pool, _last: Option<usize>) -> Option<usize> {
        (!pool.is_empty()).then_some(0)
    }
}
