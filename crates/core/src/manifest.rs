//! Plugin manifests: TOML files that instantiate an engine with parameters and
//! the text of its findings. Parsed in two stages (the header, then `[params]`
//! with the engine's own type), validated completely at load time: engine
//! known, params typed, every code with en and ja text, templates compiled in
//! strict mode against the variables the engine provides.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{Check, EngineEntry, ParamsInput, PluginMeta};
use crate::model::Severity;
use crate::text;
use crate::tomldoc::{self, Located};

/// A text in both languages; each is a minijinja template.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangText {
    /// English.
    pub en: Spanned<String>,
    /// Japanese.
    pub ja: Spanned<String>,
}

impl LangText {
    /// The template for a language.
    pub fn get(&self, lang: crate::model::Lang) -> &str {
        match lang {
            crate::model::Lang::En => self.en.get_ref(),
            crate::model::Lang::Ja => self.ja.get_ref(),
        }
    }
}

/// The text and defaults of one finding code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FindingText {
    /// Default severity.
    pub severity: Severity,
    /// One-line title.
    pub title: LangText,
    /// What was seen.
    pub detail: LangText,
    /// What to do.
    pub remediation: LangText,
    /// RFC sections and support articles.
    #[serde(default)]
    pub references: Vec<String>,
    /// Bounce or connector codes senders see.
    #[serde(default)]
    pub ndr: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestHeader {
    id: Spanned<String>,
    engine: Spanned<String>,
    description: String,
    #[serde(default = "yes")]
    enabled: bool,
    /// A user manifest may replace a built-in plugin of the same id only with this.
    #[serde(default, rename = "override")]
    override_builtin: bool,
    #[serde(default)]
    finding: BTreeMap<Spanned<String>, FindingText>,
}

/// `#[serde(default = …)]` for keys that default to true (also `[[dnsbl]] enabled`).
pub(crate) fn yes() -> bool {
    true
}

/// A manifest loaded and validated.
#[derive(Clone)]
pub struct Plugin {
    /// The manifest facts.
    pub meta: PluginMeta,
    /// Whether it runs by default.
    pub enabled: bool,
    /// Whether it replaces a built-in plugin of the same id.
    pub override_builtin: bool,
    /// The check.
    pub check: Arc<dyn Check>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("id", &self.meta.id)
            .field("engine", &self.meta.engine)
            .finish_non_exhaustive()
    }
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn valid_code(code: &str) -> bool {
    let mut parts = code.split('.');
    let ok_part = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if ok_part(a) && ok_part(b))
}

/// Loads one manifest. `path` names it in errors; `stem` (the file name without
/// `.toml`) must equal the id when given.
pub fn load(
    path: &str,
    stem: Option<&str>,
    source: &str,
    engines: &[EngineEntry],
) -> Result<Plugin, Located> {
    let mut doc = tomldoc::parse(path, source)?;
    let params = match tomldoc::take(&mut doc, "params") {
        Some(v) => tomldoc::as_table(path, source, "params", v)?,
        None => tomldoc::empty_table(),
    };
    let header: ManifestHeader = tomldoc::deserialize(path, source, doc)?;
    let text = read_text(path, stem, source, header, engines)?;
    let params_span = params.span();
    text.build(
        ParamsInput {
            table: params,
            source,
        },
        |e| {
            let span = e.span.or(Some(params_span.clone())).filter(|s| s.end > 0);
            Located::at(path, source, span, format!("params: {}", e.message))
        },
    )
}

/// A plugin defined by a table of the configuration file rather than a
/// manifest, e.g. `[[dnsbl]]`: the table holds the engine's parameters (plus
/// `id` and `enabled`, already taken out), the text comes from a manifest of
/// the engine's generic text.
pub struct InlinePlugin<'a> {
    /// The plugin id.
    pub id: String,
    /// Whether it runs by default.
    pub enabled: bool,
    /// The table, without `id` and `enabled`.
    pub params: Spanned<toml::de::DeTable<'a>>,
    /// The configuration file's path, for errors.
    pub path: &'a str,
    /// The configuration file's text.
    pub source: &'a str,
}

/// Builds an inline plugin: the text of `text_source` (a manifest whose
/// `[params]` is ignored), the parameters of `inline`, errors in them located
/// in the configuration file.
pub fn load_inline(
    text_path: &str,
    text_source: &str,
    engines: &[EngineEntry],
    inline: InlinePlugin<'_>,
) -> Result<Plugin, Located> {
    let mut doc = tomldoc::parse(text_path, text_source)?;
    tomldoc::take(&mut doc, "params");
    let header: ManifestHeader = tomldoc::deserialize(text_path, text_source, doc)?;
    let mut text = read_text(text_path, None, text_source, header, engines)?;
    let span = inline.params.span();
    let (line, _) = tomldoc::line_col(inline.source, span.start);
    if !valid_id(&inline.id) {
        return Err(Located::at(
            inline.path,
            inline.source,
            Some(span),
            format!(
                "id: `{}` must be 1-64 characters of a-z, 0-9 and -",
                inline.id.escape_debug()
            ),
        ));
    }
    text.meta.id = inline.id;
    text.meta.source = format!("{}:{line}", inline.path);
    text.meta.description = format!("{} ({} line {line})", text.meta.description, inline.path);
    text.enabled = inline.enabled;
    text.build(
        ParamsInput {
            table: inline.params,
            source: inline.source,
        },
        |e| {
            let at = e.span.or(Some(span.clone())).filter(|s| s.end > 0);
            Located::at(inline.path, inline.source, at, e.message)
        },
    )
}

/// A manifest's header, validated, before its parameters are built.
struct ManifestText<'e> {
    meta: PluginMeta,
    enabled: bool,
    override_builtin: bool,
    engine: &'e EngineEntry,
    path: String,
}

impl ManifestText<'_> {
    fn build(
        self,
        params: ParamsInput<'_>,
        locate: impl Fn(crate::check::ParamsError) -> Located,
    ) -> Result<Plugin, Located> {
        let check = (self.engine.build)(params, self.meta.clone()).map_err(locate)?;
        // Text for every code this instance can emit (its parameters decide,
        // e.g. a domain blocklist never emits dnsbl.listed).
        for code in check.emitted_codes() {
            if !self.meta.findings.contains_key(code) {
                return Err(Located {
                    path: self.path.clone(),
                    line: 0,
                    column: 0,
                    message: format!(
                        "finding.\"{code}\": missing (engine `{}` emits it with these params; give severity, title, detail and remediation in en and ja)",
                        self.engine.name
                    ),
                });
            }
        }
        Ok(Plugin {
            meta: self.meta,
            enabled: self.enabled,
            override_builtin: self.override_builtin,
            check: Arc::from(check),
        })
    }
}

fn read_text<'e>(
    path: &str,
    stem: Option<&str>,
    source: &str,
    header: ManifestHeader,
    engines: &'e [EngineEntry],
) -> Result<ManifestText<'e>, Located> {
    let at = |span: std::ops::Range<usize>, msg: String| Located::at(path, source, Some(span), msg);

    let id = header.id.get_ref().clone();
    if !valid_id(&id) {
        return Err(at(
            header.id.span(),
            format!(
                "id: `{}` must be 1-64 characters of a-z, 0-9 and -",
                id.escape_debug()
            ),
        ));
    }
    if let Some(stem) = stem
        && stem != id
    {
        return Err(at(
            header.id.span(),
            format!("id: `{id}` must equal the file name `{stem}.toml`"),
        ));
    }
    let engine_name = header.engine.get_ref();
    let Some(engine) = engines.iter().find(|e| e.name == engine_name.as_str()) else {
        let known: Vec<&str> = engines.iter().map(|e| e.name).collect();
        return Err(at(
            header.engine.span(),
            format!(
                "engine: unknown engine `{}` (known: {})",
                engine_name.escape_debug(),
                known.join(", ")
            ),
        ));
    };

    // Codes: each must be the engine's, unless the engine lets manifests define them;
    // each must have text that compiles with the variables the engine provides.
    let mut findings = BTreeMap::new();
    for (code, text) in &header.finding {
        let name = code.get_ref();
        if !valid_code(name) {
            return Err(at(
                code.span(),
                format!(
                    "finding: code `{}` must be family.name in a-z, 0-9 and _",
                    name.escape_debug()
                ),
            ));
        }
        let Some(vars) = engine.vars_for(name) else {
            let known: Vec<&str> = engine.codes.iter().map(|c| c.code).collect();
            return Err(at(
                code.span(),
                format!(
                    "finding.\"{name}\": engine `{}` does not emit this code (it emits: {})",
                    engine.name,
                    known.join(", ")
                ),
            ));
        };
        for (field, lt) in [
            ("title", &text.title),
            ("detail", &text.detail),
            ("remediation", &text.remediation),
        ] {
            for (lang, template) in [("en", &lt.en), ("ja", &lt.ja)] {
                if template.get_ref().trim().is_empty() {
                    return Err(at(
                        template.span(),
                        format!("finding.\"{name}\".{field}.{lang}: text is empty"),
                    ));
                }
                if let Err(why) = text::check_template(template.get_ref(), &vars) {
                    return Err(at(
                        template.span(),
                        format!("finding.\"{name}\".{field}.{lang}: {why}"),
                    ));
                }
            }
        }
        findings.insert(name.clone(), text.clone());
    }

    let meta = PluginMeta {
        id: id.clone(),
        engine: engine.name.to_owned(),
        description: header.description,
        source: path.to_owned(),
        findings,
    };
    Ok(ManifestText {
        meta,
        enabled: header.enabled,
        override_builtin: header.override_builtin,
        engine,
        path: path.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_codes() {
        assert!(valid_id("dnsbl-spamhaus-zen"));
        assert!(!valid_id("Bad_Id"));
        assert!(valid_code("mx.target_cname"));
        assert!(!valid_code("mx"));
        assert!(!valid_code("mx.a.b"));
        assert!(!valid_code("MX.none"));
    }
}
