//! The short fuzz run of every test run: each target fed random bytes and random
//! mutations of its seeds (proptest), a few hundred cases each. libFuzzer's long,
//! coverage-guided runs are `scripts/fuzz.sh` (docs/testing.md).

use proptest::prelude::*;
use std::path::Path;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    out.sort();
    out
}

/// A seed with some bytes overwritten, some removed and some inserted.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let all = seeds(target);
    (
        0..all.len(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..24),
    )
        .prop_map(move |(i, edits)| {
            let mut data = all[i].clone();
            for (at, byte, how) in edits {
                let at = if data.is_empty() { 0 } else { at % data.len() };
                match how {
                    0 if !data.is_empty() => data[at] = byte,
                    1 if !data.is_empty() => {
                        data.remove(at);
                    }
                    _ => data.insert(at, byte),
                }
            }
            data
        })
}

fn run(name: &str, data: &[u8]) {
    let (_, target) = leadscore_fuzz_targets::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .expect("a target");
    target(data);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn rules(data in mutated("rules")) { run("rules", &data) }

    #[test]
    fn bytecode(data in mutated("bytecode")) { run("bytecode", &data) }

    #[test]
    fn event(data in mutated("event")) { run("event", &data) }

    #[test]
    fn form(data in mutated("form")) { run("form", &data) }

    #[test]
    fn beacon(data in mutated("beacon")) { run("beacon", &data) }

    #[test]
    fn adapters(data in mutated("adapters")) { run("adapters", &data) }

    #[test]
    fn random_bytes_to_every_target(data in prop::collection::vec(any::<u8>(), 0..256)) {
        for (_, target) in leadscore_fuzz_targets::TARGETS {
            target(&data);
        }
    }
}
