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

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::OnceCell;

use crate::{Answer, RType};

/// A map bounded by two generations (see the module comment): the newer one
/// receives every insert and every hit; when it is full it becomes the older
/// one and the previous older one is dropped. Shared by the question cache and
/// the derived-result cache (derived.rs). foldhash, seeded per process,
/// because keys come from DNS data and user lists.
pub(crate) struct Generations<K, V> {
    newer: HashMap<K, V, foldhash::quality::RandomState>,
    older: HashMap<K, V, foldhash::quality::RandomState>,
    generation_size: usize,
}

impl<K: Hash + Eq, V: Default> Generations<K, V> {
    /// Room for about `capacity` entries (two generations of half each).
    pub(crate) fn with_capacity(capacity: usize) -> Generations<K, V> {
        Generations {
            newer: HashMap::default(),
            older: HashMap::default(),
            generation_size: (capacity / 2).max(1),
        }
    }

    /// Applies `f` to the entry of `key` (a default one the first time),
    /// moving it to the newer generation. `owned` makes the key to store, so
    /// that a hit needs no allocation when `Q` is borrowed (`&str`).
    pub(crate) fn with<Q, R>(
        &mut self,
        key: &Q,
        owned: impl FnOnce() -> K,
        f: impl FnOnce(&mut V) -> R,
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(v) = self.newer.get_mut(key) {
            return f(v);
        }
        let mut v = self.older.remove(key).unwrap_or_default();
        let r = f(&mut v);
        if self.newer.len() >= self.generation_size {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(owned(), v);
        r
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.newer.len() + self.older.len()
    }
}

/// Locks a mutex of the DNS layer (caches, socket pools, waiters). A
/// poisoned lock only means another task panicked while holding it; the
/// data behind these locks stays consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

type Cell = Arc<OnceCell<Arc<Answer>>>;
/// One cell per record type of a name, indexed by `RType as usize`.
const SLOTS: usize = RType::Other as usize + 1;
type Slots = [Option<Cell>; SLOTS];

/// The cache of one run. Cheap to share behind the `Dns` handle. Keyed by
/// name alone, so that a hit needs no allocation (the lookup borrows the
/// asker's `&str`).
pub(crate) struct QuestionCache {
    inner: Mutex<Generations<Box<str>, Slots>>,
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
            inner: Mutex::new(Generations::with_capacity(capacity)),
        }
    }

    /// The cell of `(name, rtype)`: empty the first time (the caller fills it
    /// by asking), shared by every later asker.
    pub(crate) fn cell(&self, name: &str, rtype: RType) -> Cell {
        let slot = rtype as usize;
        lock(&self.inner).with(
            name,
            || name.into(),
            |slots| {
                slots[slot]
                    .get_or_insert_with(|| Arc::new(OnceCell::new()))
                    .clone()
            },
        )
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).len()
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
