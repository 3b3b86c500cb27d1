//! Scoring benchmarks on the seed-001 example (docs/performance.md):
//! (d) one incoming event applied to a stored in-memory lead — target ≤ 150 ns median;
//! (e) the same with 10 vs 10,000 rules of other event types — target ≤ 1.5x;
//! and what `domain()` costs per address.

use criterion::{criterion_group, criterion_main, Criterion};
use leadscore_runtime::bytecode::Program;
use leadscore_runtime::engine::Engine;
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use serde_json::json;
use std::hint::black_box;

const RULES: &str = include_str!("../examples/001-zoho.rules");
const EVENTS: &str = include_str!("../examples/001-zoho.events.jsonl");

fn program(extra: usize) -> Program {
    let mut src = RULES.replace("grade A when", &other_rules(extra));
    src = src.replacen("\n\n", "\n", 0);
    leadscore_compiler::compile(&src, "bench")
        .expect("compiles")
        .program
}

/// `extra` rules on event types the benchmark never sends, placed before the grades.
fn other_rules(extra: usize) -> String {
    let mut s = String::new();
    for i in 0..extra {
        s.push_str(&format!(
            "when other{}.event{} add 1 to engagement\n",
            i % 97,
            i
        ));
    }
    s.push_str("grade A when");
    s
}

fn bench_apply(c: &mut Criterion, name: &str, p: &Program) {
    let mut engine = Engine::new(p);
    let history: Vec<Event> = EVENTS
        .lines()
        .map(|l| Event::from_json(&serde_json::from_str(l).unwrap()).unwrap())
        .filter(|e| e.lead == "buyer@acme.de" && e.id != "e8")
        .collect();
    let start = history.last().unwrap().at;
    let mut lead = engine
        .rebuild("buyer@acme.de", &history, start, &mut Vec::new())
        .unwrap();
    // One open, moved a second later each time: the stream never goes back in time.
    let mut open = Event::from_json(&json!({"id": "o", "lead": "buyer@acme.de",
        "type": "email.opened", "at": time::format(start)}))
    .unwrap();
    let mut out = Vec::with_capacity(16);
    c.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            open.at += 1_000_000;
            engine.apply(&mut lead, &open, &mut out).unwrap();
            black_box(&out);
        })
    });
}

fn bench(c: &mut Criterion) {
    bench_apply(c, "apply_event/seed001", &program(0));
    bench_apply(c, "apply_event/seed001+10_other_rules", &program(10));
    bench_apply(c, "apply_event/seed001+10000_other_rules", &program(10_000));
    // `domain()`: host extraction and a public-suffix lookup, per address.
    for email in ["buyer@acme.de", "buyer@sales.eu.acme.co.uk"] {
        c.bench_function(&format!("domain/{email}"), |b| {
            b.iter(|| black_box(leadscore_runtime::text::domain(black_box(email))))
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
