//! Checks without Rust: the `dns_assert` and `exec` engines, user plugin
//! directories, and the generated plugin docs.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mxaudit_core::registry::PluginSet;
use mxaudit_core::{CheckStatus, Severity};
use mxaudit_testbed::{DnsServer, ZoneText};

use crate::support::{codes_for, demo_server, dns_client, plugins, repo, run, target};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mxaudit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn load_dir(dir: &Path) -> Result<PluginSet, mxaudit_core::tomldoc::Located> {
    PluginSet::load(
        mxaudit_checks::ENGINES,
        mxaudit_checks::BUILTIN_MANIFESTS,
        &[dir],
    )
}

#[tokio::test]
async fn builtin_record_checks_on_the_demo_world() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let ids = [
        "mta-sts",
        "tlsrpt",
        "dkim-microsoft365-selector1",
        "dkim-microsoft365-selector2",
    ];
    let targets = vec![
        target("healthy.example", None),
        target("badsts.example", None),
        target("m365ok.example", Some("microsoft365")),
        target("contoso.example", Some("microsoft365")),
        target("servfail.example", None),
        target("gone.example", None),
    ];
    let out = run(&plugins(&ids), &targets, &dns).await;
    // The demo world publishes no _mta-sts record (it has no HTTPS policy
    // host); tests/e2e/mta_sts.rs covers policies.
    let no_sts = |d: &str| vec![("mta_sts.missing".to_owned(), format!("_mta-sts.{d}"))];
    assert_eq!(
        codes_for(&out, "healthy.example"),
        no_sts("healthy.example")
    );
    assert_eq!(
        codes_for(&out, "badsts.example"),
        vec![(
            "mta_sts.syntax".to_owned(),
            "_mta-sts.badsts.example".to_owned()
        )]
    );
    // DKIM: only for the microsoft365 profile; the tenant is unknown, so any tenant matches.
    assert_eq!(codes_for(&out, "m365ok.example"), no_sts("m365ok.example"));
    let contoso = codes_for(&out, "contoso.example");
    for expected in [
        (
            "dkim.provider_selector_missing",
            "selector1._domainkey.contoso.example",
        ),
        (
            "dkim.provider_selector_missing",
            "selector2._domainkey.contoso.example",
        ),
        ("mta_sts.missing", "_mta-sts.contoso.example"),
        ("tlsrpt.missing", "_smtp._tls.contoso.example"),
    ] {
        assert!(
            contoso.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{contoso:?}"
        );
    }
    // A SERVFAIL is an error, never "absent"; a domain that does not exist reports nothing here.
    assert_eq!(codes_for(&out, "servfail.example"), vec![]);
    for c in out.checks.iter().filter(|c| c.domain == "servfail.example") {
        // The DKIM checks do not apply without the microsoft365 profile.
        let expected = if c.plugin.starts_with("dkim-") {
            CheckStatus::Pass
        } else {
            CheckStatus::Error
        };
        assert_eq!(c.status, expected, "{c:?}");
    }
    assert_eq!(codes_for(&out, "gone.example"), vec![]);
    let text = out
        .findings
        .iter()
        .find(|f| f.code == "mta_sts.syntax")
        .expect("finding");
    assert!(
        text.detail.contains("v=STSv1 id=20260101"),
        "{}",
        text.detail
    );
}

#[tokio::test]
async fn dkim_selector_must_point_at_the_configured_tenant() {
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let mut t = target("m365ok.example", Some("microsoft365"));
    let mut profile = (**t.profile.as_ref().expect("profile")).clone();
    profile.tenant = Some("othertenant".to_owned());
    t.profile = Some(std::sync::Arc::new(profile));
    let out = run(&plugins(&["dkim-microsoft365-selector1"]), &[t], &dns).await;
    let f = out
        .findings
        .iter()
        .find(|f| f.code == "dkim.provider_selector_missing")
        .expect("finding");
    assert!(
        f.detail.contains("othertenant.onmicrosoft.com"),
        "{}",
        f.detail
    );
    assert!(
        f.detail
            .contains("selector1-m365ok-example._domainkey.m365ok.onmicrosoft.com"),
        "{}",
        f.detail
    );
}

fn manifest(id: &str, engine: &str, params: &str, codes: &[&str]) -> String {
    let mut s = format!(
        "id = \"{id}\"\nengine = \"{engine}\"\ndescription = \"test\"\n\n[params]\n{params}\n"
    );
    for code in codes {
        s.push_str(&format!(
            "\n[finding.\"{code}\"]\nseverity = \"medium\"\ntitle.en = \"t {{{{ domain }}}}\"\ntitle.ja = \"t\"\ndetail.en = \"d\"\ndetail.ja = \"d\"\nremediation.en = \"r\"\nremediation.ja = \"r\"\n"
        ));
    }
    s
}

#[test]
fn dns_assert_manifest_errors_are_located() {
    let dir = temp_dir("dns-assert-errors");
    for (id, params, codes, needle) in [
        (
            "unknown-var",
            "query = \"{nope}.{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.x\"\nexists = true",
            &["t.x"][..],
            "unknown variable `{nope}`",
        ),
        (
            "bad-regex",
            "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.x\"\nall_match = \"(\"",
            &["t.x"][..],
            "invalid regex",
        ),
        (
            "two-conditions",
            "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.x\"\nexists = true\nabsent = true",
            &["t.x"][..],
            "exactly one condition",
        ),
        (
            "no-text",
            "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.y\"\nexists = true",
            &["t.x"][..],
            "no [finding.\"t.y\"] text",
        ),
        (
            "bad-type",
            "query = \"{domain}\"\ntype = \"ANY\"\n[[params.assert]]\ncode = \"t.x\"\nexists = true",
            &["t.x"][..],
            "unsupported record type",
        ),
        (
            "typo-key",
            "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.x\"\nexist = true",
            &["t.x"][..],
            "unknown field `exist`",
        ),
    ] {
        let path = dir.join(format!("{id}.toml"));
        let text = manifest(id, "dns_assert", params, codes);
        std::fs::write(&path, &text).expect("write");
        let err = mxaudit_core::manifest::load(
            &path.display().to_string(),
            Some(id),
            &text,
            mxaudit_checks::ENGINES,
        )
        .expect_err(id);
        assert!(err.message.contains(needle), "{id}: {err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{id}: {err}"
        );
        assert!(err.line > 0, "{id}: located: {err}");
    }
    // A template variable the engine does not provide.
    let bad = manifest(
        "tvar",
        "dns_assert",
        "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"t.x\"\nexists = true",
        &["t.x"],
    )
    .replace("detail.en = \"d\"", "detail.en = \"{{ valeus }}\"");
    let err =
        mxaudit_core::manifest::load("tvar.toml", Some("tvar"), &bad, mxaudit_checks::ENGINES)
            .expect_err("typo");
    assert!(err.message.contains("valeus") && err.line > 0, "{err}");
}

#[tokio::test]
async fn the_walkthrough_shows_and_runs_the_example_plugins() {
    // The page shows each example file verbatim.
    let doc = std::fs::read_to_string(repo().join("docs/writing-a-check.md")).expect("doc");
    let examples = repo().join("docs/examples/plugins");
    let mut shown = 0;
    for part in doc.split("<!-- file: docs/examples/plugins/").skip(1) {
        let (name, rest) = part.split_once(" -->\n").expect("marker");
        let body = rest.split_once('\n').expect("fence").1;
        let block = &body[..body.find("```\n").expect("end fence")];
        let file = std::fs::read_to_string(examples.join(name)).expect("example file");
        assert_eq!(block, file, "docs/writing-a-check.md shows {name} verbatim");
        shown += 1;
    }
    assert_eq!(shown, 5);

    // Loaded from a user directory, run against the testbed.
    let set = load_dir(&examples).expect("examples load");
    for id in ["acme-verification", "mx-redundancy", "m365-only"] {
        let p = set
            .plugins
            .iter()
            .find(|p| p.meta.id == id)
            .expect("loaded");
        assert!(
            p.meta.source.contains("docs/examples/plugins"),
            "{}",
            p.meta.source
        );
    }
    let zone = ZoneText {
        origin: "acme.test.".to_owned(),
        text: "$ORIGIN acme.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 127.0.0.1\n\
               good IN TXT \"acme-verification=0123456789abcdef0123456789abcdef\"\n\
               good IN MX 10 mx1.good\ngood IN MX 20 mx2.good\nmx1.good IN A 198.51.100.1\nmx2.good IN A 198.51.100.2\n\
               bad IN TXT \"acme-verification=XYZ\"\nbad IN MX 10 mx1.good\n\
               none IN TXT \"v=spf1 -all\"\nnone IN MX 10 mx1.good\n"
            .to_owned(),
    };
    let server = DnsServer::start(&[zone]).await.expect("starts");
    let dns = dns_client(server.addr());
    let selected: Vec<_> = set
        .plugins
        .iter()
        .filter(|p| {
            ["acme-verification", "mx-redundancy", "m365-only"].contains(&p.meta.id.as_str())
        })
        .cloned()
        .collect();
    let targets = vec![
        target("good.acme.test", Some("microsoft365")),
        target("bad.acme.test", Some("microsoft365")),
        target("none.acme.test", None),
    ];
    let out = run(&selected, &targets, &dns).await;
    assert_eq!(codes_for(&out, "good.acme.test"), vec![]);
    assert_eq!(
        codes_for(&out, "bad.acme.test"),
        vec![
            ("acme.single_mx".to_owned(), "bad.acme.test".to_owned()),
            (
                "acme.verification_malformed".to_owned(),
                "bad.acme.test".to_owned()
            ),
        ]
    );
    assert_eq!(
        codes_for(&out, "none.acme.test"),
        vec![
            ("acme.not_on_m365".to_owned(), "none.acme.test".to_owned()),
            ("acme.single_mx".to_owned(), "none.acme.test".to_owned()),
            (
                "acme.verification_missing".to_owned(),
                "none.acme.test".to_owned()
            ),
        ]
    );
    let single = out
        .findings
        .iter()
        .find(|f| f.code == "acme.single_mx")
        .expect("finding");
    assert!(single.title.contains("fewer than 2"), "{}", single.title);
    assert_eq!(single.evidence, vec!["mx1.good.acme.test 198.51.100.1"]);
    assert!(
        out.checks.iter().all(|c| c.status != CheckStatus::Error),
        "{:?}",
        out.checks
    );
}

#[tokio::test]
async fn hostile_exec_programs_give_errors_within_budget() {
    let dir = temp_dir("exec-hostile");
    std::fs::write(
        dir.join("not-executable.sh"),
        "#!/bin/sh\necho '{\"findings\":[]}'\n",
    )
    .expect("write");
    let cases: &[(&str, &str, &str)] = &[
        ("missing", r#"["./no-such-program"]"#, "cannot start"),
        ("not-exec", r#"["./not-executable.sh"]"#, "cannot start"),
        ("crash", r#"["sh", "-c", "echo boom >&2; exit 3"]"#, "boom"),
        ("hang", r#"["sleep", "30"]"#, "did not finish"),
        (
            "flood",
            r#"["sh", "-c", "yes '{\"findings\":[]}' | head -c 100000000"]"#,
            "more than",
        ),
        ("nothing", r#"["true"]"#, "printed nothing"),
        ("garbage", r#"["printf", "not json"]"#, "invalid JSON"),
        ("bad-utf8", r#"["printf", "\\377\\376"]"#, "invalid JSON"),
        (
            "foreign-code",
            r#"["printf", "{\"findings\":[{\"code\":\"other.code\",\"subject\":\"x\"}]}"]"#,
            "does not declare",
        ),
        (
            "ignores-stdin",
            r#"["sh", "-c", "exec 0<&-; printf '{\"findings\":[]}'"]"#,
            "",
        ),
    ];
    for (id, command, _) in cases {
        let text = manifest(
            id,
            "exec",
            &format!("command = {command}\ntimeout = \"1s\"\nmax_output = 65536\nenv = [\"PATH\"]"),
            &["hostile.code"],
        );
        std::fs::write(dir.join(format!("{id}.toml")), text).expect("write");
    }
    let set = load_dir(&dir).expect("manifests load (programs are checked when they run)");
    let selected: Vec<_> = set
        .plugins
        .iter()
        .filter(|p| p.meta.engine == "exec")
        .cloned()
        .collect();
    assert_eq!(selected.len(), cases.len());
    let server = demo_server().await;
    let dns = dns_client(server.addr());
    let mut with_builtin = selected.clone();
    with_builtin.extend(plugins(&["mx"]));
    let started = Instant::now();
    let out = run(&with_builtin, &[target("dangling.example", None)], &dns).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded: {:?}",
        started.elapsed()
    );
    for (id, _, needle) in cases {
        let status = out.checks.iter().find(|c| c.plugin == *id).expect("status");
        if needle.is_empty() {
            assert_eq!(status.status, CheckStatus::Pass, "{id}: {status:?}");
        } else {
            assert_eq!(status.status, CheckStatus::Error, "{id}: {status:?}");
            assert!(
                status.detail.as_deref().is_some_and(|d| d.contains(needle)),
                "{id}: {status:?}"
            );
        }
    }
    assert!(
        out.findings
            .iter()
            .all(|f| f.code != "hostile.code" && f.code != "other.code")
    );
    // The rest of the run went on.
    assert!(
        out.findings
            .iter()
            .any(|f| f.code == "mx.target_unresolvable" && f.severity == Severity::High)
    );
}

#[test]
fn user_plugin_directories_override_and_families() {
    let dir = temp_dir("user-plugins");
    let address = std::fs::read_to_string(repo().join("plugins/address.toml")).expect("read");
    std::fs::write(dir.join("address.toml"), &address).expect("write");
    let err = load_dir(&dir).expect_err("same id as a built-in");
    assert!(err.message.contains("override = true"), "{err}");

    std::fs::write(
        dir.join("address.toml"),
        format!("override = true\n{address}").replace("severity = \"low\"", "severity = \"high\""),
    )
    .expect("write");
    let set = load_dir(&dir).expect("override accepted");
    let p = set
        .plugins
        .iter()
        .find(|p| p.meta.id == "address")
        .expect("address");
    assert!(
        p.meta.source.ends_with("address.toml") && !p.meta.source.starts_with("builtin:"),
        "{}",
        p.meta.source
    );
    assert_eq!(p.meta.findings["a.missing"].severity, Severity::High);
    assert_eq!(
        set.plugins
            .iter()
            .filter(|p| p.meta.id == "address")
            .count(),
        1
    );

    std::fs::remove_file(dir.join("address.toml")).expect("rm");
    let squat = manifest(
        "squat",
        "dns_assert",
        "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"mx.mine\"\nexists = true",
        &["mx.mine"],
    );
    std::fs::write(dir.join("squat.toml"), squat).expect("write");
    let err = load_dir(&dir).expect_err("built-in family");
    assert!(err.message.contains("family `mx.`"), "{err}");

    // `plugins list` shows where each plugin came from.
    std::fs::remove_file(dir.join("squat.toml")).expect("rm");
    let own = manifest(
        "own-check",
        "dns_assert",
        "query = \"{domain}\"\ntype = \"TXT\"\n[[params.assert]]\ncode = \"own.x\"\nexists = true",
        &["own.x"],
    );
    std::fs::write(dir.join("own-check.toml"), own).expect("write");
    let out = crate::support::mxaudit_run(&[
        "plugins",
        "list",
        "--plugins-dir",
        dir.to_str().expect("utf8"),
    ]);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("own-check") && s.contains(&dir.join("own-check.toml").display().to_string()),
        "{s}"
    );
    assert!(s.contains("source=builtin:plugins/mx.toml"), "{s}");
}

#[test]
fn generated_plugin_docs_are_up_to_date() {
    let set = crate::support::builtin_plugins();
    let plugins = mxaudit_core::docs::plugins_markdown(&set.plugins, mxaudit_checks::ENGINES);
    let findings = mxaudit_core::docs::findings_markdown(&set.plugins);
    for (name, generated) in [("plugins.md", plugins), ("findings.md", findings)] {
        let committed = std::fs::read_to_string(repo().join("docs").join(name)).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/{name} is stale: run `cargo run -p mxaudit -- plugins doc`"
        );
    }
}
