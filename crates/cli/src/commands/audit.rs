//! `mxaudit audit`: audit domains now and print or write the report.

use std::io::{BufRead, Read, Write};
use std::path::Path;

use anyhow::{Context, anyhow};

use futures::StreamExt;
use mxaudit_core::config::Config;
use mxaudit_core::model::{REPORT_VERSION, Report};
use mxaudit_core::render::{self, Format};
use mxaudit_core::runner::{self, RunOptions};
use mxaudit_core::{Lang, Severity, Target};

use crate::args::AuditArgs;
use crate::{Failure, failed, setup, usage};

/// Runs `mxaudit audit`.
pub async fn run(args: AuditArgs) -> Result<u8, Failure> {
    let config = match &args.config {
        Some(path) => setup::load_config(path)?,
        None => Config::default(),
    };
    execute(&args, &config).await
}

/// Audits with a configuration already loaded (also used by `demo`).
pub async fn execute(args: &AuditArgs, config: &Config) -> Result<u8, Failure> {
    let format: Format = args
        .format
        .parse()
        .map_err(|e: String| usage(anyhow!("--format: {e}")))?;
    let lang: Lang = match &args.lang {
        Some(l) => l
            .parse()
            .map_err(|e: String| usage(anyhow!("--lang: {e}")))?,
        None => config.language.unwrap_or_default(),
    };
    let fail_on: Severity = match &args.fail_on {
        Some(s) => s
            .parse()
            .map_err(|e: String| usage(anyhow!("--fail-on: {e}")))?,
        None => config.fail_on.unwrap_or(Severity::High),
    };
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(|e| usage(anyhow!("--shard: {e}")))?;
    if !args.ca_files.is_empty() {
        // The smtp engine reads them when it builds its TLS configuration.
        mxaudit_checks::smtp::set_extra_ca_files(args.ca_files.clone());
    }
    let set = setup::plugin_set(config, args.config.as_deref(), &args.plugin_dirs)?;
    let mut plugins = setup::select_plugins(&set, args, config)?;
    if args.dns_only {
        plugins.retain(|p| {
            !mxaudit_checks::ENGINES
                .iter()
                .any(|e| e.name == p.meta.engine && e.connects)
        });
        if plugins.is_empty() {
            return Err(usage(anyhow!(
                "--dns-only: none of the selected plugins needs only DNS"
            )));
        }
    }
    let dns = setup::dns(&args.dns, config)?;
    setup::warn_public_resolver(&plugins, &dns);
    let policy = setup::address_policy(args, config);
    let opts = RunOptions {
        concurrency: args
            .concurrency
            .or(config.checks.concurrency)
            .unwrap_or(runner::DEFAULT_CONCURRENCY),
        task_timeout: config
            .checks
            .timeout
            .unwrap_or_else(|| setup::default_task_timeout(&plugins)),
        lang,
        severity: config.plugins.severity.clone(),
        rate_limits: !args.no_rate_limits && config.checks.rate_limits.unwrap_or(true),
        progress: if args.domains_file.is_some() {
            None
        } else {
            crate::commands::run::progress_bar()
        },
    };

    let started = chrono::Utc::now();
    let mut report = Report {
        version: REPORT_VERSION,
        generator: format!("mxaudit {}", env!("CARGO_PKG_VERSION")),
        started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        finished_at: String::new(),
        domains: Vec::new(),
        findings: Vec::new(),
        checks: Vec::new(),
    };
    // JSON Lines stream: each chunk's findings are written as soon as they are
    // known, so memory stays flat however long the domain list is.
    let streaming = format == Format::Jsonl;
    let mut sink = OutputSink::open(args.output.as_deref()).map_err(failed)?;
    let mut worst: Option<Severity> = None;
    let mut audited = 0usize;
    let mut chunks = TargetSource::new(args, config, shard)?;
    // Two chunks in flight: the next one starts while the tail of the current
    // one (its slowest domains) finishes, so the name server never idles
    // between chunks. Results still come in list order.
    let mut failure = None;
    {
        let source = futures::stream::iter(std::iter::from_fn(|| match chunks.next_chunk(CHUNK) {
            Ok(next) => next,
            Err(e) => {
                failure = Some(e);
                None
            }
        }));
        let mut results = std::pin::pin!(
            source
                .map(|targets| {
                    let (plugins, dns, policy, opts) = (&plugins, &dns, policy.clone(), &opts);
                    async move {
                        let out = runner::run(plugins, &targets, dns, policy, opts).await;
                        (targets, out)
                    }
                })
                .buffered(2)
        );
        while let Some((targets, out)) = results.next().await {
            worst = worst.max(out.findings.iter().map(|f| f.severity).max());
            audited += targets.len();
            if streaming {
                // Only the findings: the header's lists stay empty, so a chunk costs
                // the same however far into the list it is.
                let part = Report {
                    version: report.version,
                    generator: String::new(),
                    started_at: String::new(),
                    finished_at: String::new(),
                    domains: Vec::new(),
                    findings: out.findings,
                    checks: Vec::new(),
                };
                sink.write(render::render(&part, Format::Jsonl).as_bytes())
                    .map_err(failed)?;
            } else {
                report
                    .domains
                    .extend(targets.iter().map(|t| t.domain.to_string()));
                report.findings.extend(out.findings);
                report.checks.extend(out.checks);
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    for warning in &chunks.warnings {
        eprintln!("mxaudit: {warning}");
    }
    setup::warn_dnssec_unavailable(&dns);
    if audited == 0 {
        return Err(usage(anyhow!(
            "no domain to audit{}",
            if shard.is_some() {
                " in this shard"
            } else {
                ""
            }
        )));
    }
    report.finished_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if !streaming {
        sink.write(render::render(&report, format).as_bytes())
            .map_err(failed)?;
    }
    sink.finish().map_err(failed)?;
    Ok(if worst.is_some_and(|w| w >= fail_on) {
        1
    } else {
        0
    })
}

/// Domains per chunk of a streamed list: the run's DNS cache is shared across
/// chunks, so shared questions are still asked once.
const CHUNK: usize = 1000;

/// `K/N` → (K, N), 1 ≤ K ≤ N.
fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (k, n) = s
        .split_once('/')
        .ok_or_else(|| format!("`{}` is not K/N", s.escape_debug()))?;
    let (k, n): (u64, u64) = (
        k.trim()
            .parse()
            .map_err(|_| format!("`{}` is not K/N", s.escape_debug()))?,
        n.trim()
            .parse()
            .map_err(|_| format!("`{}` is not K/N", s.escape_debug()))?,
    );
    if n == 0 || k == 0 || k > n {
        return Err(format!("`{s}`: K must be from 1 to N"));
    }
    Ok((k, n))
}

/// The shard (1-based) a domain belongs to: FNV-1a of the lowercase name, the
/// same on every machine and in every version (agents must agree).
pub fn shard_of(domain: &str, n: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in domain.trim_end_matches('.').to_ascii_lowercase().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % n + 1
}

/// Where the targets come from: the command line or configuration (one chunk),
/// or a domains file read line by line.
pub(crate) struct TargetSource {
    fixed: Option<Vec<Target>>,
    lines: Option<(String, Box<dyn BufRead>, usize)>,
    shard: Option<(u64, u64)>,
    profile: Option<std::sync::Arc<mxaudit_core::Profile>>,
    outbound_ips: Vec<std::net::IpAddr>,
    pub(crate) warnings: Vec<String>,
}

impl TargetSource {
    pub(crate) fn new(
        args: &AuditArgs,
        config: &Config,
        shard: Option<(u64, u64)>,
    ) -> Result<TargetSource, Failure> {
        let profiles = config.all_profiles();
        let profile = match &args.profile {
            Some(id) => Some(std::sync::Arc::new(
                profiles
                    .iter()
                    .find(|p| &p.id == id)
                    .cloned()
                    .ok_or_else(|| usage(anyhow!("unknown profile `{}`", id.escape_debug())))?,
            )),
            None => None,
        };
        let mut src = TargetSource {
            fixed: None,
            lines: None,
            shard,
            profile,
            outbound_ips: args.outbound_ips.clone(),
            warnings: Vec::new(),
        };
        match &args.domains_file {
            Some(path) => {
                if !args.domains.is_empty() {
                    return Err(usage(anyhow!(
                        "give domains as arguments or with --domains-file, not both"
                    )));
                }
                let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
                    Box::new(std::io::BufReader::new(std::io::stdin()))
                } else {
                    Box::new(std::io::BufReader::new(
                        std::fs::File::open(path)
                            .with_context(|| format!("cannot read {}", path.display()))
                            .map_err(usage)?,
                    ))
                };
                src.lines = Some((path.display().to_string(), reader, 0));
            }
            None => {
                let mut targets = setup::targets(args, config)?;
                if let Some((k, n)) = shard {
                    targets.retain(|t| shard_of(t.domain.bare(), n) == k);
                }
                src.fixed = Some(targets);
            }
        }
        Ok(src)
    }

    /// The next chunk of at most `max` targets; `None` at the end.
    pub(crate) fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<Target>>, Failure> {
        if let Some(fixed) = self.fixed.take() {
            return Ok(if fixed.is_empty() { None } else { Some(fixed) });
        }
        let Some((name, reader, line_no)) = self.lines.as_mut() else {
            return Ok(None);
        };
        let mut chunk = Vec::new();
        let mut line = String::new();
        while chunk.len() < max {
            line.clear();
            // Lines are bounded: a name is at most 253 characters; a longer line is garbage.
            let n = reader
                .by_ref()
                .take(4096)
                .read_line(&mut line)
                .with_context(|| format!("cannot read {name}"))
                .map_err(usage)?;
            if n == 0 {
                break;
            }
            *line_no += 1;
            let text = line.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            match mxaudit_dns::DomainName::parse(text) {
                Ok(domain) => {
                    if let Some((k, n)) = self.shard
                        && shard_of(domain.bare(), n) != k
                    {
                        continue;
                    }
                    chunk.push(Target {
                        domain,
                        profile: self.profile.clone(),
                        outbound_ips: self.outbound_ips.clone(),
                        smart_host: None,
                    });
                }
                Err(e) => self
                    .warnings
                    .push(format!("{name}:{line_no}: {e} (skipped)")),
            }
        }
        Ok(if chunk.is_empty() { None } else { Some(chunk) })
    }
}

/// Standard output, or a temporary file renamed over `--output` at the end.
struct OutputSink {
    target: Option<(std::path::PathBuf, std::path::PathBuf, std::fs::File)>,
}

impl OutputSink {
    fn open(path: Option<&Path>) -> anyhow::Result<OutputSink> {
        let Some(path) = path else {
            return Ok(OutputSink { target: None });
        };
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(OutputSink {
            target: Some((path.to_path_buf(), tmp, file)),
        })
    }

    fn write(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match &mut self.target {
            Some((path, _, file)) => file
                .write_all(data)
                .with_context(|| format!("cannot write {}", path.display())),
            None => {
                let mut stdout = std::io::stdout().lock();
                // A closed pipe (`| head`) is not an audit failure.
                let _ = stdout.write_all(data);
                let _ = stdout.flush();
                Ok(())
            }
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        if let Some((path, tmp, file)) = self.target {
            let result = file.sync_all().and_then(|()| std::fs::rename(&tmp, &path));
            if result.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            result.with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }
}

/// Writes a file so that readers see the old or the new content, never a part.
pub fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
