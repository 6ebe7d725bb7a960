//! The targets of issue 17 on the development corpus (tests/fixtures/bounces),
//! and docs/explain.md showing the figures this code produces.

use std::path::{Path, PathBuf};

use mxaudit_bounce::Rules;
use mxaudit_bounce::corpus::{self, percent};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn score() -> corpus::Score {
    let rules = Rules::builtin().expect("built-in rules");
    corpus::score_dir(&root().join("tests/fixtures/bounces"), &rules).expect("corpus reads")
}

#[test]
fn corpus_meets_the_targets_of_issue_17() {
    let s = score();
    let t = &s.total;
    let detail = s.mismatches.join("\n");
    assert!(t.messages >= 250, "corpus has {} messages", t.messages);
    assert!(
        percent(t.decided, t.with_status) >= 99.0,
        "decided {}/{}\n{detail}",
        t.decided,
        t.with_status
    );
    assert!(
        percent(t.status_match, t.with_status) >= 97.0,
        "status match {}/{}\n{detail}",
        t.status_match,
        t.with_status
    );
    assert!(
        percent(t.recipients_match, t.bounces) >= 95.0,
        "recipients {}/{}\n{detail}",
        t.recipients_match,
        t.bounces
    );
    assert!(
        percent(t.codeless_reason_match, t.codeless) >= 90.0,
        "reasons of code-less bounces {}/{}\n{detail}",
        t.codeless_reason_match,
        t.codeless
    );
    assert_eq!(
        t.non_bounces_with_status, 0,
        "a non-bounce was given a status\n{detail}"
    );
}

#[test]
fn docs_show_the_figures_of_this_code() {
    let doc = std::fs::read_to_string(root().join("docs/explain.md")).expect("docs/explain.md");
    let figures = corpus::markdown(&score());
    assert!(
        doc.contains(&figures),
        "docs/explain.md does not carry the current figures; run\n  cargo run -p mxaudit-bounce --example corpus_figures -- --write docs/explain.md\nfigures now:\n{figures}"
    );
}

#[test]
fn every_check_named_by_the_rules_is_a_plugin() {
    let rules = Rules::builtin().expect("built-in rules");
    for id in rules.named_checks() {
        assert!(
            root().join("plugins").join(format!("{id}.toml")).is_file(),
            "rules name check `{id}`, which is not a plugin in plugins/"
        );
    }
}
