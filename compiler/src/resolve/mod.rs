//! Name resolution and checks: AST -> IR. Reports every problem it finds, with
//! "did you mean" where a near name exists.

mod notify;

use crate::ir::{self, Cond, Expr, SetRef, Test, Ty};
use leadscore_dsl::ast;
use leadscore_dsl::diagnostic::closest;
use leadscore_dsl::span::LineIndex;
use leadscore_dsl::{Diagnostic, Span};
use leadscore_runtime::bytecode::verify::{MAX_EXPIRY_SLOTS, MAX_WINDOW_COUNT};
use leadscore_runtime::bytecode::{Cmp, Func, GradeId, ScoreId};
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

    fn declarations(&mut self, file: &ast::File, default_name: &str) {
        let mut ruleset: Option<Span> = None;
        for item in &file.items {
            match item {
                ast::Item::Ruleset(d) => {
                    if let Some(first) = ruleset {
                        self.err(
                            Diagnostic::error("E0215", d.span, "the ruleset is named twice")
                                .label("second `ruleset`")
                                .related(first, "first named here"),
                        );
                    } else if d.name.value.trim().is_empty() {
                        self.err(Diagnostic::error(
                            "E0216",
                            d.name.span,
                            "the ruleset name is empty",
                        ));
                    }
                    ruleset = Some(d.span);
                    self.ir.name = d.name.value.clone();
                }
                ast::Item::Set(d) => self.declare_set(d),
                ast::Item::Score(d) => self.declare_score(d),
                ast::Item::Grade(d) => {
                    if let Some((_, first)) =
                        self.grade_names.iter().find(|(n, _)| *n == d.name.name)
                    {
                        let first = *first;
                        self.err(
                            Diagnostic::error(
                                "E0210",
                                d.name.span,
                                format!("grade `{}` is declared twice", d.name.name),
                            )
                            .label("second declaration")
                            .related(first, "first declared here"),
                        );
                    } else {
                        self.grade_names.push((d.name.name.clone(), d.name.span));
                    }
                }
                ast::Item::Field(d) => self.declare_protected(d),
                _ => {}
            }
        }
        if ruleset.is_none() {
            self.ir.name = default_name.to_string();
        }
        if self.ir.scores.is_empty() {
            self.implicit_score = true;
            self.scores.insert("score".into(), ScoreId(0));
            self.ir.scores.push(ir::Score {
                name: "score".into(),
                range: None,
                line: 0,
                span: Span::default(),
            });
        } else if self.ir.scores.len() > 1 {
            if let Some(s) = self.ir.scores.iter().find(|s| s.name == "score") {
                let span = s.span;
                self.err(
                    Diagnostic::error(
                        "E0214",
                        span,
                        "a score cannot be named `score` when there are several scores",
                    )
                    .label("`score` means the sum of all scores")
                    .help("give this score another name"),
                );
            }
        }
    }

    fn declare_protected(&mut self, d: &ast::FieldDecl) {
        for n in &d.names {
            if self.ir.protected.contains(&n.name) {
                self.err(
                    Diagnostic::warning(
                        "W0004",
                        n.span,
                        format!("field `{}` is already protected", n.name),
                    )
                    .label("said again here"),
                );
            } else {
                self.ir.protected.push(n.name.clone());
            }
        }
        self.ir.protected.sort();
    }

    fn declare_set(&mut self, d: &ast::SetDecl) {
        if let Some((_, first)) = self.sets.get(&d.name.name) {
            let first = *first;
            self.err(
                Diagnostic::error(
                    "E0212",
                    d.name.span,
                    format!("set `{}` is declared twice", d.name.name),
                )
                .label("second declaration")
                .related(first, "first declared here"),
            );
            return;
        }
        let items = folded_items(&d.items);
        let r = SetRef(self.ir.sets.len());
        self.ir.sets.push(ir::Set {
            name: Some(d.name.name.clone()),
            items,
        });
        self.set_used.push(false);
        self.sets.insert(d.name.name.clone(), (r, d.name.span));
    }

    fn declare_score(&mut self, d: &ast::ScoreDecl) {
        if let Some(&id) = self.scores.get(&d.name.name) {
            let first = self.ir.scores[id.index()].span;
            self.err(
                Diagnostic::error(
                    "E0213",
                    d.name.span,
                    format!("score `{}` is declared twice", d.name.name),
                )
                .label("second declaration")
                .related(first, "first declared here"),
            );
            return;
        }
        let range = d.range.map(|r| (r.lo.value, r.hi.value));
        if let Some(r) = d.range {
            if r.lo.value > r.hi.value {
                self.err(
                    Diagnostic::error("E0317", r.span, "this range is empty")
                        .label(format!("{} is greater than {}", r.lo.value, r.hi.value))
                        .help("write the smaller number first, e.g. `range 0..60`"),
                );
            }
        }
        let id = ScoreId(self.ir.scores.len() as u32);
        self.scores.insert(d.name.name.clone(), id);
        self.ir.scores.push(ir::Score {
            name: d.name.name.clone(),
            range,
            line: self.line(d.span),
            span: d.name.span,
        });
    }

    fn unused_sets(&mut self) {
        for (name, (r, span)) in &self.sets {
            if !self.set_used[r.0] {
                self.diags.push(
                    Diagnostic::warning("W0002", *span, format!("set `{name}` is never used"))
                        .label("declared here"),
                );
            }
        }
    }

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
        let a = &r.action;
        let score = self.target(a);
        let event = matches!(r.trigger, ast::Trigger::Event(_));
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
            ast::Points::Field(p) => self.points_field(p, event),
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
                let cond = self.cond(c, Ctx::Field);
                cond.map(|c| ir::RuleKind::Field {
                    cond: conj(guards, Some(c)),
                })
            }
            ast::Trigger::Event(t) => self.event_kind(t, a, guards, amount.as_ref()),
        };
        let (Some(kind), Some(score), Some(amount)) = (kind, score, amount) else {
            return;
        };
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
                ok &= self.positive(w.within);
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
                Some((w.count.value as u32, w.within.seconds as u32))
            }
            None => None,
        };
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
            cond: match (guards.is_empty(), filter) {
                (true, f) => f,
                (false, f) => Some(conj(guards, f)),
            },
            each: a.each.is_some(),
            expires,
            window,
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

    fn target(&mut self, a: &ast::Action) -> Option<ScoreId> {
        match &a.target {
            Some(t) => match self.scores.get(&t.name) {
                Some(id) => Some(*id),
                None => {
                    let names: Vec<&str> = self.ir.scores.iter().map(|s| s.name.as_str()).collect();
                    let hint = closest(&t.name, names.iter().copied());
                    let d =
                        Diagnostic::error("E0203", t.span, format!("unknown score `{}`", t.name))
                            .label("no score with this name");
                    let d = if hint.is_some() {
                        d.suggest(hint)
                    } else {
                        d.help(format!("the scores are: {}", names.join(", ")))
                    };
                    self.err(d);
                    None
                }
            },
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
            return Some(ir::Amount::Attr(attr.to_string()));
        }
        if event {
            Some(ir::Amount::Prop(dotted))
        } else {
            if self.is_score_name(&dotted) {
                self.score_in_rule(p.span, &dotted);
                return None;
            }
            self.record(&dotted, Usage::Num, p.span);
            Some(ir::Amount::Attr(dotted))
        }
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
        if let Some(cond) = self.cond(&t.cond, Ctx::Tag) {
            self.ir.tags.push(ir::Tag {
                name: t.name.name.clone(),
                cond,
                line: self.line(t.span),
            });
        }
    }

    // ---- conditions ----

    fn cond(&mut self, c: &ast::Cond, ctx: Ctx) -> Option<Cond> {
        match c {
            ast::Cond::Or(parts, _) | ast::Cond::And(parts, _) => {
                // Resolve every part, so each part's errors are reported.
                let resolved: Vec<Option<Cond>> = parts.iter().map(|p| self.cond(p, ctx)).collect();
                let parts: Vec<Cond> = resolved.into_iter().collect::<Option<_>>()?;
                Some(if matches!(c, ast::Cond::Or(..)) {
                    Cond::Or(parts)
                } else {
                    Cond::And(parts)
                })
            }
            ast::Cond::Not(inner, _) => Some(Cond::Not(Box::new(self.cond(inner, ctx)?))),
            ast::Cond::Inactive(d, span) => {
                if matches!(ctx, Ctx::Where | Ctx::Guard) {
                    let place = if ctx == Ctx::Where {
                        "a `where` filter"
                    } else {
                        "an `if` guard"
                    };
                    self.err(
                        Diagnostic::error(
                            "E0208",
                            *span,
                            format!("`inactive for` cannot be used in {place}"),
                        )
                        .label("tested at the time of an event, when the lead is never inactive")
                        .help("use it in a rule of its own: `when inactive for 30d subtract 10`"),
                    );
                    return None;
                }
                self.positive(*d)
                    .then_some(Cond::Inactive(d.seconds as u32))
            }
            ast::Cond::Test(t) => self.test(t, ctx),
        }
    }

    fn test(&mut self, t: &ast::Test, ctx: Ctx) -> Option<Cond> {
        if let ast::Expr::Path(p) = &t.lhs {
            if p.segments.len() == 1 && p.segments[0].name == "grade" && ctx == Ctx::Tag {
                return self.grade_test(t);
            }
        }
        let lhs = self.expr(&t.lhs, ctx)?;
        let text_lhs = |me: &mut Self, what: &str| -> Option<()> {
            match lhs.ty() {
                Ty::Text | Ty::Any => {
                    me.record_expr(&lhs, Usage::Text, t.lhs.span());
                    Some(())
                }
                ty => {
                    me.err(
                        Diagnostic::error(
                            "E0302",
                            t.lhs.span(),
                            format!("`{what}` tests text, but this is {}", ty_name(ty)),
                        )
                        .label(ty_name(ty)),
                    );
                    None
                }
            }
        };
        let test = match &t.op {
            ast::TestOp::IsSet => Test::IsSet,
            ast::TestOp::IsNotSet => Test::IsNotSet,
            ast::TestOp::In(c) => {
                let s = self.collection(c);
                text_lhs(self, "in")?;
                Test::In(s?)
            }
            ast::TestOp::NotIn(c) => {
                let s = self.collection(c);
                text_lhs(self, "not in")?;
                Test::NotIn(s?)
            }
            ast::TestOp::ContainsAny(c) => {
                let s = self.collection(c);
                text_lhs(self, "contains any")?;
                Test::ContainsAny(s?)
            }
            ast::TestOp::ContainsAnyWord(c) => {
                let s = self.collection(c);
                text_lhs(self, "contains any word")?;
                Test::ContainsAnyWord(s?)
            }
            ast::TestOp::Contains(s) | ast::TestOp::ContainsWord(s) => {
                let word = matches!(t.op, ast::TestOp::ContainsWord(_));
                text_lhs(self, if word { "contains word" } else { "contains" })?;
                if s.value.trim().is_empty() {
                    self.err(
                        Diagnostic::error(
                            "E0307",
                            s.span,
                            "`contains` needs some text to look for",
                        )
                        .label("empty"),
                    );
                    return None;
                }
                if word {
                    Test::ContainsWord(fold(&s.value))
                } else {
                    Test::Contains(fold(&s.value))
                }
            }
            ast::TestOp::Compare(op, rhs_ast) => {
                let rhs = self.expr(rhs_ast, ctx)?;
                let cmp = cmp(*op);
                self.compare_types(&lhs, &t.lhs, cmp, &rhs, rhs_ast)?;
                if lhs.is_literal() && rhs.is_literal() {
                    return Some(Cond::Const(fold_literal_cmp(&lhs, cmp, &rhs)));
                }
                Test::Cmp(cmp, rhs)
            }
        };
        Some(Cond::Test(lhs, test))
    }

    fn compare_types(
        &mut self,
        lhs: &Expr,
        lhs_ast: &ast::Expr,
        cmp: Cmp,
        rhs: &Expr,
        rhs_ast: &ast::Expr,
    ) -> Option<()> {
        let ordering = !matches!(cmp, Cmp::Eq | Cmp::Ne);
        let sides = [(lhs, lhs_ast, rhs), (rhs, rhs_ast, lhs)];
        if ordering {
            let mut ok = true;
            for (e, a, _) in sides {
                match e.ty() {
                    Ty::Num | Ty::Any => self.record_expr(e, Usage::Num, a.span()),
                    ty => {
                        self.err(
                            Diagnostic::error(
                                "E0301",
                                a.span(),
                                format!(
                                    "`{}` compares numbers, but this is {}",
                                    cmp.symbol(),
                                    ty_name(ty)
                                ),
                            )
                            .label(ty_name(ty)),
                        );
                        ok = false;
                    }
                }
            }
            return ok.then_some(());
        }
        let (lt, rt) = (lhs.ty(), rhs.ty());
        if lt != Ty::Any && rt != Ty::Any && lt != rt {
            self.err(
                Diagnostic::error(
                    "E0301",
                    rhs_ast.span(),
                    format!(
                        "`{}` compares {} with {}",
                        cmp.symbol(),
                        ty_name(lt),
                        ty_name(rt)
                    ),
                )
                .label(ty_name(rt))
                .related(lhs_ast.span(), ty_name(lt)),
            );
            return None;
        }
        for (e, a, other) in sides {
            match other.ty() {
                Ty::Num => self.record_expr(e, Usage::Num, a.span()),
                Ty::Text => self.record_expr(e, Usage::Text, a.span()),
                _ => {}
            }
        }
        Some(())
    }

    /// Remembers how an attribute is compared; comparing one field both as a number and as
    /// text is almost always a mistake in one of the rules.
    fn record_expr(&mut self, e: &Expr, usage: Usage, span: Span) {
        if let Expr::Attr(name) = e {
            let name = name.clone();
            self.record(&name, usage, span);
        }
    }

    fn record(&mut self, name: &str, usage: Usage, span: Span) {
        match self.usage.get(name) {
            None => {
                self.usage.insert(name.to_string(), (usage, span));
            }
            Some((u, first)) if *u != usage => {
                let first = *first;
                let (here, there) = match usage {
                    Usage::Num => ("a number", "text"),
                    Usage::Text => ("text", "a number"),
                };
                let line = self.line_of(first);
                self.err(
                    Diagnostic::error(
                        "E0303",
                        span,
                        format!(
                            "field `{name}` is used as {here} here, but as {there} on line {line}"
                        ),
                    )
                    .label(format!("used as {here}"))
                    .related(first, format!("used as {there}")),
                );
            }
            _ => {}
        }
    }

    fn grade_test(&mut self, t: &ast::Test) -> Option<Cond> {
        let grade = |me: &mut Self, name: &str, span: Span| -> Option<Cond> {
            match me.grade_names.iter().position(|(n, _)| n == name) {
                Some(i) => Some(Cond::GradeIs(GradeId(i as u32))),
                None => {
                    let names: Vec<&str> = me.grade_names.iter().map(|(n, _)| n.as_str()).collect();
                    let hint = closest(name, names.iter().copied()).map(str::to_string);
                    me.err(
                        Diagnostic::error("E0205", span, format!("unknown grade `{name}`"))
                            .label("no grade with this name")
                            .suggest(hint.as_deref()),
                    );
                    None
                }
            }
        };
        let name_of = |e: &ast::Expr| -> Option<(String, Span)> {
            match e {
                ast::Expr::Path(p) if p.segments.len() == 1 => {
                    Some((p.segments[0].name.clone(), p.span))
                }
                ast::Expr::Str(s) => Some((s.value.clone(), s.span)),
                _ => None,
            }
        };
        match &t.op {
            ast::TestOp::Compare(op @ (ast::CmpOp::Eq | ast::CmpOp::Ne), rhs) => {
                let Some((name, span)) = name_of(rhs) else {
                    self.err(
                        Diagnostic::error("E0304", rhs.span(), "expected a grade name")
                            .label("not a grade"),
                    );
                    return None;
                };
                let c = grade(self, &name, span)?;
                Some(if *op == ast::CmpOp::Ne {
                    Cond::Not(Box::new(c))
                } else {
                    c
                })
            }
            ast::TestOp::In(ast::Collection::List(l))
            | ast::TestOp::NotIn(ast::Collection::List(l)) => {
                let parts: Vec<Option<Cond>> = l
                    .items
                    .iter()
                    .map(|s| grade(self, &s.value, s.span))
                    .collect();
                let any = Cond::Or(parts.into_iter().collect::<Option<_>>()?);
                Some(if matches!(t.op, ast::TestOp::NotIn(_)) {
                    Cond::Not(Box::new(any))
                } else {
                    any
                })
            }
            _ => {
                self.err(
                    Diagnostic::error(
                        "E0304",
                        t.op_span,
                        "a grade can only be tested with `=`, `!=`, `in [..]` or `not in [..]`",
                    )
                    .label("not a grade test"),
                );
                None
            }
        }
    }

    fn collection(&mut self, c: &ast::Collection) -> Option<SetRef> {
        match c {
            ast::Collection::Named(id) => match self.sets.get(&id.name) {
                Some((r, _)) => {
                    self.set_used[r.0] = true;
                    Some(*r)
                }
                None => {
                    let hint =
                        closest(&id.name, self.sets.keys().map(String::as_str)).map(str::to_string);
                    let d =
                        Diagnostic::error("E0201", id.span, format!("unknown set `{}`", id.name))
                            .label("no set with this name");
                    let d = match hint {
                        Some(h) => d.help(format!("did you mean `{h}`?")),
                        None => d.help(format!("declare it first: `set {} = [\"...\"]`", id.name)),
                    };
                    self.err(d);
                    None
                }
            },
            ast::Collection::List(l) => {
                let items = folded_items(l);
                if let Some(r) = self.lists.get(&items) {
                    return Some(*r);
                }
                let r = SetRef(self.ir.sets.len());
                self.ir.sets.push(ir::Set {
                    name: None,
                    items: items.clone(),
                });
                self.set_used.push(true);
                self.lists.insert(items, r);
                Some(r)
            }
        }
    }

    fn expr(&mut self, e: &ast::Expr, ctx: Ctx) -> Option<Expr> {
        Some(match e {
            ast::Expr::Number(n, _) => Expr::Num(*n),
            ast::Expr::Str(s) => Expr::Str(fold(&s.value)),
            ast::Expr::Bool(b, _) => Expr::Bool(*b),
            ast::Expr::Path(p) => self.path(p, ctx)?,
            ast::Expr::Call { func, arg, span: _ } => {
                let f = match func.name.as_str() {
                    "domain" => Func::Domain,
                    "len" => Func::Len,
                    "words" => Func::Words,
                    "sentences" => Func::Sentences,
                    other => {
                        let hint = closest(other, ["domain", "len", "words", "sentences"]);
                        self.err(
                            Diagnostic::error(
                                "E0204",
                                func.span,
                                format!("unknown function `{other}`"),
                            )
                            .label("no function with this name")
                            .help(match hint {
                                Some(h) => format!("did you mean `{h}`?"),
                                None => {
                                    "the functions are domain(), len(), words() and sentences()"
                                        .into()
                                }
                            }),
                        );
                        return None;
                    }
                };
                let a = self.expr(arg, ctx)?;
                if !matches!(a.ty(), Ty::Text | Ty::Any) {
                    self.err(
                        Diagnostic::error(
                            "E0302",
                            arg.span(),
                            format!("{}() takes text, but this is {}", f.name(), ty_name(a.ty())),
                        )
                        .label(ty_name(a.ty())),
                    );
                    return None;
                }
                Expr::Call(f, Box::new(a))
            }
            ast::Expr::Binary {
                op,
                lhs,
                rhs,
                span: _,
            } => {
                let l = self.expr(lhs, ctx);
                let r = self.expr(rhs, ctx);
                let (l, r) = (l?, r?);
                for (x, a) in [(&l, lhs), (&r, rhs)] {
                    if !matches!(x.ty(), Ty::Num | Ty::Any) {
                        self.err(
                            Diagnostic::error(
                                "E0301",
                                a.span(),
                                format!("`+` and `-` add numbers, but this is {}", ty_name(x.ty())),
                            )
                            .label(ty_name(x.ty())),
                        );
                        return None;
                    }
                }
                match op {
                    ast::ArithOp::Add => Expr::Add(Box::new(l), Box::new(r)),
                    ast::ArithOp::Sub => Expr::Sub(Box::new(l), Box::new(r)),
                }
            }
        })
    }

    fn path(&mut self, p: &ast::Path, ctx: Ctx) -> Option<Expr> {
        let dotted = p.dotted();
        if let Some(attr) = dotted.strip_prefix("lead.") {
            return Some(Expr::Attr(attr.to_string()));
        }
        match ctx {
            Ctx::Field | Ctx::Guard => {
                if self.is_score_name(&dotted) {
                    self.score_in_rule(p.span, &dotted);
                    return None;
                }
                Some(Expr::Attr(dotted))
            }
            Ctx::Where => Some(Expr::Prop(dotted)),
            Ctx::Grade | Ctx::Tag => {
                if let Some(id) = self.scores.get(&dotted) {
                    return Some(if self.implicit_score {
                        Expr::Total
                    } else {
                        Expr::Score(*id)
                    });
                }
                if dotted == "score" {
                    return Some(Expr::Total);
                }
                let mut names: Vec<&str> = self.ir.scores.iter().map(|s| s.name.as_str()).collect();
                names.push("score");
                let hint = closest(&dotted, names.iter().copied()).map(str::to_string);
                let what = if ctx == Ctx::Grade { "grade" } else { "tag" };
                let d = Diagnostic::error("E0202", p.span, format!("unknown score `{dotted}`"))
                    .label(format!("{what} conditions test scores"));
                let d = match hint {
                    Some(h) => d.help(format!(
                        "did you mean `{h}`? (to test a lead attribute, write `lead.{dotted}`)"
                    )),
                    None => d.help(format!(
                        "the scores are {}; to test a lead attribute, write `lead.{dotted}`",
                        names.join(", ")
                    )),
                };
                self.err(d);
                None
            }
        }
    }
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
