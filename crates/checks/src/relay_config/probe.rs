//! The configuration's relay verdict against the SMTP probe's (the `smtp`
//! engine's open-relay test of the same host). When they disagree, one of
//! them is not looking at what receives the domain's mail:
//!
//! - configuration open, probe refused: something in front of the server (a
//!   firewall, a filtering service, another MX hop) refuses relaying, or the
//!   probe reached another host; the server itself would relay for whoever
//!   reaches it directly.
//! - probe open, configuration closed: the exported files are not what runs
//!   (another instance, a stale export, settings changed since), or the probe
//!   reached another host.
//!
//! Pure functions; the pipeline hands both verdicts in (through the check
//! context once engines reach each other there).

use serde::Serialize;

use mxaudit_core::Observation;

use super::Relay;
use crate::smtp::ProbeTranscript;

/// What the SMTP probe found about relaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeRelay {
    /// A foreign recipient was accepted from an unauthenticated client.
    Open,
    /// Every relay form was refused.
    Refused,
    /// The probe did not get that far, or could not tell.
    Undecided,
}

/// Codes of the smtp engine that mean the dialogue never reached the relay test.
const NOT_REACHED: &[&str] = &[
    "smtp.connection_refused",
    "smtp.timeout",
    "smtp.unreachable",
    "smtp.greeting_error",
    "smtp.dropped",
];

impl ProbeRelay {
    /// The verdict of a probe's observations and undecided parts.
    pub fn from_observations(
        observations: &[Observation],
        undecided: &[String],
        probed: bool,
    ) -> ProbeRelay {
        if observations.iter().any(|o| o.code == "smtp.open_relay") {
            return ProbeRelay::Open;
        }
        // The smtp engine words an undecided relay test as "open-relay probe
        // incomplete" or "every relay form was deferred" (observe.rs).
        let relay_undecided = undecided.iter().any(|u| u.contains("relay"));
        if !probed
            || relay_undecided
            || observations
                .iter()
                .any(|o| NOT_REACHED.contains(&o.code.as_str()))
        {
            return ProbeRelay::Undecided;
        }
        ProbeRelay::Refused
    }

    /// The verdict of `mxaudit smtp`'s library call.
    pub fn from_transcript(t: &ProbeTranscript) -> ProbeRelay {
        ProbeRelay::from_observations(&t.observations, &t.errors, !t.sessions.is_empty())
    }

    /// `open`, `refused`, `undecided`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeRelay::Open => "open",
            ProbeRelay::Refused => "refused",
            ProbeRelay::Undecided => "undecided",
        }
    }
}

/// Whether the two verdicts agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Agreement {
    /// Both say open: the probe confirms the configuration.
    BothOpen,
    /// Both say closed.
    BothClosed,
    /// The configuration relays, the probe was refused.
    ConfigOpenProbeRefused,
    /// The probe relayed, the configuration looks closed.
    ProbeOpenConfigClosed,
    /// One of them could not decide.
    Undecided,
}

impl Agreement {
    /// `both_open`, `config_open_probe_refused`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Agreement::BothOpen => "both_open",
            Agreement::BothClosed => "both_closed",
            Agreement::ConfigOpenProbeRefused => "config_open_probe_refused",
            Agreement::ProbeOpenConfigClosed => "probe_open_config_closed",
            Agreement::Undecided => "undecided",
        }
    }
}

/// Compares the configuration's verdict with the probe's.
pub fn compare(config: Relay, probe: ProbeRelay) -> Agreement {
    match (config, probe) {
        (Relay::Open, ProbeRelay::Open) => Agreement::BothOpen,
        (Relay::Closed, ProbeRelay::Refused) => Agreement::BothClosed,
        (Relay::Open, ProbeRelay::Refused) => Agreement::ConfigOpenProbeRefused,
        (Relay::Closed, ProbeRelay::Open) => Agreement::ProbeOpenConfigClosed,
        (Relay::Undecided, _) | (_, ProbeRelay::Undecided) => Agreement::Undecided,
    }
}

/// `relay_config.probe_mismatch` when the verdicts disagree; `host` is the
/// probed MX host, the subject.
pub fn mismatch(config: Relay, probe: ProbeRelay, host: &str) -> Option<Observation> {
    let agreement = compare(config, probe);
    match agreement {
        Agreement::ConfigOpenProbeRefused | Agreement::ProbeOpenConfigClosed => Some(
            Observation::new("relay_config.probe_mismatch", host)
                .evidence(format!("relay configuration review: {}", config.as_str()))
                .evidence(format!("SMTP probe of {host}: {}", probe.as_str()))
                .var("direction", agreement.as_str())
                .var("host", host)
                .var("config_verdict", config.as_str())
                .var("probe_verdict", probe.as_str()),
        ),
        Agreement::BothOpen | Agreement::BothClosed | Agreement::Undecided => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agreement_table() {
        use Agreement::*;
        let cases = [
            (Relay::Open, ProbeRelay::Open, BothOpen),
            (Relay::Closed, ProbeRelay::Refused, BothClosed),
            (Relay::Open, ProbeRelay::Refused, ConfigOpenProbeRefused),
            (Relay::Closed, ProbeRelay::Open, ProbeOpenConfigClosed),
            (Relay::Undecided, ProbeRelay::Open, Undecided),
            (Relay::Open, ProbeRelay::Undecided, Undecided),
        ];
        for (c, p, want) in cases {
            assert_eq!(compare(c, p), want, "{c:?} {p:?}");
            assert_eq!(
                mismatch(c, p, "mx.example.com").is_some(),
                matches!(want, ConfigOpenProbeRefused | ProbeOpenConfigClosed)
            );
        }
        let o = mismatch(Relay::Open, ProbeRelay::Refused, "mx.example.com").expect("mismatch");
        assert_eq!(o.code, "relay_config.probe_mismatch");
        assert_eq!(o.vars["direction"], "config_open_probe_refused");
    }

    #[test]
    fn probe_verdicts() {
        let open = Observation::new("smtp.open_relay", "mx");
        let refused = Observation::new("smtp.connection_refused", "mx");
        assert_eq!(
            ProbeRelay::from_observations(&[open], &[], true),
            ProbeRelay::Open
        );
        assert_eq!(
            ProbeRelay::from_observations(&[], &[], true),
            ProbeRelay::Refused
        );
        assert_eq!(
            ProbeRelay::from_observations(&[refused], &[], true),
            ProbeRelay::Undecided
        );
        assert_eq!(
            ProbeRelay::from_observations(&[], &[], false),
            ProbeRelay::Undecided
        );
        assert_eq!(
            ProbeRelay::from_observations(
                &[],
                &["mx: open-relay probe incomplete (3 of 16 forms tried before the session ended)".into()],
                true
            ),
            ProbeRelay::Undecided
        );
    }
}
