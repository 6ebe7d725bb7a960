//! How each command shows its result for a person: one file per command view.
//! Reports of findings (audit, run batches) are rendered by the one set of
//! format renderers in `mxaudit_core::render`; these are the views of the
//! other commands. Every value that came from DNS, SMTP or a file is escaped
//! for the terminal or Markdown.

pub mod dnsbl;
pub mod history;
pub mod preflight;
pub mod relay_config;
pub mod run;
pub mod smtp;
pub mod spf;
