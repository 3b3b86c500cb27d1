//! Language v2's event mechanics: `within D of TYPE`, `up to N per D`, `distinct PROP` and
//! `reset SCORE` — each checked against what it is combined with (docs/language.md).

use super::*;
use leadscore_runtime::bytecode::verify::MAX_AWARD_LOG;

/// What [`Resolver::mechanics`] resolves: the prior event, the per-period cap, the
/// distinct prop.
type Mechanics = (Option<ir::Prior>, Option<(u32, u32)>, Option<String>);

impl Resolver<'_> {
    /// Reports the event-only parts of an award on a field rule.
    pub(super) fn event_only(&mut self, a: &ast::Action) {
        if let Some(p) = a.per {
            self.err(
                Diagnostic::error(
                    "E0330",
                    p.span,
                    "`up to N per D` only applies to event rules",
                )
                .label("this rule tests attributes"),
            );
        }
        if let Some(d) = &a.distinct {
            self.err(
                Diagnostic::error("E0330", d.span, "`distinct` only applies to event rules")
                    .label("this rule tests attributes"),
            );
        }
        if let Some(d) = a.decay {
            self.err(
                Diagnostic::error("E0341", d.span, "`decay` only applies to event rules")
                    .label("this rule tests attributes")
                    .help("a field rule's points follow the attributes; event awards decay"),
            );
        }
        self.no_every(a);
    }

    /// `every E` belongs to time awards (`after inactive for D … every E`).
    pub(super) fn no_every(&mut self, a: &ast::Action) {
        if let Some(e) = a.every {
            self.err(
                Diagnostic::error("E0342", e.span, "`every` without `after inactive for`")
                    .label("only a time award repeats")
                    .help("for example `after inactive for 30d subtract 5 every 7d max 30`"),
            );
        }
    }

    /// Resolves an event rule's `within D of TYPE`, `up to N per D` and `distinct PROP`.
    pub(super) fn mechanics(
        &mut self,
        t: &ast::EventTrigger,
        a: &ast::Action,
        amount: Option<&ir::Amount>,
        window: bool,
    ) -> Option<Mechanics> {
        let mut ok = true;
        if a.every.is_some() {
            self.no_every(a);
            ok = false;
        }
        let prior = match &t.prior {
            Some(p) => {
                let r = self.prior(t, p);
                ok &= r.is_some();
                r
            }
            None => None,
        };
        let fixed = |amount: Option<&ir::Amount>| match amount {
            Some(ir::Amount::Const(n)) => Some(*n),
            _ => None,
        };
        let per = match a.per {
            Some(p) => {
                ok &= self.positive(p.period);
                if a.each.is_none() {
                    self.err(
                        Diagnostic::error("E0331", p.span, "`up to N per D` needs `each`")
                            .label("a rule without `each` awards once")
                            .help("for example `add 10 each up to 30 per 1d`"),
                    );
                    ok = false;
                }
                match fixed(amount) {
                    None if amount.is_some() => {
                        self.err(
                            Diagnostic::error(
                                "E0332",
                                p.span,
                                "`up to N per D` needs a fixed number of points",
                            )
                            .label("this rule takes its points from a field"),
                        );
                        ok = false;
                    }
                    Some(n) if i64::from(n) > p.points.value || p.points.value == 0 => {
                        self.err(
                            Diagnostic::error(
                                "E0333",
                                p.points.span,
                                "this cap is smaller than one award: the rule never awards",
                            )
                            .label(format!("the rule gives {n} points an event")),
                        );
                        ok = false;
                    }
                    Some(n)
                        if p.points.value as u64 / u64::from(n.max(1)) > MAX_AWARD_LOG as u64 =>
                    {
                        self.err(
                            Diagnostic::error(
                                "E0333",
                                p.points.span,
                                "this cap keeps too many awards per period",
                            )
                            .label(format!("N/points must be at most {MAX_AWARD_LOG}")),
                        );
                        ok = false;
                    }
                    _ => {}
                }
                Some((p.points.value as u32, p.period.seconds as u32))
            }
            None => None,
        };
        let distinct = match &a.distinct {
            Some(d) => {
                let prop = d.dotted();
                let mut why = Vec::new();
                if a.max.is_none() {
                    why.push((
                        "E0334",
                        "`distinct` needs `max`",
                        "without a cap every new value would be remembered forever".to_string(),
                    ));
                }
                if a.each.is_none() {
                    why.push((
                        "E0335",
                        "`distinct` needs `each`",
                        "a rule without `each` awards once".to_string(),
                    ));
                }
                if a.expires.is_some() || window {
                    why.push((
                        "E0335",
                        "`distinct` cannot be combined with `expires after` or `count >=`",
                        "the values already awarded are never forgotten".to_string(),
                    ));
                }
                if amount.is_some() && fixed(amount).is_none_or(|n| n == 0) {
                    why.push((
                        "E0335",
                        "`distinct` needs a fixed, positive number of points",
                        "the values awarded are bounded by max/points".to_string(),
                    ));
                }
                if prop.starts_with("lead.") {
                    why.push((
                        "E0335",
                        "`distinct` reads the event's property, not an attribute",
                        "write the prop's name, e.g. `distinct email_id`".to_string(),
                    ));
                }
                for (code, msg, label) in why.iter().cloned() {
                    self.err(Diagnostic::error(code, d.span, msg).label(label).help(
                        "for example `add 2 each distinct email_id max 20`: one award per email",
                    ));
                }
                ok &= why.is_empty();
                self.read_prop(&prop, d.span);
                Some(prop)
            }
            None => None,
        };
        ok.then_some((prior, per, distinct))
    }

    fn prior(&mut self, t: &ast::EventTrigger, p: &ast::Prior) -> Option<ir::Prior> {
        let mut ok = self.positive(p.within);
        let ty = fold(&p.event_type.name);
        if ty == fold(&t.event_type.name) {
            self.err(
                Diagnostic::error(
                    "E0336",
                    p.event_type.span,
                    "`within … of` names the rule's own event type",
                )
                .label("every event is within any time of itself")
                .help("name the earlier event the rule waits for, e.g. `within 24h of email.sent`"),
            );
            ok = false;
        }
        self.ir.reads.events.push((ty.clone(), p.event_type.span));
        // The filter reads the earlier event's props.
        let own = self.event_type.replace(ty.clone());
        let cond = match &p.filter {
            Some(f) => {
                let c = self.cond(f, Ctx::Where);
                ok &= c.is_some();
                c
            }
            None => None,
        };
        self.event_type = own;
        ok.then_some(ir::Prior {
            event_type: ty,
            cond,
            seconds: p.within.seconds as u32,
        })
    }

    /// `when EVENT … reset SCORE`: a rule with no points of its own.
    pub(super) fn reset_rule(
        &mut self,
        r: &ast::Rule,
        score: &ast::Ident,
        span: Span,
        guards: &[Cond],
        guard_texts: &[String],
    ) {
        let target = self.score_named(score);
        if let Some(a) = &r.ask {
            self.err(
                Diagnostic::error("E0339", a.span, "`ask` on a `reset` rule")
                    .label("a reset gives no points, so the question would never be answered"),
            );
        }
        let t = match &r.trigger {
            ast::Trigger::Event(t) => t,
            ast::Trigger::Field(_) | ast::Trigger::After(_) => {
                self.err(
                    Diagnostic::error("E0337", span, "`reset` needs an event")
                        .label("this rule tests attributes")
                        .help("for example `when deal.lost reset engagement`"),
                );
                return;
            }
        };
        let ty = fold(&t.event_type.name);
        self.ir.reads.events.push((ty.clone(), t.event_type.span));
        self.event_type = Some(ty.clone());
        if let Some(w) = t.window {
            self.err(
                Diagnostic::error(
                    "E0337",
                    w.span,
                    "`reset` cannot be combined with `count >=`",
                )
                .label("a reset happens at each matching event"),
            );
            return;
        }
        let filter = match &t.filter {
            Some(f) => match self.cond(f, Ctx::Where) {
                Some(c) => Some(c),
                None => return,
            },
            None => None,
        };
        let prior = match &t.prior {
            Some(p) => match self.prior(t, p) {
                Some(p) => Some(p),
                None => return,
            },
            None => None,
        };
        let Some(target) = target else { return };
        self.ir.rules.push(ir::Rule {
            kind: ir::RuleKind::Event {
                event_type: ty,
                cond: event_cond(guards, filter),
                each: false,
                expires: None,
                window: None,
                prior,
                per: None,
                distinct: None,
                reset: true,
                decay: None,
            },
            score: target,
            points: ir::Points {
                negative: false,
                amount: ir::Amount::Const(0),
                max: None,
            },
            line: self.line(r.span),
            text: normalise(r.span.text(self.src)),
            guards: guard_texts.to_vec(),
            ask: None,
            span: r.span,
        });
    }
}
