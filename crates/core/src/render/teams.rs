//! Microsoft Teams message of a batch: an Adaptive Card (1.4) in the message
//! envelope that Teams incoming webhooks and Workflows accept, with the counts,
//! the run, and the top findings with their evidence.
//!
//! Untrusted text never goes into a `TextBlock` (which renders a Markdown
//! subset: links, emphasis, lists). It goes into `TextRun`s of a
//! `RichTextBlock`, which Adaptive Cards render literally, without Markdown.
//! As a second line of defence, [`escape_text`] also breaks the sequences a
//! renderer could still read as markup if it did parse them: a zero-width space
//! after `<` (tags, `<at>` mentions, autolinks) and between `]` and `(` or `[`
//! (Markdown links). Control characters are shown escaped.

use crate::sink::{Batch, Event};
use crate::text::escape_terminal;
use serde_json::{Value, json};

use super::{Summary, change_label, ordered, truncate};

/// Evidence lines shown per finding.
const EVIDENCE_LINES: usize = 3;
/// Characters per evidence line.
const EVIDENCE_CHARS: usize = 300;

/// Makes untrusted text inert for Teams (see the module comment).
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    for c in escape_terminal(s).chars() {
        if prev == ']' && (c == '(' || c == '[') {
            out.push('\u{200b}');
        }
        out.push(c);
        if c == '<' {
            out.push('\u{200b}');
        }
        prev = c;
    }
    out
}

/// The message body.
pub fn render(batch: &Batch, max_findings: usize) -> Value {
    let summary = Summary::of(batch);
    let mut facts = vec![json!({"title": "Run", "value": escape_text(&batch.run_id)})];
    if let Some(s) = &batch.schedule {
        facts.push(json!({"title": "Schedule", "value": escape_text(s)}));
    }
    facts.push(json!({"title": "Domains", "value": escape_text(&truncate(&batch.domains.join(", "), 1000))}));
    facts.push(json!({"title": "Finished", "value": escape_text(&batch.finished_at)}));

    let mut body = vec![
        json!({"type": "TextBlock", "size": "Large", "weight": "Bolder", "wrap": true, "text": format!("mxaudit: {}", summary.line())}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    let events = ordered(&batch.events);
    for e in events.iter().take(max_findings) {
        body.push(finding(e));
    }
    if events.len() > max_findings {
        body.push(json!({"type": "TextBlock", "wrap": true, "isSubtle": true,
            "text": format!("… and {} more finding(s) in this run.", events.len() - max_findings)}));
    }
    if events.is_empty() {
        body.push(json!({"type": "TextBlock", "wrap": true, "text": "No changes."}));
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            }
        }]
    })
}

fn run(text: &str) -> Value {
    json!({"type": "TextRun", "text": escape_text(text)})
}

fn finding(e: &Event) -> Value {
    let f = &e.finding;
    let style = match e.change {
        Some(crate::sink::Change::New) => "attention",
        Some(crate::sink::Change::Resolved) => "good",
        Some(crate::sink::Change::Ongoing) | None => "default",
    };
    let mut items = vec![
        json!({"type": "RichTextBlock", "inlines": [
            {"type": "TextRun", "text": change_label(e.change).to_uppercase(), "weight": "Bolder"},
            {"type": "TextRun", "text": format!(" · {} · ", f.severity.as_str().to_uppercase()), "weight": "Bolder"},
            {"type": "TextRun", "text": escape_text(&f.code), "fontType": "Monospace"},
            run(&format!(" · {}", super::about(f))),
        ]}),
        json!({"type": "RichTextBlock", "inlines": [{"type": "TextRun", "text": escape_text(&f.title), "weight": "Bolder"}]}),
    ];
    for line in f.evidence.iter().take(EVIDENCE_LINES) {
        items.push(json!({"type": "RichTextBlock", "inlines": [
            {"type": "TextRun", "text": escape_text(&truncate(line, EVIDENCE_CHARS)), "fontType": "Monospace", "size": "Small"}
        ]}));
    }
    if f.evidence.len() > EVIDENCE_LINES {
        items.push(json!({"type": "RichTextBlock", "inlines": [run(&format!("… {} more evidence line(s)", f.evidence.len() - EVIDENCE_LINES))]}));
    }
    json!({"type": "Container", "style": style, "separator": true, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::fixtures::batch;

    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
            Value::Object(o) => o.values().for_each(|x| strings(x, out)),
            _ => {}
        }
    }

    #[test]
    fn hostile_text_is_inert_and_only_in_text_runs() {
        let v = render(&batch(), 10);
        let mut all = Vec::new();
        strings(&v, &mut all);
        let text = all.join("\n");
        for bad in [
            "[x](http://evil)",
            "<http://evil|click>",
            "</script>",
            "<!channel>",
            "<at>",
            "\u{1b}",
            "\u{202e}",
        ] {
            assert!(!text.contains(bad), "{bad:?} in {text}");
        }
        // No TextBlock carries finding text.
        let body = &v["attachments"][0]["content"]["body"];
        for block in body.as_array().expect("body") {
            if block["type"] == "TextBlock" {
                assert!(
                    !block["text"].as_str().unwrap_or_default().contains("evil"),
                    "{block}"
                );
            }
        }
        assert_eq!(v["attachments"][0]["content"]["type"], "AdaptiveCard");
    }

    #[test]
    fn escape_breaks_links_and_tags() {
        assert_eq!(escape_text("[x](y)"), "[x]\u{200b}(y)");
        assert_eq!(escape_text("<at>"), "<\u{200b}at>");
    }
}
