//! The `leadscore` binary: exit codes, files written, messages on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leadscore-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn check_exit_codes() {
    let ok = leadscore(&[
        "check",
        "examples/001-zoho.rules",
        "tests/data/ok/contract.rules",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let out = text(&ok.stdout);
    assert!(out.contains("ruleset \"zoho-foreign-trade\""), "{out}");
    assert!(
        out.contains("engagement") && out.contains("max         60  (range 0..60)"),
        "{out}"
    );

    let bad = leadscore(&["check", "tests/data/err/02-unknown-set.rules"]);
    assert_eq!(bad.status.code(), Some(1));
    let err = text(&bad.stderr);
    assert!(err.contains("02-unknown-set.rules:2:17"), "{err}");
    assert!(err.contains("did you mean `tier1`?"), "{err}");

    let missing = leadscore(&["check", "no/such/file.rules"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("cannot read no/such/file.rules"));

    let usage = leadscore(&["check"]);
    assert_eq!(usage.status.code(), Some(2));
    let usage = leadscore(&["frobnicate"]);
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn check_reports_every_file_and_fails_if_any_fails() {
    let out = leadscore(&[
        "check",
        "--diagnostics",
        "short",
        "tests/data/err/01-typo-keyword.rules",
        "examples/000-scorecard.rules",
        "tests/data/err/03-missing-otherwise.rules",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("01-typo-keyword.rules:2:23: error[E0001]"),
        "{err}"
    );
    assert!(
        err.contains("03-missing-otherwise.rules:3:1: error[E0401]"),
        "{err}"
    );
    assert!(text(&out.stdout).contains("000-scorecard.rules: ok"));
}

#[test]
fn compile_then_disasm_the_program_file() {
    let lsb = tmp("zoho.lsb");
    let out = leadscore(&[
        "compile",
        "examples/001-zoho.rules",
        "-o",
        lsb.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bytes = std::fs::read(&lsb).unwrap();
    assert_eq!(&bytes[..4], b"LSBC");

    let from_lsb = leadscore(&["disasm", lsb.to_str().unwrap()]);
    let from_src = leadscore(&["disasm", "examples/001-zoho.rules"]);
    assert_eq!(from_lsb.status.code(), Some(0));
    assert_eq!(text(&from_lsb.stdout), text(&from_src.stdout));
    assert!(text(&from_lsb.stdout).contains("; when title contains any word deciders"));

    // A corrupted program is refused with a reason, not a crash.
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    let corrupt = tmp("corrupt.lsb");
    std::fs::write(&corrupt, &bad).unwrap();
    let out = leadscore(&["disasm", corrupt.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("corrupt"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn compile_refuses_broken_rules_and_writes_nothing() {
    let out_path = tmp("never.lsb");
    let out = leadscore(&[
        "compile",
        "tests/data/err/16-expires-without-max.rules",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!Path::new(&out_path).exists());
    assert!(text(&out.stderr).contains("`expires after` needs `max`"));
}
