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

/// `n` sets and `n` rules: the even sets used by two rules each, the odd ones never.
fn sets_file(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let _ = writeln!(s, "set s{i} = [\"a{i}\", \"b{i}\"]");
    }
    for i in 0..n {
        let _ = writeln!(s, "when country in s{} add 1", i / 2 * 2);
    }
    s.push_str("grade A when score >= 1\ngrade B otherwise\n");
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
    // 10,000 sets, 10,000 rules, 5,000 sets never used: compiled and its 5,000 warnings
    // rendered, as `check` and a reload do (it was quadratic: 8,000 sets took seconds).
    let sets = sets_file(10_000);
    g.bench_function("10k_sets_check", |b| {
        b.iter(|| {
            let c = leadscore_compiler::compile(black_box(&sets), "s").expect("compiles");
            leadscore_dsl::diagnostic::render(
                &c.warnings,
                "s.rules",
                &sets,
                leadscore_dsl::diagnostic::Style::Rich,
                false,
            )
            .len()
        })
    });
    g.bench_function("10k_rules_parse_only", |b| {
        b.iter(|| leadscore_dsl::parse(black_box(&src)).map(|f| f.items.len()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
