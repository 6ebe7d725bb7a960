//! Per-run question cache: each `(name, type)` is asked once per run, and askers
//! that arrive while it is in flight wait for the same answer.
//!
//! Bounded for long runs (100,000 domains): two generations, the newer one
//! receiving every question and every hit. When it fills up, the older one is
//! dropped and the newer one takes its place. Questions many domains share (a
//! provider's MX host, an SPF include, a DNSBL entry) are hit again and again,
//! so they move forward and stay; a question of one domain is dropped two
//! generations later. Memory stays flat however long the domain list is, and a
//! shared question is still asked once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::{Answer, RType};

type Cell = Arc<OnceCell<Arc<Answer>>>;
type Key = (String, RType);

struct Generations {
    newer: HashMap<Key, Cell>,
    older: HashMap<Key, Cell>,
}

pub(crate) struct QuestionCache {
    inner: Mutex<Generations>,
    /// Questions per generation.
    generation_size: usize,
}

impl Default for QuestionCache {
    fn default() -> Self {
        QuestionCache::with_capacity(100_000)
    }
}

impl QuestionCache {
    /// A cache holding at least `capacity / 2` and at most `capacity` questions.
    pub(crate) fn with_capacity(capacity: usize) -> QuestionCache {
        QuestionCache {
            inner: Mutex::new(Generations {
                newer: HashMap::new(),
                older: HashMap::new(),
            }),
            generation_size: (capacity / 2).max(1),
        }
    }

    /// The cell for a question, created empty on first use. When the task that
    /// fills a cell is cancelled, `OnceCell` lets the next asker fill it.
    pub(crate) fn cell(&self, name: &str, rtype: RType) -> Cell {
        // A poisoned lock only means another task panicked while inserting; the
        // maps themselves are still consistent, so keep using them.
        let mut g = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (name.to_owned(), rtype);
        if let Some(cell) = g.newer.get(&key) {
            return cell.clone();
        }
        let cell = match g.older.remove(&key) {
            Some(cell) => cell,
            None => Arc::new(OnceCell::new()),
        };
        if g.newer.len() >= self.generation_size {
            let full = std::mem::take(&mut g.newer);
            g.older = full;
        }
        g.newer.insert(key, cell.clone());
        cell
    }

    /// Questions held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|g| g.newer.len() + g.older.len())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_keeps_shared_questions() {
        let cache = QuestionCache::with_capacity(100);
        let shared = cache.cell("mx.provider.example.", RType::A);
        for i in 0..10_000 {
            cache.cell(&format!("d{i}.example."), RType::Mx);
            if i % 10 == 0 {
                // The shared question is asked by every tenth domain.
                assert!(
                    Arc::ptr_eq(&shared, &cache.cell("mx.provider.example.", RType::A)),
                    "evicted at {i}"
                );
            }
            assert!(cache.len() <= 100);
        }
        // A question of one domain is gone after two generations.
        let first = cache.cell("d0.example.", RType::Mx);
        assert!(first.get().is_none());
    }
}
