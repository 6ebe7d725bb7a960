//! Engine `mta_sts`: MTA Strict Transport Security (RFC 8461) as senders
//! apply it.
//!
//! 1. The TXT record at `_mta-sts.<domain>` (§3.1, `record.rs`): absent,
//!    duplicated or malformed, senders have no policy.
//! 2. Only with one valid record, the policy at
//!    `https://mta-sts.<domain>/.well-known/mta-sts.txt` (§3.3, `fetch.rs`),
//!    fetched once per run: unreachable, a certificate not valid for the
//!    policy host, a body that is not a policy (§3.2, `policy.rs`).
//! 3. A valid policy: every MX host of the domain must match an `mx:` pattern
//!    (§4.1) — in `enforce` mode compliant senders refuse the others — plus
//!    `testing` mode and a short `max_age`, which weaken the protection.

pub mod fetch;
pub mod policy;
pub mod preflight;
pub mod record;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};
use mxaudit_dns::{Answer, DomainName, RType};

use self::fetch::{FetchFailure, FetchOptions, PolicyFetch, fetch_policy};
use self::policy::{Mode, Policy};
use self::record::{StsRecord, clip, looks_like_sts, parse_record};

/// `[params]` of the `mta_sts` engine. Durations are humantime strings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MtaStsParams {
    /// HTTPS port of the policy host: 443 (RFC 8461 §3.3); another only for
    /// labs and tests.
    #[serde(default = "default_port")]
    pub port: u16,
    /// TCP connect timeout, per address.
    #[serde(default = "d_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The whole fetch: connection, TLS, request and body.
    #[serde(default = "d_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM files of extra trusted CAs (a private policy host); relative paths
    /// are relative to the manifest. `--ca-file` adds to them.
    #[serde(default)]
    pub ca_files: Vec<String>,
    /// A `max_age` below this is reported (`mta_sts.max_age_short`).
    #[serde(default = "d_max_age_min", with = "humantime_serde")]
    pub max_age_min: Duration,
}

/// `[params.mta_sts]` of engines that fetch a policy for another purpose
/// (`preflight`): the same fetch settings as the `mta_sts` engine's.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFetchParams {
    /// HTTPS port of the policy host (443).
    #[serde(default = "default_port")]
    pub port: u16,
    /// TCP connect timeout, per address.
    #[serde(default = "d_connect", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// The whole fetch.
    #[serde(default = "d_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// PEM files of extra trusted CAs; relative to the manifest.
    #[serde(default)]
    pub ca_files: Vec<String>,
}

impl Default for PolicyFetchParams {
    fn default() -> Self {
        PolicyFetchParams {
            port: default_port(),
            connect_timeout: d_connect(),
            timeout: d_timeout(),
            ca_files: Vec::new(),
        }
    }
}

impl PolicyFetchParams {
    /// The fetch options, validated (no I/O).
    pub fn options(&self, plugin: &PluginMeta) -> Result<FetchOptions, String> {
        let options = FetchOptions {
            port: self.port,
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            ca_files: manifest_paths(plugin, &self.ca_files),
        };
        options.validate().map_err(|e| format!("mta_sts.{e}"))?;
        Ok(options)
    }
}

/// The fetch options of a run: the manifest's CA files plus the run's
/// (`--ca-file`, from the check context).
pub(crate) fn with_run_ca_files(options: &FetchOptions, cx: &CheckCx) -> FetchOptions {
    let mut options = options.clone();
    options.ca_files.extend(cx.run.ca_files.iter().cloned());
    options
}

fn default_port() -> u16 {
    FetchOptions::default().port
}
fn d_connect() -> Duration {
    FetchOptions::default().connect_timeout
}
fn d_timeout() -> Duration {
    FetchOptions::default().timeout
}
fn d_max_age_min() -> Duration {
    Duration::from_secs(86_400)
}

/// Paths of a manifest's `ca_files`: relative ones belong to the manifest's
/// folder (pure path joining, no I/O).
pub(crate) fn manifest_paths(plugin: &PluginMeta, files: &[String]) -> Vec<PathBuf> {
    let base = Path::new(&plugin.source)
        .parent()
        .filter(|_| !plugin.source.starts_with("builtin:"));
    files
        .iter()
        .map(|f| match base {
            Some(dir) if Path::new(f).is_relative() => dir.join(f),
            _ => PathBuf::from(f),
        })
        .collect()
}

/// The `mta_sts` engine.
#[derive(Debug)]
pub struct MtaSts {
    fetch: FetchOptions,
    max_age_min: Duration,
}

/// What the `_mta-sts` TXT lookup found.
#[derive(Debug, Clone)]
pub enum RecordLookup {
    /// No record starting with `v=STSv1`; the evidence says what was there.
    Absent {
        /// One line per record seen, or the negative answer.
        evidence: Vec<String>,
    },
    /// The lookup failed: undecided.
    Failed(String),
    /// One or more records that senders discard.
    Invalid {
        /// The records that look like MTA-STS records.
        values: Vec<String>,
        /// Why senders discard them.
        problem: String,
        /// The records, for evidence.
        evidence: Vec<String>,
    },
    /// Exactly one valid record.
    Valid {
        /// The parsed record.
        record: StsRecord,
        /// Its evidence line.
        evidence: String,
    },
}

/// Looks up and parses `_mta-sts.<domain>` (RFC 8461 §3.1).
pub async fn lookup_record(domain: &DomainName, cx: &CheckCx) -> RecordLookup {
    let name = match domain.prepend("_mta-sts") {
        Ok(n) => n,
        Err(e) => return RecordLookup::Failed(e.to_string()),
    };
    let answer = cx.dns.query(&name, RType::Txt).await;
    let all: Vec<(String, String)> = match answer.as_ref() {
        Answer::Records(set) => set
            .iter()
            .filter(|r| r.data.rtype() == RType::Txt)
            .map(|r| {
                let joined = match &r.data {
                    mxaudit_dns::Rdata::Txt(strings) => {
                        String::from_utf8_lossy(&strings.concat()).into_owned()
                    }
                    other => other.to_string(),
                };
                (
                    joined,
                    format!("{} {} TXT {}", name.as_str(), r.ttl, r.data),
                )
            })
            .collect(),
        Answer::NxDomain { .. } | Answer::NoData { .. } => Vec::new(),
        Answer::Failed(why) => {
            return RecordLookup::Failed(format!("{} TXT: {why}", name.as_str()));
        }
    };
    let (sts, other): (Vec<_>, Vec<_>) = all.into_iter().partition(|(t, _)| looks_like_sts(t));
    if sts.is_empty() {
        let evidence = if other.is_empty() {
            vec![format!("{} TXT: {}", name.as_str(), answer.describe())]
        } else {
            other.into_iter().map(|(_, e)| e).collect()
        };
        return RecordLookup::Absent { evidence };
    }
    let values: Vec<String> = sts.iter().map(|(t, _)| clip(t)).collect();
    let evidence: Vec<String> = sts.iter().map(|(_, e)| e.clone()).collect();
    if sts.len() > 1 {
        // §3.1: more than one record means no policy.
        return RecordLookup::Invalid {
            values,
            problem: format!(
                "{} records; senders ignore them all unless there is exactly one",
                sts.len()
            ),
            evidence,
        };
    }
    match parse_record(&sts[0].0) {
        Ok(record) => RecordLookup::Valid {
            record,
            evidence: evidence.into_iter().next().unwrap_or_default(),
        },
        Err(problem) => RecordLookup::Invalid {
            values,
            problem,
            evidence,
        },
    }
}

/// The first lines of a body, for evidence (escaped, clipped).
fn body_lines(bytes: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let mut lines: Vec<String> = text
        .split('\n')
        .take(12)
        .map(|l| format!("  | {}", clip(l.trim_end_matches('\r'))))
        .collect();
    if text.split('\n').count() > 12 {
        lines.push("  | …".to_owned());
    }
    lines
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl Engine for MtaSts {
    const NAME: &'static str = "mta_sts";
    const CODES: &'static [CodeSpec] = &[
        CodeSpec {
            code: "mta_sts.missing",
            vars: &["query"],
        },
        CodeSpec {
            code: "mta_sts.syntax",
            vars: &["query", "count", "values", "problem"],
        },
        CodeSpec {
            code: "mta_sts.policy_unreachable",
            vars: &["url", "host", "reason"],
        },
        CodeSpec {
            code: "mta_sts.policy_cert_invalid",
            vars: &["url", "host", "reason"],
        },
        CodeSpec {
            code: "mta_sts.policy_syntax",
            vars: &["url", "host", "problem"],
        },
        CodeSpec {
            code: "mta_sts.mx_not_covered",
            vars: &["url", "mx_host", "preference", "patterns"],
        },
        CodeSpec {
            code: "mta_sts.mx_not_covered_testing",
            vars: &["url", "mx_host", "preference", "patterns"],
        },
        CodeSpec {
            code: "mta_sts.testing_mode",
            vars: &["url", "patterns", "max_age_human"],
        },
        CodeSpec {
            code: "mta_sts.max_age_short",
            vars: &["url", "max_age", "max_age_human", "threshold_human"],
        },
    ];
    /// It fetches the policy over HTTPS: not part of `--dns-only`.
    // The policy fetch connects, but the record check is DNS: a DNS-only run
    // keeps the plugin and skips the fetch (`RunScope::dns_only`).
    const CONNECTS: bool = false;
    type Params = MtaStsParams;

    fn build(params: MtaStsParams, plugin: &PluginMeta) -> Result<Self, String> {
        let fetch = FetchOptions {
            port: params.port,
            connect_timeout: params.connect_timeout,
            timeout: params.timeout,
            ca_files: manifest_paths(plugin, &params.ca_files),
        };
        fetch.validate()?;
        Ok(MtaSts {
            fetch,
            max_age_min: params.max_age_min,
        })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let domain = &target.domain;
        // A domain that does not exist is `domain.nxdomain` (engine mx), nothing more.
        let mx_answer = cx.dns.query(domain, RType::Mx).await;
        if matches!(mx_answer.as_ref(), Answer::NxDomain { .. }) {
            return report;
        }
        let query = format!("_mta-sts.{}", domain.bare());
        let record_evidence = match lookup_record(domain, cx).await {
            RecordLookup::Failed(why) => {
                report.error(why);
                return report;
            }
            RecordLookup::Absent { evidence } => {
                report.push(
                    Observation::new("mta_sts.missing", &query)
                        .evidence_lines(evidence)
                        .var("query", query.clone()),
                );
                return report;
            }
            RecordLookup::Invalid {
                values,
                problem,
                evidence,
            } => {
                report.push(
                    Observation::new("mta_sts.syntax", &query)
                        .evidence_lines(evidence)
                        .var("query", query.clone())
                        .var("count", values.len())
                        .var("values", values.join(" | "))
                        .var("problem", problem),
                );
                return report;
            }
            RecordLookup::Valid { evidence, .. } => evidence,
        };

        // Only now, with a valid record, is the policy fetched (§3.3) — not
        // in a DNS-only run, which connects to nothing but name servers.
        if cx.run.dns_only {
            return report;
        }
        let host = match domain.prepend("mta-sts") {
            Ok(h) => h,
            Err(e) => {
                report.error(format!("mta-sts.{domain}: {e}"));
                return report;
            }
        };
        let fetched = fetch_policy(&host, &with_run_ca_files(&self.fetch, cx), cx).await;
        let Some(policy) = self.judge_fetch(&fetched, &host, &record_evidence, &mut report) else {
            return report;
        };
        let url = fetched.url.clone();
        let patterns = policy.patterns();
        let policy_line = format!(
            "{url}: mode {}, max_age {}, mx {}",
            policy.mode.as_str(),
            policy.max_age,
            if patterns.is_empty() {
                "(none)"
            } else {
                &patterns
            }
        );
        if policy.mode == Mode::Testing {
            report.push(
                Observation::new("mta_sts.testing_mode", host.to_string())
                    .evidence(policy_line.clone())
                    .var("url", url.clone())
                    .var("patterns", patterns.clone())
                    .var("max_age_human", human(Duration::from_secs(policy.max_age))),
            );
        }
        if policy.mode != Mode::None && policy.max_age < self.max_age_min.as_secs() {
            report.push(
                Observation::new("mta_sts.max_age_short", host.to_string())
                    .evidence(policy_line.clone())
                    .var("url", url.clone())
                    .var("max_age", policy.max_age)
                    .var("max_age_human", human(Duration::from_secs(policy.max_age)))
                    .var("threshold_human", human(self.max_age_min)),
            );
        }
        self.mx_coverage(&policy, &url, &policy_line, &mx_answer, domain, &mut report);
        report
    }
}

impl MtaSts {
    /// The policy of a fetch, or the finding (or undecided status) of why
    /// there is none.
    fn judge_fetch(
        &self,
        fetched: &PolicyFetch,
        host: &DomainName,
        record_evidence: &str,
        report: &mut CheckReport,
    ) -> Option<Policy> {
        let url = &fetched.url;
        let subject = host.to_string();
        let body = match &fetched.outcome {
            Ok(body) => body,
            Err(failure) if failure.undecided() => {
                report.error(format!("{url}: {failure}"));
                return None;
            }
            Err(failure) => {
                let code = match failure {
                    FetchFailure::Certificate { .. } | FetchFailure::Tls(_) => {
                        "mta_sts.policy_cert_invalid"
                    }
                    FetchFailure::TooLarge { .. } | FetchFailure::ContentType(_) => {
                        "mta_sts.policy_syntax"
                    }
                    _ => "mta_sts.policy_unreachable",
                };
                let mut obs = Observation::new(code, &subject)
                    .evidence(record_evidence)
                    .evidence(format!("GET {url}: {failure}"))
                    .var("url", url.clone())
                    .var("host", subject.clone());
                if let FetchFailure::Certificate { presented, .. } = failure {
                    obs = obs.evidence_lines(presented.iter().map(|p| format!("  {p}")));
                }
                obs = if code == "mta_sts.policy_syntax" {
                    obs.var("problem", failure.to_string())
                } else {
                    obs.var("reason", failure.to_string())
                };
                report.push(obs);
                return None;
            }
        };
        match policy::parse(&body.bytes) {
            Ok(p) => Some(p),
            Err(e) => {
                report.push(
                    Observation::new("mta_sts.policy_syntax", &subject)
                        .evidence(record_evidence)
                        .evidence(format!(
                            "GET {url}: 200, {} bytes, Content-Type {}",
                            body.bytes.len(),
                            clip(&body.content_type)
                        ))
                        .evidence_lines(body_lines(&body.bytes))
                        .var("url", url.clone())
                        .var("host", subject)
                        .var("problem", e.to_string()),
                );
                None
            }
        }
    }

    /// §4.1: each MX host must match a pattern; in `enforce` mode senders
    /// refuse the others, in `testing` mode they deliver and report.
    fn mx_coverage(
        &self,
        policy: &Policy,
        url: &str,
        policy_line: &str,
        mx_answer: &Answer,
        domain: &DomainName,
        report: &mut CheckReport,
    ) {
        let code = match policy.mode {
            Mode::Enforce => "mta_sts.mx_not_covered",
            Mode::Testing => "mta_sts.mx_not_covered_testing",
            Mode::None => return,
        };
        let mx: Vec<(u16, String, u32)> = match mx_answer {
            Answer::Records(set) => set
                .mx()
                .into_iter()
                .filter(|(_, h, _)| *h != ".")
                .map(|(p, h, t)| (p, h.trim_end_matches('.').to_owned(), t))
                .collect(),
            // No MX, or none that matters (null MX): nothing to cover.
            Answer::NxDomain { .. } | Answer::NoData { .. } => Vec::new(),
            Answer::Failed(why) => {
                report.error(format!("{} MX: {why}", domain.as_str()));
                return;
            }
        };
        let patterns = policy.patterns();
        for (preference, host, ttl) in &mx {
            if policy.covering(host).is_some() {
                continue;
            }
            report.push(
                Observation::new(code, host)
                    .evidence(format!("{} {ttl} MX {preference} {host}.", domain.as_str()))
                    .evidence(policy_line)
                    .var("url", url.to_owned())
                    .var("mx_host", host.clone())
                    .var("preference", *preference)
                    .var("patterns", patterns.clone()),
            );
        }
    }
}
