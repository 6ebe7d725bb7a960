//! The check traits: an [`Engine`] is Rust code; a plugin is a manifest that
//! instantiates an engine with parameters and the text of its findings.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::de::DeserializeOwned;

use mxaudit_dns::{Dns, DomainName};

use crate::address::AddressPolicy;
use crate::manifest::FindingText;
use crate::model::Observation;
use crate::pacer::SessionPacer;
use crate::peer::{Blocklist, SmtpProber};
use crate::profile::Profile;

/// One finding code an engine may emit, with the template variables it provides.
#[derive(Debug, Clone, Copy)]
pub struct CodeSpec {
    /// `family.name`.
    pub code: &'static str,
    /// Variables the engine sets for this code (besides `domain` and `subject`).
    pub vars: &'static [&'static str],
}

/// Variables every template may use.
pub const COMMON_VARS: &[&str] = &["domain", "subject", "plugin"];

/// The manifest-level facts about a plugin, handed to the engine at build time.
#[derive(Debug, Clone)]
pub struct PluginMeta {
    /// Plugin id (file stem of the manifest).
    pub id: String,
    /// Engine name.
    pub engine: String,
    /// One line.
    pub description: String,
    /// Where the manifest came from: `builtin:plugins/mx.toml` or a path.
    pub source: String,
    /// Text per code.
    pub findings: BTreeMap<String, FindingText>,
}

/// The domain being audited, as configured.
#[derive(Debug, Clone)]
pub struct Target {
    /// The domain.
    pub domain: DomainName,
    /// The provider profile the domain should match (e.g. microsoft365).
    pub profile: Option<Arc<Profile>>,
    /// Addresses the domain sends mail from (SPF, DNSBL, PTR checks).
    pub outbound_ips: Vec<IpAddr>,
    /// The on-premises host a mail service delivers to (its connector's smart
    /// host), checked by `preflight`.
    pub smart_host: Option<SmartHost>,
    /// Exported MTA settings (Postfix `postconf` output, Exchange cmdlet
    /// output) reviewed by the `relay_config` engine.
    pub relay_config: Vec<PathBuf>,
}

/// A host and the SMTP port a connector delivers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmartHost {
    /// The host name.
    pub host: DomainName,
    /// The port (25 unless given).
    pub port: u16,
}

impl SmartHost {
    /// Parses `host` or `host:port`.
    pub fn parse(s: &str) -> Result<SmartHost, String> {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| format!("`{}`: bad port", s.escape_debug()))?,
            ),
            None => (s, 25),
        };
        Ok(SmartHost {
            host: DomainName::parse(host).map_err(|e| e.to_string())?,
            port,
        })
    }
}

impl std::fmt::Display for SmartHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.port == 25 {
            write!(f, "{}", self.host)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Target {
    /// A target with no profile, outbound address or smart host.
    pub fn new(domain: DomainName) -> Target {
        Target {
            domain,
            profile: None,
            outbound_ips: Vec::new(),
            smart_host: None,
            relay_config: Vec::new(),
        }
    }
}

/// What a check may use while it runs.
#[derive(Debug, Clone)]
pub struct CheckCx {
    /// The run's DNS client (shared cache).
    pub dns: Dns,
    /// Which addresses count as public, and which may be connected to.
    pub addresses: Arc<AddressPolicy>,
    /// When the task must be done; the runner stops it then.
    pub deadline: Instant,
    /// What every check of the run shares: options, the other plugins, politeness.
    pub run: Arc<RunScope>,
}

impl CheckCx {
    /// A context on `dns` with a default run scope (rate limits honoured, no
    /// extra CA, no peers, a pacer of its own).
    pub fn new(dns: Dns, addresses: Arc<AddressPolicy>, deadline: Instant) -> CheckCx {
        CheckCx {
            dns,
            addresses,
            deadline,
            run: Arc::new(RunScope::default()),
        }
    }
}

/// What the checks of one run share beyond DNS, handed to every task in its
/// [`CheckCx`]: the run's options (never process-global state), the plugins of
/// the run for engines that ask each other ([`crate::peer`]), and the session
/// pacer that keeps connections to one server polite across plugins and domains.
#[derive(Clone)]
pub struct RunScope {
    /// Honour the rate limits plugins declare for third-party services (a
    /// blocklist's `queries_per_second`). Off only when those services are the
    /// user's own (a local list mirror, a benchmark world).
    pub rate_limits: bool,
    /// Only DNS: engines that may connect elsewhere as part of a DNS check
    /// (preflight's probe of the smart host) leave that part out.
    pub dns_only: bool,
    /// Extra trusted CA certificates (PEM files) for TLS probes, besides the
    /// engines' own: `--ca-file` and `ca_files` of the configuration.
    pub ca_files: Vec<PathBuf>,
    /// Every loaded plugin, with whether the configuration enables it: the
    /// plugins an engine may ask ([`RunScope::enabled_peers`]), and the text of
    /// observations made on another plugin's behalf.
    pub peers: Arc<[Peer]>,
    /// One session at a time per server address, with a pause between
    /// sessions; shared by every run of the process.
    pub pacer: Arc<SessionPacer>,
}

/// A plugin as another engine sees it.
#[derive(Clone)]
pub struct Peer {
    /// The plugin.
    pub plugin: crate::manifest::Plugin,
    /// Whether the configuration enables it (its default selection).
    pub enabled: bool,
    /// Whether it runs in this run.
    pub selected: bool,
}

impl Default for RunScope {
    fn default() -> Self {
        RunScope {
            rate_limits: true,
            dns_only: false,
            ca_files: Vec::new(),
            peers: Arc::from(Vec::new()),
            pacer: Arc::new(SessionPacer::default()),
        }
    }
}

impl std::fmt::Debug for RunScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunScope")
            .field("rate_limits", &self.rate_limits)
            .field("ca_files", &self.ca_files)
            .field("peers", &self.peers.len())
            .finish_non_exhaustive()
    }
}

impl RunScope {
    /// The plugin `id`, enabled or not.
    pub fn peer(&self, id: &str) -> Option<&crate::manifest::Plugin> {
        self.peers
            .iter()
            .find(|p| p.plugin.meta.id == id)
            .map(|p| &p.plugin)
    }

    /// The plugins of this run, in load order.
    pub fn selected_peers(&self) -> impl Iterator<Item = &crate::manifest::Plugin> {
        self.peers.iter().filter(|p| p.selected).map(|p| &p.plugin)
    }

    /// The plugins the configuration enables, in load order.
    pub fn enabled_peers(&self) -> impl Iterator<Item = &crate::manifest::Plugin> {
        self.peers.iter().filter(|p| p.enabled).map(|p| &p.plugin)
    }
}

/// What one (plugin, target) task reports.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// The problems seen.
    pub observations: Vec<Observation>,
    /// Why the check could not decide (part of) its question; makes the status `error`.
    pub errors: Vec<String>,
}

impl CheckReport {
    /// Adds an observation.
    pub fn push(&mut self, o: Observation) {
        self.observations.push(o);
    }
    /// Records that part of the check could not be decided.
    pub fn error(&mut self, why: impl Into<String>) {
        self.errors.push(why.into());
    }
}

/// A check engine, implemented once per engine file.
pub trait Engine: Sized + Send + Sync + 'static {
    /// `engine = "…"` in manifests; equals the module name.
    const NAME: &'static str;
    /// The codes this engine emits. With [`Engine::OPEN_CODES`], manifests may add their own.
    const CODES: &'static [CodeSpec];
    /// True when manifests define the codes (e.g. `dns_assert`, `exec`); their
    /// templates may then use [`Engine::OPEN_VARS`].
    const OPEN_CODES: bool = false;
    /// Variables provided for manifest-defined codes.
    const OPEN_VARS: &'static [&'static str] = &[];
    /// True when the engine connects to anything but DNS (SMTP probes, external
    /// programs): `--dns-only` leaves such plugins out.
    const CONNECTS: bool = false;
    /// True when one task may take minutes (an SMTP greeting may be held for
    /// five, RFC 5321 §4.5.3.2.1; an external program): runs that select such
    /// an engine get a longer default task budget.
    const LONG_TASKS: bool = false;
    /// The `[params]` table; `#[serde(deny_unknown_fields)]`.
    type Params: DeserializeOwned;
    /// Validates parameters and builds the engine. Pure: no I/O (style rule 2).
    fn build(params: Self::Params, plugin: &PluginMeta) -> Result<Self, String>;
    /// Runs the check on one target.
    fn run(&self, target: &Target, cx: &CheckCx) -> impl Future<Output = CheckReport> + Send;
    /// The codes this instance can emit with its parameters; the manifest must
    /// give text for each (and may give text only for codes in [`Engine::CODES`]).
    /// Default: all of [`Engine::CODES`]. An engine whose parameters choose the
    /// codes (a blocklist emits `dnsbl.listed` or `dnsbl.domain_listed`, not
    /// both) narrows it, so manifests carry no text that is never shown.
    fn emitted_codes(&self) -> Vec<&'static str> {
        Self::CODES.iter().map(|c| c.code).collect()
    }
    /// The blocklist this engine is, for engines and commands that ask lists
    /// directly (preflight's smart host, `mxaudit dnsbl`).
    fn blocklist(&self) -> Option<&dyn Blocklist> {
        None
    }
    /// The SMTP prober this engine is, for engines that probe a host of their
    /// own choosing (preflight's smart host).
    fn smtp_prober(&self) -> Option<&dyn SmtpProber> {
        None
    }
}

/// The object-safe twin of [`Engine`], made by [`EngineEntry::of`].
#[async_trait::async_trait]
pub trait Check: Send + Sync {
    /// The manifest facts.
    fn plugin(&self) -> &PluginMeta;
    /// Runs the check on one target.
    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport;
    /// The codes this instance can emit ([`Engine::emitted_codes`]).
    fn emitted_codes(&self) -> Vec<&'static str>;
    /// Whether the engine connects to anything but DNS ([`Engine::CONNECTS`]).
    fn connects(&self) -> bool;
    /// Whether one task may take minutes ([`Engine::LONG_TASKS`]).
    fn long_tasks(&self) -> bool;
    /// [`Engine::blocklist`].
    fn blocklist(&self) -> Option<&dyn Blocklist>;
    /// [`Engine::smtp_prober`].
    fn smtp_prober(&self) -> Option<&dyn SmtpProber>;
}

struct Adapter<E: Engine> {
    engine: E,
    meta: PluginMeta,
}

#[async_trait::async_trait]
impl<E: Engine> Check for Adapter<E> {
    fn plugin(&self) -> &PluginMeta {
        &self.meta
    }
    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        self.engine.run(target, cx).await
    }
    fn emitted_codes(&self) -> Vec<&'static str> {
        self.engine.emitted_codes()
    }
    fn connects(&self) -> bool {
        E::CONNECTS
    }
    fn long_tasks(&self) -> bool {
        E::LONG_TASKS
    }
    fn blocklist(&self) -> Option<&dyn Blocklist> {
        self.engine.blocklist()
    }
    fn smtp_prober(&self) -> Option<&dyn SmtpProber> {
        self.engine.smtp_prober()
    }
}

/// The `[params]` table of a manifest, still spanned, with the manifest's text
/// so that errors can point at a line.
pub struct ParamsInput<'a> {
    /// The parsed table (empty when the manifest has no `[params]`).
    pub table: toml::Spanned<toml::de::DeTable<'a>>,
    /// The whole manifest text (kept for engines that report their own spans).
    pub source: &'a str,
}

/// A located parameter error: the message already names line, column and key.
#[derive(Debug, Clone)]
pub struct ParamsError {
    /// Byte span in the manifest, when known.
    pub span: Option<std::ops::Range<usize>>,
    /// What is wrong.
    pub message: String,
}

/// One line of the static engine registry.
#[derive(Clone, Copy)]
pub struct EngineEntry {
    /// Engine name.
    pub name: &'static str,
    /// The codes it emits.
    pub codes: &'static [CodeSpec],
    /// Whether manifests define codes.
    pub open_codes: bool,
    /// Variables for manifest-defined codes.
    pub open_vars: &'static [&'static str],
    /// Whether it connects to anything but DNS.
    pub connects: bool,
    /// Parses params and builds the check.
    pub build: fn(ParamsInput<'_>, PluginMeta) -> Result<Box<dyn Check>, ParamsError>,
}

impl std::fmt::Debug for EngineEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineEntry")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl EngineEntry {
    /// The registry line for engine `E`.
    pub const fn of<E: Engine>() -> EngineEntry {
        EngineEntry {
            name: E::NAME,
            codes: E::CODES,
            open_codes: E::OPEN_CODES,
            open_vars: E::OPEN_VARS,
            connects: E::CONNECTS,
            build: build_dyn::<E>,
        }
    }

    /// The variables a template of `code` may use.
    pub fn vars_for(&self, code: &str) -> Option<Vec<&'static str>> {
        let mut vars: Vec<&'static str> = COMMON_VARS.to_vec();
        match self.codes.iter().find(|c| c.code == code) {
            Some(spec) => vars.extend_from_slice(spec.vars),
            None if self.open_codes => vars.extend_from_slice(self.open_vars),
            None => return None,
        }
        Some(vars)
    }
}

fn build_dyn<E: Engine>(
    input: ParamsInput<'_>,
    meta: PluginMeta,
) -> Result<Box<dyn Check>, ParamsError> {
    use serde::Deserialize;
    let de = toml::de::Deserializer::from(input.table);
    let params = match E::Params::deserialize(de) {
        Ok(p) => p,
        Err(e) => {
            return Err(ParamsError {
                span: e.span(),
                message: e.message().to_owned(),
            });
        }
    };
    let engine = E::build(params, &meta).map_err(|message| ParamsError {
        span: None,
        message,
    })?;
    Ok(Box::new(Adapter { engine, meta }))
}
