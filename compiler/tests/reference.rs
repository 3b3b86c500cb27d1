//! The engine against a deliberately naive reference scorer: random programs and event
//! streams; the reference recomputes everything from the full event list at `now`,
//! straight from docs/language.md, with no incremental state.

use leadscore_runtime::bytecode::TOTAL;
use leadscore_runtime::engine::{Cause, Engine};
use leadscore_runtime::event::Event;
use leadscore_runtime::time;
use proptest::prelude::*;
use serde_json::json;

#[derive(Clone, Debug)]
enum Kind {
    /// `a{attr} = "v{val}"`
    Field {
        attr: u8,
        val: u8,
    },
    /// `n >= thr`
    Num {
        thr: i64,
    },
    Once {
        ty: u8,
    },
    Each {
        ty: u8,
        max: Option<u32>,
    },
    Expires {
        ty: u8,
        mult: u32,
        days: u32,
    },
    Window {
        ty: u8,
        n: u32,
        days: u32,
    },
    /// `count >= n` with no `within`: a lifetime count.
    Lifetime {
        ty: u8,
        n: u32,
    },
    Inactive {
        days: u32,
    },
    Where {
        ty: u8,
        val: u8,
    },
    /// `when n is set add n [max M]`
    FieldPoints {
        max: Option<u32>,
    },
    /// `within H h of t{of}.x` (of ≠ ty).
    Prior {
        ty: u8,
        hours: u32,
    },
    /// `each up to P×mult per H h`.
    PerCap {
        ty: u8,
        mult: u32,
        hours: u32,
    },
    /// `each distinct k max P×mult`.
    Distinct {
        ty: u8,
        mult: u32,
    },
    /// `when t{ty}.x reset s{score}`.
    Reset {
        ty: u8,
    },
    /// `[each] [max P×mult] decay PCT% every D d`.
    Decay {
        ty: u8,
        each: bool,
        pct: u8,
        days: u32,
        mult: Option<u32>,
    },
    /// `after inactive for D d [every H h] [max P×mult]`.
    After {
        days: u32,
        hours: Option<u32>,
        mult: Option<u32>,
    },
}

#[derive(Clone, Debug)]
struct Rule {
    kind: Kind,
    points: u32,
    negative: bool,
    score: usize,
}

#[derive(Clone, Debug)]
struct Ev {
    ty: u8,
    hour: i64,
    attr: Option<(u8, Option<u8>)>,
    n: Option<i64>,
    prop: Option<u8>,
}

/// What the lead's `score` is.
#[derive(Debug, Clone)]
enum Total {
    /// No `total`: s0 + s1.
    Sum,
    /// `score s1 apart`: s0 alone.
    Apart,
    /// `total = s0 - s1 [range LO..HI]`.
    Difference(Option<(i64, i64)>),
}

#[derive(Clone, Debug)]
struct Case {
    rules: Vec<Rule>,
    range: Option<(i64, i64)>,
    total: Total,
    thresholds: (i64, i64),
    events: Vec<Ev>,
    now_hours_after: i64,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (0u8..2, 0u8..2).prop_map(|(attr, val)| Kind::Field { attr, val }),
        (-2i64..10).prop_map(|thr| Kind::Num { thr }),
        (0u8..3).prop_map(|ty| Kind::Once { ty }),
        (0u8..3, prop::option::of(1u32..40)).prop_map(|(ty, max)| Kind::Each { ty, max }),
        (0u8..3, 1u32..4, 1u32..4).prop_map(|(ty, mult, days)| Kind::Expires { ty, mult, days }),
        (0u8..3, 1u32..4, 1u32..4).prop_map(|(ty, n, days)| Kind::Window { ty, n, days }),
        (0u8..3, 1u32..5).prop_map(|(ty, n)| Kind::Lifetime { ty, n }),
        (1u32..5).prop_map(|days| Kind::Inactive { days }),
        (0u8..3, 0u8..2).prop_map(|(ty, val)| Kind::Where { ty, val }),
        prop::option::of(1u32..20).prop_map(|max| Kind::FieldPoints { max }),
        (0u8..3, 1u32..30).prop_map(|(ty, hours)| Kind::Prior { ty, hours }),
        (0u8..3, 1u32..4, 1u32..30).prop_map(|(ty, mult, hours)| Kind::PerCap { ty, mult, hours }),
        (0u8..3, 1u32..4).prop_map(|(ty, mult)| Kind::Distinct { ty, mult }),
        (0u8..3).prop_map(|ty| Kind::Reset { ty }),
        (
            0u8..3,
            any::<bool>(),
            prop::sample::select(vec![10u8, 25, 30, 50]),
            1u32..4,
            prop::option::of(1u32..5)
        )
            .prop_map(|(ty, each, pct, days, mult)| Kind::Decay {
                ty,
                each,
                pct,
                days,
                mult
            }),
        (
            1u32..4,
            prop::option::of(1u32..30),
            prop::option::of(1u32..5)
        )
            .prop_map(|(days, hours, mult)| Kind::After { days, hours, mult }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let rule =
        (kind(), 1u32..20, any::<bool>(), 0usize..2).prop_map(|(kind, points, negative, score)| {
            Rule {
                kind,
                points,
                negative,
                score,
            }
        });
    let ev = (
        0u8..3,
        0i64..240,
        prop::option::of((0u8..2, prop::option::of(0u8..2))),
        prop::option::of(-5i64..15),
        prop::option::of(0u8..2),
    )
        .prop_map(|(ty, hour, attr, n, prop)| Ev {
            ty,
            hour,
            attr,
            n,
            prop,
        });
    (
        prop::collection::vec(rule, 1..8),
        prop::option::of((-30i64..0, 0i64..60)),
        (0i64..60, 1i64..40),
        prop::collection::vec(ev, 0..25),
        0i64..150,
        prop_oneof![
            Just(Total::Sum),
            Just(Total::Apart),
            prop::option::of((-40i64..0, 0i64..40)).prop_map(Total::Difference),
        ],
    )
        .prop_map(
            |(rules, range, (t1, gap), mut events, now_hours_after, total)| {
                events.sort_by_key(|e| e.hour);
                Case {
                    rules,
                    range,
                    total,
                    thresholds: (t1, t1 - gap),
                    events,
                    now_hours_after,
                }
            },
        )
}

fn source(c: &Case) -> String {
    let mut s = String::new();
    match c.range {
        Some((lo, hi)) => s.push_str(&format!("score s0 range {lo}..{hi}\n")),
        None => s.push_str("score s0\n"),
    }
    match c.total {
        Total::Sum => s.push_str("score s1\n"),
        Total::Apart => s.push_str("score s1 apart\n"),
        Total::Difference(range) => {
            s.push_str("score s1\ntotal = s0 - s1");
            if let Some((lo, hi)) = range {
                s.push_str(&format!(" range {lo}..{hi}"));
            }
            s.push('\n');
        }
    }
    for r in &c.rules {
        let (verb, prep) = if r.negative {
            ("subtract", "from")
        } else {
            ("add", "to")
        };
        let p = r.points;
        let target = format!("{prep} s{}", r.score);
        let line = match &r.kind {
            Kind::Field { attr, val } => format!("when a{attr} = \"V{val}\" {verb} {p} {target}"),
            Kind::Num { thr } => format!("when n >= {thr} {verb} {p} {target}"),
            Kind::Once { ty } => format!("when t{ty}.x {verb} {p} {target}"),
            Kind::Each { ty, max: Some(m) } => {
                format!("when t{ty}.x {verb} {p} each max {m} {target}")
            }
            Kind::Each { ty, max: None } => format!("when t{ty}.x {verb} {p} each {target}"),
            Kind::Expires { ty, mult, days } => format!(
                "when t{ty}.x {verb} {p} each max {} expires after {days}d {target}",
                p * mult
            ),
            Kind::Window { ty, n, days } => {
                format!("when t{ty}.x count >= {n} within {days}d {verb} {p} {target}")
            }
            Kind::Lifetime { ty, n } => format!("when t{ty}.x count >= {n} {verb} {p} {target}"),
            Kind::Inactive { days } => format!("when inactive for {days}d {verb} {p} {target}"),
            Kind::Where { ty, val } => {
                format!("when t{ty}.x where k = \"v{val}\" {verb} {p} {target}")
            }
            Kind::FieldPoints { max: Some(m) } => {
                format!("when n is set {verb} n max {m} {target}")
            }
            Kind::FieldPoints { max: None } => format!("when n is set {verb} n {target}"),
            Kind::Prior { ty, hours } => format!(
                "when t{ty}.x within {hours}h of t{}.x {verb} {p} {target}",
                (ty + 1) % 3
            ),
            Kind::PerCap { ty, mult, hours } => format!(
                "when t{ty}.x {verb} {p} each up to {} per {hours}h {target}",
                p * mult
            ),
            Kind::Distinct { ty, mult } => format!(
                "when t{ty}.x {verb} {p} each distinct k max {} {target}",
                p * mult
            ),
            Kind::Reset { ty } => format!("when t{ty}.x reset s{}", r.score),
            Kind::Decay {
                ty,
                each,
                pct,
                days,
                mult,
            } => format!(
                "when t{ty}.x {verb} {p}{}{} decay {pct}% every {days}d {target}",
                if *each { " each" } else { "" },
                mult.map_or(String::new(), |m| format!(" max {}", p * m))
            ),
            Kind::After { days, hours, mult } => format!(
                "after inactive for {days}d {verb} {p}{}{} {target}",
                hours.map_or(String::new(), |h| format!(" every {h}h")),
                mult.map_or(String::new(), |m| format!(" max {}", p * m))
            ),
        };
        s.push_str(&line);
        s.push('\n');
    }
    let (t1, t2) = c.thresholds;
    s.push_str(&format!(
        "grade A when score >= {t1}\ngrade B when score >= {t2}\ngrade C otherwise\n"
    ));
    s
}

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;
const BASE: i64 = 1_780_000_000_000_000;

fn events(c: &Case) -> Vec<Event> {
    c.events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut attributes = serde_json::Map::new();
            if let Some((a, v)) = e.attr {
                attributes.insert(format!("a{a}"), v.map_or(json!(null), |v| json!(format!("v{v}"))));
            }
            if let Some(n) = e.n {
                attributes.insert("n".into(), json!(n));
            }
            let props = e.prop.map_or(json!({}), |v| json!({"k": format!("V{v}")}));
            Event::from_json(&json!({"id": format!("e{i}"), "lead": "l", "type": format!("T{}.X", e.ty),
                "at": time::format(BASE + e.hour * HOUR), "attributes": attributes, "props": props}))
            .unwrap()
        })
        .collect()
}

/// The reference: scores at `now` from the events with `at <= now`, no state.
fn naive(c: &Case, now: i64) -> (Vec<i64>, i64, usize) {
    let evs: Vec<(usize, &Ev, i64)> = c
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| (i, e, BASE + e.hour * HOUR))
        .filter(|(_, _, at)| *at <= now)
        .collect();
    if evs.is_empty() {
        return (vec![0, 0], 0, 2);
    }
    // Attributes at now, and at each event (after its own updates).
    let mut a: [Option<u8>; 2] = [None, None];
    let mut n: Option<i64> = None;
    for (_, e, _) in &evs {
        if let Some((i, v)) = e.attr {
            a[i as usize] = v;
        }
        if e.n.is_some() {
            n = e.n;
        }
    }
    let last = evs.last().map(|x| x.2).unwrap();
    // Per score, the last event that resets it: event rules count only what came after.
    let mut cut = [None::<usize>; 2];
    for r in &c.rules {
        if let Kind::Reset { ty } = r.kind {
            for (i, e, _) in &evs {
                if e.ty == ty {
                    cut[r.score] = cut[r.score].max(Some(*i));
                }
            }
        }
    }
    let mut raw = [0i64; 2];
    for r in &c.rules {
        let per = i64::from(r.points);
        let cap = |x: i64, m: Option<u32>| m.map_or(x, |m| x.clamp(-i64::from(m), i64::from(m)));
        let after = cut[r.score];
        let evs = &evs;
        let matching = move |ty: u8| {
            evs.iter()
                .filter(move |(i, e, _)| e.ty == ty && after.is_none_or(|c| *i > c))
        };
        let v: i64 = match &r.kind {
            Kind::Field { attr, val } => i64::from(a[*attr as usize] == Some(*val)) * per,
            Kind::Num { thr } => i64::from(n.is_some_and(|n| n >= *thr)) * per,
            Kind::Once { ty } => i64::from(matching(*ty).count() > 0) * per,
            Kind::Each { ty, max } => cap(per * matching(*ty).count() as i64, *max),
            Kind::Expires { ty, mult, days } => {
                let live = matching(*ty)
                    .filter(|(_, _, at)| now - at < i64::from(*days) * DAY)
                    .count() as i64;
                cap(per * live, Some(r.points * mult))
            }
            Kind::Window { ty, n: need, days } => {
                let m: Vec<i64> = matching(*ty).map(|x| x.2).collect();
                let fired = (0..m.len()).any(|i| {
                    m[..=i]
                        .iter()
                        .filter(|&&t| t > m[i] - i64::from(*days) * DAY)
                        .count()
                        >= *need as usize
                });
                i64::from(fired) * per
            }
            // Once the lead has had `n` matching events, however far apart.
            Kind::Lifetime { ty, n } => i64::from(matching(*ty).count() >= *n as usize) * per,
            Kind::Inactive { days } => i64::from(now - last >= i64::from(*days) * DAY) * per,
            Kind::Where { ty, val } => {
                i64::from(matching(*ty).any(|(_, e, _)| e.prop == Some(*val))) * per
            }
            Kind::FieldPoints { max } => n.map_or(0, |n| cap(n, *max)),
            // Fires if an event of the other type came before it (in applied order) no
            // more than H hours earlier.
            Kind::Prior { ty, hours } => {
                let of = (ty + 1) % 3;
                let fired = matching(*ty).any(|(i, _, at)| {
                    evs.iter()
                        .any(|(j, e, t)| e.ty == of && j < i && *t >= at - i64::from(*hours) * HOUR)
                });
                i64::from(fired) * per
            }
            Kind::PerCap { ty, mult, hours } => {
                let limit = per * i64::from(*mult);
                let mut accepted: Vec<i64> = Vec::new();
                for (_, _, at) in matching(*ty) {
                    let recent = accepted
                        .iter()
                        .filter(|&&t| t > at - i64::from(*hours) * HOUR)
                        .count() as i64;
                    if (recent + 1) * per <= limit {
                        accepted.push(*at);
                    }
                }
                per * accepted.len() as i64
            }
            Kind::Distinct { ty, mult } => {
                let mut seen: Vec<u8> = Vec::new();
                for (_, e, _) in matching(*ty) {
                    if let Some(v) = e.prop {
                        if !seen.contains(&v) && (seen.len() as u32) < *mult {
                            seen.push(v);
                        }
                    }
                }
                per * seen.len() as i64
            }
            Kind::Reset { .. } => 0,
            // Each award is worth trunc(x × (1 − P/100)^k) on its own, k whole periods
            // later; `each` sums them, `max` caps the sum.
            Kind::Decay {
                ty,
                each,
                pct,
                days,
                mult,
            } => {
                let period = i64::from(*days) * DAY;
                let worth = |at: i64| {
                    let k = ((now - at) / period) as u32;
                    let num = u128::from(r.points) * u128::from(100 - *pct).pow(k);
                    (num / 100u128.pow(k)) as i64
                };
                let mut awards: Vec<i64> = matching(*ty).map(|x| x.2).collect();
                if !*each {
                    awards.truncate(1);
                }
                let sum: i64 = awards.into_iter().map(worth).sum();
                cap(sum, mult.map(|m| r.points * m))
            }
            // In each spell (from an event to the next, or to now), awards at
            // start + D + j·H before the next event (at or before now for the last),
            // spells from the last reset on; `max` caps the total.
            Kind::After { days, hours, mult } => {
                let from = after.unwrap_or(0);
                let mut count = 0i64;
                for (w, (i, _, start)) in evs.iter().enumerate() {
                    if *i < from && after.is_some() {
                        continue;
                    }
                    let end = evs.get(w + 1).map(|x| (x.2, false)).unwrap_or((now, true));
                    let first = start + i64::from(*days) * DAY;
                    let due = |d: i64| if end.1 { d <= end.0 } else { d < end.0 };
                    match hours {
                        None => count += i64::from(due(first)),
                        Some(h) => {
                            let mut d = first;
                            while due(d) {
                                count += 1;
                                d += i64::from(*h) * HOUR;
                            }
                        }
                    }
                }
                cap(count * per, mult.map(|m| r.points * m))
            }
        };
        raw[r.score] += if r.negative { -v } else { v };
    }
    let s0 = c.range.map_or(raw[0], |(lo, hi)| raw[0].clamp(lo, hi));
    let scores = vec![s0, raw[1]];
    let total = match c.total {
        Total::Sum => s0 + raw[1],
        Total::Apart => s0,
        Total::Difference(range) => {
            let d = s0 - raw[1];
            range.map_or(d, |(lo, hi)| d.clamp(lo, hi))
        }
    };
    let grade = if total >= c.thresholds.0 {
        0
    } else if total >= c.thresholds.1 {
        1
    } else {
        2
    };
    (scores, total, grade)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, max_global_rejects: 100_000, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_naive_reference(c in case()) {
        let src = source(&c);
        let program = match leadscore_compiler::compile(&src, "p") {
            Ok(c) => c.program,
            // Random thresholds can make a grade unreachable, which the compiler rightly
            // refuses; any other error is a bug in the generator or the compiler.
            Err(d) => {
                prop_assert!(d.iter().filter(|d| d.is_error()).all(|d| d.code == "E0402"), "{:?}\n{}", d, src);
                return Err(TestCaseError::reject("unreachable grade"));
            }
        };
        let evs = events(&c);
        let last = c.events.last().map_or(0, |e| e.hour);
        let now = BASE + (last + c.now_hours_after) * HOUR;
        let mut engine = Engine::new(&program);
        let mut transitions = Vec::new();
        let lead = engine.rebuild("l", &evs, now, &mut transitions).unwrap();
        let got = engine.evaluate(&lead, now, None);
        let (scores, total, grade) = naive(&c, now);
        // The explanation adds up: to every score, and (with a clamp line of its own) to
        // the total.
        let mut lines = Vec::new();
        engine.evaluate(&lead, now, Some(&mut lines));
        for (i, want) in got.scores.iter().enumerate() {
            let sum: i64 = lines.iter().filter(|l| l.score.index() == i).map(|l| l.points).sum();
            prop_assert_eq!(sum, *want, "score {} of\n{}", i, src);
        }
        let sign = |i: usize| match (&c.total, i) {
            (Total::Apart, 1) => 0,
            (Total::Difference(_), 1) => -1,
            _ => 1,
        };
        let all: i64 = lines
            .iter()
            .map(|l| if l.score == TOTAL { l.points } else { sign(l.score.index()) * l.points })
            .sum();
        prop_assert_eq!(all, got.total, "total of\n{}", src);
        if !evs.is_empty() {
            prop_assert_eq!(&got.scores, &scores, "{}", src);
            prop_assert_eq!(got.total, total, "{}", src);
            prop_assert_eq!(got.grade.index(), grade, "{}", src);
        }
        // Every time-caused transition happens exactly where the reference's grade changes.
        for t in transitions.iter().filter(|t| t.cause == Cause::Time) {
            prop_assert_eq!(naive(&c, t.at).2, t.to.index(), "{}", src);
            prop_assert_eq!(Some(naive(&c, t.at - 1).2), t.from.map(|g| g.index()), "{}", src);
        }
        // An event-caused transition by the last event at its instant lands on the
        // reference's grade there (the engine's fast path computed it).
        for t in &transitions {
            if let Cause::Event(id) = &t.cause {
                let later_same_instant = evs.iter().skip_while(|e| &e.id != id).skip(1).any(|e| e.at == t.at);
                if !later_same_instant {
                    prop_assert_eq!(naive(&c, t.at).2, t.to.index(), "{}", src);
                }
            }
        }
        // And the last transition leaves the lead in its current grade.
        if let Some(t) = transitions.last() {
            prop_assert_eq!(t.to, got.grade);
        }
    }
}
