//! The per-list rate limit.

use super::*;

/// Paces the questions sent to one list: at most one per `interval`, shared by
/// every target of the run (the engine lives as long as the loaded plugin).
///
/// Only questions that go out must wait. The run's DNS cache answers repeated
/// names without a query, so a name granted a slot within [`PACED_WINDOW`]
/// waits only for that same slot: a thousand domains on one shared address cost
/// one slot, not a thousand. (A later run within the window asks such a name
/// unpaced once; that is at most one extra question per name.)
pub(super) struct Pacer {
    pub(super) interval: Duration,
    pub(super) state: Mutex<PacerState>,
}

pub(super) struct PacerState {
    pub(super) next_slot: Instant,
    pub(super) granted: HashMap<String, Instant>,
}

impl Pacer {
    pub(super) fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            state: Mutex::new(PacerState {
                next_slot: Instant::now(),
                granted: HashMap::new(),
            }),
        }
    }

    /// When `name` may be asked.
    pub(super) fn slot_for(&self, name: &str) -> Instant {
        let now = Instant::now();
        // The state stays consistent even if a holder panicked: keep using it.
        let mut s = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(&slot) = s.granted.get(name)
            && now < slot + PACED_WINDOW
        {
            return slot;
        }
        let slot = s.next_slot.max(now);
        s.next_slot = slot + self.interval;
        if s.granted.len() >= 4096 {
            s.granted.retain(|_, t| now < *t + PACED_WINDOW);
        }
        s.granted.insert(name.to_owned(), slot);
        slot
    }
}
