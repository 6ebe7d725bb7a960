//! Per-run question cache: each `(name, type)` is asked once per run, and askers
//! that arrive while it is in flight wait for the same answer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::{Answer, RType};

type Cell = Arc<OnceCell<Arc<Answer>>>;

#[derive(Default)]
pub(crate) struct QuestionCache {
    cells: Mutex<HashMap<(String, RType), Cell>>,
}

impl QuestionCache {
    /// The cell for a question, created empty on first use. When the task that
    /// fills a cell is cancelled, `OnceCell` lets the next asker fill it.
    pub(crate) fn cell(&self, name: &str, rtype: RType) -> Cell {
        // A poisoned lock only means another task panicked while inserting; the
        // map itself is still consistent, so keep using it.
        let mut cells = match self.cells.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        cells
            .entry((name.to_owned(), rtype))
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone()
    }
}
