//! JSON Lines. A run's batch: one event per line, each carrying its batch key
//! and run, so a file can grow run after run and be followed (`tail -f`, log
//! shippers). An audit (no history): one finding per line, written chunk by
//! chunk as domains finish.

use crate::model::Finding;
use crate::sink::{Batch, Change};
use serde::{Deserialize, Serialize};

/// One line.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    /// The batch key: lines of one delivery share it (and a consumer can drop
    /// a batch it has seen).
    pub batch: &'a str,
    /// The run.
    pub run_id: &'a str,
    /// The schedule, if any.
    pub schedule: Option<&'a str>,
    /// RFC 3339, when the run started.
    pub started_at: &'a str,
    /// New, ongoing or resolved.
    pub change: Option<Change>,
    /// The finding.
    pub finding: &'a Finding,
}

/// The lines of a batch, each ending in `\n` (empty when it has no events).
pub fn render(batch: &Batch) -> String {
    // Plain data with string keys always serializes; a line that did not is left out.
    lines(batch).unwrap_or_default()
}

/// [`render`], with the encoding error.
pub fn lines(batch: &Batch) -> Result<String, serde_json::Error> {
    let mut out = String::new();
    if !batch.history {
        for e in &batch.events {
            out.push_str(&serde_json::to_string(&e.finding)?);
            out.push('\n');
        }
        return Ok(out);
    }
    for e in &batch.events {
        let line = Line {
            batch: &batch.key,
            run_id: &batch.run_id,
            schedule: batch.schedule.as_deref(),
            started_at: &batch.started_at,
            change: e.change,
            finding: &e.finding,
        };
        out.push_str(&serde_json::to_string(&line)?);
        out.push('\n');
    }
    Ok(out)
}

/// The batch key of the last complete line of `tail` (the end of a file), if
/// it is one of ours.
pub fn last_batch_key(tail: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct KeyOnly {
        batch: String,
    }
    let last = tail.trim_end_matches('\n').rsplit('\n').next()?;
    serde_json::from_str::<KeyOnly>(last).ok().map(|k| k.batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_event_with_the_batch_key() {
        let b = super::super::fixtures::batch();
        let text = render(&b);
        assert_eq!(text.lines().count(), 3);
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
            assert_eq!(v["batch"], "run-7/alerts");
        }
        assert_eq!(last_batch_key(&text).as_deref(), Some("run-7/alerts"));
        assert_eq!(last_batch_key("garbage\n"), None);
    }
}
