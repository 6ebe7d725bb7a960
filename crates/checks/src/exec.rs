//! Engine `exec`: a check written as a program (like a Nagios plugin, but
//! structured). The program gets a JSON request on standard input and prints
//! findings as JSON on standard output (docs/exec-protocol.md). It runs from
//! an argv (never a shell), with a cleared environment except the variables the
//! manifest lists, in a set working directory, with a timeout and a cap on the
//! output. A crash, a hang, invalid JSON or a code the manifest does not
//! declare is an `error` status with the reason, never a finding.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use mxaudit_core::{CheckCx, CheckReport, CodeSpec, Engine, Observation, PluginMeta, Target};

use crate::resolve::mx_hosts;

/// Variables a program may set for the manifest's templates; any it leaves out
/// are empty strings.
pub const EXEC_VARS: &[&str] = &[
    "value", "expected", "host", "address", "record", "detail", "count",
];

/// `[params]` of the `exec` engine.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecParams {
    /// The program and its arguments. A relative program path is taken from the
    /// manifest's directory when such a file exists there, else looked up in `PATH`.
    pub command: Vec<String>,
    /// How long the program may run.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Bytes of standard output read at most; more is an error.
    #[serde(default = "default_max_output")]
    pub max_output: usize,
    /// Environment variables passed through from mxaudit's environment (all others are cleared).
    #[serde(default)]
    pub env: Vec<String>,
    /// Working directory, relative to the manifest's directory (default: that directory).
    #[serde(default)]
    pub working_dir: Option<String>,
    /// Free-form parameters handed to the program as `params` in the request.
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_output() -> usize {
    1 << 20
}

/// Standard error kept at most, for the status detail.
const MAX_STDERR: usize = 16 * 1024;

/// The request written to the program's standard input.
#[derive(Debug, Serialize)]
pub struct ExecRequest<'a> {
    /// Protocol version.
    pub version: u32,
    /// The plugin id.
    pub plugin: &'a str,
    /// The audited domain, without the trailing dot.
    pub domain: String,
    /// The domain's profile id, if any.
    pub profile: Option<&'a str>,
    /// MX hosts with their addresses, most preferred first.
    pub mx: Vec<ExecMx>,
    /// Why `mx` is empty when the MX lookup failed.
    pub mx_error: Option<String>,
    /// Configured outbound addresses.
    pub outbound_ips: Vec<String>,
    /// `[params.args]` of the manifest.
    pub params: &'a serde_json::Map<String, serde_json::Value>,
}

/// One MX host in a request.
#[derive(Debug, Serialize)]
pub struct ExecMx {
    /// Host name.
    pub host: String,
    /// Preference.
    pub preference: u16,
    /// A and AAAA addresses.
    pub addresses: Vec<String>,
}

/// What the program prints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecResponse {
    /// The problems found (empty: pass).
    pub findings: Vec<ExecFinding>,
}

/// One finding printed by the program.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecFinding {
    /// A code the manifest declares.
    pub code: String,
    /// What it is about.
    pub subject: String,
    /// Lines of evidence.
    #[serde(default)]
    pub evidence: Vec<String>,
    /// Template variables (see [`EXEC_VARS`]).
    #[serde(default)]
    pub vars: BTreeMap<String, serde_json::Value>,
}

/// The `exec` engine.
#[derive(Debug)]
pub struct Exec {
    params: ExecParams,
    plugin: String,
    manifest_dir: PathBuf,
    codes: Vec<String>,
}

impl Engine for Exec {
    const NAME: &'static str = "exec";
    const CODES: &'static [CodeSpec] = &[];
    const OPEN_CODES: bool = true;
    const OPEN_VARS: &'static [&'static str] = EXEC_VARS;
    // The program may connect anywhere: not part of `--dns-only`.
    const CONNECTS: bool = true;
    const LONG_TASKS: bool = true;
    type Params = ExecParams;

    fn build(params: ExecParams, plugin: &PluginMeta) -> Result<Self, String> {
        if params.command.is_empty() || params.command[0].is_empty() {
            return Err(
                "command: give the program and its arguments, e.g. [\"python3\", \"check.py\"]"
                    .to_owned(),
            );
        }
        if params.timeout.is_zero() || params.max_output == 0 {
            return Err("timeout and max_output must be more than zero".to_owned());
        }
        if plugin.findings.is_empty() {
            return Err(
                "an exec plugin must declare the codes it emits as [finding.\"family.name\"]"
                    .to_owned(),
            );
        }
        let manifest_dir = if plugin.source.starts_with("builtin:") {
            PathBuf::from(".")
        } else {
            Path::new(&plugin.source)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("."))
        };
        Ok(Exec {
            params,
            plugin: plugin.id.clone(),
            manifest_dir,
            codes: plugin.findings.keys().cloned().collect(),
        })
    }

    async fn run(&self, target: &Target, cx: &CheckCx) -> CheckReport {
        let mut report = CheckReport::default();
        let (mx, mx_error) = match mx_hosts(&target.domain, cx, 20).await {
            Ok(hosts) => (
                hosts
                    .into_iter()
                    .map(|h| ExecMx {
                        host: h.host,
                        preference: h.preference,
                        addresses: h
                            .addresses
                            .addresses
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                    })
                    .collect(),
                None,
            ),
            Err(why) => (Vec::new(), Some(why)),
        };
        let request = ExecRequest {
            version: 1,
            plugin: &self.plugin,
            domain: target.domain.bare().to_owned(),
            profile: target.profile.as_ref().map(|p| p.id.as_str()),
            mx,
            mx_error,
            outbound_ips: target
                .outbound_ips
                .iter()
                .map(ToString::to_string)
                .collect(),
            params: &self.params.args,
        };
        match self.execute(&request).await {
            Ok(findings) => {
                for f in findings {
                    let mut obs = Observation::new(&f.code, f.subject).evidence_lines(f.evidence);
                    for var in EXEC_VARS {
                        let value = f.vars.get(*var).cloned().unwrap_or_else(|| "".into());
                        obs = obs.var(var, value);
                    }
                    report.push(obs);
                }
            }
            Err(why) => report.error(format!("exec plugin {}: {why}", self.plugin)),
        }
        report
    }
}

impl Exec {
    /// `./check.sh` and `bin/check` are taken from the manifest's directory; a
    /// bare name is too when such a file is there, else it is looked up in `PATH`.
    fn program(&self) -> PathBuf {
        let first = Path::new(&self.params.command[0]);
        if first.is_absolute() {
            return first.to_path_buf();
        }
        let local = self.manifest_dir.join(first);
        if first.components().count() > 1 || local.is_file() {
            local
        } else {
            first.to_path_buf()
        }
    }

    async fn execute(&self, request: &ExecRequest<'_>) -> Result<Vec<ExecFinding>, String> {
        let input =
            serde_json::to_vec(request).map_err(|e| format!("cannot encode the request: {e}"))?;
        let program = self.program();
        let dir = match &self.params.working_dir {
            Some(d) => self.manifest_dir.join(d),
            None => self.manifest_dir.clone(),
        };
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&self.params.command[1..])
            .env_clear()
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for name in &self.params.env {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", program.display()))?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err("the program's standard streams could not be opened".to_owned());
        };
        let max = self.params.max_output;
        let work = async {
            // A program that does not read its input must not block us: write in
            // the background and ignore a closed pipe.
            let writer = async move {
                let _ = stdin.write_all(&input).await;
                let _ = stdin.shutdown().await;
            };
            let read_out = async move {
                let mut buf = Vec::new();
                let n = stdout.take(max as u64 + 1).read_to_end(&mut buf).await;
                n.map(|_| buf)
            };
            let read_err = async move {
                let mut buf = Vec::new();
                let _ = stderr.take(MAX_STDERR as u64).read_to_end(&mut buf).await;
                buf
            };
            let ((), out, err) = tokio::join!(writer, read_out, read_err);
            (out, err)
        };
        let (out, err) = match tokio::time::timeout(self.params.timeout, work).await {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill().await;
                return Err(format!(
                    "did not finish within {}",
                    humantime::format_duration(self.params.timeout)
                ));
            }
        };
        let out = out.map_err(|e| format!("cannot read standard output: {e}"))?;
        if out.len() > max {
            let _ = child.kill().await;
            return Err(format!("printed more than {max} bytes on standard output"));
        }
        let status = match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(format!("cannot wait for the program: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                return Err("closed its output but did not exit".to_owned());
            }
        };
        let stderr_text = String::from_utf8_lossy(&err);
        let stderr_tail: String = stderr_text
            .trim()
            .chars()
            .rev()
            .take(500)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if !status.success() {
            return Err(format!(
                "exited with {status}{}",
                if stderr_tail.is_empty() {
                    String::new()
                } else {
                    format!(": {stderr_tail}")
                }
            ));
        }
        let response: ExecResponse = serde_json::from_slice(&out).map_err(|e| {
            if out.iter().all(u8::is_ascii_whitespace) {
                "printed nothing (expected a JSON object with \"findings\")".to_owned()
            } else {
                format!("printed invalid JSON: {e}")
            }
        })?;
        if let Some(bad) = response
            .findings
            .iter()
            .find(|f| !self.codes.contains(&f.code))
        {
            return Err(format!(
                "reported code `{}`, which the manifest does not declare (declared: {})",
                bad.code.escape_debug(),
                self.codes.join(", ")
            ));
        }
        Ok(response.findings)
    }
}
