//! Time in rules: `decay P% every D` on a score or an event rule, and time awards
//! (`after inactive for D … [every E] [max M]`) — docs/language.md.

use super::*;

impl Resolver<'_> {
    /// A decay as (percent, seconds); `None` (reported) when the percent is not 1–99 or
    /// the period is zero.
    pub(super) fn decay(&mut self, d: ast::Decay) -> Option<(u8, u32)> {
        let mut ok = self.positive(d.every);
        if !(1..=99).contains(&d.percent.value) {
            self.err(
                Diagnostic::error(
                    "E0340",
                    d.percent.span,
                    "a decay must be between 1% and 99%",
                )
                .label(if d.percent.value == 0 {
                    "0% never decays"
                } else {
                    "100% or more takes every award at once"
                })
                .help("for example `decay 25% every 90d`; for all at once, use `expires after`"),
            );
            ok = false;
        }
        ok.then_some((d.percent.value as u8, d.every.seconds as u32))
    }

    /// A decaying `each` rule without a fixed `max` keeps up to 1,024 awards per lead (about
    /// 24 KB of the lead's 256 KB): said, since a dozen such rules could fill a lead.
    pub(super) fn many_awards(&mut self, a: &ast::Action, amount: &ir::Amount) {
        if a.max.is_some() && matches!(amount, ir::Amount::Const(_)) {
            return;
        }
        let span = a.each.unwrap_or(a.span);
        self.err(
            Diagnostic::warning(
                "W0005",
                span,
                "this decaying rule keeps up to 1,024 awards per lead",
            )
            .label("`each` with no `max` (or points from a field): every award is kept while it is worth something")
            .help("add `max M` with fixed points: only the newest M awards are then kept"),
        );
    }

    /// `after inactive for D (add|subtract) N [every E] [max M] [(to|from) SCORE]`.
    pub(super) fn time_kind(
        &mut self,
        d: ast::Duration,
        a: &ast::Action,
        amount: Option<&ir::Amount>,
    ) -> Option<ir::RuleKind> {
        let mut ok = self.positive(d);
        let every = match a.every {
            Some(e) => {
                ok &= self.positive(e);
                Some(e.seconds as u32)
            }
            None => None,
        };
        if let Some(ir::Amount::Attr(_) | ir::Amount::Prop(_)) = amount {
            let span = match &a.points {
                ast::Points::Field(p) => p.span,
                ast::Points::Const(n) => n.span,
            };
            self.err(
                Diagnostic::error("E0343", span, "a time award needs a fixed number of points")
                    .label("no event or attribute is read when time makes the award"),
            );
            ok = false;
        }
        let mut refuse = |what: &str, span: Span| {
            self.diags.push(
                Diagnostic::error(
                    "E0344",
                    span,
                    format!("{what} cannot be combined with `after inactive for`"),
                )
                .label("a time award is made by the passage of time, not by events")
                .help("use `every E` to repeat it and `max M` to bound it"),
            );
        };
        let mut parts: Vec<(&str, Span)> = Vec::new();
        if let Some(s) = a.each {
            parts.push(("`each`", s));
        }
        if let Some(e) = a.expires {
            parts.push(("`expires after`", e.span));
        }
        if let Some(p) = a.per {
            parts.push(("`up to N per D`", p.span));
        }
        if let Some(p) = &a.distinct {
            parts.push(("`distinct`", p.span));
        }
        if let Some(p) = a.decay {
            parts.push(("`decay`", p.span));
        }
        for (what, span) in &parts {
            refuse(what, *span);
        }
        ok &= parts.is_empty();
        ok.then_some(ir::RuleKind::Time {
            delay: d.seconds as u32,
            every,
        })
    }
}
