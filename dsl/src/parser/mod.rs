//! pest → AST. The only module (with its `errors`) that sees pest's `Rule` and `Pair`.
// Lowering returns `Result<_, Diagnostic>`; errors are rare and end the statement, so the
// size of the error variant does not matter here.
#![allow(clippy::result_large_err)]

mod conditions;
mod errors;

use crate::ast::{self, *};
use crate::diagnostic::{closest, Diagnostic};
use crate::span::Span;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;

use conditions::{cond, path};
use errors::{recover, syntax_error, too_deep};

#[derive(pest_derive::Parser)]
#[grammar = "grammar.pest"]
struct Grammar;

/// How many syntax errors one file reports before giving up.
const MAX_SYNTAX_ERRORS: usize = 50;
/// Durations longer than this are almost certainly typos (and would overflow timestamps).
const MAX_DURATION_SECONDS: i64 = 100 * 366 * 86_400;

/// Deepest nesting of parentheses (or run of `not`) a rules file may use. The parser and
/// every later pass recurse on nesting, so this bounds their stack use.
const MAX_NESTING: usize = 64;
/// The most operands one arithmetic expression, `and` or `or` may join (E0007): the
/// syntax tree of a longer chain is as deep as it is long.
pub const MAX_TERMS: usize = 256;

fn too_long(span: Span, what: &str) -> Diagnostic {
    Diagnostic::error("E0007", span, format!("this {what} is too long"))
        .label(format!("more than {MAX_TERMS} operands from here"))
        .help("split it into several rules, or sum parts into scores of their own")
}

pub fn parse(src: &str) -> Result<File, Vec<Diagnostic>> {
    let p = parse_partial(src);
    if p.diags.is_empty() {
        Ok(p.file)
    } else {
        Err(p.diags)
    }
}

/// What a file with syntax errors still says: the statements that parsed, every syntax
/// error, and where the broken statements are.
pub struct Partial {
    pub file: File,
    pub diags: Vec<Diagnostic>,
    /// The broken statements' text, each from its start to where reading resumed.
    pub broken: Vec<Span>,
}

pub fn parse_partial(src: &str) -> Partial {
    if let Some(d) = too_deep(src) {
        return Partial {
            file: File { items: Vec::new() },
            diags: vec![d],
            broken: vec![Span::new(0, src.len())],
        };
    }
    let mut diags = Vec::new();
    match Grammar::parse(Rule::file, src) {
        Ok(mut pairs) => {
            let root = pairs.next().map(|p| p.into_inner());
            let items = root.map_or_else(Vec::new, |inner| items(inner, &mut diags));
            Partial {
                file: File { items },
                diags,
                broken: Vec::new(),
            }
        }
        Err(err) => {
            diags.push(syntax_error(src, &err));
            let good = recover(src, &err, &mut diags);
            // The statements between the broken ones, each region parsed on its own.
            let mut items = Vec::new();
            for &(start, end) in &good {
                items.extend(region(src, start, end, &mut diags));
            }
            let mut broken = Vec::new();
            let mut at = 0;
            for &(start, end) in &good {
                if start > at {
                    broken.push(Span::new(at, start));
                }
                at = at.max(end);
            }
            if at < src.len() {
                broken.push(Span::new(at, src.len()));
            }
            Partial {
                file: File { items },
                diags,
                broken,
            }
        }
    }
}

/// The statements in `src[start..end]` (which parsed when read as part of the file), the
/// rest blanked so that spans stay those of the file; nothing if it does not parse alone.
fn region(src: &str, start: usize, end: usize, diags: &mut Vec<Diagnostic>) -> Vec<Item> {
    if start >= end {
        return Vec::new();
    }
    let masked = format!(
        "{}{}{}",
        " ".repeat(start),
        &src[start..end],
        " ".repeat(src.len() - end)
    );
    match Grammar::parse(Rule::fragment, &masked) {
        Ok(mut pairs) => {
            let inner = pairs.next().map(|p| p.into_inner());
            inner.map_or_else(Vec::new, |inner| {
                items(inner.filter(|p| p.as_rule() != Rule::stray_close), diags)
            })
        }
        Err(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Lowering. The grammar guarantees the shape of each pair; `Lower` still never panics on a
// shape it does not expect (it reports an internal diagnostic instead).

fn span_of(p: &Pair<Rule>) -> Span {
    let s = p.as_span();
    Span::new(s.start(), s.end())
}

fn internal(p: &Pair<Rule>) -> Diagnostic {
    Diagnostic::error(
        "E0000",
        span_of(p),
        format!(
            "internal error: unexpected {:?} in the parse tree",
            p.as_rule()
        ),
    )
}

type Res<T> = Result<T, Diagnostic>;

fn items<'i>(
    pairs: impl Iterator<Item = Pair<'i, Rule>>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<Item> {
    let mut out = Vec::new();
    for p in pairs {
        if p.as_rule() == Rule::EOI {
            continue;
        }
        match item(p) {
            Ok(i) => out.push(i),
            Err(d) => diags.push(d),
        }
    }
    out
}

fn item(p: Pair<Rule>) -> Res<Item> {
    let span = span_of(&p);
    let kind = p.as_rule();
    let mut inner = p.clone().into_inner().filter(|c| !is_keyword(c.as_rule()));
    let mut next = || inner.next().ok_or_else(|| internal(&p));
    Ok(match kind {
        Rule::ruleset_decl => Item::Ruleset(RulesetDecl {
            name: string(next()?)?,
            span,
        }),
        Rule::set_decl => Item::Set(SetDecl {
            name: ident(next()?),
            items: list(next()?)?,
            span,
        }),
        Rule::score_decl => {
            let name = ident(next()?);
            let (mut range_of, mut apart, mut decays) = (None, false, None);
            while let Ok(k) = next() {
                match k.as_rule() {
                    Rule::range => range_of = Some(range(k)?),
                    Rule::apart => apart = true,
                    Rule::decay => decays = Some(decay(k)?),
                    _ => {}
                }
            }
            Item::Score(ScoreDecl {
                name,
                range: range_of,
                apart,
                decay: decays,
                span,
            })
        }
        Rule::total_decl => {
            let (mut terms, mut range_of, mut minus) = (Vec::new(), None, false);
            while let Ok(k) = next() {
                match k.as_rule() {
                    Rule::total_term => {
                        let id = k.into_inner().next().ok_or_else(|| internal(&p))?;
                        terms.push((minus, ident(id)));
                    }
                    Rule::arith_op => minus = k.as_str() == "-",
                    Rule::range => range_of = Some(range(k)?),
                    _ => {}
                }
            }
            Item::Total(TotalDecl {
                terms,
                range: range_of,
                span,
            })
        }
        Rule::grade_decl => {
            let name = ident(next()?);
            let c = next()?;
            let entry = match c.as_rule() {
                Rule::otherwise => None,
                _ => Some(cond(c)?),
            };
            let until = match next() {
                Ok(u) => {
                    let c = u.clone().into_inner().find(|c| c.as_rule() == Rule::cond);
                    Some(cond(c.ok_or_else(|| internal(&u))?)?)
                }
                Err(_) => None,
            };
            Item::Grade(GradeDecl {
                name,
                cond: entry,
                until,
                span,
            })
        }
        Rule::field_decl => Item::Field(FieldDecl {
            names: inner.map(ident).collect(),
            span,
        }),
        Rule::tag_decl => {
            let name = ident(next()?);
            let c = next()?;
            let cond = match c.as_rule() {
                Rule::followup_overdue => TagCond::Overdue(span_of(&c)),
                _ => TagCond::Cond(cond(c)?),
            };
            Item::Tag(TagDecl { name, cond, span })
        }
        Rule::assign_decl => assign_item(p)?,
        Rule::plan_decl => {
            let name = ident(next()?);
            let mut steps = Vec::new();
            for step in inner.filter(|c| c.as_rule() == Rule::plan_step) {
                let parts = children(&step);
                match parts.as_slice() {
                    [kind, d] => steps.push((
                        Ident {
                            name: kind.as_str().to_string(),
                            span: span_of(kind),
                        },
                        duration(d)?,
                    )),
                    _ => return Err(internal(&step)),
                }
            }
            Item::Plan(PlanDecl { name, steps, span })
        }
        Rule::recycle_decl => {
            let d = inner
                .find(|c| c.as_rule() == Rule::duration)
                .ok_or_else(|| internal(&p))?;
            Item::Recycle(RecycleDecl {
                after: duration(&d)?,
                span,
            })
        }
        Rule::if_block => {
            let c = cond(next()?)?;
            let mut body = Vec::new();
            for child in inner {
                match child.as_rule() {
                    Rule::block_open | Rule::block_close => {}
                    _ => body.push(item(child)?),
                }
            }
            Item::If(IfBlock {
                cond: c,
                body,
                span,
            })
        }
        Rule::rule_decl => rule_item(p)?,
        Rule::after_decl => after_item(p)?,
        Rule::channel_decl => {
            let name = ident(next()?);
            let kind = ident(next()?);
            let t = next()?;
            let target = match t.clone().into_inner().next() {
                Some(r) if r.as_rule() == Rule::secret_ref => {
                    let s = r.into_inner().find(|c| c.as_rule() == Rule::string);
                    ChannelTarget::Secret(string(s.ok_or_else(|| internal(&t))?)?)
                }
                Some(r) if r.as_rule() == Rule::string => ChannelTarget::Literal(string(r)?),
                _ => return Err(internal(&t)),
            };
            let signed = match next() {
                Ok(s) => {
                    let lit = s.clone().into_inner().find(|c| c.as_rule() == Rule::string);
                    Some(string(lit.ok_or_else(|| internal(&s))?)?)
                }
                Err(_) => None,
            };
            Item::Channel(ChannelDecl {
                name,
                kind,
                target,
                signed,
                span,
            })
        }
        Rule::notify_decl => {
            let channel = ident(next()?);
            let t = next()?;
            let parts = children(&t);
            let trigger = match (t.as_rule(), parts.as_slice()) {
                (Rule::grade_becomes, [g]) => NotifyTrigger::Becomes(ident(g.clone())),
                (Rule::grade_leaves, [g]) => NotifyTrigger::Leaves(ident(g.clone())),
                (Rule::grade_changes, []) => NotifyTrigger::Changes(span_of(&t)),
                (Rule::owner_changes, []) => NotifyTrigger::OwnerChanges(span_of(&t)),
                (Rule::followup_overdue, []) => NotifyTrigger::FollowupOverdue(span_of(&t)),
                (Rule::task_due, []) => NotifyTrigger::TaskDue(span_of(&t)),
                (Rule::score_crosses, [score, n]) => NotifyTrigger::Crosses {
                    score: ident(score.clone()),
                    threshold: int(n)?,
                },
                _ => return Err(internal(&t)),
            };
            let once = next().ok().map(|o| span_of(&o));
            Item::Notify(NotifyDecl {
                channel,
                trigger,
                once,
                span,
            })
        }
        _ => return Err(internal(&p)),
    })
}

/// `assign WHEN to TARGET [within D]`.
fn assign_item(p: Pair<Rule>) -> Res<Item> {
    let span = span_of(&p);
    let mut a = AssignDecl {
        otherwise: false,
        grades: Vec::new(),
        cond: None,
        to: AssignTo::Pool(span),
        within: None,
        plan: None,
        span,
    };
    for part in p.clone().into_inner() {
        match part.as_rule() {
            Rule::assign_when => {
                for w in part.into_inner() {
                    match w.as_rule() {
                        Rule::otherwise => a.otherwise = true,
                        Rule::assign_grades => {
                            a.grades = w
                                .into_inner()
                                .filter(|g| g.as_rule() == Rule::ident)
                                .map(ident)
                                .collect()
                        }
                        Rule::cond => a.cond = Some(cond(w)?),
                        _ => {}
                    }
                }
            }
            Rule::assign_pool => a.to = AssignTo::Pool(span_of(&part)),
            Rule::assign_company => a.to = AssignTo::CompanyOwner(span_of(&part)),
            Rule::assign_team => {
                let mut team = None;
                let mut how = AssignHow::InOrder;
                for t in part.clone().into_inner() {
                    match t.as_rule() {
                        Rule::ident => team = Some(ident(t)),
                        Rule::round_robin => how = AssignHow::RoundRobin(span_of(&t)),
                        Rule::assign_by => {
                            let path = t
                                .clone()
                                .into_inner()
                                .find(|c| c.as_rule() == Rule::path)
                                .ok_or_else(|| internal(&t))?;
                            how = AssignHow::By(conditions::path(path));
                        }
                        _ => {}
                    }
                }
                a.to = AssignTo::Team {
                    team: team.ok_or_else(|| internal(&part))?,
                    how,
                };
            }
            Rule::assign_within => {
                let d = part
                    .clone()
                    .into_inner()
                    .find(|c| c.as_rule() == Rule::duration)
                    .ok_or_else(|| internal(&part))?;
                a.within = Some(duration(&d)?);
            }
            Rule::assign_plan => {
                let id = part
                    .clone()
                    .into_inner()
                    .find(|c| c.as_rule() == Rule::ident)
                    .ok_or_else(|| internal(&part))?;
                a.plan = Some(ident(id));
            }
            _ => {}
        }
    }
    Ok(Item::Assign(a))
}

/// A signed whole number, at most a billion either way.
fn int(p: &Pair<Rule>) -> Res<Int> {
    let span = span_of(p);
    p.as_str()
        .parse::<i64>()
        .ok()
        .filter(|v| v.abs() <= 1_000_000_000)
        .map(|value| Int { value, span })
        .ok_or_else(|| Diagnostic::error("E0002", span, "this number is too large"))
}

fn is_keyword(r: Rule) -> bool {
    matches!(
        r,
        Rule::equals
            | Rule::dotdot
            | Rule::lparen
            | Rule::rparen
            | Rule::lbracket
            | Rule::rbracket
            | Rule::comma
            | Rule::kw_ruleset
            | Rule::kw_set
            | Rule::kw_score
            | Rule::kw_total
            | Rule::kw_apart
            | Rule::kw_range
            | Rule::kw_grade
            | Rule::kw_tag
            | Rule::kw_if
            | Rule::kw_when
            | Rule::kw_where
            | Rule::kw_otherwise
            | Rule::kw_add
            | Rule::kw_subtract
            | Rule::kw_each
            | Rule::kw_max
            | Rule::kw_expires
            | Rule::kw_after
            | Rule::kw_to
            | Rule::kw_from
            | Rule::kw_count
            | Rule::kw_within
            | Rule::kw_inactive
            | Rule::kw_for
            | Rule::kw_until
            | Rule::kw_and
            | Rule::kw_or
            | Rule::kw_not
            | Rule::kw_in
            | Rule::kw_is
            | Rule::kw_contains
            | Rule::kw_any
            | Rule::kw_word
            | Rule::kw_channel
            | Rule::kw_notify
            | Rule::kw_secret
            | Rule::kw_signed
            | Rule::kw_becomes
            | Rule::kw_leaves
            | Rule::kw_changes
            | Rule::kw_crosses
            | Rule::kw_field
            | Rule::kw_protected
            | Rule::kw_once
            | Rule::kw_ask
            | Rule::kw_of
            | Rule::kw_reset
            | Rule::kw_up
            | Rule::kw_per
            | Rule::kw_distinct
            | Rule::kw_decay
            | Rule::kw_every
            | Rule::kw_assign
            | Rule::kw_team
            | Rule::kw_pool
            | Rule::kw_round
            | Rule::kw_robin
            | Rule::kw_by
            | Rule::kw_recycle
            | Rule::kw_without
            | Rule::kw_followup
            | Rule::kw_overdue
            | Rule::kw_owner
            | Rule::kw_plan
            | Rule::kw_company
            | Rule::kw_at
            | Rule::kw_task
            | Rule::kw_due
    )
}

/// Children of `p` without keyword tokens.
fn children<'i>(p: &Pair<'i, Rule>) -> Vec<Pair<'i, Rule>> {
    p.clone()
        .into_inner()
        .filter(|c| !is_keyword(c.as_rule()))
        .collect()
}

/// The one child of `p` that is not a keyword (`max 20` → `20`).
fn only_child<'i>(p: &Pair<'i, Rule>) -> Res<Pair<'i, Rule>> {
    children(p).into_iter().next().ok_or_else(|| internal(p))
}

/// A rule's parts: what triggers it, what it does, its `ask` if any, and its span — which
/// ends where its last part does (not after the blank the optional `ask` looked past).
type RuleParts<'i> = (Pair<'i, Rule>, Pair<'i, Rule>, Option<StringLit>, Span);

fn rule_parts(p: Pair<'_, Rule>) -> Res<RuleParts<'_>> {
    let mut kids = children(&p).into_iter();
    let (Some(head), Some(act)) = (kids.next(), kids.next()) else {
        return Err(internal(&p));
    };
    let ask = kids.next();
    let end = ask.as_ref().unwrap_or(&act).as_span().end();
    let span = Span::new(p.as_span().start(), end);
    let ask = match ask {
        Some(a) => Some(string(only_child(&a)?)?),
        None => None,
    };
    Ok((head, act, ask, span))
}

fn rule_item(p: Pair<Rule>) -> Res<Item> {
    let (trig, act, ask, span) = rule_parts(p)?;
    let trig = &trig;
    let trigger = match trig.as_rule() {
        Rule::event_trigger => {
            let mut event_type = None;
            let mut filter = None;
            let mut win = None;
            let mut after = None;
            for c in children(trig) {
                match c.as_rule() {
                    Rule::event_type => event_type = Some(ident(c)),
                    Rule::cond => filter = Some(cond(c)?),
                    Rule::window => win = Some(window(c)?),
                    Rule::prior => after = Some(Box::new(prior(c)?)),
                    _ => return Err(internal(&c)),
                }
            }
            Trigger::Event(EventTrigger {
                event_type: event_type.ok_or_else(|| internal(trig))?,
                filter,
                window: win,
                prior: after,
            })
        }
        _ => Trigger::Field(cond(trig.clone())?),
    };
    let action = match act.as_rule() {
        Rule::reset => Effect::Reset(ident(only_child(&act)?), span_of(&act)),
        _ => Effect::Award(Box::new(action(act)?)),
    };
    Ok(Item::Rule(ast::Rule {
        trigger,
        effect: action,
        ask,
        span,
    }))
}

/// `after inactive for D ACTION [ask "TEXT"]`.
fn after_item(p: Pair<Rule>) -> Res<Item> {
    let (d, act, ask, span) = rule_parts(p)?;
    Ok(Item::Rule(ast::Rule {
        trigger: Trigger::After(duration(&d)?),
        effect: Effect::Award(Box::new(action(act)?)),
        ask,
        span,
    }))
}

/// `decay P% every D`.
fn decay(p: Pair<Rule>) -> Res<Decay> {
    let kids = children(&p);
    let [pct, d] = kids.as_slice() else {
        return Err(internal(&p));
    };
    let text = pct.as_str().trim_end_matches('%');
    let percent = text
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= 1_000_000_000)
        .ok_or_else(|| Diagnostic::error("E0002", span_of(pct), "this number is too large"))?;
    Ok(Decay {
        percent: Int {
            value: percent,
            span: span_of(pct),
        },
        every: duration(d)?,
        span: span_of(&p),
    })
}

fn prior(p: Pair<Rule>) -> Res<Prior> {
    let span = span_of(&p);
    let kids = children(&p);
    let (d, ty, filter) = match kids.as_slice() {
        [d, ty] => (d, ty, None),
        [d, ty, f] => (d, ty, Some(cond(f.clone())?)),
        _ => return Err(internal(&p)),
    };
    Ok(Prior {
        within: duration(d)?,
        event_type: ident(ty.clone()),
        filter,
        span,
    })
}

fn window(p: Pair<Rule>) -> Res<Window> {
    let kids = children(&p);
    let (n, within) = match kids.as_slice() {
        [n] => (n, None),
        [n, d] => (n, Some(duration(d)?)),
        _ => return Err(internal(&p)),
    };
    Ok(Window {
        count: uint(n)?,
        within,
        span: span_of(&p),
    })
}

fn action(p: Pair<Rule>) -> Res<Action> {
    let span = span_of(&p);
    let mut verb = Verb::Add;
    let mut verb_span = span;
    let mut points = None;
    let mut each = None;
    let mut max = None;
    let mut expires = None;
    let mut target = None;
    let mut per = None;
    let mut distinct = None;
    let mut every = None;
    let mut decays = None;
    for c in children(&p) {
        match c.as_rule() {
            Rule::verb => {
                verb_span = span_of(&c);
                verb = if c.as_str() == "subtract" {
                    Verb::Subtract
                } else {
                    Verb::Add
                };
            }
            Rule::points => {
                let v = c.clone().into_inner().next().ok_or_else(|| internal(&c))?;
                points = Some(match v.as_rule() {
                    Rule::uint => Points::Const(uint(&v)?),
                    _ => Points::Field(path(v)),
                });
            }
            Rule::each => each = Some(span_of(&c)),
            Rule::max => max = Some(uint(&only_child(&c)?)?),
            Rule::per_cap => {
                let kids = children(&c);
                let [n, d] = kids.as_slice() else {
                    return Err(internal(&c));
                };
                per = Some(PerCap {
                    points: uint(n)?,
                    period: duration(d)?,
                    span: span_of(&c),
                });
            }
            Rule::decay => decays = Some(decay(c)?),
            Rule::repeat => every = Some(duration(&only_child(&c)?)?),
            Rule::distinct => distinct = Some(path(only_child(&c)?)),
            Rule::expires => expires = Some(duration(&only_child(&c)?)?),
            Rule::target => target = Some(ident(only_child(&c)?)),
            _ => return Err(internal(&c)),
        }
    }
    Ok(Action {
        verb,
        verb_span,
        points: points.ok_or_else(|| internal(&p))?,
        each,
        max,
        expires,
        per,
        distinct,
        every,
        decay: decays,
        target,
        span,
    })
}

fn ident(p: Pair<Rule>) -> Ident {
    Ident {
        name: p.as_str().to_string(),
        span: span_of(&p),
    }
}

fn uint(p: &Pair<Rule>) -> Res<Int> {
    let span = span_of(p);
    p.as_str()
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= 1_000_000_000)
        .map(|value| Int { value, span })
        .ok_or_else(|| {
            Diagnostic::error("E0002", span, "this number is too large").label("at most 1000000000")
        })
}

fn range(p: Pair<Rule>) -> Res<Range> {
    let span = span_of(&p);
    let kids = children(&p);
    let [lo, hi] = kids.as_slice() else {
        return Err(internal(&p));
    };
    Ok(Range {
        lo: int(lo)?,
        hi: int(hi)?,
        span,
    })
}

fn duration(p: &Pair<Rule>) -> Res<Duration> {
    let span = span_of(p);
    let text = p.as_str();
    let (digits, unit) = text.split_at(text.len() - 1);
    let per = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 7 * 86_400,
    };
    digits
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(per))
        .filter(|s| *s <= MAX_DURATION_SECONDS)
        .map(|seconds| Duration { seconds, span })
        .ok_or_else(|| {
            Diagnostic::error("E0003", span, "this duration is too long")
                .label("durations are limited to 100 years")
        })
}

fn list(p: Pair<Rule>) -> Res<ListLit> {
    let span = span_of(&p);
    let items = children(&p)
        .into_iter()
        .map(string)
        .collect::<Res<Vec<_>>>()?;
    Ok(ListLit { items, span })
}

fn string(p: Pair<Rule>) -> Res<StringLit> {
    let span = span_of(&p);
    let mut value = String::new();
    let mut chars = p.as_str()[1..p.as_str().len().saturating_sub(1).max(1)].chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let esc = chars.next();
        let c = match esc {
            Some('"') => '"',
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('t') => '\t',
            _ => {
                return Err(Diagnostic::error(
                    "E0004",
                    span,
                    format!("unknown escape `\\{}` in text", esc.unwrap_or(' ')),
                )
                .help("the escapes are \\\" \\\\ \\n and \\t"))
            }
        };
        value.push(c);
    }
    Ok(StringLit { value, span })
}
