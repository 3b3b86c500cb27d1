//! The sales desk (docs/desk.md): who owns a lead, its follow-up deadline, recycling.
//!
//! The rules say how leads are routed (`assign`, `recycle`); the configuration says who
//! the people are ([`Roster`]). A write of a lead runs the desk in two phases, both inside
//! the lead's transaction:
//!
//! 1. [`follow`] — what needs no other lead: follow-ups among the new events, a deadline
//!    passing (`followup overdue`), a won or lost lead closing. It says whether phase 2 is
//!    needed: the grade moved, the lead is due to be recycled, or it closed.
//! 2. [`route`] — the assignment itself, against the desk's shared record (each team's
//!    round-robin turn, each owner's active leads), which the service reads under its desk
//!    lock and commits with the lead, conditionally on the record's version: two writers
//!    (threads, processes, Lambda instances) never take the same turn, and a crash between
//!    reading and committing leaves both the lead and the record as they were.
//!
//! The desk state is kept with the lead ([`Desk`]), never rebuilt from its events: who owns
//! a lead depends on the other leads and the order they came in.

use super::config::Config;
use super::Incoming;
use leadscore_runtime::bytecode::{AssignHow, AssignTo, Program};
use leadscore_runtime::engine::Engine;
use leadscore_runtime::state::{Desk, LeadState, OwnerChange, Task};
use leadscore_runtime::text::fold;
use leadscore_runtime::time::Micros;
use leadscore_store::DeskRecord;
use std::collections::BTreeMap;

/// The people of the desk, from the configuration: teams, regions, limits.
#[derive(Clone, Debug, Default)]
pub struct Roster {
    /// Members by team, in the configuration's order (e-mails, lower-cased).
    pub teams: BTreeMap<String, Vec<String>>,
    /// Each owner's regions, folded.
    pub regions: BTreeMap<String, Vec<String>>,
    /// 0: no limit.
    pub max_active: u64,
    /// Folded event types.
    pub followups: Vec<String>,
    pub closed: Vec<String>,
}

impl Roster {
    pub fn from_config(c: &Config) -> Roster {
        let email = |e: &String| e.trim().to_lowercase();
        Roster {
            teams: c
                .teams
                .iter()
                .map(|(t, m)| (t.clone(), m.iter().map(email).collect()))
                .collect(),
            regions: c
                .owners
                .iter()
                .map(|(o, r)| (email(o), r.regions.iter().map(|x| fold(x.trim())).collect()))
                .collect(),
            max_active: c.desk.max_active_per_owner,
            followups: c.desk.followup_events.iter().map(|t| fold(t)).collect(),
            closed: c.desk.closed_events.iter().map(|t| fold(t)).collect(),
        }
    }

    /// Every team the rules assign to exists and has members; `by FIELD` teams have
    /// members with regions.
    pub fn check(&self, p: &Program) -> Result<(), String> {
        for a in &p.assigns {
            let AssignTo::Team { name, how } = &a.to else {
                continue;
            };
            let line = a.line;
            let Some(members) = self.teams.get(name) else {
                let known: Vec<&str> = self.teams.keys().map(String::as_str).collect();
                return Err(format!(
                    "line {line}: `assign` names team `{name}`, which the configuration's [teams] does not define (it has: {})",
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
            };
            if members.is_empty() {
                return Err(format!("line {line}: team `{name}` has no members"));
            }
            if matches!(how, AssignHow::By(_))
                && !members.iter().any(|m| self.regions.contains_key(m))
            {
                return Err(format!(
                    "line {line}: `assign … by` needs regions for team `{name}`'s members ([owners.\"EMAIL\"] regions = [...])"
                ));
            }
        }
        Ok(())
    }
}

/// What the desk did in one write: the owner changes and a deadline that passed, for the
/// lead's view and its notifications.
#[derive(Clone, Debug, Default)]
pub(super) struct News {
    pub changes: Vec<OwnerChange>,
    /// The deadline that passed unmet in this write (`followup overdue`).
    pub overdue: Option<Micros>,
    /// Plan steps that came due in this write (`task due`): kind and due instant.
    pub tasks_due: Vec<(String, Micros)>,
}

/// Why phase 2 runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Route {
    /// The grade moved (or the lead is new to the desk).
    Grade,
    /// No follow-up within `recycle after`.
    Recycle,
    /// Won or lost: released from its owner's count.
    Close,
}

/// Phase 1: follow-ups, deadlines and closing, on the lead alone. Returns what phase 2
/// must do, if anything.
pub(super) fn follow(
    p: &Program,
    roster: &Roster,
    state: &mut LeadState,
    fresh: &[&Incoming],
    now: Micros,
    news: &mut News,
) -> Option<Route> {
    if p.assigns.is_empty() && state.desk.is_none() {
        return None;
    }
    let desk = state.desk.get_or_insert_with(Default::default);
    for inc in fresh {
        let e = &inc.event;
        if roster.closed.contains(&e.event_type) {
            desk.closed = true;
        }
        if roster.followups.contains(&e.event_type) && desk.assigned_at.is_none_or(|a| e.at >= a) {
            if let Some(t) = desk
                .tasks
                .iter_mut()
                .find(|t| t.done_at.is_none() && t.met_by(&e.event_type))
            {
                t.done_at = Some(e.at);
            }
            if desk.followup_at.is_none_or(|f| e.at >= f) {
                desk.followup_at = Some(e.at);
                desk.followup_by = inc.json["props"]["owner"]
                    .as_str()
                    .map(|o| o.trim().to_lowercase())
                    .or_else(|| desk.owner.clone());
            }
            desk.overdue_at = None;
        }
    }
    if desk.overdue_at.is_none() && desk.overdue(now) {
        desk.overdue_at = desk.deadline;
        news.overdue = desk.deadline;
    }
    if !desk.closed && desk.owner.is_some() {
        for t in desk.tasks.iter_mut() {
            if t.done_at.is_none() && !t.notified && t.due <= now {
                t.notified = true;
                news.tasks_due.push((t.kind.clone(), t.due));
            }
        }
    }
    if p.assigns.is_empty() {
        return None;
    }
    if desk.closed {
        return desk.active.then_some(Route::Close);
    }
    if desk.grade != state.grade_name {
        return Some(Route::Grade);
    }
    recycle_due(p, desk, now).then_some(Route::Recycle)
}

/// When the lead is to be recycled, if it is.
pub(super) fn recycle_at(p: &Program, desk: &Desk) -> Option<Micros> {
    let r = p.recycle?;
    if desk.owner.is_none() || desk.closed || desk.met() {
        return None;
    }
    Some(desk.assigned_at? + i64::from(r) * 1_000_000)
}

fn recycle_due(p: &Program, desk: &Desk, now: Micros) -> bool {
    recycle_at(p, desk).is_some_and(|t| t <= now)
}

/// When the desk next changes the lead by time alone: its deadline passing, or its
/// recycling.
pub(super) fn next_change(p: &Program, state: &LeadState, now: Micros) -> Option<Micros> {
    let desk = state.desk.as_deref()?;
    let deadline = desk
        .open_deadline()
        .filter(|_| desk.overdue_at.is_none())
        .map(|d| d.max(now));
    let recycle = recycle_at(p, desk).map(|t| t.max(now));
    let tasks = desk
        .open_tasks()
        .filter(|t| !t.notified && !desk.closed && desk.owner.is_some())
        .map(|t| t.due.max(now));
    deadline.into_iter().chain(recycle).chain(tasks).min()
}

/// Phase 2: assigns (or releases) the lead against the desk's record. `cause` names the
/// change as recorded (`grade`, `rescore`; a recycling is `recycle`).
/// What phase 2 decides with: the people, the shared record, and the owner of the lead's
/// company's other leads (for `assign … to company owner`).
pub(super) struct Desked<'a> {
    pub roster: &'a Roster,
    pub record: &'a mut DeskRecord,
    pub company_owner: Option<String>,
}

pub(super) fn route(
    engine: &Engine,
    d: Desked,
    state: &mut LeadState,
    route: Route,
    cause: &str,
    now: Micros,
    news: &mut News,
) {
    let Desked {
        roster,
        record,
        company_owner,
    } = d;
    let p = engine.program();
    let grade = state.grade;
    let lines = match grade {
        Some(g) if matches!(route, Route::Grade | Route::Recycle) => {
            engine.assign_lines(state, leadscore_runtime::bytecode::GradeId(g), now)
        }
        _ => Vec::new(),
    };
    let attribute = |name: &str| {
        state.attributes.get(name).and_then(|v| match v {
            serde_json::Value::String(s) => Some(fold(s.trim())),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let values: Vec<Option<String>> = lines
        .iter()
        .map(|&i| match &p.assigns[i].to {
            AssignTo::Team {
                how: AssignHow::By(f),
                ..
            } => attribute(f),
            _ => None,
        })
        .collect();
    let grade_name = state.grade_name.clone();
    let desk = state.desk.get_or_insert_with(Default::default);
    desk.grade = grade_name;
    match route {
        Route::Close => {
            release(desk, record);
            // The plan stops.
            desk.tasks.clear();
            return;
        }
        Route::Grade => {
            // A lead keeps its owner while its grade stays in the same `assign`.
            let same = lines.first().map(|&i| &p.assigns[i].text) == desk.rule.as_ref();
            if same && (desk.owner.is_some() || desk.pool) {
                return;
            }
        }
        Route::Recycle => {}
    }
    let previous = desk.owner.clone();
    let exclude = (route == Route::Recycle)
        .then(|| previous.clone())
        .flatten();
    if route == Route::Recycle {
        // Back to the pool first.
        release(desk, record);
        desk.owner = None;
        desk.pool = true;
        desk.deadline = None;
        desk.tasks.clear();
        desk.record(change(now, previous.clone(), None, "recycle", None));
        news.changes.extend(desk.changes.last().cloned());
    }
    let picked = lines.iter().zip(&values).find_map(|(&i, value)| {
        let a = &p.assigns[i];
        match &a.to {
            AssignTo::Pool => Some((i, None)),
            AssignTo::CompanyOwner => company_owner
                .as_ref()
                .filter(|o| Some(o.as_str()) != exclude.as_deref())
                .filter(|o| {
                    roster.max_active == 0
                        || record.active.get(*o).copied().unwrap_or(0) < roster.max_active
                })
                .map(|o| (i, Some((String::new(), o.clone())))),
            AssignTo::Team { name, how } => pick(
                roster,
                record,
                name,
                how,
                value.as_deref(),
                exclude.as_deref(),
            )
            .map(|m| (i, Some((name.clone(), m)))),
        }
    });
    let Some((i, to)) = picked else {
        // Nobody to take it: the pool.
        desk.tasks.clear();
        if desk.owner.is_some() {
            release(desk, record);
            let from = desk.owner.take();
            desk.pool = true;
            desk.deadline = None;
            desk.rule = None;
            desk.record(change(now, from, None, cause, None));
            news.changes.extend(desk.changes.last().cloned());
        } else {
            desk.pool = true;
            desk.rule = None;
        }
        return;
    };
    let a = &p.assigns[i];
    let (team, owner) = match to {
        Some((team, m)) => ((!team.is_empty()).then_some(team), Some(m)),
        None => (None, None),
    };
    let cause = if route == Route::Recycle {
        "recycle"
    } else {
        cause
    };
    let from = if route == Route::Recycle {
        None
    } else {
        desk.owner.clone()
    };
    if owner.is_some() && owner == desk.owner && desk.active {
        // Reassigned to the owner it has: a new deadline, no change of owner.
        desk.rule = Some(a.text.clone());
        desk.team = team;
        return;
    }
    release(desk, record);
    if let (Some(o), Some(t)) = (&owner, &team) {
        if matches!(
            &a.to,
            AssignTo::Team {
                how: AssignHow::RoundRobin | AssignHow::By(_),
                ..
            }
        ) {
            let members = &roster.teams[t];
            let at = members.iter().position(|m| m == o).unwrap_or(0) as u64;
            record.turns.insert(t.clone(), at + 1);
        }
    }
    if let Some(o) = &owner {
        *record.active.entry(o.clone()).or_default() += 1;
    }
    desk.active = owner.is_some();
    desk.pool = owner.is_none();
    desk.owner = owner.clone();
    desk.team = team;
    desk.rule = Some(a.text.clone());
    desk.assigned_at = Some(now);
    desk.deadline = owner
        .as_ref()
        .and(a.within)
        .map(|s| now + i64::from(s) * 1_000_000);
    desk.overdue_at = None;
    desk.tasks = match (a.plan, &owner) {
        (Some(i), Some(_)) => p.plans[i as usize]
            .steps
            .iter()
            .map(|(kind, s)| Task {
                kind: kind.clone(),
                due: now + i64::from(*s) * 1_000_000,
                done_at: None,
                notified: false,
            })
            .collect(),
        _ => Vec::new(),
    };
    if from != owner || route == Route::Recycle {
        desk.record(change(now, from, owner, cause, Some(a)));
        news.changes.extend(desk.changes.last().cloned());
    }
}

/// The lead stops counting against its owner.
fn release(desk: &mut Desk, record: &mut DeskRecord) {
    if !desk.active {
        return;
    }
    desk.active = false;
    if let Some(o) = &desk.owner {
        if let Some(n) = record.active.get_mut(o) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                record.active.remove(o);
            }
        }
    }
}

/// The member of `team` the lead goes to, if one has room.
fn pick(
    roster: &Roster,
    record: &DeskRecord,
    team: &str,
    how: &AssignHow,
    value: Option<&str>,
    exclude: Option<&str>,
) -> Option<String> {
    let members = roster.teams.get(team)?;
    let room = |m: &String| {
        roster.max_active == 0 || record.active.get(m).copied().unwrap_or(0) < roster.max_active
    };
    let fits = |m: &String| match how {
        AssignHow::By(_) => value.is_some_and(|v| {
            roster
                .regions
                .get(m)
                .is_some_and(|r| r.iter().any(|x| x == v))
        }),
        _ => true,
    };
    let candidates = |skip: Option<&str>| {
        let n = members.len();
        let start = match how {
            AssignHow::InOrder => 0,
            _ => record.turns.get(team).copied().unwrap_or(0) as usize % n,
        };
        (0..n)
            .map(|k| &members[(start + k) % n])
            .find(|m| room(m) && fits(m) && Some(m.as_str()) != skip)
            .cloned()
    };
    // A recycled lead goes to someone else when anyone else has room.
    candidates(exclude).or_else(|| exclude.and_then(|_| candidates(None)))
}

fn change(
    at: Micros,
    from: Option<String>,
    to: Option<String>,
    cause: &str,
    rule: Option<&leadscore_runtime::bytecode::AssignDef>,
) -> OwnerChange {
    OwnerChange {
        at,
        from_owner: from,
        to_owner: to,
        cause: cause.to_string(),
        line: rule.map(|a| a.line),
        rule: rule.map(|a| a.text.clone()),
    }
}

/// The overdue tags the lead has at `now`.
pub(super) fn tags(p: &Program, state: &LeadState, now: Micros) -> Vec<String> {
    match state.desk.as_deref() {
        Some(d) if d.overdue(now) => p.overdue_tags.iter().map(|t| t.name.clone()).collect(),
        _ => Vec::new(),
    }
}

/// Whether phase 2 may read or move the desk record: a team (or a company owner) may take
/// the lead, or it counts against an owner now. A lead only ever going to the pool needs
/// neither the record nor the desk lock (most C leads, every lead of a roster with no
/// teams).
pub(super) fn touches_record(
    engine: &Engine,
    roster: &Roster,
    state: &LeadState,
    route: Route,
    now: Micros,
) -> bool {
    let active = state.desk.as_ref().is_some_and(|d| d.active);
    match (route, state.grade) {
        (Route::Close, _) => active,
        (_, _) if active => true,
        (_, None) => false,
        (_, Some(g)) => {
            let p = engine.program();
            engine
                .assign_lines(state, leadscore_runtime::bytecode::GradeId(g), now)
                .iter()
                .any(|&i| match &p.assigns[i].to {
                    AssignTo::Pool => false,
                    AssignTo::CompanyOwner => true,
                    AssignTo::Team { name, .. } => roster.teams.contains_key(name),
                })
        }
    }
}

/// Whether phase 2 may assign the lead to its company's owner.
pub(super) fn wants_company(p: &Program) -> bool {
    p.assigns.iter().any(|a| a.to == AssignTo::CompanyOwner)
}

/// Free-mail domains when the rules declare no `set free_mail`: a company is never one.
const FREE_MAIL: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "proton.me",
    "protonmail.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "mail.ru",
    "yandex.ru",
    "qq.com",
    "foxmail.com",
    "163.com",
    "126.com",
    "yeah.net",
    "sina.com",
    "sohu.com",
    "aliyun.com",
];

/// A lead's company (docs/desk.md): the registrable domain of its key when the key is an
/// e-mail address, else of its `email` attribute — unless the domain is free mail (the
/// rules' `set free_mail` when declared, else a built-in list).
pub(super) fn company(p: &Program, state: &LeadState) -> Option<String> {
    let address = if state.key.contains('@') {
        state.key.clone()
    } else {
        state
            .attributes
            .get("email")?
            .as_str()?
            .trim()
            .to_lowercase()
    };
    let (_, host) = address.rsplit_once('@')?;
    if host.is_empty() || !host.contains('.') {
        return None;
    }
    let domain = leadscore_runtime::text::domain(host).to_lowercase();
    let free = match p
        .sets
        .iter()
        .find(|s| s.name.as_deref() == Some("free_mail"))
    {
        Some(set) => set.items.contains(&domain),
        None => FREE_MAIL.contains(&domain.as_str()),
    };
    (!free).then_some(domain)
}

/// What makes a lead likely the same person as another: its phone or mobile
/// (`phone:DIGITS`), its WhatsApp (`whatsapp:DIGITS`), and its name at its company
/// (`name:NAME@COMPANY`), sorted.
pub(super) fn marks(_p: &Program, state: &LeadState, company: Option<&str>) -> Vec<String> {
    let text = |k: &str| {
        state.attributes.get(k).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let digits = |s: String| -> Option<String> {
        let d: String = s.chars().filter(char::is_ascii_digit).collect();
        (d.len() >= 7).then_some(d)
    };
    let mut out = Vec::new();
    for k in ["phone", "mobile"] {
        if let Some(d) = text(k).and_then(digits) {
            out.push(format!("phone:{d}"));
        }
    }
    if let Some(d) = text("whatsapp").and_then(digits) {
        out.push(format!("whatsapp:{d}"));
    }
    let name = text("name").or_else(|| {
        let parts: Vec<String> = ["first_name", "last_name"]
            .iter()
            .filter_map(|k| text(k))
            .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    });
    if let (Some(n), Some(c)) = (name, company) {
        let n = fold(&n).split_whitespace().collect::<Vec<_>>().join(" ");
        if !n.is_empty() {
            out.push(format!("name:{n}@{c}"));
        }
    }
    out.sort();
    out.dedup();
    out
}
