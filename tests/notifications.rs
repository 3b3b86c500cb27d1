//! Notifications end to end: `leadscore serve` on a SQLite file delivers to receivers on
//! loopback — exactly once though the receiver fails and the server restarts, again
//! after a kill mid-delivery (with the same idempotency key), dead letters listed and
//! retried over HTTP, and a rescore that notifies nobody.

mod common;

use common::*;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn script(list: Vec<(u16, u64)>) -> Script {
    Arc::new(move |i| {
        let (s, ms) = list[i.min(list.len() - 1)];
        (
            s,
            if s < 300 { "ok" } else { "no" }.to_string(),
            Duration::from_millis(ms),
        )
    })
}

/// Seed 001's rules (with its alerts) and a configuration delivering them to loopback.
fn setup(dir: &Path, slack: &str, dingtalk: &str, crm: &str, extra: &str) -> PathBuf {
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[notify]
allow_private = true
backoff_secs = 1
max_backoff_secs = 2
timeout_secs = 1
poll_millis = 100
{extra}
[secrets]
SLACK_SALES_URL = "{slack}/services/T0001/B0001/XXXX"
DINGTALK_MANAGERS_URL = "{dingtalk}/robot/send?access_token=t"
DINGTALK_MANAGERS_SECRET = "SECm4n"
HOOK_SECRET = "h00k"

[http.zoho]
method = "PUT"
url = "{crm}/crm/v2/Leads/{{{{lead}}}}"
body = '{{"data": [{{"Lead_Score": {{{{score}}}}, "Lead_Grade": {{{{grade}}}}}}]}}'
"#
        ),
    )
    .unwrap();
    config
}

/// An A lead from a form: DE, a flagship product, a decider, a quantity.
async fn a_lead(c: &Client, s: &Server, email: &str) -> Value {
    let r = c
        .post(s.at("/forms/inquiry"))
        .form(&[
            ("email", email),
            ("country", "DE"),
            ("title", "Purchasing Manager"),
            ("product", "LED Panel"),
            ("message", "500 pcs please"),
        ])
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["leads"][0]["grade"], "A", "{v}");
    v
}

async fn notifications(c: &Client, s: &Server, status: &str) -> Vec<Value> {
    let v: Value = c
        .get(s.at(&format!("/notifications?status={status}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["notifications"].as_array().cloned().unwrap_or_default()
}

/// The issue's promise: an A transition from a form post reaches Slack exactly once,
/// though Slack fails twice and the server restarts in between.
#[tokio::test(flavor = "multi_thread")]
async fn an_a_lead_reaches_slack_exactly_once_through_failures_and_a_restart() {
    let slack = Receiver::start(script(vec![(500, 0), (500, 0), (200, 0)])).await;
    let ding = Receiver::start(Arc::new(|_| {
        (200, r#"{"errcode":0,"errmsg":"ok"}"#.into(), Duration::ZERO)
    }))
    .await;
    let crm = Receiver::ok().await;
    let dir = tmp("slack-once");
    let db = dir.join("l.db");
    let config = setup(&dir, &slack.url, &ding.url, &crm.url, "");
    let s = Server::start(&zoho(), &db, Some(&config), &secured());
    let c = Client::new();
    a_lead(&c, &s, "Buyer@Acme.de").await;
    // The first attempt fails; the server stops before the next.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while slack.received().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.stop();
    let tried = slack.received().len();
    assert!(
        (1..=2).contains(&tried),
        "{tried} attempts before the restart"
    );
    let s = Server::start(&zoho(), &db, Some(&config), &secured());
    let got = slack.wait_accepted(1, Duration::from_secs(20)).await;
    // Let the worker run a while longer: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(slack.accepted().len(), 1, "exactly once");
    assert_eq!(slack.received().len(), 3, "two failures, one success");
    // Slack's shape: an incoming webhook's text and blocks.
    let m = got[0].json();
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("buyer@acme.de arrived as A"),
        "{m}"
    );
    assert_eq!(m["blocks"][0]["type"], "header");
    assert_eq!(got[0].uri, "/services/T0001/B0001/XXXX");
    // Every attempt carried the same notification id.
    let ids: std::collections::BTreeSet<String> = slack
        .received()
        .iter()
        .map(|r| r.header("x-leadscore-notification").unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 1);
    // The managers (DingTalk, signed) and the CRM (Zoho's API) got theirs once each.
    assert_eq!(
        ding.wait_accepted(1, Duration::from_secs(10)).await.len(),
        1
    );
    let z = crm.wait_accepted(1, Duration::from_secs(10)).await;
    assert_eq!(z[0].method, "PUT");
    assert_eq!(z[0].uri, "/crm/v2/Leads/buyer%40acme.de");
    assert_eq!(z[0].json()["data"][0]["Lead_Grade"], "A");
    let delivered = notifications(&c, &s, "delivered").await;
    let sales = delivered.iter().find(|n| n["channel"] == "sales").unwrap();
    assert_eq!(
        (sales["attempts"].clone(), sales["last_error"].clone()),
        (json!(3), Value::Null)
    );
    assert_eq!(sales["transition"]["to"], "A");
    s.stop();
}

/// Killed (SIGKILL) while a receiver holds the request: after the restart the claim runs
/// out and the notification goes again with the same id — at least once, and a receiver
/// that keys on the id takes it exactly once.
#[tokio::test(flavor = "multi_thread")]
async fn a_delivery_cut_by_a_kill_is_sent_again_with_the_same_id() {
    let hook = Receiver::start(script(vec![(200, 8_000), (200, 0)])).await;
    let dir = tmp("kill-delivery");
    let db = dir.join("l.db");
    let rules = dir.join("hook.rules");
    let zoho = std::fs::read_to_string(zoho()).unwrap();
    std::fs::write(
        &rules,
        format!(
            "{zoho}\nchannel hook = webhook \"{}/leadscore\" signed \"HOOK_SECRET\"\nnotify hook when grade becomes A\n",
            hook.url
        ),
    )
    .unwrap();
    let dead = Receiver::start(script(vec![(500, 0)])).await;
    let config = setup(&dir, &dead.url, &dead.url, &dead.url, "");
    let mut s = Server::start(&rules, &db, Some(&config), &secured());
    let c = Client::new();
    a_lead(&c, &s, "cut@acme.de").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while hook.arrived.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    let s = Server::start(&rules, &db, Some(&config), &secured());
    let got = hook.wait_accepted(2, Duration::from_secs(30)).await;
    let ids: Vec<&str> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    assert_eq!(ids[0], ids[1], "the same notification, sent again");
    let body = got[0].json();
    assert_eq!(body["id"], ids[0]);
    assert_eq!(body["transition"]["to"], "A");
    let ts: i64 = got[1]
        .header("x-leadscore-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        got[1].header("x-leadscore-signature").unwrap(),
        leadscore_http::auth::sign_v2(
            "h00k",
            ts,
            leadscore_http::auth::Target {
                method: "POST",
                path_and_query: &got[1].uri
            },
            &got[1].body
        )
    );
    let delivered = notifications(&c, &s, "delivered").await;
    let n = delivered.iter().find(|n| n["channel"] == "hook").unwrap();
    assert_eq!(n["attempts"], 2);
    s.stop();
}

/// A receiver that keeps failing: a dead letter, listed and retried over HTTP; a rescore
/// changes grades and notifies nobody.
#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_and_retried_and_rescores_stay_quiet() {
    let slack = Receiver::start(script(vec![(500, 0), (500, 0), (200, 0)])).await;
    let ok = Receiver::start(Arc::new(|_| {
        (200, r#"{"errcode":0}"#.into(), Duration::ZERO)
    }))
    .await;
    let dir = tmp("dead-letters");
    let db = dir.join("l.db");
    let rules = dir.join("zoho.rules");
    std::fs::copy(zoho(), &rules).unwrap();
    let config = setup(&dir, &slack.url, &ok.url, &ok.url, "max_attempts = 2");
    let s = Server::start(&rules, &db, Some(&config), &secured());
    let c = Client::new();
    a_lead(&c, &s, "dead@acme.de").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let f = notifications(&c, &s, "failed").await;
        if !f.is_empty() {
            break f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(failed.len(), 1);
    let f = &failed[0];
    assert_eq!(
        (f["channel"].clone(), f["attempts"].clone()),
        (json!("sales"), json!(2))
    );
    assert!(
        f["last_error"].as_str().unwrap().contains("HTTP 500"),
        "{f}"
    );
    let retry = s.at(&format!(
        "/leads/{}/notifications/{}/retry",
        f["lead"].as_str().unwrap(),
        f["id"].as_str().unwrap()
    ));
    assert_eq!(c.post(&retry).send().await.unwrap().status(), 401);
    let r = send_signed(&c, Method::POST, retry.clone(), &json!({})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        send_signed(&c, Method::POST, retry, &json!({}))
            .await
            .status(),
        409
    );
    slack.wait_accepted(1, Duration::from_secs(20)).await;
    let missing = s.at("/leads/dead@acme.de/notifications/nope/retry");
    assert_eq!(
        send_signed(&c, Method::POST, missing, &json!({}))
            .await
            .status(),
        404
    );

    // New rules: A needs 1000 now. The rescore moves the lead to B — and tells nobody.
    let count = |s: &Server| {
        let (c, s) = (c.clone(), s.at(""));
        async move {
            let mut n = 0;
            for status in ["pending", "delivered", "failed"] {
                let v: Value = c
                    .get(format!("{s}/notifications?status={status}&limit=1000"))
                    .bearer_auth(TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                n += v["notifications"].as_array().unwrap().len();
            }
            n
        }
    };
    let before = count(&s).await;
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(
        &rules,
        text.replace("fit + engagement >= 70", "fit + engagement >= 1000"),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !s.log().contains("rules reloaded") {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The reload rescores the stored leads in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (_, lead) = get_lead(&c, &s, "dead@acme.de").await;
        if lead["transitions"].as_array().unwrap().last().unwrap()["cause"] == "rescore" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{lead}\n{}", s.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = send_signed(&c, Method::POST, s.at("/admin/rescore"), &json!({})).await;
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["rescored"], 0, "{done}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&s).await, before, "a rescore notifies nobody");
    let r = c
        .get(s.at("/notifications?status=lost"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        c.get(s.at("/notifications")).send().await.unwrap().status(),
        401
    );
    s.stop();
}
