//! Prints the figures of `mxaudit explain` on the development corpus, as the
//! Markdown that docs/explain.md carries between its figure markers.
//!
//! ```sh
//! cargo run -p mxaudit-bounce --example corpus_figures                 # print
//! cargo run -p mxaudit-bounce --example corpus_figures -- --mismatches # and what differs
//! cargo run -p mxaudit-bounce --example corpus_figures -- --write docs/explain.md
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use mxaudit_bounce::Rules;
use mxaudit_bounce::corpus;

const START: &str = "<!-- corpus figures: start (crates/bounce/examples/corpus_figures.rs) -->";
const END: &str = "<!-- corpus figures: end -->";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/bounces");
    let rules = match Rules::builtin() {
        Ok(r) => r,
        Err(e) => {
            println!("rules: {e}");
            return ExitCode::FAILURE;
        }
    };
    let score = match corpus::score_dir(&root, &rules) {
        Ok(s) => s,
        Err(e) => {
            println!("corpus: {e}");
            return ExitCode::FAILURE;
        }
    };
    let md = corpus::markdown(&score);
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let Some(path) = args.get(i + 1) else {
            println!("--write needs a file");
            return ExitCode::FAILURE;
        };
        let doc = match std::fs::read_to_string(path) {
            Ok(d) => d,
            Err(e) => {
                println!("{path}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let (Some(s), Some(e)) = (doc.find(START), doc.find(END)) else {
            println!("{path}: no figure markers");
            return ExitCode::FAILURE;
        };
        let new = format!("{}{START}\n{md}{}", &doc[..s], &doc[e..]);
        if let Err(e) = std::fs::write(path, new) {
            println!("{path}: {e}");
            return ExitCode::FAILURE;
        }
    } else {
        print!("{md}");
    }
    if args.iter().any(|a| a == "--mismatches") {
        println!(
            "\n{} messages differ from their expectation:",
            score.mismatches.len()
        );
        for m in &score.mismatches {
            println!("  {m}");
        }
    }
    ExitCode::SUCCESS
}
