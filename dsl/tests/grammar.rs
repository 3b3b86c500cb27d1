//! The grammar on its own: every example parses, bad input is located, nothing panics.
//! (Name resolution and checks are the compiler's: compiler/tests/language.rs.)

use leadscore_dsl::diagnostic::{render, Style};
use proptest::prelude::*;
use std::path::Path;

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rules"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_example_parses() {
    let files = examples();
    assert!(files.len() >= 5, "{files:?}");
    for (name, src) in files {
        if let Err(d) = leadscore_dsl::parse(&src) {
            panic!("{name}:\n{}", render(&d, &name, &src, Style::Short, false));
        }
    }
}

#[test]
fn a_syntax_error_is_located_at_its_line_and_column() {
    let src = "grade A when score >= 50\nwhen country in tier1 ad 30\ngrade C otherwise\n";
    let diags = leadscore_dsl::parse(src).unwrap_err();
    let short = render(&diags, "r.rules", src, Style::Short, false);
    assert!(short.starts_with("r.rules:2:"), "{short}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsing_any_string_never_panics(s in ".{0,300}") {
        let _ = leadscore_dsl::parse(&s);
    }

    /// Any prefix of a real file: an answer (a tree or located diagnostics), never a panic.
    #[test]
    fn parsing_a_cut_example_never_panics(i in 0usize..5, cut in 0usize..4000) {
        let files = examples();
        let src = &files[i % files.len()].1;
        let mut end = cut.min(src.len());
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        if let Err(d) = leadscore_dsl::parse(&src[..end]) {
            prop_assert!(!d.is_empty());
        }
    }
}
