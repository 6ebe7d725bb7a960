//! Results derived from answers, computed once per run: e.g. a domain's MX
//! hosts with their addresses, which the mx, ptr and every blocklist plugin of
//! a domain need. The questions behind them are cached anyway (cache.rs);
//! this saves re-reading a dozen cached answers and rebuilding the same
//! strings for each plugin of each domain (docs/performance.md).
//!
//! Bounded like the question cache (two generations), but smaller: a derived
//! result is needed while its domain's checks run, and a run has at most a
//! few thousand domains in flight (two chunks of 1,000), so memory stays flat
//! on long domain lists.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

type Value = Arc<dyn Any + Send + Sync>;
type Cell = Arc<OnceCell<Value>>;
type Map = HashMap<(TypeId, Box<str>), Cell, foldhash::quality::RandomState>;

/// Entries kept at most (both generations).
const MAX_ENTRIES: usize = 8192;

pub(crate) struct DerivedCache {
    generations: Mutex<(Map, Map)>,
    generation_size: usize,
}

impl DerivedCache {
    pub(crate) fn with_capacity(capacity: usize) -> DerivedCache {
        let capacity = capacity.min(MAX_ENTRIES);
        DerivedCache {
            generations: Mutex::new((Map::default(), Map::default())),
            generation_size: (capacity / 2).max(1),
        }
    }

    /// The cell of `(T, key)`, moved to the newer generation.
    pub(crate) fn cell<T: 'static>(&self, key: &str) -> Cell {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        let k = (TypeId::of::<T>(), Box::<str>::from(key));
        if let Some(cell) = g.0.get(&k) {
            return cell.clone();
        }
        let cell = g.1.remove(&k).unwrap_or_default();
        if g.0.len() >= self.generation_size {
            let full = std::mem::take(&mut g.0);
            g.1 = full;
        }
        g.0.insert(k, cell.clone());
        cell
    }
}
