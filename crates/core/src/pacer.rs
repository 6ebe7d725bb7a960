//! Politeness towards the servers an audit connects to: one session at a time
//! per server address, with a pause after each, whichever plugin or domain
//! asks. One pacer lives as long as the agent and is handed to every run in
//! its scope ([`crate::check::RunScope`]), so overlapping runs of a daemon
//! share it too.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

type Slot = Arc<tokio::sync::Mutex<Option<Instant>>>;

/// When the last session to each address ended, and who holds it now.
#[derive(Debug, Default)]
pub struct SessionPacer {
    slots: Mutex<HashMap<SocketAddr, Slot>>,
}

/// Slots kept at most before idle ones are dropped; an address in use keeps its slot.
const MAX_IDLE_SLOTS: usize = 4096;

impl SessionPacer {
    /// Runs `f` when no other session to `peer` runs and `delay` has passed
    /// since the last one ended; `None` when `deadline` came first.
    pub async fn paced<F, Fut, T>(
        &self,
        peer: SocketAddr,
        delay: Duration,
        deadline: Instant,
        f: F,
    ) -> Option<T>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let slot = {
            let mut map = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            if map.len() > MAX_IDLE_SLOTS {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(peer).or_default().clone()
        };
        let mut last = tokio::time::timeout_at(deadline, slot.lock_owned())
            .await
            .ok()?;
        if let Some(ended) = *last {
            let resume = ended + delay;
            if resume >= deadline {
                return None;
            }
            tokio::time::sleep_until(resume).await;
        }
        let out = f().await;
        *last = Some(Instant::now());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sessions_to_one_address_wait_for_each_other() {
        let pacer = Arc::new(SessionPacer::default());
        let peer: SocketAddr = "127.0.0.1:25".parse().expect("addr");
        let started = Instant::now();
        let deadline = started + Duration::from_secs(5);
        let delay = Duration::from_millis(200);
        let a = pacer.paced(peer, delay, deadline, || async { Instant::now() });
        let b = pacer.paced(peer, delay, deadline, || async { Instant::now() });
        let (a, b) = tokio::join!(a, b);
        let (a, b) = (a.expect("first"), b.expect("second"));
        let gap = if a < b { b - a } else { a - b };
        assert!(gap >= delay, "{gap:?}");
        // A deadline before the pause ends: not run at all.
        let short = Instant::now() + Duration::from_millis(50);
        assert!(pacer.paced(peer, delay, short, || async {}).await.is_none());
    }
}
