//! Regression tests named after the points of issues 17 and 16 (explain), on the
//! hand-written and generated messages of tests/fixtures/bounces.

use std::path::Path;

use mxaudit_bounce::view::Explanation;
use mxaudit_bounce::{Bounce, Origin, Reading, RecipientStatus, Rules};
use mxaudit_core::Lang;

fn read(rel: &str) -> Reading {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/bounces")
        .join(rel);
    let input = std::fs::read(&path).expect("fixture");
    mxaudit_bounce::read(&input, &Rules::builtin().expect("rules")).expect("reads")
}

fn bounce(rel: &str) -> Bounce {
    match read(rel) {
        Reading::Bounce(b) => b,
        other => panic!("{rel}: not a bounce: {other:?}"),
    }
}

fn only(b: &Bounce) -> &RecipientStatus {
    assert_eq!(b.recipients.len(), 1, "{:?}", b.recipients);
    &b.recipients[0]
}

#[test]
fn issue17_version_numbers_are_not_status_codes() {
    let b = bounce("written/pasted-apple-mail-headers.txt");
    let r = only(&b);
    assert_eq!(r.status, None, "2.753.1 / 2.8.21 are versions");
    assert_eq!(r.recipient.as_deref(), Some("frank@receiver.example"));
    assert_eq!(r.reason.as_deref(), Some("user_unknown"));
}

#[test]
fn issue17_x_unix_exit_status_is_not_a_reply_and_procmail_is_not_a_recipient() {
    let b = bounce("written/x-unix-procmail.eml");
    let r = only(&b);
    assert_eq!(r.reply_code, None);
    assert_eq!(r.status.as_deref(), Some("5.3.0"));
    assert_eq!(r.recipient.as_deref(), Some("kazuo@receiver.example"));
    assert_eq!(
        r.origins.get("recipient"),
        Some(&Origin::Field {
            name: "Original-Recipient".into(),
            group: 1
        })
    );
}

#[test]
fn issue17_specific_diagnostic_status_preferred_and_both_shown() {
    let b = bounce("generated/exim-unknown.eml");
    let r = only(&b);
    assert_eq!(r.status.as_deref(), Some("5.1.1"));
    assert_eq!(r.dsn_status.as_deref(), Some("5.0.0"));
    assert_eq!(
        r.origins.get("status"),
        Some(&Origin::Field {
            name: "Diagnostic-Code".into(),
            group: 1
        })
    );
    let text = Explanation::new(
        Reading::Bounce(b),
        &Rules::builtin().expect("rules"),
        Lang::En,
    )
    .render(false, mxaudit_core::text::escape_terminal, None);
    assert!(text.contains("Status field: 5.0.0"), "{text}");
}

#[test]
fn issue17_transcript_pairs_the_recipient_with_the_failure_not_the_accepted_rcpt() {
    let b = bounce("written/transcript-rcpt-accepted-data-deferred.eml");
    let r = only(&b);
    assert_eq!(r.recipient.as_deref(), Some("grace@receiver.example"));
    assert_eq!(r.reply_code, Some(451));
    assert_eq!(r.status.as_deref(), Some("4.3.0"));
    assert_eq!(r.action.as_deref(), Some("delayed"));
}

#[test]
fn issue17_quoted_printable_soft_break_inside_a_code() {
    let b = bounce("written/qp-soft-break-in-code.eml");
    let r = only(&b);
    assert_eq!(r.status.as_deref(), Some("5.1.1"));
    assert_eq!(r.reply_code, Some(550));
}

#[test]
fn issue17_x_failed_recipients_header() {
    let b = bounce("generated/exim-multi.eml");
    let mut got: Vec<&str> = b
        .recipients
        .iter()
        .filter_map(|r| r.recipient.as_deref())
        .collect();
    got.sort_unstable();
    assert_eq!(got, ["full@dest.test", "unknown@dest.test"]);
    let b = bounce("bounced/tt_bounce_01.eml");
    assert_eq!(
        only(&b).origins.get("recipient"),
        Some(&Origin::Header {
            name: "X-Failed-Recipients".into()
        })
    );
}

#[test]
fn issue17_address_several_lines_above_the_code() {
    let b = bounce("written/address-six-lines-above.txt");
    let r = only(&b);
    assert_eq!(r.recipient.as_deref(), Some("ivan@receiver.example"));
    assert_eq!(r.status.as_deref(), Some("5.1.1"));
}

#[test]
fn issue17_sender_of_a_rejection_line_is_not_the_recipient() {
    // "<sender>: Sender address rejected" names the sender, not a recipient.
    let input = b"From: MAILER-DAEMON@mx.example.org\nSubject: Undelivered Mail Returned to Sender\nTo: bob@sender.example\n\n<carol@receiver.example>: host mx.receiver.example[198.51.100.9] said: 550 5.7.1\n    <alice@sender.example>: Sender address rejected: Access denied\n";
    let Reading::Bounce(b) =
        mxaudit_bounce::read(input, &Rules::builtin().expect("rules")).expect("reads")
    else {
        panic!("a bounce");
    };
    let r = only(&b);
    assert_eq!(r.recipient.as_deref(), Some("carol@receiver.example"));
    assert_eq!(r.reason.as_deref(), Some("sender_rejected"));
}

#[test]
fn issue17_reasons_without_codes_in_japanese_carriers_text() {
    for (file, reason) in [
        ("written/docomo-user-unknown.eml", "user_unknown"),
        ("written/au-mailbox-full.eml", "mailbox_full"),
        ("written/softbank-refused.eml", "policy"),
        ("written/shiftjis-user-unknown.eml", "user_unknown"),
    ] {
        let b = bounce(file);
        let r = only(&b);
        assert_eq!(r.status, None, "{file}");
        assert_eq!(r.reason.as_deref(), Some(reason), "{file}");
        let ja = Explanation::new(
            Reading::Bounce(b.clone()),
            &Rules::builtin().expect("rules"),
            Lang::Ja,
        )
        .render(false, mxaudit_core::text::escape_terminal, None);
        assert!(ja.contains("理由:") && ja.contains("対応者:"), "{ja}");
    }
}

#[test]
fn issue17_arf_report_is_described_not_given_a_status() {
    let Reading::Feedback(f) = read("written/arf-abuse.eml") else {
        panic!("a feedback report");
    };
    assert_eq!(f.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(f.source_ip.as_deref(), Some("198.51.100.23"));
    assert_eq!(f.reported_domain, ["sender.example"]);
    assert_eq!(
        f.original_mail_from.as_deref(),
        Some("<offers@sender.example>")
    );
    let e = Explanation::new(
        Reading::Feedback(f),
        &Rules::builtin().expect("rules"),
        Lang::En,
    );
    assert_eq!(e.sender_domain.as_deref(), Some("sender.example"));
    let v = e.json(None);
    assert_eq!(v["kind"], "feedback_report");
    assert!(v.get("status").is_none() && v["explained"].as_array().is_some_and(Vec::is_empty));
}

#[test]
fn issue17_auto_replies_are_recognised() {
    for file in [
        "written/vacation-gmail-style.eml",
        "written/out-of-office-exchange.eml",
        "written/ja-auto-reply.eml",
        "baunsu/auto_earthlink.txt",
    ] {
        assert!(matches!(read(file), Reading::AutoReply(_)), "{file}");
    }
}

#[test]
fn issue17_a_person_quoting_a_code_is_not_a_bounce() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/bounces/written/discussion-mentions-codes.eml");
    let input = std::fs::read(path).expect("fixture");
    let e = mxaudit_bounce::read(&input, &Rules::builtin().expect("rules")).expect_err("refused");
    assert!(
        e.to_string()
            .starts_with("not a delivery status notification"),
        "{e}"
    );
}

#[test]
fn issue16_truncated_dsn_warns_and_failed_is_permanent() {
    let b = bounce("written/truncated-dsn-failed.eml");
    assert!(
        b.warnings.iter().any(|w| w.code == "mime_truncated"),
        "{:?}",
        b.warnings
    );
    let e = Explanation::new(
        Reading::Bounce(b),
        &Rules::builtin().expect("rules"),
        Lang::En,
    );
    assert_eq!(e.explained[0].explanation.kind, "permanent");
    let text = e.render(false, mxaudit_core::text::escape_terminal, None);
    assert!(text.contains("the message was cut"), "{text}");
    assert!(!text.contains("transient"), "{text}");
}

#[test]
fn issue16_exchange_ndr_never_shows_summary_as_recipient() {
    let b = bounce("written/o365-ndr-pasted.txt");
    let r = only(&b);
    assert_eq!(r.recipient.as_deref(), Some("mallory@receiver.example"));
    assert_eq!(r.status.as_deref(), Some("5.1.10"));
}

#[test]
fn every_value_says_where_it_came_from() {
    let b = bounce("generated/postfix-blocked.eml");
    let r = only(&b);
    for key in [
        "recipient",
        "status",
        "reply_code",
        "diagnostic",
        "action",
        "reason",
    ] {
        assert!(
            r.origins.contains_key(key),
            "no origin for {key}: {:?}",
            r.origins
        );
    }
    let v = Explanation::new(
        Reading::Bounce(b),
        &Rules::builtin().expect("rules"),
        Lang::En,
    )
    .json(None);
    assert_eq!(v["explained"][0]["origins"]["status"]["from"], "field");
    assert_eq!(v["explained"][0]["origins"]["status"]["name"], "Status");
}
