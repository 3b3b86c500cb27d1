//! Replays every input the fuzzers keep — the seed corpus and every crasher ever found —
//! through its target: what once broke stays fixed, in every test run.

use std::path::Path;

#[test]
fn the_committed_corpus_and_crashers_run_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut ran = 0;
    for (name, target) in leadscore_fuzz_targets::TARGETS {
        let mut seeds = 0;
        for dir in ["corpus", "crashers"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} panics", path.display());
                seeds += usize::from(dir == "corpus");
                ran += 1;
            }
        }
        assert!(seeds > 0, "target {name} has no seed corpus");
    }
    assert!(ran >= 6);
}
