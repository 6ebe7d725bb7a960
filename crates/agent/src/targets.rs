//! The domains a command audits: named on the command line, listed in
//! `[[domains]]` of the configuration, or read from a file (one per line,
//! streamed in chunks so the list may be long). Every source goes through one
//! reader here: names are validated, duplicates merged (said once on the log),
//! and an optional shard keeps the domains of one agent.

use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use mxaudit_core::config::{Config, DomainSection};
use mxaudit_core::{Profile, SmartHost, Target};
use mxaudit_dns::DomainName;

use crate::error::{AgentError, Result};
use crate::plan::{Plan, Selection, find_profile};

/// Shard K of N (1-based): the domains whose name hashes to K.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1 ≤ k ≤ n.
    pub k: u64,
    /// Shards in all.
    pub n: u64,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("`{}` is not K/N", s.escape_debug());
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || k == 0 || k > n {
            return Err(format!("`{}`: K must be from 1 to N", s.escape_debug()));
        }
        Ok(Shard { k, n })
    }
}

impl Shard {
    /// Whether `domain` belongs to this shard.
    pub fn admits(&self, domain: &DomainName) -> bool {
        shard_of(domain.bare(), self.n) == self.k
    }
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

/// A domains file being read, line by line.
struct LineReader {
    name: String,
    reader: Box<dyn BufRead + Send>,
    line_no: usize,
}

/// Where the targets come from, read chunk by chunk.
pub struct TargetSource {
    fixed: Option<Vec<Target>>,
    lines: Option<LineReader>,
    shard: Option<Shard>,
    profile: Option<Arc<Profile>>,
    outbound_ips: Vec<std::net::IpAddr>,
    seen: HashSet<DomainName>,
    duplicates: usize,
}

/// The longest line read from a domains file: a name is at most 253
/// characters, so a longer line is garbage and is skipped.
const MAX_LINE: u64 = 4096;

impl TargetSource {
    /// The domains of `audit`: named on the command line, else the domains
    /// file given there, else the configuration's `[[domains]]`.
    pub fn for_audit(plan: &Plan, shard: Option<Shard>) -> Result<TargetSource> {
        let o = &plan.overrides;
        let mut src = TargetSource::new(plan, shard)?;
        match &o.domains_file {
            Some(_) if !o.domains.is_empty() => {
                return Err(AgentError::usage(
                    "give domains as arguments or with --domains-file, not both",
                ));
            }
            Some(path) => src.lines = Some(open_lines(path)?),
            None if !o.domains.is_empty() => {
                let mut targets = Vec::new();
                for d in &o.domains {
                    targets.push(src.ad_hoc(DomainName::parse(d).map_err(AgentError::usage)?));
                }
                src.fixed = Some(targets);
            }
            None => src.fixed = Some(configured(plan, &plan.config.domains)?),
        }
        if src.fixed.as_ref().is_some_and(Vec::is_empty) && src.lines.is_none() {
            return Err(AgentError::usage(
                "no domain to audit: name one, or give --config with [[domains]]",
            ));
        }
        Ok(src)
    }

    /// The domains of `run` and the daemon: `[[domains]]` chosen by name or
    /// tag, and (when nothing is chosen) those of the domains file — given on
    /// the command line or as `domains_file` in the configuration (relative to
    /// it).
    pub fn for_run(plan: &Plan, selection: &Selection) -> Result<TargetSource> {
        let config = &plan.config;
        for name in &selection.domains {
            if !config
                .domains
                .iter()
                .any(|d| d.name.get_ref().eq_ignore_ascii_case(name))
            {
                return Err(AgentError::Usage(format!(
                    "--domain: `{}` is not in [[domains]] of the configuration",
                    name.escape_debug()
                )));
            }
        }
        let chosen: Vec<DomainSection> = config
            .domains
            .iter()
            .filter(|d| {
                selection.is_all()
                    || selection
                        .domains
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(d.name.get_ref()))
                    || d.tags.iter().any(|t| selection.tags.contains(t))
            })
            .cloned()
            .collect();
        let mut src = TargetSource::new(plan, None)?;
        src.fixed = Some(configured(plan, &chosen)?);
        if selection.is_all() {
            let file = match (&plan.overrides.domains_file, &config.domains_file) {
                (Some(path), _) => Some(path.clone()),
                (None, Some(rel)) => Some(plan.base_dir().join(rel)),
                (None, None) => None,
            };
            if let Some(path) = file {
                src.lines = Some(open_lines(&path)?);
            }
        }
        Ok(src)
    }

    fn new(plan: &Plan, shard: Option<Shard>) -> Result<TargetSource> {
        Ok(TargetSource {
            fixed: None,
            lines: None,
            shard,
            profile: plan
                .overrides
                .profile
                .as_deref()
                .map(|id| find_profile(&plan.config, id))
                .transpose()?,
            outbound_ips: plan.overrides.outbound_ips.clone(),
            seen: HashSet::new(),
            duplicates: 0,
        })
    }

    fn ad_hoc(&self, domain: DomainName) -> Target {
        Target {
            domain,
            profile: self.profile.clone(),
            outbound_ips: self.outbound_ips.clone(),
            smart_host: None,
            relay_config: Vec::new(),
        }
    }

    /// Keeps a target if its shard admits it and it was not seen before.
    fn admit(&mut self, t: &Target) -> bool {
        if self.shard.is_some_and(|s| !s.admits(&t.domain)) {
            return false;
        }
        if self.seen.insert(t.domain.clone()) {
            true
        } else {
            self.duplicates += 1;
            false
        }
    }

    /// The next chunk of at most `max` targets; `None` at the end. Bad lines
    /// of a domains file are logged with file:line and skipped.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<Target>>> {
        let mut chunk = Vec::new();
        if let Some(fixed) = self.fixed.take() {
            for t in fixed {
                if self.admit(&t) {
                    chunk.push(t);
                }
            }
        }
        while chunk.len() < max {
            let Some(lines) = self.lines.as_mut() else {
                break;
            };
            let mut raw = Vec::new();
            let n = lines
                .reader
                .by_ref()
                .take(MAX_LINE)
                .read_until(b'\n', &mut raw)
                .map_err(|e| AgentError::Usage(format!("cannot read {}: {e}", lines.name)))?;
            if n == 0 {
                self.lines = None;
                break;
            }
            lines.line_no += 1;
            let at = format!("{}:{}", lines.name, lines.line_no);
            let Ok(text) = std::str::from_utf8(&raw) else {
                tracing::warn!("{at}: not UTF-8 text (skipped)");
                continue;
            };
            let text = text.split('#').next().unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            match DomainName::parse(text) {
                Ok(domain) => {
                    let t = self.ad_hoc(domain);
                    if self.admit(&t) {
                        chunk.push(t);
                    }
                }
                Err(e) => tracing::warn!("{at}: {e} (skipped)"),
            }
        }
        if self.lines.is_none() && self.duplicates > 0 {
            tracing::warn!(
                "{} duplicate domain(s) merged: each domain is audited once.",
                self.duplicates
            );
            self.duplicates = 0;
        }
        Ok(if chunk.is_empty() { None } else { Some(chunk) })
    }

    /// Every target at once (a run compares every domain with its history
    /// before it records anything).
    pub fn read_all(mut self) -> Result<Vec<Target>> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk(10_000)? {
            all.extend(chunk);
        }
        Ok(all)
    }
}

fn open_lines(path: &Path) -> Result<LineReader> {
    let reader: Box<dyn BufRead + Send> = if path.as_os_str() == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(path).map_err(
            |e| AgentError::Usage(format!("cannot read {}: {e}", path.display())),
        )?))
    };
    Ok(LineReader {
        name: path.display().to_string(),
        reader,
        line_no: 0,
    })
}

/// Targets of configured domains: their profile (the command line's wins),
/// tenant, outbound addresses (plus the command line's) and smart host.
fn configured(plan: &Plan, domains: &[DomainSection]) -> Result<Vec<Target>> {
    let config: &Config = &plan.config;
    let cli_profile = plan
        .overrides
        .profile
        .as_deref()
        .map(|id| find_profile(config, id))
        .transpose()?;
    let mut out = Vec::new();
    for d in domains {
        let domain = DomainName::parse(d.name.get_ref()).map_err(AgentError::usage)?;
        let mut profile = match (&cli_profile, &d.profile) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(id)) => Some(find_profile(config, id.get_ref())?),
            (None, None) => None,
        };
        if let (Some(p), Some(tenant)) = (&profile, &d.tenant) {
            let mut with_tenant = (**p).clone();
            with_tenant.tenant = Some(tenant.clone());
            profile = Some(Arc::new(with_tenant));
        }
        let mut outbound_ips = d.outbound_ips.clone();
        outbound_ips.extend(plan.overrides.outbound_ips.iter().copied());
        out.push(Target {
            domain,
            profile,
            outbound_ips,
            smart_host: d
                .smart_host
                .as_deref()
                .map(SmartHost::parse)
                .transpose()
                .map_err(AgentError::Usage)?,
            // Relative to the configuration file, like plugin_dirs.
            relay_config: d
                .relay_config
                .iter()
                .map(|f| plan.base_dir().join(f))
                .collect(),
        });
    }
    Ok(out)
}

/// Relative to the working directory: a path given on the command line.
pub fn from_command_line(path: &Path) -> PathBuf {
    if path.as_os_str() == "-" || path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards() {
        assert_eq!("2/3".parse::<Shard>(), Ok(Shard { k: 2, n: 3 }));
        assert!("0/3".parse::<Shard>().is_err());
        assert!("4/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        // Stable across versions: agents on different machines must agree.
        assert_eq!(shard_of("example.com", 7), shard_of("EXAMPLE.com.", 7));
    }
}
