//! Conditions and expressions: names resolved by where they are evaluated, types
//! checked, set and field usage recorded, grade tests checked against the grades.

use super::*;

impl Resolver<'_> {
    pub(super) fn cond(&mut self, c: &ast::Cond, ctx: Ctx) -> Option<Cond> {
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
            ast::Cond::Const(b, _) => Some(Cond::Const(*b)),
            ast::Cond::Test(t) => self.test(t, ctx),
        }
    }

    pub(super) fn test(&mut self, t: &ast::Test, ctx: Ctx) -> Option<Cond> {
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

    pub(super) fn compare_types(
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
    pub(super) fn record_expr(&mut self, e: &Expr, usage: Usage, span: Span) {
        if let Expr::Attr(name) = e {
            let name = name.clone();
            self.record(&name, usage, span);
        }
    }

    pub(super) fn record(&mut self, name: &str, usage: Usage, span: Span) {
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

    pub(super) fn grade_test(&mut self, t: &ast::Test) -> Option<Cond> {
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

    pub(super) fn collection(&mut self, c: &ast::Collection) -> Option<SetRef> {
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
                        Some(h) => d.suggest(Some(&*h)),
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

    pub(super) fn expr(&mut self, e: &ast::Expr, ctx: Ctx) -> Option<Expr> {
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
                            })
                            .replacement(hint),
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

    pub(super) fn path(&mut self, p: &ast::Path, ctx: Ctx) -> Option<Expr> {
        let dotted = p.dotted();
        if let Some(attr) = dotted.strip_prefix("lead.") {
            self.ir.reads.attributes.push((attr.to_string(), p.span));
            return Some(Expr::Attr(attr.to_string()));
        }
        if dotted == "key" && ctx != Ctx::Where {
            // The lead's own key (an attribute named `key` is `lead.key`).
            return Some(Expr::Attr(KEY_FIELD.to_string()));
        }
        match ctx {
            Ctx::Field | Ctx::Guard => {
                if self.is_score_name(&dotted) {
                    self.score_in_rule(p.span, &dotted);
                    return None;
                }
                self.ir.reads.attributes.push((dotted.clone(), p.span));
                Some(Expr::Attr(dotted))
            }
            Ctx::Where => {
                self.read_prop(&dotted, p.span);
                Some(Expr::Prop(dotted))
            }
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
                    Some(h) => d
                        .help(format!(
                            "did you mean `{h}`? (to test a lead attribute, write `lead.{dotted}`)"
                        ))
                        .replacement(Some(&h)),
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
