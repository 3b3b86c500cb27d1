//! The marketer-facing guides and their Chinese twins (docs/zh/) stay in step: every
//! section of an English guide has its twin section (each Chinese heading is followed by
//! `<!-- en: THE ENGLISH HEADING -->`), no Chinese section names one the English guide no
//! longer has, every ```rules example in either compiles without errors, and
//! README.zh-CN.md starts with README.md's two commands.

use std::path::Path;

const GUIDES: &[&str] = &["language.md", "rules-ci.md", "backtest.md", "desk.md"];

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The lines outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

fn headings(text: &str) -> Vec<String> {
    prose(text)
        .into_iter()
        .filter(|(_, l)| l.starts_with('#'))
        .map(|(_, l)| l.trim_start_matches('#').trim().to_string())
        .collect()
}

/// The English headings a Chinese guide's sections name, each right after its heading.
fn twins(path: &str, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (n, line) in prose(text) {
        if !line.starts_with('#') {
            continue;
        }
        let next = lines.get(n).copied().unwrap_or("");
        let en = next
            .strip_prefix("<!-- en: ")
            .and_then(|r| r.strip_suffix(" -->"))
            .unwrap_or_else(|| {
                panic!(
                    "{path}:{}: a heading without `<!-- en: … -->` on the next line",
                    n + 1
                )
            });
        out.push(en.to_string());
    }
    out
}

#[test]
fn every_english_section_has_its_chinese_twin() {
    for guide in GUIDES {
        let en = headings(&read(&format!("docs/{guide}")));
        let zh_path = format!("docs/zh/{guide}");
        let zh = twins(&zh_path, &read(&zh_path));
        let missing: Vec<&String> = en.iter().filter(|h| !zh.contains(h)).collect();
        assert!(
            missing.is_empty(),
            "{zh_path} lacks the sections of docs/{guide}: {missing:#?}"
        );
        let stale: Vec<&String> = zh.iter().filter(|h| !en.contains(h)).collect();
        assert!(
            stale.is_empty(),
            "{zh_path} names sections docs/{guide} no longer has: {stale:#?}"
        );
        assert_eq!(en, zh, "{zh_path}: the sections are in another order");
    }
}

/// The ```rules blocks of a file, with the line each starts on.
fn examples(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        match &mut current {
            None if line.trim_end() == "```rules" => current = Some((i + 2, String::new())),
            Some(_) if line.starts_with("```") => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn the_guides_examples_compile() {
    let mut compiled = 0;
    for guide in GUIDES {
        for path in [format!("docs/{guide}"), format!("docs/zh/{guide}")] {
            for (line, src) in examples(&read(&path)) {
                if let Err(diags) = leadscore_compiler::compile(&src, "example") {
                    let errors: Vec<String> = diags
                        .iter()
                        .filter(|d| d.is_error())
                        .map(|d| format!("{}: {}", d.code, d.message))
                        .collect();
                    panic!("{path}:{line}: the example does not compile: {errors:#?}");
                }
                compiled += 1;
            }
        }
    }
    assert!(compiled >= 6, "{compiled} examples");
}

#[test]
fn the_chinese_readme_starts_with_the_same_two_commands() {
    let first_block = |text: &str| -> String {
        let start = text.find("```sh\n").expect("a ```sh block") + 6;
        let end = start + text[start..].find("```").unwrap();
        text[start..end].to_string()
    };
    let en = first_block(&read("README.md"));
    assert_eq!(first_block(&read("README.zh-CN.md")), en);
    assert_eq!(en.lines().count(), 2, "{en}");
}
