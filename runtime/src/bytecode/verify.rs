//! Verification of a decoded program: every index in bounds, every condition a
//! well-formed forward-only stack program, every rule within the limits the VM's state
//! relies on. After `verify` succeeds the VM indexes without checking.

use super::op::*;
use super::program::*;

/// Deepest value stack a condition may need; the VM's stack has this fixed capacity.
pub const MAX_STACK: usize = 32;
/// Longest run of points timestamps an `expires` rule may keep per lead.
pub const MAX_EXPIRY_SLOTS: u32 = 1024;
/// Largest `count >= N` a window may ask for (its timestamps are kept per lead).
pub const MAX_WINDOW_COUNT: u32 = 1024;
/// Most awards a rule keeps per lead for `up to N per D` (N/points) and `distinct`
/// (max/points).
pub const MAX_AWARD_LOG: u32 = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("not a leadscore program (bad magic bytes)")]
    BadMagic,
    #[error(
        "bytecode format version {found} is not supported (this build reads version {supported}); compile the rules again with this leadscore"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("the program is truncated or has trailing bytes")]
    Truncated,
    #[error("the program is corrupt (checksum mismatch)")]
    Checksum,
    #[error("the program cannot be decoded: {0}")]
    Decode(String),
    #[error("invalid program: {0}")]
    Invalid(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, VerifyError> {
    Err(VerifyError::Invalid(msg.into()))
}

fn check(ok: bool, msg: impl FnOnce() -> String) -> Result<(), VerifyError> {
    if ok {
        Ok(())
    } else {
        bad(msg())
    }
}

/// What a condition may read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    /// Field rule: attributes and `inactive`.
    Field,
    /// Event rule: attributes and event properties.
    Event,
    /// Grade: also scores.
    Grade,
    /// Tag: also scores and the grade.
    Tag,
}

pub fn verify(p: &Program) -> Result<(), VerifyError> {
    check(!p.scores.is_empty(), || "no scores".into())?;
    check(p.scores.len() <= u16::MAX as usize, || {
        "too many scores".into()
    })?;
    for s in &p.scores {
        if let Some((lo, hi)) = s.range {
            check(lo <= hi, || {
                format!("score `{}` has an empty range", s.name)
            })?;
        }
    }
    for (i, set) in p.sets.iter().enumerate() {
        check(set.items.windows(2).all(|w| w[0] < w[1]), || {
            format!("set {i} is not sorted and unique")
        })?;
    }
    check(p.protected.windows(2).all(|w| w[0] < w[1]), || {
        "the protected fields are not sorted and unique".into()
    })?;
    check(p.numbers.iter().all(|n| n.is_finite()), || {
        "a number constant is not finite".into()
    })?;
    if let Some(t) = &p.total {
        check(
            !t.terms.is_empty() && t.terms.iter().all(|(s, _)| s.index() < p.scores.len()),
            || "the total names a bad score".into(),
        )?;
        check(t.range.is_none_or(|(lo, hi)| lo <= hi), || {
            "the total's range is empty".into()
        })?;
    }

    // Conditions: the start of every condition, and which context it runs in.
    let mut starts: Vec<(CodeRef, Context)> = Vec::new();
    for (i, r) in p.field_rules.iter().enumerate() {
        check(r.score.index() < p.scores.len(), || {
            format!("field rule {i}: bad score")
        })?;
        check(r.rule.index() < p.rules.len(), || {
            format!("field rule {i}: bad rule index")
        })?;
        points(p, &r.points, false).map_err(|e| prefix(e, "field rule", i))?;
        starts.push((r.cond, Context::Field));
    }
    for (i, r) in p.event_rules.iter().enumerate() {
        check(r.score.index() < p.scores.len(), || {
            format!("event rule {i}: bad score")
        })?;
        check(r.rule.index() < p.rules.len(), || {
            format!("event rule {i}: bad rule index")
        })?;
        points(p, &r.points, true).map_err(|e| prefix(e, "event rule", i))?;
        if let Some(c) = r.cond {
            starts.push((c, Context::Event));
        }
        if let Some(secs) = r.expires {
            check(secs > 0, || format!("event rule {i}: zero expiry"))?;
            let (Some(max), Amount::Const(n)) = (r.points.max, r.points.amount) else {
                return bad(format!(
                    "event rule {i}: expires needs max and constant points"
                ));
            };
            check(n > 0 && max.div_ceil(n) <= MAX_EXPIRY_SLOTS, || {
                format!("event rule {i}: expiry keeps too many timestamps")
            })?;
        }
        if let Some(w) = r.window {
            check(
                w.count >= 1 && w.count <= MAX_WINDOW_COUNT && w.seconds > 0,
                || format!("event rule {i}: bad window"),
            )?;
            check(!r.each && r.expires.is_none(), || {
                format!("event rule {i}: a window awards once")
            })?;
        }
        if let Some(prior) = &r.prior {
            check(prior.seconds > 0, || {
                format!("event rule {i}: zero `within … of`")
            })?;
            if let Some(c) = prior.cond {
                starts.push((c, Context::Event));
            }
        }
        if let Some(cap) = r.per {
            let Amount::Const(n) = r.points.amount else {
                return bad(format!(
                    "event rule {i}: a cap per period needs constant points"
                ));
            };
            check(
                r.each
                    && n > 0
                    && cap.seconds > 0
                    && n <= cap.points
                    && cap.points / n <= MAX_AWARD_LOG,
                || format!("event rule {i}: bad cap per period"),
            )?;
        }
        if let Some(f) = r.distinct {
            check(f.index() < p.fields.len(), || {
                format!("event rule {i}: bad distinct field")
            })?;
            let (Some(max), Amount::Const(n)) = (r.points.max, r.points.amount) else {
                return bad(format!(
                    "event rule {i}: distinct needs max and constant points"
                ));
            };
            check(
                r.each
                    && r.expires.is_none()
                    && r.window.is_none()
                    && n > 0
                    && max.div_ceil(n) <= MAX_AWARD_LOG,
                || format!("event rule {i}: bad distinct"),
            )?;
        }
        if let Some(d) = r.decay {
            check((1..=99).contains(&d.percent) && d.seconds > 0, || {
                format!("event rule {i}: bad decay")
            })?;
        }
        if r.reset {
            check(
                r.points.amount == Amount::Const(0)
                    && !r.each
                    && r.expires.is_none()
                    && r.window.is_none()
                    && r.per.is_none()
                    && r.distinct.is_none(),
                || format!("event rule {i}: a reset gives no points"),
            )?;
        }
    }
    for (i, r) in p.time_rules.iter().enumerate() {
        check(
            r.score.index() < p.scores.len() && r.rule.index() < p.rules.len(),
            || format!("time rule {i}: bad score or rule index"),
        )?;
        check(
            matches!(r.points.amount, Amount::Const(_))
                && r.delay > 0
                && r.every.is_none_or(|e| e > 0),
            || format!("time rule {i}: a time award has constant points and positive durations"),
        )?;
    }
    let mut listed = vec![0u32; p.event_rules.len()];
    for (i, t) in p.event_types.iter().enumerate() {
        if i > 0 {
            check(p.event_types[i - 1].name < t.name, || {
                "event types are not sorted and unique".into()
            })?;
        }
        for &r in &t.rules {
            let Some(n) = listed.get_mut(r as usize) else {
                return bad(format!("event type `{}` lists a missing rule", t.name));
            };
            *n += 1;
        }
    }
    check(listed.iter().all(|&n| n == 1), || {
        "every event rule must be listed under exactly one event type".into()
    })?;

    check(!p.grades.is_empty(), || "no grades".into())?;
    for (i, g) in p.grades.iter().enumerate() {
        let last = i + 1 == p.grades.len();
        check(g.cond.is_none() == last, || {
            "only the last grade, and always the last, is `otherwise`".into()
        })?;
        check(g.cond.is_some() || g.until.is_none(), || {
            "`otherwise` has no `until`".into()
        })?;
        if let Some(c) = g.cond {
            starts.push((c, Context::Grade));
        }
        if let Some(u) = g.until {
            starts.push((u, Context::Grade));
        }
    }
    for t in &p.tags {
        starts.push((t.cond, Context::Tag));
    }
    for (i, a) in p.assigns.iter().enumerate() {
        check(a.grades.iter().all(|g| g.index() < p.grades.len()), || {
            format!("assign rule {i} names a missing grade")
        })?;
        if let AssignTo::Team { name, how } = &a.to {
            check(!name.is_empty(), || {
                format!("assign rule {i} names no team")
            })?;
            check(!matches!(how, AssignHow::By(f) if f.is_empty()), || {
                format!("assign rule {i} assigns by no attribute")
            })?;
        }
        check(
            a.plan.is_none_or(|p_| (p_ as usize) < p.plans.len()),
            || format!("assign rule {i} names a missing plan"),
        )?;
        if let Some(c) = a.cond {
            starts.push((c, Context::Field));
        }
    }
    for (i, plan) in p.plans.iter().enumerate() {
        check(!plan.steps.is_empty(), || format!("plan {i} has no steps"))?;
    }
    for (start, ctx) in starts {
        condition(p, start, ctx)?;
    }
    notifications(p)
}

/// Channels have names and somewhere to go; `notify` rules name existing channels,
/// grades and scores.
fn notifications(p: &Program) -> Result<(), VerifyError> {
    for (i, c) in p.channels.iter().enumerate() {
        let target = match &c.target {
            ChannelTarget::Url(t) | ChannelTarget::Secret(t) | ChannelTarget::Template(t) => t,
        };
        check(!c.name.is_empty() && !target.is_empty(), || {
            format!("channel {i} has no name or no target")
        })?;
        check(
            (c.kind == ChannelKind::Http) == matches!(c.target, ChannelTarget::Template(_)),
            || format!("channel `{}`: only `http` channels use templates", c.name),
        )?;
    }
    for (i, n) in p.notifies.iter().enumerate() {
        check((n.channel as usize) < p.channels.len(), || {
            format!("notify rule {i} names a missing channel")
        })?;
        let ok = match n.trigger {
            NotifyTrigger::Becomes(g) | NotifyTrigger::Leaves(g) => g.index() < p.grades.len(),
            NotifyTrigger::Changes
            | NotifyTrigger::OwnerChanges
            | NotifyTrigger::FollowupOverdue
            | NotifyTrigger::TaskDue => true,
            NotifyTrigger::Crosses { score, .. } => {
                score.is_none_or(|s| s.index() < p.scores.len())
            }
        };
        check(ok, || {
            format!("notify rule {i} names a missing grade or score")
        })?;
    }
    Ok(())
}

fn prefix(e: VerifyError, what: &str, i: usize) -> VerifyError {
    match e {
        VerifyError::Invalid(m) => VerifyError::Invalid(format!("{what} {i}: {m}")),
        other => other,
    }
}

fn points(p: &Program, pts: &Points, event: bool) -> Result<(), VerifyError> {
    if let Some(m) = pts.max {
        check(m > 0, || "max must be positive".into())?;
    }
    match pts.amount {
        Amount::Const(_) => Ok(()),
        Amount::Attr(f) => check(f.index() < p.fields.len(), || "bad field".into()),
        Amount::Prop(f) => check(event && f.index() < p.fields.len(), || {
            "bad property".into()
        }),
    }
}

/// Checks one condition by abstract interpretation of stack depths: the code from `start`
/// to the first `Return` is the condition; jumps stay inside it and go forward; every path
/// agrees on the depth at each instruction; the depth never underflows or exceeds
/// `MAX_STACK`; `Return` sees exactly one value.
fn condition(p: &Program, start: CodeRef, ctx: Context) -> Result<(), VerifyError> {
    let s = start.index();
    let Some(len) = p
        .code
        .get(s..)
        .and_then(|c| c.iter().position(|o| *o == Op::Return))
    else {
        return bad(format!("condition at {s} has no Return"));
    };
    let end = s + len; // index of the Return
    let mut depth: Vec<Option<usize>> = vec![None; len + 1];
    depth[0] = Some(0);
    for pc in s..=end {
        let Some(d) = depth[pc - s] else {
            // Unreachable instruction: allowed (never executed), but must still be valid.
            operand(p, p.code[pc], ctx, pc)?;
            continue;
        };
        let op = p.code[pc];
        operand(p, op, ctx, pc)?;
        let (pop, push) = op.stack_effect();
        check(d >= pop, || format!("stack underflow at {pc}"))?;
        if op == Op::Return {
            check(d == 1, || format!("condition at {s} returns {d} values"))?;
            break;
        }
        let after = d - pop + push;
        check(after <= MAX_STACK, || {
            format!("stack deeper than {MAX_STACK} at {pc}")
        })?;
        let mut flow = |target: usize, depth_there: usize| -> Result<(), VerifyError> {
            check(target > pc && target <= end, || {
                format!("jump out of condition at {pc}")
            })?;
            let slot = &mut depth[target - s];
            match slot {
                None => *slot = Some(depth_there),
                Some(existing) => check(*existing == depth_there, || {
                    format!("inconsistent stack depth at {target}")
                })?,
            }
            Ok(())
        };
        if let Op::JumpIfFalse(n) | Op::JumpIfTrue(n) = op {
            let target = pc
                .checked_add(1)
                .and_then(|x| x.checked_add(n as usize))
                .unwrap_or(usize::MAX);
            flow(target, d)?;
        }
        flow(pc + 1, after)?;
    }
    Ok(())
}

fn operand(p: &Program, op: Op, ctx: Context, pc: usize) -> Result<(), VerifyError> {
    let ok = match op {
        Op::Attr(f) => f.index() < p.fields.len(),
        Op::Prop(f) => ctx == Context::Event && f.index() < p.fields.len(),
        Op::Num(n) => n.index() < p.numbers.len(),
        Op::Str(s) | Op::Contains(s) | Op::ContainsWord(s) => s.index() < p.strings.len(),
        Op::In(s) | Op::NotIn(s) | Op::ContainsAny(s) | Op::ContainsAnyWord(s) => {
            s.index() < p.sets.len()
        }
        Op::Score(s) => matches!(ctx, Context::Grade | Context::Tag) && s.index() < p.scores.len(),
        Op::Total => matches!(ctx, Context::Grade | Context::Tag),
        Op::GradeIs(g) => ctx == Context::Tag && g.index() < p.grades.len(),
        Op::Inactive(secs) => ctx != Context::Event && secs > 0,
        _ => true,
    };
    check(ok, || {
        format!("instruction {pc} ({op:?}) is not valid here")
    })
}
