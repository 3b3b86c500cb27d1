//! The console (docs/console.md) in headless Chromium through WebDriver, against a real
//! `serve`: sign-in, the queue with filters, a lead page whose why-panel adds up to its
//! score, a rules draft with a diagnostic and a preview, a dead letter retried, readers
//! who cannot act, hostile keys and attributes, both languages, and axe-core's
//! accessibility check on every page. `LEADSCORE_SCREENSHOTS=DIR` saves each page.

mod common;

use common::*;
use reqwest::{redirect, Client};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const AMY: &str = "amy-console-token";
const BO: &str = "bo-console-token";
const HOSTILE_KEY: &str = "x\"><img src=x onerror=\"window.__xss=1\">@evil.example";
const HOSTILE_COMPANY: &str = "<script>window.__xss=1</script>ACME";

fn config(dir: &Path) -> PathBuf {
    let base = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/001-zoho.toml"),
    )
    .unwrap();
    let path = dir.join("console.toml");
    std::fs::write(&path, format!("{base}\n[notify]\npoll_millis = 100\n")).unwrap();
    path
}

fn env() -> Vec<(&'static str, &'static str)> {
    let mut e = secured();
    e.push(("LEADSCORE_READER_AMY", AMY));
    e.push(("LEADSCORE_READER_BO", BO));
    e
}

/// Seed 001's leads: ann (US CEO asking for LED panels: A), bo's B lead, a hostile one.
async fn seed(c: &Client, s: &Server) {
    let now = now_secs();
    let at = |d: i64| iso(now - d);
    let events = json!([
        {"id": "a1", "lead": "ann@buyer.example", "type": "form.submitted", "at": at(600),
         "attributes": {"country": "US", "product": "led panel", "title": "CEO", "company": HOSTILE_COMPANY},
         "props": {"form": "inquiry"}},
        {"id": "a2", "lead": "ann@buyer.example", "type": "email.opened", "at": at(300)},
        {"id": "b1", "lead": "bea@buyer.example", "type": "form.submitted", "at": at(500),
         "attributes": {"country": "PL", "product": "cable"}, "props": {"form": "inquiry"}},
        {"id": "h1", "lead": HOSTILE_KEY, "type": "email.opened", "at": at(400),
         "attributes": {"company": HOSTILE_COMPANY, "title": "<b>boss</b>"}},
    ]);
    let r = post_signed(c, s, SECRET, now, &events).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

/// axe-core from npm (scripts/test.sh installs it; `LEADSCORE_AXE_JS` names the file).
fn axe_source() -> String {
    let path = std::env::var("LEADSCORE_AXE_JS").unwrap_or_else(|_| {
        format!(
            "{}/.tools/node_modules/axe-core/axe.min.js",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("axe-core is needed at {path} ({e}): scripts/test.sh installs it from npm")
    })
}

/// axe-core's serious and critical violations on the page, with their nodes.
async fn axe(b: &Browser, axe_js: &str, page: &str) {
    b.run(&format!("{axe_js}\n;return true")).await;
    let v = b
        .run_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
                .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.html)}))))
                .catch(e => done([{id: 'axe failed', help: String(e)}]));",
        )
        .await;
    assert_eq!(v, json!([]), "axe-core on {page}");
}

async fn shot(b: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("LEADSCORE_SCREENSHOTS") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            Path::new(&dir).join(format!("{name}.png")),
            b.screenshot().await,
        )
        .unwrap();
    }
}

/// Fills the sign-in form and submits it.
async fn sign_in(b: &Browser, s: &Server, token: &str, next: &str) {
    b.visit(&s.at(&format!("/app/login?next={next}"))).await;
    b.run(&format!(
        "document.querySelector('#token').value = {}; document.querySelector('form.signin').submit(); return true",
        json!(token)
    ))
    .await;
}

fn no_xss() -> &'static str {
    "return window.__xss === undefined && !document.querySelector('script:not([src])')"
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_chromium() {
    let dir = tmp("console");
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config(&dir)), &env());
    let c = Client::new();
    seed(&c, &s).await;
    // The notifications of ann's A have no channel secrets here: dead letters.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v: Value = c
            .get(s.at("/notifications?status=failed"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !v["notifications"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let axe_js = axe_source();
    let b = Browser::start(None, json!({"intl.accept_languages": "en-US,en"})).await;
    b.resize(1100, 900).await;

    // Signed out: the sign-in page, never a lead.
    b.visit(&s.at("/app/leads/ann%40buyer.example")).await;
    assert!(
        b.url().await.contains("/app/login?next="),
        "{}",
        b.url().await
    );
    axe(&b, &axe_js, "sign-in").await;
    shot(&b, "signin").await;
    sign_in(&b, &s, "not-a-token", "/app").await;
    b.wait_js("document.querySelector('.error') && document.querySelector('.error').innerText.includes('not valid')").await;

    // Amy (a writer) signs in and lands on her queue.
    sign_in(&b, &s, AMY, "/app").await;
    b.wait_js("document.querySelector('h1') && document.querySelector('h1').innerText == 'Queue'")
        .await;
    b.visit(&s.at("/app?tab=best")).await;
    let rows = b
        .run("return [...document.querySelectorAll('#queue tbody tr')].map(r => r.cells[0].innerText)")
        .await;
    assert_eq!(rows, json!(["ann@buyer.example"]), "the A leads");
    b.visit(&s.at("/app?tab=all")).await;
    let all = b
        .run("return document.querySelectorAll('#queue tbody tr').length")
        .await;
    assert_eq!(all, json!(3));
    assert_eq!(
        b.run(no_xss()).await,
        json!(true),
        "a hostile key in the queue"
    );
    axe(&b, &axe_js, "queue").await;
    shot(&b, "queue").await;
    // Filters: the form, submitted as a person would.
    b.run("document.querySelector('input[name=grade]').value = 'B'; document.querySelector('form.filters').submit(); return true").await;
    b.wait_js("location.search.includes('grade=B')").await;
    let grades = b
        .run("return [...document.querySelectorAll('#queue tbody tr')].map(r => r.cells[2].innerText)")
        .await;
    assert!(
        !grades.as_array().unwrap().is_empty()
            && grades.as_array().unwrap().iter().all(|g| g == "B"),
        "{grades}"
    );

    // A column's header sorts, keeping the filter.
    b.run("document.querySelector('#queue th:nth-child(5) a').click(); return true")
        .await;
    b.wait_js("location.search.includes('sort=deadline') && location.search.includes('grade=B')")
        .await;

    // Ann's page: the why-panel adds up to her score; the grade's condition; the chart.
    b.visit(&s.at("/app/leads/ann%40buyer.example")).await;
    let why = b
        .run(
            "return {score: +document.querySelector('#score').innerText,
                     sum: +document.querySelector('#sum').innerText,
                     points: [...document.querySelectorAll('#why .points')].reduce((a, td) => a + +td.innerText, 0),
                     grade: document.querySelector('#grade').innerText,
                     matched: document.querySelector('#grade-matched').innerText,
                     chart: !!document.querySelector('svg#history polyline, svg#history circle'),
                     thresholds: document.querySelectorAll('svg#history line.threshold').length}",
        )
        .await;
    assert_eq!(why["points"], why["score"], "{why}");
    assert_eq!(why["sum"], why["score"], "{why}");
    assert_eq!(why["grade"], "A");
    assert!(
        why["matched"]
            .as_str()
            .unwrap()
            .contains("fit + engagement >= 70"),
        "{why}"
    );
    assert_eq!(why["chart"], true);
    let api: Value = c
        .get(s.at("/leads/ann@buyer.example"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(why["score"], api["score"], "the page and the API agree");
    assert_eq!(b.run(no_xss()).await, json!(true));
    assert_eq!(
        b.run("return typeof htmx").await,
        json!("object"),
        "htmx loads under the CSP"
    );
    axe(&b, &axe_js, "lead").await;
    shot(&b, "lead").await;
    // A follow-up, as amy.
    b.run("document.querySelector('form[action$=\"/followups\"] input[name=note]').value = 'called'; document.querySelector('form[action$=\"/followups\"]').submit(); return true").await;
    b.wait_js("location.search.includes('done=followup')").await;
    let api: Value = c
        .get(s.at("/leads/ann@buyer.example"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api["desk"]["followup_by"], "amy@firm.example", "{api}");

    // The hostile lead renders as text.
    b.visit(&s.at(&format!("/app/leads/{}", urlencode(HOSTILE_KEY))))
        .await;
    assert_eq!(
        b.run("return document.querySelector('h1').innerText").await,
        json!(HOSTILE_KEY)
    );
    assert_eq!(b.run(no_xss()).await, json!(true));

    // The rules: the running file, highlighted; a draft with an error, then one that moves
    // ann, checked as typed (htmx).
    b.visit(&s.at("/app/rules")).await;
    let hash = b
        .run("return document.querySelector('#program-hash').innerText")
        .await;
    let health: Value = c
        .get(s.at("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hash, health["program"]);
    assert!(
        b.run("return document.querySelectorAll('#rules-source .hl-kw').length")
            .await
            .as_u64()
            .unwrap()
            > 10
    );
    axe(&b, &axe_js, "rules").await;
    let rules = std::fs::read_to_string(zoho()).unwrap();
    let typed = |text: &str| {
        format!(
            "const t = document.querySelector('#draft'); t.value = {}; t.dispatchEvent(new Event('input', {{bubbles: true}})); return true",
            json!(text)
        )
    };
    b.run(&typed(&rules.replace("grade B when", "grade B whne")))
        .await;
    b.wait_js("document.querySelector('#check-result .diagnostic')")
        .await;
    let diag = b
        .run("return document.querySelector('#check-result .diagnostic').innerText")
        .await;
    let diag = diag.as_str().unwrap();
    assert!(
        diag.contains("error[E") && diag.contains("85:9") && diag.contains('^'),
        "{diag}"
    );
    b.run(&typed(
        &rules.replace("fit + engagement >= 70", "fit + engagement >= 200"),
    ))
    .await;
    b.wait_js("document.querySelector('#preview-summary')")
        .await;
    let moved = b
        .run("return document.querySelector('#preview-summary strong').innerText")
        .await;
    assert_eq!(moved, json!("1"), "ann would leave A");
    assert!(b
        .run("return document.querySelector('.mover').innerText")
        .await
        .as_str()
        .unwrap()
        .contains("ann@buyer.example"));
    axe(&b, &axe_js, "rules with a preview").await;
    b.run("document.querySelector('h2:nth-of-type(1)').scrollIntoView(); return true")
        .await;
    shot(&b, "rules").await;
    let health2: Value = c
        .get(s.at("/healthz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        health2["program"], health["program"],
        "a draft applies nothing"
    );

    // Dead letters, and a retry.
    b.visit(&s.at("/app/notifications")).await;
    let before = b
        .run("return document.querySelectorAll('#dead-letters tbody tr').length")
        .await;
    assert!(before.as_u64().unwrap() >= 1);
    assert!(
        b.run("return document.querySelector('#dead-letters tbody td:nth-child(4)').innerText")
            .await
            .as_str()
            .unwrap()
            .len()
            > 3,
        "the reason is shown"
    );
    axe(&b, &axe_js, "notifications").await;
    shot(&b, "notifications").await;
    b.run("document.querySelector('#dead-letters form').submit(); return true")
        .await;
    b.wait_js("location.search.includes('done=retry')").await;

    // Chinese, by the switch.
    b.visit(&s.at("/app/lang?to=zh-CN&back=/app")).await;
    b.wait_js("document.documentElement.lang == 'zh-CN' && document.querySelector('h1').innerText == '线索队列'").await;
    axe(&b, &axe_js, "queue (zh)").await;
    shot(&b, "queue-zh").await;

    // On a phone: the queue and a lead fit the screen's width (no sideways scrolling).
    b.resize(390, 844).await;
    for page in ["/app?tab=all", "/app/leads/ann%40buyer.example"] {
        b.visit(&s.at(page)).await;
        let wide = b
            .run(
                "return [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
                    .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))",
            )
            .await;
        assert_eq!(wide, json!([]), "{page} is wider than a phone");
    }
    shot(&b, "phone").await;

    // Bo reads: no forms, and a forged action is refused.
    b.delete_cookie("ls_session").await;
    b.delete_cookie("lang").await;
    sign_in(&b, &s, BO, "/app/leads/ann%40buyer.example").await;
    b.wait_js("document.querySelector('#score')").await;
    assert_eq!(
        b.run("return document.querySelectorAll('form[action^=\"/app/leads\"]').length")
            .await,
        json!(0)
    );
    let status = b
        .run_async(
            "const done = arguments[arguments.length - 1];
             fetch('/app/leads/ann%40buyer.example/followups', {method: 'POST',
                   headers: {'content-type': 'application/x-www-form-urlencoded'},
                   body: 'csrf=' + encodeURIComponent(document.querySelector('form[action=\"/app/logout\"] input[name=csrf]').value) + '&type=sales.contacted'})
               .then(r => done(r.status));",
        )
        .await;
    assert_eq!(status, json!(403), "a reader cannot act");
    b.quit().await;
    s.stop();
}

/// Sessions and forms over plain HTTP: the cookie's flags, CSRF on every form, no lead
/// without a session, tokens rotated out end their sessions, an open redirect refused.
#[tokio::test(flavor = "multi_thread")]
async fn console_sessions_and_forms() {
    let dir = tmp("console-http");
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config(&dir)), &env());
    let c = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    seed(&Client::new(), &s).await;
    let r = c
        .get(s.at("/app/leads/ann%40buyer.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/app/login"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );

    let login = |proto: Option<&'static str>, csrf: &'static str, pre: &'static str| {
        let c = c.clone();
        let url = s.at("/app/login");
        async move {
            let mut r = c
                .post(url)
                .header("cookie", format!("ls_pre={pre}"))
                .form(&[("token", AMY), ("csrf", csrf), ("next", "//evil.example/")]);
            if let Some(p) = proto {
                r = r.header("x-forwarded-proto", p);
            }
            r.send().await.unwrap()
        }
    };
    // The sign-in form's own CSRF token must match its cookie.
    assert_eq!(login(None, "abc", "xyz").await.status(), 401);
    let r = login(Some("https"), "abc", "abc").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/app", "no open redirect");
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ls_session="))
        .unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/app"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let plain = login(None, "abc", "abc").await;
    let plain_cookie = plain
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("ls_session="))
        .unwrap();
    assert!(
        !plain_cookie.contains("Secure"),
        "plain HTTP on loopback: {plain_cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = c
        .get(s.at("/app/leads/ann%40buyer.example"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>window.__xss"), "escaped");
    assert!(
        html.contains("&lt;script&gt;") || !html.contains("ACME"),
        "the hostile company is text"
    );
    // A form without the session's CSRF token is refused, whatever the cookie.
    let r = c
        .post(s.at("/app/leads/ann%40buyer.example/followups"))
        .header("cookie", &session)
        .form(&[("csrf", "forged"), ("type", "sales.contacted")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // A tampered cookie is no session.
    let mut forged = session.clone();
    forged.insert(session.find('.').unwrap(), 'x');
    let r = c
        .get(s.at("/app"))
        .header("cookie", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // Guessing tokens: ten attempts a minute from one address, then 429.
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = c
            .post(s.at("/app/login"))
            .header("cookie", "ls_pre=p")
            .form(&[("token", "guess"), ("csrf", "p")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses.contains(&401) && statuses.last() == Some(&429),
        "{statuses:?}"
    );
    s.stop();

    // Amy's token rotated: her session ends.
    let mut rotated = secured();
    rotated.push(("LEADSCORE_READER_AMY", "amy-new-token"));
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config(&dir)), &rotated);
    let r = c
        .get(s.at("/app"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a rotated token's session is over");
    s.stop();
}
