//! The review's findings: each observation rendered by the one text layer
//! with the `relay-config` manifest's text (the command's view of the whole
//! review is in the agent).

use mxaudit_core::manifest::Plugin;
use mxaudit_core::text::TextRenderer;
use mxaudit_core::{Finding, Lang};

use super::Review;

/// The built-in `relay-config` plugin (its manifest text renders findings).
pub fn builtin_plugin() -> Result<Plugin, String> {
    let (path, text) = crate::BUILTIN_MANIFESTS
        .iter()
        .find(|(p, _)| p.ends_with("/relay-config.toml"))
        .ok_or("the built-in relay-config manifest is missing")?;
    mxaudit_core::manifest::load(path, Some("relay-config"), text, crate::ENGINES)
        .map_err(|e| e.to_string())
}

/// The review's findings, most severe first; `domain` names the domain when
/// the review belongs to one (empty for `mxaudit relay-config`).
pub fn findings(review: &Review, plugin: &Plugin, lang: Lang, domain: &str) -> Vec<Finding> {
    let renderer = TextRenderer::new(lang);
    let mut out: Vec<Finding> = review
        .observations
        .iter()
        .map(|o| renderer.finding(&plugin.meta, domain, o, None))
        .collect();
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(&b.code))
    });
    out
}
