//! The console's pages. Everything shown comes from the service the JSON API calls; maud
//! escapes every value (lead keys and attributes are whatever senders sent).

use super::i18n::Lang;
use super::*;
use leadscore_runtime::time;
use leadscore_service::{LeadView, MergeError, Queue, Retried};
use leadscore_store::NoteStatus;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// What stays unescaped in a path segment or query value.
const KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub(crate) fn enc(s: &str) -> String {
    utf8_percent_encode(s, KEEP).to_string()
}

pub(crate) fn csrf_ok(s: &Session, given: &str) -> bool {
    !given.is_empty() && bool::from(s.csrf.as_bytes().ct_eq(given.as_bytes()))
}

pub(crate) fn refused(lang: Lang, why: &str) -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        page(
            lang,
            lang.t(why),
            None,
            "/app",
            html! { p.error role="alert" { (lang.t(why)) } },
        ),
    )
}

fn failed(lang: Lang, s: &Session, status: StatusCode, detail: &str) -> Response {
    html_response(
        status,
        page(
            lang,
            lang.t("title"),
            Some(s),
            "/app",
            html! { h1 { (status.as_u16()) } p.error role="alert" { (detail) } },
        ),
    )
}

/// A failed service or store call as a page: its status and reason.
fn failed_with(lang: Lang, s: &Session, e: impl Into<crate::ApiError>) -> Response {
    let e = e.into();
    failed(lang, s, e.status, &e.detail)
}

/// The signed-in session, or the answer that sends the visitor to sign in.
#[allow(clippy::result_large_err)]
fn signed_in(app: &App, headers: &HeaderMap, here: &str) -> Result<Session, Response> {
    session(app, headers).ok_or_else(|| to_login(here))
}

/// The path and query of the request (where sign-in comes back to).
fn here(uri: &axum::http::Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string())
}

/// An RFC 3339 instant as people read it: `2026-12-03 20:24` (UTC, to the minute).
fn when(at: Option<&str>) -> String {
    at.map(|s| s.replace('T', " ").chars().take(16).collect::<String>() + " UTC")
        .unwrap_or_default()
}

fn grade_badge(g: &str) -> Markup {
    html! { span.grade { (g) } }
}

// ---------------------------------------------------------------------------------
// The queue.

#[derive(Deserialize, Default)]
pub(crate) struct QueueParams {
    tab: Option<String>,
    grade: Option<String>,
    tag: Option<String>,
    owner: Option<String>,
    created_since: Option<String>,
    sort: Option<String>,
    after: Option<String>,
}

/// The built-in tabs; the configuration's `[views.NAME]` follow them.
fn presets(app: &App, s: &Session) -> Vec<(String, &'static str, String)> {
    let best = app
        .service
        .rules()
        .program
        .grades
        .first()
        .map(|g| g.name.clone())
        .unwrap_or_else(|| "A".into());
    let mut tabs = vec![("all".to_string(), "all", String::new())];
    if s.owner.is_some() {
        tabs.push(("mine".into(), "mine", "owner=me".into()));
    }
    tabs.push(("best".into(), "best", format!("grade={}", enc(&best))));
    tabs.push(("overdue".into(), "overdue", "overdue=true".into()));
    tabs.push(("rising".into(), "rising", "rising=10:7d".into()));
    tabs.push(("pool".into(), "pool", "pool=true".into()));
    tabs
}

#[utoipa::path(get, path = "/app", tag = "console", params(("tab" = Option<String>, Query), ("grade" = Option<String>, Query), ("tag" = Option<String>, Query), ("owner" = Option<String>, Query), ("created_since" = Option<String>, Query), ("sort" = Option<String>, Query), ("after" = Option<String>, Query)), responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads")))]
pub(crate) async fn queue(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    params: Result<Query<QueueParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = here(&uri);
    let s = match signed_in(&app, &headers, &here) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    let Query(p) = params.unwrap_or_default();
    let tab = p.tab.clone().unwrap_or_else(|| {
        if s.owner.is_some() {
            "mine".into()
        } else {
            "all".into()
        }
    });
    let presets = presets(&app, &s);
    let base = match presets.iter().find(|(n, _, _)| *n == tab) {
        Some((_, _, q)) => q.clone(),
        None => match tab
            .strip_prefix("view:")
            .and_then(|v| app.config.views.get(v))
        {
            Some(v) => v.query.clone(),
            None => String::new(),
        },
    };
    let mut pairs = match Queue::pairs(&base) {
        Ok(p) => p,
        Err(e) => return failed(lang, &s, StatusCode::BAD_REQUEST, &e),
    };
    pairs.retain(|(k, _)| k != "limit" && k != "after");
    let filters = [
        ("grade", &p.grade),
        ("tag", &p.tag),
        ("owner", &p.owner),
        ("created_since", &p.created_since),
        ("sort", &p.sort),
    ];
    for (k, v) in filters {
        if let Some(v) = v.as_ref().filter(|v| !v.trim().is_empty()) {
            pairs.retain(|(n, _)| n != k);
            pairs.push((k.to_string(), v.trim().to_string()));
        }
    }
    let now = app.service.now();
    let mut q = match Queue::parse(&pairs, s.owner.as_deref(), now) {
        Ok(q) => q,
        Err(e) => return failed(lang, &s, StatusCode::BAD_REQUEST, &e),
    };
    q.list.limit = 50;
    q.list.after = p.after.as_deref().and_then(|a| {
        let (k, lead) = a.split_once(':')?;
        Some((k.parse().ok()?, lead.to_string()))
    });
    let page_of = match app.service.queue_page(&q).await {
        Ok(r) => r,
        Err(e) => {
            return failed_with(lang, &s, e);
        }
    };
    let keep = |extra: &str| {
        let mut q = format!("/app?tab={}", enc(&tab));
        for (k, v) in filters {
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        q + extra
    };
    // A column's header sorts the queue by it (the other filters kept).
    let sorted_by = |by: &str| {
        let mut q = format!("/app?tab={}", enc(&tab));
        for (k, v) in filters {
            if k == "sort" {
                continue;
            }
            if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
                q.push_str(&format!("&{k}={}", enc(v)));
            }
        }
        format!("{q}&sort={by}")
    };
    let current_sort = p.sort.clone().unwrap_or_else(|| "score".into());
    let next = page_of
        .next
        .as_ref()
        .map(|(k, lead)| keep(&format!("&after={}", enc(&format!("{k}:{lead}")))));
    let views: Vec<(String, String)> = app
        .config
        .views
        .iter()
        .map(|(n, v)| (format!("view:{n}"), v.title.clone().unwrap_or(n.clone())))
        .collect();
    let body = html! {
        h1 { (lang.t("queue")) }
        nav.tabs aria-label=(lang.t("queue")) {
            @for (name, label, _) in &presets {
                a class=@if *name == tab { "on" } href={ "/app?tab=" (enc(name)) } { (lang.t(label)) }
            }
            @for (name, title) in &views {
                a class=@if *name == tab { "on" } href={ "/app?tab=" (enc(name)) } { (title) }
            }
        }
        form.filters method="get" action="/app" {
            input type="hidden" name="tab" value=(tab);
            label { (lang.t("grade")) input name="grade" size="6" value=(p.grade.clone().unwrap_or_default()); }
            label { (lang.t("tag")) input name="tag" size="10" value=(p.tag.clone().unwrap_or_default()); }
            label { (lang.t("owner")) input name="owner" size="16" value=(p.owner.clone().unwrap_or_default()); }
            label { (lang.t("created since")) input name="created_since" size="8" placeholder="7d" value=(p.created_since.clone().unwrap_or_default()); }
            label { (lang.t("sort"))
                select name="sort" {
                    @for (v, l) in [("score", "by score"), ("updated", "by updated"), ("deadline", "by deadline")] {
                        option value=(v) selected[p.sort.as_deref() == Some(v)] { (lang.t(l)) }
                    }
                }
            }
            button type="submit" { (lang.t("filter")) }
        }
        @if page_of.rows.is_empty() {
            p.muted { (lang.t("no leads")) }
        } @else {
            table #queue {
                thead { tr {
                    th scope="col" { (lang.t("lead")) }
                    th.num scope="col" aria-sort=(if current_sort == "score" { "descending" } else { "none" }) {
                        a href=(sorted_by("score")) { (lang.t("score")) }
                    }
                    th scope="col" { (lang.t("grade")) }
                    th scope="col" { (lang.t("owner")) }
                    th scope="col" aria-sort=(if current_sort == "deadline" { "ascending" } else { "none" }) {
                        a href=(sorted_by("deadline")) { (lang.t("deadline")) }
                    }
                    th.wide scope="col" { (lang.t("tags")) }
                } }
                tbody {
                    @for r in &page_of.rows {
                        @let sm = &r.summary;
                        tr {
                            td { a href={ "/app/leads/" (enc(&r.lead)) } { (r.lead) } }
                            td.num { (sm.score) }
                            td { (grade_badge(sm.grade.as_deref().unwrap_or(""))) }
                            td { (sm.owner.as_deref().unwrap_or(if sm.pool { lang.t("pool") } else { "" })) }
                            td class=@if sm.overdue { "overdue" } {
                                (when(sm.deadline.map(time::format).as_deref()))
                                @if sm.overdue { " · " (lang.t("overdue")) }
                            }
                            td.wide { @for t in &sm.tags { span.tag { (t) } } }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next {
            p { a href=(n) rel="next" { (lang.t("next page")) " →" } }
        }
    };
    html_response(
        StatusCode::OK,
        page(lang, lang.t("queue"), Some(&s), &here, body),
    )
}

// ---------------------------------------------------------------------------------
// A lead.

/// The score history as an SVG line, with the grade thresholds read from the rules'
/// `grade G when score >= N` lines drawn across it.
fn chart(points: &[(i64, i64)], thresholds: &[(String, i64)], lang: Lang) -> Markup {
    const W: f64 = 640.0;
    const H: f64 = 200.0;
    const PAD: f64 = 30.0;
    let (t0, t1) = (
        points.iter().map(|p| p.0).min().unwrap_or(0),
        points.iter().map(|p| p.0).max().unwrap_or(1),
    );
    let scores = points
        .iter()
        .map(|p| p.1)
        .chain(thresholds.iter().map(|t| t.1));
    let lo = scores.clone().min().unwrap_or(0).min(0);
    let hi = scores.max().unwrap_or(100).max(lo + 1);
    let x = |t: i64| PAD + (t - t0) as f64 / ((t1 - t0).max(1)) as f64 * (W - 2.0 * PAD);
    let y = |s: i64| H - PAD - (s - lo) as f64 / (hi - lo) as f64 * (H - 2.0 * PAD);
    let line: Vec<String> = points
        .iter()
        .map(|&(t, s)| format!("{:.1},{:.1}", x(t), y(s)))
        .collect();
    html! {
        svg.chart #history viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(lang.t("history")) {
            title { (lang.t("history")) }
            @for (g, v) in thresholds {
                line.threshold x1=(PAD) x2=(W - PAD) y1=(format!("{:.1}", y(*v))) y2=(format!("{:.1}", y(*v))) {}
                text x=(W - PAD + 2.0) y=(format!("{:.1}", y(*v) + 4.0)) { (g) " " (v) }
            }
            text x="2" y=(format!("{:.1}", y(hi) + 4.0)) { (hi) }
            text x="2" y=(format!("{:.1}", y(lo) + 4.0)) { (lo) }
            @if line.len() == 1 {
                circle cx=(format!("{:.1}", x(points[0].0))) cy=(format!("{:.1}", y(points[0].1))) r="3" {}
            } @else {
                polyline.line points=(line.join(" ")) {}
            }
        }
    }
}

/// `grade G when score >= N` (or `>`), from the rules' text: the lines drawn on the chart.
fn thresholds(
    source: Option<&str>,
    grades: &[leadscore_runtime::bytecode::GradeDef],
) -> Vec<(String, i64)> {
    let Some(src) = source else {
        return Vec::new();
    };
    let lines: Vec<&str> = src.lines().collect();
    grades
        .iter()
        .filter_map(|g| {
            let text = lines.get((g.line as usize).checked_sub(1)?)?;
            let rest = text.split_once(" when ")?.1;
            let rest = rest.trim_start().strip_prefix("score")?.trim_start();
            let rest = rest
                .strip_prefix(">=")
                .or_else(|| rest.strip_prefix('>'))?
                .trim_start();
            let n: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '-')
                .collect();
            Some((g.name.clone(), n.parse().ok()?))
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct Done {
    done: Option<String>,
}

#[utoipa::path(get, path = "/app/leads/{lead}", tag = "console", params(("lead" = String, Path, description = "the lead's key")), responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 404, description = "no such lead", content_type = "text/html")))]
pub(crate) async fn lead(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(raw): LeadPath,
    done: Result<Query<Done>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = here(&uri);
    let s = match signed_in(&app, &headers, &here) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    let key = app.service.key(&raw);
    let detail = match app.service.lead(&key).await {
        Ok(LeadView::Found(d)) => d,
        Ok(LeadView::Merged(into)) => {
            return hardened(Redirect::to(&format!("/app/leads/{}", enc(&into))).into_response())
        }
        Ok(LeadView::Missing) => return failed(lang, &s, StatusCode::NOT_FOUND, lang.t("no lead")),
        Err(e) => {
            return failed_with(lang, &s, e);
        }
    };
    let now = app.service.now();
    let history = app
        .service
        .score_history(&key, now - 365 * 86_400_000_000)
        .await
        .ok()
        .flatten()
        .map(|(_, p)| p)
        .unwrap_or_default();
    let events = match app.service.export(&key).await {
        Ok(Some(x)) => x.events,
        _ => Vec::new(),
    };
    let rules = app.service.rules();
    let source = app.rulebook.as_ref().and_then(|r| r.source());
    let running_source = source
        .as_ref()
        .filter(|s| s.hash.as_deref() == Some(rules.hash.as_str()))
        .map(|s| s.text.clone());
    let grade_def = rules.program.grades.iter().find(|g| g.name == detail.grade);
    let grade_text = grade_def.and_then(|g| {
        running_source
            .as_deref()?
            .lines()
            .nth((g.line as usize).checked_sub(1)?)
            .map(|l| l.trim().to_string())
    });
    let mut points: Vec<(i64, i64)> = history.iter().map(|p| (p.at, p.score)).collect();
    if points.is_empty() {
        points.push((now, detail.score));
    }
    let lines = thresholds(running_source.as_deref(), &rules.program.grades);
    let sum: i64 = detail.contributions.iter().map(|c| c.points).sum();
    let done_msg = done
        .ok()
        .and_then(|Query(d)| d.done)
        .and_then(|d| match d.as_str() {
            "followup" => Some(lang.t("followed up")),
            "merge" => Some(lang.t("merged")),
            _ => None,
        });
    let desk = detail.desk.as_ref();
    let mut recent: Vec<&Value> = events.iter().collect();
    recent.sort_by(|a, b| b["at"].as_str().cmp(&a["at"].as_str()));
    recent.truncate(100);
    let followups = &app.config.desk.followup_events;
    let action = format!("/app/leads/{}", enc(&detail.lead));
    let body = html! {
        h1 { (detail.lead) }
        @if let Some(m) = done_msg { p.ok role="status" { (m) } }
        div.cards {
            div.card { div.muted { (lang.t("score")) } div.big #score { (detail.score) } }
            div.card { div.muted { (lang.t("grade")) } div.big #grade { (detail.grade) } }
            @if let Some(d) = desk {
                div.card { div.muted { (lang.t("owner")) } div { (d.owner.as_deref().unwrap_or(if d.pool { lang.t("pool") } else { "" })) } }
                @if let Some(dl) = &d.deadline {
                    div.card { div.muted { (lang.t("deadline")) } div class=@if d.overdue { "overdue" } { (when(Some(dl))) } }
                }
            }
            @for (name, v) in &detail.scores {
                div.card { div.muted { (name) } div { (v) } }
            }
        }
        @if !detail.tags.is_empty() {
            p { @for t in &detail.tags { span.tag { (t) } } }
        }
        h2 #why-title { (lang.t("why")) }
        table #why aria-labelledby="why-title" {
            thead { tr {
                th.num scope="col" { (lang.t("line")) }
                th scope="col" { (lang.t("rule")) }
                th scope="col" { (lang.t("score")) }
                th.num scope="col" { (lang.t("points")) }
            } }
            tbody {
                @for c in &detail.contributions {
                    tr.contribution {
                        td.num { (c.line) }
                        td { code { (c.rule) } }
                        td { (c.score) }
                        td.num.points { (c.points) }
                    }
                }
            }
            tfoot { tr {
                th colspan="3" scope="row" { (lang.t("total")) }
                td.num #sum { (sum) }
            } }
        }
        @if let Some(g) = grade_def {
            p #grade-matched {
                (lang.t("grade matched")) ": " (grade_badge(&g.name)) " "
                @if let Some(t) = &grade_text { code { (t) } } @else { span.muted { (lang.t("line")) " " (g.line) } }
            }
        }
        @if let Some(qs) = &detail.open_questions {
            @if !qs.is_empty() {
                h2 { (lang.t("open questions")) }
                ul { @for q in qs { li { (q.ask) " " span.muted { "(" (lang.t("line")) " " (q.line) ")" } } } }
            }
        }
        h2 { (lang.t("history")) }
        (chart(&points, &lines, lang))
        h2 { (lang.t("transitions")) }
        table {
            thead { tr { th scope="col" { (lang.t("at")) } th scope="col" { (lang.t("from")) } th scope="col" { (lang.t("to")) } th scope="col" { (lang.t("cause")) } } }
            tbody {
                @for t in detail.transitions.iter().rev() {
                    tr { td { (when(Some(&t.at))) } td { (t.from.as_deref().unwrap_or("")) } td { (t.to) } td { (t.cause) @if let Some(e) = &t.event { " · " (e) } } }
                }
            }
        }
        @if let Some(d) = desk {
            h2 { (lang.t("assignments")) }
            table {
                thead { tr { th scope="col" { (lang.t("at")) } th scope="col" { (lang.t("from")) } th scope="col" { (lang.t("to")) } th scope="col" { (lang.t("cause")) } } }
                tbody {
                    @for c in d.changes.iter().rev() {
                        tr { td { (when(Some(&c.at))) } td { (c.from_owner.as_deref().unwrap_or("")) } td { (c.to_owner.as_deref().unwrap_or("")) } td { (c.cause) @if let Some(l) = c.line { " · " (lang.t("line")) " " (l) } } }
                    }
                }
            }
        }
        h2 { (lang.t("timeline")) }
        table #timeline {
            thead { tr { th scope="col" { (lang.t("at")) } th scope="col" { (lang.t("type")) } th.wide scope="col" { "id" } } }
            tbody {
                @for e in &recent {
                    tr { td { (when(e["at"].as_str())) } td { (e["type"].as_str().unwrap_or("")) } td.wide { (e["id"].as_str().unwrap_or("")) } }
                }
            }
        }
        @if s.writer {
            @if !followups.is_empty() {
                h2 { (lang.t("follow up")) }
                form.filters method="post" action={ (action) "/followups" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label { (lang.t("type"))
                        select name="type" { @for t in followups { option value=(t) { (t) } } }
                    }
                    label { (lang.t("note")) input name="note" size="30"; }
                    button type="submit" { (lang.t("save")) }
                }
            }
            h2 { (lang.t("merge")) }
            form.filters method="post" action={ (action) "/merge" } {
                input type="hidden" name="csrf" value=(s.csrf);
                label { (lang.t("merge key")) input name="lead" size="30" required; }
                button type="submit" { (lang.t("merge")) }
            }
        } @else {
            p.muted { (lang.t("readers see")) }
        }
    };
    html_response(
        StatusCode::OK,
        page(lang, &detail.lead, Some(&s), &here, body),
    )
}

#[derive(Deserialize)]
pub(crate) struct FollowupForm {
    csrf: String,
    #[serde(rename = "type")]
    event_type: String,
    note: Option<String>,
}

/// The session of a writer whose form's CSRF token is this session's.
#[allow(clippy::result_large_err)]
fn acting(app: &App, headers: &HeaderMap, csrf: &str) -> Result<Session, Response> {
    let lang = Lang::of(headers);
    let Some(s) = session(app, headers) else {
        return Err(to_login("/app"));
    };
    if !csrf_ok(&s, csrf) {
        return Err(refused(lang, "expired"));
    }
    if !s.writer {
        return Err(refused(lang, "forbidden"));
    }
    Ok(s)
}

#[utoipa::path(post, path = "/app/leads/{lead}/followups", tag = "console", params(("lead" = String, Path, description = "the lead's key")), responses((status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 403, description = "a form without this session's CSRF token, or a reader acting", content_type = "text/html")))]
pub(crate) async fn followup(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): LeadPath,
    Form(f): Form<FollowupForm>,
) -> Response {
    let s = match acting(&app, &headers, &f.csrf) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    let types = &app.config.desk.followup_events;
    if !types.iter().any(|t| t.eq_ignore_ascii_case(&f.event_type)) {
        return failed(
            lang,
            &s,
            StatusCode::BAD_REQUEST,
            &format!("type: `{}` is not a follow-up", f.event_type),
        );
    }
    let now = app.service.now();
    let mut props = serde_json::Map::new();
    if let Some(o) = &s.owner {
        props.insert("owner".into(), json!(o));
    }
    if let Some(n) = f.note.as_ref().filter(|n| !n.trim().is_empty()) {
        props.insert("note".into(), json!(n));
    }
    let event = json!({
        "id": format!("console:{}", uuid::Uuid::new_v4().simple()),
        "lead": raw, "type": f.event_type, "at": time::format(now), "props": props,
    });
    let r = match leadscore_service::parse_events(&event, now) {
        Ok(events) => app
            .service
            .ingest(events)
            .await
            .map_err(crate::ApiError::from),
        Err(e) => Err(crate::ApiError::from(e)),
    };
    match r {
        Ok(_) => hardened(
            Redirect::to(&format!("/app/leads/{}?done=followup", enc(&raw))).into_response(),
        ),
        Err(e) => failed(lang, &s, e.status, &e.detail),
    }
}

#[derive(Deserialize)]
pub(crate) struct MergeForm {
    csrf: String,
    lead: String,
}

#[utoipa::path(post, path = "/app/leads/{lead}/merge", tag = "console", params(("lead" = String, Path, description = "the lead's key")), responses((status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 403, description = "a form without this session's CSRF token, or a reader acting", content_type = "text/html")))]
pub(crate) async fn merge(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Path(raw): LeadPath,
    Form(f): Form<MergeForm>,
) -> Response {
    let s = match acting(&app, &headers, &f.csrf) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    let (into, from) = (app.service.key(&raw), app.service.key(f.lead.trim()));
    match app.service.merge(&into, &from).await {
        Ok(m) => hardened(
            Redirect::to(&format!("/app/leads/{}?done=merge", enc(&m.lead))).into_response(),
        ),
        Err(MergeError::Store(e)) => failed_with(lang, &s, e),
        Err(e) => failed(lang, &s, StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

// ---------------------------------------------------------------------------------
// The rules.

const KEYWORDS: &[&str] = &[
    "when",
    "add",
    "each",
    "grade",
    "otherwise",
    "score",
    "set",
    "in",
    "and",
    "or",
    "not",
    "range",
    "tag",
    "notify",
    "channel",
    "assign",
    "to",
    "team",
    "pool",
    "within",
    "plan",
    "recycle",
    "after",
    "ask",
    "decay",
    "expire",
    "until",
    "apart",
    "total",
    "at",
    "least",
    "contains",
    "any",
    "word",
    "is",
    "missing",
    "present",
    "ruleset",
    "round",
    "robin",
    "by",
    "company",
    "owner",
    "without",
    "followup",
    "changes",
    "overdue",
    "task",
    "due",
    "from",
    "max",
    "min",
    "days",
    "weeks",
    "every",
    "once",
    "per",
    "for",
    "of",
    "subtract",
];

/// One line of rules, coloured: comments, strings, numbers and keywords.
fn highlight(line: &str) -> Markup {
    let (code, comment) = match line.find('#') {
        Some(i)
            if !line[..i]
                .chars()
                .filter(|&c| c == '"')
                .count()
                .is_multiple_of(2) =>
        {
            (line, None)
        }
        Some(i) => (&line[..i], Some(&line[i..])),
        None => (line, None),
    };
    let mut parts: Vec<(u8, String)> = Vec::new();
    let mut chars = code.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '"' {
            let mut end = code.len();
            for (j, d) in chars.by_ref() {
                if d == '"' {
                    end = j + 1;
                    break;
                }
            }
            parts.push((2, code[i..end].to_string()));
        } else if c.is_alphanumeric() || c == '_' || c == '.' {
            let mut end = code.len();
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || d == '_' || d == '.' {
                    chars.next();
                } else {
                    end = j;
                    break;
                }
            }
            let word = &code[i..end];
            let kind = if word.chars().all(|c| c.is_ascii_digit() || c == '.') {
                3
            } else if KEYWORDS.contains(&word) {
                1
            } else {
                0
            };
            parts.push((kind, word.to_string()));
        } else {
            parts.push((0, c.to_string()));
        }
    }
    html! {
        @for (kind, text) in &parts {
            @match kind {
                1 => span.hl-kw { (text) },
                2 => span.hl-s { (text) },
                3 => span.hl-n { (text) },
                _ => (text),
            }
        }
        @if let Some(c) = comment { span.hl-c { (c) } }
    }
}

fn draft_result(lang: Lang, check: &DraftCheck) -> Markup {
    html! {
        div #check-result aria-live="polite" {
            @if check.diagnostics.is_empty() {
                p.ok.compiles { (lang.t("compiles")) }
            }
            @for d in &check.diagnostics {
                div.diagnostic {
                    p class=(if d.severity == "error" { "error" } else { "muted" }) {
                        strong { (d.severity) "[" (d.code) "]" } ": " (d.message)
                        " — " (lang.t("line")) " " (d.line) ":" (d.column)
                    }
                    div.diag tabindex="0" {
                        (format!("{:>4} | {}\n     | {}{}", d.line, d.source_line, " ".repeat(d.column.saturating_sub(1)), "^".repeat(d.width.max(1))))
                    }
                    @if let Some(h) = &d.help { p.muted { (h) } }
                }
            }
            @match &check.preview {
                Some(Ok(p)) => {
                    h2 { (lang.t("preview")) }
                    p #preview-summary {
                        strong { (p.changes["moved"].as_u64().unwrap_or(0)) } " " (lang.t("moved")) " · "
                        (p.leads) " " (lang.t("of leads")) @if p.truncated { " (…)" }
                    }
                    @if let Some(m) = p.changes["matrix"].as_array() {
                        @if !m.is_empty() {
                            table {
                                thead { tr { th scope="col" { (lang.t("from")) } th scope="col" { (lang.t("to")) } th.num scope="col" { (lang.t("lead")) } } }
                                tbody { @for r in m { tr { td { (r["from"].as_str().unwrap_or("")) } td { (r["to"].as_str().unwrap_or("")) } td.num { (r["leads"]) } } } }
                            }
                        }
                    }
                    @if let Some(movers) = p.changes["movers"].as_array() {
                        @if !movers.is_empty() {
                            h2 { (lang.t("movers")) }
                            @for m in movers {
                                div.mover {
                                    p { strong { (m["lead"].as_str().unwrap_or("")) } " "
                                        (m["old"]["score"]) " " (grade_badge(m["old"]["grade"].as_str().unwrap_or(""))) " → "
                                        (m["new"]["score"]) " " (grade_badge(m["new"]["grade"].as_str().unwrap_or(""))) }
                                    div.cards {
                                        @for (label, side) in [("before", &m["old"]), ("after", &m["new"])] {
                                            div.card {
                                                div.muted { (lang.t(label)) }
                                                ul { @for c in side["contributions"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                                                    li { code { (c["rule"].as_str().unwrap_or("")) } " " (c["points"]) }
                                                } }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                Some(Err(e)) => p.error { (e) },
                None => {}
            }
        }
    }
}

fn rules_page(app: &App, lang: Lang, s: &Session, draft: Option<(&str, &DraftCheck)>) -> Markup {
    let rules = app.service.rules();
    let source = app.rulebook.as_ref().and_then(|r| r.source());
    let shadow = app.service.shadow_rules();
    let variant = app.service.variant();
    let text = draft
        .map(|d| d.0.to_string())
        .or_else(|| source.as_ref().map(|s| s.text.clone()))
        .unwrap_or_default();
    let body = html! {
        h1 { (lang.t("running rules")) ": " (rules.program.name) }
        p { (lang.t("program hash")) ": " code #program-hash { (rules.hash) } }
        p {
            (lang.t("shadow")) ": " @if let Some(sh) = &shadow { (sh.program.name) " " code { (sh.hash) } } @else { (lang.t("none")) }
            " · " (lang.t("variant")) ": "
            @if let Some((v, share)) = &variant { (v.program.name) " " code { (v.hash) } " (" (lang.t("share")) " " (format!("{:.1}%", *share as f64 / 100.0)) ")" } @else { (lang.t("none")) }
        }
        @match &source {
            Some(src) => {
                p.muted { (src.path) }
                @if src.hash.as_deref() != Some(rules.hash.as_str()) { p.error { (lang.t("file changed")) } }
                pre.rules #rules-source tabindex="0" { @for (i, l) in src.text.lines().enumerate() { span.ln { (i + 1) } (highlight(l)) "\n" } }
            }
            None => p.muted { (lang.t("no source")) },
        }
        h2 { (lang.t("draft")) }
        @if app.rulebook.is_some() {
            p.muted { (lang.t("draft help")) }
            form #draft-form method="post" action="/app/rules/check"
                hx-post="/app/rules/check" hx-trigger="input changed delay:600ms from:#draft, submit" hx-target="#check-result" hx-swap="outerHTML" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="draft" { (lang.t("draft")) }
                textarea.draft #draft name="draft" spellcheck="false" { (text) }
                p { button type="submit" { (lang.t("check")) } }
            }
            @match draft {
                Some((_, check)) => (draft_result(lang, check)),
                None => div #check-result aria-live="polite" {},
            }
        } @else {
            p.muted { (lang.t("no drafts")) }
        }
    };
    page(lang, lang.t("rules"), Some(s), "/app/rules", body)
}

#[utoipa::path(get, path = "/app/rules", tag = "console", responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads")))]
pub(crate) async fn rules(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let s = match signed_in(&app, &headers, "/app/rules") {
        Ok(s) => s,
        Err(r) => return r,
    };
    html_response(
        StatusCode::OK,
        rules_page(&app, Lang::of(&headers), &s, None),
    )
}

#[derive(Deserialize)]
pub(crate) struct DraftForm {
    csrf: String,
    draft: String,
}

/// The largest draft checked (a rules file is a few kilobytes).
const MAX_DRAFT: usize = 256 * 1024;

/// Checks a draft: readers may (nothing is applied), with the session's CSRF token. An
/// htmx request gets the result alone; a plain form post the whole page.
#[utoipa::path(post, path = "/app/rules/check", tag = "console", responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 403, description = "a form without this session's CSRF token, or a reader acting", content_type = "text/html")))]
pub(crate) async fn check_draft(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<DraftForm>,
) -> Response {
    let lang = Lang::of(&headers);
    let Some(s) = session(&app, &headers) else {
        return to_login("/app/rules");
    };
    if !csrf_ok(&s, &f.csrf) {
        return refused(lang, "expired");
    }
    let Some(book) = app.rulebook.clone() else {
        return failed(lang, &s, StatusCode::NOT_FOUND, lang.t("no drafts"));
    };
    if f.draft.len() > MAX_DRAFT {
        return failed(
            lang,
            &s,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("a draft is at most {MAX_DRAFT} bytes"),
        );
    }
    let check = book.check(&f.draft, &app.service).await;
    if headers.contains_key("hx-request") {
        return html_response(StatusCode::OK, draft_result(lang, &check));
    }
    html_response(
        StatusCode::OK,
        rules_page(&app, lang, &s, Some((&f.draft, &check))),
    )
}

// ---------------------------------------------------------------------------------
// Notifications.

#[derive(Deserialize, Default)]
pub(crate) struct NotesParams {
    after: Option<String>,
    done: Option<String>,
}

#[utoipa::path(get, path = "/app/notifications", tag = "console", params(("after" = Option<String>, Query)), responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads")))]
pub(crate) async fn notifications(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    params: Result<Query<NotesParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let here = here(&uri);
    let s = match signed_in(&app, &headers, &here) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    let p = params.map(|Query(p)| p).unwrap_or_default();
    let after = p.after.as_deref().and_then(|a| {
        let (k, id) = a.split_once(':')?;
        Some((k.parse().ok()?, id.to_string()))
    });
    let rows = match app
        .service
        .notifications(NoteStatus::Failed, 100, after)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            return failed_with(lang, &s, e);
        }
    };
    let next = (rows.len() == 100).then(|| rows.last()).flatten().map(|o| {
        format!(
            "/app/notifications?after={}",
            enc(&format!("{}:{}", o.next_at, o.note.id))
        )
    });
    let body = html! {
        h1 { (lang.t("dead letters")) }
        @if p.done.is_some() { p.ok role="status" { (lang.t("retried")) } }
        @if rows.is_empty() {
            p.muted { (lang.t("no dead letters")) }
        } @else {
            table #dead-letters {
                thead { tr {
                    th scope="col" { (lang.t("lead")) }
                    th scope="col" { (lang.t("channel")) }
                    th.num scope="col" { (lang.t("attempts")) }
                    th scope="col" { (lang.t("reason")) }
                    th scope="col" { (lang.t("at")) }
                    th scope="col" { span.muted { (lang.t("retry")) } }
                } }
                tbody {
                    @for o in &rows {
                        tr {
                            td { a href={ "/app/leads/" (enc(&o.note.lead)) } { (o.note.lead) } }
                            td { (o.note.channel) }
                            td.num { (o.attempts) }
                            td { (o.last_error.as_deref().unwrap_or("")) }
                            td { (when(Some(&time::format(o.next_at)))) }
                            td {
                                @if s.writer {
                                    form method="post" action="/app/notifications/retry" {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        input type="hidden" name="lead" value=(o.note.lead);
                                        input type="hidden" name="id" value=(o.note.id);
                                        button type="submit" { (lang.t("retry")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(n) = next { p { a href=(n) rel="next" { (lang.t("next page")) " →" } } }
    };
    html_response(
        StatusCode::OK,
        page(lang, lang.t("notifications"), Some(&s), &here, body),
    )
}

#[derive(Deserialize)]
pub(crate) struct RetryForm {
    csrf: String,
    lead: String,
    id: String,
}

#[utoipa::path(post, path = "/app/notifications/retry", tag = "console", responses((status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 403, description = "a form without this session's CSRF token, or a reader acting", content_type = "text/html")))]
pub(crate) async fn retry(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<RetryForm>,
) -> Response {
    let s = match acting(&app, &headers, &f.csrf) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let lang = Lang::of(&headers);
    match app.service.retry_notification(&f.lead, &f.id).await {
        Ok(Retried::Requeued) => {
            hardened(Redirect::to("/app/notifications?done=retry").into_response())
        }
        Ok(Retried::Missing) => failed(lang, &s, StatusCode::NOT_FOUND, "no such notification"),
        Ok(Retried::NotFailed(st)) => failed(
            lang,
            &s,
            StatusCode::CONFLICT,
            &format!("the notification is {}", st.name()),
        ),
        Err(e) => failed_with(lang, &s, e),
    }
}
