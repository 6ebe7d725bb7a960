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
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::cache::{Generations, lock};

type Value = Arc<dyn Any + Send + Sync>;
type Cell = Arc<OnceCell<Value>>;

/// Entries kept at most (both generations).
const MAX_ENTRIES: usize = 8192;

pub(crate) struct DerivedCache {
    inner: Mutex<Generations<(TypeId, Box<str>), Cell>>,
}

impl DerivedCache {
    pub(crate) fn with_capacity(capacity: usize) -> DerivedCache {
        DerivedCache {
            inner: Mutex::new(Generations::with_capacity(capacity.min(MAX_ENTRIES))),
        }
    }

    /// The cell of `(T, key)`, moved to the newer generation.
    pub(crate) fn cell<T: 'static>(&self, key: &str) -> Cell {
        let k = (TypeId::of::<T>(), Box::<str>::from(key));
        lock(&self.inner).with(&k, || k.clone(), |cell| cell.clone())
    }
}
