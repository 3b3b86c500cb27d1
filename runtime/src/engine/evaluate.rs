//! Evaluation at an instant: scores, grade and tags from the lead's rule state, the
//! field rules' points, the cache of what only time changes, and the explanation.

use super::*;

impl<'p> Engine<'p> {
    /// Scores, grade and tags at `now`; with `explain`, the contribution of every rule
    /// (non-zero, in source order) and a clamp line per clamped score.
    ///
    /// A grade with `until` depends on the path to `now`, not only on the scores at `now`:
    /// when time changes the lead between the instant it was evaluated to and `now`, a copy
    /// is brought through them first, so that a read sees what a sweep would have recorded.
    pub fn evaluate(
        &mut self,
        lead: &LeadState,
        now: Micros,
        explain: Option<&mut Vec<Contribution>>,
    ) -> Evaluation {
        let advanced;
        let lead = if self.holds && self.behind(lead, now) {
            let mut copy = lead.clone();
            self.advance(&mut copy, now, &mut Vec::new());
            advanced = copy;
            &advanced
        } else {
            lead
        };
        let grade = self.compute(lead, now, explain);
        let p = self.program;
        let env = Env {
            scores: &self.scores,
            total: self.total,
            grade: Some(grade),
            ..lead_env(p, lead, now)
        };
        let tags = (0..p.tags.len())
            .filter(|&i| eval(&env, p.tags[i].cond))
            .collect();
        Evaluation {
            scores: self.scores.clone(),
            total: self.total,
            grade,
            tags,
        }
    }

    /// Whether time changes the lead after the instant it was evaluated to and by `now`.
    fn behind(&self, lead: &LeadState, now: Micros) -> bool {
        lead.evaluated_at
            .is_some_and(|e| e < now && self.next_change(lead, e).is_some_and(|c| c <= now))
    }

    /// Computes the scores into `self.scores` / `self.total` and returns the grade.
    /// Allocates nothing unless `explain` is given.
    pub(super) fn compute(
        &mut self,
        lead: &LeadState,
        now: Micros,
        mut explain: Option<&mut Vec<Contribution>>,
    ) -> GradeId {
        let p = self.program;
        let env = lead_env(p, lead, now);
        self.raw.iter_mut().for_each(|s| *s = 0);
        let mut note = |rule: RuleIndex, score: ScoreId, points: i64| {
            if let Some(out) = explain.as_deref_mut() {
                if points != 0 {
                    out.push(Contribution {
                        rule: Some(rule),
                        score,
                        points,
                    });
                }
            }
        };
        for r in &p.field_rules {
            if !eval(&env, r.cond) {
                continue;
            }
            let raw = match r.points.amount {
                Amount::Const(n) => Some(i64::from(n)),
                Amount::Attr(f) => lead.slots[f.index()].as_ref().and_then(Val::points),
                Amount::Prop(_) => None,
            };
            let Some(raw) = raw else { continue };
            let pts = signed(raw, &r.points);
            self.raw[r.score.index()] = self.raw[r.score.index()].saturating_add(pts);
            note(r.rule, r.score, pts);
        }
        for (r, (_, st)) in p.event_rules.iter().zip(&lead.rules) {
            let pts = contribution(r, st, now);
            self.raw[r.score.index()] = self.raw[r.score.index()].saturating_add(pts);
            note(r.rule, r.score, pts);
        }
        for (r, (_, done)) in p.time_rules.iter().zip(&lead.spells) {
            let pts = spell_contribution(r, *done, lead.last_at, now);
            self.raw[r.score.index()] = self.raw[r.score.index()].saturating_add(pts);
            note(r.rule, r.score, pts);
        }
        let grade = self.grade_from_raw(lead, now);
        if let Some(out) = explain {
            // Rules in source order, then a clamp line per clamped score (the scores just
            // clamped against their sums), and one for the total's own range.
            out.sort_by_key(|l| l.rule);
            for (i, (&v, &raw)) in self.scores.iter().zip(&self.raw).enumerate() {
                if v != raw {
                    out.push(Contribution {
                        rule: None,
                        score: ScoreId(i as u32),
                        points: v - raw,
                    });
                }
            }
            let (total, unclamped) = total_of(p, &self.scores);
            if total != unclamped {
                out.push(Contribution {
                    rule: None,
                    score: TOTAL,
                    points: total - unclamped,
                });
            }
        }
        grade
    }

    /// Rebuilds the whole cache from the rule states and attributes.
    pub(super) fn fill_cache(&mut self, lead: &mut LeadState, now: Micros) {
        let p = self.program;
        let mut c = Cache {
            valid: true,
            field: Vec::new(),
            event: vec![0; p.event_rules.len()],
            event_sum: vec![0; p.scores.len()],
        };
        for (i, (r, (_, st))) in p.event_rules.iter().zip(&lead.rules).enumerate() {
            if !r.is_timed() {
                c.event[i] = contribution(r, st, now);
                let s = &mut c.event_sum[r.score.index()];
                *s = s.saturating_add(c.event[i]);
            }
        }
        lead.cache = c;
        self.fill_fields(lead, now);
    }

    /// Re-evaluates every field rule into the cache (after an attribute change).
    pub(super) fn fill_fields(&mut self, lead: &mut LeadState, now: Micros) {
        let p = self.program;
        let mut field = std::mem::take(&mut lead.cache.field);
        field.clear();
        for r in &p.field_rules {
            field.push(self.field_points(lead, r, now));
        }
        lead.cache.field = field;
    }

    pub(super) fn field_points(&self, lead: &LeadState, r: &FieldRule, now: Micros) -> i64 {
        let env = lead_env(self.program, lead, now);
        if !eval(&env, r.cond) {
            return 0;
        }
        let raw = match r.points.amount {
            Amount::Const(n) => Some(i64::from(n)),
            Amount::Attr(f) => lead.slots[f.index()].as_ref().and_then(Val::points),
            Amount::Prop(_) => None,
        };
        raw.map_or(0, |raw| signed(raw, &r.points))
    }

    /// The grade at `now` from the cache: cached event-rule sums, expiring rules and
    /// time-dependent field rules recomputed, other field rules reused. Costs what the
    /// lead's time-dependent rules and grades cost, not what the whole program costs.
    pub(super) fn compute_fast(&mut self, lead: &LeadState, now: Micros) -> GradeId {
        let p = self.program;
        let c = &lead.cache;
        self.raw.copy_from_slice(&c.event_sum);
        for (i, r) in p.field_rules.iter().enumerate() {
            let pts = if self.timed_field[i] {
                self.field_points(lead, r, now)
            } else {
                c.field[i]
            };
            let s = &mut self.raw[r.score.index()];
            *s = s.saturating_add(pts);
        }
        for &i in &self.timed {
            let r = &p.event_rules[i];
            let s = &mut self.raw[r.score.index()];
            *s = s.saturating_add(contribution(r, &lead.rules[i].1, now));
        }
        for (r, (_, done)) in p.time_rules.iter().zip(&lead.spells) {
            let s = &mut self.raw[r.score.index()];
            *s = s.saturating_add(spell_contribution(r, *done, lead.last_at, now));
        }
        self.grade_from_raw(lead, now)
    }

    /// Clamps `self.raw` into `self.scores`, totals them and picks the grade.
    pub(super) fn grade_from_raw(&mut self, lead: &LeadState, now: Micros) -> GradeId {
        let p = self.program;
        for (i, s) in p.scores.iter().enumerate() {
            let raw = self.raw[i];
            self.scores[i] = s.range.map_or(raw, |(lo, hi)| raw.clamp(lo, hi));
        }
        let (total, _) = total_of(p, &self.scores);
        self.total = total;
        let env = Env {
            scores: &self.scores,
            total: self.total,
            grade: None,
            ..lead_env(p, lead, now)
        };
        // First match wins; a grade with `until` also holds the lead that is already in it
        // until its exit condition does (hysteresis).
        let grade = p
            .grades
            .iter()
            .enumerate()
            .position(|(i, g)| {
                g.cond.is_none_or(|c| eval(&env, c))
                    || g.until
                        .is_some_and(|u| lead.grade == Some(i as u32) && !eval(&env, u))
            })
            .unwrap_or(p.grades.len() - 1);
        GradeId(grade as u32)
    }
}

/// The lead's `score` from its named scores, and what it was before the total's range
/// clamped it: `total = …` when the program has one, else the sum of the scores not
/// `apart`.
fn total_of(p: &Program, scores: &[i64]) -> (i64, i64) {
    match &p.total {
        Some(t) => {
            let sum = t.terms.iter().fold(0i64, |acc, &(s, minus)| {
                let v = scores[s.index()];
                if minus {
                    acc.saturating_sub(v)
                } else {
                    acc.saturating_add(v)
                }
            });
            (t.range.map_or(sum, |(lo, hi)| sum.clamp(lo, hi)), sum)
        }
        None => {
            let sum = p
                .scores
                .iter()
                .zip(scores)
                .filter(|(s, _)| !s.apart)
                .fold(0i64, |acc, (_, &v)| acc.saturating_add(v));
            (sum, sum)
        }
    }
}

impl Engine<'_> {
    /// The `assign` statements that take the lead in `grade` at `now` (their indices, in
    /// order; the first that has someone to assign to wins): their grades hold `grade` (or
    /// they name none) and their condition holds on the lead's attributes. The lead's
    /// slots must be attached.
    pub fn assign_lines(&self, lead: &LeadState, grade: GradeId, now: Micros) -> Vec<usize> {
        let p = self.program;
        let env = lead_env(p, lead, now);
        (0..p.assigns.len())
            .filter(|&i| {
                let a = &p.assigns[i];
                (a.grades.is_empty() || a.grades.contains(&grade))
                    && a.cond.is_none_or(|c| eval(&env, c))
            })
            .collect()
    }
}
