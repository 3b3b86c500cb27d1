//! Compiling a generated 10,000-rule file: parse, resolve, analyse, lower.
//! Target (issue "rules language"): median <= 50 ms on the 2-core reference machine.

use criterion::{criterion_group, criterion_main, Criterion};
use std::fmt::Write;
use std::hint::black_box;

/// A realistic mix: field rules over sets, keywords and numbers, event rules with
/// filters, caps, expiry and windows, a few `if` blocks.
pub fn generate(rules: usize) -> String {
    let mut s = String::from("ruleset \"generated\"\nscore fit\nscore engagement range 0..500\n");
    for i in 0..20 {
        let _ = writeln!(
            s,
            "set countries{i} = [\"US\", \"DE\", \"JP\", \"C{i}\", \"X{i}\"]"
        );
        let _ = writeln!(
            s,
            "set words{i} = [\"budget\", \"moq\", \"预算\", \"w{i}\"]"
        );
    }
    let mut n = 0;
    while n < rules {
        let k = n % 20;
        let line = match n % 8 {
            0 => format!("when country in countries{k} add {} to fit", 1 + n % 30),
            1 => format!(
                "when title contains any word words{k} and employees >= {} add 5 to fit",
                n % 500
            ),
            2 => format!("when domain(email) not in countries{k} add 3 to fit"),
            3 => format!("when sentences(message) > {} subtract 2 from fit", n % 7),
            4 => format!("when email.opened{k} add 5 each max 25 to engagement"),
            5 => format!("when page.viewed where page = \"p{n}\" add 10 to engagement"),
            6 => {
                format!("when email.clicked{k} add 10 each max 30 expires after 90d to engagement")
            }
            _ => format!("when site.visited{k} count >= 3 within 7d add 15 to engagement"),
        };
        if n % 100 == 99 {
            let _ = writeln!(s, "if country in countries{k} {{\n  {line}\n}}");
        } else {
            s.push_str(&line);
            s.push('\n');
        }
        n += 1;
    }
    s.push_str("grade A when fit + engagement >= 70\ngrade B when fit + engagement >= 40\ngrade C otherwise\ntag HOT when grade = A\n");
    s
}

fn bench(c: &mut Criterion) {
    let src = generate(10_000);
    assert!(leadscore_compiler::compile(&src, "g").is_ok());
    let mut g = c.benchmark_group("compile");
    g.sample_size(30);
    g.bench_function("10k_rules", |b| {
        b.iter(|| leadscore_compiler::compile(black_box(&src), "g").map(|c| c.program.code.len()))
    });
    g.bench_function("10k_rules_parse_only", |b| {
        b.iter(|| leadscore_dsl::parse(black_box(&src)).map(|f| f.items.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
