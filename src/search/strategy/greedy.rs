//! Greedy search (the paper's Algorithm 1): only the newest candidate list counts. The first
//! unseen program in it that passes is accepted; otherwise the best unseen one, by examples
//! passed and then by token text (the largest), is expanded. With nothing unseen the search gives
//! up with the last program it picked.

use super::{Frontier, Marking, Pool};

/// The newest candidate list.
#[derive(Debug, Default)]
pub struct Greedy {
    current: Vec<usize>,
}

impl Frontier for Greedy {
    fn marking(&self) -> Marking {
        Marking::WhenExpanded
    }

    fn offer(&mut self, _pool: &dyn Pool, new: &[usize]) {
        self.current = new.to_vec();
    }

    fn pick(&mut self, pool: &dyn Pool) -> Option<usize> {
        let unseen: Vec<usize> = self
            .current
            .iter()
            .copied()
            .filter(|&id| !pool.is_seen(&pool.candidate(id).tokens))
            .collect();
        if let Some(&id) = unseen
            .iter()
            .find(|&&id| pool.candidate(id).passed == pool.given())
        {
            return Some(id);
        }
        let text = |id: usize| -> Vec<&'static str> {
            pool.candidate(id).tokens.iter().map(|t| t.text()).collect()
        };
        unseen.into_iter().max_by(|&a, &b| {
            pool.candidate(a)
                .passed
                .cmp(&pool.candidate(b).passed)
                .then_with(|| text(a).cmp(&text(b)))
        })
    }
}
