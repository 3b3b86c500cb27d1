//! Static analysis of the resolved program: the possible range of every score, grades
//! that can never be reached, and rules that can never fire.

use crate::ir::{Amount, Cond, Expr, Ir, Rule, RuleKind, Test};
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::Cmp;

/// The lowest and highest value a score can take (infinite when unbounded).
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreBounds {
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub range: Option<(i64, i64)>,
}

pub fn analyse(ir: &Ir, diags: &mut Vec<Diagnostic>) -> Vec<ScoreBounds> {
    for rule in &ir.rules {
        never_fires(rule, diags);
    }
    let bounds = score_bounds(ir);
    grades(ir, &bounds, diags);
    bounds
}

fn never_fires(rule: &Rule, diags: &mut Vec<Diagnostic>) {
    let cond = match &rule.kind {
        RuleKind::Field { cond } => Some(cond),
        RuleKind::Event { cond, .. } => cond.as_ref(),
        RuleKind::Time { .. } => None,
    };
    if let Some(why) = cond.and_then(infeasible) {
        diags.push(
            Diagnostic::error("E0320", rule.span, "this rule can never fire")
                .label(why)
                .help("check the condition's numbers, sets and `is set` tests"),
        );
    }
}

/// Why a condition can never hold, when that is evident.
fn infeasible(c: &Cond) -> Option<String> {
    match c {
        Cond::Const(false) => {
            Some("its condition compares fixed values and is always false".into())
        }
        Cond::Not(inner) if **inner == Cond::Const(true) => {
            Some("its condition is always false".into())
        }
        Cond::Test(_, Test::In(_) | Test::ContainsAny(_) | Test::ContainsAnyWord(_)) => None,
        Cond::Or(parts) => {
            let reasons: Vec<String> = parts.iter().filter_map(infeasible).collect();
            (reasons.len() == parts.len()).then(|| reasons.join("; "))
        }
        Cond::And(parts) => parts
            .iter()
            .find_map(infeasible)
            .or_else(|| contradiction(parts)),
        _ => None,
    }
}

/// Two tests of one conjunction on the same value that cannot both hold.
fn contradiction(parts: &[Cond]) -> Option<String> {
    let tests: Vec<(&Expr, &Test)> = parts
        .iter()
        .filter_map(|p| match p {
            Cond::Test(lhs, t) if !lhs.is_literal() => Some((lhs, t)),
            _ => None,
        })
        .collect();
    for (i, (lhs, t)) in tests.iter().enumerate() {
        let same: Vec<&Test> = tests[i + 1..]
            .iter()
            .filter(|(l, _)| l == lhs)
            .map(|(_, t)| *t)
            .collect();
        if same.is_empty() {
            continue;
        }
        let all: Vec<&Test> = std::iter::once(*t).chain(same.iter().copied()).collect();
        let not_set = all.iter().any(|t| matches!(t, Test::IsNotSet));
        if not_set && all.iter().any(|t| !matches!(t, Test::IsNotSet)) {
            return Some(format!(
                "`{}` cannot be unset and tested at once (a missing field fails every test)",
                name(lhs)
            ));
        }
        let (mut lo, mut hi) = ((f64::NEG_INFINITY, true), (f64::INFINITY, true));
        for t in &all {
            if let Test::Cmp(op, Expr::Num(c)) = t {
                let c = *c;
                match op {
                    Cmp::Eq => {
                        lo = tighter_lo(lo, (c, true));
                        hi = tighter_hi(hi, (c, true));
                    }
                    Cmp::Gt => lo = tighter_lo(lo, (c, false)),
                    Cmp::Ge => lo = tighter_lo(lo, (c, true)),
                    Cmp::Lt => hi = tighter_hi(hi, (c, false)),
                    Cmp::Le => hi = tighter_hi(hi, (c, true)),
                    Cmp::Ne => {}
                }
            }
        }
        if lo.0 > hi.0 || (lo.0 == hi.0 && !(lo.1 && hi.1)) {
            return Some(format!(
                "no value of `{}` satisfies all its comparisons",
                name(lhs)
            ));
        }
    }
    None
}

fn tighter_lo(a: (f64, bool), b: (f64, bool)) -> (f64, bool) {
    if b.0 > a.0 || (b.0 == a.0 && !b.1) {
        b
    } else {
        a
    }
}

fn tighter_hi(a: (f64, bool), b: (f64, bool)) -> (f64, bool) {
    if b.0 < a.0 || (b.0 == a.0 && !b.1) {
        b
    } else {
        a
    }
}

fn name(e: &Expr) -> String {
    match e {
        Expr::Attr(n) | Expr::Prop(n) => n.clone(),
        Expr::Call(f, a) => format!("{}({})", f.name(), name(a)),
        _ => "value".into(),
    }
}

// ---- score bounds ----

fn score_bounds(ir: &Ir) -> Vec<ScoreBounds> {
    let mut out: Vec<ScoreBounds> = ir
        .scores
        .iter()
        .map(|s| ScoreBounds {
            name: s.name.clone(),
            min: 0.0,
            max: 0.0,
            range: s.range,
        })
        .collect();
    for r in &ir.rules {
        let (lo, hi) = rule_bounds(r);
        let b = &mut out[r.score.index()];
        b.min += lo;
        b.max += hi;
    }
    for b in &mut out {
        if let Some((lo, hi)) = b.range {
            b.min = b.min.clamp(lo as f64, hi as f64);
            b.max = b.max.clamp(lo as f64, hi as f64);
        }
    }
    out
}

/// The contribution range of one rule.
fn rule_bounds(r: &Rule) -> (f64, f64) {
    let cap = r.points.max.map_or(f64::INFINITY, f64::from);
    // A time award repeats (every spell, every E): bounded only by `max`.
    let each = matches!(
        r.kind,
        RuleKind::Event { each: true, .. } | RuleKind::Time { .. }
    );
    let (lo, hi) = match &r.points.amount {
        Amount::Const(n) if each => (0.0, cap),
        Amount::Const(n) => (0.0, f64::from(*n).min(cap)),
        Amount::Attr(f) | Amount::Prop(f) => {
            let floor = match &r.kind {
                RuleKind::Field { cond } if guarded_non_negative(cond, f) => 0.0,
                _ => -cap,
            };
            (floor, cap)
        }
    };
    if r.points.negative {
        (-hi, -lo)
    } else {
        (lo, hi)
    }
}

/// Whether the condition requires `field > c` (c >= 0) or `field >= c` (c >= 0).
fn guarded_non_negative(c: &Cond, field: &str) -> bool {
    let parts: &[Cond] = match c {
        Cond::And(p) => p,
        other => std::slice::from_ref(other),
    };
    parts.iter().any(|p| {
        matches!(p, Cond::Test(Expr::Attr(f), Test::Cmp(Cmp::Gt | Cmp::Ge, Expr::Num(n)))
            if f == field && *n >= 0.0)
    })
}

// ---- grades ----

fn interval(e: &Expr, bounds: &[ScoreBounds], total: (f64, f64)) -> Option<(f64, f64)> {
    Some(match e {
        Expr::Num(n) => (*n, *n),
        Expr::Score(id) => (bounds[id.index()].min, bounds[id.index()].max),
        Expr::Total => total,
        Expr::Add(a, b) => {
            let (a, b) = (interval(a, bounds, total)?, interval(b, bounds, total)?);
            (a.0 + b.0, a.1 + b.1)
        }
        Expr::Sub(a, b) => {
            let (a, b) = (interval(a, bounds, total)?, interval(b, bounds, total)?);
            (a.0 - b.1, a.1 - b.0)
        }
        _ => return None,
    })
}

/// (can be true, can be false), judged from score bounds alone.
fn possible(c: &Cond, bounds: &[ScoreBounds], total: (f64, f64)) -> (bool, bool) {
    match c {
        Cond::Const(b) => (*b, !*b),
        Cond::And(parts) => parts.iter().fold((true, false), |(t, f), p| {
            let (pt, pf) = possible(p, bounds, total);
            (t && pt, f || pf)
        }),
        Cond::Or(parts) => parts.iter().fold((false, true), |(t, f), p| {
            let (pt, pf) = possible(p, bounds, total);
            (t || pt, f && pf)
        }),
        Cond::Not(inner) => {
            let (t, f) = possible(inner, bounds, total);
            (f, t)
        }
        Cond::Test(lhs, Test::Cmp(op, rhs)) => {
            match (interval(lhs, bounds, total), interval(rhs, bounds, total)) {
                (Some((a_lo, a_hi)), Some((b_lo, b_hi))) => match op {
                    Cmp::Ge => (a_hi >= b_lo, a_lo < b_hi),
                    Cmp::Gt => (a_hi > b_lo, a_lo <= b_hi),
                    Cmp::Le => (a_lo <= b_hi, a_hi > b_lo),
                    Cmp::Lt => (a_lo < b_hi, a_hi >= b_lo),
                    Cmp::Eq => (
                        a_lo <= b_hi && b_lo <= a_hi,
                        !(a_lo == a_hi && b_lo == b_hi && a_lo == b_lo),
                    ),
                    Cmp::Ne => (
                        !(a_lo == a_hi && b_lo == b_hi && a_lo == b_lo),
                        a_lo <= b_hi && b_lo <= a_hi,
                    ),
                },
                _ => (true, true),
            }
        }
        _ => (true, true),
    }
}

/// `E >= t` (or `E > t - 1`) over scores only: the expression and the integer threshold.
fn threshold(c: &Cond) -> Option<(&Expr, f64)> {
    match c {
        Cond::Test(lhs, Test::Cmp(op, Expr::Num(n))) if only_scores(lhs) => match op {
            Cmp::Ge => Some((lhs, n.ceil())),
            Cmp::Gt => Some((lhs, n.floor() + 1.0)),
            _ => None,
        },
        _ => None,
    }
}

fn only_scores(e: &Expr) -> bool {
    match e {
        Expr::Score(_) | Expr::Total | Expr::Num(_) => true,
        Expr::Add(a, b) | Expr::Sub(a, b) => only_scores(a) && only_scores(b),
        _ => false,
    }
}

fn fmt_bound(x: f64) -> String {
    if x == f64::INFINITY {
        "unbounded".into()
    } else if x == f64::NEG_INFINITY {
        "-unbounded".into()
    } else {
        format!("{x}")
    }
}

/// The possible range of the lead's `score`: `total = …` with its range, or the sum of
/// the scores not `apart`.
pub fn total_bounds(ir: &Ir, bounds: &[ScoreBounds]) -> (f64, f64) {
    match &ir.total {
        Some(t) => {
            let (lo, hi) = t.terms.iter().fold((0.0, 0.0), |(lo, hi), (s, minus)| {
                let b = &bounds[s.index()];
                if *minus {
                    (lo - b.max, hi - b.min)
                } else {
                    (lo + b.min, hi + b.max)
                }
            });
            match t.range {
                Some((a, b)) => (lo.clamp(a as f64, b as f64), hi.clamp(a as f64, b as f64)),
                None => (lo, hi),
            }
        }
        None => bounds
            .iter()
            .zip(&ir.scores)
            .filter(|(_, s)| !s.apart)
            .fold((0.0, 0.0), |(lo, hi), (b, _)| (lo + b.min, hi + b.max)),
    }
}

fn grades(ir: &Ir, bounds: &[ScoreBounds], diags: &mut Vec<Diagnostic>) {
    let total = total_bounds(ir, bounds);
    let ranges: Vec<String> = bounds
        .iter()
        .map(|b| format!("{} {}..{}", b.name, fmt_bound(b.min), fmt_bound(b.max)))
        .collect();
    let mut seen: Vec<(&Expr, f64, &str)> = Vec::new();
    let mut always: Option<&str> = None;
    for g in &ir.grades {
        let Some(cond) = &g.cond else { continue };
        if let Some(earlier) = always {
            diags.push(
                Diagnostic::error(
                    "E0402",
                    g.span,
                    format!("grade `{}` can never be reached", g.name),
                )
                .label(format!("grade `{earlier}` above matches every lead")),
            );
            continue;
        }
        if let Some((e, t)) = threshold(cond) {
            if let Some((_, t0, name)) = seen.iter().find(|(e0, t0, _)| *e0 == e && t >= *t0) {
                diags.push(
                    Diagnostic::error(
                        "E0402",
                        g.span,
                        format!("grade `{}` can never be reached", g.name),
                    )
                    .label(format!(
                        "every lead that meets this already gets grade `{name}` (threshold {t0})"
                    ))
                    .help("order grades from the highest threshold to the lowest"),
                );
                continue;
            }
            seen.push((e, t, &g.name));
        }
        let (can_true, can_false) = possible(cond, bounds, total);
        if !can_true {
            diags.push(
                Diagnostic::warning(
                    "W0101",
                    g.span,
                    format!("grade `{}` can never be reached", g.name),
                )
                .label("no lead can score this much under these rules")
                .help(format!("the possible scores are: {}", ranges.join(", "))),
            );
        }
        if !can_false {
            always = Some(&g.name);
        }
    }
}
