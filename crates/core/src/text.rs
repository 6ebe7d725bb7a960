//! The one text layer: renders titles, details and remediation from manifest
//! templates (minijinja, strict undefined) in English or Japanese, and escapes
//! untrusted text (DNS records, SMTP replies) for terminals, Markdown and HTML.

use minijinja::{Environment, UndefinedBehavior, Value};

use crate::check::PluginMeta;
use crate::model::{Finding, Lang, Observation, Severity, fingerprint};

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // Rendered text is plain; each output format escapes it (below), so the
    // templates themselves never auto-escape.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env
}

/// Compiles a template and checks that it uses only `vars`.
pub fn check_template(source: &str, vars: &[&str]) -> Result<(), String> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| format!("template does not compile: {e}"))?;
    let mut unknown: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !vars.contains(&v.as_str()))
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        unknown.sort();
        Err(format!(
            "template uses unknown variable(s) {} (available: {})",
            unknown.join(", "),
            vars.join(", ")
        ))
    }
}

/// Renders findings in one language.
pub struct TextRenderer {
    /// Each manifest template is compiled once, on first use, and kept under
    /// its own text as the name: compiling on every render was ~3 % of a
    /// large audit (docs/performance.md). The set is bounded by the manifests.
    env: std::sync::RwLock<Environment<'static>>,
    lang: Lang,
}

impl std::fmt::Debug for TextRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextRenderer")
            .field("lang", &self.lang)
            .finish()
    }
}

impl TextRenderer {
    /// A renderer for `lang`.
    pub fn new(lang: Lang) -> TextRenderer {
        TextRenderer {
            env: std::sync::RwLock::new(environment()),
            lang,
        }
    }

    fn render(&self, template: &str, ctx: &Value) -> String {
        // Templates were checked at load; a failure here means an engine did not
        // set a variable it declared. Show the template rather than lose the finding.
        let failed = |e: minijinja::Error| format!("{template} [text error: {e}]");
        {
            let env = self.env.read().unwrap_or_else(|e| e.into_inner());
            if let Ok(t) = env.get_template(template) {
                return t.render(ctx).unwrap_or_else(failed);
            }
        }
        let mut env = self.env.write().unwrap_or_else(|e| e.into_inner());
        if env.get_template(template).is_err()
            && let Err(e) = env.add_template_owned(template.to_owned(), template.to_owned())
        {
            return failed(e);
        }
        match env.get_template(template) {
            Ok(t) => t.render(ctx).unwrap_or_else(failed),
            Err(e) => failed(e),
        }
    }

    /// Turns an observation into a finding. `severity` overrides the manifest's default.
    pub fn finding(
        &self,
        plugin: &PluginMeta,
        domain: &str,
        obs: &Observation,
        severity: Option<Severity>,
    ) -> Finding {
        let mut vars = obs.vars.clone();
        vars.insert("domain".into(), domain.into());
        vars.insert("subject".into(), obs.subject.clone().into());
        vars.insert("plugin".into(), plugin.id.clone().into());
        let ctx = Value::from(minijinja::value::Serde(&vars));
        let fp = fingerprint(&obs.code, domain, &obs.subject);
        match plugin.findings.get(&obs.code) {
            Some(text) => Finding {
                code: obs.code.clone(),
                severity: severity.unwrap_or(text.severity),
                domain: domain.to_owned(),
                subject: obs.subject.clone(),
                title: self.render(text.title.get(self.lang), &ctx),
                detail: self.render(text.detail.get(self.lang), &ctx),
                evidence: obs.evidence.clone(),
                remediation: self
                    .render(text.remediation.get(self.lang), &ctx)
                    .trim()
                    .to_owned(),
                references: text.references.clone(),
                ndr: text.ndr.clone(),
                plugin: plugin.id.clone(),
                fingerprint: fp,
            },
            // An engine emitted a code its manifest has no text for: keep the finding.
            None => Finding {
                code: obs.code.clone(),
                severity: severity.unwrap_or(Severity::Medium),
                domain: domain.to_owned(),
                subject: obs.subject.clone(),
                title: obs.code.clone(),
                detail: format!("plugin {} has no text for this code", plugin.id),
                evidence: obs.evidence.clone(),
                remediation: String::new(),
                references: Vec::new(),
                ndr: Vec::new(),
                plugin: plugin.id.clone(),
                fingerprint: fp,
            },
        }
    }
}

/// Escapes text for a terminal: control characters (ANSI escapes, carriage
/// returns, bidi overrides) become visible `\u{..}` sequences.
pub fn escape_terminal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() && c != '\n' && c != '\t' || is_bidi_control(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// Escapes text for Markdown (CommonMark): punctuation that could start markup,
/// links or HTML is backslash-escaped; control characters are made visible.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in escape_terminal(s).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '<' | '>' | '~' | '@' | '&' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in escape_terminal(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiled_templates_are_reused_not_their_output() {
        let r = TextRenderer::new(Lang::En);
        let t = "MX {{ host }}{% if n %} ({{ n }}){% endif %}";
        let a = r.render(
            t,
            &Value::from(minijinja::value::Serde(
                serde_json::json!({"host": "a.example", "n": 2}),
            )),
        );
        let b = r.render(
            t,
            &Value::from(minijinja::value::Serde(
                serde_json::json!({"host": "b.example", "n": 0}),
            )),
        );
        assert_eq!(a, "MX a.example (2)");
        assert_eq!(b, "MX b.example");
        // A variable the context lacks (strict mode): the template is shown
        // with the error, on the first and on later renders alike.
        for _ in 0..2 {
            let e = r.render(
                "{{ missing }}",
                &Value::from(minijinja::value::Serde(serde_json::json!({}))),
            );
            assert!(e.starts_with("{{ missing }} [text error:"), "{e}");
        }
        let bad = r.render(
            "{{ unclosed",
            &Value::from(minijinja::value::Serde(serde_json::json!({}))),
        );
        assert!(bad.contains("[text error:"), "{bad}");
    }

    #[test]
    fn template_vars_checked() {
        assert!(check_template("MX {{ host }} in {{ domain }}", &["host", "domain"]).is_ok());
        let err = check_template("{{ hots }}", &["host"]).expect_err("typo");
        assert!(err.contains("hots"), "{err}");
        assert!(check_template("{{ unclosed", &[]).is_err());
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_terminal("a\u{1b}[31mb"), "a\\u{1b}[31mb");
        assert_eq!(escape_html("<script>&"), "&lt;script&gt;&amp;");
        assert_eq!(escape_markdown("[x](http://e)"), "\\[x\\]\\(http://e\\)");
        assert!(!escape_markdown("<!channel>").contains("<!"));
    }
}
