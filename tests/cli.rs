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

/// A path in this run's own directory (process ids repeat across runs; the clock does not).
fn tmp(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        std::env::temp_dir().join(format!(
            "leadscore-cli-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ))
    });
    std::fs::create_dir_all(dir).unwrap();
    dir.join(name)
}

#[test]
fn check_exit_codes() {
    let ok = leadscore(&[
        "check",
        "examples/001-zoho.rules",
        "compiler/tests/data/ok/contract.rules",
    ]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    let out = text(&ok.stdout);
    assert!(out.contains("ruleset \"zoho-foreign-trade\""), "{out}");
    assert!(
        out.contains("engagement") && out.contains("max         60  (range 0..60)"),
        "{out}"
    );

    let bad = leadscore(&["check", "compiler/tests/data/err/02-unknown-set.rules"]);
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
        "compiler/tests/data/err/01-typo-keyword.rules",
        "examples/000-scorecard.rules",
        "compiler/tests/data/err/03-missing-otherwise.rules",
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
        "compiler/tests/data/err/16-expires-without-max.rules",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!Path::new(&out_path).exists());
    assert!(text(&out.stderr).contains("`expires after` needs `max`"));
}

fn examples() -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
            .unwrap()
            .filter_map(|e| {
                let p = e.unwrap().path();
                let name = p.file_name()?.to_str()?.to_string();
                name.strip_suffix(".rules").map(str::to_string)
            })
            .collect();
    v.sort();
    v
}

#[test]
fn score_json_of_every_example() {
    for ex in examples() {
        let rules = format!("examples/{ex}.rules");
        let events = format!("examples/{ex}.events.jsonl");
        let out = leadscore(&[
            "score",
            &rules,
            "--events",
            &events,
            "--now",
            "2026-11-20T00:00:00Z",
            "--format",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        // One JSON object per line, sorted by lead key, in DESIGN.md's shape.
        let mut leads = Vec::new();
        for line in stdout.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            // DESIGN.md's keys, and `open_questions` where the rules `ask` (seed 004).
            let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
            let mut want = vec![
                "contributions",
                "grade",
                "lead",
                "score",
                "scores",
                "tags",
                "transitions",
            ];
            if ex.starts_with("004") {
                want.insert(3, "open_questions");
            }
            assert_eq!(keys, want, "{ex}");
            let sum: i64 = v["contributions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["points"].as_i64().unwrap())
                .sum();
            assert_eq!(
                sum,
                v["score"].as_i64().unwrap(),
                "contributions add up: {line}"
            );
            leads.push(v["lead"].as_str().unwrap().to_string());
        }
        let mut sorted = leads.clone();
        sorted.sort();
        assert_eq!(leads, sorted);
        insta::assert_snapshot!(format!("score-{ex}"), stdout);
    }
}

/// Runs `leadscore test RULES` on its cases file beside it; every case must pass.
/// Returns how many did.
fn passes_its_cases(rules: &str) -> usize {
    let cases = format!("{}.cases.toml", rules.strip_suffix(".rules").unwrap());
    let out = leadscore(&["test", rules, &cases]);
    let summary = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{rules}:\n{summary}");
    assert!(summary.contains(" passed, 0 failed"), "{rules}:\n{summary}");
    summary
        .lines()
        .last()
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn every_example_passes_its_cases() {
    for ex in examples() {
        passes_its_cases(&format!("examples/{ex}.rules"));
    }
}

/// The scoring models of Pardot, HubSpot, Marketo, Mautic and Zoho, written in the
/// language (examples/peers/), each pass their cases.
#[test]
fn every_peer_model_passes_its_cases() {
    for peer in ["pardot", "hubspot", "marketo", "mautic", "zoho"] {
        let passed = passes_its_cases(&format!("examples/peers/{peer}.rules"));
        assert!(passed >= 3, "{peer}: {passed} cases");
    }
}

#[test]
fn a_failing_case_prints_a_diff_and_exits_1() {
    let cases = tmp("wrong.cases.toml");
    std::fs::write(
        &cases,
        r#"
[[case]]
name = "wrong on purpose"
now = "2026-11-20T00:00:00Z"
expect = { score = 99, grade = "A" }
[[case.event]]
type = "lead.created"
at = "2026-11-01T10:00:00Z"
attributes = { country = "MX", title = "Admin Assistant" }
"#,
    )
    .unwrap();
    let out = leadscore(&["test", "examples/001-zoho.rules", cases.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAIL"), "{stdout}");
    assert!(stdout.contains("score: expected 99, got 25"), "{stdout}");
    assert!(stdout.contains("grade: expected A, got C"), "{stdout}");
    assert!(
        stdout.contains("+20 fit: when country in tier2 add 20 to fit"),
        "{stdout}"
    );
    assert!(stdout.trim_end().ends_with("0 passed, 1 failed"));
}

#[test]
fn a_case_scores_one_lead_and_refuses_unknown_keys() {
    // docs/language.md, "Rule test cases": events naming two leads are refused (only one
    // would be checked), and a misspelled key is an error rather than a check never run.
    let two = tmp("two-leads.cases.toml");
    std::fs::write(
        &two,
        r#"
[[case]]
name = "two people"
now = "2026-11-20T00:00:00Z"
expect = { score = 0 }
[[case.event]]
lead = "a@x.com"
type = "email.opened"
at = "2026-11-01T10:00:00Z"
[[case.event]]
lead = "B@x.com "
type = "email.opened"
at = "2026-11-01T11:00:00Z"
"#,
    )
    .unwrap();
    let out = leadscore(&["test", "examples/001-zoho.rules", two.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("case \"two people\": its events name 2 leads (a@x.com, b@x.com)"),
        "{err}"
    );
    let typo = tmp("typo.cases.toml");
    std::fs::write(
        &typo,
        "[[case]]\nname = \"t\"\nnow = \"2026-11-20T00:00:00Z\"\nexpect = { scroe = 1 }\n",
    )
    .unwrap();
    let out = leadscore(&["test", "examples/001-zoho.rules", typo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown field `scroe`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn bad_events_are_named_by_line_and_field() {
    let events = tmp("bad.jsonl");
    std::fs::write(
        &events,
        "{\"id\":\"1\",\"lead\":\"a\",\"type\":\"t\",\"at\":\"2026-11-01T10:00:00Z\"}\n{\"lead\":\"a\",\"type\":\"t\",\"at\":\"2026-11-01T10:00:00Z\"}\nnot json\n",
    )
    .unwrap();
    let out = leadscore(&[
        "score",
        "examples/001-zoho.rules",
        "--events",
        events.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.jsonl:2: id: is missing"), "{err}");
    assert!(err.contains("bad.jsonl:3: invalid JSON"), "{err}");
}

#[test]
fn leads_from_a_spreadsheet() {
    let csv = tmp("leads.csv");
    std::fs::write(
        &csv,
        "email,source,website,country,reply_hours,message\nbuyer@acme.de,website,acme.de,DE,3,\"Need a quote. Budget ok. Model X. WeChat ok.\"\nfoo@gmail.com,b2b,,IN,,hi\n",
    )
    .unwrap();
    let out = leadscore(&[
        "score",
        "examples/000-scorecard.rules",
        "--leads",
        csv.to_str().unwrap(),
        "--now",
        "2026-11-20T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // website 10 + site 10 + company mail 10 + spec 15 + budget 10 + quote 5
    // + 4 sentences 10 + reply 10 + DE 10 + WeChat 5
    assert_eq!(rows[0]["lead"], "buyer@acme.de");
    assert_eq!(rows[0]["score"], 95);
    assert_eq!(rows[0]["grade"], "deep_follow_up");
    assert_eq!(rows[1]["score"], 3);
    let table = leadscore(&[
        "score",
        "examples/000-scorecard.rules",
        "--leads",
        csv.to_str().unwrap(),
        "--now",
        "2026-11-20T00:00:00Z",
    ]);
    let t = text(&table.stdout);
    assert!(t.starts_with("lead"), "{t}");
    assert!(
        t.contains("buyer@acme.de") && t.contains("deep_follow_up"),
        "{t}"
    );
}

#[test]
fn test_snapshots_fail_on_a_difference_and_update_rewrites_them() {
    let dir = tmp("snapshots");
    let dir_s = dir.to_str().unwrap();
    let rules = tmp("snap.rules");
    let rules_s = rules.to_str().unwrap();
    let cases = "examples/002-explicit-implicit.cases.toml";
    std::fs::copy("examples/002-explicit-implicit.rules", &rules).unwrap();

    let usage = leadscore(&["test", rules_s, cases, "--update"]);
    assert_eq!(usage.status.code(), Some(2));
    assert!(text(&usage.stderr).contains("--snapshots DIR"));

    let missing = leadscore(&["test", rules_s, cases, "--snapshots", dir_s]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stdout)
        .contains("snap.disasm.snap: missing (write it with `leadscore test --update`)"));

    let wrote = leadscore(&["test", rules_s, cases, "--snapshots", dir_s, "--update"]);
    assert_eq!(wrote.status.code(), Some(0), "{}", text(&wrote.stdout));
    assert!(text(&wrote.stdout).contains("wrote snapshot"));
    let scores =
        std::fs::read_to_string(dir.join("002-explicit-implicit.cases.scores.snap")).unwrap();
    assert!(
        scores.contains("## 60 is still MQL\nscore 60  grade MQL  tags []\n"),
        "{scores}"
    );

    let same = leadscore(&["test", rules_s, cases, "--snapshots", dir_s]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same.stdout));

    // A comment changes the source hash but nothing a reviewer reads.
    let src = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, format!("{src}# reviewed in November\n")).unwrap();
    let commented = leadscore(&["test", rules_s, cases, "--snapshots", dir_s]);
    assert_eq!(
        commented.status.code(),
        Some(0),
        "{}",
        text(&commented.stdout)
    );
    std::fs::write(&rules, &src).unwrap();

    // A changed rule fails with the listing's diff and the moved results.
    std::fs::write(
        &rules,
        src.replace("add 20 to implicit", "add 25 to implicit"),
    )
    .unwrap();
    let changed = leadscore(&["test", rules_s, cases, "--snapshots", dir_s]);
    assert_eq!(changed.status.code(), Some(1));
    let out = text(&changed.stdout);
    assert!(
        out.contains("-    rule b9ee8e6d line 24: implicit +20"),
        "{out}"
    );
    assert!(
        out.contains("+      ; when demo.requested add 25 to implicit"),
        "{out}"
    );
    assert!(
        out.contains("-score 60  grade MQL  tags []\n+score 65  grade SQL  tags []"),
        "{out}"
    );
    let updated = leadscore(&["test", rules_s, cases, "--snapshots", dir_s, "--update"]);
    // The hand-worked cases still fail: --update rewrites snapshots, never expectations.
    assert_eq!(updated.status.code(), Some(1));
    assert!(text(&updated.stdout).contains("updated snapshot"));
}

/// examples/rules-repo/ci.sh as a team runs it: clean on the rules in use; a raised
/// threshold fails the snapshots and the case that pinned the old one; once the case and
/// the snapshots are updated it passes, and the backtest shows who moves.
#[test]
fn the_example_rules_repository_ci_catches_and_reports_a_threshold_change() {
    let repo = tmp("rules-repo");
    let _ = std::fs::remove_dir_all(&repo);
    for sub in ["rules", "cases", "snapshots", "history"] {
        std::fs::create_dir_all(repo.join(sub)).unwrap();
        for f in std::fs::read_dir(Path::new("examples/rules-repo").join(sub)).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, repo.join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    std::fs::copy("examples/rules-repo/ci.sh", repo.join("ci.sh")).unwrap();
    let in_use = tmp("in-use.rules");
    std::fs::copy(repo.join("rules/scoring.rules"), &in_use).unwrap();
    let ci = || {
        Command::new("bash")
            .arg(repo.join("ci.sh"))
            .env("LEADSCORE", env!("CARGO_BIN_EXE_leadscore"))
            .env("BASE_RULES", &in_use)
            .env("REPORT", tmp("backtest.html"))
            .env("NO_COLOR", "1")
            .output()
            .expect("runs")
    };
    let clean = ci();
    assert_eq!(
        clean.status.code(),
        Some(0),
        "{}{}",
        text(&clean.stdout),
        text(&clean.stderr)
    );
    assert!(text(&clean.stdout).contains("0 lead(s) change grade"));

    let rules = repo.join("rules/scoring.rules");
    let src = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(&rules, src.replace(">= 70", ">= 105")).unwrap();
    let failed = ci();
    assert_eq!(failed.status.code(), Some(1));
    let out = text(&failed.stdout);
    assert!(
        out.contains("-    0108  num       70\n+    0108  num       105"),
        "{out}"
    );
    assert!(
        out.contains("FAIL cases/scoring.cases.toml: a US purchasing manager"),
        "{out}"
    );

    let cases = repo.join("cases/scoring.cases.toml");
    let c = std::fs::read_to_string(&cases).unwrap();
    std::fs::write(
        &cases,
        c.replace(
            "expect = { score = 70, grade = \"A\", tags = [\"HOT\"] }",
            "expect = { score = 70, grade = \"B\", tags = [] }",
        ),
    )
    .unwrap();
    let update = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args([
            "test",
            "rules/scoring.rules",
            "cases/scoring.cases.toml",
            "--snapshots",
            "snapshots",
            "--update",
        ])
        .current_dir(&repo)
        .output()
        .unwrap();
    assert_eq!(update.status.code(), Some(0), "{}", text(&update.stdout));
    let passed = ci();
    let out = text(&passed.stdout);
    assert_eq!(
        passed.status.code(),
        Some(0),
        "{out}{}",
        text(&passed.stderr)
    );
    assert!(
        out.contains("198 lead(s) change grade\n  A -> B: 198"),
        "{out}"
    );
    let page = std::fs::read_to_string(tmp("backtest.html")).unwrap();
    assert!(page.contains("198 lead(s) change grade"));
}

/// `leadscore import` stores a history and its outcomes as events; the backtest over the
/// database then equals the backtest over the files, and importing again stores nothing.
#[test]
fn import_stores_history_and_outcomes_once_and_backtest_reads_them_back() {
    let db = tmp("import.db");
    let _ = std::fs::remove_file(&db);
    let db_s = db.to_str().unwrap();
    let rules = "examples/rules-repo/rules/scoring.rules";
    let (events, outcomes) = (
        "examples/rules-repo/history/events.jsonl",
        "examples/rules-repo/history/outcomes.csv",
    );
    let lines = |p: &str| std::fs::read_to_string(p).unwrap().lines().count();
    let total = lines(events) + lines(outcomes) - 1;

    let bad = tmp("bad-outcomes.csv");
    std::fs::write(&bad, "lead,outcome\na@x.test,won\nb@x.test,sold\n").unwrap();
    let refused = leadscore(&[
        "import",
        rules,
        "--db",
        db_s,
        "--events",
        events,
        "--outcomes",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("bad-outcomes.csv:3: outcome `sold`"),
        "{}",
        text(&refused.stderr)
    );
    assert!(!db.exists(), "nothing stored when any row is bad");

    let args = [
        "import",
        rules,
        "--db",
        db_s,
        "--events",
        events,
        "--outcomes",
        outcomes,
    ];
    let first = leadscore(&args);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(
        text(&first.stdout),
        format!("{total} event(s) stored, 0 already stored\n")
    );
    let again = leadscore(&args);
    assert_eq!(
        text(&again.stdout),
        format!("0 event(s) stored, {total} already stored\n")
    );

    let report = |source: &[&str]| {
        let mut a = vec![
            "backtest",
            rules,
            "--as-of",
            "2026-09-01T00:00:00Z",
            "--format",
            "json",
        ];
        a.extend_from_slice(source);
        let out = leadscore(&a);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let from_files = report(&["--events", events, "--outcomes", outcomes]);
    let from_db = report(&["--db", db_s]);
    for k in ["leads", "won", "base_rate", "events_after_as_of"] {
        assert_eq!(from_files[k], from_db[k], "{k}");
    }
    assert_eq!(
        from_files["versions"][0]["grades"],
        from_db["versions"][0]["grades"]
    );
}

/// Output piped into a reader that stops early (`| head`) ends the command quietly, as
/// command-line tools do: no panic, no error message.
#[cfg(unix)]
#[test]
fn a_closed_output_pipe_ends_the_command_quietly() {
    use std::io::BufRead;
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args([
            "score",
            "examples/rules-repo/rules/scoring.rules",
            "--events",
            "examples/rules-repo/history/events.jsonl",
            "--format",
            "json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"lead\":\"buyer"), "{first}");
    // The reader is gone; the rest of the output (hundreds of KB) has nowhere to go.
    let out = child.wait_with_output().unwrap();
    const SIGPIPE: i32 = 13;
    assert_eq!(out.status.signal(), Some(SIGPIPE), "{:?}", out.status);
    assert_eq!(text(&out.stderr), "");
}

/// `leadscore merge` on the SQLite file: two keys of one person become one lead, keys
/// normalised as `serve`'s configuration says; the merged key exports and erases as its
/// lead.
#[test]
fn merge_export_and_erase_on_the_file() {
    let db = tmp("merge.db");
    let db_s = db.to_str().unwrap();
    let events = tmp("merge.jsonl");
    // Days before now: merge reads at the real clock, and the rules take 10 off a lead
    // inactive for 30 days, so fixed dates would change the answer as the calendar moves.
    let ago = |days: i64| {
        (chrono::Utc::now() - chrono::Duration::days(days))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    std::fs::write(
        &events,
        format!(
            r#"{{"id":"1","lead":"Ann.Lee+fair@gmail.com","type":"email.opened","at":"{}","attributes":{{"country":"DE"}}}}
{{"id":"2","lead":"ann@lee-trading.de","type":"email.opened","at":"{}"}}
{{"id":"3","lead":"annlee@googlemail.com","type":"email.clicked","at":"{}"}}
"#,
            ago(3),
            ago(2),
            ago(1)
        ),
    )
    .unwrap();
    let config = tmp("merge.toml");
    std::fs::write(
        &config,
        "[keys]\nstrip_plus_tags = true\ngmail_dots = true\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let rules = "examples/001-zoho.rules";
    let out = leadscore(&[
        "import",
        rules,
        "--db",
        db_s,
        "--events",
        events.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = leadscore(&[
        "merge",
        rules,
        "ANN.LEE@gmail.com",
        "ann@lee-trading.de",
        "--db",
        db_s,
        "--config",
        cfg,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "merged `ann@lee-trading.de` into `annlee@gmail.com`: 1 event(s) and 1 transition(s) moved; now B (50)\n"
    );
    // Again: nothing moves. Into itself: refused.
    let again = leadscore(&[
        "merge",
        rules,
        "annlee@gmail.com",
        "ann@lee-trading.de",
        "--db",
        db_s,
    ]);
    assert!(
        text(&again.stdout).contains("0 event(s)"),
        "{}",
        text(&again.stdout)
    );
    let same = leadscore(&["merge", rules, "a@x.com", "A@x.com", "--db", db_s]);
    assert_eq!(same.status.code(), Some(1));
    assert!(text(&same.stderr).contains("cannot be merged into itself"));
    // The old key exports its lead, with the key it merged.
    let out = leadscore(&["export", rules, "ann@lee-trading.de", "--db", db_s]);
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(export["lead"]["lead"], "annlee@gmail.com");
    assert_eq!(export["merged"], serde_json::json!(["ann@lee-trading.de"]));
    assert_eq!(export["events"].as_array().unwrap().len(), 3);
    // Erasing the old key erases the person.
    let out = leadscore(&["erase", "ann@lee-trading.de", "--db", db_s]);
    assert_eq!(
        text(&out.stdout),
        "erased `annlee@gmail.com`: its state, 3 event(s) and 3 transition(s), with 1 key(s) that had joined it (visitors, merged leads)\n"
    );
    let out = leadscore(&["export", rules, "annlee@gmail.com", "--db", db_s]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn ids_are_unique_per_lead_so_two_leads_may_send_the_same_id() {
    // a and b both send e0; b's e1 repeats within b and counts once; c's only id is one a
    // also used: c is still scored.
    let rules = tmp("ids.rules");
    std::fs::write(
        &rules,
        "when email.opened add 10 each\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let events = tmp("ids.jsonl");
    let line = |id: &str, lead: &str| {
        format!("{{\"id\":\"{id}\",\"lead\":\"{lead}\",\"type\":\"email.opened\",\"at\":\"2026-11-01T10:00:00Z\"}}\n")
    };
    let body = [
        line("e0", "a"),
        line("e1", "a"),
        line("e0", "b"),
        line("e1", "b"),
        line("e1", "b"),
        line("e0", "c"),
    ]
    .concat();
    std::fs::write(&events, body).unwrap();
    let out = leadscore(&[
        "score",
        rules.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--now",
        "2026-11-02T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let leads: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let scores: Vec<(String, i64)> = leads
        .iter()
        .map(|l| {
            (
                l["lead"].as_str().unwrap().to_string(),
                l["score"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        scores,
        [("a".into(), 20), ("b".into(), 20), ("c".into(), 10)],
        "{leads:#?}"
    );
}

#[test]
fn the_score_table_aligns_by_display_width() {
    // Columns two spaces apart, numbers right-aligned; a CJK character takes two columns,
    // so the rows line up on a terminal whatever script the keys are in.
    let rules = tmp("table.rules");
    std::fs::write(
        &rules,
        "when email.opened add 10 each\nwhen email.bounced subtract 5\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let events = tmp("table.jsonl");
    std::fs::write(
        &events,
        r#"{"id":"1","lead":"王@例子.cn","type":"email.opened","at":"2026-11-01T10:00:00Z"}
{"id":"2","lead":"王@例子.cn","type":"email.opened","at":"2026-11-02T10:00:00Z"}
{"id":"3","lead":"bob@x.com","type":"email.bounced","at":"2026-11-02T10:00:00Z"}
"#,
    )
    .unwrap();
    let out = leadscore(&[
        "score",
        rules.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--now",
        "2026-11-03T00:00:00Z",
        "--format",
        "table",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "lead        score  grade  tags\n\
         bob@x.com      -5  B\n\
         王@例子.cn     20  A\n"
    );
}

#[test]
fn check_against_a_sample_warns_about_what_never_occurs_in_it() {
    let rules = tmp("sample.rules");
    std::fs::write(
        &rules,
        "when email.opend add 5 each\nwhen contry = \"DE\" add 10\nwhen page.viewed where pag = \"pricing\" add 20\nwhen email.opened add 1\nwhen title contains \"ceo\" add 3\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let sample = tmp("sample.jsonl");
    std::fs::write(
        &sample,
        r#"{"id":"1","lead":"a@x.com","type":"email.opened","at":"2026-11-01T10:00:00Z"}
{"id":"2","lead":"a@x.com","type":"page.viewed","at":"2026-11-01T10:01:00Z","props":{"page":"pricing"}}
{"id":"3","lead":"a@x.com","type":"lead.updated","at":"2026-11-01T10:02:00Z","attributes":{"country":"DE","title":"CEO"}}
{"id":"4","lead":"a@x.com","type":"deal.won","at":"2026-11-02T10:00:00Z"}
"#,
    )
    .unwrap();
    let (r, s) = (rules.to_str().unwrap(), sample.to_str().unwrap());
    let out = leadscore(&["check", r, "--events", s, "--diagnostics", "short"]);
    assert_eq!(out.status.code(), Some(0), "warnings do not fail the check");
    let err = text(&out.stderr);
    for want in [
        ":1:6: warning[W0201]: no event of type `email.opend` in the sample (did you mean `email.opened`? (1 event in the sample))",
        ":2:6: warning[W0202]: no event in the sample sets the attribute `contry` (did you mean `country`?)",
        ":3:24: warning[W0203]: no `page.viewed` event in the sample carries the prop `pag` (did you mean `page`?)",
        "warning[W0204]: no rule reads the sample's event type `deal.won` (1 event)",
        "checked against 4 events",
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    // lead.updated sets an attribute the rules read: it feeds them and is not reported.
    assert!(!err.contains("`lead.updated`"), "{err}");
    // Without a sample, none of this.
    let out = leadscore(&["check", r, "--diagnostics", "short"]);
    assert!(!text(&out.stderr).contains("W02"), "{}", text(&out.stderr));
}

/// Seed 004's follow-up list: the items a buyer has not made clear, with the question for
/// each, in the JSON and after the table.
#[test]
fn score_lists_each_lead_s_open_questions_in_json_and_after_the_table() {
    let args = [
        "score",
        "examples/004-clarity-checklist.rules",
        "--events",
        "examples/004-clarity-checklist.events.jsonl",
        "--now",
        "2026-11-20T00:00:00Z",
    ];
    let json = leadscore(&[&args[..], &["--format", "json"]].concat());
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let out = text(&json.stdout);
    let leads: Vec<serde_json::Value> = match serde_json::from_str::<serde_json::Value>(&out) {
        Ok(serde_json::Value::Array(a)) => a,
        _ => out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    };
    let five = leads
        .iter()
        .find(|l| l["lead"] == "lead-5@example.com")
        .expect("lead 5");
    let asked: Vec<(i64, &str)> = five["open_questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| (q["line"].as_i64().unwrap(), q["ask"].as_str().unwrap()))
        .collect();
    assert_eq!(asked.len(), 3, "{five}");
    assert_eq!(asked[0].0, 23);
    assert!(asked[0].1.contains("What material"), "{five}");
    assert!(five["open_questions"][0]["rule"]
        .as_str()
        .unwrap()
        .starts_with("when material = true add 1 ask"));
    let one = leads
        .iter()
        .find(|l| l["lead"] == "lead-1@example.com")
        .unwrap();
    assert_eq!(one["open_questions"], serde_json::json!([]));
    let table = leadscore(&args);
    let out = text(&table.stdout);
    let list = out.split("open questions\n").nth(1).expect(&out);
    assert_eq!(list.lines().count(), 1 + 5, "{out}");
    assert!(
        list.contains("lead-6@example.com    25  包装有什么要求?"),
        "{out}"
    );
    // Rules without `ask` print no such list and no key.
    let plain = leadscore(&[
        "score",
        "examples/001-zoho.rules",
        "--events",
        "examples/001-zoho.events.jsonl",
        "--format",
        "json",
    ]);
    assert!(!text(&plain.stdout).contains("open_questions"));
}

/// Long work shows a progress bar with rate and ETA on a terminal (here a pseudo-terminal
/// from `script`), and nothing when stderr is piped; `rescore`'s summary adds up to the
/// leads stored, each counted once.
#[test]
fn progress_on_a_terminal_and_quiet_when_piped() {
    let events = tmp("progress.jsonl");
    let lines: Vec<String> = (0..3000)
        .map(|i| {
            format!(
                r#"{{"id":"p{i}","lead":"l{}@acme.de","type":"email.opened","at":"2026-01-01T00:00:00Z"}}"#,
                i % 300
            )
        })
        .collect();
    std::fs::write(&events, lines.join("\n")).unwrap();
    let events = events.to_str().unwrap();
    let piped = leadscore(&[
        "score",
        "examples/001-zoho.rules",
        "--events",
        events,
        "--now",
        "2026-01-02T00:00:00Z",
        "--format",
        "json",
    ]);
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stderr), "", "nothing on a pipe");

    let db = tmp("progress.db");
    let db = db.to_str().unwrap();
    let import = leadscore(&[
        "import",
        "examples/001-zoho.rules",
        "--db",
        db,
        "--events",
        events,
    ]);
    assert!(import.status.success(), "{}", text(&import.stderr));
    assert!(
        !text(&import.stderr).contains("ETA"),
        "{}",
        text(&import.stderr)
    );
    let rescore = leadscore(&[
        "rescore",
        "examples/003-attribute-behaviour.rules",
        "--db",
        db,
        "--batch",
        "7",
    ]);
    assert!(rescore.status.success(), "{}", text(&rescore.stderr));
    assert_eq!(text(&rescore.stderr), "");
    let summary = text(&rescore.stdout);
    let numbers: Vec<usize> = summary
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert_eq!(
        numbers[0] + numbers[2],
        300,
        "rescored + current = leads: {summary}"
    );

    // On a terminal: the bar is drawn (and cleared when done).
    let cmd = format!(
        "{} score examples/001-zoho.rules --events {events} --now 2026-01-02T00:00:00Z --format json > /dev/null",
        env!("CARGO_BIN_EXE_leadscore")
    );
    let tty = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("script(1) from util-linux runs");
    assert!(tty.status.success(), "{}", text(&tty.stderr));
    let drawn = text(&tty.stdout);
    assert!(
        drawn.contains("reading") && drawn.contains("ETA"),
        "{drawn:?}"
    );
}

/// `check --diagnostics json`: one object per problem on stdout, with its place, help and
/// the suggestion's replacement text.
#[test]
fn diagnostics_as_json_lines() {
    let bad = tmp("bad-json.rules");
    std::fs::write(
        &bad,
        "set tier1 = [\"US\"]\nwhen country in teir1 add 30\nwehn x = 1 add 2\ngrade A when score >= 10\ngrade B otherwise\n",
    )
    .unwrap();
    let out = leadscore(&["check", bad.to_str().unwrap(), "--diagnostics", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let set = &lines[0];
    assert_eq!(set["code"], "E0201");
    assert_eq!(set["severity"], "error");
    assert_eq!(
        (set["line"].as_u64(), set["column"].as_u64()),
        (Some(2), Some(17))
    );
    assert_eq!(set["span"]["end_column"], 22);
    assert_eq!(set["suggestions"][0]["replacement"], "tier1");
    assert_eq!(set["file"], bad.to_str().unwrap());
    assert_eq!(lines[1]["code"], "E0001");
    assert_eq!(lines[1]["suggestions"][0]["replacement"], "when");
}

/// `fmt --check` names a file out of layout with a diff (exit 1); `fmt` rewrites it, and
/// then `--check` passes; a file with syntax errors is left alone.
#[test]
fn fmt_rewrites_and_checks() {
    let f = tmp("fmt.rules");
    let messy = "set t=[\"US\",\"DE\"]\nwhen country in t   add 30\nwhen email.opened add 5 each\ngrade A when score >= 30\ngrade B otherwise\n";
    std::fs::write(&f, messy).unwrap();
    let path = f.to_str().unwrap();
    let check = leadscore(&["fmt", "--check", path]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stdout).contains("+set t = [\"US\", \"DE\"]"),
        "{}",
        text(&check.stdout)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        messy,
        "--check changes nothing"
    );
    assert!(leadscore(&["fmt", path]).status.success());
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "set t = [\"US\", \"DE\"]\nwhen country in t add 30\nwhen email.opened add 5 each\ngrade A when score >= 30\ngrade B otherwise\n"
    );
    assert!(leadscore(&["fmt", "--check", path]).status.success());
    let broken = tmp("fmt-broken.rules");
    std::fs::write(&broken, "wehn x = 1 add 2\n").unwrap();
    let out = leadscore(&["fmt", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "wehn x = 1 add 2\n"
    );
}

/// `--version` names the commit; `completions` prints each shell's script; `man` prints
/// the page built with the binary, which is docs/leadscore.1 as committed.
#[test]
fn version_completions_and_the_manual_page() {
    let v = text(&leadscore(&["--version"]).stdout);
    assert!(
        v.starts_with("leadscore 0.") && v.contains('(') && v.contains(')'),
        "{v}"
    );
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef leadscore"),
        ("fish", "complete -c leadscore"),
    ] {
        let out = leadscore(&["completions", shell]);
        assert!(out.status.success());
        let script = text(&out.stdout);
        assert!(
            script.contains(marker) && script.contains("backtest"),
            "{shell}"
        );
    }
    let man = leadscore(&["man"]);
    assert!(man.status.success());
    let page = text(&man.stdout);
    assert!(page.contains(".TH leadscore 1"), "{page}");
    for sub in ["check", "fmt", "serve", "backtest", "completions"] {
        assert!(page.contains(sub), "{sub} missing from the manual page");
    }
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/leadscore.1"))
            .unwrap_or_default();
    assert_eq!(
        committed, page,
        "docs/leadscore.1 is stale: leadscore man > docs/leadscore.1"
    );
}
