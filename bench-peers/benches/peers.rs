//! Benchmarks (a)–(c) of docs/performance.md: one full evaluation of each of 1,000
//! synthetic seed-001 leads, input building included, in leadscore, a hand-written Rust
//! function, zen-expression and cel-interpreter. Run from bench-peers/: `cargo bench`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use leadscore_bench_peers::*;
use leadscore_runtime::engine::Engine;
use leadscore_runtime::time;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let leads = leads(1_000);
    let now = now_secs();
    let now_us = time::parse(NOW).unwrap();
    let mut g = c.benchmark_group("evaluate_1000_leads");
    g.throughput(Throughput::Elements(leads.len() as u64));

    let ls = Leadscore::new();
    let mut states = ls.states(&leads);
    let mut engine = Engine::new(&ls.program);
    g.bench_function("a_leadscore", |b| {
        b.iter(|| {
            for s in states.iter_mut() {
                black_box(leadscore_score(&mut engine, s, now_us));
            }
        })
    });
    g.bench_function("b_native", |b| {
        b.iter(|| {
            for l in &leads {
                black_box(native_score(black_box(l), now));
            }
        })
    });
    let mut zen = Zen::new();
    g.bench_function("c_zen_expression", |b| {
        b.iter(|| {
            for l in &leads {
                black_box(zen.score(l, now));
            }
        })
    });
    let cel = Cel::new();
    g.bench_function("c_cel_interpreter", |b| {
        b.iter(|| {
            for l in &leads {
                black_box(cel.score(l, now));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
