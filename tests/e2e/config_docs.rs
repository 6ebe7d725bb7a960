//! The example `audit.toml` against the code (style rule 12): it parses, its
//! commented defaults are valid keys, every key the code accepts is shown in it,
//! and an unknown key injected into any of its tables is a located error.

use mxaudit_core::config::Config;

use crate::support::repo;

fn example() -> String {
    std::fs::read_to_string(repo().join("audit.toml")).expect("audit.toml exists")
}

/// `# key = value` (one `#`) lines are commented defaults: uncomment them,
/// unless the next line sets the same key (a default followed by a value).
fn uncommented(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| match l.strip_prefix("# ") {
            Some(rest) if !l.starts_with("##") && rest.contains(" = ") => {
                let key = rest.split(" = ").next().unwrap_or_default();
                let next_sets_it = lines
                    .get(i + 1)
                    .is_some_and(|n| n.starts_with(&format!("{key} =")));
                if next_sets_it {
                    (*l).to_owned()
                } else {
                    rest.to_owned()
                }
            }
            _ => (*l).to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The table headers of the example, with the line index of each ("" = root).
fn tables(text: &str) -> Vec<(String, usize)> {
    let mut out = vec![(String::new(), 0)];
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') && !t.starts_with("[plugins.severity]") {
            out.push((t.trim_matches(|c| c == '[' || c == ']').to_owned(), i + 1));
        }
    }
    out
}

#[test]
fn example_parses_as_is_and_with_defaults_uncommented() {
    let text = example();
    Config::parse("audit.toml", &text).expect("audit.toml parses");
    // Duplicated keys after uncommenting would be a TOML error: commented
    // defaults must be keys that are not also set.
    let full = uncommented(&text);
    Config::parse("audit.toml (uncommented)", &full).expect("commented defaults are valid keys");
}

#[test]
fn every_key_of_the_code_is_in_the_example_and_unknown_keys_are_located() {
    let text = uncommented(&example());
    let lines: Vec<&str> = text.lines().collect();
    for (table, header_line) in tables(&text) {
        let mut mutated: Vec<&str> = lines.clone();
        mutated.insert(header_line, "zz_unknown_key = 1");
        let err =
            Config::parse("audit.toml", &mutated.join("\n")).expect_err("unknown key rejected");
        assert!(err.message.contains("zz_unknown_key"), "[{table}]: {err}");
        assert_eq!(
            err.line,
            header_line + 1,
            "[{table}]: error names the line: {err}"
        );
        // serde lists the accepted keys: each must appear in the example's table.
        let expected = err.message.split("expected").nth(1).unwrap_or_default();
        let keys: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        assert!(!keys.is_empty(), "[{table}]: {err}");
        for key in keys {
            let shown = text.lines().any(|l| {
                let l = l.trim();
                l.starts_with(&format!("{key} ="))
                    || l.starts_with(&format!("[{key}"))
                    || l.starts_with(&format!("[[{key}"))
                    || l.starts_with(&format!("[{table}.{key}"))
            });
            assert!(shown, "key `{key}` of [{table}] is not shown in audit.toml");
        }
    }
}

/// Every built-in manifest: an unknown key injected into any of its tables is an
/// error naming the file and that line (style rule 1).
#[test]
fn unknown_keys_in_every_builtin_manifest_are_located() {
    for (path, source) in mxaudit_checks::BUILTIN_MANIFESTS {
        let stem = std::path::Path::new(path)
            .file_stem()
            .and_then(|s| s.to_str());
        mxaudit_core::manifest::load(path, stem, source, mxaudit_checks::ENGINES)
            .expect("manifest loads");
        let lines: Vec<&str> = source.lines().collect();
        let headers: Vec<usize> = std::iter::once(0)
            .chain(
                lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.trim_start().starts_with('['))
                    .map(|(i, _)| i + 1),
            )
            .collect();
        for at in headers {
            let mut mutated = lines.clone();
            mutated.insert(at, "zz_unknown_key = 1");
            let text = mutated.join("\n");
            let err = mxaudit_core::manifest::load(path, stem, &text, mxaudit_checks::ENGINES)
                .err()
                .unwrap_or_else(|| panic!("{path}: unknown key after line {at} accepted"));
            assert!(err.message.contains("zz_unknown_key"), "{path}: {err}");
            assert_eq!(err.line, at + 1, "{path}: {err}");
        }
    }
}
