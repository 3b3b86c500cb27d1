//! Real events in, over loopback against `leadscore serve` on a SQLite file: the tracking
//! beacon and its snippet in a real browser (Debian's Chromium, headless), stitching a
//! visitor to the lead its form names, lead merges and key normalisation over HTTP,
//! erasure of all of it, and seed 001's whole behaviour table produced end to end by a
//! website, SendGrid, Mailchimp and a CRM.

mod common;

use common::*;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::path::Path;

/// A desktop browser's user agent: headless Chromium says `HeadlessChrome`, which the
/// beacon drops as a bot (tested below).
const DESKTOP: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

fn config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("leadscore.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A page of the example website: the snippet (with `attrs` on its tag), an optional
/// `leadscore-page` tag, and `body`.
fn page(ls: &str, attrs: &str, tag: Option<&str>, body: &str) -> String {
    let meta = tag.map_or(String::new(), |t| {
        format!(r#"<meta name="leadscore-page" content="{t}">"#)
    });
    format!(
        r#"<!doctype html><html><head><title>Acme {}</title>{meta}
<script async src="{ls}/t.js" {attrs}></script></head><body>{body}</body></html>"#,
        tag.unwrap_or("home")
    )
}

/// The product inquiry form of the example website.
fn inquiry_form(ls: &str, email: &str) -> String {
    format!(
        r#"<form method="post" action="{ls}/forms/inquiry">
  <input name="email" value="{email}">
  <select name="country"><option>PL</option><option selected>DE</option></select>
  <input name="title" value="Purchasing Manager">
  <input name="product" value="LED Panel">
  <textarea name="message">Please quote 500 pcs, size 600x600.</textarea>
  <button>Send</button>
</form>"#
    )
}

/// The example website: home, a product page, the pricing page and the contact page with
/// the inquiry form for `email`.
fn website(ls: &str, attrs: &str, email: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "/",
            page(ls, attrs, None, &format!("<h1>Acme LED</h1>{NAV}")),
        ),
        (
            "/products/led-panel",
            page(
                ls,
                attrs,
                Some("product"),
                &format!("<h1>LED Panel</h1>{NAV}"),
            ),
        ),
        (
            "/pricing",
            page(ls, attrs, Some("pricing"), &format!("<h1>Prices</h1>{NAV}")),
        ),
        ("/contact", page(ls, attrs, None, &inquiry_form(ls, email))),
    ]
}

/// Every page's menu.
const NAV: &str = r#"<nav><a href="/products/led-panel">LED Panel</a> <a href="/pricing">Prices</a>
<a href="/contact">Contact</a></nav>"#;

/// Follows the page's link to `path`, as a person clicks it.
async fn click(b: &Browser, site: &Site, path: &str) {
    b.run(&format!(
        "document.querySelector('a[href=\"{path}\"]').click()"
    ))
    .await;
    b.wait_for_url(&site.at(path)).await;
}

/// Lets the page's beacons reach the server before the next page.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
}

/// A person's journey: home, a product page, the pricing page — three visits, as if half
/// an hour passed between the first pages (the snippet's visit cookie ends) — then the
/// contact page, whose inquiry form they send.
async fn walk(b: &Browser, site: &Site, ls: &str) {
    b.visit(&site.at("/")).await;
    settle().await;
    b.delete_cookie("ls_visit").await;
    click(b, site, "/products/led-panel").await;
    settle().await;
    b.delete_cookie("ls_visit").await;
    click(b, site, "/pricing").await;
    settle().await;
    click(b, site, "/contact").await;
    settle().await;
    b.run("document.forms[0].requestSubmit()").await;
    b.wait_for_url(&format!("{ls}/forms/inquiry")).await;
}

/// What the example website earns a lead under seed 001's rules: three visits, the
/// product and pricing pages, the inquiry form with a quantity.
const WEBSITE_ROWS: [(&str, i64); 6] = [
    ("when site.visited add 5 to engagement", 5),
    (
        "when site.visited count >= 3 within 7d add 15 to engagement",
        15,
    ),
    (
        "when page.viewed where page = \"product\" add 10 to engagement",
        10,
    ),
    (
        "when page.viewed where page = \"pricing\" add 20 to engagement",
        20,
    ),
    (
        "when form.submitted where form = \"inquiry\" add 20 to engagement",
        20,
    ),
    (
        "when message contains any qty_spec add 15 to engagement",
        15,
    ),
];

fn rules_of(lead: &Value, score: &str) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = lead["contributions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["score"] == score)
        .map(|c| {
            (
                c["rule"].as_str().unwrap().to_string(),
                c["points"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected(rules: &[(&str, i64)]) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = rules.iter().map(|(r, p)| (r.to_string(), *p)).collect();
    out.sort();
    out
}

/// The snippet in a real browser: three pages browsed anonymously, then a form — the lead
/// arrives scored with those page views, with one transition.
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_with_the_snippet_browses_three_pages_and_becomes_a_lead() {
    let dir = tmp("snippet");
    let (listener, origin) = Site::reserve();
    let s = serve_for_site(&dir, &[&origin]);
    let site = Site::serve(listener, origin, website(&s.url, "", "Visitor@Acme.de"));
    let b = Browser::start(Some(DESKTOP), json!({})).await;
    walk(&b, &site, &s.url).await;
    let answer = b.run("return document.body.innerText").await;
    assert!(
        answer.as_str().unwrap().contains("visitor@acme.de"),
        "the form's answer: {answer}"
    );
    // The visitor id the snippet keeps in its first-party cookie.
    let cookie = b.run("return document.cookie").await;
    b.quit().await;
    let c = Client::new();
    let lead = wait_for_lead(&c, &s, "visitor@acme.de").await;
    assert_eq!(
        rules_of(&lead, "engagement"),
        expected(&WEBSITE_ROWS),
        "{lead}"
    );
    // 3 visits, 4 page views, the form; one transition, when the visitor became a lead.
    assert_eq!(lead["events"], 8, "{lead}");
    let t = lead["transitions"].as_array().unwrap();
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((&t[0]["from"], &t[0]["to"]), (&json!(null), &json!("A")));
    let export = export(&c, &s, "visitor@acme.de").await;
    let vid = export["visitors"][0]
        .as_str()
        .expect("one visitor")
        .to_string();
    assert_eq!(export["visitors"].as_array().unwrap().len(), 1, "{export}");
    assert!(
        cookie.as_str().unwrap().contains(&format!("ls_vid={vid}")),
        "the visitor id is the snippet's first-party cookie: {cookie}"
    );
    let paths: Vec<&str> = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "page.viewed")
        .map(|e| e["props"]["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["/", "/products/led-panel", "/pricing", "/contact"]);
    let pricing = export["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "page.viewed" && e["props"]["path"] == "/pricing")
        .unwrap();
    assert_eq!(pricing["props"]["title"], "Acme pricing");
    assert_eq!(pricing["props"]["referrer"], site.at("/products/led-panel"));

    s.stop();
}

/// Browsers that must not be tracked are not: headless Chromium's own user agent (a
/// bot's), a browser with Do Not Track on, and a site that asks for consent first (only
/// the pages after consent count). Their forms still make leads.
#[tokio::test(flavor = "multi_thread")]
async fn bots_do_not_track_and_consent_are_honoured() {
    let dir = tmp("dnt");
    let (l1, o1) = Site::reserve();
    let (l2, o2) = Site::reserve();
    let (l3, o3) = Site::reserve();
    let s = serve_for_site(&dir, &[&o1, &o2, &o3]);
    let c = Client::new();

    let bot = Site::serve(l1, o1, website(&s.url, "", "bot@acme.de"));
    let b = Browser::start(None, json!({})).await;
    walk(&b, &bot, &s.url).await;
    b.quit().await;
    assert_eq!(
        wait_for_lead(&c, &s, "bot@acme.de").await["events"],
        1,
        "the form alone"
    );

    // Do Not Track, as the browser's own setting.
    let dnt = Site::serve(l2, o2, website(&s.url, "", "dnt@acme.de"));
    let b = Browser::start(Some(DESKTOP), json!({"enable_do_not_track": true})).await;
    assert_eq!(b.run("return navigator.doNotTrack").await, "1");
    walk(&b, &dnt, &s.url).await;
    assert_eq!(
        b.run("return document.cookie").await,
        "",
        "no cookie either"
    );
    b.quit().await;
    assert_eq!(
        wait_for_lead(&c, &s, "dnt@acme.de").await["events"],
        1,
        "the form alone"
    );

    // Consent asked for, and given on the pricing page.
    let site = Site::serve(
        l3,
        o3,
        website(&s.url, r#"data-consent="required""#, "consent@acme.de"),
    );
    let b = Browser::start(Some(DESKTOP), json!({})).await;
    b.visit(&site.at("/")).await;
    settle().await;
    b.visit(&site.at("/products/led-panel")).await;
    settle().await;
    assert_eq!(
        b.run("return document.cookie").await,
        "",
        "no cookie before consent"
    );
    b.visit(&site.at("/pricing")).await;
    b.run("leadscore('consent', true)").await;
    settle().await;
    b.visit(&site.at("/contact")).await;
    settle().await;
    b.run("document.forms[0].requestSubmit()").await;
    b.wait_for_url(&format!("{}/forms/inquiry", s.url)).await;
    b.quit().await;
    let lead = wait_for_lead(&c, &s, "consent@acme.de").await;
    // A visit and the pricing page from consent on, the contact page, the form.
    assert_eq!(lead["events"], 4, "{lead}");
    assert_eq!(lead["scores"]["engagement"], 5 + 20 + 20 + 15, "{lead}");
    s.stop();
}

/// `POST /track`, `GET /track` and `/t.js` over HTTP: every bound, and what is stored.
#[tokio::test(flavor = "multi_thread")]
async fn the_beacon_is_public_but_bounded() {
    let dir = tmp("beacon");
    let cfg = config(
        &dir,
        "[forms]\nallowed_origins = [\"https://www.acme.de\"]\n[track]\nidentify = true\nrate_per_minute = 40\nevents = [\"page.viewed\", \"site.visited\", \"web.*\", \"video.played\"]\n",
    );
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&cfg), &secured());
    let c = Client::new();
    let vid = "visitor-0123456789";
    let beacon_as = |agent: &str, body: Value| {
        c.post(s.at("/track"))
            .header("content-type", "text/plain;charset=UTF-8")
            .header("origin", "https://www.acme.de")
            .header("user-agent", agent)
            .body(body.to_string())
    };
    let beacon = |body: Value| beacon_as(DESKTOP, body);
    let view =
        |path: &str| json!({"type": "page.viewed", "props": {"path": path, "page": "pricing"}});

    let js = c.get(s.at("/t.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/javascript"));
    assert!(js.text().await.unwrap().contains("sendBeacon"));

    // Accepted: 204 and no body (the answer never names a lead).
    let r = beacon(json!({"v": vid, "events": [view("/pricing"), {"type": "site.visited", "id": "visit-00000001"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.bytes().await.unwrap().is_empty());
    // The same client event id again: not stored twice.
    let r = beacon(json!({"v": vid, "events": [{"type": "site.visited", "id": "visit-00000001"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Custom types the configuration lists, and web.*.
    for ty in ["video.played", "web.download"] {
        let r = beacon(json!({"v": vid, "events": [{"type": ty}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{ty}");
    }
    // The pixel, for pages without JavaScript.
    let r = c
        .get(s.at(&format!("/track?v={vid}&t=page.viewed&path=%2Fproducts&page=product&ref=https%3A%2F%2Fgoogle.com")))
        .header("referer", "https://www.acme.de/products")
        .header("user-agent", DESKTOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/gif");
    assert_eq!(r.bytes().await.unwrap().len(), 43);

    // Refused, each with its reason, nothing stored.
    let refused = [
        (
            json!({"v": "short", "events": [view("/")]}),
            400,
            "visitor id",
        ),
        (
            json!({"v": vid, "events": [{"type": "deal.won"}]}),
            400,
            "not taken from browsers",
        ),
        (
            json!({"v": vid, "events": [{"type": "form.submitted"}]}),
            400,
            "not taken from browsers",
        ),
        (json!({"v": vid, "events": []}), 400, "1 to 10"),
        (
            json!({"v": vid, "events": vec![view("/"); 11]}),
            400,
            "1 to 10",
        ),
        (
            json!({"v": vid, "events": [{"type": "page.viewed", "props": {"url": "x".repeat(3000)}}]}),
            400,
            "at most 2048",
        ),
        (
            json!({"v": vid, "events": [{"type": "page.viewed", "props": {"o": {"a": 1}}}]}),
            400,
            "a prop is text",
        ),
        (
            json!({"v": vid, "events": [{"type": "page.viewed", "id": "bad id!"}]}),
            400,
            "events[0].id",
        ),
        (
            json!({"v": vid, "events": [view("/")], "lead": "x"}),
            400,
            "invalid JSON",
        ),
    ];
    for (body, status, reason) in refused {
        let r = beacon(body.clone()).send().await.unwrap();
        assert_eq!(r.status(), status, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(
            e["detail"].as_str().unwrap().contains(reason),
            "{body}: {e}"
        );
    }
    let r = beacon(
        json!({"v": vid, "events": [{"type": "page.viewed", "props": {"p": "x".repeat(9000)}}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 413);
    let r = c
        .post(s.at("/track"))
        .header("content-type", "application/xml")
        .header("origin", "https://www.acme.de")
        .header("user-agent", DESKTOP)
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let r = c
        .post(s.at("/track"))
        .header("origin", "https://evil.example")
        .header("user-agent", DESKTOP)
        .body(json!({"v": vid, "events": [view("/")]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .get(s.at(&format!("/track?v={vid}")))
        .header("referer", "https://evil.example/page")
        .header("user-agent", DESKTOP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "the pixel's origin comes from its Referer");
    let r = c
        .post(s.at("/track"))
        .header("user-agent", DESKTOP)
        .body(json!({"v": vid, "events": [view("/")]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a beacon from no page");

    // Dropped as if accepted: bots, Do Not Track, Global Privacy Control.
    let bot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let r = beacon_as(bot, json!({"v": vid, "events": [view("/dropped")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "a bot");
    for h in ["dnt", "sec-gpc"] {
        let r = beacon(json!({"v": vid, "events": [view("/dropped")]}))
            .header(h, "1")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{h}");
    }

    // The form the visitor posts brings its history: the pricing view (20), one visit
    // (5), the pixel's product view (10), the custom events (0) and the form (10).
    let r = c
        .post(s.at("/forms/contact"))
        .header("origin", "https://www.acme.de")
        .form(&[("email", "beacon@acme.de"), ("_visitor", vid)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, lead) = get_lead(&c, &s, "beacon@acme.de").await;
    assert_eq!(lead["events"], 6, "{lead}");
    assert_eq!(lead["scores"]["engagement"], 45, "{lead}");
    assert!(lead["attributes"].get("_visitor").is_none());

    // Linked: the next beacon scores for the lead at once.
    let r = beacon(
        json!({"v": vid, "events": [{"type": "page.viewed", "props": {"page": "product"}}]}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let (_, lead) = get_lead(&c, &s, "beacon@acme.de").await;
    assert_eq!(lead["events"], 7);

    // An identified beacon (the snippet's `identify`) stitches another device.
    let other = "device-two-0123456";
    beacon(json!({"v": other, "events": [view("/pricing")]}))
        .send()
        .await
        .unwrap();
    let r = beacon(
        json!({"v": other, "events": [{"type": "web.identified"}], "email": "Beacon@Acme.de"}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 204);
    let (_, lead) = get_lead(&c, &s, "beacon@acme.de").await;
    assert_eq!(lead["events"], 9);

    // The rate per client address.
    let mut last = 0;
    for _ in 0..50 {
        last = beacon(json!({"v": vid, "events": [view("/")]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if last == 429 {
            break;
        }
    }
    assert_eq!(last, 429);
    s.stop();

    // Off: the beacon and the snippet are not there.
    let cfg = config(&dir, "[track]\nenabled = false\n");
    let off = Server::start(&zoho(), &dir.join("off.db"), Some(&cfg), &secured());
    assert_eq!(c.get(off.at("/t.js")).send().await.unwrap().status(), 404);
    let r = c
        .post(off.at("/track"))
        .body(json!({"v": vid, "events": [view("/")]}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    off.stop();
}

/// Merging over HTTP, with normalised keys; then erasure of a merged, stitched lead leaves
/// nothing of it in the store.
#[tokio::test(flavor = "multi_thread")]
async fn leads_merge_over_http_and_erasure_leaves_nothing() {
    let dir = tmp("merge");
    let db = dir.join("l.db");
    let cfg = config(&dir, "[keys]\nstrip_plus_tags = true\ngmail_dots = true\n");
    let s = Server::start(&zoho(), &db, Some(&cfg), &secured());
    let c = Client::new();
    let t = iso(now_secs() - 600);
    let r = post_signed(&c, &s, SECRET, now_secs(), &json!([
        {"id": "g1", "lead": "Ann.Lee+fair@gmail.com", "type": "email.opened", "at": t},
        {"id": "g2", "lead": "annlee@googlemail.com", "type": "email.clicked", "at": t,
         "attributes": {"country": "DE"}},
        {"id": "w1", "lead": "ann@lee-trading.de", "type": "form.submitted", "at": t,
         "attributes": {"title": "CEO", "phone": "+49 30 7654321"}, "props": {"form": "inquiry"}},
    ]))
    .await;
    assert_eq!(r.status(), 200);
    let (status, gmail) = get_lead(&c, &s, "a.n.n.l.e.e@GMAIL.com").await;
    assert_eq!(
        (status.as_u16(), gmail["events"].clone()),
        (200, json!(2)),
        "one mailbox, one lead"
    );
    // A visitor becomes the work address.
    let vid = "visitor-merge-000001";
    let r = c
        .post(s.at("/track"))
        .header("user-agent", DESKTOP)
        .body(
            json!({"v": vid, "events": [{"type": "page.viewed", "props": {"page": "pricing"}}]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    c.post(s.at("/forms/contact"))
        .form(&[("email", "ann@lee-trading.de"), ("_visitor", vid)])
        .send()
        .await
        .unwrap();

    let merge = |into: &str, body: Value| {
        let (c, url) = (c.clone(), s.at(&format!("/leads/{into}/merge")));
        async move { send_signed(&c, Method::POST, url, &body).await }
    };
    let r = c
        .post(s.at("/leads/annlee@gmail.com/merge"))
        .json(&json!({"lead": "ann@lee-trading.de"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "merging writes: signed");
    let r = merge("annlee@gmail.com", json!({"lead": "Ann@Lee-Trading.de"})).await;
    assert_eq!(r.status(), 200);
    let m: Value = r.json().await.unwrap();
    assert_eq!(
        (
            m["lead"].clone(),
            m["merged"].clone(),
            m["moved"]["events"].clone()
        ),
        (
            json!("annlee@gmail.com"),
            json!("ann@lee-trading.de"),
            json!(3)
        ),
        "{m}"
    );
    // Everything of both: DE 30, CEO 30 + west 10; open 5, click 10, inquiry 20, contact
    // 10, pricing 20.
    assert_eq!(
        (
            m["scores"]["fit"].clone(),
            m["scores"]["engagement"].clone()
        ),
        (json!(70), json!(65)),
        "{m}"
    );
    assert_eq!(m["transitions"][0]["cause"], "merge", "{m}");
    for (into, body, status) in [
        (
            "annlee@gmail.com",
            json!({"lead": "ANN.LEE@gmail.com"}),
            400,
        ),
        ("annlee@gmail.com", json!({"lead": "nobody@x.com"}), 404),
        ("annlee@gmail.com", json!({"other": 1}), 400),
    ] {
        assert_eq!(merge(into, body.clone()).await.status(), status, "{body}");
    }
    // The old key points to the lead.
    let r = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(s.at("/leads/ann@lee-trading.de"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/leads/annlee@gmail.com");
    let pointer: Value = r.json().await.unwrap();
    assert_eq!(pointer["merged_into"], "annlee@gmail.com");
    // A client that follows redirects lands on the lead.
    let (status, lead) = get_lead(&c, &s, "ann@lee-trading.de").await;
    assert_eq!(
        (status.as_u16(), lead["lead"].clone()),
        (200, json!("annlee@gmail.com"))
    );
    // Events for the old key go to the lead.
    let r = post_signed(
        &c,
        &s,
        SECRET,
        now_secs(),
        &json!({"id": "w2", "lead": "ann@lee-trading.de",
        "type": "email.opened", "at": iso(now_secs() - 60)}),
    )
    .await;
    let out: Value = r.json().await.unwrap();
    assert_eq!(out["leads"][0]["lead"], "annlee@gmail.com");
    let export = export(&c, &s, "ann@lee-trading.de").await;
    assert_eq!(
        (export["visitors"].clone(), export["merged"].clone()),
        (json!([vid]), json!(["ann@lee-trading.de"]))
    );
    assert_eq!(export["events"].as_array().unwrap().len(), 6);

    // Erasing either key erases the person: lead, events, transitions, visitor, pointer.
    let r = send_signed(
        &c,
        Method::DELETE,
        s.at("/leads/ann@lee-trading.de"),
        &json!({}),
    )
    .await;
    let erased: Value = r.json().await.unwrap();
    assert_eq!(erased["lead"], "annlee@gmail.com");
    assert_eq!(erased["erased"]["events"], 6);
    assert_eq!(erased["erased"]["links"], 2);
    for key in ["annlee@gmail.com", "ann@lee-trading.de"] {
        assert_eq!(get_lead(&c, &s, key).await.0, 404, "{key}");
    }
    s.stop();
    assert_nowhere(&db, &["annlee", "ann.lee", "lee-trading", vid, "7654321"]);
}

/// Seed 001's whole behaviour table (§二.4) — and its penalty for unsubscribes —
/// produced by what a B2B exporter actually has: a website with the snippet and its
/// forms, SendGrid (events and inbound replies), Mailchimp, and the CRM for WhatsApp and
/// calls. docs/website.md walks through the same set-up.
#[tokio::test(flavor = "multi_thread")]
async fn seed_001_behaviour_table_end_to_end() {
    let sendgrid = SendGridKey::new(9);
    let dir = tmp("seed001");
    let (listener, origin) = Site::reserve();
    let cfg = config(
        &dir,
        &format!("[forms]\nallowed_origins = [\"{origin}\"]\n"),
    );
    let mut env = secured();
    env.push((
        "LEADSCORE_SENDGRID_PUBLIC_KEY",
        Box::leak(sendgrid.public.clone().into_boxed_str()),
    ));
    env.push(("LEADSCORE_SENDGRID_INBOUND_KEY", "inbound-key"));
    env.push(("LEADSCORE_MAILCHIMP_KEY", "mc-key"));
    let s = Server::start(&zoho(), &dir.join("l.db"), Some(&cfg), &env);
    let c = Client::new();

    // The website: three visits, the product and pricing pages, the inquiry form with a
    // quantity; then the contact form on another day.
    let site = Site::serve(
        listener,
        origin.clone(),
        website(&s.url, "", "Buyer@Acme.de"),
    );
    let b = Browser::start(Some(DESKTOP), json!({})).await;
    walk(&b, &site, &s.url).await;
    b.quit().await;
    wait_for_lead(&c, &s, "buyer@acme.de").await;
    let r = c
        .post(s.at("/forms/contact"))
        .header("origin", &origin)
        .form(&[("email", "buyer@acme.de"), ("phone", "+49 30 1234567")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // SendGrid's Event Webhook: two opens and a click (and delivery bookkeeping).
    let ts = now_secs() - 30;
    let events = json!([
        {"email": "buyer@acme.de", "timestamp": ts, "event": "delivered", "sg_event_id": "d-1", "sg_message_id": "m-1"},
        {"email": "buyer@acme.de", "timestamp": ts, "event": "open", "sg_event_id": "o-1", "sg_message_id": "m-1"},
        {"email": "buyer@acme.de", "timestamp": ts + 5, "event": "open", "sg_event_id": "o-2", "sg_message_id": "m-1"},
        {"email": "buyer@acme.de", "timestamp": ts + 9, "event": "click", "sg_event_id": "c-1", "sg_message_id": "m-1",
         "url": "https://www.acme.de/pricing"},
        {"email": "leaver@acme.de", "timestamp": ts, "event": "unsubscribe", "sg_event_id": "u-1", "sg_message_id": "m-2"},
    ])
    .to_string();
    let stamp = now_secs().to_string();
    let r = c
        .post(s.at("/hooks/sendgrid"))
        .header("content-type", "application/json")
        .header(
            "x-twilio-email-event-webhook-signature",
            sendgrid.sign(&stamp, events.as_bytes()),
        )
        .header("x-twilio-email-event-webhook-timestamp", &stamp)
        .body(events)
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        (answer["accepted"].clone(), answer["skipped"].clone()),
        (json!(4), json!(1)),
        "{answer}"
    );

    // SendGrid's Inbound Parse: the buyer's reply (with an attachment).
    let reply = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/hooks/sendgrid_inbound.txt"),
    )
    .unwrap();
    let inbound = |key: &str| {
        c.post(s.at(&format!("/hooks/sendgrid/inbound?key={key}")))
            .header("content-type", "multipart/form-data; boundary=xYzZY")
            .body(reply.clone())
    };
    assert_eq!(inbound("wrong").send().await.unwrap().status(), 401);
    let r = inbound("inbound-key").send().await.unwrap();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");
    let again: Value = inbound("inbound-key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        again["accepted"], 0,
        "SendGrid's retry of the same message: {again}"
    );

    // Mailchimp: the buyer subscribes; the leaver unsubscribes (a second unsubscribe
    // within 7 days: the penalty).
    let fired = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    for (kind, email) in [
        ("subscribe", "buyer@acme.de"),
        ("unsubscribe", "leaver@acme.de"),
    ] {
        let body = format!(
            "type={kind}&fired_at={}&data%5Bid%5D=8a25ff1d98&data%5Blist_id%5D=a6b5da1054&data%5Bemail%5D={}&data%5Bemail_type%5D=html&data%5Bmerges%5D%5BEMAIL%5D={}&data%5Bmerges%5D%5BFNAME%5D=Buyer&data%5Bip_opt%5D=10.20.10.30",
            urlencode(&fired), urlencode(email), urlencode(email)
        );
        let r = c
            .post(s.at("/hooks/mailchimp?key=mc-key"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{kind}");
    }

    // The CRM: the buyer added us on WhatsApp, and a 7-minute call.
    let at = iso(now_secs() - 5);
    let r = post_signed(&c, &s, SECRET, now_secs(), &json!([
        {"id": "crm-1", "lead": "buyer@acme.de", "type": "whatsapp.added", "at": at},
        {"id": "crm-2", "lead": "buyer@acme.de", "type": "call.completed", "at": at, "props": {"minutes": 7}},
    ]))
    .await;
    assert_eq!(r.status(), 200);

    let (_, lead) = get_lead(&c, &s, "buyer@acme.de").await;
    assert_eq!(
        rules_of(&lead, "engagement"),
        expected(
            &[
                &WEBSITE_ROWS[..],
                &[
                    (
                        "when form.submitted where form = \"contact\" add 10 to engagement",
                        10
                    ),
                    ("when email.opened add 5 each to engagement", 10),
                    ("when email.clicked add 10 each to engagement", 10),
                    ("when email.replied add 20 to engagement", 20),
                    ("when whatsapp.added add 15 to engagement", 15),
                    (
                        "when call.completed where minutes >= 5 add 20 to engagement",
                        20
                    ),
                ],
            ]
            .concat()
        ),
        "every row of the behaviour table: {lead}"
    );
    // The profile: DE 30, LED Panel (flagship) 25, Purchasing Manager 30 (+10 in the west).
    assert_eq!(lead["scores"], json!({"fit": 95, "engagement": 170}));
    assert_eq!(
        (lead["grade"].clone(), lead["tags"].clone()),
        (json!("A"), json!(["HOT"]))
    );
    // Events arrived out of order (SendGrid's are older than the pages): the log is still a
    // chain — each transition starts where the last one ended — with nothing recorded twice.
    let t = lead["transitions"].as_array().unwrap();
    assert_eq!(t[0]["from"], Value::Null, "{t:?}");
    for w in t.windows(2) {
        assert_eq!(w[1]["from"], w[0]["to"], "{t:?}");
    }
    assert_eq!(t.last().unwrap()["to"], "A");

    let (_, leaver) = get_lead(&c, &s, "leaver@acme.de").await;
    assert_eq!(
        rules_of(&leaver, "engagement"),
        expected(&[(
            "when email.unsubscribed count >= 2 within 7d subtract 20 from engagement",
            -20
        )]),
        "{leaver}"
    );
    s.stop();
}
