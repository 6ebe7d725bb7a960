//! Slack Block Kit message of a batch: a header with the counts, the run, the
//! top findings (new first, most severe first) with their evidence, and how
//! many more there are.
//!
//! Untrusted text (subjects, evidence, and titles that quote records) must not
//! ping anyone, link anywhere or format itself (style rule 11). Slack parses
//! `<…>` sequences in `mrkdwn` as mentions and links (`<!channel>`,
//! `<@U123>`, `<!subteam^S1>`, `<http://x|y>`); its documented escape is `&`,
//! `<`, `>` as `&amp;`, `&lt;`, `&gt;` ([`escape_mrkdwn`]). Text objects are
//! `verbatim`, so Slack does not auto-link or resolve bare names either. An `@`
//! gets a word joiner after it, so `@here` is never the word `@here`, and the
//! formatting markers `*` `_` `~` `` ` `` get a zero-width space before them,
//! which stops them from opening bold, italics, strike or code (Slack requires
//! them at the start of a word). Evidence and finding codes go in code spans
//! instead ([`code`]), where Slack applies no formatting, so records stay
//! copyable; there only the entities, `@` and the backtick itself are handled.
//! Control characters are shown escaped.

use crate::sink::{Batch, Event};
use crate::text::escape_terminal;
use serde_json::{Value, json};

use super::{Summary, change_label, ordered, truncate};

/// Slack's limit of a section's text is 3000 characters; stay under it.
const SECTION_MAX: usize = 2900;
/// Evidence lines shown per finding.
const EVIDENCE_LINES: usize = 3;
/// Characters per evidence line.
const EVIDENCE_CHARS: usize = 300;

/// Escapes untrusted text for a Slack `mrkdwn` text object.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in escape_terminal(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            '*' | '_' | '~' | '`' => {
                out.push('\u{200b}');
                out.push(c);
            }
            // One finding line stays one line: a newline could start a quote (`>`) or a list.
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

/// Untrusted text as a Slack code span: entities and `@` as in
/// [`escape_mrkdwn`], a backtick (which would end the span) as `ˋ`.
pub fn code(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    out.push('`');
    for c in escape_terminal(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{2060}"),
            '`' => out.push('\u{2cb}'),
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out.push('`');
    out
}

/// The message body.
pub fn render(batch: &Batch, max_findings: usize) -> Value {
    let summary = Summary::of(batch);
    let domains: Vec<String> = batch.domains.iter().map(|d| escape_mrkdwn(d)).collect();
    let mut run = format!("*Run* {}", escape_mrkdwn(&batch.run_id));
    if let Some(s) = &batch.schedule {
        run.push_str(&format!(" · *schedule* {}", escape_mrkdwn(s)));
    }
    run.push_str(&format!(
        " · *domains* {}",
        truncate(&domains.join(", "), 1000)
    ));

    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": format!("mxaudit: {}", summary.line()), "emoji": false}}),
        json!({"type": "context", "elements": [mrkdwn(&run)]}),
        json!({"type": "divider"}),
    ];
    let events = ordered(&batch.events);
    for e in events.iter().take(max_findings) {
        blocks.push(json!({"type": "section", "text": mrkdwn(&finding_text(e))}));
    }
    if events.len() > max_findings {
        let more = format!(
            "… and {} more finding(s) in this run.",
            events.len() - max_findings
        );
        blocks.push(json!({"type": "context", "elements": [mrkdwn(&more)]}));
    }
    if events.is_empty() {
        blocks.push(json!({"type": "section", "text": mrkdwn("No changes.")}));
    }
    json!({
        // The notification text (and what clients without Block Kit show).
        "text": format!("mxaudit: {} ({})", summary.line(), truncate(&domains.join(", "), 200)),
        "blocks": blocks,
    })
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

fn finding_text(e: &Event) -> String {
    let f = &e.finding;
    let mut text = format!(
        "*{}* · *{}* · {} · {}\n*{}*",
        change_label(e.change).to_uppercase(),
        f.severity.as_str().to_uppercase(),
        code(&f.code),
        escape_mrkdwn(&super::about(f)),
        escape_mrkdwn(&f.title)
    );
    for line in f.evidence.iter().take(EVIDENCE_LINES) {
        text.push_str("\n• ");
        text.push_str(&code(&truncate(line, EVIDENCE_CHARS)));
    }
    if f.evidence.len() > EVIDENCE_LINES {
        text.push_str(&format!(
            "\n• … {} more evidence line(s)",
            f.evidence.len() - EVIDENCE_LINES
        ));
    }
    truncate(&text, SECTION_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::batch;

    /// Every string in a JSON value.
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_text_cannot_ping_link_or_format() {
        let v = render(&batch(), 10);
        let mut all = Vec::new();
        strings(&v, &mut all);
        let text = all.join("\n");
        for bad in [
            "<!channel>",
            "<@U123>",
            "@here",
            "<!subteam",
            "<http://evil|click>",
            "</script>",
            "\u{1b}",
            "\u{202e}",
            " `c`",
        ] {
            assert!(!text.contains(bad), "{bad:?} in {text}");
        }
        // Prose (the title line) cannot format itself; evidence is in code spans.
        let section = v["blocks"][3]["text"]["text"].as_str().unwrap_or_default();
        let title = section.lines().nth(1).unwrap_or_default();
        for bad in [" *bold*", " _it_", " ~s~"] {
            assert!(!title.contains(bad), "{bad:?} in {title}");
        }
        assert!(
            section.contains("\n• `v=spf1 include:_spf.example.net ~all`"),
            "{section}"
        );
        assert!(text.contains("&lt;!channel&gt;"));
        assert_eq!(
            v["blocks"][0]["text"]["text"],
            "mxaudit: 1 new, 1 resolved, 1 ongoing"
        );
        assert!(
            v["blocks"][3]["text"]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("*NEW* · *HIGH*"))
        );
    }

    #[test]
    fn top_findings_only() {
        let v = render(&batch(), 1);
        let blocks = v["blocks"].as_array().expect("blocks");
        assert!(
            blocks
                .last()
                .and_then(|b| b["elements"][0]["text"].as_str())
                .is_some_and(|t| t.contains("2 more"))
        );
    }
}
