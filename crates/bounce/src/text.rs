//! Layer 3: the report in words. Bounces without RFC 3464 fields (qmail, Exim,
//! old Exchange, Yahoo, Google, Domino, Japanese carriers …) and the text beside
//! a DSN are read with the patterns of `patterns.toml`: which MTA wrote it,
//! whether it is a bounce, a warning or an auto-reply, where the returned message
//! starts, and the lines that name failed recipients. Codes, the diagnostic and
//! the reason of each recipient are then looked for in the lines that mention it.

use crate::mime::Document;
use crate::reply::{SmtpReply, enhanced_codes, replies_in_text};
use crate::rules::{Matcher, Rules, SignalKind, ValueName};
use crate::{Origin, address};

/// Lines of report text read at most.
const MAX_REPORT_LINES: usize = 3_000;
/// Lines after a mention of a recipient that belong to it.
const SEGMENT_LINES: usize = 15;
/// Recipients read from text at most.
const MAX_RECIPIENTS: usize = 200;

/// One line of report text.
#[derive(Debug, Clone)]
pub(crate) struct Line {
    pub part: usize,
    /// 1-based line number in its part.
    pub no: usize,
    pub text: String,
}

impl Line {
    fn origin(&self, rule: Option<&str>) -> Origin {
        Origin::Line {
            part: self.part,
            line: self.no,
            rule: rule.map(str::to_owned),
        }
    }
}

/// A recipient found in the text.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub address: String,
    pub origin: Origin,
    /// Index of the line that named it (None: from a header).
    pub anchor: Option<usize>,
}

/// What the words of a message say.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextReading {
    pub lines: Vec<Line>,
    pub mta: Option<(String, String, Origin)>,
    pub bounce: Option<Origin>,
    pub auto_reply: Option<Origin>,
    pub delayed: Option<Origin>,
    pub recipients: Vec<Found>,
    pub reporting_mta: Option<(String, Origin)>,
    pub summary: Option<(String, Origin)>,
    pub original_headers: Option<String>,
    pub subject: Option<String>,
}

/// Facts about one recipient found in its lines.
#[derive(Debug, Clone, Default)]
pub(crate) struct Evidence {
    pub reply: Option<(u16, Origin)>,
    pub status: Option<(String, Origin)>,
    pub diagnostic: Option<(String, Origin)>,
    pub remote_mta: Option<(String, Origin)>,
    pub reason: Option<(String, Origin)>,
}

fn header_lines(doc: &Document) -> Vec<String> {
    doc.headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

/// The first part of a message a matcher matches, as an origin.
fn matcher_hit(m: &Matcher, doc: &Document, headers: &[String], lines: &[Line]) -> Option<Origin> {
    if let Some(from) = doc.header("from")
        && m.from.iter().any(|re| re.is_match(from))
    {
        return Some(Origin::Header {
            name: "From".into(),
        });
    }
    if let Some(subject) = doc.header("subject")
        && m.subject.iter().any(|re| re.is_match(subject))
    {
        return Some(Origin::Header {
            name: "Subject".into(),
        });
    }
    for h in headers {
        if m.headers.iter().any(|re| re.is_match(h)) {
            let name = h.split(':').next().unwrap_or_default();
            return Some(Origin::Header {
                name: crate::dsn_field_name(name),
            });
        }
    }
    if !m.body.is_empty() {
        for l in lines {
            if m.body.iter().any(|re| re.is_match(&l.text)) {
                return Some(l.origin(None));
            }
        }
    }
    None
}

/// Reads the words of a document.
pub(crate) fn read(doc: &Document, rules: &Rules) -> TextReading {
    let mut reading = TextReading {
        subject: doc.header("subject").map(str::to_owned),
        ..TextReading::default()
    };
    let headers = header_lines(doc);
    let ends: Vec<&Matcher> = rules
        .signals
        .iter()
        .filter(|s| s.kind == SignalKind::End)
        .map(|s| &s.matcher)
        .collect();
    let early: Vec<_> = doc.texts.iter().filter(|t| !t.late).collect();
    let parts = if early.is_empty() {
        doc.texts.iter().collect()
    } else {
        early
    };
    let mut after_end: Vec<String> = Vec::new();
    'parts: for t in parts {
        for (i, l) in t.lines.iter().enumerate() {
            if reading.lines.len() >= MAX_REPORT_LINES {
                break 'parts;
            }
            if ends.iter().any(|m| m.body.iter().any(|re| re.is_match(l))) {
                after_end.extend(t.lines[i + 1..].iter().take(2000).cloned());
                continue 'parts;
            }
            reading.lines.push(Line {
                part: t.part,
                no: i + 1,
                text: l.trim_end().to_owned(),
            });
        }
    }
    // A returned message pasted below the report: its headers, when no part gave them.
    if doc.original_headers.is_none()
        && let Some(start) = after_end.iter().position(|l| {
            let lower = l.trim_start_matches('>').trim_start().to_ascii_lowercase();
            [
                "received:",
                "received-spf:",
                "return-path:",
                "from:",
                "message-id:",
            ]
            .iter()
            .any(|h| lower.starts_with(h))
        })
    {
        let block: Vec<String> = after_end[start..]
            .iter()
            .take_while(|l| !l.trim().is_empty())
            .map(|l| l.trim_start_matches('>').trim_start().to_owned())
            .take(200)
            .collect();
        reading.original_headers = Some(block.join("\n"));
    }

    for m in &rules.mtas {
        if let Some(o) = matcher_hit(&m.matcher, doc, &headers, &reading.lines) {
            reading.mta = Some((m.id.clone(), m.name.clone(), o));
            break;
        }
    }
    for s in &rules.signals {
        let slot = match s.kind {
            SignalKind::Bounce => &mut reading.bounce,
            SignalKind::AutoReply => &mut reading.auto_reply,
            SignalKind::Delayed => &mut reading.delayed,
            SignalKind::End | SignalKind::NotRecipient => continue,
        };
        if slot.is_none() {
            *slot = matcher_hit(&s.matcher, doc, &headers, &reading.lines);
        }
    }
    if reading.bounce.is_none() && doc.header("x-failed-recipients").is_some() {
        reading.bounce = Some(Origin::Header {
            name: "X-Failed-Recipients".into(),
        });
    }
    for v in &rules.values {
        if v.name != ValueName::ReportingMta || reading.reporting_mta.is_some() {
            continue;
        }
        for l in &reading.lines {
            if let Some(c) = v.pattern.captures(&l.text)
                && let Some(m) = c.name("value")
            {
                let value = m.as_str().trim().trim_end_matches('.');
                if !value.is_empty() {
                    reading.reporting_mta =
                        Some((value.chars().take(255).collect(), l.origin(None)));
                    break;
                }
            }
        }
    }
    reading.summary = summary(&reading.lines);
    reading.recipients = recipients(doc, rules, &reading);
    reading
}

fn summary(lines: &[Line]) -> Option<(String, Origin)> {
    let mut para: Vec<&Line> = Vec::new();
    for l in lines {
        let t = l.text.trim();
        if t.is_empty() {
            if para.iter().any(|p| p.text.trim().len() > 20) {
                break;
            }
            para.clear();
            continue;
        }
        if t.chars().all(|c| !c.is_alphanumeric()) {
            continue;
        }
        para.push(l);
        if para.len() >= 6 {
            break;
        }
    }
    let first = para.first()?;
    let text: String = para
        .iter()
        .map(|l| l.text.trim())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(600)
        .collect();
    (text.len() > 20).then(|| (text, first.origin(None)))
}

/// Addresses that are not failed recipients: the bounce's own sender and
/// recipient (the original sender), the returned message's envelope sender.
/// Not the returned message's From: spam often forges it to the recipient.
fn senders(doc: &Document, original_headers: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for name in [
        "to",
        "from",
        "reply-to",
        "sender",
        "return-path",
        "x-postfix-sender",
    ] {
        for v in doc.headers_named(name) {
            out.extend(address::find_all(v).into_iter().map(|(_, _, a)| a));
        }
    }
    if let Some(h) = original_headers.or(doc.original_headers.as_deref()) {
        let f = crate::dsn::fields(h);
        for (n, v) in f {
            if n == "return-path" {
                out.extend(address::find_all(&v).into_iter().map(|(_, _, a)| a));
            }
        }
    }
    out.iter().map(|a| a.to_ascii_lowercase()).collect()
}

/// Whether the line's first word is an address (a line of a recipient list).
fn address_led(line: &str) -> Option<String> {
    let t = line
        .trim()
        .trim_start_matches(['>', '*', '-', '\u{2022}', '\'', '"', '#', ' ', '\t'])
        .trim_start();
    let word = t.split([' ', '\t', ':', ',', ';']).next()?;
    let word = word.trim_end_matches(['.', ':']);
    if word.is_empty() || !word.contains('@') {
        // `<a@b>` in the first word, or `Recipient: [SMTP:a@b]`.
        return None;
    }
    address::clean(word, true)
}

fn recipients(doc: &Document, rules: &Rules, reading: &TextReading) -> Vec<Found> {
    let lines = &reading.lines;
    let not_sender = senders(doc, reading.original_headers.as_deref());
    let mta = reading.mta.as_ref().map(|(id, _, _)| id.as_str());
    // Lines whose addresses are not recipients, and addresses that never are.
    let mut excluded_lines = vec![false; lines.len()];
    let mut excluded: Vec<String> = not_sender;
    for s in rules
        .signals
        .iter()
        .filter(|s| s.kind == SignalKind::NotRecipient)
    {
        for (i, l) in lines.iter().enumerate() {
            for re in &s.matcher.body {
                if let Some(c) = re.captures(&l.text) {
                    match c
                        .name("address")
                        .and_then(|m| address::clean(m.as_str(), true))
                    {
                        Some(a) => excluded.push(a.to_ascii_lowercase()),
                        None => excluded_lines[i] = true,
                    }
                }
            }
        }
    }
    let is_excluded = |a: &str| excluded.iter().any(|e| e.eq_ignore_ascii_case(a));
    let mut found: Vec<Found> = Vec::new();
    let add = |found: &mut Vec<Found>, a: String, origin: Origin, anchor: Option<usize>| {
        if found.len() < MAX_RECIPIENTS && !found.iter().any(|f| f.address.eq_ignore_ascii_case(&a))
        {
            found.push(Found {
                address: a,
                origin,
                anchor,
            });
        }
    };
    // Exim names the failed recipients in a header.
    for v in doc.headers_named("x-failed-recipients") {
        for (_, _, a) in address::find_all(v) {
            add(
                &mut found,
                a,
                Origin::Header {
                    name: "X-Failed-Recipients".into(),
                },
                None,
            );
        }
    }
    let applies = |rule_mta: &Option<String>| rule_mta.as_deref().is_none_or(|m| Some(m) == mta);
    let mut from_lines: Vec<(usize, String, Origin)> = Vec::new();
    for rule in rules.recipients.iter().filter(|r| applies(&r.mta)) {
        if let Some(re) = &rule.pattern {
            for (i, l) in lines.iter().enumerate() {
                if excluded_lines[i] {
                    continue;
                }
                for c in re.captures_iter(&l.text).take(20) {
                    if let Some(a) = c
                        .name("recipient")
                        .and_then(|m| address::clean(m.as_str(), true))
                        && !is_excluded(&a)
                    {
                        from_lines.push((i, a, l.origin(Some(&rule.id))));
                    }
                }
            }
        }
        if let Some(re) = &rule.follows {
            for (i, l) in lines.iter().enumerate() {
                if !re.is_match(&l.text) {
                    continue;
                }
                let mut seen_any = false;
                for (j, next) in lines.iter().enumerate().skip(i + 1).take(40) {
                    let t = next.text.trim();
                    if seen_any
                        && (t.starts_with("---") || t.starts_with("===") || t.starts_with("***"))
                    {
                        break;
                    }
                    if rules
                        .recipients
                        .iter()
                        .any(|r| r.follows.as_ref().is_some_and(|f| f.is_match(t)))
                        && j != i
                    {
                        break;
                    }
                    if excluded_lines[j] {
                        continue;
                    }
                    if let Some(a) = address_led(t)
                        && !is_excluded(&a)
                    {
                        seen_any = true;
                        from_lines.push((j, a, next.origin(Some(&rule.id))));
                    }
                }
            }
        }
    }
    if found.is_empty() && from_lines.is_empty() {
        // No line says "these recipients failed": the address-led lines, then any address.
        for (i, l) in lines.iter().enumerate() {
            if excluded_lines[i] {
                continue;
            }
            if let Some(a) = address_led(&l.text)
                && !is_excluded(&a)
            {
                from_lines.push((i, a, l.origin(Some("address-line"))));
            }
        }
        if from_lines.is_empty() {
            for (i, l) in lines.iter().enumerate() {
                if excluded_lines[i] {
                    continue;
                }
                for (_, _, a) in address::find_all(&l.text) {
                    if !is_excluded(&a) {
                        from_lines.push((i, a, l.origin(Some("any-address"))));
                    }
                }
            }
        }
    }
    from_lines.sort_by_key(|(i, _, _)| *i);
    // Recipients named in a header come first, with their first line as anchor.
    for f in &mut found {
        f.anchor = from_lines
            .iter()
            .find(|(_, a, _)| a.eq_ignore_ascii_case(&f.address))
            .map(|(i, _, _)| *i);
    }
    let header_named = !found.is_empty();
    for (i, a, o) in from_lines {
        // With X-Failed-Recipients, the header is the list (RFC 3461 style
        // generators put only failed addresses there); text adds none.
        if !header_named {
            add(&mut found, a, o, Some(i));
        }
    }
    found
}

/// Joined lines with a map back to line indexes.
struct Segment {
    text: String,
    /// (byte offset in `text`, line index)
    starts: Vec<(usize, usize)>,
}

impl Segment {
    fn new(lines: &[Line], range: std::ops::Range<usize>) -> Segment {
        let mut text = String::new();
        let mut starts = Vec::new();
        for i in range {
            let Some(l) = lines.get(i) else { break };
            if !text.is_empty() {
                text.push('\n');
            }
            starts.push((text.len(), i));
            text.push_str(l.text.trim());
        }
        Segment { text, starts }
    }

    fn line_at(&self, offset: usize) -> Option<usize> {
        self.starts
            .iter()
            .rev()
            .find(|(o, _)| *o <= offset)
            .map(|(_, i)| *i)
    }
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The diagnostic text from a reply: to the end of its paragraph, without the
/// wrapping of Exchange (`'…'`, `#<… #5.7.1 smtp;530 …> #SMTP#`).
fn diagnostic_from(seg: &Segment, reply: &SmtpReply) -> String {
    let rest = &seg.text[reply.start..];
    let para = rest.split("\n\n").next().unwrap_or(rest);
    let before = seg.text[..reply.start].trim_end();
    let mut d = collapse(para);
    if before.ends_with('\'') || before.ends_with('"') {
        let q = if before.ends_with('\'') { '\'' } else { '"' };
        if let Some(p) = d.find(q) {
            d.truncate(p);
        }
    }
    if before.to_ascii_lowercase().ends_with("smtp;")
        && let Some(p) = d.find('>')
    {
        d.truncate(p);
    }
    for tail in ["#SMTP#", "> #", "##"] {
        if let Some(p) = d.find(tail) {
            d.truncate(p);
        }
    }
    let d = d.trim().trim_end_matches(['>', '#', '\'', '"']).trim();
    d.chars().take(500).collect()
}

/// The paragraph that names the recipient, without the address.
fn diagnostic_near(lines: &[Line], anchor: usize, address: &str) -> Option<(String, Origin)> {
    let mut collected: Vec<String> = Vec::new();
    let mut origin = None;
    let mut i = anchor;
    let mut blank_seen = false;
    while i < lines.len() && i < anchor + 8 {
        let t = lines[i].text.trim();
        if t.is_empty() {
            if !collected.is_empty() {
                break;
            }
            if blank_seen {
                break;
            }
            blank_seen = true;
            i += 1;
            continue;
        }
        let stripped = if i == anchor {
            let lower = t.to_ascii_lowercase();
            match lower.find(&address.to_ascii_lowercase()) {
                Some(p) => t[p + address.len()..]
                    .trim_start_matches(['>', ']', ':', '\'', '"', ')', ' '])
                    .to_owned(),
                None => String::new(),
            }
        } else {
            t.to_owned()
        };
        let stripped = stripped.trim();
        if !stripped.is_empty() && address_led(stripped).is_none() {
            if origin.is_none() {
                origin = Some(lines[i].origin(None));
            }
            collected.push(stripped.to_owned());
        } else if i != anchor && address_led(t).is_some() && !collected.is_empty() {
            break;
        }
        i += 1;
    }
    let text: String = collapse(&collected.join(" ")).chars().take(500).collect();
    Some((text, origin?)).filter(|(t, _)| t.len() > 3)
}

/// Finds a reason pattern in a text; the first reason (in table order) wins.
pub(crate) fn reason_in(rules: &Rules, text: &str) -> Option<(String, usize)> {
    for r in &rules.reasons {
        for re in &r.text {
            if let Some(m) = re.find(text) {
                return Some((r.id.clone(), m.start()));
            }
        }
    }
    None
}

/// Whether the reason `id` is named in the report text (the lines that
/// mention `address`, or all of it for the only recipient).
pub(crate) fn says(
    reading: &TextReading,
    rules: &Rules,
    id: &str,
    address: Option<&str>,
    only_recipient: bool,
) -> Option<Origin> {
    let reason = rules.reason(id)?;
    let lines = &reading.lines;
    for (i, l) in lines.iter().enumerate() {
        let mentions = address.is_some_and(|a| {
            l.text
                .to_ascii_lowercase()
                .contains(&a.to_ascii_lowercase())
        });
        if !only_recipient && !mentions {
            continue;
        }
        let end = if only_recipient {
            i + 1
        } else {
            (i + SEGMENT_LINES).min(lines.len())
        };
        let seg = Segment::new(lines, i..end);
        if reason.text.iter().any(|re| re.is_match(&seg.text)) {
            let at = reason
                .text
                .iter()
                .find_map(|re| re.find(&seg.text))
                .map(|m| m.start())
                .unwrap_or(0);
            return seg
                .line_at(at)
                .and_then(|j| lines.get(j))
                .map(|l| l.origin(None));
        }
    }
    None
}

/// What the lines that mention `address` (or, for the only recipient, the whole
/// report) say about it.
pub(crate) fn evidence(
    reading: &TextReading,
    rules: &Rules,
    address: Option<&str>,
    only_recipient: bool,
) -> Evidence {
    let lines = &reading.lines;
    let mut ev = Evidence::default();
    let others: Vec<String> = reading
        .recipients
        .iter()
        .map(|f| f.address.to_ascii_lowercase())
        .filter(|a| Some(a.as_str()) != address.map(str::to_ascii_lowercase).as_deref())
        .collect();
    let mut segments: Vec<Segment> = Vec::new();
    let mut anchor = None;
    if let Some(addr) = address {
        let lower = addr.to_ascii_lowercase();
        let mentions: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.text.to_ascii_lowercase().contains(&lower))
            .map(|(i, _)| i)
            .take(50)
            .collect();
        anchor = mentions.first().copied();
        for m in mentions {
            let mut end = (m + SEGMENT_LINES).min(lines.len());
            for (j, l) in lines.iter().enumerate().take(end).skip(m + 1) {
                let t = l.text.to_ascii_lowercase();
                if others.iter().any(|o| t.contains(o.as_str())) {
                    end = j;
                    break;
                }
            }
            segments.push(Segment::new(lines, m..end));
        }
    }
    if only_recipient {
        segments.push(Segment::new(lines, 0..lines.len()));
    }
    // The reply: the first failure in the recipient's lines (in a transcript an
    // accepted RCPT's 250 is skipped and the later 4xx/5xx is the one).
    for seg in &segments {
        if let Some(r) = replies_in_text(&seg.text).into_iter().next() {
            let line = seg.line_at(r.start).unwrap_or(0);
            let origin = lines.get(line).map(|l| l.origin(None));
            if let Some(o) = origin {
                ev.reply = Some((r.code, o.clone()));
                if let Some(e) = &r.enhanced {
                    ev.status = Some((e.clone(), o.clone()));
                }
                let d = diagnostic_from(seg, &r);
                if !d.is_empty() {
                    ev.diagnostic = Some((d, o));
                }
            }
            break;
        }
    }
    if ev.status.is_none() {
        let class = ev.reply.as_ref().map(|(c, _)| (c / 100).to_string());
        'seg: for seg in &segments {
            for (code, at) in enhanced_codes(&seg.text) {
                if code.starts_with('2') || class.as_deref().is_some_and(|c| !code.starts_with(c)) {
                    continue;
                }
                if let Some(l) = seg.line_at(at).and_then(|i| lines.get(i)) {
                    ev.status = Some((code, l.origin(None)));
                    if ev.diagnostic.is_none() {
                        let para = seg.text[..].lines().find(|x| {
                            x.contains(ev.status.as_ref().map(|s| s.0.as_str()).unwrap_or_default())
                        });
                        if let Some(p) = para {
                            ev.diagnostic =
                                Some((collapse(p).chars().take(500).collect(), l.origin(None)));
                        }
                    }
                    break 'seg;
                }
            }
        }
    }
    if let (Some(a), Some(anchor)) = (address, anchor)
        && let Some(near) = diagnostic_near(lines, anchor, a)
    {
        // The words next to the address explain more than a bare code line.
        if ev.diagnostic.is_none() {
            ev.diagnostic = Some(near);
        }
    }
    for v in rules
        .values
        .iter()
        .filter(|v| v.name == ValueName::RemoteMta)
    {
        'remote: for seg in &segments {
            for (off, i) in &seg.starts {
                let _ = off;
                if let Some(c) = v.pattern.captures(&lines[*i].text)
                    && let Some(m) = c.name("value")
                {
                    let value = m.as_str().trim().trim_end_matches('.');
                    if !value.is_empty() && !value.contains('@') {
                        ev.remote_mta =
                            Some((value.chars().take(255).collect(), lines[*i].origin(None)));
                        break 'remote;
                    }
                }
            }
        }
        if ev.remote_mta.is_some() {
            break;
        }
    }
    // The reason: in the diagnostic, then in the recipient's lines.
    if let Some((d, o)) = &ev.diagnostic
        && let Some((id, _)) = reason_in(rules, d)
    {
        ev.reason = Some((id, o.clone()));
    }
    if ev.reason.is_none() {
        for seg in &segments {
            if let Some((id, at)) = reason_in(rules, &seg.text)
                && let Some(l) = seg.line_at(at).and_then(|i| lines.get(i))
            {
                ev.reason = Some((id, l.origin(None)));
                break;
            }
        }
    }
    // Several recipients with one explanation above them all (the preamble).
    if ev.reason.is_none() && !only_recipient {
        let first_anchor = reading
            .recipients
            .iter()
            .filter_map(|f| f.anchor)
            .min()
            .unwrap_or(0);
        let pre = Segment::new(lines, 0..first_anchor);
        let post_end = reading
            .recipients
            .iter()
            .filter_map(|f| f.anchor)
            .max()
            .map(|a| (a + SEGMENT_LINES).min(lines.len()))
            .unwrap_or(lines.len());
        let post = Segment::new(lines, post_end..lines.len());
        for seg in [pre, post] {
            if let Some((id, at)) = reason_in(rules, &seg.text)
                && let Some(l) = seg.line_at(at).and_then(|i| lines.get(i))
            {
                ev.reason = Some((id, l.origin(None)));
                break;
            }
        }
    }
    if ev.reason.is_none()
        && only_recipient
        && let Some(s) = &reading.subject
        && let Some((id, _)) = reason_in(rules, s)
    {
        ev.reason = Some((
            id,
            Origin::Header {
                name: "Subject".into(),
            },
        ));
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_led_lines() {
        assert_eq!(
            address_led("  <a@example.org>: x").as_deref(),
            Some("a@example.org")
        );
        assert_eq!(
            address_led("> bbb@example.com").as_deref(),
            Some("bbb@example.com")
        );
        assert_eq!(
            address_led("userx@example.EDU on Fri, 20 Jul 2001").as_deref(),
            Some("userx@example.EDU")
        );
        assert_eq!(address_led("Summary"), None);
        assert_eq!(address_led("(expanded from: <a@example.org>)"), None);
    }
}
