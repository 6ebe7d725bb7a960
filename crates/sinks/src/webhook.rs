//! Sink `webhook`: an HTTPS POST per batch — a Slack Block Kit message, a
//! Microsoft Teams Adaptive Card, or the generic JSON document signed with
//! HMAC-SHA256.
//!
//! ```toml
//! [sinks.alerts]
//! type = "webhook"
//! format = "slack"            # slack | teams | generic
//! url_env = "SLACK_WEBHOOK"   # or url_file = "secrets/slack-url"
//! ```
//!
//! The URL is a secret (Slack and Teams put the credential in it): it is read
//! from an environment variable or a file, kept in a [`Secret`], and appears in
//! no log, error or report — reqwest's errors are stripped of it. Every request
//! carries `Idempotency-Key: <batch key>`, the same on every retry and replay,
//! so a receiver can drop a batch it has already taken.
//!
//! Failures are classified for the delivery loop: 2xx is delivered; 408, 429,
//! 5xx, timeouts and connection errors are retryable (with the receiver's
//! `Retry-After`, in seconds or as an HTTP date); other statuses (400, 401,
//! 403, 404, 410, 3xx) are permanent and go to the dead-letter folder.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use mxaudit_core::config::SinkSection;
use mxaudit_core::sink::{Batch, SendError, Sink};
use mxaudit_core::tomldoc::Located;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use sha2::Sha256;
use toml::Spanned;
use toml::de::DeTable;

use crate::build::BuildContext;
use crate::secret::Secret;
use mxaudit_core::render;

/// The keys of `[sinks.<id>]` with `type = "webhook"`, in documentation order.
pub const KEYS: &[&str] = &[
    "format",
    "url_env",
    "url_file",
    "secret_env",
    "secret_file",
    "timeout",
    "max_findings",
];

/// The header carrying the batch key.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying the generic format's signature: `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Mxaudit-Signature";

/// Default request timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of findings listed in a chat message.
const DEFAULT_MAX_FINDINGS: usize = 10;
/// Characters of a refusing response body quoted in a reason.
const BODY_QUOTE: usize = 200;

/// `format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Slack incoming webhook: Block Kit.
    Slack,
    /// Microsoft Teams incoming webhook or Workflow: Adaptive Card.
    Teams,
    /// The JSON document of the batch, optionally HMAC-signed.
    Generic,
}

/// The type's own keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Payload format.
    pub format: Spanned<WebhookFormat>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<Spanned<String>>,
    /// File holding the URL (relative to the configuration file).
    #[serde(default)]
    pub url_file: Option<Spanned<String>>,
    /// Environment variable holding the HMAC key (generic only).
    #[serde(default)]
    pub secret_env: Option<Spanned<String>>,
    /// File holding the HMAC key (generic only).
    #[serde(default)]
    pub secret_file: Option<Spanned<String>>,
    /// Time for one request, connection included.
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Findings listed in a Slack or Teams message (the rest are counted).
    #[serde(default)]
    pub max_findings: Option<usize>,
}

/// A configured webhook sink. `Debug` shows no secret.
#[derive(Debug)]
pub struct WebhookSink {
    id: String,
    format: WebhookFormat,
    url: Secret,
    signing_key: Option<Secret>,
    max_findings: usize,
    client: reqwest::Client,
}

/// Builds a webhook sink from its keys (registry entry in [`crate::SINKS`]).
pub fn build(
    section: &SinkSection,
    table: Spanned<DeTable<'_>>,
    cx: &BuildContext<'_>,
) -> Result<Arc<dyn Sink>, Located> {
    let id = &section.id;
    let span = table.span();
    let config: WebhookConfig = cx.deserialize(id, table)?;
    let format = *config.format.get_ref();
    let url = cx
        .secret(
            id,
            span.clone(),
            ("url_env", config.url_env.as_ref()),
            ("url_file", config.url_file.as_ref()),
            true,
        )?
        .ok_or_else(|| {
            cx.error(
                id,
                "",
                Some(span.clone()),
                "`url_env` or `url_file` is required",
            )
        })?;
    let url_key = if config.url_env.is_some() {
        "url_env"
    } else {
        "url_file"
    };
    let url_span = config
        .url_env
        .as_ref()
        .or(config.url_file.as_ref())
        .map(|s| s.span());
    // The parse error names what is wrong, never the URL itself.
    match reqwest::Url::parse(url.expose()) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => {}
        Ok(u) => {
            return Err(cx.error(
                id,
                url_key,
                url_span,
                format!(
                    "the URL must be https:// (or http://), not {}://",
                    u.scheme()
                ),
            ));
        }
        Err(e) => {
            return Err(cx.error(
                id,
                url_key,
                url_span,
                format!("the value is not a URL: {e}"),
            ));
        }
    }
    let signing_key = cx.secret(
        id,
        span,
        ("secret_env", config.secret_env.as_ref()),
        ("secret_file", config.secret_file.as_ref()),
        false,
    )?;
    if signing_key.is_some() && format != WebhookFormat::Generic {
        let (key, at) = match &config.secret_env {
            Some(s) => ("secret_env", s.span()),
            None => (
                "secret_file",
                config
                    .secret_file
                    .as_ref()
                    .map(|s| s.span())
                    .unwrap_or_default(),
            ),
        };
        return Err(cx.error(id, key, Some(at), "a signing secret applies to format = \"generic\" only (Slack and Teams do not check signatures)"));
    }
    let timeout = config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A webhook that redirects is misconfigured; following it would resend
        // the payload (and maybe the credential in the URL) somewhere else.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("mxaudit/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            cx.error(
                id,
                "",
                None,
                format!("cannot create the HTTP client: {}", e.without_url()),
            )
        })?;
    Ok(Arc::new(WebhookSink {
        id: id.clone(),
        format,
        url,
        signing_key,
        max_findings: config.max_findings.unwrap_or(DEFAULT_MAX_FINDINGS),
        client,
    }))
}

impl WebhookSink {
    /// The request body of a batch in this sink's format.
    pub fn body(&self, batch: &Batch) -> Result<Vec<u8>, SendError> {
        let body = match self.format {
            WebhookFormat::Slack => {
                serde_json::to_vec(&render::slack::render(batch, self.max_findings))
            }
            WebhookFormat::Teams => {
                serde_json::to_vec(&render::teams::render(batch, self.max_findings))
            }
            WebhookFormat::Generic => render::json::compact(batch),
        };
        body.map_err(|e| SendError::Permanent {
            reason: format!("rendering the batch: {e}"),
        })
    }

    /// A reason safe to report: whatever a library said, without the URL.
    fn redact(&self, text: &str) -> String {
        self.url.redact(text)
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `body` with `key`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

#[async_trait::async_trait]
impl Sink for WebhookSink {
    fn id(&self) -> &str {
        &self.id
    }

    async fn send(&self, batch: &Batch) -> Result<(), SendError> {
        let body = self.body(batch)?;
        let mut request = self
            .client
            .post(self.url.expose())
            .header(CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, batch.key.as_str());
        if let Some(key) = &self.signing_key {
            request = request.header(SIGNATURE_HEADER, signature(key.expose().as_bytes(), &body));
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(SendError::Retryable {
                    reason: self.redact(&describe(&e)),
                    retry_after: None,
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = retry_after(response.headers(), chrono::Utc::now());
        // A short quote of the refusal helps the operator (Slack says
        // `invalid_payload`, `no_service`…); control characters made visible.
        let quote = response
            .text()
            .await
            .map(|t| mxaudit_core::text::escape_terminal(&render::truncate(t.trim(), BODY_QUOTE)))
            .unwrap_or_default();
        let reason = self.redact(&if quote.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {quote}")
        });
        Err(classify(status, reason, retry_after))
    }
}

/// 2xx is handled by the caller; 408, 429 and 5xx are worth retrying; every
/// other status will not change by retrying.
pub fn classify(status: StatusCode, reason: String, retry_after: Option<Duration>) -> SendError {
    if status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        SendError::Retryable {
            reason,
            retry_after,
        }
    } else {
        SendError::Permanent { reason }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) is RFC 2822 syntax.
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (when.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// What went wrong with a request that got no response, without the URL.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    // reqwest's own message names the URL; its sources (I/O, TLS) do not, but
    // the caller redacts the URL anyway.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        causes.push(s.to_string());
        source = s.source();
    }
    causes.dedup();
    if causes.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", causes.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn statuses_are_classified() {
        for (code, retryable) in [
            (429, true),
            (408, true),
            (500, true),
            (503, true),
            (400, false),
            (401, false),
            (404, false),
            (410, false),
            (301, false),
        ] {
            let status = StatusCode::from_u16(code).expect("status");
            let e = classify(status, String::new(), None);
            assert_eq!(
                matches!(e, SendError::Retryable { .. }),
                retryable,
                "{code}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_date() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc);
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Tue, 24 Nov 2026 10:00:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Tue, 24 Nov 2026 09:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn debug_shows_no_secret() {
        let sink = WebhookSink {
            id: "hook".into(),
            format: WebhookFormat::Generic,
            url: Secret::new("https://hooks.example/T000/SECRET"),
            signing_key: Some(Secret::new("signing-key")),
            max_findings: 10,
            client: reqwest::Client::new(),
        };
        let shown = format!("{sink:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("signing-key"),
            "{shown}"
        );
    }

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
