//! The load generator's short run, as CI does it on every change: `leadscore-load`
//! starts `leadscore serve` on loopback, drives a realistic mix for a few seconds, and
//! verifies that nothing acknowledged was lost or counted twice. (The figures and the
//! ten-minute soak are in docs/performance.md.)

use serde_json::Value;
use std::process::Command;

#[test]
fn a_short_load_run_has_no_errors_and_loses_nothing() {
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore-load"))
        .args([
            "--seconds",
            "6",
            "--connections",
            "8",
            "--leads",
            "200",
            "--json",
        ])
        .arg("--server")
        .arg(env!("CARGO_BIN_EXE_leadscore"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("leadscore-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["requests"].as_u64().unwrap() > 100, "{report}");
    assert!(report["verified_leads"].as_u64().unwrap() > 10, "{report}");
    assert_eq!(report["mismatched_leads"], serde_json::json!([]));
    for kind in ["form", "email.opened", "duplicate", "beacon", "read"] {
        assert!(
            report["by_kind"][kind]["count"].as_u64().unwrap() > 0,
            "{kind}: {report}"
        );
    }
    assert!(report["memory"]["max_kib"].as_u64().unwrap() > 0);
    // Latencies are measured, not clipped: a loopback HTTP round trip takes well over the
    // report's 10 µs resolution, and the percentiles are in order.
    let all = &report["all"];
    let ms = |k: &str| all[k].as_f64().unwrap();
    assert!(ms("p50_ms") > 0.0, "{all}");
    assert!(
        ms("p50_ms") <= ms("p90_ms") && ms("p90_ms") <= ms("p99_ms"),
        "{all}"
    );
    assert!(ms("p99_ms") <= ms("max_ms"), "{all}");
}

#[test]
fn it_drives_loopback_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore-load"))
        .args(["--url", "http://example.com:8080", "--seconds", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only drives servers on loopback"));
}
