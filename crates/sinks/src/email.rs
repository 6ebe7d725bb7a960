//! Sink `email`: one message per batch through an SMTP relay (lettre), with a
//! plain-text part and an HTML part (the same report as the `html` file).
//!
//! ```toml
//! [sinks.mail]
//! type = "email"
//! host = "smtp.example.com"
//! tls = "starttls"                 # starttls (port 587) | implicit (465) | none (25)
//! username_env = "SMTP_USER"
//! password_env = "SMTP_PASSWORD"
//! from = "mxaudit <mxaudit@example.com>"
//! to = ["postmaster@example.com"]
//! subject = "[mxaudit] {new} new, {resolved} resolved: {domains}"
//! ```
//!
//! TLS uses rustls with the aws-lc-rs provider and the platform's roots;
//! credentials are refused with `tls = "none"`, where they would cross the
//! network in clear. The Message-ID is derived from the batch key, so a batch
//! sent twice (a retry after a lost reply) is the same message to the receiving
//! mail system and to mail readers.
//!
//! Failures: a 5xx reply (bad recipient, authentication refused) is permanent;
//! 4xx replies, connection, TLS and timeout errors are retryable.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use mxaudit_core::config::SinkSection;
use mxaudit_core::sink::{Batch, SendError, Sink};
use mxaudit_core::tomldoc::Located;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::DeTable;

use crate::build::BuildContext;
use crate::secret::Secret;
use mxaudit_core::render;

/// The keys of `[sinks.<id>]` with `type = "email"`, in documentation order.
pub const KEYS: &[&str] = &[
    "host",
    "port",
    "tls",
    "username_env",
    "username_file",
    "password_env",
    "password_file",
    "from",
    "to",
    "subject",
    "timeout",
];

/// The subject when none is configured.
pub const DEFAULT_SUBJECT: &str = "[mxaudit] {new} new, {resolved} resolved: {domains}";
/// Placeholders of `subject`.
pub const SUBJECT_PLACEHOLDERS: &[&str] = &[
    "new", "resolved", "ongoing", "domains", "run", "schedule", "date", "worst",
];
/// Default time for one SMTP command.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// `tls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS (port 25): only for a relay on the same host or a trusted network.
    None,
}

impl TlsMode {
    /// The usual port of the mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Starttls => 587,
            TlsMode::Implicit => 465,
            TlsMode::None => 25,
        }
    }
}

/// The type's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The relay's host name (checked against its certificate).
    pub host: Spanned<String>,
    /// Default: by `tls` (587, 465, 25).
    #[serde(default)]
    pub port: Option<u16>,
    /// Default `starttls`.
    #[serde(default)]
    pub tls: Option<Spanned<TlsMode>>,
    /// Environment variable holding the SMTP user name.
    #[serde(default)]
    pub username_env: Option<Spanned<String>>,
    /// File holding the SMTP user name.
    #[serde(default)]
    pub username_file: Option<Spanned<String>>,
    /// Environment variable holding the SMTP password.
    #[serde(default)]
    pub password_env: Option<Spanned<String>>,
    /// File holding the SMTP password.
    #[serde(default)]
    pub password_file: Option<Spanned<String>>,
    /// Sender, `addr@example.com` or `Name <addr@example.com>`.
    pub from: Spanned<String>,
    /// Recipients.
    pub to: Spanned<Vec<String>>,
    /// Subject template.
    #[serde(default)]
    pub subject: Option<Spanned<String>>,
    /// Time for one SMTP command.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// A configured email sink. `Debug` shows no secret.
pub struct EmailSink {
    id: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject: String,
    password: Option<Secret>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSink")
            .field("id", &self.id)
            .field("from", &self.from)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

/// Builds an email sink from its keys (registry entry in [`crate::SINKS`]).
pub fn build(
    section: &SinkSection,
    table: Spanned<DeTable<'_>>,
    cx: &BuildContext<'_>,
) -> Result<Arc<dyn Sink>, Located> {
    let id = &section.id;
    let span = table.span();
    let config: EmailConfig = cx.deserialize(id, table)?;
    let host = config.host.get_ref().trim().to_owned();
    if host.is_empty() {
        return Err(cx.error(id, "host", Some(config.host.span()), "is empty"));
    }
    let mode = config
        .tls
        .as_ref()
        .map(|t| *t.get_ref())
        .unwrap_or_default();
    let from: Mailbox = config.from.get_ref().parse().map_err(|e| {
        cx.error(
            id,
            "from",
            Some(config.from.span()),
            format!("`{}`: {e}", config.from.get_ref().escape_debug()),
        )
    })?;
    if config.to.get_ref().is_empty() {
        return Err(cx.error(
            id,
            "to",
            Some(config.to.span()),
            "needs at least one recipient",
        ));
    }
    let mut to = Vec::new();
    for t in config.to.get_ref() {
        to.push(t.parse::<Mailbox>().map_err(|e| {
            cx.error(
                id,
                "to",
                Some(config.to.span()),
                format!("`{}`: {e}", t.escape_debug()),
            )
        })?);
    }
    let subject = match &config.subject {
        Some(s) => {
            check_subject(s.get_ref()).map_err(|e| cx.error(id, "subject", Some(s.span()), e))?;
            s.get_ref().clone()
        }
        None => DEFAULT_SUBJECT.to_owned(),
    };
    let username = cx.secret(
        id,
        span.clone(),
        ("username_env", config.username_env.as_ref()),
        ("username_file", config.username_file.as_ref()),
        false,
    )?;
    let password = cx.secret(
        id,
        span.clone(),
        ("password_env", config.password_env.as_ref()),
        ("password_file", config.password_file.as_ref()),
        false,
    )?;
    let credentials = match (username, &password) {
        (Some(user), Some(pass)) => Some(Credentials::new(user.expose().to_owned(), pass.expose().to_owned())),
        (None, None) => None,
        _ => return Err(cx.error(id, "", Some(span), "set both a user name (`username_env`/`username_file`) and a password (`password_env`/`password_file`), or neither")),
    };
    if credentials.is_some() && mode == TlsMode::None {
        let at = config.tls.as_ref().map(|t| t.span());
        return Err(cx.error(
            id,
            "tls",
            at,
            "credentials would be sent in clear with tls = \"none\"; use starttls or implicit",
        ));
    }
    let tls = match mode {
        TlsMode::None => Tls::None,
        TlsMode::Starttls | TlsMode::Implicit => {
            let params = TlsParameters::new(host.clone()).map_err(|e| {
                cx.error(
                    id,
                    "tls",
                    config.tls.as_ref().map(|t| t.span()),
                    format!("cannot set up TLS: {e}"),
                )
            })?;
            if mode == TlsMode::Starttls {
                Tls::Required(params)
            } else {
                Tls::Wrapper(params)
            }
        }
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(config.port.unwrap_or(mode.default_port()))
        .tls(tls)
        .timeout(Some(config.timeout.unwrap_or(DEFAULT_TIMEOUT)));
    if let Some(c) = credentials {
        builder = builder.credentials(c);
    }
    Ok(Arc::new(EmailSink {
        id: id.clone(),
        from,
        to,
        subject,
        password,
        transport: builder.build(),
    }))
}

/// Checks that a subject template uses only known placeholders.
fn check_subject(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{}`", template.escape_debug()))?;
        let name = &after[..close];
        if !SUBJECT_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{}}}` (known: {})",
                name.escape_debug(),
                SUBJECT_PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

/// The subject of a batch: placeholders replaced, control characters (which
/// could start a new header) replaced by spaces.
pub fn subject(template: &str, batch: &Batch) -> String {
    let summary = render::Summary::of(batch);
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let value = match &after[..close] {
            "new" => summary.new.to_string(),
            "resolved" => summary.resolved.to_string(),
            "ongoing" => summary.ongoing.to_string(),
            "domains" => render::truncate(&batch.domains.join(", "), 120),
            "run" => batch.run_id.clone(),
            "schedule" => batch.schedule.clone().unwrap_or_default(),
            "date" => render::date_of(&batch.started_at),
            "worst" => render::worst(batch)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|| "none".into()),
            other => format!("{{{other}}}"),
        };
        out.push_str(&value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl EmailSink {
    /// The message of a batch.
    pub fn message(&self, batch: &Batch) -> Result<Message, SendError> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject(&self.subject, batch))
            .message_id(Some(message_id(&batch.key, &self.from)))
            .user_agent(concat!("mxaudit/", env!("CARGO_PKG_VERSION")).to_owned())
            .date_now();
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder
            .multipart(MultiPart::alternative_plain_html(
                render::text::render(batch),
                render::html::render(batch),
            ))
            .map_err(|e| SendError::Permanent {
                reason: format!("building the message: {e}"),
            })
    }
}

/// `<hash of the batch key>@<sender's domain>`: the same batch is the same message.
fn message_id(key: &str, from: &Mailbox) -> String {
    let hash: String = Sha256::digest(key.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("<{hash}.mxaudit@{}>", from.email.domain())
}

#[async_trait::async_trait]
impl Sink for EmailSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let message = self.message(batch)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let mut reason = format!("SMTP: {e}");
                if let Some(p) = &self.password {
                    reason = p.redact(&reason);
                }
                Err(classify(&e, reason))
            }
        }
    }
}

/// 5xx replies and client-side refusals will not change by retrying; 4xx
/// replies, connection, TLS, timeout and garbled-reply errors may.
fn classify(e: &lettre::transport::smtp::Error, reason: String) -> SendError {
    if e.is_permanent() || e.is_client() {
        SendError::Permanent { reason }
    } else {
        SendError::Retryable {
            reason,
            retry_after: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxaudit_core::render::fixtures::batch;

    #[test]
    fn subject_placeholders() {
        assert!(check_subject(DEFAULT_SUBJECT).is_ok());
        assert!(
            check_subject("{new} {nwe}")
                .expect_err("typo")
                .contains("{nwe}")
        );
        let mut b = batch();
        b.domains = vec!["example.com\r\nBcc: x@evil".into()];
        let s = subject(
            "[mxaudit] {new} new, {resolved} resolved, worst {worst}: {domains}",
            &b,
        );
        assert_eq!(
            s,
            "[mxaudit] 1 new, 1 resolved, worst high: example.com  Bcc: x@evil"
        );
    }

    #[test]
    fn message_id_is_stable_per_batch() {
        let from: Mailbox = "mxaudit <a@example.com>".parse().expect("mailbox");
        assert_eq!(
            message_id("run-1/mail", &from),
            message_id("run-1/mail", &from)
        );
        assert_ne!(
            message_id("run-1/mail", &from),
            message_id("run-2/mail", &from)
        );
        assert!(message_id("k", &from).ends_with(".mxaudit@example.com>"));
    }
}
