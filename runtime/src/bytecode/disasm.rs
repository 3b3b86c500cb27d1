//! A readable listing of a program, with each rule's source line and text. Snapshots of
//! it show a rule change's effect in review.

use super::op::*;
use super::program::*;
use std::fmt::Write;

pub fn disassemble(p: &Program) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "; leadscore program \"{}\" (bytecode v{FORMAT_VERSION})",
        p.name
    );
    let _ = writeln!(o, "; source sha256 {}", hex(&p.source_hash));
    o.push_str("\nscores\n");
    for (i, s) in p.scores.iter().enumerate() {
        let range = s
            .range
            .map_or(String::new(), |(lo, hi)| format!(" range {lo}..{hi}"));
        let apart = if s.apart { " apart" } else { "" };
        let _ = writeln!(o, "  s{i} {}{range}{apart}", s.name);
    }
    if let Some(t) = &p.total {
        let mut terms = String::new();
        for (n, (s, minus)) in t.terms.iter().enumerate() {
            let op = match (n, minus) {
                (0, false) => "",
                (0, true) => "-",
                (_, false) => " + ",
                (_, true) => " - ",
            };
            let _ = write!(terms, "{op}{}", p.scores[s.index()].name);
        }
        let range = t
            .range
            .map_or(String::new(), |(lo, hi)| format!(" range {lo}..{hi}"));
        let _ = writeln!(o, "  total = {terms}{range} (line {})", t.line);
    }
    if !p.protected.is_empty() {
        let _ = writeln!(o, "\nprotected {}", p.protected.join(", "));
    }
    if !p.sets.is_empty() {
        o.push_str("\nsets\n");
        for (i, s) in p.sets.iter().enumerate() {
            let name = s.name.as_deref().unwrap_or("(list)");
            let items: Vec<String> = s.items.iter().map(|x| format!("{x:?}")).collect();
            let _ = writeln!(o, "  set{i} {name} [{}]", items.join(", "));
        }
    }
    if !p.field_rules.is_empty() {
        o.push_str("\nfield rules\n");
        for r in &p.field_rules {
            rule_header(&mut o, p, r.id, r.rule, r.score, &r.points, "", "  ");
            code(&mut o, p, r.cond, "    ");
        }
    }
    if !p.event_types.is_empty() {
        o.push_str("\nevent rules\n");
        for t in &p.event_types {
            let _ = writeln!(o, "  on {}", t.name);
            for &i in &t.rules {
                let r = &p.event_rules[i as usize];
                let mut extra = String::new();
                if r.each {
                    extra.push_str(" each");
                }
                if let Some(e) = r.expires {
                    let _ = write!(extra, " expires {}", duration(e));
                }
                match r.window {
                    Some(w) if w.seconds == LIFETIME => {
                        let _ = write!(extra, " count>={} ever", w.count);
                    }
                    Some(w) => {
                        let _ = write!(extra, " count>={} within {}", w.count, duration(w.seconds));
                    }
                    None => {}
                }
                if let Some(c) = r.per {
                    let _ = write!(extra, " up to {} per {}", c.points, duration(c.seconds));
                }
                if let Some(f) = r.distinct {
                    let _ = write!(extra, " distinct {}", p.fields[f.index()]);
                }
                if r.reset {
                    extra.push_str(" reset");
                }
                if let Some(d) = r.decay {
                    let _ = write!(extra, " decay {}% every {}", d.percent, duration(d.seconds));
                }
                if let Some(prior) = &r.prior {
                    let _ = write!(
                        extra,
                        " within {} of {}",
                        duration(prior.seconds),
                        prior.event_type
                    );
                }
                rule_header(&mut o, p, r.id, r.rule, r.score, &r.points, &extra, "    ");
                match r.cond {
                    Some(c) => code(&mut o, p, c, "      "),
                    None => o.push_str("      (always)\n"),
                }
                if let Some(c) = r.prior.as_ref().and_then(|prior| prior.cond) {
                    let _ = writeln!(o, "      earlier event");
                    code(&mut o, p, c, "      ");
                }
            }
        }
    }
    if !p.time_rules.is_empty() {
        o.push_str("\ntime rules\n");
        for r in &p.time_rules {
            let mut extra = format!(" after inactive {}", duration(r.delay));
            if let Some(e) = r.every {
                let _ = write!(extra, " every {}", duration(e));
            }
            rule_header(&mut o, p, r.id, r.rule, r.score, &r.points, &extra, "  ");
        }
    }
    o.push_str("\ngrades\n");
    for g in &p.grades {
        match g.cond {
            Some(c) => {
                let _ = writeln!(o, "  {} (line {})", g.name, g.line);
                code(&mut o, p, c, "    ");
                if let Some(u) = g.until {
                    let _ = writeln!(o, "    until");
                    code(&mut o, p, u, "    ");
                }
            }
            None => {
                let _ = writeln!(o, "  {} otherwise (line {})", g.name, g.line);
            }
        }
    }
    if !p.tags.is_empty() {
        o.push_str("\ntags\n");
        for t in &p.tags {
            let _ = writeln!(o, "  {} (line {})", t.name, t.line);
            code(&mut o, p, t.cond, "    ");
        }
    }
    desk(&mut o, p);
    if !p.channels.is_empty() {
        o.push_str(
            "
channels
",
        );
        for c in &p.channels {
            let target = match &c.target {
                ChannelTarget::Url(u) => format!("{u:?}"),
                ChannelTarget::Secret(n) => format!("secret {n:?}"),
                ChannelTarget::Template(n) => format!("template {n:?}"),
            };
            let signed = c
                .signed
                .as_ref()
                .map_or(String::new(), |s| format!(" signed {s:?}"));
            let _ = writeln!(
                o,
                "  {} {} {target}{signed} (line {})",
                c.name,
                c.kind.name(),
                c.line
            );
        }
    }
    if !p.notifies.is_empty() {
        o.push_str(
            "
notify
",
        );
        for n in &p.notifies {
            let when = match n.trigger {
                NotifyTrigger::Becomes(g) => format!("becomes {}", p.grades[g.index()].name),
                NotifyTrigger::Leaves(g) => format!("leaves {}", p.grades[g.index()].name),
                NotifyTrigger::Changes => "changes".into(),
                NotifyTrigger::OwnerChanges => "owner changes".into(),
                NotifyTrigger::FollowupOverdue => "followup overdue".into(),
                NotifyTrigger::TaskDue => "task due".into(),
                NotifyTrigger::Crosses { score, threshold } => format!(
                    "{} crosses {threshold}",
                    score.map_or("score", |s| p.scores[s.index()].name.as_str())
                ),
            };
            let _ = writeln!(
                o,
                "  {} when {when}{} (line {})",
                p.channels[n.channel as usize].name,
                if n.once { " once" } else { "" },
                n.line
            );
        }
    }
    o
}

/// `assign`, `recycle` and the tags of an overdue follow-up.
fn desk(o: &mut String, p: &Program) {
    if !p.assigns.is_empty() {
        o.push_str("\nassign\n");
        for a in &p.assigns {
            let grades: Vec<&str> = a
                .grades
                .iter()
                .map(|g| p.grades[g.index()].name.as_str())
                .collect();
            let to = match &a.to {
                AssignTo::Pool => "pool".to_string(),
                AssignTo::CompanyOwner => "company owner".to_string(),
                AssignTo::Team { name, how } => match how {
                    AssignHow::InOrder => format!("team {name} in order"),
                    AssignHow::RoundRobin => format!("team {name} round robin"),
                    AssignHow::By(f) => format!("team {name} by {f}"),
                },
            };
            let within = a.within.map_or(String::new(), |s| format!(" within {s}s"));
            let plan = a.plan.map_or(String::new(), |i| {
                format!(" plan {}", p.plans[i as usize].name)
            });
            let _ = writeln!(
                o,
                "  grades [{}] to {to}{within}{plan} (line {})",
                grades.join(", "),
                a.line
            );
            if let Some(c) = a.cond {
                code(o, p, c, "    ");
            }
        }
    }
    for plan in &p.plans {
        let steps: Vec<String> = plan
            .steps
            .iter()
            .map(|(k, s)| format!("{k} at {s}s"))
            .collect();
        let _ = writeln!(
            o,
            "\nplan {} = [{}] (line {})",
            plan.name,
            steps.join(", "),
            plan.line
        );
    }
    if let Some(r) = p.recycle {
        let _ = writeln!(o, "\nrecycle after {r}s without followup");
    }
    for t in &p.overdue_tags {
        let _ = writeln!(
            o,
            "\ntag {} when followup overdue (line {})",
            t.name, t.line
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn rule_header(
    o: &mut String,
    p: &Program,
    id: RuleId,
    rule: RuleIndex,
    score: ScoreId,
    pts: &Points,
    extra: &str,
    indent: &str,
) {
    let info = &p.rules[rule.index()];
    let sign = if pts.negative { "-" } else { "+" };
    let amount = match pts.amount {
        Amount::Const(n) => n.to_string(),
        Amount::Attr(f) => format!("attr {}", p.fields[f.index()]),
        Amount::Prop(f) => format!("prop {}", p.fields[f.index()]),
    };
    let max = pts.max.map_or(String::new(), |m| format!(" max {m}"));
    let _ = writeln!(
        o,
        "{indent}rule {:08x} line {}: {} {sign}{amount}{max}{extra}",
        id.0,
        info.line,
        p.scores[score.index()].name
    );
    let _ = writeln!(o, "{indent}  ; {}", info.text);
}

fn code(o: &mut String, p: &Program, start: CodeRef, indent: &str) {
    let mut pc = start.index();
    while let Some(op) = p.code.get(pc) {
        let _ = writeln!(o, "{indent}{pc:04}  {}", op_text(p, *op, pc));
        if *op == Op::Return {
            break;
        }
        pc += 1;
    }
}

fn set_name(p: &Program, s: SetId) -> String {
    let set = &p.sets[s.index()];
    match &set.name {
        Some(n) => n.clone(),
        None => format!("set{}", s.0),
    }
}

fn op_text(p: &Program, op: Op, pc: usize) -> String {
    let s = |id: StrId| format!("{:?}", p.strings[id.index()]);
    match op {
        Op::Attr(f) => format!("attr      {}", p.fields[f.index()]),
        Op::Prop(f) => format!("prop      {}", p.fields[f.index()]),
        Op::Num(n) => format!("num       {}", p.numbers[n.index()]),
        Op::Str(id) => format!("str       {}", s(id)),
        Op::Bool(b) => format!("bool      {b}"),
        Op::Score(id) => format!("score     {}", p.scores[id.index()].name),
        Op::Total => "total".into(),
        Op::Call(f) => format!("call      {}", f.name()),
        Op::Add => "add".into(),
        Op::Sub => "sub".into(),
        Op::Cmp(c) => format!("cmp       {}", c.symbol()),
        Op::In(id) => format!("in        {}", set_name(p, id)),
        Op::NotIn(id) => format!("not_in    {}", set_name(p, id)),
        Op::Contains(id) => format!("contains  {}", s(id)),
        Op::ContainsWord(id) => format!("contains_word {}", s(id)),
        Op::ContainsAny(id) => format!("contains_any {}", set_name(p, id)),
        Op::ContainsAnyWord(id) => format!("contains_any_word {}", set_name(p, id)),
        Op::IsSet => "is_set".into(),
        Op::IsNotSet => "is_not_set".into(),
        Op::Not => "not".into(),
        Op::GradeIs(g) => format!("grade_is  {}", p.grades[g.index()].name),
        Op::Inactive(secs) => format!("inactive  {}", duration(secs)),
        Op::JumpIfFalse(n) => format!("jump_if_false -> {:04}", pc + 1 + n as usize),
        Op::JumpIfTrue(n) => format!("jump_if_true -> {:04}", pc + 1 + n as usize),
        Op::Return => "return".into(),
    }
}

/// `2592000` -> `30d`; the largest unit that divides evenly.
pub fn duration(secs: u32) -> String {
    for (unit, n) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
}
