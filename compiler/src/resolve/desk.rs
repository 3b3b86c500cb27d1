//! The sales desk's statements (docs/desk.md): `assign` (who owns a lead, chosen when its
//! grade changes), `recycle after D without followup`, and the tags of an overdue
//! follow-up. Teams are named here and defined by the configuration, which the service
//! checks against the program when it loads both.

use super::{normalise, Ctx, Resolver};
use crate::ir;
use leadscore_dsl::ast;
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::{AssignHow, AssignTo, OverdueTag, PlanDef};

impl Resolver<'_> {
    pub(super) fn desk(&mut self, file: &ast::File) {
        // Each declared plan's name, in `ir.plans` order.
        let mut plan_spans = Vec::new();
        for item in &file.items {
            if let ast::Item::Plan(p) = item {
                let before = self.ir.plans.len();
                self.plan(p);
                if self.ir.plans.len() > before {
                    plan_spans.push(p.name.span);
                }
            }
        }
        let mut used = vec![false; self.ir.plans.len()];
        let mut otherwise: Option<ast::AssignDecl> = None;
        let mut deadlines = false;
        for item in &file.items {
            match item {
                ast::Item::Assign(a) => {
                    if let Some(o) = &otherwise {
                        self.err(
                            Diagnostic::error("E0601", a.span, "this `assign` is never reached")
                                .label("an earlier `assign otherwise` takes every lead")
                                .related(o.span, "every lead stops here")
                                .help("move `assign otherwise` last"),
                        );
                    }
                    if a.otherwise {
                        otherwise = Some(a.clone());
                    }
                    deadlines |= a.within.is_some();
                    if let Some(i) = self.assign(a) {
                        used[i] = true;
                    }
                }
                ast::Item::Recycle(r) => self.recycle(r),
                ast::Item::Tag(ast::TagDecl {
                    name,
                    cond: ast::TagCond::Overdue(_),
                    span,
                }) => self.overdue_tag(name, *span),
                _ => {}
            }
        }
        let assigns = !self.ir.assigns.is_empty();
        let unused: Vec<leadscore_dsl::Span> = plan_spans
            .into_iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(s, _)| s)
            .collect();
        for span in unused {
            self.err(
                Diagnostic::warning("W0007", span, "this plan is never used")
                    .label("no `assign` names it")
                    .help("add `plan NAME` to an `assign`, e.g. `… within 24h plan NAME`"),
            );
        }
        let tasks = !self.ir.plans.is_empty();
        for item in &file.items {
            if let ast::Item::Notify(ast::NotifyDecl {
                trigger: ast::NotifyTrigger::OwnerChanges(s),
                ..
            }) = item
            {
                if self.ir.assigns.is_empty() {
                    self.err(
                        Diagnostic::warning("W0006", *s, "no lead ever changes owner")
                            .label("no `assign` gives leads owners")
                            .help("say who owns leads, e.g. `assign grade A to team sales round robin`"),
                    );
                }
            }
            if let ast::Item::Notify(ast::NotifyDecl {
                trigger: ast::NotifyTrigger::TaskDue(s),
                ..
            }) = item
            {
                if !tasks {
                    self.err(
                        Diagnostic::warning("W0006", *s, "no task ever comes due")
                            .label("no `plan` is declared")
                            .help("declare one, e.g. `plan b_cadence = [email at 0d, call at 2d]`"),
                    );
                }
            }
        }
        for item in &file.items {
            let overdue = match item {
                ast::Item::Tag(ast::TagDecl {
                    cond: ast::TagCond::Overdue(s),
                    ..
                }) => Some(*s),
                ast::Item::Notify(ast::NotifyDecl {
                    trigger: ast::NotifyTrigger::FollowupOverdue(s),
                    ..
                }) => Some(*s),
                _ => None,
            };
            if let Some(s) = overdue.filter(|_| !deadlines) {
                self.err(
                    Diagnostic::warning("W0006", s, "no follow-up is ever overdue")
                        .label("no `assign` sets a deadline")
                        .help("give an `assign` a deadline, e.g. `… to team sales round robin within 24h`"),
                );
            }
            if let ast::Item::Recycle(r) = item {
                if !assigns {
                    self.err(
                        Diagnostic::error("E0604", r.span, "`recycle` without `assign`")
                            .label("no lead has an owner to take back")
                            .help("say who owns leads first, e.g. `assign grade A to team sales round robin`"),
                    );
                }
            }
        }
    }

    /// The plan's index, when the statement names one.
    fn assign(&mut self, a: &ast::AssignDecl) -> Option<usize> {
        let mut ok = true;
        let plan = match &a.plan {
            Some(name) => match self.ir.plans.iter().position(|p| p.name == name.name) {
                Some(i) => Some(i),
                None => {
                    let names: Vec<&str> = self.ir.plans.iter().map(|p| p.name.as_str()).collect();
                    let d = Diagnostic::error(
                        "E0607",
                        name.span,
                        format!("unknown plan `{}`", name.name),
                    )
                    .label("not declared")
                    .suggest(leadscore_dsl::diagnostic::closest(&name.name, names));
                    self.err(d);
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let mut grades = Vec::new();
        for g in &a.grades {
            match self.grade_id(g) {
                Some(id) if !grades.contains(&id) => grades.push(id),
                Some(_) => {}
                None => ok = false,
            }
        }
        let cond = match &a.cond {
            Some(c) => Some(self.cond(c, Ctx::Field)?),
            None => None,
        };
        let to = match &a.to {
            ast::AssignTo::Pool(s) => {
                if let Some(w) = a.within {
                    self.err(
                        Diagnostic::error("E0605", w.span, "a lead in the pool has no deadline")
                            .label("nobody owns it to follow up")
                            .related(*s, "to the pool"),
                    );
                    ok = false;
                }
                if let Some(p) = &a.plan {
                    self.err(
                        Diagnostic::error("E0605", p.span, "a lead in the pool has no plan")
                            .label("nobody owns it to work through it")
                            .related(*s, "to the pool"),
                    );
                    ok = false;
                }
                AssignTo::Pool
            }
            ast::AssignTo::CompanyOwner(_) => AssignTo::CompanyOwner,
            ast::AssignTo::Team { team, how } => AssignTo::Team {
                name: team.name.clone(),
                how: match how {
                    ast::AssignHow::InOrder => AssignHow::InOrder,
                    ast::AssignHow::RoundRobin(_) => AssignHow::RoundRobin,
                    ast::AssignHow::By(p) => {
                        let name = p.dotted();
                        self.ir.reads.attributes.push((name.clone(), p.span));
                        AssignHow::By(name)
                    }
                },
            },
        };
        let within = match a.within.map(|d| self.desk_seconds(d)) {
            Some(None) => return plan,
            Some(s) => s,
            None => None,
        };
        if ok {
            self.ir.assigns.push(ir::Assign {
                grades,
                cond,
                to,
                within,
                plan: plan.map(|i| i as u32),
                line: self.line(a.span),
                text: normalise(a.span.text(self.src)),
                span: a.span,
            });
        }
        plan
    }

    fn plan(&mut self, p: &ast::PlanDecl) {
        if self.ir.plans.iter().any(|x| x.name == p.name.name) {
            self.err(
                Diagnostic::error(
                    "E0608",
                    p.name.span,
                    format!("plan `{}` is declared twice", p.name.name),
                )
                .label("second declaration"),
            );
            return;
        }
        let mut steps = Vec::new();
        let mut last = 0;
        for (kind, d) in &p.steps {
            if d.seconds > i64::from(u32::MAX) {
                self.err(
                    Diagnostic::error("E0606", d.span, "a plan step is due within 100 years")
                        .label("out of range"),
                );
                return;
            }
            let at = d.seconds as u32;
            if at < last {
                self.err(
                    Diagnostic::error("E0609", d.span, "plan steps go in the order they are due")
                        .label("due before the step ahead of it")
                        .help("list the steps by when they are due"),
                );
                return;
            }
            last = at;
            steps.push((leadscore_runtime::text::fold(&kind.name), at));
        }
        self.ir.plans.push(PlanDef {
            name: p.name.name.clone(),
            steps,
            line: self.line(p.span),
        });
    }

    fn recycle(&mut self, r: &ast::RecycleDecl) {
        if self.ir.recycle.is_some() {
            self.err(
                Diagnostic::error("E0603", r.span, "`recycle` is declared twice")
                    .label("second declaration")
                    .help("a lead is taken back after one delay; keep one `recycle`"),
            );
            return;
        }
        self.ir.recycle = self.desk_seconds(r.after);
    }

    fn overdue_tag(&mut self, name: &ast::Ident, span: leadscore_dsl::Span) {
        let taken = self.ir.tags.iter().any(|t| t.name == name.name)
            || self.ir.overdue_tags.iter().any(|t| t.name == name.name);
        if taken {
            self.err(
                Diagnostic::error(
                    "E0211",
                    name.span,
                    format!("tag `{}` is declared twice", name.name),
                )
                .label("second declaration"),
            );
            return;
        }
        self.ir.overdue_tags.push(OverdueTag {
            name: name.name.clone(),
            line: self.line(span),
        });
    }

    /// A deadline or delay: at least a minute.
    fn desk_seconds(&mut self, d: ast::Duration) -> Option<u32> {
        if d.seconds < 60 || d.seconds > i64::from(u32::MAX) {
            self.err(
                Diagnostic::error("E0606", d.span, "a desk delay is 1 minute to 100 years")
                    .label("out of range"),
            );
            return None;
        }
        Some(d.seconds as u32)
    }
}
