//! Name resolution and checks: AST -> IR. Reports every problem it finds, with
//! "did you mean" where a near name exists.

mod conditions;
mod declare;
mod desk;
mod mechanics;
mod notify;
mod time;

use crate::ir::{self, Cond, Expr, SetRef, Test, Ty};
use leadscore_dsl::ast;
use leadscore_dsl::diagnostic::closest;
use leadscore_dsl::span::LineIndex;
use leadscore_dsl::{Diagnostic, Span};
use leadscore_runtime::bytecode::verify::{MAX_EXPIRY_SLOTS, MAX_WINDOW_COUNT};
use leadscore_runtime::bytecode::{Cmp, Func, GradeId, ScoreId, KEY_FIELD, LIFETIME};
use leadscore_runtime::text::fold;
use rustc_hash::FxHashMap as HashMap;

/// Where a condition is evaluated, which decides what its names mean.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    /// A field rule: names are the lead's current attributes.
    Field,
    /// An `if` guard: attributes; tested now for field rules, at the event for event rules.
    Guard,
    /// A `where` filter: names are the event's props, `lead.NAME` its attributes.
    Where,
    /// A grade condition: names are scores, `lead.NAME` attributes.
    Grade,
    /// A tag condition: like a grade, plus `grade`.
    Tag,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Usage {
    Num,
    Text,
}

pub struct Resolver<'a> {
    src: &'a str,
    lines: LineIndex<'a>,
    pub diags: Vec<Diagnostic>,
    ir: ir::Ir,
    sets: HashMap<String, (SetRef, Span)>,
    set_used: Vec<bool>,
    lists: HashMap<Vec<String>, SetRef>,
    scores: HashMap<String, ScoreId>,
    /// No `score` declared: one implicit score named `score`.
    implicit_score: bool,
    grade_names: Vec<(String, Span)>,
    usage: HashMap<String, (Usage, Span)>,
    /// The event type of the event rule being resolved (its `where` reads its props).
    event_type: Option<String>,
}

pub fn resolve(file: &ast::File, src: &str, default_name: &str) -> (ir::Ir, Vec<Diagnostic>) {
    let mut r = Resolver {
        src,
        lines: LineIndex::new(src),
        diags: Vec::new(),
        ir: ir::Ir::default(),
        sets: HashMap::default(),
        set_used: Vec::new(),
        lists: HashMap::default(),
        scores: HashMap::default(),
        implicit_score: false,
        grade_names: Vec::new(),
        usage: HashMap::default(),
        event_type: None,
    };
    r.declarations(file, default_name);
    r.bodies(file);
    if !r.diags.iter().any(Diagnostic::is_error) {
        r.unused_sets();
    }
    (r.ir, r.diags)
}

impl Resolver<'_> {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn line(&self, span: Span) -> u32 {
        self.lines.line(span.start as usize) as u32
    }

    fn line_of(&self, span: Span) -> usize {
        self.lines.line(span.start as usize)
    }

    // ---- pass 1: names ----

    // ---- pass 2: rules, grades, tags ----

    fn bodies(&mut self, file: &ast::File) {
        for item in &file.items {
            match item {
                ast::Item::Rule(r) => self.rule(r, &[], &[]),
                ast::Item::If(b) => self.if_block(b, &[], &[]),
                _ => {}
            }
        }
        self.grades(file);
        for item in &file.items {
            if let ast::Item::Tag(t) = item {
                self.tag(t);
            }
        }
        self.desk(file);
        self.notifications(file);
    }

    fn if_block(&mut self, b: &ast::IfBlock, guards: &[Cond], texts: &[String]) {
        let mut guards = guards.to_vec();
        let mut texts = texts.to_vec();
        texts.push(normalise(b.cond.span().text(self.src)));
        if let Some(c) = self.cond(&b.cond, Ctx::Guard) {
            guards.push(c);
        }
        for item in &b.body {
            match item {
                ast::Item::Rule(r) => self.rule(r, &guards, &texts),
                ast::Item::If(inner) => self.if_block(inner, &guards, &texts),
                _ => {}
            }
        }
    }

    fn rule(&mut self, r: &ast::Rule, guards: &[Cond], guard_texts: &[String]) {
        let a = match &r.effect {
            ast::Effect::Award(a) => a,
            ast::Effect::Reset(score, span) => {
                return self.reset_rule(r, score, *span, guards, guard_texts);
            }
        };
        let score = self.target(a);
        let event = matches!(r.trigger, ast::Trigger::Event(_));
        self.event_type = match &r.trigger {
            ast::Trigger::Event(t) => {
                let ty = fold(&t.event_type.name);
                self.ir.reads.events.push((ty.clone(), t.event_type.span));
                Some(ty)
            }
            ast::Trigger::Field(_) | ast::Trigger::After(_) => None,
        };
        let amount = match &a.points {
            ast::Points::Const(n) => {
                if n.value == 0 {
                    self.err(
                        Diagnostic::warning("W0001", n.span, "this rule gives 0 points")
                            .label("zero"),
                    );
                }
                Some(ir::Amount::Const(n.value as u32))
            }
            ast::Points::Field(p) => self.points_field(&p.clone(), event),
        };
        if let Some(m) = a.max {
            if m.value == 0 {
                self.err(
                    Diagnostic::error("E0312", m.span, "`max` must be positive")
                        .label("zero")
                        .help("leave `max` out for no cap"),
                );
            }
        }
        let kind = match &r.trigger {
            ast::Trigger::Field(c) => {
                if let Some(s) = a.each {
                    self.err(
                        Diagnostic::error("E0310", s, "`each` only applies to event rules")
                            .label("this rule tests attributes")
                            .help("a field rule counts once, for as long as its condition holds"),
                    );
                }
                if let Some(e) = a.expires {
                    self.err(
                        Diagnostic::error(
                            "E0313",
                            e.span,
                            "`expires after` only applies to event rules",
                        )
                        .label("this rule tests attributes"),
                    );
                }
                self.event_only(a);
                let cond = self.cond(c, Ctx::Field);
                cond.map(|c| ir::RuleKind::Field {
                    cond: conj(guards, Some(c)),
                })
            }
            ast::Trigger::Event(t) => self.event_kind(t, a, guards, amount.as_ref()),
            ast::Trigger::After(d) => self.time_kind(*d, a, amount.as_ref()),
        };
        let own_decay = a.decay.map(|d| self.decay(d));
        let (Some(mut kind), Some(score), Some(amount)) = (kind, score, amount) else {
            return;
        };
        if let ir::RuleKind::Event { decay, each, .. } = &mut kind {
            // The rule's own decay, or its score's.
            *decay = match own_decay {
                Some(own) => own,
                None => self.ir.scores[score.index()].decay,
            };
            if decay.is_some() && *each {
                self.many_awards(a, &amount);
            }
        }
        let max = a.max.map(|m| m.value as u32).filter(|m| *m > 0);
        self.ir.rules.push(ir::Rule {
            kind,
            score,
            points: ir::Points {
                negative: a.verb == ast::Verb::Subtract,
                amount,
                max,
            },
            line: self.line(r.span),
            text: normalise(r.span.text(self.src)),
            guards: guard_texts.to_vec(),
            ask: r.ask.as_ref().map(|s| s.value.clone()),
            span: r.span,
        });
    }

    fn event_kind(
        &mut self,
        t: &ast::EventTrigger,
        a: &ast::Action,
        guards: &[Cond],
        amount: Option<&ir::Amount>,
    ) -> Option<ir::RuleKind> {
        let filter = match &t.filter {
            Some(f) => Some(self.cond(f, Ctx::Where)?),
            None => None,
        };
        let mut ok = true;
        let window = match t.window {
            Some(w) => {
                if w.count.value < 1 || w.count.value > i64::from(MAX_WINDOW_COUNT) {
                    self.err(
                        Diagnostic::error(
                            "E0305",
                            w.count.span,
                            format!("`count >=` must be between 1 and {MAX_WINDOW_COUNT}"),
                        )
                        .label("out of range"),
                    );
                    ok = false;
                }
                if let Some(d) = w.within {
                    ok &= self.positive(d);
                }
                if let Some(s) = a.each {
                    self.err(
                        Diagnostic::error(
                            "E0311",
                            s,
                            "`each` cannot be combined with `count >= N within D`",
                        )
                        .label("a window awards its points once, when it first holds"),
                    );
                    ok = false;
                }
                if let Some(e) = a.expires {
                    self.err(
                        Diagnostic::error(
                            "E0311",
                            e.span,
                            "`expires after` cannot be combined with `count >= N within D`",
                        )
                        .label("a window awards its points once, when it first holds"),
                    );
                    ok = false;
                }
                let seconds = w.within.map_or(LIFETIME, |d| d.seconds as u32);
                Some((w.count.value as u32, seconds))
            }
            None => None,
        };
        let (prior, per, distinct) = self.mechanics(t, a, amount, window.is_some())?;
        let expires = match a.expires {
            Some(e) => {
                ok &= self.positive(e);
                match (a.max, amount) {
                    (None, _) => {
                        self.err(
                            Diagnostic::error("E0314", e.span, "`expires after` needs `max`")
                                .label("no `max` on this rule")
                                .help("for example `add 10 each max 30 expires after 90d`: only the newest max/points awards are kept"),
                        );
                        ok = false;
                    }
                    (_, Some(ir::Amount::Attr(_) | ir::Amount::Prop(_))) => {
                        self.err(
                            Diagnostic::error(
                                "E0315",
                                e.span,
                                "`expires after` needs a fixed number of points",
                            )
                            .label("this rule takes its points from a field"),
                        );
                        ok = false;
                    }
                    (Some(m), Some(ir::Amount::Const(n)))
                        if *n > 0
                            && m.value > 0
                            && (m.value as u32).div_ceil(*n) > MAX_EXPIRY_SLOTS =>
                    {
                        self.err(
                            Diagnostic::error(
                                "E0316",
                                m.span,
                                "this `max` keeps too many awards for `expires after`",
                            )
                            .label(format!("max/points must be at most {MAX_EXPIRY_SLOTS}")),
                        );
                        ok = false;
                    }
                    _ => {}
                }
                Some(e.seconds as u32)
            }
            None => None,
        };
        ok.then(|| ir::RuleKind::Event {
            event_type: fold(&t.event_type.name),
            cond: event_cond(guards, filter),
            each: a.each.is_some(),
            expires,
            window,
            prior,
            per,
            distinct,
            reset: false,
            decay: None,
        })
    }

    fn positive(&mut self, d: ast::Duration) -> bool {
        if d.seconds <= 0 {
            self.err(
                Diagnostic::error("E0306", d.span, "a duration must be positive").label("zero"),
            );
        }
        d.seconds > 0
    }

    /// The score a rule names after `to`, `from` or `reset`.
    fn score_named(&mut self, t: &ast::Ident) -> Option<ScoreId> {
        match self.scores.get(&t.name) {
            Some(id) => Some(*id),
            None => {
                let names: Vec<&str> = self.ir.scores.iter().map(|s| s.name.as_str()).collect();
                let hint = closest(&t.name, names.iter().copied());
                let d = Diagnostic::error("E0203", t.span, format!("unknown score `{}`", t.name))
                    .label("no score with this name");
                let d = if hint.is_some() {
                    d.suggest(hint)
                } else {
                    d.help(format!("the scores are: {}", names.join(", ")))
                };
                self.err(d);
                None
            }
        }
    }

    fn target(&mut self, a: &ast::Action) -> Option<ScoreId> {
        match &a.target {
            Some(t) => self.score_named(t),
            None if self.ir.scores.len() == 1 => Some(ScoreId(0)),
            None => {
                let names: Vec<&str> = self.ir.scores.iter().map(|s| s.name.as_str()).collect();
                let word = if a.verb == ast::Verb::Add {
                    "to"
                } else {
                    "from"
                };
                self.err(
                    Diagnostic::error(
                        "E0209",
                        a.span,
                        "this rule does not say which score it changes",
                    )
                    .label("no score named")
                    .help(format!(
                        "end the rule with `{word} {}` (the scores are: {})",
                        names[0],
                        names.join(", ")
                    )),
                );
                None
            }
        }
    }

    fn points_field(&mut self, p: &ast::Path, event: bool) -> Option<ir::Amount> {
        let dotted = p.dotted();
        if let Some(attr) = dotted.strip_prefix("lead.") {
            self.ir.reads.attributes.push((attr.to_string(), p.span));
            return Some(ir::Amount::Attr(attr.to_string()));
        }
        if event {
            self.read_prop(&dotted, p.span);
            Some(ir::Amount::Prop(dotted))
        } else {
            if self.is_score_name(&dotted) {
                self.score_in_rule(p.span, &dotted);
                return None;
            }
            self.record(&dotted, Usage::Num, p.span);
            self.ir.reads.attributes.push((dotted.clone(), p.span));
            Some(ir::Amount::Attr(dotted))
        }
    }

    /// Notes that the event rule being resolved reads its event's `prop`.
    fn read_prop(&mut self, prop: &str, span: Span) {
        let ty = self.event_type.clone().unwrap_or_default();
        self.ir.reads.props.push((ty, prop.to_string(), span));
    }

    fn is_score_name(&self, name: &str) -> bool {
        name == "score" || name == "grade" || self.scores.contains_key(name)
    }

    fn score_in_rule(&mut self, span: Span, name: &str) {
        self.err(
            Diagnostic::error(
                "E0207",
                span,
                format!("`{name}` is a score or grade; rules test lead attributes"),
            )
            .label("scores and grades can be tested only in `grade` and `tag` conditions")
            .help(format!(
                "to test an attribute with this name, write `lead.{name}`"
            )),
        );
    }

    fn grades(&mut self, file: &ast::File) {
        let decls: Vec<&ast::GradeDecl> = file
            .items
            .iter()
            .filter_map(|i| match i {
                ast::Item::Grade(g) => Some(g),
                _ => None,
            })
            .collect();
        let mut otherwise: Option<Span> = None;
        for g in &decls {
            if let Some(o) = otherwise {
                self.err(
                    Diagnostic::error(
                        "E0402",
                        g.name.span,
                        format!("grade `{}` can never be reached", g.name.name),
                    )
                    .label("unreachable")
                    .related(o, "`otherwise` above already matches every lead")
                    .help("`otherwise` must be the last grade"),
                );
                continue;
            }
            let cond = match &g.cond {
                Some(c) => match self.cond(c, Ctx::Grade) {
                    Some(c) => Some(c),
                    None => continue,
                },
                None => {
                    otherwise = Some(g.span);
                    None
                }
            };
            let until = match &g.until {
                Some(u) => match self.cond(u, Ctx::Grade) {
                    Some(u) => Some(u),
                    None => continue,
                },
                None => None,
            };
            self.ir.grades.push(ir::Grade {
                name: g.name.name.clone(),
                cond,
                until,
                line: self.line(g.span),
                span: g.span,
            });
        }
        if otherwise.is_none() {
            let (span, label) = match decls.last() {
                Some(g) => (g.span, "the last grade has a condition"),
                None => {
                    let end = self.src.trim_end().len();
                    (Span::new(end, end), "the file has no grades")
                }
            };
            let example = decls
                .last()
                .map_or("C".to_string(), |g| next_grade(&g.name.name));
            self.err(
                Diagnostic::error("E0401", span, "missing `otherwise` grade")
                    .label(label)
                    .help(format!("end the grades with one for every other lead, e.g. `grade {example} otherwise`")),
            );
        }
    }

    fn tag(&mut self, t: &ast::TagDecl) {
        let ast::TagCond::Cond(c) = &t.cond else {
            return;
        };
        if self.ir.tags.iter().any(|x| x.name == t.name.name) {
            self.err(
                Diagnostic::error(
                    "E0211",
                    t.name.span,
                    format!("tag `{}` is declared twice", t.name.name),
                )
                .label("second declaration"),
            );
            return;
        }
        if let Some(cond) = self.cond(c, Ctx::Tag) {
            self.ir.tags.push(ir::Tag {
                name: t.name.name.clone(),
                cond,
                line: self.line(t.span),
            });
        }
    }

    // ---- conditions ----
}

fn conj(guards: &[Cond], last: Option<Cond>) -> Cond {
    let mut parts: Vec<Cond> = guards.to_vec();
    parts.extend(last);
    match parts.len() {
        0 => Cond::Const(true),
        1 => parts.pop().unwrap_or(Cond::Const(true)),
        _ => Cond::And(parts),
    }
}

/// An event rule's condition: its `if` guards and its `where` filter (none: always).
fn event_cond(guards: &[Cond], filter: Option<Cond>) -> Option<Cond> {
    match (guards.is_empty(), filter) {
        (true, f) => f,
        (false, f) => Some(conj(guards, f)),
    }
}

fn folded_items(l: &ast::ListLit) -> Vec<String> {
    let mut items: Vec<String> = l.items.iter().map(|s| fold(s.value.trim())).collect();
    items.sort();
    items.dedup();
    items
}

fn cmp(op: ast::CmpOp) -> Cmp {
    match op {
        ast::CmpOp::Eq => Cmp::Eq,
        ast::CmpOp::Ne => Cmp::Ne,
        ast::CmpOp::Lt => Cmp::Lt,
        ast::CmpOp::Le => Cmp::Le,
        ast::CmpOp::Gt => Cmp::Gt,
        ast::CmpOp::Ge => Cmp::Ge,
    }
}

fn fold_literal_cmp(l: &Expr, op: Cmp, r: &Expr) -> bool {
    use std::cmp::Ordering;
    let ord = match (l, r) {
        (Expr::Num(a), Expr::Num(b)) => a.partial_cmp(b),
        (Expr::Str(a), Expr::Str(b)) => Some(a.cmp(b)),
        (Expr::Bool(a), Expr::Bool(b)) => Some(a.cmp(b)),
        _ => None,
    };
    match (op, ord) {
        (Cmp::Eq, Some(o)) => o == Ordering::Equal,
        (Cmp::Ne, Some(o)) => o != Ordering::Equal,
        (Cmp::Lt, Some(o)) => o == Ordering::Less,
        (Cmp::Le, Some(o)) => o != Ordering::Greater,
        (Cmp::Gt, Some(o)) => o == Ordering::Greater,
        (Cmp::Ge, Some(o)) => o != Ordering::Less,
        (_, None) => false,
    }
}

fn ty_name(t: Ty) -> &'static str {
    match t {
        Ty::Num => "a number",
        Ty::Text => "text",
        Ty::Bool => "true/false",
        Ty::Any => "a field",
    }
}

/// The next letter after a grade's name, for the `otherwise` suggestion.
fn next_grade(name: &str) -> String {
    match name.chars().next() {
        Some(c) if name.len() == 1 && c.is_ascii_uppercase() && c < 'Z' => {
            ((c as u8 + 1) as char).to_string()
        }
        _ => "other".to_string(),
    }
}

/// A rule's text on one line: comments removed, whitespace collapsed.
pub fn normalise(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_str = false;
        let mut escaped = false;
        let mut end = line.len();
        for (i, c) in line.char_indices() {
            if in_str {
                in_str = escaped || c != '"';
                escaped = !escaped && c == '\\';
            } else if c == '"' {
                in_str = true;
            } else if c == '#' {
                end = i;
                break;
            }
        }
        for word in line[..end].split_whitespace() {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}
