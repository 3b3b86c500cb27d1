//! The rules language end to end: diagnostics for bad files, disassembly of good ones.
//! Snapshots show the input and the output (colour off).

use leadscore_dsl::diagnostic::{render, Style};
use leadscore_runtime::bytecode::disassemble;
use std::path::Path;

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The rendered result of compiling a file: its diagnostics, or "ok".
fn check(path: &Path) -> (String, bool) {
    let src = std::fs::read_to_string(path).unwrap();
    let file = name(path);
    match leadscore_compiler::compile(&src, "test") {
        Ok(c) => (render(&c.warnings, &file, &src, Style::Rich, false), true),
        Err(diags) => {
            let rich = render(&diags, &file, &src, Style::Rich, false);
            let short = render(&diags, &file, &src, Style::Short, false);
            (format!("{short}\n{rich}"), false)
        }
    }
}

#[test]
fn bad_rules_files_report_located_diagnostics() {
    insta::glob!("data/err/*.rules", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        let (out, ok) = check(path);
        assert!(!ok, "{} should not compile", path.display());
        // Every error is located as file:line:col.
        assert!(out.contains(&format!("{}:", name(path))), "{out}");
        insta::assert_snapshot!(format!("{src}\n----- diagnostics -----\n{out}"));
    });
}

#[test]
fn corpus_covers_at_least_25_error_kinds() {
    let mut codes = std::collections::BTreeSet::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/err");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let src = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        files += 1;
        if let Err(diags) = leadscore_compiler::compile(&src, "t") {
            codes.extend(diags.iter().map(|d| d.code));
        }
    }
    assert!(files >= 25, "only {files} bad files");
    assert!(
        codes.len() >= 25,
        "only {} distinct codes: {codes:?}",
        codes.len()
    );
}

fn rules_files() -> Vec<std::path::PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["../examples", "../examples/peers", "tests/data/ok"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "rules") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_example_and_the_contract_compile_without_warnings() {
    let files = rules_files();
    assert!(files.len() >= 6);
    for path in files {
        let (out, ok) = check(&path);
        assert!(ok, "{}:\n{out}", path.display());
        assert!(out.is_empty(), "{} has warnings:\n{out}", path.display());
    }
}

#[test]
fn disassembly_of_every_example() {
    for path in rules_files() {
        let src = std::fs::read_to_string(&path).unwrap();
        let program = leadscore_compiler::compile(&src, "test").unwrap().program;
        insta::assert_snapshot!(format!("disasm-{}", name(&path)), disassemble(&program));
    }
}

#[test]
fn marketer_facing_messages() {
    let msg = |src: &str| {
        let diags = leadscore_compiler::compile(src, "t").unwrap_err();
        render(&diags, "rules.ls", src, Style::Short, false)
    };
    let g = "grade A when score >= 50\ngrade C otherwise\n";
    let typo = msg(&format!("when country = \"US\" ad 30\n{g}"));
    assert!(
        typo.contains("rules.ls:1:21: error[E0001]: expected `add`"),
        "{typo}"
    );
    assert!(
        typo.contains("found `ad`") && typo.contains("did you mean `add`?"),
        "{typo}"
    );
    let set = msg(&format!(
        "set tier1 = [\"US\"]\nwhen country in teir1 add 30\n{g}"
    ));
    assert!(
        set.contains("rules.ls:2:17: error[E0201]: unknown set `teir1`"),
        "{set}"
    );
    assert!(set.contains("did you mean `tier1`?"), "{set}");
    let other = msg("when country = \"US\" add 30\ngrade A when score >= 50\n");
    assert!(other.contains("missing `otherwise` grade"), "{other}");
    assert!(other.contains("grade B otherwise"), "{other}");
}

#[test]
fn case_folding_happens_at_compile_time() {
    let src = "set s = [\"Straße\", \"MOQ\", \"预算\", \"moq\"]\nwhen x in s add 1\ngrade A when score >= 1\ngrade C otherwise\n";
    let p = leadscore_compiler::compile(src, "t").unwrap().program;
    assert_eq!(p.sets[0].items, vec!["moq", "strasse", "预算"]);
}

#[test]
fn rule_ids_are_stable_across_unrelated_edits() {
    let a = "when country = \"US\" add 30\nwhen email.opened add 5 each\ngrade A when score >= 50\ngrade C otherwise\n";
    let b = "# a comment\nwhen title contains \"ceo\" add 10\nwhen   country = \"US\"   add 30\nwhen email.opened add 5 each\ngrade A when score >= 40\ngrade C otherwise\n";
    let pa = leadscore_compiler::compile(a, "t").unwrap().program;
    let pb = leadscore_compiler::compile(b, "t").unwrap().program;
    let ids = |p: &leadscore_runtime::bytecode::Program| -> Vec<u32> {
        p.field_rules
            .iter()
            .map(|r| r.id.0)
            .chain(p.event_rules.iter().map(|r| r.id.0))
            .collect()
    };
    let (ia, ib) = (ids(&pa), ids(&pb));
    assert!(
        ib.contains(&ia[0]) && ib.contains(&ia[1]),
        "{ia:?} vs {ib:?}"
    );
    assert_ne!(pa.hash(), pb.hash());
}
