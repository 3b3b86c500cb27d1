//! Reads: one lead (with its explanation and transitions), its export, the listing.

use super::*;

impl Service {
    /// `GET /leads/{lead}`: scores, grade and tags at now, the explanation, the recorded
    /// transitions, the attributes. A lead stored by another program is shown as this
    /// program scores it (it is stored so when next touched).
    pub async fn lead(&self, lead: &str) -> Result<LeadView, ServiceError> {
        let found = self.store.load(lead, &[]).await?;
        if let Some(p) = found.merged_into {
            if p.pending {
                self.finish_merge(lead, &p.lead).await?;
            }
            return Ok(LeadView::Merged(self.resolve(&p.lead).await?));
        }
        let Some(loaded) = found.lead else {
            return Ok(LeadView::Missing);
        };
        let now = self.now();
        let mut state = loaded.state;
        let shadow_state = state.shadow.take().map(|b| *b);
        let rules = self.rules_for(lead);
        let (live, state) = self.view_as(&rules, lead, state, now).await?;
        let shadow = match (self.shadow_rules(), shadow_state) {
            (Some(rules), s) => Some(
                self.view_as(&rules, lead, s.unwrap_or(state.clone()), now)
                    .await?
                    .0,
            ),
            (None, _) => None,
        };
        let transitions = self
            .store
            .transitions(lead)
            .await?
            .into_iter()
            .map(|t| t.view)
            .collect();
        let arm = self.arm(lead).map(|a| a.name());
        let mut detail = LeadDetail::new(live, &state, transitions, shadow, arm);
        detail
            .tags
            .extend(super::desk::tags(&rules.program, &state, now));
        detail.desk = state
            .desk
            .as_deref()
            .map(|d| leadscore_runtime::view::DeskView::new(d, now));
        Ok(LeadView::Found(Box::new(detail)))
    }

    /// The lead as `rules` score it at `now`, and the state that view is of: `state` when
    /// those rules made it and nothing stored has come due, else rebuilt from the lead's
    /// stored events.
    async fn view_as(
        &self,
        rules: &Rules,
        lead: &str,
        mut state: LeadState,
        now: Micros,
    ) -> Result<(Explained, LeadState), ServiceError> {
        let mut engine = Engine::with_hash(&rules.program, rules.hash.clone());
        if !engine.is_current(&state) || engine.pending_due(&state, now) {
            let history = self.history_events(lead, true).await?;
            let desk = state.desk.take();
            state = engine
                .rebuild(lead, &history, now, &mut Vec::new())
                .map_err(ServiceError::engine(lead))?;
            state.desk = desk;
        }
        engine.attach(&mut state);
        Ok((explained(rules, &mut engine, &state, now), state))
    }

    /// Everything stored about a lead (data rights: export): the lead as
    /// [`Service::lead`] shows it and every stored event as it was sent.
    /// A merged key's lead is the one it was merged into.
    pub async fn export(&self, lead: &str) -> Result<Option<Exported>, ServiceError> {
        let lead = self.resolve(lead).await?;
        let LeadView::Found(view) = self.lead(&lead).await? else {
            return Ok(None);
        };
        let events: Vec<Json> = self
            .store
            .history(&lead)
            .await?
            .into_iter()
            .map(|e| e.json)
            .collect();
        let (mut visitors, mut merged) = (Vec::new(), Vec::new());
        for j in self.store.joined(&lead).await? {
            match j {
                Joined::Visitor(v) => visitors.push(v),
                Joined::Lead(b) => merged.push(b),
            }
        }
        Ok(Some(Exported {
            events,
            lead: *view,
            merged,
            visitors,
        }))
    }

    pub async fn list(&self, query: &ListQuery) -> Result<Vec<Listed>, ServiceError> {
        Ok(self.store.list(query).await?)
    }
}

/// A work queue (`GET /leads`, `GET /views/{name}`, `leadscore queue`): the store's
/// filters, and `rising` (the score rose by at least `points` over the last `window`),
/// which reads each candidate's score history.
#[derive(Clone, Debug, Default)]
pub struct Queue {
    pub list: ListQuery,
    /// (points, window in microseconds).
    pub rising: Option<(i64, Micros)>,
}

/// One page of a work queue, and where the next one starts (`None`: the last page).
#[derive(Clone, Debug, Default)]
pub struct QueuePage {
    pub rows: Vec<Listed>,
    pub next: Option<(i64, String)>,
}

/// The most leads one page of a `rising` queue reads the history of: a page that finds
/// fewer than it asked for within them ends early, its `next` where the reading stopped.
pub const RISING_BUDGET: usize = 2_000;

impl Service {
    /// One page of a work queue, in its order after its cursor.
    pub async fn queue(&self, q: &Queue) -> Result<Vec<Listed>, ServiceError> {
        Ok(self.queue_page(q).await?.rows)
    }

    /// One page of a work queue with the cursor of the next.
    pub async fn queue_page(&self, q: &Queue) -> Result<QueuePage, ServiceError> {
        let next_of = |rows: &[Listed], sort: leadscore_store::Sort| {
            rows.last()
                .map(|last| (sort.key(&last.summary), last.lead.clone()))
        };
        let Some((points, window)) = q.rising else {
            let rows = self.list(&q.list).await?;
            let next = (rows.len() == q.list.limit)
                .then(|| next_of(&rows, q.list.sort))
                .flatten();
            return Ok(QueuePage { rows, next });
        };
        let now = self.now();
        let mut page = q.list.clone();
        let mut out = Vec::new();
        let mut read = 0;
        // Candidates a page at a time until the page is full, the listing ends, or the
        // budget of histories read is spent.
        page.limit = q.list.limit.clamp(1, 500);
        loop {
            let rows = self.store.list(&page).await?;
            let full = rows.len() == page.limit;
            for (i, row) in rows.iter().enumerate() {
                read += 1;
                if self
                    .rose(&row.lead, row.summary.score, now - window)
                    .await?
                    >= points
                {
                    out.push(row.clone());
                }
                if out.len() == q.list.limit || read >= RISING_BUDGET {
                    let more = i + 1 < rows.len() || full;
                    return Ok(QueuePage {
                        next: more.then(|| next_of(&rows[..=i], page.sort)).flatten(),
                        rows: out,
                    });
                }
            }
            match next_of(&rows, page.sort) {
                Some(after) if full => page.after = Some(after),
                _ => {
                    return Ok(QueuePage {
                        rows: out,
                        next: None,
                    })
                }
            }
        }
    }

    /// How much the lead's score rose since `since`: its score now less the score in
    /// force at `since` (0 for a lead that had none yet).
    async fn rose(&self, lead: &str, score: i64, since: Micros) -> Result<i64, ServiceError> {
        let points = self.store.score_history(lead, since).await?;
        let then = points
            .first()
            .filter(|p| p.at < since)
            .map_or(0, |p| p.score);
        Ok(score - then)
    }

    /// `GET /leads/{lead}/history`: the lead's score history from `since` (the point in
    /// force at `since` first). `None` when nothing is stored under the key; a merged
    /// key's lead is the one it joined.
    pub async fn score_history(
        &self,
        lead: &str,
        since: Micros,
    ) -> Result<Option<(String, Vec<leadscore_store::HistoryPoint>)>, ServiceError> {
        let lead = self.resolve(lead).await?;
        if self.store.load(&lead, &[]).await?.lead.is_none() {
            return Ok(None);
        }
        let points = self.store.score_history(&lead, since).await?;
        Ok(Some((lead, points)))
    }
}

impl Queue {
    /// A work queue from `GET /leads` parameters (docs/desk.md): `owner` (`me`: the
    /// reader, `reader`), `grade`, `tag`, `pool`, `created_since` and `updated_since` (a
    /// duration back from `now`, or an RFC 3339 instant), `overdue`, `rising=POINTS:D`,
    /// `sort=score|updated|deadline`. Paging (`limit`, `after`) is the caller's. Unknown
    /// parameters are refused, with their name.
    pub fn parse(
        pairs: &[(String, String)],
        reader: Option<&str>,
        now: Micros,
    ) -> Result<Queue, String> {
        let mut q = Queue::default();
        let since = |name: &str, v: &str| -> Result<Micros, String> {
            since(v, now).ok_or_else(|| {
                format!(
                    "{name}: `{v}` is not a duration like `7d`, `week`, `month` or an RFC 3339 instant"
                )
            })
        };
        let flag = |name: &str, v: &str| match v {
            "true" | "1" | "" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{name}: expected true or false, found `{v}`")),
        };
        for (k, v) in pairs {
            match k.as_str() {
                "owner" => q.list.owner = Some(match v.as_str() {
                    "me" => reader
                        .ok_or(
                            "owner=me needs a reader's own token ([readers] in the configuration)",
                        )?
                        .to_string(),
                    o => o.trim().to_lowercase(),
                }),
                "grade" => q.list.grade = Some(v.clone()),
                "company" => q.list.company = Some(v.trim().to_lowercase()),
                "tag" => q.list.tag = Some(v.clone()),
                "pool" => q.list.pool = flag(k, v)?,
                "created_since" => q.list.created_since = Some(since(k, v)?),
                "updated_since" => q.list.updated_since = Some(since(k, v)?),
                "overdue" => q.list.overdue_at = flag(k, v)?.then_some(now),
                "no_followup_since" => q.list.no_followup_since = Some(since(k, v)?),
                // Never followed up: no follow-up at any instant.
                "followed_up" => {
                    if flag(k, v)? {
                        return Err(
                            "followed_up: only `false` is a filter (leads never followed up)"
                                .into(),
                        );
                    }
                    q.list.no_followup_since = Some(Micros::MIN);
                }
                "rising" => {
                    let (points, window) = v
                        .split_once(':')
                        .and_then(|(p, d)| Some((p.parse::<i64>().ok()?, time::parse_duration(d)?)))
                        .ok_or_else(|| {
                            format!("rising: expected POINTS:DURATION like `20:7d`, found `{v}`")
                        })?;
                    q.rising = Some((points, window));
                }
                "sort" => {
                    q.list.sort = match v.as_str() {
                        "score" => leadscore_store::Sort::Score,
                        "updated" => leadscore_store::Sort::Updated,
                        "deadline" => leadscore_store::Sort::Deadline,
                        _ => {
                            return Err(format!(
                                "sort: expected score, updated or deadline, found `{v}`"
                            ))
                        }
                    }
                }
                "limit" | "after" => {}
                _ => return Err(format!("unknown parameter `{k}`")),
            }
        }
        Ok(q)
    }

    /// The parameters of a query string.
    pub fn pairs(query: &str) -> Result<Vec<(String, String)>, String> {
        serde_urlencoded::from_str(query).map_err(|e| format!("the query string: {e}"))
    }
}

/// An instant a queue counts from: a duration back from `now` (`7d`), the start of this
/// ISO week (`week`, Monday 00:00 UTC) or month (`month`), or an RFC 3339 instant.
pub fn since(v: &str, now: Micros) -> Option<Micros> {
    use chrono::{Datelike, TimeZone, Utc};
    let today = chrono::DateTime::<Utc>::from_timestamp_micros(now)?.date_naive();
    let midnight = |d: chrono::NaiveDate| {
        Some(
            Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
                .timestamp_micros(),
        )
    };
    match v.trim() {
        "week" => {
            midnight(today - chrono::Days::new(u64::from(today.weekday().num_days_from_monday())))
        }
        "month" => midnight(today.with_day(1)?),
        v => time::parse(v).or_else(|| time::parse_duration(v).map(|d| now - d)),
    }
}

/// `GET /companies/{domain}`: a company's leads with their owners, its best grade and the
/// sum of its leads' scores.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Company {
    pub best_grade: Option<String>,
    pub domain: String,
    pub leads: Vec<CompanyLead>,
    pub owners: Vec<String>,
    pub total_score: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompanyLead {
    pub grade: Option<String>,
    pub lead: String,
    pub owner: Option<String>,
    pub score: i64,
}

/// `GET /duplicates`: two leads that are likely one person, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Duplicate {
    /// The pair, sorted: merge the second into the first with `POST /leads/{first}/merge`.
    pub leads: [String; 2],
    /// What they share: `phone`, `whatsapp`, `name` (the same name at the same company).
    pub reasons: Vec<String>,
}

impl Service {
    /// A company's leads (at most 1,000, by score).
    pub async fn company(&self, domain: &str) -> Result<Company, ServiceError> {
        let domain = domain.trim().to_lowercase();
        let rows = self
            .store
            .list(&ListQuery {
                company: Some(domain.clone()),
                limit: 1000,
                ..ListQuery::default()
            })
            .await?;
        let rules = self.rules();
        let rank = |g: &Option<String>| {
            g.as_ref()
                .and_then(|g| rules.program.grades.iter().position(|x| &x.name == g))
                .unwrap_or(usize::MAX)
        };
        let best_grade = rows
            .iter()
            .map(|r| &r.summary.grade)
            .min_by_key(|g| rank(g))
            .cloned()
            .flatten();
        let mut owners: Vec<String> = rows
            .iter()
            .filter_map(|r| r.summary.owner.clone())
            .collect();
        owners.sort();
        owners.dedup();
        Ok(Company {
            best_grade,
            total_score: rows.iter().map(|r| r.summary.score).sum(),
            leads: rows
                .into_iter()
                .map(|r| CompanyLead {
                    grade: r.summary.grade,
                    lead: r.lead,
                    owner: r.summary.owner,
                    score: r.summary.score,
                })
                .collect(),
            owners,
            domain,
        })
    }

    /// Likely duplicate pairs (at most `limit`): leads sharing a phone, a WhatsApp number,
    /// or a name at one company; most reasons first.
    pub async fn duplicates(&self, limit: usize) -> Result<Vec<Duplicate>, ServiceError> {
        let shared = self.store.shared_marks(1_000).await?;
        let mut pairs: std::collections::BTreeMap<(String, String), Vec<String>> =
            Default::default();
        for s in shared {
            let why = s.mark.split(':').next().unwrap_or("").to_string();
            // A mark many leads share says little about any two: at most 20 of them.
            let leads = &s.leads[..s.leads.len().min(20)];
            for (i, a) in leads.iter().enumerate() {
                for b in &leads[i + 1..] {
                    let reasons = pairs.entry((a.clone(), b.clone())).or_default();
                    if !reasons.contains(&why) {
                        reasons.push(why.clone());
                    }
                }
            }
        }
        let mut out: Vec<Duplicate> = pairs
            .into_iter()
            .map(|((a, b), mut reasons)| {
                reasons.sort();
                Duplicate {
                    leads: [a, b],
                    reasons,
                }
            })
            .collect();
        out.sort_by(|x, y| {
            y.reasons
                .len()
                .cmp(&x.reasons.len())
                .then(x.leads.cmp(&y.leads))
        });
        out.truncate(limit);
        Ok(out)
    }
}
