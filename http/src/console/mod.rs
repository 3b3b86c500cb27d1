//! The console (docs/console.md): server-rendered pages for the people who use the
//! scores — the queue, a lead, the rules with a draft checker, the dead letters — under
//! `/app`, in English and Chinese, working without JavaScript and enhanced by htmx
//! (vendored: `/app/static/htmx.min.js`), behind a strict Content-Security-Policy.
//!
//! Sign-in turns a token (a reader's own, the shared read token, a write token) into a
//! session cookie (HttpOnly, SameSite=Strict, Secure over TLS) signed with a key derived
//! from the configured secrets: nothing is kept on the server, so it works the same on
//! one `serve` and across Lambda instances, and rotating the token ends its sessions.
//! Every form carries a CSRF token bound to the session. Readers see; writers act.

mod i18n;
pub(crate) mod pages;

use crate::App;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use i18n::Lang;
use leadscore_service::Service;
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Sign-in attempts a minute from one address.
pub const SIGNIN_PER_MINUTE: u32 = 10;
/// How long a session lasts.
const SESSION_SECS: i64 = 8 * 3600;
const SESSION_COOKIE: &str = "ls_session";
/// The sign-in form's own CSRF cookie (double submit), before there is a session.
const PRE_COOKIE: &str = "ls_pre";

pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const HTMX: &str = include_str!("htmx.min.js");
const CSS: &str = include_str!("app.css");

/// The rules as `serve` knows them: their file, and drafts checked by the compiler (the
/// Lambda function links no compiler: its console shows the program hash only).
pub trait Rulebook: Send + Sync {
    /// The rules file's path and text, if this deployment has them.
    fn source(&self) -> Option<RulesText>;
    /// The draft's diagnostics and, when it compiles, what it would change over the
    /// stored leads.
    fn check<'a>(&'a self, draft: &'a str, service: &'a Service) -> BoxFuture<'a, DraftCheck>;
}

pub struct RulesText {
    pub path: String,
    pub text: String,
    /// The program hash of the file as it is now (`None`: it does not compile).
    pub hash: Option<String>,
}

#[derive(Clone, Debug)]
pub struct DraftDiagnostic {
    /// `error` or `warning`.
    pub severity: &'static str,
    pub code: String,
    pub message: String,
    /// 1-based.
    pub line: usize,
    pub column: usize,
    /// The draft's line the caret points into, and the caret's width.
    pub source_line: String,
    pub width: usize,
    pub help: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DraftCheck {
    pub diagnostics: Vec<DraftDiagnostic>,
    /// The backtest's changes (docs/backtest.md: `moved`, `matrix`, `movers`), with how
    /// many leads were replayed; or why no preview could be made.
    pub preview: Option<Result<Preview, String>>,
}

#[derive(Clone, Debug)]
pub struct Preview {
    pub leads: usize,
    /// Only the first leads were replayed (the store has more).
    pub truncated: bool,
    pub changes: serde_json::Value,
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/app", get(pages::queue))
        .route("/app/login", get(login_form).post(login))
        .route("/app/logout", post(logout))
        .route("/app/lang", get(switch_lang))
        .route("/app/leads/{lead}", get(pages::lead))
        .route("/app/leads/{lead}/followups", post(pages::followup))
        .route("/app/leads/{lead}/merge", post(pages::merge))
        .route("/app/rules", get(pages::rules))
        .route("/app/rules/check", post(pages::check_draft))
        .route("/app/notifications", get(pages::notifications))
        .route("/app/notifications/retry", post(pages::retry))
        .route("/app/static/htmx.min.js", get(htmx_js))
        .route("/app/static/app.css", get(app_css))
}

/// Who is signed in.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The reader's name, `reader` (the shared read token) or `writer`.
    pub who: String,
    /// The reader's e-mail on the desk (`owner=me`).
    pub owner: Option<String>,
    pub writer: bool,
    /// This session's CSRF token (every form carries it).
    pub csrf: String,
}

/// A token the configuration accepts, and what it grants.
struct Grant {
    token: String,
    who: String,
    owner: Option<String>,
    writer: bool,
}

fn grants(app: &App) -> Vec<Grant> {
    let s = &app.config.security;
    let mut out: Vec<Grant> = app
        .config
        .readers
        .iter()
        .filter_map(|(name, r)| {
            Some(Grant {
                token: r.token.clone()?,
                who: name.clone(),
                owner: Some(r.owner.to_lowercase()),
                writer: r.writer,
            })
        })
        .collect();
    out.extend(s.read_tokens.iter().map(|t| Grant {
        token: t.clone(),
        who: "reader".into(),
        owner: None,
        writer: false,
    }));
    out.extend(s.write_tokens.iter().map(|t| Grant {
        token: t.clone(),
        who: "writer".into(),
        owner: None,
        writer: true,
    }));
    out
}

/// The key sessions are signed with: `LEADSCORE_CONSOLE_SECRET`, else one derived from
/// every configured token and webhook secret. `None` when no token is configured: the
/// console then signs nobody in.
fn session_key(app: &App) -> Option<[u8; 32]> {
    let g = grants(app);
    if g.is_empty() {
        return None;
    }
    let mut h = Sha256::new();
    h.update(b"leadscore console session v1\0");
    match &app.config.security.console_secret {
        Some(secret) => h.update(secret.as_bytes()),
        None => {
            let mut parts: Vec<&str> = g.iter().map(|g| g.token.as_str()).collect();
            parts.extend(
                app.config
                    .security
                    .webhook_secrets
                    .iter()
                    .map(String::as_str),
            );
            parts.sort_unstable();
            for p in parts {
                h.update(p.as_bytes());
                h.update(b"\0");
            }
        }
    }
    Some(h.finalize().into())
}

fn mac(key: &[u8; 32], what: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(what);
    m.finalize().into_bytes().to_vec()
}

/// A token's fingerprint in the cookie: the session ends when its token is rotated out.
fn fingerprint(token: &str) -> String {
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

#[derive(serde::Serialize, Deserialize)]
struct Claims {
    w: String,
    o: Option<String>,
    x: bool,
    /// Expiry, UNIX seconds.
    e: i64,
    /// The token's fingerprint.
    f: String,
    /// A random nonce: the CSRF token is derived from it.
    n: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn seal(key: &[u8; 32], c: &Claims) -> String {
    use base64::Engine;
    let body = b64().encode(serde_json::to_vec(c).unwrap_or_default());
    let sig = b64().encode(mac(key, body.as_bytes()));
    format!("{body}.{sig}")
}

fn open(key: &[u8; 32], cookie: &str) -> Option<Claims> {
    use base64::Engine;
    let (body, sig) = cookie.split_once('.')?;
    let given = b64().decode(sig).ok()?;
    if !bool::from(mac(key, body.as_bytes()).ct_eq(&given)) {
        return None;
    }
    serde_json::from_slice(&b64().decode(body).ok()?).ok()
}

fn csrf_of(key: &[u8; 32], nonce: &str) -> String {
    hex::encode(&mac(key, format!("csrf\0{nonce}").as_bytes())[..16])
}

/// A cookie of the request.
pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The request's session, if its cookie is genuine, current, and its token still valid.
pub(crate) fn session(app: &App, headers: &HeaderMap) -> Option<Session> {
    let key = session_key(app)?;
    let c = open(&key, &cookie(headers, SESSION_COOKIE)?)?;
    let now = app.service.now().div_euclid(1_000_000);
    if c.e < now {
        return None;
    }
    let g = grants(app);
    let grant = g.iter().find(|g| fingerprint(&g.token) == c.f)?;
    Some(Session {
        who: c.w,
        owner: grant.owner.clone().or(c.o),
        writer: grant.writer && c.x,
        csrf: csrf_of(&key, &c.n),
    })
}

/// Served over TLS (directly, or behind a proxy or Lambda's Function URL that says so).
fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

fn set_cookie(name: &str, value: &str, max_age: i64, headers: &HeaderMap) -> HeaderValue {
    let secure = if secure(headers) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/app; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The headers every console answer carries.
pub(crate) fn hardened(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// A page: the layout around `body`.
pub(crate) fn page(
    lang: Lang,
    title: &str,
    session: Option<&Session>,
    here: &str,
    body: Markup,
) -> Markup {
    let switch = format!(
        "/app/lang?to={}&back={}",
        lang.other().code(),
        crate::console::pages::enc(here)
    );
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
                title { (title) " · " (lang.t("title")) }
                link rel="stylesheet" href="/app/static/app.css";
                script src="/app/static/htmx.min.js" defer {}
            }
            body {
                header {
                    a.brand href="/app" { "leadscore" }
                    @if let Some(s) = session {
                        nav aria-label=(lang.t("title")) {
                            a href="/app" { (lang.t("queue")) }
                            a href="/app/rules" { (lang.t("rules")) }
                            a href="/app/notifications" { (lang.t("notifications")) }
                        }
                        span.muted { (lang.t("signed in as")) " " (s.owner.as_deref().unwrap_or(&s.who)) }
                        form method="post" action="/app/logout" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button.link type="submit" { (lang.t("sign out")) }
                        }
                    }
                    a href=(switch) lang=(lang.other().code()) { (lang.t("language")) }
                }
                main { (body) }
            }
        }
    }
}

pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    hardened(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            markup.into_string(),
        )
            .into_response(),
    )
}

/// Where a signed-out visitor is sent: the sign-in page, coming back to `here`.
pub(crate) fn to_login(here: &str) -> Response {
    hardened(Redirect::to(&format!("/app/login?next={}", pages::enc(here))).into_response())
}

/// Only local paths of the console are gone back to (no open redirect).
fn local(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/app") && !n.starts_with("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/app".into(),
    }
}

#[derive(Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

#[utoipa::path(get, path = "/app/login", tag = "console", responses((status = 200, description = "an HTML page", content_type = "text/html"), (status = 303, description = "to the sign-in page when signed out, or where the action leads")))]
pub(crate) async fn login_form(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(q): Query<NextParam>,
) -> Response {
    let lang = Lang::of(&headers);
    if session(&app, &headers).is_some() {
        return hardened(Redirect::to(&local(q.next.as_deref())).into_response());
    }
    signin_page(&app, lang, &headers, local(q.next.as_deref()), None)
}

fn signin_page(
    app: &App,
    lang: Lang,
    headers: &HeaderMap,
    next: String,
    error: Option<&str>,
) -> Response {
    let pre = uuid::Uuid::new_v4().simple().to_string();
    let configured = session_key(app).is_some();
    let body = html! {
        form.signin method="post" action="/app/login" {
            h1 { (lang.t("sign in")) }
            @if !configured {
                p.error role="alert" { (lang.t("no tokens")) }
            }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            input type="hidden" name="csrf" value=(pre);
            input type="hidden" name="next" value=(next);
            label for="token" { (lang.t("token")) }
            input #token type="password" name="token" autocomplete="current-password" required;
            span.muted { (lang.t("token help")) }
            button type="submit" { (lang.t("sign in")) }
        }
    };
    let mut r = html_response(
        if error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        page(lang, lang.t("sign in"), None, "/app/login", body),
    );
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(PRE_COOKIE, &pre, 600, headers),
    );
    r
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

#[utoipa::path(post, path = "/app/login", tag = "console", responses((status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 401, description = "a wrong token or an expired form", content_type = "text/html")))]
pub(crate) async fn login(State(app): State<Arc<App>>, req: axum::extract::Request) -> Response {
    use axum::extract::FromRequest;
    let headers = req.headers().clone();
    let lang = Lang::of(&headers);
    // Guessing tokens is slow: a few attempts a minute from one address.
    if let (Some(l), Some(ip)) = (&app.signin_limiter, crate::client_ip(&req)) {
        if l.check_key(&ip).is_err() {
            return html_response(
                StatusCode::TOO_MANY_REQUESTS,
                page(
                    lang,
                    lang.t("sign in"),
                    None,
                    "/app/login",
                    html! { p.error role="alert" { (lang.t("too many")) } },
                ),
            );
        }
    }
    let Ok(Form(f)) = Form::<LoginForm>::from_request(req, &app).await else {
        return signin_page(&app, lang, &headers, "/app".into(), Some(lang.t("expired")));
    };
    let next = local(f.next.as_deref());
    let pre = cookie(&headers, PRE_COOKIE).unwrap_or_default();
    if pre.is_empty() || !bool::from(pre.as_bytes().ct_eq(f.csrf.as_bytes())) {
        return signin_page(&app, lang, &headers, next, Some(lang.t("expired")));
    }
    let Some(key) = session_key(&app) else {
        return signin_page(&app, lang, &headers, next, Some(lang.t("no tokens")));
    };
    let given = f.token.trim();
    // Every grant is compared, so the time taken says nothing about which one is near.
    let mut found = None;
    for g in grants(&app) {
        if bool::from(g.token.as_bytes().ct_eq(given.as_bytes())) {
            found = Some(g);
        }
    }
    let Some(g) = found else {
        return signin_page(&app, lang, &headers, next, Some(lang.t("bad token")));
    };
    let claims = Claims {
        w: g.who.clone(),
        o: g.owner.clone(),
        x: g.writer,
        e: app.service.now().div_euclid(1_000_000) + SESSION_SECS,
        f: fingerprint(&g.token),
        n: uuid::Uuid::new_v4().simple().to_string(),
    };
    let mut r = hardened(Redirect::to(&next).into_response());
    let h = r.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &seal(&key, &claims), SESSION_SECS, &headers),
    );
    h.append(header::SET_COOKIE, set_cookie(PRE_COOKIE, "", 0, &headers));
    r
}

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    csrf: String,
}

#[utoipa::path(post, path = "/app/logout", tag = "console", responses((status = 303, description = "to the sign-in page when signed out, or where the action leads"), (status = 403, description = "a form without this session's CSRF token, or a reader acting", content_type = "text/html")))]
pub(crate) async fn logout(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> Response {
    match session(&app, &headers) {
        Some(s) if pages::csrf_ok(&s, &f.csrf) => {
            let mut r = hardened(Redirect::to("/app/login").into_response());
            r.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(SESSION_COOKIE, "", 0, &headers),
            );
            r
        }
        _ => pages::refused(Lang::of(&headers), "expired"),
    }
}

#[derive(Deserialize)]
pub(crate) struct LangParams {
    to: String,
    back: Option<String>,
}

#[utoipa::path(get, path = "/app/lang", tag = "console", params(("to" = String, Query, description = "en or zh-CN"), ("back" = Option<String>, Query, description = "a console path")), responses((status = 303, description = "to the sign-in page when signed out, or where the action leads")))]
pub(crate) async fn switch_lang(headers: HeaderMap, Query(q): Query<LangParams>) -> Response {
    let lang = Lang::parse(&q.to).unwrap_or(Lang::En);
    let mut r = hardened(Redirect::to(&local(q.back.as_deref())).into_response());
    if let Ok(v) = HeaderValue::from_str(&format!(
        "lang={}; Path=/app; SameSite=Strict; Max-Age=31536000{}",
        lang.code(),
        if secure(&headers) { "; Secure" } else { "" }
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    hardened(
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
            .into_response(),
    )
}

#[utoipa::path(get, path = "/app/static/htmx.min.js", tag = "console", responses((status = 200, description = "htmx, vendored", content_type = "text/javascript")))]
pub(crate) async fn htmx_js() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}

#[utoipa::path(get, path = "/app/static/app.css", tag = "console", responses((status = 200, description = "the console's stylesheet", content_type = "text/css")))]
pub(crate) async fn app_css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

/// `Path` for a lead key as sent (percent-decoded by axum).
pub(crate) type LeadPath = Path<String>;
