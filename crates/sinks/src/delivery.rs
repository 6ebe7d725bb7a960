//! The one delivery loop (style rule 10). A sink makes one attempt per
//! [`Sink::send`] and classifies its failure; this loop does everything else,
//! the same way for every sink:
//!
//! 1. the sink's spooled batches first, oldest first — a receiver sees batches
//!    in the order they were made, so a finding that appeared and was resolved
//!    while it was down arrives as both events, in order;
//! 2. then the new batch;
//! 3. each with up to `attempts` tries: a retryable failure waits
//!    `Retry-After` when the receiver sent one, else an exponential backoff
//!    with full jitter, both capped by `max_backoff`;
//! 4. a batch that still fails is spooled (and, to keep the order, so is every
//!    batch behind it, untried); a permanent failure goes to the dead-letter
//!    folder; the queue then moves on.
//!
//! Nothing is dropped with only a log line: every batch ends delivered,
//! spooled or dead-lettered, and the [`DeliveryReport`] says which. The only way
//! to lose one is a spool that cannot be written; that is reported as `lost`.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::time::Duration;

use mxaudit_core::config::DeliverySection;
use mxaudit_core::sink::{Batch, SendError, Sink};

use crate::spool::{PendingBatch, Pushed, Spool};

/// How hard to try one batch in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per batch (the first try included) before it is spooled.
    pub attempts: u32,
    /// The first backoff; doubled per retry, with full jitter.
    pub backoff: Duration,
    /// The longest wait between two attempts, `Retry-After` included.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// `[delivery]` of the configuration, defaults for what it leaves out.
    pub fn from_section(section: &DeliverySection) -> RetryPolicy {
        let d = RetryPolicy::default();
        RetryPolicy {
            attempts: section.attempts.unwrap_or(d.attempts),
            backoff: section.backoff.unwrap_or(d.backoff),
            max_backoff: section.max_backoff.unwrap_or(d.max_backoff),
        }
    }

    /// The longest wait before retry number `retry` (0 for the first retry):
    /// `backoff × 2^retry`, capped by `max_backoff`.
    pub fn backoff_cap(&self, retry: u32) -> Duration {
        let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// The wait before retry number `retry`: the receiver's `Retry-After` when
    /// given (it knows best when it will accept again), else a uniformly random
    /// time up to [`RetryPolicy::backoff_cap`] ("full jitter", so that many
    /// agents hit by the same outage do not retry in lockstep). Both capped by
    /// `max_backoff`.
    pub fn wait(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(after) => after.min(self.max_backoff),
            None => {
                let cap = self.backoff_cap(retry);
                let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
                Duration::from_nanos(random_below(nanos.saturating_add(1)))
            }
        }
    }
}

/// A random number in `0..n` (0 when `n` is 0). Jitter needs no cryptographic
/// quality; a freshly keyed SipHash of the clock is random enough.
fn random_below(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    RandomState::new().hash_one(nanos) % n
}

/// How one batch ended in one [`deliver`] call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Outcome {
    /// The receiver accepted it.
    Delivered,
    /// In the spool now (put there by this call, or left there), to be tried
    /// again first on the next call.
    Spooled {
        /// The last failure, or why it was not tried (an older batch is stuck).
        reason: String,
    },
    /// Refused for good; written to the dead-letter folder.
    DeadLettered {
        /// The receiver's refusal.
        reason: String,
        /// The dead-letter file.
        path: PathBuf,
    },
    /// Neither delivered nor stored: the spool could not be written. The
    /// runner must fail loudly (exit status, metrics).
    Lost {
        /// The delivery failure and the spool failure.
        reason: String,
    },
}

/// One batch in a [`DeliveryReport`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BatchOutcome {
    /// The batch key (`<run id>/<sink id>`); empty for an unreadable spool file.
    pub key: String,
    /// Read from the spool (an earlier run's batch) rather than this run's.
    pub from_spool: bool,
    /// `send` calls made for it in this call.
    pub attempts: u32,
    /// How it ended.
    pub outcome: Outcome,
}

/// What one [`deliver`] call did, for logs, the exit status and `/metrics`.
/// Reasons never contain a secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    /// The sink id.
    pub sink: String,
    /// Batches accepted by the receiver (spooled ones included).
    pub delivered: usize,
    /// Batches put in the spool by this call.
    pub spooled: usize,
    /// Batches waiting in the spool after this call (including `spooled`).
    pub pending: usize,
    /// Batches moved to the dead-letter folder by this call.
    pub dead_lettered: usize,
    /// Batches neither delivered nor stored (the spool failed).
    pub lost: usize,
    /// `send` calls made.
    pub attempts: u32,
    /// Every batch handled, in the order handled (spooled ones first).
    pub batches: Vec<BatchOutcome>,
    /// Spool I/O failures met on the way.
    pub spool_errors: Vec<String>,
}

impl DeliveryReport {
    /// Everything was delivered and nothing waits or was refused.
    pub fn is_clean(&self) -> bool {
        self.pending == 0
            && self.dead_lettered == 0
            && self.lost == 0
            && self.spool_errors.is_empty()
    }

    /// The outcome of the batch handed to [`deliver`].
    pub fn current(&self) -> Option<&BatchOutcome> {
        self.batches
            .iter()
            .rev()
            .find(|b| !b.from_spool)
            .or_else(|| self.batches.last())
    }

    fn record(&mut self, key: &str, from_spool: bool, attempts: u32, outcome: Outcome) {
        match &outcome {
            Outcome::Delivered => self.delivered += 1,
            Outcome::Spooled { .. } => {}
            Outcome::DeadLettered { .. } => self.dead_lettered += 1,
            Outcome::Lost { .. } => self.lost += 1,
        }
        self.batches.push(BatchOutcome {
            key: key.to_owned(),
            from_spool,
            attempts,
            outcome,
        });
    }
}

/// Delivers `batch` to `sink`: first the sink's spooled batches, in order,
/// then this one, each with retries per `policy`; spools what still fails and
/// dead-letters what is refused. Never returns an error: the report says what
/// happened to every batch.
pub async fn deliver(
    sink: &dyn Sink,
    batch: &Batch,
    spool: &Spool,
    policy: &RetryPolicy,
) -> DeliveryReport {
    let id = sink.id().to_owned();
    let mut report = DeliveryReport {
        sink: id.clone(),
        ..DeliveryReport::default()
    };
    // Set once a batch exhausts its retries: the receiver is down, so every
    // later batch waits in the spool behind it, untried, to keep the order.
    let mut stuck: Option<String> = None;
    let mut current_handled = false;

    let pending = match spool.pending(&id) {
        Ok(p) => p,
        Err(e) => {
            // Without the spool the order cannot be kept; delivering the new
            // batch late would be worse than delivering it out of order.
            report.spool_errors.push(e.to_string());
            Vec::new()
        }
    };
    for entry in pending {
        let key = entry.key().unwrap_or_default().to_owned();
        if key == batch.key {
            current_handled = true;
        }
        deliver_spooled(sink, &entry, spool, policy, &mut stuck, &mut report).await;
    }

    if !current_handled {
        let (attempts, result) = match &stuck {
            Some(reason) => (
                0,
                Err(SendError::Retryable {
                    reason: reason.clone(),
                    retry_after: None,
                }),
            ),
            None => attempt(sink, batch, policy).await,
        };
        report.attempts += attempts;
        let outcome = match result {
            Ok(()) => Outcome::Delivered,
            Err(SendError::Permanent { reason }) => match spool.dead_letter(&id, batch, &reason) {
                Ok(path) => Outcome::DeadLettered { reason, path },
                Err(e) => Outcome::Lost {
                    reason: format!("{reason}; and the dead-letter folder failed: {e}"),
                },
            },
            Err(SendError::Retryable { reason, .. }) => match spool.push(&id, batch, &reason) {
                Ok(Pushed::Added(_)) => {
                    report.spooled += 1;
                    Outcome::Spooled { reason }
                }
                Ok(Pushed::AlreadySpooled(_)) => Outcome::Spooled { reason },
                Err(e) => Outcome::Lost {
                    reason: format!("{reason}; and the spool failed: {e}"),
                },
            },
            // `SendError` is non-exhaustive: an unknown kind is kept, not dropped.
            Err(other) => match spool.push(&id, batch, &other.to_string()) {
                Ok(_) => Outcome::Spooled {
                    reason: other.to_string(),
                },
                Err(e) => Outcome::Lost {
                    reason: format!("{other}; and the spool failed: {e}"),
                },
            },
        };
        report.record(&batch.key, false, attempts, outcome);
    }

    match spool.pending_count(&id) {
        Ok(n) => report.pending = n,
        Err(e) => report.spool_errors.push(e.to_string()),
    }
    report
}

/// Delivers one spooled batch (or leaves it in place when the queue is stuck).
async fn deliver_spooled(
    sink: &dyn Sink,
    entry: &PendingBatch,
    spool: &Spool,
    policy: &RetryPolicy,
    stuck: &mut Option<String>,
    report: &mut DeliveryReport,
) {
    let id = sink.id();
    let batch = match &entry.batch {
        Ok(batch) => batch,
        Err(why) => {
            // A file the spool cannot read is kept for an operator, and counted.
            let outcome = match spool.bury(id, entry, why) {
                Ok(path) => Outcome::DeadLettered {
                    reason: why.clone(),
                    path,
                },
                Err(e) => {
                    report.spool_errors.push(e.to_string());
                    Outcome::Spooled {
                        reason: why.clone(),
                    }
                }
            };
            report.record("", true, 0, outcome);
            return;
        }
    };
    if let Some(reason) = stuck {
        let reason = format!("waiting behind an undelivered batch: {reason}");
        report.record(&batch.key, true, 0, Outcome::Spooled { reason });
        return;
    }
    let (attempts, result) = attempt(sink, batch, policy).await;
    report.attempts += attempts;
    let outcome = match result {
        Ok(()) => {
            if let Err(e) = spool.remove(entry) {
                // Delivered but still on disk: the next call sends it again,
                // which the idempotency key makes harmless.
                report.spool_errors.push(e.to_string());
            }
            Outcome::Delivered
        }
        Err(SendError::Permanent { reason }) => match spool.bury(id, entry, &reason) {
            Ok(path) => Outcome::DeadLettered { reason, path },
            Err(e) => {
                report.spool_errors.push(e.to_string());
                Outcome::Spooled { reason }
            }
        },
        Err(other) => {
            let reason = match other {
                SendError::Retryable { reason, .. } => reason,
                other => other.to_string(),
            };
            *stuck = Some(reason.clone());
            Outcome::Spooled { reason }
        }
    };
    report.record(&batch.key, true, attempts, outcome);
}

/// Up to `policy.attempts` tries of one batch: stops at success, at a permanent
/// failure, or when the tries are used up. Returns the tries made and the
/// last result.
async fn attempt(
    sink: &dyn Sink,
    batch: &Batch,
    policy: &RetryPolicy,
) -> (u32, Result<(), SendError>) {
    let attempts = policy.attempts.max(1);
    let mut tries = 0;
    loop {
        tries += 1;
        match sink.send(batch).await {
            Ok(()) => return (tries, Ok(())),
            Err(SendError::Retryable { retry_after, .. }) if tries < attempts => {
                tokio::time::sleep(policy.wait(tries - 1, retry_after)).await;
            }
            Err(e) => return (tries, Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let p = RetryPolicy {
            attempts: 10,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        assert_eq!(p.backoff_cap(0), Duration::from_millis(100));
        assert_eq!(p.backoff_cap(2), Duration::from_millis(400));
        assert_eq!(p.backoff_cap(3), Duration::from_millis(500));
        assert_eq!(p.backoff_cap(200), Duration::from_millis(500));
        for retry in 0..5 {
            assert!(p.wait(retry, None) <= p.backoff_cap(retry));
        }
    }

    #[test]
    fn retry_after_is_honoured_up_to_max_backoff() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.wait(0, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn jitter_spreads() {
        let p = RetryPolicy {
            attempts: 4,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        };
        let waits: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| p.wait(3, None)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }
}
