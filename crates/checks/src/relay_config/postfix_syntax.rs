//! Reading Postfix settings: `main.cf` and `postconf -n` (parameter lines),
//! `master.cf` and `postconf -M` (service entries with `-o` overrides),
//! `postconf -P` (`service/type/parameter = value`) and `postconf -F`
//! (`service/type/field = value`), in any mix and any number of files; and the
//! parameter expansion of postconf(5) ("$name", "${name?{a}:{b}}", relational
//! expressions such as the `<level` tests of the default values).

use std::collections::BTreeMap;
use std::fmt;

use super::Input;

/// Where a setting was read: `file:line`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Loc {
    /// The input's name as given (a path).
    pub file: String,
    /// 1-based line of the start of the logical line.
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A parameter value as written (not expanded) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The raw value.
    pub value: String,
    /// Where it was set.
    pub loc: Loc,
}

/// One master.cf service (from master.cf, `postconf -M`, `-F` or `-P`).
#[derive(Debug, Clone, Default)]
pub struct Service {
    /// `smtp`, `submission`, `127.0.0.1:10025`, …
    pub name: String,
    /// `inet`, `unix`, `pass`, …
    pub kind: String,
    /// The command (first word of the command field), when known.
    pub command: Option<String>,
    /// `-o name=value` overrides, last one wins.
    pub overrides: BTreeMap<String, Param>,
    /// Where the entry was defined, when seen.
    pub loc: Option<Loc>,
}

impl Service {
    /// `name/type`, as postconf names it.
    pub fn id(&self) -> String {
        format!("{}/{}", self.name, self.kind)
    }
}

/// A line the review could not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Where.
    pub loc: Loc,
    /// The text (shortened).
    pub text: String,
    /// Why, as a short fact.
    pub why: &'static str,
}

/// Everything read from the Postfix inputs.
#[derive(Debug, Clone, Default)]
pub struct PostfixFiles {
    /// main.cf parameters, last definition wins (postconf(5)).
    pub main: BTreeMap<String, Param>,
    /// Services, in order of first appearance.
    pub services: Vec<Service>,
    /// Whether any master.cf entry (not only `-P` lines) was seen.
    pub has_master: bool,
    /// Lines that are no Postfix setting.
    pub unreadable: Vec<Unreadable>,
}

/// master.cf service types (master(5)).
pub const MASTER_TYPES: &[&str] = &["inet", "unix", "unix-dgram", "fifo", "pass"];
const MASTER_FIELDS: &[&str] = &[
    "service",
    "type",
    "private",
    "unprivileged",
    "chroot",
    "wakeup",
    "process_limit",
    "command",
];
/// Longest text kept of an unreadable line.
const SHOW: usize = 160;

/// A logical line: continuation lines (leading whitespace) joined, comment and
/// blank lines skipped (postconf(5) "main.cf file format", master(5)).
fn logical_lines(text: &str) -> (Vec<(usize, String)>, Vec<usize>) {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut orphans = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match out.last_mut() {
                Some((_, l)) => {
                    l.push(' ');
                    l.push_str(trimmed.trim_end());
                }
                None => orphans.push(i + 1),
            }
            continue;
        }
        out.push((i + 1, line.trim_end().to_owned()));
    }
    (out, orphans)
}

fn shorten(s: &str) -> String {
    if s.chars().count() <= SHOW {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(SHOW).collect();
        t.push('…');
        t
    }
}

fn is_param_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl PostfixFiles {
    fn service_mut(&mut self, name: &str, kind: &str) -> &mut Service {
        let pos = self
            .services
            .iter()
            .position(|s| s.name == name && s.kind == kind);
        let i = match pos {
            Some(i) => i,
            None => {
                self.services.push(Service {
                    name: name.to_owned(),
                    kind: kind.to_owned(),
                    ..Service::default()
                });
                self.services.len() - 1
            }
        };
        &mut self.services[i]
    }
}

/// Reads every input as Postfix settings.
pub fn parse(inputs: &[Input]) -> PostfixFiles {
    let mut files = PostfixFiles::default();
    for input in inputs {
        let (lines, orphans) = logical_lines(&input.text);
        for line in orphans {
            files.unreadable.push(Unreadable {
                loc: Loc {
                    file: input.name.clone(),
                    line,
                },
                text: String::new(),
                why: "continuation line without a setting before it",
            });
        }
        for (line, text) in lines {
            let loc = Loc {
                file: input.name.clone(),
                line,
            };
            read_line(&mut files, loc, &text);
        }
    }
    files
}

fn read_line(files: &mut PostfixFiles, loc: Loc, text: &str) {
    // `name = value` or `service/type/name = value`.
    if let Some((left, value)) = text.split_once('=') {
        let left = left.trim();
        let value = value.trim().to_owned();
        if is_param_name(left) {
            files.main.insert(left.to_owned(), Param { value, loc });
            return;
        }
        let parts: Vec<&str> = left.split('/').collect();
        if let [service, kind, name] = parts[..]
            && !service.is_empty()
            && MASTER_TYPES.contains(&kind)
            && is_param_name(name)
        {
            let s = files.service_mut(service, kind);
            if MASTER_FIELDS.contains(&name) {
                // postconf -F: only the command matters here.
                if name == "command" {
                    s.command = value.split_whitespace().next().map(str::to_owned);
                }
                if s.loc.is_none() {
                    s.loc = Some(loc);
                }
            } else {
                s.overrides.insert(name.to_owned(), Param { value, loc });
            }
            return;
        }
    }
    let fields = split_master_fields(text);
    if fields.len() >= 8 && MASTER_TYPES.contains(&fields[1].as_str()) {
        files.has_master = true;
        let name = fields[0].clone();
        let kind = fields[1].clone();
        let command = fields[7].clone();
        let mut overrides = Vec::new();
        let mut bad = None;
        let mut i = 8;
        while i < fields.len() {
            let f = &fields[i];
            let setting = if f == "-o" {
                i += 1;
                fields.get(i).cloned()
            } else {
                f.strip_prefix("-o")
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
            };
            if let Some(setting) = setting {
                // `name=value` or, since Postfix 3.0, `{ name = value }`.
                let inner = setting
                    .strip_prefix('{')
                    .and_then(|s| s.strip_suffix('}'))
                    .unwrap_or(&setting);
                match inner.split_once('=') {
                    Some((n, v)) if is_param_name(n.trim()) => {
                        overrides.push((n.trim().to_owned(), v.trim().to_owned()));
                    }
                    _ => bad = Some(setting.clone()),
                }
            }
            i += 1;
        }
        let s = files.service_mut(&name, &kind);
        s.command = Some(command);
        s.loc = Some(loc.clone());
        for (n, v) in overrides {
            s.overrides.insert(
                n,
                Param {
                    value: v,
                    loc: loc.clone(),
                },
            );
        }
        if let Some(bad) = bad {
            files.unreadable.push(Unreadable {
                loc,
                text: shorten(&bad),
                why: "-o option without name=value",
            });
        }
        return;
    }
    files.unreadable.push(Unreadable {
        loc,
        text: shorten(text),
        why: "not a main.cf parameter, master.cf entry or postconf -P line",
    });
}

/// master.cf fields: whitespace-separated, `{ … }` kept as one field (master(5),
/// Postfix 3.0 and later).
fn split_master_fields(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' if depth > 0 => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits a list value (restrictions, `mynetworks`, `mydestination`) on commas
/// and whitespace, keeping `{ … }` groups (and `type:{ … }`) whole.
pub fn split_list(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' if depth > 0 => {
                depth -= 1;
                cur.push(c);
            }
            c if (c.is_whitespace() || c == ',') && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

// ---------------------------------------------------------------------------
// Parameter expansion (postconf(5), "main.cf file format")

/// Deepest recursion of `$name` references; Postfix stops loops the same way.
const MAX_DEPTH: usize = 100;
/// Longest expanded value.
const MAX_LEN: usize = 100_000;

/// Expands `$name`, `${name}`, `$(name)`, `${name?value}`, `${name:value}`,
/// `${name?{a}:{b}}`, `${{x} op {y} ? {a} : {b}}` and `$$`. `lookup` gives a
/// parameter's raw value (undefined: `None`, which expands to nothing).
pub fn expand(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let cx = Cx {
        lookup,
        steps: std::cell::Cell::new(0),
    };
    let mut out = String::new();
    expand_into(raw, &cx, 0, &mut out)?;
    Ok(out)
}

/// The lookup and a work budget: nested conditionals can make the work grow
/// exponentially while the output stays short.
struct Cx<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    steps: std::cell::Cell<usize>,
}

/// Most references and expressions evaluated for one value.
const MAX_STEPS: usize = 100_000;

impl Cx<'_> {
    fn step(&self) -> Result<(), String> {
        let n = self.steps.get() + 1;
        self.steps.set(n);
        if n > MAX_STEPS {
            Err("parameter expansion takes too many steps".to_owned())
        } else {
            Ok(())
        }
    }
    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }
}

fn expand_into(raw: &str, cx: &Cx<'_>, depth: usize, out: &mut String) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("parameter references nest too deep (a loop?)".to_owned());
    }
    cx.step()?;
    let chars: Vec<char> = raw.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if out.len() > MAX_LEN {
            return Err("expanded value too long".to_owned());
        }
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some(&open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                let end = matching(&chars, i + 1, open, close)
                    .ok_or_else(|| format!("unbalanced `{open}` after `$`"))?;
                let inner: String = chars[i + 2..end].iter().collect();
                expand_braced(&inner, cx, depth, out)?;
                i = end + 1;
            }
            _ => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                if j == start {
                    // A lone `$` is kept (Postfix warns and keeps it too).
                    out.push('$');
                    i += 1;
                    continue;
                }
                let name: String = chars[start..j].iter().collect();
                if let Some(v) = cx.get(&name) {
                    expand_into(&v, cx, depth + 1, out)?;
                }
                i = j;
            }
        }
    }
    Ok(())
}

/// The index of the `close` that matches the `open` at `at`.
fn matching(chars: &[char], at: usize, open: char, close: char) -> Option<usize> {
    let mut depth = 0usize;
    for (k, &c) in chars.iter().enumerate().skip(at) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth = depth.checked_sub(1)?;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

/// `{value}` at the start of `s` (after whitespace): the value and the rest.
fn take_brace(s: &str) -> Option<(String, &str)> {
    let t = s.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    let chars: Vec<char> = t.chars().collect();
    let end = matching(&chars, 0, '{', '}')?;
    let value: String = chars[1..end].iter().collect();
    let consumed: usize = chars[..=end].iter().map(|c| c.len_utf8()).sum();
    Some((value.trim().to_owned(), &t[consumed..]))
}

fn expand_braced(inner: &str, cx: &Cx<'_>, depth: usize, out: &mut String) -> Result<(), String> {
    let t = inner.trim_start();
    if t.starts_with('{') {
        return expand_relational(t, cx, depth, out);
    }
    let name_len = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    let name = &t[..name_len];
    if name.is_empty() {
        return Err(format!("`${{{inner}}}`: no parameter name"));
    }
    let rest = &t[name_len..];
    let value = || -> Result<String, String> {
        let mut v = String::new();
        if let Some(raw) = cx.get(name) {
            expand_into(&raw, cx, depth + 1, &mut v)?;
        }
        Ok(v)
    };
    if rest.trim().is_empty() {
        out.push_str(&value()?);
        return Ok(());
    }
    let (op, tail) = rest.split_at(1);
    match op {
        "?" | ":" => {
            let (when, otherwise) = match take_brace(tail) {
                Some((a, after)) => {
                    let after = after.trim_start();
                    let b = match after.strip_prefix(':') {
                        Some(b) if op == "?" => Some(match take_brace(b) {
                            Some((b, after)) if after.trim().is_empty() => b,
                            Some(_) => return Err(format!("`${{{inner}}}`: text after `}}`")),
                            None => b.trim().to_owned(),
                        }),
                        Some(_) => return Err(format!("`${{{inner}}}`: bad syntax")),
                        None if after.trim().is_empty() => None,
                        None => return Err(format!("`${{{inner}}}`: text after `}}`")),
                    };
                    (a, b)
                }
                // The Postfix 2.2 form: the rest is the value.
                None => (tail.to_owned(), None),
            };
            let set = !value()?.is_empty();
            let chosen = if (op == "?") == set {
                Some(when)
            } else if op == "?" {
                otherwise
            } else {
                None
            };
            if let Some(text) = chosen {
                expand_into(&text, cx, depth + 1, out)?;
            }
            Ok(())
        }
        "{" => {
            // `${name{value}}`: a function call. Only domain_to_ascii exists;
            // it changes nothing that matters to relay control.
            if name == "domain_to_ascii"
                && let Some((v, after)) = take_brace(rest)
                && after.trim().is_empty()
            {
                return expand_into(&v, cx, depth + 1, out);
            }
            Err(format!("`${{{inner}}}`: unknown function `{name}`"))
        }
        _ => Err(format!("`${{{inner}}}`: bad syntax")),
    }
}

/// `{x} op {y} ? {a} : {b}` (Postfix 3.0 and later; `<level` and friends
/// compare compatibility levels, 3.6 and later).
fn expand_relational(t: &str, cx: &Cx<'_>, depth: usize, out: &mut String) -> Result<(), String> {
    let bad = || format!("`${{{t}}}`: bad relational expression");
    let (x, rest) = take_brace(t).ok_or_else(bad)?;
    let rest = rest.trim_start();
    let op_len = rest.find(['{', ' ', '\t']).ok_or_else(bad)?;
    let op = &rest[..op_len];
    let (y, rest) = take_brace(&rest[op_len..]).ok_or_else(bad)?;
    let (mut xs, mut ys) = (String::new(), String::new());
    expand_into(&x, cx, depth + 1, &mut xs)?;
    expand_into(&y, cx, depth + 1, &mut ys)?;
    let (x, y) = (xs, ys);
    let truth = compare(&x, op, &y).ok_or_else(|| format!("unknown operator `{op}`"))?;
    let rest = rest.trim_start();
    let (when, otherwise) = if let Some(r) = rest.strip_prefix('?') {
        let (a, after) = take_brace(r).ok_or_else(bad)?;
        let after = after.trim_start();
        match after.strip_prefix(':') {
            Some(b) => {
                let (b, end) = take_brace(b).ok_or_else(bad)?;
                if !end.trim().is_empty() {
                    return Err(bad());
                }
                (Some(a), Some(b))
            }
            None if after.trim().is_empty() => (Some(a), None),
            None => return Err(bad()),
        }
    } else if let Some(r) = rest.strip_prefix(':') {
        let (b, end) = take_brace(r).ok_or_else(bad)?;
        if !end.trim().is_empty() {
            return Err(bad());
        }
        (None, Some(b))
    } else {
        return Err(bad());
    };
    if let Some(text) = if truth { when } else { otherwise } {
        expand_into(&text, cx, depth + 1, out)?;
    }
    Ok(())
}

fn compare(x: &str, op: &str, y: &str) -> Option<bool> {
    use std::cmp::Ordering;
    let (base, level) = match op.strip_suffix("level") {
        Some(b) => (b, true),
        None => (op, false),
    };
    let ord = if level {
        level_cmp(x, y)
    } else if !x.is_empty()
        && !y.is_empty()
        && x.bytes().all(|b| b.is_ascii_digit())
        && y.bytes().all(|b| b.is_ascii_digit())
    {
        // Numerical when both are all digits (postconf(5)).
        let a = x.trim_start_matches('0');
        let b = y.trim_start_matches('0');
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        x.cmp(y)
    };
    Some(match base {
        "==" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        "<" => ord == Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        ">=" => ord != Ordering::Less,
        _ => return None,
    })
}

/// Compatibility levels compare as `major.minor.patch` numbers (3.10 > 3.9).
fn level_cmp(x: &str, y: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u64> {
        let mut v: Vec<u64> = s
            .split('.')
            .map(|p| p.trim().parse::<u64>().unwrap_or(0))
            .collect();
        v.resize(3, 0);
        v
    };
    parts(x).cmp(&parts(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(name: &str, text: &str) -> Input {
        Input {
            name: name.to_owned(),
            text: text.to_owned(),
        }
    }

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |n: &str| map.get(n).cloned()
    }

    #[test]
    fn main_cf_continuations_comments_and_last_wins() {
        let f = parse(&[input(
            "main.cf",
            "# comment\nmynetworks = 10.0.0.0/8\nsmtpd_relay_restrictions = permit_mynetworks,\n    # a comment inside\n    reject_unauth_destination\n\nmynetworks = 192.168.0.0/16\n",
        )]);
        assert!(f.unreadable.is_empty(), "{:?}", f.unreadable);
        let r = &f.main["smtpd_relay_restrictions"];
        assert_eq!(r.value, "permit_mynetworks, reject_unauth_destination");
        assert_eq!(r.loc.line, 3);
        assert_eq!(f.main["mynetworks"].value, "192.168.0.0/16");
        assert_eq!(f.main["mynetworks"].loc.line, 7);
    }

    #[test]
    fn master_cf_overrides_and_postconf_p() {
        let f = parse(&[
            input(
                "master.cf",
                "smtp      inet  n       -       y       -       -       smtpd\n  -o smtpd_relay_restrictions=permit\nsubmission inet n - y - - smtpd -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\npickup unix n - y 60 1 pickup\n",
            ),
            input(
                "postconf-P.txt",
                "smtp/inet/mynetworks = 0.0.0.0/0\nsmtp/inet/command = smtpd\n",
            ),
        ]);
        assert!(f.unreadable.is_empty(), "{:?}", f.unreadable);
        assert!(f.has_master);
        let smtp = &f.services[0];
        assert_eq!(smtp.id(), "smtp/inet");
        assert_eq!(smtp.command.as_deref(), Some("smtpd"));
        assert_eq!(smtp.overrides["smtpd_relay_restrictions"].value, "permit");
        assert_eq!(smtp.overrides["mynetworks"].loc.file, "postconf-P.txt");
        let sub = &f.services[1];
        assert_eq!(
            sub.overrides["smtpd_client_restrictions"].value,
            "permit_sasl_authenticated, reject"
        );
    }

    #[test]
    fn garbage_is_located() {
        let f = parse(&[input("x.txt", "hello world\n  orphan? no: continues\n")]);
        assert_eq!(f.unreadable.len(), 1);
        assert_eq!(f.unreadable[0].loc.to_string(), "x.txt:1");
        let f = parse(&[input("y.txt", "   leading\nok = 1\n")]);
        assert_eq!(f.unreadable[0].loc.line, 1);
        assert_eq!(f.main["ok"].value, "1");
    }

    #[test]
    fn lists_keep_braces() {
        assert_eq!(
            split_list(
                "permit_mynetworks,check_client_access inline:{ 1.2.3.4=OK, 5.6.7.8=REJECT },reject"
            ),
            vec![
                "permit_mynetworks",
                "check_client_access",
                "inline:{ 1.2.3.4=OK, 5.6.7.8=REJECT }",
                "reject"
            ]
        );
    }

    #[test]
    fn expansion_forms() {
        let l = lookup(&[
            ("myhostname", "mx.example.com"),
            ("mydomain", "example.com"),
            ("mydestination", "$myhostname, localhost.$mydomain"),
            ("empty", ""),
            ("loop", "$loop"),
        ]);
        assert_eq!(
            expand("$mydestination", &l).as_deref(),
            Ok("mx.example.com, localhost.example.com")
        );
        assert_eq!(
            expand("${mydomain}/$(mydomain)", &l).as_deref(),
            Ok("example.com/example.com")
        );
        assert_eq!(expand("${mydomain?yes}", &l).as_deref(), Ok("yes"));
        assert_eq!(expand("${empty?yes}", &l).as_deref(), Ok(""));
        assert_eq!(expand("${empty:no}", &l).as_deref(), Ok("no"));
        assert_eq!(expand("${empty?{a}:{b}}", &l).as_deref(), Ok("b"));
        assert_eq!(expand("${mydomain?{a, b}:{c}}", &l).as_deref(), Ok("a, b"));
        assert_eq!(expand("$$x $undefined.", &l).as_deref(), Ok("$x ."));
        assert!(expand("$loop", &l).is_err());
        assert!(expand("${mydomain", &l).is_err());
        assert!(expand("${foo{bar}}", &l).is_err());
    }

    #[test]
    fn compatibility_level_defaults() {
        // postconf -d of Postfix 3.7.
        let relay = "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}";
        let style = "${{$compatibility_level} <level {2} ? {subnet} : {host}}";
        for (level, r, s) in [
            ("0", "", "subnet"),
            (
                "1",
                "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
                "subnet",
            ),
            (
                "2",
                "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
                "host",
            ),
            (
                "3.6",
                "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
                "host",
            ),
            (
                "3.10",
                "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination",
                "host",
            ),
        ] {
            let l = lookup(&[("compatibility_level", level)]);
            assert_eq!(expand(relay, &l).as_deref(), Ok(r), "level {level}");
            assert_eq!(expand(style, &l).as_deref(), Ok(s), "level {level}");
        }
        let l = lookup(&[]);
        assert_eq!(expand("${{10} > {9} ? {num}}", &l).as_deref(), Ok("num"));
        assert_eq!(
            expand("${{3.10} >level {3.9} ? {lvl}}", &l).as_deref(),
            Ok("lvl")
        );
        assert_eq!(
            expand("${{a} == {b} : {differ}}", &l).as_deref(),
            Ok("differ")
        );
        assert!(expand("${{a} ~~ {b} ? {x}}", &l).is_err());
    }
}
