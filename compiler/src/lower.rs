//! IR -> bytecode: constant pools, conditions as forward-jump stack code, event rules
//! indexed by type, stable rule ids.

use crate::ir::{self, Cond, Expr, Ir, RuleKind, Test};
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::verify::MAX_STACK;
use leadscore_runtime::bytecode::*;
use rustc_hash::{FxHashMap as HashMap, FxHashSet};
use std::collections::BTreeMap;

#[derive(Default)]
struct Lower {
    code: Vec<Op>,
    strings: Vec<String>,
    string_ids: HashMap<String, u32>,
    numbers: Vec<f64>,
    number_ids: HashMap<u64, u32>,
    fields: Vec<String>,
    field_ids: HashMap<String, u32>,
    depth: usize,
    max_depth: usize,
}

pub fn lower(ir: &Ir, source_hash: [u8; 32]) -> Result<Program, Vec<Diagnostic>> {
    let mut l = Lower::default();
    let mut diags = Vec::new();
    let mut field_rules = Vec::new();
    let mut event_rules = Vec::new();
    let mut time_rules = Vec::new();
    let mut by_type: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut rules = Vec::new();
    let mut ids = FxHashSet::default();
    for (i, r) in ir.rules.iter().enumerate() {
        let index = RuleIndex(i as u32);
        rules.push(RuleInfo {
            line: r.line,
            text: r.text.clone(),
            ask: r.ask.clone(),
        });
        let id = rule_id(r, &mut ids);
        let points = Points {
            negative: r.points.negative,
            amount: match &r.points.amount {
                ir::Amount::Const(n) => Amount::Const(*n),
                ir::Amount::Attr(f) => Amount::Attr(FieldId(l.field(f))),
                ir::Amount::Prop(f) => Amount::Prop(FieldId(l.field(f))),
            },
            max: r.points.max,
        };
        match &r.kind {
            RuleKind::Field { cond } => {
                let Some(cond) = l.condition(cond) else {
                    diags.push(too_complex(r.span));
                    continue;
                };
                field_rules.push(FieldRule {
                    id,
                    rule: index,
                    score: r.score,
                    cond,
                    points,
                });
            }
            RuleKind::Event {
                event_type,
                cond,
                each,
                expires,
                window,
                prior,
                per,
                distinct,
                reset,
                decay,
            } => {
                let Ok(cond) = l.optional(cond.as_ref()) else {
                    diags.push(too_complex(r.span));
                    continue;
                };
                let prior = match prior {
                    Some(pr) => {
                        let Ok(c) = l.optional(pr.cond.as_ref()) else {
                            diags.push(too_complex(r.span));
                            continue;
                        };
                        Some(Prior {
                            event_type: pr.event_type.clone(),
                            cond: c,
                            seconds: pr.seconds,
                        })
                    }
                    None => None,
                };
                by_type
                    .entry(event_type.clone())
                    .or_default()
                    .push(event_rules.len() as u32);
                event_rules.push(EventRule {
                    id,
                    rule: index,
                    score: r.score,
                    cond,
                    points,
                    each: *each,
                    expires: *expires,
                    window: window.map(|(count, seconds)| Window { count, seconds }),
                    prior,
                    per: per.map(|(points, seconds)| PerCap { points, seconds }),
                    distinct: distinct.as_ref().map(|f| FieldId(l.field(f))),
                    reset: *reset,
                    decay: decay.map(|(percent, seconds)| Decay { percent, seconds }),
                });
            }
            RuleKind::Time { delay, every } => time_rules.push(TimeRule {
                id,
                rule: index,
                score: r.score,
                points,
                delay: *delay,
                every: *every,
            }),
        }
    }
    let mut grades = Vec::new();
    for g in &ir.grades {
        let (Ok(cond), Ok(until)) = (l.optional(g.cond.as_ref()), l.optional(g.until.as_ref()))
        else {
            diags.push(too_complex(g.span));
            continue;
        };
        grades.push(GradeDef {
            name: g.name.clone(),
            cond,
            until,
            line: g.line,
        });
    }
    let mut tags = Vec::new();
    for t in &ir.tags {
        if let Some(cond) = l.condition(&t.cond) {
            tags.push(TagDef {
                name: t.name.clone(),
                cond,
                line: t.line,
            });
        }
    }
    let mut assigns = Vec::new();
    for a in &ir.assigns {
        let Ok(cond) = l.optional(a.cond.as_ref()) else {
            diags.push(too_complex(a.span));
            continue;
        };
        assigns.push(AssignDef {
            grades: a.grades.clone(),
            cond,
            to: a.to.clone(),
            within: a.within,
            plan: a.plan,
            line: a.line,
            text: a.text.clone(),
        });
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(Program {
        name: ir.name.clone(),
        source_hash,
        strings: l.strings,
        numbers: l.numbers,
        fields: l.fields,
        sets: ir
            .sets
            .iter()
            .map(|s| Set {
                name: s.name.clone(),
                items: s.items.clone(),
            })
            .collect(),
        scores: ir
            .scores
            .iter()
            .map(|s| ScoreDef {
                name: s.name.clone(),
                range: s.range,
                line: s.line,
                apart: s.apart,
            })
            .collect(),
        code: l.code,
        field_rules,
        event_rules,
        time_rules,
        event_types: by_type
            .into_iter()
            .map(|(name, rules)| EventType { name, rules })
            .collect(),
        grades,
        tags,
        rules,
        channels: ir.channels.clone(),
        notifies: ir.notifies.clone(),
        protected: ir.protected.clone(),
        total: ir.total.as_ref().map(|t| TotalDef {
            terms: t.terms.clone(),
            range: t.range,
            line: t.line,
        }),
        assigns,
        recycle: ir.recycle,
        overdue_tags: ir.overdue_tags.clone(),
        plans: ir.plans.clone(),
    })
}

fn too_complex(span: leadscore_dsl::Span) -> Diagnostic {
    Diagnostic::error("E0006", span, "this condition is too complex")
        .label(format!("it needs more than {MAX_STACK} values at once"))
        .help("split it into simpler conditions")
}

/// The index of `s` in `pool`, adding it the first time.
fn intern(pool: &mut Vec<String>, ids: &mut HashMap<String, u32>, s: &str) -> u32 {
    if let Some(&i) = ids.get(s) {
        return i;
    }
    let i = pool.len() as u32;
    pool.push(s.to_string());
    ids.insert(s.to_string(), i);
    i
}

/// A hash of the rule's guards and text (32-bit FNV-1a: stable across builds and
/// toolchains, unlike `std`'s hasher); identical rules get successive ids.
fn rule_id(r: &ir::Rule, taken: &mut FxHashSet<u32>) -> RuleId {
    let mut h: u32 = 0x811c_9dc5;
    let guards = r.guards.iter().flat_map(|g| g.bytes().chain([b'\n']));
    for b in guards.chain(r.text.bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    while !taken.insert(h) {
        h = h.wrapping_add(1);
    }
    RuleId(h)
}

impl Lower {
    fn string(&mut self, s: &str) -> u32 {
        intern(&mut self.strings, &mut self.string_ids, s)
    }

    fn number(&mut self, n: f64) -> u32 {
        *self.number_ids.entry(n.to_bits()).or_insert_with(|| {
            self.numbers.push(n);
            (self.numbers.len() - 1) as u32
        })
    }

    fn field(&mut self, f: &str) -> u32 {
        intern(&mut self.fields, &mut self.field_ids, f)
    }

    /// Lowers an optional condition; `Err` when it is too complex.
    fn optional(&mut self, c: Option<&Cond>) -> Result<Option<CodeRef>, ()> {
        c.map_or(Ok(None), |c| self.condition(c).map(Some).ok_or(()))
    }

    fn emit(&mut self, op: Op) -> usize {
        let (pop, push) = op.stack_effect();
        self.depth = self.depth.saturating_sub(pop) + push;
        self.max_depth = self.max_depth.max(self.depth);
        self.code.push(op);
        self.code.len() - 1
    }

    /// Lowers one condition ending in `Return`; `None` when it needs too deep a stack.
    fn condition(&mut self, c: &Cond) -> Option<CodeRef> {
        let start = self.code.len();
        self.depth = 0;
        self.max_depth = 0;
        self.cond(c);
        self.emit(Op::Return);
        if self.max_depth > MAX_STACK {
            self.code.truncate(start);
            return None;
        }
        Some(CodeRef(start as u32))
    }

    fn cond(&mut self, c: &Cond) {
        match c {
            Cond::And(parts) | Cond::Or(parts) => {
                let and = matches!(c, Cond::And(_));
                let mut jumps = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    self.cond(p);
                    if i + 1 < parts.len() {
                        jumps.push(self.emit(if and {
                            Op::JumpIfFalse(0)
                        } else {
                            Op::JumpIfTrue(0)
                        }));
                    }
                }
                if parts.is_empty() {
                    self.emit(Op::Bool(and));
                }
                let end = self.code.len();
                for j in jumps {
                    let n = (end - j - 1) as u32;
                    self.code[j] = if and {
                        Op::JumpIfFalse(n)
                    } else {
                        Op::JumpIfTrue(n)
                    };
                }
            }
            Cond::Not(inner) => {
                self.cond(inner);
                self.emit(Op::Not);
            }
            Cond::Inactive(s) => {
                self.emit(Op::Inactive(*s));
            }
            Cond::GradeIs(g) => {
                self.emit(Op::GradeIs(*g));
            }
            Cond::Const(b) => {
                self.emit(Op::Bool(*b));
            }
            Cond::Test(lhs, t) => {
                self.expr(lhs);
                let op = match t {
                    Test::IsSet => Op::IsSet,
                    Test::IsNotSet => Op::IsNotSet,
                    Test::In(s) => Op::In(SetId(s.0 as u32)),
                    Test::NotIn(s) => Op::NotIn(SetId(s.0 as u32)),
                    Test::ContainsAny(s) => Op::ContainsAny(SetId(s.0 as u32)),
                    Test::ContainsAnyWord(s) => Op::ContainsAnyWord(SetId(s.0 as u32)),
                    Test::Contains(s) => Op::Contains(StrId(self.string(s))),
                    Test::ContainsWord(s) => Op::ContainsWord(StrId(self.string(s))),
                    Test::Cmp(op, rhs) => {
                        self.expr(rhs);
                        Op::Cmp(*op)
                    }
                };
                self.emit(op);
            }
        }
    }

    fn expr(&mut self, e: &Expr) {
        let op = match e {
            Expr::Attr(f) => Op::Attr(FieldId(self.field(f))),
            Expr::Prop(f) => Op::Prop(FieldId(self.field(f))),
            Expr::Num(n) => Op::Num(NumId(self.number(*n))),
            Expr::Str(s) => Op::Str(StrId(self.string(s))),
            Expr::Bool(b) => Op::Bool(*b),
            Expr::Score(s) => Op::Score(*s),
            Expr::Total => Op::Total,
            Expr::Call(f, a) => {
                self.expr(a);
                Op::Call(*f)
            }
            Expr::Add(a, b) | Expr::Sub(a, b) => {
                self.expr(a);
                self.expr(b);
                if matches!(e, Expr::Add(..)) {
                    Op::Add
                } else {
                    Op::Sub
                }
            }
        };
        self.emit(op);
    }
}
