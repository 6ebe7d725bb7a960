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
/// One cell per record type of a name, indexed by `RType as usize`.
const SLOTS: usize = RType::Other as usize + 1;
type Slots = [Option<Cell>; SLOTS];
/// Keyed by name alone, so that a hit needs no allocation (the lookup borrows
/// the asker's `&str`); foldhash, seeded per process, because names come from
/// DNS data and user lists.
type Map = HashMap<Box<str>, Slots, foldhash::quality::RandomState>;

struct Generations {
    newer: Map,
    older: Map,
}

/// The cache of one run. Cheap to share behind the `Dns` handle.
pub(crate) struct QuestionCache {
    inner: Mutex<Generations>,
    generation_size: usize,
}

impl Default for QuestionCache {
    fn default() -> Self {
        QuestionCache::with_capacity(100_000)
    }
}

impl QuestionCache {
    /// A cache holding about `capacity` names (two generations of half each).
    pub(crate) fn with_capacity(capacity: usize) -> QuestionCache {
        QuestionCache {
            inner: Mutex::new(Generations {
                newer: Map::default(),
                older: Map::default(),
            }),
            generation_size: (capacity / 2).max(1),
        }
    }

    /// The cell of `(name, rtype)`: empty the first time (the caller fills it
    /// by asking), shared by every later asker.
    pub(crate) fn cell(&self, name: &str, rtype: RType) -> Cell {
        // A poisoned lock only means another task panicked while inserting; the
        // maps themselves are still consistent, so keep using them.
        let mut g = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let slot = rtype as usize;
        if let Some(slots) = g.newer.get_mut(name) {
            return slots[slot]
                .get_or_insert_with(|| Arc::new(OnceCell::new()))
                .clone();
        }
        let mut slots = g.older.remove(name).unwrap_or_default();
        let cell = slots[slot]
            .get_or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        if g.newer.len() >= self.generation_size {
            let full = std::mem::take(&mut g.newer);
            g.older = full;
        }
        g.newer.insert(name.into(), slots);
        cell
    }

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
