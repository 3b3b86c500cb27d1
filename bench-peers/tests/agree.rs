//! Every engine scores every synthetic lead exactly as the hand-written function does.

use leadscore_bench_peers::*;
use leadscore_runtime::engine::Engine;
use leadscore_runtime::time;

#[test]
fn all_engines_agree_with_the_native_function_on_every_lead() {
    let leads = leads(1_000);
    let now = now_secs();
    let ls = Leadscore::new();
    let mut states = ls.states(&leads);
    let mut engine = Engine::new(&ls.program);
    let mut zen = Zen::new();
    let cel = Cel::new();
    let now_us = time::parse(NOW).unwrap();
    let mut grades = std::collections::BTreeMap::new();
    for (lead, state) in leads.iter().zip(&mut states) {
        let want = native_score(lead, now);
        *grades.entry(want.grade).or_insert(0) += 1;
        assert_eq!(
            leadscore_score(&mut engine, state, now_us),
            want,
            "leadscore, {}",
            lead.key
        );
        assert_eq!(zen.score(lead, now), want, "zen, {}", lead.key);
        assert_eq!(cel.score(lead, now), want, "cel, {}", lead.key);
    }
    // The synthetic leads are varied enough to reach every grade.
    assert_eq!(grades.len(), 3, "{grades:?}");
    println!("{grades:?}");
    assert!(grades.values().all(|&n| n >= 100), "{grades:?}");
}
