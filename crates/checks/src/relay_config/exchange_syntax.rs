//! Reading Exchange Management Shell output: `Format-List` (the default view
//! of `Get-ReceiveConnector | fl`, `Get-ADPermission | fl`,
//! `Get-RecipientFilterConfig`), `Format-Table` (the default view of
//! `Get-ADPermission`: Identity, User, Deny, Inherited, Rights) and
//! `ConvertTo-Json` (Windows PowerShell 5.1: enums as numbers, arrays
//! sometimes wrapped as `{"value": [...], "Count": n}`).
//!
//! Every record keeps the `file:line` of each property so that findings and
//! unreadable values point at the line in the export.

use serde_json::Value;

use super::Input;
use super::postfix_syntax::Loc;

/// How a record was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `Format-List`.
    List,
    /// `Format-Table`.
    Table,
    /// `ConvertTo-Json`.
    Json,
}

/// A property value.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    /// Text of Format-List or Format-Table (continuation lines joined).
    Text(String),
    /// A JSON value.
    Json(Value),
}

/// One object of the export.
#[derive(Debug, Clone)]
pub struct Record {
    /// Where it starts.
    pub loc: Loc,
    /// How it was written.
    pub form: Form,
    /// `(property, value, where)`, in order.
    pub fields: Vec<(String, Raw, Loc)>,
}

impl Record {
    /// A property, case-insensitively.
    pub fn get(&self, name: &str) -> Option<(&Raw, &Loc)> {
        self.fields
            .iter()
            .find(|(k, _, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v, l)| (v, l))
    }
    /// Whether a property is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// A part of an export that could not be read.
#[derive(Debug, Clone)]
pub struct Garbled {
    /// Where.
    pub loc: Loc,
    /// What (shortened).
    pub text: String,
    /// `syntax`, `truncated`.
    pub why: &'static str,
}

/// Records and unreadable parts of all inputs.
#[derive(Debug, Clone, Default)]
pub struct ExchangeFiles {
    /// Objects in input order.
    pub records: Vec<Record>,
    /// What could not be read.
    pub garbled: Vec<Garbled>,
}

const SHOW: usize = 160;

fn shorten(s: &str) -> String {
    if s.chars().count() <= SHOW {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(SHOW).collect();
        t.push('…');
        t
    }
}

/// Reads every input as Exchange Management Shell output.
pub fn parse(inputs: &[Input]) -> ExchangeFiles {
    let mut out = ExchangeFiles::default();
    for input in inputs {
        let t = input.text.trim_start_matches('\u{feff}');
        let first = t.trim_start().chars().next();
        if matches!(first, Some('[' | '{')) {
            parse_json(input, t, &mut out);
        } else {
            parse_text(input, t, &mut out);
        }
    }
    out
}

fn loc(input: &Input, line: usize) -> Loc {
    Loc {
        file: input.name.clone(),
        line,
    }
}

// ---------------------------------------------------------------------------
// Format-List and Format-Table

/// A `Name : value` line of Format-List: the name starts at column 0.
fn list_line(line: &str) -> Option<(&str, &str)> {
    if line.starts_with(char::is_whitespace) {
        return None;
    }
    let (name, value) = line.split_once(':')?;
    let name = name.trim_end();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    ok.then(|| (name, value.strip_prefix(' ').unwrap_or(value)))
}

/// A Format-Table ruler (`----  ----- ---`): the start and end of each column.
fn ruler(line: &str) -> Option<Vec<(usize, usize)>> {
    let t = line.trim_end();
    if t.is_empty() || !t.chars().all(|c| c == '-' || c == ' ') || !t.contains('-') {
        return None;
    }
    let mut cols = Vec::new();
    let mut start = None;
    for (i, c) in t.char_indices() {
        match (c, start) {
            ('-', None) => start = Some(i),
            (' ', Some(s)) => {
                cols.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        cols.push((s, t.len()));
    }
    Some(cols)
}

/// The text of a column of a Format-Table row (the last column runs to the end).
fn cell(row: &str, cols: &[(usize, usize)], i: usize) -> String {
    let chars: Vec<char> = row.chars().collect();
    let start = cols[i].0.min(chars.len());
    let end = if i + 1 == cols.len() {
        chars.len()
    } else {
        cols[i + 1].0.min(chars.len())
    };
    chars[start..end.max(start)]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

fn parse_text(input: &Input, text: &str, out: &mut ExchangeFiles) {
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    let mut i = 0;
    let mut current: Option<Record> = None;
    let flush = |current: &mut Option<Record>, out: &mut ExchangeFiles| {
        if let Some(r) = current.take()
            && !r.fields.is_empty()
        {
            out.records.push(r);
        }
    };
    while i < lines.len() {
        let line = lines[i];
        // Format-Table: a header line followed by a ruler.
        if let Some(cols) = lines.get(i + 1).and_then(|next| ruler(next))
            && !line.trim().is_empty()
            && list_line(line).is_none()
        {
            flush(&mut current, out);
            let headers: Vec<String> = (0..cols.len()).map(|c| cell(line, &cols, c)).collect();
            i += 2;
            while i < lines.len() && !lines[i].trim().is_empty() {
                let row = lines[i];
                let cells: Vec<String> = (0..cols.len()).map(|c| cell(row, &cols, c)).collect();
                // `-Wrap`: a row whose first cells are empty continues the one before.
                let continues = cells.first().is_some_and(String::is_empty)
                    && cells.get(1).is_none_or(String::is_empty);
                if continues && let Some(prev) = out.records.last_mut() {
                    for (h, c) in headers.iter().zip(&cells) {
                        if c.is_empty() {
                            continue;
                        }
                        if let Some((_, Raw::Text(v), _)) =
                            prev.fields.iter_mut().find(|(k, _, _)| k == h)
                        {
                            v.push(' ');
                            v.push_str(c);
                        }
                    }
                } else {
                    let at = loc(input, i + 1);
                    out.records.push(Record {
                        loc: at.clone(),
                        form: Form::Table,
                        fields: headers
                            .iter()
                            .zip(cells)
                            .map(|(h, c)| (h.clone(), Raw::Text(c), at.clone()))
                            .collect(),
                    });
                }
                i += 1;
            }
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut current, out);
            i += 1;
            continue;
        }
        if let Some((name, value)) = list_line(line) {
            let at = loc(input, i + 1);
            let rec = current.get_or_insert_with(|| Record {
                loc: at.clone(),
                form: Form::List,
                fields: Vec::new(),
            });
            rec.fields
                .push((name.to_owned(), Raw::Text(value.trim().to_owned()), at));
        } else if line.starts_with(char::is_whitespace)
            && let Some(rec) = current.as_mut()
            && let Some((_, Raw::Text(v), _)) = rec.fields.last_mut()
        {
            // A long value wrapped at the console width.
            v.push(' ');
            v.push_str(line.trim());
        } else {
            out.garbled.push(Garbled {
                loc: loc(input, i + 1),
                text: shorten(line.trim()),
                why: "syntax",
            });
        }
        i += 1;
    }
    flush(&mut current, out);
}

// ---------------------------------------------------------------------------
// ConvertTo-Json

/// The byte spans of the top-level objects (the elements of a top-level
/// array, or the one object), with their first lines; `complete` is false for
/// an object the text ends inside (a truncated export).
fn object_spans(text: &str) -> Vec<(usize, usize, usize, bool)> {
    let mut spans = Vec::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut line = 1usize;
    let mut start: Option<(usize, usize)> = None;
    let array = text.trim_start().starts_with('[');
    let element_depth = usize::from(array);
    for (i, c) in text.char_indices() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                if c == '{' && depth == element_depth {
                    start = Some((i, line));
                }
                depth += 1;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if c == '}'
                    && depth == element_depth
                    && let Some((s, l)) = start.take()
                {
                    spans.push((s, i + 1, l, true));
                }
            }
            _ => {}
        }
    }
    if let Some((s, l)) = start {
        spans.push((s, text.len(), l, false));
    }
    spans
}

fn parse_json(input: &Input, text: &str, out: &mut ExchangeFiles) {
    let spans = object_spans(text);
    if spans.is_empty() {
        out.garbled.push(Garbled {
            loc: loc(input, 1),
            text: shorten(text.trim()),
            why: "syntax",
        });
        return;
    }
    for (start, end, line, complete) in spans {
        let slice = &text[start..end];
        if !complete {
            out.garbled.push(Garbled {
                loc: loc(input, line),
                text: shorten(slice.lines().next().unwrap_or("")),
                why: "truncated",
            });
            continue;
        }
        let value: Value = match serde_json::from_str(slice) {
            Ok(v) => v,
            Err(e) => {
                out.garbled.push(Garbled {
                    loc: loc(input, line + e.line().saturating_sub(1)),
                    text: shorten(&e.to_string()),
                    why: "syntax",
                });
                continue;
            }
        };
        let Value::Object(map) = value else {
            continue;
        };
        let fields = map
            .into_iter()
            .map(|(k, v)| {
                // The line of the property: where its quoted name first appears.
                let needle = format!("\"{k}\"");
                let at = slice
                    .find(&needle)
                    .map_or(line, |p| line + slice[..p].matches('\n').count());
                (k, Raw::Json(v), loc(input, at))
            })
            .collect();
        out.records.push(Record {
            loc: loc(input, line),
            form: Form::Json,
            fields,
        });
    }
}

// ---------------------------------------------------------------------------
// Values

/// A value could not be read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreadable {
    /// Cut short by PowerShell (`…` or `...`: `$FormatEnumerationLimit`, column width).
    Truncated,
    /// Not in a known shape.
    Shape,
}

/// `Windows PowerShell` wraps some arrays: `{"value": [...], "Count": n}`.
fn unwrap_json(v: &Value) -> &Value {
    if let Value::Object(m) = v
        && let Some(inner) = m.get("value")
        && (inner.is_array() || m.contains_key("Count"))
    {
        return inner;
    }
    v
}

fn truncated(s: &str) -> bool {
    let t = s.trim_end().trim_end_matches('}').trim_end();
    t.ends_with("...") || t.ends_with('…')
}

/// The text of a scalar: strings as they are, numbers and booleans printed,
/// identity objects by their name.
pub fn text(raw: &Raw) -> Result<String, Unreadable> {
    match raw {
        Raw::Text(s) if truncated(s) => Err(Unreadable::Truncated),
        Raw::Text(s) => Ok(s.trim().to_owned()),
        Raw::Json(v) => json_text(unwrap_json(v)).ok_or(Unreadable::Shape),
    }
}

fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        Value::Object(m) => {
            for key in [
                "Expression",
                "RawIdentity",
                "DistinguishedName",
                "Name",
                "FriendlyName",
                "DisplayName",
                "Value",
            ] {
                if let Some(Value::String(s)) = m.get(key) {
                    return Some(s.clone());
                }
            }
            // An IPRange beyond ConvertTo-Json's depth keeps its bounds.
            match (m.get("LowerBound"), m.get("UpperBound")) {
                (Some(lo), Some(hi)) => Some(format!("{}-{}", json_text(lo)?, json_text(hi)?)),
                _ => None,
            }
        }
        Value::Null | Value::Array(_) => None,
    }
}

/// A multi-valued property: `{a, b}` (Format-List), `a, b`, a JSON array.
pub fn list(raw: &Raw) -> Result<Vec<String>, Unreadable> {
    match raw {
        Raw::Text(s) => {
            if truncated(s) {
                return Err(Unreadable::Truncated);
            }
            let t = s.trim();
            let t = t
                .strip_prefix('{')
                .and_then(|x| x.strip_suffix('}'))
                .unwrap_or(t);
            Ok(t.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect())
        }
        Raw::Json(v) => match unwrap_json(v) {
            Value::Array(items) => items
                .iter()
                .map(|i| json_text(unwrap_json(i)).ok_or(Unreadable::Shape))
                .collect(),
            Value::Null => Ok(Vec::new()),
            Value::String(s) => list(&Raw::Text(s.clone())),
            other => json_text(other).map(|s| vec![s]).ok_or(Unreadable::Shape),
        },
    }
}

/// A `[Flags]` enum property: names (`Tls, BasicAuth`) or the number JSON
/// gives, decoded with `names` (bit value, name).
pub fn flags(raw: &Raw, names: &[(u64, &str)]) -> Result<Vec<String>, Unreadable> {
    let number = match raw {
        Raw::Json(v) => unwrap_json(v).as_u64(),
        Raw::Text(s) => s.trim().parse::<u64>().ok(),
    };
    if let Some(n) = number {
        let known: u64 = names.iter().map(|(b, _)| b).sum();
        if n & !known != 0 {
            return Err(Unreadable::Shape);
        }
        return Ok(names
            .iter()
            .filter(|(b, _)| n & b != 0)
            .map(|(_, name)| (*name).to_owned())
            .collect());
    }
    let items = list(raw)?;
    let mut out = Vec::new();
    for item in items {
        match names.iter().find(|(_, n)| n.eq_ignore_ascii_case(&item)) {
            Some((_, n)) => out.push((*n).to_owned()),
            None if item.eq_ignore_ascii_case("None") => {}
            None => return Err(Unreadable::Shape),
        }
    }
    Ok(out)
}

/// `True`/`False`, `$true`, JSON booleans.
pub fn boolean(raw: &Raw) -> Result<bool, Unreadable> {
    match raw {
        Raw::Json(Value::Bool(b)) => Ok(*b),
        _ => match text(raw)?
            .trim_start_matches('$')
            .to_ascii_lowercase()
            .as_str()
        {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Unreadable::Shape),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Input {
        Input {
            name: "x.txt".to_owned(),
            text: text.to_owned(),
        }
    }

    #[test]
    fn format_list_records_and_wrapping() {
        let f = parse(&[input(
            "\nAuthMechanism : Tls, Integrated\nRemoteIPRanges : {::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff, 0.0.0.0-255.\n                 255.255.255}\nName          : A\n\nName : B\n",
        )]);
        assert!(f.garbled.is_empty(), "{:?}", f.garbled);
        assert_eq!(f.records.len(), 2);
        let (raw, at) = f.records[0].get("remoteipranges").expect("field");
        assert_eq!(at.line, 3);
        let items = list(raw).expect("list");
        assert_eq!(items[1].replace(' ', ""), "0.0.0.0-255.255.255.255");
        assert_eq!(
            list(&Raw::Text("{a, b, c, d...}".into())),
            Err(Unreadable::Truncated)
        );
    }

    #[test]
    fn format_table_columns() {
        let f = parse(&[input(
            "\nIdentity             User                 Deny  Inherited Rights\n--------             ----                 ----  --------- ------\nEX01\\Anonymous Relay NT AUTHORITY\\ANON... False False     ms-Exch-SMTP-Accept-Any-Recipient\n",
        )]);
        assert_eq!(f.records.len(), 1);
        let r = &f.records[0];
        assert_eq!(r.form, Form::Table);
        assert_eq!(
            text(r.get("Identity").expect("id").0).as_deref(),
            Ok("EX01\\Anonymous Relay")
        );
        assert_eq!(
            text(r.get("User").expect("user").0),
            Err(Unreadable::Truncated)
        );
        assert_eq!(r.get("Rights").expect("rights").1.line, 4);
    }

    #[test]
    fn json_objects_lines_and_truncation() {
        let f = parse(&[input(
            "[\n  {\n    \"Name\": \"A\",\n    \"AuthMechanism\": 5,\n    \"RemoteIPRanges\": {\"value\": [{\"Expression\": \"10.0.0.0/8\"}], \"Count\": 1}\n  },\n  {\n    \"Name\": \"B\",\n    \"Enab",
        )]);
        assert_eq!(f.records.len(), 1);
        assert_eq!(f.garbled.len(), 1);
        assert_eq!(f.garbled[0].why, "truncated");
        assert_eq!(f.garbled[0].loc.line, 7);
        let r = &f.records[0];
        assert_eq!(r.get("AuthMechanism").expect("f").1.line, 4);
        let names = [(1, "Tls"), (2, "Integrated"), (4, "BasicAuth")];
        assert_eq!(
            flags(r.get("AuthMechanism").expect("f").0, &names),
            Ok(vec!["Tls".to_owned(), "BasicAuth".to_owned()])
        );
        assert_eq!(
            list(r.get("RemoteIPRanges").expect("f").0),
            Ok(vec!["10.0.0.0/8".to_owned()])
        );
    }
}
