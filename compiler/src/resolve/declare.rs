//! Declarations: the ruleset's name, protected fields, sets and scores, declared before
//! any rule is read; sets never used are reported at the end.

use super::*;

impl Resolver<'_> {
    pub(super) fn declarations(&mut self, file: &ast::File, default_name: &str) {
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
        // After every score is declared: `total` names them.
        let mut total: Option<Span> = None;
        for item in &file.items {
            if let ast::Item::Total(d) = item {
                if let Some(first) = total {
                    self.err(
                        Diagnostic::error("E0218", d.span, "`total` is given twice")
                            .label("second `total`")
                            .related(first, "first given here"),
                    );
                    continue;
                }
                total = Some(d.span);
                self.declare_total(d);
            }
        }
        if self.ir.scores.is_empty() {
            self.implicit_score = true;
            self.scores.insert("score".into(), ScoreId(0));
            self.ir.scores.push(ir::Score {
                name: "score".into(),
                range: None,
                line: 0,
                span: Span::default(),
                apart: false,
                decay: None,
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

    fn declare_total(&mut self, d: &ast::TotalDecl) {
        let mut terms: Vec<(ScoreId, bool)> = Vec::new();
        let mut ok = true;
        for (minus, name) in &d.terms {
            let Some(&id) = self.scores.get(&name.name) else {
                let names: Vec<&str> = self.ir.scores.iter().map(|s| s.name.as_str()).collect();
                let d = Diagnostic::error(
                    "E0217",
                    name.span,
                    format!("unknown score `{}` in `total`", name.name),
                )
                .label("not a declared score");
                self.err(match closest(&name.name, names.iter().copied()) {
                    Some(h) => d.suggest(Some(h)),
                    None => d.help(format!("the scores are {}", names.join(", "))),
                });
                ok = false;
                continue;
            };
            if terms.iter().any(|(t, _)| *t == id) {
                self.err(
                    Diagnostic::error(
                        "E0219",
                        name.span,
                        format!("`total` names `{}` twice", name.name),
                    )
                    .label("named again")
                    .help("each score counts once in the total"),
                );
                ok = false;
                continue;
            }
            if self.ir.scores[id.index()].apart {
                let decl = self.ir.scores[id.index()].span;
                self.err(
                    Diagnostic::error(
                        "E0220",
                        name.span,
                        format!("`total` names `{}`, which is `apart`", name.name),
                    )
                    .label("an `apart` score is left out of the total")
                    .related(decl, "declared `apart` here")
                    .help("drop `apart` from the score, or leave it out of `total`"),
                );
                ok = false;
                continue;
            }
            terms.push((id, *minus));
        }
        if let Some(r) = d.range {
            if r.lo.value > r.hi.value {
                self.err(
                    Diagnostic::error("E0317", r.span, "this range is empty")
                        .label(format!("{} is greater than {}", r.lo.value, r.hi.value))
                        .help("write the smaller number first, e.g. `range 0..150`"),
                );
                ok = false;
            }
        }
        if ok {
            self.ir.total = Some(ir::Total {
                terms,
                range: d.range.map(|r| (r.lo.value, r.hi.value)),
                line: self.line(d.span),
            });
        }
    }

    pub(super) fn declare_protected(&mut self, d: &ast::FieldDecl) {
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

    pub(super) fn declare_set(&mut self, d: &ast::SetDecl) {
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

    pub(super) fn declare_score(&mut self, d: &ast::ScoreDecl) {
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
        let decay = d.decay.and_then(|dc| self.decay(dc));
        let id = ScoreId(self.ir.scores.len() as u32);
        self.scores.insert(d.name.name.clone(), id);
        self.ir.scores.push(ir::Score {
            name: d.name.name.clone(),
            range,
            line: self.line(d.span),
            span: d.name.span,
            apart: d.apart,
            decay,
        });
    }

    pub(super) fn unused_sets(&mut self) {
        for (name, (r, span)) in &self.sets {
            // `free_mail` is the sales desk's: a company is never a free-mail domain.
            if !self.set_used[r.0] && name != "free_mail" {
                self.diags.push(
                    Diagnostic::warning("W0002", *span, format!("set `{name}` is never used"))
                        .label("declared here"),
                );
            }
        }
    }
}
