//! The HTTP API over real HTTP on loopback: `leadscore serve` started as a process on a
//! real SQLite file in a temporary directory.

mod common;

use common::*;
use leadscore_http::auth::sign;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn signatures_tokens_validation_and_duplicates() {
    let dir = tmp("auth");
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &secured());
    let c = Client::new();
    let ev = json!([event("e1", "Buyer@Acme.de", "email.opened")]);

    // Unsigned, wrong secret, stale timestamp: 401 with a reason, nothing stored.
    let r = c
        .post(s.at("/events"))
        .body(ev.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    assert!(
        body["detail"].as_str().unwrap().contains("missing"),
        "{body}"
    );
    let r = post_signed(&c, &s, "not-the-secret", now_secs(), &ev).await;
    assert_eq!(r.status(), 401);
    let r = post_signed(&c, &s, SECRET, now_secs() - 301, &ev).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("replayed"));
    // A body changed after signing.
    let ts = now_secs();
    let r = c
        .post(s.at("/events"))
        .header("x-leadscore-timestamp", ts.to_string())
        .header("x-leadscore-signature", sign(SECRET, ts, b"[]"))
        .body(ev.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(get_lead(&c, &s, "buyer@acme.de").await.0, 404);

    // Reads need a bearer token.
    let r = c.get(s.at("/leads/buyer@acme.de")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(s.at("/leads"))
        .bearer_auth("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Signed with the current secret, and with the previous one during a rotation.
    let r = post_signed(&c, &s, SECRET, now_secs(), &ev).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["leads"][0]["lead"], "buyer@acme.de");
    assert_eq!(body["leads"][0]["scores"]["engagement"], 5);
    assert_eq!(body["leads"][0]["transitions"][0]["to"], "C");
    let r = post_signed(
        &c,
        &s,
        OLD_SECRET,
        now_secs(),
        &json!(event("e2", "buyer@acme.de", "email.opened")),
    )
    .await;
    assert_eq!(r.status(), 200);

    // A replay of a signed request inside the window: accepted, not counted again.
    let r = post_signed(&c, &s, SECRET, now_secs(), &ev).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["duplicates"], json!(["e1"]));
    assert_eq!(body["leads"][0]["scores"]["engagement"], 10);

    // All or nothing: one bad event refuses the whole request, naming index and field.
    for (bad, field) in [
        (
            json!({"lead": "x@y.z", "type": "email.opened", "at": iso(now_secs())}),
            "id",
        ),
        (
            json!({"id": "b", "lead": "x@y.z", "type": "email.opened", "at": "yesterday"}),
            "at",
        ),
        (
            json!({"id": "b", "lead": 7, "type": "email.opened", "at": iso(now_secs())}),
            "lead",
        ),
        (
            json!({"id": "b", "lead": "x@y.z", "type": "email.opened", "at": iso(now_secs()), "extra": 1}),
            "extra",
        ),
        (
            json!({"id": "b", "lead": "x@y.z", "type": "email.opened", "at": iso(now_secs() + 3600)}),
            "at",
        ),
    ] {
        let batch = json!([event("good-1", "x@y.z", "email.opened"), bad]);
        let r = post_signed(&c, &s, SECRET, now_secs(), &batch).await;
        assert_eq!(r.status(), 400, "{batch}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid event");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.starts_with(&format!("event 1: {field}")), "{detail}");
    }
    assert_eq!(
        get_lead(&c, &s, "x@y.z").await.0,
        404,
        "nothing of a refused batch is stored"
    );

    // Not JSON; too many events; too large.
    let ts = now_secs();
    let r = c
        .post(s.at("/events"))
        .header("x-leadscore-timestamp", ts.to_string())
        .header("x-leadscore-signature", sign(SECRET, ts, b"{oops"))
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid JSON");
    let many: Vec<Value> = (0..1001)
        .map(|i| event(&format!("m{i}"), "m@y.z", "email.opened"))
        .collect();
    let r = post_signed(&c, &s, SECRET, now_secs(), &json!(many)).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("at most 1000"));
    let huge = json!([{"id": "h", "lead": "h@y.z", "type": "x", "at": iso(now_secs()),
        "props": {"blob": "x".repeat(1024 * 1024)}}]);
    let r = post_signed(&c, &s, SECRET, now_secs(), &huge).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "body too large");

    // The lead as stored, with its explanation and transitions.
    let (status, lead) = get_lead(&c, &s, "BUYER@acme.de").await;
    assert_eq!(status, 200);
    assert_eq!(lead["events"], 2);
    assert_eq!(lead["scores"]["engagement"], 10);
    let total: i64 = lead["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["points"].as_i64().unwrap())
        .sum();
    assert_eq!(total, lead["score"].as_i64().unwrap());
    assert_eq!(lead["transitions"].as_array().unwrap().len(), 1);
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_is_by_score_and_paginated() {
    let dir = tmp("list");
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &[]);
    let c = Client::new();
    let mut batch = Vec::new();
    for i in 0..7 {
        for k in 0..=i {
            batch.push(event(
                &format!("o{i}-{k}"),
                &format!("lead{i}@x.com"),
                "email.opened",
            ));
        }
    }
    let r = c.post(s.at("/events")).json(&batch).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = s.at("/leads?grade=C&limit=3");
        if let Some(a) = &after {
            url.push_str(&format!("&after={}", urlencode(a)));
        }
        let page: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        for l in page["leads"].as_array().unwrap() {
            seen.push((
                l["score"].as_i64().unwrap(),
                l["lead"].as_str().unwrap().to_string(),
            ));
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let scores: Vec<i64> = seen.iter().map(|s| s.0).collect();
    assert_eq!(scores, vec![35, 30, 25, 20, 15, 10, 5]);
    let r = c.get(s.at("/leads?limit=0")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.get(s.at("/leads?grade=A")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["leads"], json!([]));
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_writers_on_one_lead_lose_nothing_and_a_restart_keeps_everything() {
    let dir = tmp("concurrent");
    let rules = dir.join("count.rules");
    std::fs::write(
        &rules,
        "when ping add 1 each\ngrade hot when score >= 6400\ngrade warm otherwise\n",
    )
    .unwrap();
    let db = dir.join("l.db");
    let s = Server::start(&rules, &db, None, &[]);
    let c = Client::new();
    let at = iso(now_secs() - 10);
    let mut tasks = Vec::new();
    for t in 0..32 {
        let c = c.clone();
        let url = s.at("/events");
        let at = at.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                // Every event is sent twice: the second is a duplicate.
                let e = json!({"id": format!("t{t}-{i}"), "lead": "one@lead.com", "type": "ping", "at": at});
                for _ in 0..2 {
                    let r = c.post(&url).json(&e).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, lead) = get_lead(&c, &s, "one@lead.com").await;
    assert_eq!(lead["score"], 6400);
    assert_eq!(lead["events"], 6400);
    assert_eq!(lead["grade"], "hot");
    assert_eq!(
        lead["transitions"].as_array().unwrap().len(),
        2,
        "{}",
        lead["transitions"]
    );
    s.stop();

    // Everything acknowledged survives a restart.
    let s = Server::start(&rules, &db, None, &[]);
    let (_, lead) = get_lead(&c, &s, "one@lead.com").await;
    assert_eq!(lead["score"], 6400);
    assert_eq!(lead["events"], 6400);
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_order_events_rebuild_the_lead() {
    let dir = tmp("order");
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &[]);
    let c = Client::new();
    let t = now_secs() - 3 * 86_400;
    // Three visits within 7 days earn 15 once the earliest arrives last.
    for (id, dt) in [("v3", 2 * 86_400), ("v2", 86_400), ("v1", 0)] {
        let e = json!({"id": id, "lead": "o@x.com", "type": "site.visited", "at": iso(t + dt)});
        assert_eq!(
            c.post(s.at("/events"))
                .json(&e)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    let (_, lead) = get_lead(&c, &s, "o@x.com").await;
    assert_eq!(lead["scores"]["engagement"], 20, "{lead}");
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_in_three_encodings_with_honeypot_mapping_redirect_and_origins() {
    let dir = tmp("forms");
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        r#"
[forms]
allowed_origins = ["https://www.example.com"]
rate_per_minute = 1000

[form.contact]
redirect = "https://www.example.com/thanks"
fields = { "your-email" = "email", "your-country" = "country" }
"#,
    )
    .unwrap();
    let s = Server::start(
        &zoho(),
        &dir.join("l.db"),
        Some(&config),
        &[("LEADSCORE_READ_TOKEN", TOKEN)],
    );
    // A browser names the page it posts from.
    let mut page = reqwest::header::HeaderMap::new();
    page.insert("origin", "https://www.example.com".parse().unwrap());
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(page)
        .build()
        .unwrap();
    // A request naming no page is a script's: refused where an allow-list is set.
    let r = Client::new()
        .post(s.at("/forms/contact"))
        .form(&[("your-email", "script@x.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("no Origin or Referer"));

    // urlencoded, with the per-form mapping and the redirect.
    let r = c
        .post(s.at("/forms/contact"))
        .header("origin", "https://www.example.com")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("your-email=Ann%40Example.com&your-country=DE&title=CEO&_hp=")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "https://www.example.com/thanks");
    let (_, ann) = get_lead(&c, &s, "ann@example.com").await;
    assert_eq!(ann["attributes"]["country"], "DE");
    assert_eq!(ann["attributes"]["email"], "Ann@Example.com");
    assert_eq!(ann["scores"]["fit"], 70, "{ann}");
    assert_eq!(ann["scores"]["engagement"], 10, "contact form: {ann}");

    // multipart (a file input is ignored), no redirect configured for this form: JSON.
    let boundary = "XyZ123";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nbob@example.com\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"country\"\r\n\r\nPL\r\n\
         --{b}\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.txt\"\r\nContent-Type: text/plain\r\n\r\nhello\r\n\
         --{b}--\r\n",
        b = boundary
    );
    let r = c
        .post(s.at("/forms/inquiry"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["leads"][0]["lead"], "bob@example.com");
    assert_eq!(out["leads"][0]["scores"]["engagement"], 20, "inquiry form");
    let (_, bob) = get_lead(&c, &s, "bob@example.com").await;
    assert!(bob["attributes"].get("cv").is_none());

    // JSON, from a page named by its Referer alone.
    let r = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(s.at("/forms/contact"))
        .header("referer", "https://www.example.com/contact?x=1")
        .json(&json!({"your-email": "cy@example.com", "title": "Engineer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, cy) = get_lead(&c, &s, "cy@example.com").await;
    assert_eq!(cy["scores"]["fit"], 15);

    // The honeypot: a success answer, nothing stored.
    let r = c
        .post(s.at("/forms/contact"))
        .form(&[("your-email", "bot@spam.com"), ("_hp", "http://spam")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get_lead(&c, &s, "bot@spam.com").await.0, 404);

    // Another origin is refused; CORS preflight answers for the allowed one.
    let r = c
        .post(s.at("/forms/contact"))
        .header("origin", "https://evil.example")
        .form(&[("your-email", "e@x.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .request(reqwest::Method::OPTIONS, s.at("/forms/contact"))
        .header("origin", "https://www.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://www.example.com"
    );

    // No lead field; an unknown encoding.
    let r = c
        .post(s.at("/forms/contact"))
        .form(&[("title", "CEO")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("`email` is required"));
    let r = c
        .post(s.at("/forms/contact"))
        .header("content-type", "text/plain")
        .body("email=x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn forms_are_rate_limited_per_client() {
    let dir = tmp("rate");
    let config = dir.join("leadscore.toml");
    std::fs::write(&config, "[forms]\nrate_per_minute = 3\n").unwrap();
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config), &[]);
    let c = Client::new();
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = c
            .post(s.at("/forms/contact"))
            .form(&[("email", format!("r{i}@x.com"))])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    s.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn rules_reload_when_the_file_changes_and_a_broken_file_is_refused() {
    let dir = tmp("reload");
    let rules = dir.join("r.rules");
    std::fs::write(&rules, "when ping add 1\ngrade A otherwise\n").unwrap();
    let s = Server::start(&rules, &dir.join("l.db"), None, &[]);
    let c = Client::new();
    let health = |c: Client, url: String| async move {
        c.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["program"]
            .clone()
    };
    let first = health(c.clone(), s.at("/healthz")).await;
    // A broken file: logged, the running program stays.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&rules, "when ping add\n").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !s.log().contains("rules not reloaded") {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health(c.clone(), s.at("/healthz")).await, first);
    // A good file replaces it; a lead stored by the old program is rescored when read.
    let e = json!({"id": "p1", "lead": "r@x.com", "type": "ping", "at": iso(now_secs() - 5)});
    c.post(s.at("/events")).json(&e).send().await.unwrap();
    std::fs::write(&rules, "when ping add 7\ngrade A otherwise\n").unwrap();
    while health(c.clone(), s.at("/healthz")).await == first {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, lead) = get_lead(&c, &s, "r@x.com").await;
    assert_eq!(lead["score"], 7);
    // An atomic save (a new file renamed over the old one, as editors and deploys do).
    let second = health(c.clone(), s.at("/healthz")).await;
    let tmp_file = dir.join("r.rules.tmp");
    std::fs::write(&tmp_file, "when ping add 9\ngrade A otherwise\n").unwrap();
    std::fs::rename(&tmp_file, &rules).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while health(c.clone(), s.at("/healthz")).await == second {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, lead) = get_lead(&c, &s, "r@x.com").await;
    assert_eq!(lead["score"], 9);
    s.stop();
}

/// A real browser (Debian's Chromium, headless) loads a page from another origin whose
/// form posts to `/forms/contact`; the lead arrives with the form's fields.
#[tokio::test(flavor = "multi_thread")]
async fn a_headless_browser_submits_an_html_form() {
    let dir = tmp("browser");
    let config = dir.join("leadscore.toml");
    // The page's origin is only known once its server runs: the allow-list names it.
    let (listener, origin) = Site::reserve();
    std::fs::write(
        &config,
        format!("[forms]\nallowed_origins = [\"{origin}\"]\n"),
    )
    .unwrap();
    let s = Server::start(
        &zoho(),
        &dir.join("l.db"),
        Some(&config),
        &[("LEADSCORE_READ_TOKEN", TOKEN)],
    );
    let html = format!(
        r#"<!doctype html><html><body>
<form method="post" action="{action}">
  <input name="email" type="email" value="Browser@Example.com">
  <input name="title" value="Purchasing Manager">
  <select name="country"><option>PL</option><option selected>DE</option></select>
  <textarea name="message">We need 500 pcs</textarea>
  <input name="_hp" tabindex="-1" autocomplete="off" style="position:absolute;left:-9999px">
  <button>Send</button>
</form>
<script>window.addEventListener("load", () => document.forms[0].requestSubmit());</script>
</body></html>"#,
        action = s.at("/forms/contact")
    );
    let site = Site::serve(listener, origin, vec![("/", html)]);
    let dom = browse(&site.at("/"), &dir.join("chromium-profile"), 10_000, None);
    let c = Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let lead = loop {
        let (status, lead) = get_lead(&c, &s, "browser@example.com").await;
        if status == 200 {
            break lead;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lead from the browser\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(lead["attributes"]["country"], "DE");
    assert_eq!(lead["attributes"]["message"], "We need 500 pcs");
    assert!(lead["attributes"].get("_hp").is_none());
    // DE 30 + decider 30 + west 10; contact form 10 + quantity in the message 15.
    assert_eq!(lead["scores"]["fit"], 70, "{lead}");
    assert_eq!(lead["scores"]["engagement"], 25, "{lead}");
    // The browser's answer is the JSON of the accepted post (the DOM it navigated to).
    assert!(dom.contains("browser@example.com"));
    s.stop();
}

/// Killed without warning (SIGKILL) while writers are busy: every acknowledged event is
/// there after a restart, and nothing is counted twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_crash_loses_nothing_that_was_acknowledged() {
    let dir = tmp("crash");
    let rules = dir.join("count.rules");
    std::fs::write(&rules, "when ping add 1 each\ngrade A otherwise\n").unwrap();
    let db = dir.join("l.db");
    let mut s = Server::start(&rules, &db, None, &[]);
    let c = Client::new();
    let at = iso(now_secs() - 10);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (c, url, at, acked) = (c.clone(), s.at("/events"), at.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let id = format!("k{t}-{i}");
                let e = json!({"id": id, "lead": "crash@lead.com", "type": "ping", "at": at});
                match c.post(&url).json(&e).send().await {
                    Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                    _ => break,
                }
            }
        }));
    }
    // Killed once enough writes are acknowledged (not after a fixed time: a loaded
    // machine acknowledges fewer a second), with writers still in flight.
    let started = std::time::Instant::now();
    while acked.lock().unwrap().len() <= 60 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.child.kill().unwrap(); // SIGKILL
    s.child.wait().unwrap();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 50, "only {} acknowledged", acked.len());
    let s = Server::start(&rules, &db, None, &[]);
    let (_, lead) = get_lead(&c, &s, "crash@lead.com").await;
    let events = lead["events"].as_u64().unwrap() as usize;
    assert!(
        events >= acked.len(),
        "{events} stored < {} acknowledged",
        acked.len()
    );
    assert!(
        events <= acked.len() + 16,
        "at most one unacknowledged event per writer"
    );
    assert_eq!(lead["score"].as_u64().unwrap() as usize, events);
    // Re-sending everything acknowledged changes nothing.
    for id in acked.iter().take(200) {
        let e = json!({"id": id, "lead": "crash@lead.com", "type": "ping", "at": at});
        let r: Value = c
            .post(s.at("/events"))
            .json(&e)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(r["accepted"], 0);
    }
    let (_, again) = get_lead(&c, &s, "crash@lead.com").await;
    assert_eq!(again["events"], lead["events"]);
    s.stop();
}

/// `leadscore sweep` records a time transition at the instant inactivity began, once.
#[tokio::test(flavor = "multi_thread")]
async fn sweep_records_time_transitions_in_the_sqlite_store() {
    let dir = tmp("sweep");
    let rules = dir.join("r.rules");
    std::fs::write(&rules, "when ping add 50\nwhen inactive for 30d subtract 40\ngrade A when score >= 50\ngrade B otherwise\n").unwrap();
    let db = dir.join("l.db");
    let s = Server::start(&rules, &db, None, &[]);
    let c = Client::new();
    let at = now_secs() - 86_400;
    let e = json!({"id": "p", "lead": "s@x.com", "type": "ping", "at": iso(at)});
    assert_eq!(
        c.post(s.at("/events"))
            .json(&e)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    s.stop();
    let sweep = |now: i64| {
        let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args([
                "sweep",
                rules.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
                "--now",
                &iso(now),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(sweep(at + 29 * 86_400).starts_with("0 lead(s) swept"));
    assert!(sweep(at + 31 * 86_400).starts_with("1 lead(s) swept"));
    assert!(sweep(at + 32 * 86_400).starts_with("0 lead(s) swept"));
    let s = Server::start(&rules, &db, None, &[]);
    let (_, lead) = get_lead(&c, &s, "s@x.com").await;
    let t = &lead["transitions"].as_array().unwrap()[1];
    assert_eq!(
        (t["from"].as_str(), t["to"].as_str(), t["cause"].as_str()),
        (Some("A"), Some("B"), Some("time"))
    );
    assert_eq!(t["at"], iso(at + 30 * 86_400));
    s.stop();
}

/// After a rules change `serve` rescores the stored leads in the background, recording
/// grade changes with cause "rescore"; `POST /admin/rescore` (signed) then finds nothing
/// to do. `leadscore rescore` does the same on the database file.
#[tokio::test(flavor = "multi_thread")]
async fn rescore_after_a_rules_change_pages_through_every_lead_once() {
    let dir = tmp("rescore");
    let rules = dir.join("r.rules");
    let db = dir.join("l.db");
    std::fs::write(
        &rules,
        "when ping add 10 each\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let s = Server::start(&rules, &db, None, &secured());
    let c = Client::new();
    let now = now_secs();
    let pings = json!([
        {"id": "a1", "lead": "a@x.com", "type": "ping", "at": iso(now - 30)},
        {"id": "a2", "lead": "a@x.com", "type": "ping", "at": iso(now - 20)},
        {"id": "b1", "lead": "b@x.com", "type": "ping", "at": iso(now - 10)},
    ]);
    assert_eq!(post_signed(&c, &s, SECRET, now, &pings).await.status(), 200);
    let program = |c: Client, url: String| async move {
        c.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["program"]
            .clone()
    };
    let first = program(c.clone(), s.at("/healthz")).await;
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        &rules,
        "when ping add 5 each\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while program(c.clone(), s.at("/healthz")).await == first {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let rescore = |body: Value, secret: &'static str| {
        let c = c.clone();
        let url = s.at("/admin/rescore");
        async move {
            let body = body.to_string();
            let ts = now_secs();
            let r = c
                .post(&url)
                .header("x-leadscore-timestamp", ts.to_string())
                .header(
                    "x-leadscore-signature",
                    common::sign_v2(secret, ts, "POST", &url, body.as_bytes()),
                )
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = rescore(json!({}), "forged").await;
    assert_eq!(status, 401);
    let (status, err) = rescore(json!({"limit": 0}), SECRET).await;
    assert_eq!(status, 400, "{err}");

    // The reload rescored the stored leads in the background: the listing and the lead
    // agree without anyone asking.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed: Value = c
            .get(s.at("/leads?grade=B"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let leads = listed["leads"].as_array().unwrap();
        // The walk's last line is logged after its last lead is written.
        if s.log().contains("stored leads rescored")
            && leads.len() == 2
            && leads
                .iter()
                .any(|l| l["lead"] == "a@x.com" && l["score"] == 10)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{listed}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Pages of one find everything current.
    let (mut current, mut pages) = (0, 0);
    let mut body = json!({"limit": 1});
    loop {
        let (status, page) = rescore(body.clone(), SECRET).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["rescored"], 0, "{page}");
        current += page["current"].as_u64().unwrap();
        pages += 1;
        assert!(pages < 10, "{page}");
        match page["next"].as_str() {
            Some(next) => body = json!({"limit": 1, "after": next}),
            None => break,
        }
    }
    assert_eq!(current, 2);

    let (_, a) = get_lead(&c, &s, "a@x.com").await;
    assert_eq!(
        (a["score"].clone(), a["grade"].clone()),
        (json!(10), json!("B"))
    );
    let last = a["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["cause"].clone(),
            last["from"].clone(),
            last["to"].clone()
        ),
        (json!("rescore"), json!("A"), json!("B"))
    );
    let (_, b) = get_lead(&c, &s, "b@x.com").await;
    assert_eq!(b["transitions"].as_array().unwrap().len(), 1, "{b}");

    // Everything is current: nothing to do.
    let (_, page) = rescore(json!({}), SECRET).await;
    assert_eq!(
        (page["rescored"].clone(), page["current"].clone()),
        (json!(0), json!(2))
    );
    s.stop();

    // The same from the command line, on the file, with rules that put both in A.
    let newer = dir.join("newer.rules");
    std::fs::write(
        &newer,
        "when ping add 20 each\ngrade A when score >= 20\ngrade B otherwise\n",
    )
    .unwrap();
    let cli = |file: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args([
                "rescore",
                file.to_str().unwrap(),
                "--db",
                db.to_str().unwrap(),
                "--batch",
                "1",
            ])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        cli(&newer),
        "2 lead(s) rescored, 2 changed grade (a rescore transition each), 0 already current\n"
    );
    assert_eq!(
        cli(&newer),
        "0 lead(s) rescored, 0 changed grade (a rescore transition each), 2 already current\n"
    );
}

/// `leadscore serve --shadow`: the shadow rules' view of a lead is shown beside the live
/// one and never causes a transition.
#[tokio::test(flavor = "multi_thread")]
async fn serve_with_shadow_rules_shows_both_views() {
    let dir = tmp("shadow");
    let (live, shadow) = (dir.join("live.rules"), dir.join("shadow.rules"));
    std::fs::write(
        &live,
        "when ping add 10 each\ngrade A when score >= 30\ngrade B otherwise\n",
    )
    .unwrap();
    std::fs::write(
        &shadow,
        "when ping add 20 each\ngrade A when score >= 30\ngrade B otherwise\n",
    )
    .unwrap();
    let s = Server::start_with(
        &live,
        &dir.join("l.db"),
        &["--shadow".as_ref(), shadow.as_os_str()],
        &secured(),
    );
    let c = Client::new();
    let now = now_secs();
    let pings = json!([
        {"id": "p1", "lead": "s@x.com", "type": "ping", "at": iso(now - 20)},
        {"id": "p2", "lead": "s@x.com", "type": "ping", "at": iso(now - 10)},
    ]);
    assert_eq!(post_signed(&c, &s, SECRET, now, &pings).await.status(), 200);
    let (status, lead) = get_lead(&c, &s, "s@x.com").await;
    assert_eq!(status, 200);
    assert_eq!(
        (lead["score"].clone(), lead["grade"].clone()),
        (json!(20), json!("B"))
    );
    assert_eq!(
        (
            lead["shadow"]["score"].clone(),
            lead["shadow"]["grade"].clone()
        ),
        (json!(40), json!("A"))
    );
    let transitions = lead["transitions"].as_array().unwrap();
    assert_eq!(
        transitions.len(),
        1,
        "only the live rules move grades: {lead}"
    );
    assert_eq!(transitions[0]["to"], "B");
    assert!(s.log().contains("shadow rules loaded"));
    s.stop();

    // Live against shadow over the stored data, before switching over.
    let db = dir.join("l.db");
    let out = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args(["backtest", live.to_str().unwrap(), shadow.to_str().unwrap()])
        .args(["--db", db.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["leads"], 1);
    assert_eq!(
        report["changes"]["matrix"],
        json!([{"from": "B", "to": "A", "leads": 1}])
    );
    assert_eq!(report["changes"]["movers"][0]["delta"], 20);
}

/// `leadscore serve --variant --variant-share`: an A/B split; with a 100% share every lead
/// is in arm B and scored by the variant; a bad share is refused before serving.
#[tokio::test(flavor = "multi_thread")]
async fn serve_with_an_ab_split_scores_leads_by_their_arm() {
    let dir = tmp("variant");
    let (live, variant) = (dir.join("live.rules"), dir.join("variant.rules"));
    std::fs::write(
        &live,
        "when ping add 10 each\ngrade A when score >= 30\ngrade B otherwise\n",
    )
    .unwrap();
    std::fs::write(
        &variant,
        "when ping add 30 each\ngrade A when score >= 30\ngrade B otherwise\n",
    )
    .unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_leadscore"))
        .args([
            "serve",
            live.to_str().unwrap(),
            "--variant",
            variant.to_str().unwrap(),
            "--variant-share",
            "150",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr)
        .contains("--variant-share: 150: a share is between 0 and 100 percent"));

    let s = Server::start_with(
        &live,
        &dir.join("l.db"),
        &[
            "--variant".as_ref(),
            variant.as_os_str(),
            "--variant-share".as_ref(),
            "100".as_ref(),
        ],
        &secured(),
    );
    let c = Client::new();
    let now = now_secs();
    let ping = json!({"id": "p1", "lead": "v@x.com", "type": "ping", "at": iso(now - 5)});
    assert_eq!(post_signed(&c, &s, SECRET, now, &ping).await.status(), 200);
    let (_, lead) = get_lead(&c, &s, "v@x.com").await;
    assert_eq!(
        (
            lead["arm"].clone(),
            lead["score"].clone(),
            lead["grade"].clone()
        ),
        (json!("B"), json!(30), json!("A"))
    );
    assert!(s.log().contains("A/B split"));
    s.stop();
}

/// The hostile-input catalogue against a running server: each request gets a clear 4xx
/// (status and reason) within bounded time, nothing is stored, and the server keeps
/// serving everyone else, a client that never finishes its headers included.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_clear_refusals_and_store_nothing() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tmp("hostile");
    let config = dir.join("leadscore.toml");
    std::fs::write(&config, "[limits]\nrequest_timeout_secs = 2\n").unwrap();
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config), &secured());
    let c = Client::new();
    let now = now_secs();
    let signed = |body: Vec<u8>| {
        let c = c.clone();
        let url = s.at("/events");
        async move {
            let ts = now_secs();
            let r = c
                .post(url)
                .header("content-type", "application/json")
                .header("x-leadscore-timestamp", ts.to_string())
                .header("x-leadscore-signature", sign(SECRET, ts, &body))
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let event = |lead: String, extra: Value| {
        let mut e = json!({"id": "h1", "lead": lead, "type": "form.submitted", "at": iso(now - 5)});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        serde_json::to_vec(&e).unwrap()
    };
    let many_attributes: serde_json::Map<String, Value> =
        (0..1000).map(|i| (format!("a{i}"), json!("x"))).collect();
    let mut invalid_utf8 = event("u@x.com".into(), json!({}));
    let at = invalid_utf8.iter().position(|&b| b == b'u').unwrap();
    invalid_utf8[at] = 0xff;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("JSON nested 10,000 deep", format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), 400, "invalid JSON"),
        ("100,000 events in one array", format!("[{}{{}}]", "{},".repeat(99_999)).into_bytes(), 400, "invalid event"),
        ("invalid UTF-8", invalid_utf8, 400, "invalid JSON"),
        ("a NUL byte in the lead key", event("a\u{0}b@x.com".into(), json!({})), 400, "invalid event"),
        ("a number beyond f64", br#"{"id":"n","lead":"n@x.com","type":"t","at":"2026-01-01T00:00:00Z","attributes":{"x":1e400}}"#.to_vec(), 400, "invalid JSON"),
        ("a year out of range", event("y@x.com".into(), json!({"at": "99999-01-01T00:00:00Z"})), 400, "invalid event"),
        ("a timestamp as a huge number", event("y@x.com".into(), json!({"at": 1e300})), 400, "invalid event"),
        ("a 10 KB lead key", event("k".repeat(10 * 1024), json!({})), 400, "invalid event"),
        ("1,000 attributes", event("m@x.com".into(), json!({"attributes": many_attributes})), 400, "invalid event"),
    ];
    for (what, body, status, error) in cases {
        let started = std::time::Instant::now();
        let (got, answer) = signed(body).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"], error, "{what}: {answer}");
        assert!(
            answer["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {answer}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            started.elapsed()
        );
    }

    // A 10 MB body: refused with 413 as soon as it passes the limit. The server may close
    // the connection while the client is still writing the rest, so the client sees either
    // the 413 or a broken pipe; either way nothing is stored and the server carries on.
    let ts = now_secs();
    let huge = vec![b' '; 10 * 1024 * 1024];
    match c
        .post(s.at("/events"))
        .header("x-leadscore-timestamp", ts.to_string())
        .header("x-leadscore-signature", sign(SECRET, ts, &huge))
        .body(huge)
        .send()
        .await
    {
        Ok(r) => {
            assert_eq!(r.status(), 413);
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "body too large");
        }
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    assert_eq!(c.get(s.at("/healthz")).send().await.unwrap().status(), 200);

    // An unknown content type on a form.
    let r = c
        .post(s.at("/forms/contact"))
        .header("content-type", "application/xml")
        .body("<lead/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);

    let addr = s
        .at("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    // A client that never finishes its headers holds nothing up.
    let mut stuck = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stuck
        .write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .unwrap();
    // A body sent a byte a second is cut off at the request timeout with 408.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{").await.unwrap();
    let (health, _) = tokio::join!(
        async { c.get(s.at("/healthz")).send().await.unwrap().status() },
        tokio::time::sleep(Duration::from_millis(100))
    );
    assert_eq!(health, 200, "served while two clients dawdle");
    let started = std::time::Instant::now();
    let mut answer = Vec::new();
    let reader = async {
        for _ in 0..10 {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), reader).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(8));
    drop(stuck);

    // Nothing was stored.
    let r = c
        .get(s.at("/leads"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["leads"], json!([]));
    s.stop();
}

/// Data rights: export shows everything stored about a lead; DELETE (signed) erases it
/// and is idempotent; afterwards a scan of every table of the database finds the key
/// nowhere, and the erasure record holds only the key's hash. The CLI does the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_lead_is_exported_then_erased_leaving_nothing_behind() {
    let dir = tmp("erase");
    let db = dir.join("l.db");
    let s = Server::start(&zoho(), &db, None, &secured());
    let c = Client::new();
    let now = now_secs();
    let lead = "Private.Person@Example.com";
    let evs = json!([
        {"id": "x1", "lead": lead, "type": "form.submitted", "at": iso(now - 20),
         "attributes": {"country": "DE", "phone": "+49 30 1234567"}, "props": {"form": "inquiry"}},
        {"id": "x2", "lead": lead, "type": "email.opened", "at": iso(now - 10)},
    ]);
    assert_eq!(post_signed(&c, &s, SECRET, now, &evs).await.status(), 200);
    let other =
        json!({"id": "o1", "lead": "someone@else.com", "type": "email.opened", "at": iso(now - 5)});
    assert_eq!(post_signed(&c, &s, SECRET, now, &other).await.status(), 200);

    let r = c
        .get(s.at(&format!("/leads/{lead}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "export needs the read token");
    let r = c
        .get(s.at(&format!("/leads/{lead}/export")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["lead"]["lead"], "private.person@example.com");
    assert_eq!(export["lead"]["attributes"]["phone"], "+49 30 1234567");
    assert_eq!(export["events"].as_array().unwrap().len(), 2);

    let delete = |secret: &'static str| {
        let c = c.clone();
        let url = s.at(&format!("/leads/{lead}"));
        async move {
            let ts = now_secs();
            let r = c
                .delete(&url)
                .header("x-leadscore-timestamp", ts.to_string())
                .header(
                    "x-leadscore-signature",
                    common::sign_v2(secret, ts, "DELETE", &url, b""),
                )
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(delete("forged").await.0, 401);
    let (status, erased) = delete(SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(
        erased,
        json!({"lead": "private.person@example.com", "erased": {"state": true, "events": 2, "transitions": 1, "links": 0}})
    );
    let (status, again) = delete(SECRET).await;
    assert_eq!(status, 200);
    assert_eq!(
        again["erased"],
        json!({"state": false, "events": 0, "transitions": 0, "links": 0})
    );
    assert_eq!(get_lead(&c, &s, lead).await.0, 404);
    assert_eq!(
        get_lead(&c, &s, "someone@else.com").await.0,
        200,
        "others untouched"
    );
    s.stop();

    // Scan the store: the key, in any case, and the phone number are nowhere.
    assert_nowhere(&db, &["private.person", "1234567"]);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let records: i64 = conn
        .query_row("SELECT count(*) FROM erasures", [], |r| r.get(0))
        .unwrap();
    assert_eq!(records, 1);
    drop(conn);

    // The CLI: export and erase on the file.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_leadscore"))
            .args(args)
            .output()
            .unwrap()
    };
    let db_s = db.to_str().unwrap();
    let zoho = zoho();
    let out = cli(&[
        "export",
        zoho.to_str().unwrap(),
        "someone@else.com",
        "--db",
        db_s,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["events"][0]["id"], "o1");
    let out = cli(&["erase", "SOMEONE@else.com", "--db", db_s]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "erased `someone@else.com`: its state, 1 event(s) and 1 transition(s)\n"
    );
    let out = cli(&["erase", "someone@else.com", "--db", db_s]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "nothing stored for `someone@else.com`: nothing erased\n"
    );
    let out = cli(&[
        "export",
        zoho.to_str().unwrap(),
        "someone@else.com",
        "--db",
        db_s,
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// Sender adapters with the vendors' own sample payloads: SendGrid's Event Webhook,
/// verified with its ECDSA signature (a test key pair here), and Mailchimp's list webhook
/// with the key in the URL; each stored once however often it is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn sendgrid_and_mailchimp_webhooks_become_events() {
    let sendgrid = SendGridKey::new(7);
    let dir = tmp("hooks");
    let mut env = secured();
    env.push((
        "LEADSCORE_SENDGRID_PUBLIC_KEY",
        Box::leak(sendgrid.public.clone().into_boxed_str()),
    ));
    env.push(("LEADSCORE_MAILCHIMP_KEY", "mc-key-123"));
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &env);
    let c = Client::new();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hooks");
    let body = std::fs::read(data.join("sendgrid_events.json")).unwrap();

    let post = |sig: Option<String>, body: Vec<u8>| {
        let c = c.clone();
        let url = s.at("/hooks/sendgrid");
        async move {
            let mut r = c.post(url).header("content-type", "application/json");
            if let Some(sig) = sig {
                r = r
                    .header("x-twilio-email-event-webhook-signature", sig)
                    .header("x-twilio-email-event-webhook-timestamp", "1700000000");
            }
            let r = r.body(body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let sign_body = |body: &[u8]| sendgrid.sign("1700000000", body);
    assert_eq!(post(None, body.clone()).await.0, 401);
    let mut tampered = body.clone();
    let i = tampered.iter().position(|&b| b == b'9').unwrap();
    tampered[i] = b'8';
    assert_eq!(
        post(Some(sign_body(&body)), tampered).await.0,
        401,
        "signature over other bytes"
    );

    let (status, answer) = post(Some(sign_body(&body)), body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    // open, click, bounce, spamreport, unsubscribe, group_unsubscribe; delivery
    // bookkeeping and the resubscribe are skipped.
    assert_eq!(answer["accepted"], 6, "{answer}");
    assert_eq!(answer["skipped"], 5, "{answer}");
    let (_, again) = post(Some(sign_body(&body)), body.clone()).await;
    assert_eq!(
        (
            again["accepted"].clone(),
            again["duplicates"].as_array().unwrap().len()
        ),
        (json!(0), 6)
    );
    let (status, lead) = get_lead(&c, &s, "example@test.com").await;
    assert_eq!(status, 200);
    assert_eq!(lead["events"], 6);
    let rules: Vec<&str> = lead["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"when email.opened add 5 each to engagement"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"when email.clicked add 10 each to engagement"),
        "{rules:?}"
    );

    // Mailchimp: the URL's key, the validation GET, the sample posts.
    let mc = |key: &str| s.at(&format!("/hooks/mailchimp?key={key}"));
    assert_eq!(c.get(mc("wrong")).send().await.unwrap().status(), 401);
    assert_eq!(c.get(mc("mc-key-123")).send().await.unwrap().status(), 200);
    let form = |file: &str| std::fs::read_to_string(data.join(file)).unwrap();
    let post_mc = |key: &'static str, body: String| {
        let c = c.clone();
        let url = mc(key);
        async move {
            let r = c
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    assert_eq!(
        post_mc("wrong", form("mailchimp_subscribe.txt")).await.0,
        401
    );
    let (status, answer) = post_mc("mc-key-123", form("mailchimp_subscribe.txt")).await;
    assert_eq!(
        (status, answer["accepted"].clone()),
        (200, json!(1)),
        "{answer}"
    );
    let (_, again) = post_mc("mc-key-123", form("mailchimp_subscribe.txt")).await;
    assert_eq!(again["accepted"], 0, "a redelivery is a duplicate");
    let (_, lead) = get_lead(&c, &s, "api@mailchimp.com").await;
    assert_eq!(lead["attributes"]["fname"], "Mailchimp");
    assert_eq!(lead["first_at"], "2009-03-26T21:35:57Z");
    let (_, answer) = post_mc("mc-key-123", form("mailchimp_unsubscribe.txt")).await;
    assert_eq!(answer["accepted"], 1, "{answer}");
    let (_, lead) = get_lead(&c, &s, "api+unsub@mailchimp.com").await;
    assert_eq!(lead["events"], 1);
    s.stop();

    // Without keys the adapters are off.
    let plain = Server::start(&zoho(), &dir.join("p.db"), None, &secured());
    let r = c
        .post(plain.at("/hooks/sendgrid"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not configured");
    plain.stop();
}

/// Rules that once crashed `serve` on reload (its stack overflowed) or took it minutes:
/// 1,000 nested `if` blocks, a sum of 5,000 scores, 8,000 sets never used. Each is
/// refused with its diagnostic, and the server keeps answering with the rules it has.
#[tokio::test(flavor = "multi_thread")]
async fn pathological_rules_are_refused_on_reload_and_the_server_keeps_answering() {
    let dir = tmp("pathological");
    let rules = dir.join("r.rules");
    std::fs::write(&rules, "when ping add 1\ngrade A otherwise\n").unwrap();
    let s = Server::start(&rules, &dir.join("l.db"), None, &[]);
    let c = Client::new();
    let program = |c: Client, url: String| async move {
        let r = c.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["program"].clone()
    };
    let first = program(c.clone(), s.at("/healthz")).await;
    let files = [
        ("E0005", leadscore_test_rules::nested_ifs(1000)),
        ("E0007", leadscore_test_rules::long_sum(5000)),
    ];
    for (n, (code, text)) in files.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(1100));
        std::fs::write(&rules, text).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while s.log().matches("rules not reloaded").count() <= n {
            assert!(std::time::Instant::now() < deadline, "{}", s.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(s.log().contains(code), "{code}: {}", s.log());
        assert_eq!(program(c.clone(), s.at("/healthz")).await, first);
    }
    // Thousands of warnings: accepted (they are warnings), quickly.
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(&rules, leadscore_test_rules::unused_sets(8000)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while program(c.clone(), s.at("/healthz")).await == first {
        assert!(std::time::Instant::now() < deadline, "{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.stop();
}

/// Generators for rules files no one should write, shared with compiler/tests/robustness.rs.
mod leadscore_test_rules {
    include!("../compiler/tests/common/pathological.rs");
}

/// Clients that open a connection and never finish their request head — silent, or
/// stopping half-way through their headers — are closed within
/// `[limits] header_timeout_secs`, while a well-behaved client keeps getting answers.
#[tokio::test(flavor = "multi_thread")]
async fn half_open_connections_are_dropped_and_healthz_keeps_answering() {
    use std::io::{Read, Write};
    let dir = tmp("half-open");
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        "[limits]\nheader_timeout_secs = 2\nmax_connections = 600\n",
    )
    .unwrap();
    let s = Server::start(&common::zoho(), &dir.join("l.db"), Some(&config), &[]);
    let c = Client::new();
    assert_eq!(c.get(s.at("/healthz")).send().await.unwrap().status(), 200);
    let addr = s.at("").trim_start_matches("http://").to_string();
    let opened = std::time::Instant::now();
    let mut idle: Vec<std::net::TcpStream> = (0..500)
        .map(|i| {
            let mut t = std::net::TcpStream::connect(&addr).unwrap();
            if i % 2 == 0 {
                // Half of them start a request and never finish its head.
                t.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                    .unwrap();
            }
            t
        })
        .collect();
    // While they hang, a well-behaved client is answered (fresh connections each time).
    for _ in 0..5 {
        let fresh = Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let r = fresh.get(s.at("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Within the timeout (and a margin), every one of them has been closed by the server.
    for t in &mut idle {
        t.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 1024];
        // EOF, or an error answer (408) then EOF: closed either way, never left hanging.
        loop {
            match t.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a half-open connection is still open: {e}"),
            }
        }
    }
    assert!(
        opened.elapsed() < Duration::from_secs(12),
        "{:?}",
        opened.elapsed()
    );
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.stop();
}

/// Past `[limits] max_connections` a connection is closed as soon as it is accepted, so
/// descriptors are never exhausted; when one closes, the next is served.
#[tokio::test(flavor = "multi_thread")]
async fn connections_past_the_bound_are_closed_at_once() {
    use leadscore_http::{config::Limits, listen, router, App, Config};
    use std::io::{Read, Write};
    let program = leadscore_compiler::compile("when ping add 1\ngrade A otherwise\n", "t")
        .unwrap()
        .program;
    let service = std::sync::Arc::new(leadscore_service::Service::new(
        program,
        std::sync::Arc::new(leadscore_store::memory::MemoryStore::new()),
    ));
    let limits = Limits {
        header_timeout_secs: 60,
        max_connections: 2,
        ..Limits::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let r = router(App::new(service, Config::default()));
    tokio::spawn(async move { listen::serve(listener, r, &limits, std::future::pending()).await });
    let held: Vec<std::net::TcpStream> = (0..2)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ask = move || {
        let mut t = std::net::TcpStream::connect(addr).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = t.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let mut got = Vec::new();
        let _ = t.read_to_end(&mut got);
        String::from_utf8_lossy(&got).into_owned()
    };
    let third = tokio::task::spawn_blocking(ask).await.unwrap();
    assert_eq!(third, "", "the third connection was served");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = tokio::task::spawn_blocking(ask).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// The trust model of docs/security.md: a public form adds to what signed senders said and
/// never overwrites it, never sets a protected field (`field sales_bonus protected` in
/// seed 001's rules) nor one it does not declare, a beacon names no lead unless
/// `[track] identify` is on, and public inputs naming one lead are bounded per hour
/// whatever their addresses.
#[tokio::test(flavor = "multi_thread")]
async fn public_inputs_add_to_what_signed_senders_said_and_set_nothing_protected() {
    let dir = tmp("trust");
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        r#"
[forms]
allowed_origins = ["https://www.example.com"]
rate_per_minute = 1000
rate_per_lead_per_hour = 6

[forms.survey]
fields = ["country", "company"]
"#,
    )
    .unwrap();
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&config), &secured());
    let c = Client::new();
    let form = |name: &str, fields: &[(&str, &str)]| {
        c.post(s.at(&format!("/forms/{name}")))
            .header("origin", "https://www.example.com")
            .form(fields)
            .send()
    };
    let attrs = |lead: &Value| lead["attributes"].clone();
    let signed = |id: &str, lead: &str, attributes: Value| {
        json!([{"id": id, "lead": lead, "type": "lead.updated", "at": iso(now_secs() - 30),
                "attributes": attributes}])
    };

    // A lead the CRM knows: country, title and the salesperson's bonus.
    let r = post_signed(
        &c,
        &s,
        SECRET,
        now_secs(),
        &signed(
            "crm-1",
            "ann@acme.de",
            json!({"country": "DE", "title": "CEO", "sales_bonus": 20}),
        ),
    )
    .await;
    assert_eq!(r.status(), 200);
    let (_, before) = get_lead(&c, &s, "ann@acme.de").await;
    assert_eq!(before["scores"]["fit"], 90, "{before}");

    // Someone posts the website's form in Ann's name: what the CRM said stays, what no
    // one said is added, the bonus and an undeclared field are left out and named.
    let r = form(
        "contact",
        &[
            ("email", "ann@acme.de"),
            ("country", "PL"),
            ("title", "Intern"),
            ("sales_bonus", "5"),
            ("product", "LED Panel"),
            ("favourite_colour", "red"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let out: Value = r.json().await.unwrap();
    let mut ignored: Vec<String> = serde_json::from_value(out["ignored"].clone()).unwrap();
    ignored.sort();
    assert_eq!(ignored, ["favourite_colour", "sales_bonus"]);
    let (_, ann) = get_lead(&c, &s, "ann@acme.de").await;
    let a = attrs(&ann);
    assert_eq!(
        (&a["country"], &a["title"], &a["sales_bonus"], &a["product"]),
        (&json!("DE"), &json!("CEO"), &json!(20), &json!("LED Panel")),
        "{ann}"
    );
    assert!(a.get("favourite_colour").is_none());
    assert!(
        ann["scores"]["fit"].as_i64() > before["scores"]["fit"].as_i64(),
        "the product was added: {ann}"
    );

    // A lead only the website knows: the visitor may correct what the website said, not
    // what the CRM says later; the bonus never comes from a form.
    let r = form(
        "contact",
        &[
            ("email", "bob@acme.de"),
            ("country", "PL"),
            ("sales_bonus", "20"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let (_, bob) = get_lead(&c, &s, "bob@acme.de").await;
    assert_eq!(attrs(&bob)["country"], "PL");
    assert!(attrs(&bob).get("sales_bonus").is_none(), "{bob}");
    form("contact", &[("email", "bob@acme.de"), ("country", "DE")])
        .await
        .unwrap();
    assert_eq!(
        attrs(&get_lead(&c, &s, "bob@acme.de").await.1)["country"],
        "DE"
    );
    let r = post_signed(
        &c,
        &s,
        SECRET,
        now_secs(),
        &signed("crm-2", "bob@acme.de", json!({"country": "CN"})),
    )
    .await;
    assert_eq!(r.status(), 200);
    form("contact", &[("email", "bob@acme.de"), ("country", "DE")])
        .await
        .unwrap();
    assert_eq!(
        attrs(&get_lead(&c, &s, "bob@acme.de").await.1)["country"],
        "CN"
    );

    // A signed sender may mark its own events public (a website backend relaying forms).
    let relayed = json!([{"id": "relay-1", "lead": "ann@acme.de", "type": "lead.updated",
        "at": iso(now_secs() - 20), "attributes": {"title": "Intern", "sales_bonus": 0},
        "source": "public"}]);
    assert_eq!(
        post_signed(&c, &s, SECRET, now_secs(), &relayed)
            .await
            .status(),
        200
    );
    let a = attrs(&get_lead(&c, &s, "ann@acme.de").await.1);
    assert_eq!(
        (&a["title"], &a["sales_bonus"]),
        (&json!("CEO"), &json!(20))
    );

    // A form that lists its fields sets only those.
    let r = form(
        "survey",
        &[
            ("email", "cy@acme.de"),
            ("company", "Acme"),
            ("title", "CEO"),
        ],
    )
    .await
    .unwrap();
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["ignored"], json!(["title"]));
    let cy = attrs(&get_lead(&c, &s, "cy@acme.de").await.1);
    assert_eq!(cy["company"], "Acme");
    assert!(cy.get("title").is_none());

    // A beacon names no lead here ([track] identify is off by default).
    let r = c
        .post(s.at("/track"))
        .header("origin", "https://www.example.com")
        .header("user-agent", "Mozilla/5.0")
        .body(
            json!({"v": "visitor-0123456789", "events": [{"type": "page.viewed"}],
                   "email": "ann@acme.de"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("identify"));

    // Posts naming one lead are bounded per hour, whatever their addresses or visitors:
    // Bob has had three; three more pass, the next is refused.
    for i in 0..3 {
        let visitor = format!("fresh-visitor-{i:04}");
        let r = form(
            "contact",
            &[("email", "Bob@Acme.de"), ("_visitor", visitor.as_str())],
        )
        .await
        .unwrap();
        assert_eq!(r.status(), 200, "post {i}");
    }
    let r = form("contact", &[("email", "bob@acme.de")]).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("for one lead"));
    let (_, bob) = get_lead(&c, &s, "bob@acme.de").await;
    assert_eq!(
        bob["events"], 7,
        "nothing stored from the refused post: {bob}"
    );
    s.stop();
}

/// The value of one Prometheus sample (`name{labels} value`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// `GET /metrics` after a short load: its counters match what was sent (accepted,
/// duplicate and refused events, requests by route and status, commits), and it answers
/// only the metrics or a read token.
#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_was_sent() {
    let dir = tmp("metrics");
    let mut env = secured();
    env.push(("LEADSCORE_METRICS_TOKEN", "scrape-me"));
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &env);
    let c = Client::new();
    let now = now_secs();
    let batches = 7;
    for b in 0..batches {
        let events: Vec<Value> = (0..3)
            .map(|i| {
                json!({"id": format!("e{b}-{i}"), "lead": format!("m{i}@acme.de"),
                       "type": "email.opened", "at": iso(now - 60)})
            })
            .collect();
        let r = post_signed(&c, &s, SECRET, now, &json!(events)).await;
        assert_eq!(r.status(), 200);
    }
    // A batch sent again: three duplicates. A batch with an invalid event: two refused.
    let again: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("e0-{i}"), "lead": format!("m{i}@acme.de"), "type": "email.opened", "at": iso(now - 60)}))
        .collect();
    assert_eq!(
        post_signed(&c, &s, SECRET, now, &json!(again))
            .await
            .status(),
        200
    );
    let bad = json!([{"id": "x1", "lead": "m0@acme.de", "type": "email.opened", "at": "yesterday"},
                     {"id": "x2", "lead": "m0@acme.de", "type": "email.opened", "at": iso(now)}]);
    assert_eq!(post_signed(&c, &s, SECRET, now, &bad).await.status(), 400);
    // A forged signature: one refused.
    assert_eq!(
        post_signed(&c, &s, "forged", now, &json!([]))
            .await
            .status(),
        401
    );
    for _ in 0..4 {
        let (status, _) = get_lead(&c, &s, "m0@acme.de").await;
        assert_eq!(status, 200);
    }

    assert_eq!(c.get(s.at("/metrics")).send().await.unwrap().status(), 401);
    assert_eq!(
        c.get(s.at("/metrics"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let by_reader = c
        .get(s.at("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(by_reader.status(), 200);
    let r = c
        .get(s.at("/metrics"))
        .bearer_auth("scrape-me")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let events = |o: &str| sample(&text, &format!("leadscore_events_total{{outcome=\"{o}\"}}"));
    assert_eq!(events("accepted"), (batches * 3) as f64, "{text}");
    assert_eq!(events("duplicate"), 3.0, "{text}");
    assert_eq!(events("refused"), 3.0, "{text}");
    let requests = |route: &str, method: &str, status: u16| {
        sample(
            &text,
            &format!("leadscore_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}}"),
        )
    };
    assert_eq!(
        requests("/events", "POST", 200),
        (batches + 1) as f64,
        "{text}"
    );
    assert_eq!(requests("/events", "POST", 400), 1.0, "{text}");
    assert_eq!(requests("/events", "POST", 401), 1.0, "{text}");
    assert_eq!(requests("/leads/{lead}", "GET", 200), 4.0, "{text}");
    assert_eq!(requests("/metrics", "GET", 401), 2.0, "{text}");
    // The lead writes went through commits, each of one or more writes; every ingest call
    // was timed.
    let commits = sample(&text, "leadscore_store_commits_total");
    let writes = sample(&text, "leadscore_store_commit_group_size_sum");
    assert!(commits >= 1.0 && writes >= commits, "{text}");
    assert!(writes >= (batches * 3) as f64, "{text}");
    assert_eq!(
        sample(&text, "leadscore_ingest_duration_seconds_count"),
        (batches + 1) as f64,
        "{text}"
    );
    assert!(
        text.contains("# TYPE leadscore_http_request_duration_seconds histogram"),
        "{text}"
    );
    s.stop();
}

/// Every route of the router is in `GET /openapi.json` (OpenAPI 3.1), with its methods;
/// a route added without its description fails here.
#[tokio::test(flavor = "multi_thread")]
async fn openapi_describes_every_route() {
    let dir = tmp("openapi");
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &[]);
    let doc: Value = Client::new()
        .get(s.at("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    // The API's router and the console's.
    let source = ["http/src/lib.rs", "http/src/console/mod.rs"]
        .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
        .join("\n");
    // `.route("PATH", get(..).post(..))`, possibly over several lines.
    let mut routes = 0;
    for chunk in source.split(".route(").skip(1) {
        let chunk = chunk.trim_start();
        let Some(path) = chunk.strip_prefix('"').and_then(|c| c.split('"').next()) else {
            continue;
        };
        let call = &chunk[..chunk.find("\n        .").unwrap_or(chunk.len())];
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = format!("{method}(");
            let used = call.match_indices(&called).any(|(i, _)| {
                let before = call[..i].chars().next_back().unwrap_or(' ');
                !(before.is_alphanumeric() || before == '_' || before == ':')
            });
            if used {
                routes += 1;
                assert!(
                    doc["paths"][path][method].is_object(),
                    "{} {path} is routed but missing from /openapi.json",
                    method.to_uppercase()
                );
            }
        }
    }
    assert!(routes >= 40, "{routes} routes found in the routers");
    let described: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        described, routes,
        "/openapi.json describes routes the router lacks"
    );
    s.stop();
}

/// Every answer is JSON `{error, detail}`, 404 and 405 included, with the request id the
/// caller gave (or a fresh one) echoed back.
#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_everywhere() {
    let dir = tmp("errors");
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &secured());
    let c = Client::new();
    for (method, path, status) in [
        (Method::GET, "/nowhere", 404),
        (Method::PUT, "/events", 405),
        (Method::GET, "/events", 405),
        (Method::PATCH, "/leads/a@b.c", 405),
        (Method::PUT, "/forms/contact", 405),
        (Method::GET, "/leads/a@b.c/history?since=forever", 400),
    ] {
        let r = c
            .request(method.clone(), s.at(path))
            .bearer_auth(TOKEN)
            .header("x-request-id", "req-123")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{method} {path}");
        assert_eq!(r.headers()["x-request-id"], "req-123");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].is_string() && v["detail"].is_string(),
            "{method} {path}: {v}"
        );
    }
    let r = c
        .get(s.at("/healthz"))
        .header("x-request-id", "bad id!")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    s.stop();
}

/// `LEADSCORE_LOG_FORMAT=json`: every log line is a JSON object; a request's line has its
/// request id, route template and latency as an integer, and the lead only as a short hash
/// — the e-mail address is nowhere in the log.
#[tokio::test(flavor = "multi_thread")]
async fn json_logs_never_carry_a_lead_key() {
    let dir = tmp("json-logs");
    let mut env = secured();
    env.push(("LEADSCORE_LOG_FORMAT", "json"));
    let s = Server::start(&zoho(), &dir.join("l.db"), None, &env);
    let c = Client::new();
    let lead = "jane.secret@acme.de";
    let now = now_secs();
    let e = json!([{"id": "j1", "lead": lead, "type": "email.opened", "at": iso(now - 5)}]);
    assert_eq!(post_signed(&c, &s, SECRET, now, &e).await.status(), 200);
    let (status, _) = get_lead(&c, &s, "jane.secret%40acme.de").await;
    assert_eq!(status, 200);
    let (status, _) = get_lead(&c, &s, "Jane.Secret@ACME.de").await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = s.log();
    assert!(!log.to_lowercase().contains("jane.secret"), "{log}");
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let requests: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "request" && l["fields"]["route"] == "/leads/{lead}")
        .collect();
    assert_eq!(requests.len(), 2, "{log}");
    // Both spellings of the key are one lead, one hash.
    let hash = leadscore_service::metrics::logged(lead);
    for r in requests {
        let f = &r["fields"];
        assert_eq!(f["lead"], hash, "{r}");
        assert!(f["latency_us"].is_u64(), "{r}");
        assert_eq!(f["request_id"].as_str().unwrap().len(), 32, "{r}");
        assert_eq!(f["status"], 200);
    }
    s.stop();
}
