//! `leadscore backtest` on a synthetic history whose conversion per grade is fixed in
//! advance: 1,000 leads, a quarter from DE (60% won), a quarter from US (20% won), half
//! elsewhere (10% won). The rules in use grade DE and US leads A; the proposal only DE.

use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output};

const OLD: &str = "ruleset \"in use\"\nset core = [\"DE\", \"US\"]\nwhen country in core add 50\ngrade A when score >= 50\ngrade B otherwise\n";
const NEW: &str = "ruleset \"proposal\"\nset core = [\"DE\"]\nwhen country in core add 50\nwhen email.opened add 1 each\ngrade A when score >= 50\ngrade B otherwise\n";

/// A directory of its own for each call (tests run in parallel).
fn dir() -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("leadscore-backtest-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn leadscore(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs")
}

/// Lead `i`'s country and whether it was won.
fn truth(i: usize) -> (&'static str, bool) {
    match i % 4 {
        0 => ("DE", (i / 4) % 5 < 3),
        1 => ("US", (i / 4) % 5 == 0),
        _ => ("BR", (i / 4) % 10 == 0),
    }
}

/// Writes the rules, the history (outcomes of even leads as events, the rest in a CSV)
/// and returns their paths.
fn fixture() -> [PathBuf; 4] {
    let d = dir();
    let (old, new, events, outcomes) = (
        d.join("old.rules"),
        d.join("new.rules"),
        d.join("history.jsonl"),
        d.join("outcomes.csv"),
    );
    std::fs::write(&old, OLD).unwrap();
    std::fs::write(&new, NEW).unwrap();
    let mut ev = std::fs::File::create(&events).unwrap();
    let mut csv = String::from("lead,outcome,at\n");
    for i in 0..1000 {
        let (country, won) = truth(i);
        let lead = format!("lead{i:04}@x.test");
        let line = json!({"id": format!("f{i}"), "lead": lead, "type": "form.submitted",
            "at": "2026-07-01T00:00:00Z", "attributes": {"country": country}});
        writeln!(ev, "{line}").unwrap();
        if i < 10 {
            // After the instant the backtest scores at: not counted.
            let late = json!({"id": format!("late{i}"), "lead": lead, "type": "email.opened",
                "at": "2026-10-01T00:00:00Z"});
            writeln!(ev, "{late}").unwrap();
        }
        let outcome = if won { "won" } else { "lost" };
        if i % 2 == 0 {
            // An earlier record is overridden by the later one.
            let first = if won { "deal.lost" } else { "deal.won" };
            for (k, (t, at)) in [
                (first, "2026-08-01T00:00:00Z"),
                (&format!("deal.{outcome}")[..], "2026-09-01T00:00:00Z"),
            ]
            .into_iter()
            .enumerate()
            {
                let o = json!({"id": format!("o{i}-{k}"), "lead": lead, "type": t, "at": at});
                writeln!(ev, "{o}").unwrap();
            }
        } else {
            csv.push_str(&format!("{lead},{outcome},2026-09-01T00:00:00Z\n"));
        }
    }
    // An outcome for a lead the history never saw.
    csv.push_str("stranger@x.test,won,\n");
    std::fs::write(&outcomes, csv).unwrap();
    [old, new, events, outcomes]
}

fn run(extra: &[&str]) -> Value {
    let [old, new, events, outcomes] = fixture();
    let mut args = vec![
        "backtest",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--outcomes",
        outcomes.to_str().unwrap(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = leadscore(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON report")
}

fn grade(v: &Value, name: &str) -> Value {
    v["grades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["grade"] == name)
        .cloned()
        .unwrap()
}

#[test]
fn conversion_per_grade_matches_the_known_truth() {
    let r = run(&["--as-of", "2026-07-02T00:00:00Z", "--top", "3"]);
    assert_eq!(r["as_of"], "2026-07-02T00:00:00Z");
    assert_eq!(r["leads"], 1000);
    // DE 150 + US 50 + elsewhere 50.
    assert_eq!(r["won"], 250);
    assert_eq!(r["base_rate"], 0.25);
    assert_eq!(r["events_after_as_of"], 10);
    assert_eq!(r["outcomes_without_history"], 1);

    let [old, new] = [&r["versions"][0], &r["versions"][1]];
    assert_eq!(old["ruleset"], "in use");
    assert_eq!(new["ruleset"], "proposal");
    assert_eq!(
        grade(old, "A"),
        json!({"grade": "A", "leads": 500, "won": 200, "lost": 300, "disqualified": 0, "open": 0, "conversion": 0.4})
    );
    assert_eq!(grade(old, "B")["leads"], 500);
    assert_eq!(grade(old, "B")["won"], 50);
    assert_eq!(grade(old, "B")["conversion"], 0.1);
    assert_eq!(old["top_lift"], 1.6);
    // Seed 000's quarterly check: under 50% of the top grade converted.
    assert_eq!(
        old["warnings"],
        json!(["fewer than 50% of the top grade's leads converted (200 of 500 in A): the threshold is too loose; raise it"])
    );

    assert_eq!(grade(new, "A")["leads"], 250);
    assert_eq!(grade(new, "A")["won"], 150);
    assert_eq!(grade(new, "A")["conversion"], 0.6);
    assert_eq!(grade(new, "B")["leads"], 750);
    assert_eq!(grade(new, "B")["won"], 100);
    assert_eq!(grade(new, "B")["conversion"], 0.1333);
    assert_eq!(new["top_lift"], 2.4);
    assert_eq!(new["warnings"], json!([]));

    // Every US lead leaves A; the three listed first are the lowest keys among equals.
    let c = &r["changes"];
    assert_eq!(c["moved"], 250);
    assert_eq!(c["matrix"], json!([{"from": "A", "to": "B", "leads": 250}]));
    let movers = c["movers"].as_array().unwrap();
    assert_eq!(movers.len(), 3);
    assert_eq!(movers[0]["lead"], "lead0001@x.test");
    assert_eq!(movers[0]["delta"], -50);
    assert_eq!(movers[0]["outcome"], "won");
    assert_eq!(movers[1]["lead"], "lead0005@x.test");
    assert_eq!(movers[1]["outcome"], "lost");
    assert_eq!(movers[0]["old"]["contributions"][0]["points"], 50);
    assert_eq!(movers[0]["new"]["contributions"], json!([]));

    // The histogram counts every lead once per version, on shared bins.
    for v in [old, new] {
        let n: u64 = v["histogram"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["leads"].as_u64().unwrap())
            .sum();
        assert_eq!(n, 1000);
    }
    assert_eq!(old["histogram"][0]["from"], 0);
}

#[test]
fn by_default_the_history_is_scored_as_of_its_last_event() {
    let r = run(&["--top", "1000"]);
    assert_eq!(r["as_of"], "2026-10-01T00:00:00Z");
    assert_eq!(r["events_after_as_of"], 0);
    // The late opens count for the proposal's ten first leads: one point each.
    let movers = r["changes"]["movers"].as_array().unwrap();
    assert!(
        movers
            .iter()
            .any(|m| m["lead"] == "lead0000@x.test" && m["delta"] == 1),
        "{movers:?}"
    );
}

#[test]
fn the_text_report_states_the_figures_and_the_check() {
    let [old, new, events, outcomes] = fixture();
    let out = leadscore(&[
        "backtest",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--outcomes",
        outcomes.to_str().unwrap(),
        "--as-of",
        "2026-07-02T00:00:00Z",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "backtest as of 2026-07-02T00:00:00Z: 1000 leads, 250 won (base rate 25.0%)",
        "  A                    500    200    300      0      0      40.0%",
        "  A                    250    150    100      0      0      60.0%",
        "  top grade A: 2.40x the base rate",
        "  warning: fewer than 50% of the top grade's leads converted (200 of 500 in A)",
        "250 lead(s) change grade",
        "  A -> B: 250",
        "  lead0001@x.test (won): 50 A -> 0 B (-50)",
        "    - line   3: +50 score  when country in core add 50",
        "old.rules: in use (",
        "new.rules: proposal (",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[test]
fn one_version_alone_and_bad_inputs() {
    let [old, _, events, outcomes] = fixture();
    let out = leadscore(&[
        "backtest",
        old.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--outcomes",
        outcomes.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["versions"].as_array().unwrap().len(), 1);
    assert!(r.get("changes").is_none());

    let bad = dir().join("bad.csv");
    std::fs::write(&bad, "lead,outcome\na@x.test,won\nb@x.test,maybe\n").unwrap();
    let out = leadscore(&[
        "backtest",
        old.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--outcomes",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.csv:3: outcome `maybe`: expected won, lost or disqualified"),
        "{err}"
    );

    let out = leadscore(&[
        "backtest",
        old.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--as-of",
        "yesterday",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as-of: `yesterday`"));
}

#[test]
fn the_html_report_is_self_contained_and_escapes_what_it_shows() {
    let [old, new, events, outcomes] = fixture();
    // A lead key with markup in it must appear as text.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap();
    writeln!(
        f,
        "{}",
        json!({"id": "x1", "lead": "<b>x</b>@y.test", "type": "form.submitted",
            "at": "2026-07-01T00:00:00Z", "attributes": {"country": "US"}})
    )
    .unwrap();
    let page = dir().join("report.html");
    let out = leadscore(&[
        "backtest",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
        "--outcomes",
        outcomes.to_str().unwrap(),
        "--as-of",
        "2026-07-02T00:00:00Z",
        "--top",
        "1",
        "--html",
        page.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    for want in [
        "Backtest as of 2026-07-02T00:00:00Z",
        "fewer than 50% of the top grade's leads converted (200 of 501 in A)",
        "<svg",
        "60.0% (250 leads)",
        "&lt;b&gt;x&lt;/b&gt;@y.test",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
    // Nothing to run and nothing to fetch: no scripts, no external resources.
    assert!(!html.contains("<b>x"));
    for banned in ["<script", " src=", "<link", "@import", "url("] {
        assert!(!html.contains(banned), "{banned} in the page");
    }
    let external = html.matches("http").count();
    let namespaces = html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
    assert_eq!(external, namespaces, "only SVG namespaces mention http");
}

/// The split as the service applies it, computed here independently: SHA-256 of the key,
/// first 8 bytes big-endian, modulo 10,000, below the share in basis points → the variant.
fn in_variant(key: &str, basis_points: u64) -> bool {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(key.as_bytes());
    u64::from_be_bytes(d[..8].try_into().unwrap()) % 10_000 < basis_points
}

#[test]
fn an_ab_split_reports_conversion_per_arm() {
    let r = run(&["--as-of", "2026-07-02T00:00:00Z", "--split", "10"]);
    let arms = r["arms"].as_array().expect("arms");
    // Expected from the known truth: arm B uses the proposal (DE is A), arm A the rules
    // in use (DE and US are A).
    let mut want = [[0u64; 4]; 2]; // per arm: leads, won, A leads, A won
    for i in 0..1000 {
        let (country, won) = truth(i);
        let b = in_variant(&format!("lead{i:04}@x.test"), 1_000);
        let arm = usize::from(b);
        let grade_a = if b { country == "DE" } else { country != "BR" };
        want[arm][0] += 1;
        want[arm][1] += u64::from(won);
        want[arm][2] += u64::from(grade_a);
        want[arm][3] += u64::from(grade_a && won);
    }
    assert!(
        (80..=120).contains(&want[1][0]),
        "about 10% in B: {}",
        want[1][0]
    );
    for (arm, name) in [(0, "A"), (1, "B")] {
        let a = &arms[arm];
        assert_eq!(a["arm"], name);
        assert_eq!(a["leads"], want[arm][0], "{a}");
        assert_eq!(a["won"], want[arm][1], "{a}");
        assert_eq!(grade(a, "A")["leads"], want[arm][2], "{a}");
        assert_eq!(grade(a, "A")["won"], want[arm][3], "{a}");
    }
    assert_eq!(arms[1]["share"], 10.0);
    assert_eq!(arms[0]["share"], 90.0);
}
