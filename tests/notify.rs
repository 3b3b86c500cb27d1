//! Notifications in process: which changes make which notifications (hysteresis,
//! crossings, time, late events, and the changes that never notify), and delivery to
//! receivers on loopback in each vendor's shape, with retries, timeouts and dead letters.

mod common;

use common::{Receiver, Script};
use leadscore_http::notify::{format, Notifier, Pass};
use leadscore_http::Config;
use leadscore_runtime::time::{self, Micros};
use leadscore_service::{parse_events, Service};
use leadscore_store::{memory::MemoryStore, Delivery, NoteStatus, Outbox};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const RULES: &str = r#"
when points > 0 add points
when email.opened add 10 each
when inactive for 30d subtract 50
grade A when score >= 70 until score < 65
grade B when score >= 40
grade C otherwise

channel sales = slack secret "SLACK"
channel boss = dingtalk secret "DINGTALK" signed "DINGTALK_SIGN"
channel crm = http "crm"
channel hook = webhook "http://127.0.0.1:9/never" signed "HOOK"
notify sales when grade becomes A
notify boss when grade leaves A
notify crm when grade changes
notify hook when score crosses 90
"#;

const DAY: Micros = 86_400_000_000;

struct Fixture {
    s: Service,
    store: Arc<MemoryStore>,
    clock: Arc<AtomicI64>,
}

fn fixture(rules: &str) -> Fixture {
    let clock = Arc::new(AtomicI64::new(time::parse("2026-11-01T00:00:00Z").unwrap()));
    let c = clock.clone();
    let store = Arc::new(MemoryStore::new());
    let program = leadscore_compiler::compile(rules, "t").unwrap().program;
    let s = Service::with_clock(
        program,
        store.clone(),
        Arc::new(move || c.load(Ordering::SeqCst)),
    );
    Fixture { s, store, clock }
}

impl Fixture {
    fn at(&self, day: i64) -> String {
        time::format(time::parse("2026-11-01T00:00:00Z").unwrap() + day * DAY)
    }

    /// An event setting the lead's `points` attribute (its score).
    async fn score(&self, id: &str, points: i64, day: i64) {
        self.clock
            .store(time::parse(&self.at(day)).unwrap(), Ordering::SeqCst);
        let body = json!({"id": id, "lead": "ann@x.com", "type": "crm.updated", "at": self.at(day),
                          "attributes": {"points": points}});
        self.s
            .ingest(parse_events(&body, self.s.now()).unwrap())
            .await
            .unwrap();
    }

    /// The outbox, oldest first: (channel, trigger text).
    async fn outbox(&self) -> Vec<(String, String)> {
        let mut all = Vec::new();
        for status in [
            NoteStatus::Pending,
            NoteStatus::Delivered,
            NoteStatus::Failed,
        ] {
            all.extend(self.store.notes(status, 1000, None).await.unwrap());
        }
        // In the order they were written, and within a write in the order of the rules.
        all.sort_by_key(|o| (o.note.created_at, o.note.body["rule"]["line"].as_u64()));
        all.iter()
            .map(|o| {
                let b = &o.note.body;
                let what = match (&b["transition"], &b["crossing"]) {
                    (t, _) if t.is_object() => format!(
                        "{}->{}",
                        t["from"].as_str().unwrap_or("-"),
                        t["to"].as_str().unwrap()
                    ),
                    (_, c) => format!("crosses {} at {}", c["threshold"], c["to"]),
                };
                (o.note.channel.clone(), what)
            })
            .collect()
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn transitions_and_crossings_make_one_notification_each_and_hysteresis_keeps_quiet() {
    let f = fixture(RULES);
    f.score("e1", 72, 0).await; // new lead: C? no — straight to A
    f.score("e2", 68, 1).await; // held in A by its band: nothing
    f.score("e3", 66, 2).await; // still held
    f.score("e4", 64, 3).await; // leaves A for B
    f.score("e5", 69, 4).await; // B: below A's entry, nothing
    f.score("e6", 95, 5).await; // back to A, and crosses 90
    f.score("e7", 80, 6).await; // still A (80 >= 65), below 90: nothing
    f.score("e8", 92, 7).await; // crosses 90 again
    assert_eq!(
        f.outbox().await,
        pairs(&[
            ("sales", "-->A"),
            ("crm", "-->A"),
            ("boss", "A->B"),
            ("crm", "A->B"),
            ("sales", "B->A"),
            ("crm", "B->A"),
            ("hook", "crosses 90 at 95"),
            ("hook", "crosses 90 at 92"),
        ])
    );
}

#[tokio::test]
async fn time_and_late_events_notify_rescores_merges_and_backfills_do_not() {
    let f = fixture(RULES);
    f.score("e1", 75, 0).await;
    let before = f.outbox().await.len();
    // 30 days later inactivity takes 50: A -> C, recorded by the sweep at the instant.
    f.clock
        .store(time::parse(&f.at(31)).unwrap(), Ordering::SeqCst);
    assert_eq!(f.s.sweep(10).await.unwrap(), 1);
    let after = f.outbox().await;
    assert_eq!(
        &after[before..],
        &pairs(&[("boss", "A->C"), ("crm", "A->C")])[..]
    );
    let sweep_note = f.store.notes(NoteStatus::Pending, 100, None).await.unwrap();
    let t = sweep_note
        .iter()
        .find(|o| o.note.channel == "boss")
        .unwrap();
    assert_eq!(t.note.body["transition"]["cause"], "time");
    assert_eq!(
        t.note.body["transition"]["at"],
        f.at(30),
        "the instant inactivity began"
    );

    // A late event (dated day 29) that lifts the lead: one transition, one notification.
    let late = json!({"id": "late", "lead": "ann@x.com", "type": "email.opened", "at": f.at(29)});
    f.s.ingest(parse_events(&late, f.s.now()).unwrap())
        .await
        .unwrap();
    let n = f.outbox().await.len();
    assert!(n > after.len(), "the late event's change notifies");

    // A rules change: rescoring records a transition but notifies nobody.
    f.s.set_program(
        leadscore_compiler::compile(&RULES.replace("add 10 each", "subtract 60 each"), "t")
            .unwrap()
            .program,
    );
    let r = f.s.rescore(100, None).await.unwrap();
    assert_eq!(r.changed_grade, 1);
    assert_eq!(f.outbox().await.len(), n, "a rescore notifies nobody");

    // A merge that changes the grade (bob A, with ann's opens C) notifies nobody either.
    let other = json!({"id": "b1", "lead": "bob@x.com", "type": "crm.updated", "at": f.at(30),
                       "attributes": {"points": 80}});
    f.s.ingest(parse_events(&other, f.s.now()).unwrap())
        .await
        .unwrap();
    let n = f.outbox().await.len();
    let m = f.s.merge("bob@x.com", "ann@x.com").await.unwrap();
    let view = leadscore_runtime::view::to_json(&m.view);
    assert_eq!(view["transitions"][0]["cause"], "merge", "{view:?}");
    assert_eq!(f.outbox().await.len(), n, "a merge notifies nobody");

    // A backfill (leadscore import) stores history quietly.
    let quiet = Service::with_clock(
        leadscore_compiler::compile(RULES, "t").unwrap().program,
        f.store.clone(),
        Arc::new(|| time::parse("2026-11-01T00:00:00Z").unwrap()),
    )
    .quiet();
    let old = json!({"id": "q1", "lead": "carl@x.com", "type": "crm.updated",
                     "at": "2026-10-01T00:00:00Z", "attributes": {"points": 99}});
    quiet
        .ingest(parse_events(&old, quiet.now()).unwrap())
        .await
        .unwrap();
    assert_eq!(f.outbox().await.len(), n, "an import notifies nobody");
}

#[tokio::test]
async fn a_notification_says_what_changed_and_why() {
    let f = fixture(RULES);
    f.score("e1", 72, 0).await;
    let notes = f.store.notes(NoteStatus::Pending, 10, None).await.unwrap();
    let sales = notes.iter().find(|o| o.note.channel == "sales").unwrap();
    let b = &sales.note.body;
    assert_eq!(b["lead"], "ann@x.com");
    assert_eq!(b["id"], sales.note.id);
    assert_eq!(
        b["channel"],
        json!({"name": "sales", "kind": "slack", "url": null,
                                    "secret": "SLACK", "template": null, "signed": null})
    );
    assert_eq!(b["rule"]["text"], "notify sales when grade becomes A");
    assert_eq!(
        (
            b["transition"]["to"].clone(),
            b["transition"]["cause"].clone(),
            b["transition"]["event"].clone()
        ),
        (json!("A"), json!("event"), json!("e1"))
    );
    assert_eq!(
        (b["score"].clone(), b["grade"].clone()),
        (json!(72), json!("A"))
    );
    assert_eq!(b["explanation"][0]["rule"], "when points > 0 add points");
    assert_eq!(b["program"], f.s.rules().hash);
    // Every id differs.
    let mut ids: Vec<&str> = notes.iter().map(|o| o.note.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), notes.len());
}

// ---- delivery ----

fn config(toml_text: &str) -> Config {
    toml::from_str(toml_text).unwrap()
}

async fn deliver(f: &Fixture, config: &Config) -> Pass {
    let c = f.clock.clone();
    let n = Notifier::with_env(
        f.store.clone(),
        config,
        Arc::new(move || c.load(Ordering::SeqCst)),
        Box::new(|_| None),
    );
    n.deliver_due(100).await.unwrap()
}

fn script(list: Vec<(u16, &'static str, u64)>) -> Script {
    Arc::new(move |i| {
        let (s, b, ms) = list[i.min(list.len() - 1)];
        (s, b.to_string(), Duration::from_millis(ms))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn each_vendor_gets_its_own_shape_and_signature() {
    let slack = Receiver::ok().await;
    let ding = Receiver::start(script(vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#, 0)])).await;
    let crm = Receiver::ok().await;
    let hook = Receiver::ok().await;
    let rules = RULES.replace(
        "http://127.0.0.1:9/never",
        &format!("{}/leadscore", hook.url),
    );
    let f = fixture(&rules);
    let cfg = config(&format!(
        r#"
[notify]
allow_private = true
[secrets]
SLACK = "{}/services/T000/B000/XXXX"
DINGTALK = "{}/robot/send?access_token=abc"
DINGTALK_SIGN = "SECd1ng"
HOOK = "hook-secret"
CRM_TOKEN = "crm-t0ken"
[http.crm]
method = "PATCH"
url = "{}/crm/v3/objects/contacts/{{{{lead}}}}?idProperty=email"
headers = {{ authorization = "Bearer {{{{secret.CRM_TOKEN}}}}" }}
body = '{{"properties": {{"leadscore_grade": {{{{grade}}}}, "leadscore_score": {{{{score}}}}}}}}'
"#,
        slack.url, ding.url, crm.url
    ));
    f.score("e1", 95, 0).await; // A: sales, crm; crosses 90: hook
    f.score("e2", 50, 1).await; // leaves A: boss, crm
    let pass = deliver(&f, &cfg).await;
    assert_eq!((pass.delivered, pass.failed), (5, 0), "{pass:?}");

    // Slack: an incoming webhook's JSON: text, and blocks with a header.
    let s = slack.received();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].uri, "/services/T000/B000/XXXX");
    let m = s[0].json();
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .starts_with("ann@x.com arrived as A"),
        "{m}"
    );
    assert_eq!(m["blocks"][0]["type"], "header");
    assert!(m["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["type"].is_string()));
    assert!(s[0].header("x-leadscore-notification").is_some());

    // DingTalk: markdown, signed in the query the documented way.
    let d = &ding.received()[0];
    let m = d.json();
    assert_eq!(m["msgtype"], "markdown");
    assert!(
        m["markdown"]["title"].as_str().unwrap().contains("left A"),
        "{m}"
    );
    let query: std::collections::HashMap<String, String> = d
        .uri
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(query["access_token"], "abc");
    let ts: i64 = query["timestamp"].parse().unwrap();
    assert_eq!(query["sign"], format::dingtalk_sign("SECd1ng", ts));

    // The CRM: the template, filled (one request per grade change).
    let c = crm.received();
    assert_eq!(c.len(), 2);
    for r in &c {
        assert_eq!(r.method, "PATCH");
        assert_eq!(
            r.uri,
            "/crm/v3/objects/contacts/ann%40x.com?idProperty=email"
        );
        assert_eq!(r.header("authorization"), Some("Bearer crm-t0ken"));
    }
    let mut bodies: Vec<Value> = c.iter().map(|r| r.json()).collect();
    bodies.sort_by_key(|b| b["properties"]["leadscore_score"].as_i64());
    assert_eq!(
        bodies,
        [
            json!({"properties": {"leadscore_grade": "B", "leadscore_score": 50}}),
            json!({"properties": {"leadscore_grade": "A", "leadscore_score": 95}})
        ]
    );

    // The webhook: the notification itself, signed like leadscore's own webhooks.
    let h = &hook.received()[0];
    let body = h.json();
    assert_eq!(
        body["crossing"],
        json!({"score": "score", "threshold": 90, "from": 0, "to": 95})
    );
    assert_eq!(h.header("idempotency-key"), body["id"].as_str());
    let ts: i64 = h.header("x-leadscore-timestamp").unwrap().parse().unwrap();
    assert_eq!(
        h.header("x-leadscore-signature").unwrap(),
        leadscore_http::auth::sign_v2(
            "hook-secret",
            ts,
            leadscore_http::auth::Target {
                method: "POST",
                path_and_query: &h.uri
            },
            &h.body
        )
    );
    assert!(f.store.due_notes(i64::MAX, 10).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn feishu_and_wecom_shapes() {
    let lark = Receiver::start(script(vec![(
        200,
        r#"{"code":0,"msg":"success","data":{}}"#,
        0,
    )]))
    .await;
    let wecom = Receiver::start(script(vec![(200, r#"{"errcode":0,"errmsg":"ok"}"#, 0)])).await;
    let f = fixture(
        r#"when points > 0 add points
grade A when score >= 70
grade C otherwise
channel lark = lark secret "LARK" signed "LARK_SIGN"
channel team = wecom secret "WECOM"
notify lark when grade becomes A
notify team when grade becomes A
"#,
    );
    let cfg = config(&format!(
        "[notify]\nallow_private = true\n[secrets]\nLARK = \"{}/open-apis/bot/v2/hook/xyz\"\nLARK_SIGN = \"l4rk\"\nWECOM = \"{}/cgi-bin/webhook/send?key=k\"\n",
        lark.url, wecom.url
    ));
    f.score("e1", 80, 0).await;
    assert_eq!(deliver(&f, &cfg).await.delivered, 2);
    let l = lark.received()[0].json();
    assert_eq!(l["msg_type"], "post");
    assert!(l["content"]["post"]["zh_cn"]["title"]
        .as_str()
        .unwrap()
        .contains("ann@x.com"));
    assert!(l["content"]["post"]["zh_cn"]["content"][0][0]["tag"] == "text");
    let ts: i64 = l["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(l["sign"], format::feishu_sign("l4rk", ts));
    let w = wecom.received()[0].json();
    assert_eq!(w["msgtype"], "markdown");
    assert!(w["markdown"]["content"]
        .as_str()
        .unwrap()
        .contains("ann@x.com"));
    assert!(wecom.received()[0].uri.ends_with("?key=k"));
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_retry_with_backoff_then_deliver_or_become_dead_letters() {
    // The receiver fails twice, then takes it; another is slower than the timeout once;
    // a third always fails; a DingTalk robot answers 200 with an error code first.
    let flaky = Receiver::start(script(vec![
        (500, "down", 0),
        (503, "busy", 0),
        (200, "ok", 0),
    ]))
    .await;
    let slow = Receiver::start(script(vec![(200, "late", 2500), (200, "ok", 0)])).await;
    let dead = Receiver::start(script(vec![(500, "no", 0)])).await;
    let ding = Receiver::start(script(vec![
        (200, r#"{"errcode":130101,"errmsg":"send too fast"}"#, 0),
        (200, r#"{"errcode":0,"errmsg":"ok"}"#, 0),
    ]))
    .await;
    let f = fixture(
        r#"when points > 0 add points
grade A when score >= 70
grade C otherwise
channel flaky = slack secret "FLAKY"
channel slow = wecom secret "SLOW"
channel dead = slack secret "DEAD"
channel ding = dingtalk secret "DING"
channel nosecret = slack secret "MISSING"
notify flaky when grade becomes A
notify slow when grade becomes A
notify dead when grade becomes A
notify ding when grade becomes A
notify nosecret when grade becomes A
"#,
    );
    let cfg = config(&format!(
        "[notify]\nallow_private = true\nmax_attempts = 3\nbackoff_secs = 10\ntimeout_secs = 1\n[secrets]\nFLAKY = \"{}/a\"\nSLOW = \"{}/b\"\nDEAD = \"{}/c\"\nDING = \"{}/d\"\n",
        flaky.url, slow.url, dead.url, ding.url
    ));
    f.score("e1", 80, 0).await;
    let t0 = f.clock.load(Ordering::SeqCst);
    let first = deliver(&f, &cfg).await;
    // The missing secret is a dead letter at once; the rest are due again in ~10 s.
    assert_eq!(
        (first.delivered, first.retried, first.failed),
        (0, 4, 1),
        "{first:?}"
    );
    let pending = f.store.notes(NoteStatus::Pending, 10, None).await.unwrap();
    for o in &pending {
        let wait = o.next_at - t0;
        assert!(
            (8_000_000..=12_500_000).contains(&wait),
            "backoff {wait} µs"
        );
        assert_eq!(o.attempts, 1);
    }
    assert!(pending.iter().any(|o| o
        .last_error
        .as_deref()
        .unwrap_or("")
        .contains("no answer within 1 s")));
    assert!(pending
        .iter()
        .any(|o| o.last_error.as_deref().unwrap_or("").contains("130101")));
    // Not due yet: nothing is sent.
    assert_eq!(deliver(&f, &cfg).await, Pass::default());
    f.clock.fetch_add(13_000_000, Ordering::SeqCst);
    let second = deliver(&f, &cfg).await;
    assert_eq!((second.delivered, second.retried), (2, 2), "{second:?}"); // slow, ding
    f.clock.fetch_add(60_000_000, Ordering::SeqCst);
    let third = deliver(&f, &cfg).await;
    assert_eq!((third.delivered, third.failed), (1, 1), "{third:?}"); // flaky; dead gives up
    assert_eq!(flaky.accepted().len(), 1);
    assert_eq!(dead.received().len(), 3);
    let failed = f.store.notes(NoteStatus::Failed, 10, None).await.unwrap();
    let mut names: Vec<&str> = failed.iter().map(|o| o.note.channel.as_str()).collect();
    names.sort();
    assert_eq!(names, ["dead", "nosecret"]);
    let missing = failed
        .iter()
        .find(|o| o.note.channel == "nosecret")
        .unwrap();
    assert!(missing
        .last_error
        .as_deref()
        .unwrap()
        .contains("LEADSCORE_SECRET_MISSING"));
    assert_eq!(missing.attempts, 1);
    // A dead letter requeued is delivered once its receiver works again.
    let d = failed.iter().find(|o| o.note.channel == "dead").unwrap();
    assert!(f
        .store
        .requeue_note(&d.note.lead, &d.note.id, f.clock.load(Ordering::SeqCst))
        .await
        .unwrap());
    let cfg_fixed = config(&format!(
        "[notify]\nallow_private = true\n[secrets]\nDEAD = \"{}/c\"\n",
        flaky.url
    ));
    assert_eq!(deliver(&f, &cfg_fixed).await.delivered, 1);
    assert_eq!(flaky.accepted().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_receivers_are_refused_unless_allowed() {
    let r = Receiver::ok().await;
    let f = fixture(&format!(
        "when points > 0 add points\ngrade A when score >= 70\ngrade C otherwise\nchannel hook = webhook \"{}/x\"\nnotify hook when grade becomes A\n",
        r.url
    ));
    f.score("e1", 80, 0).await;
    let pass = deliver(&f, &Config::default()).await;
    assert_eq!(pass.failed, 1);
    assert!(r.received().is_empty());
    let failed = f.store.notes(NoteStatus::Failed, 10, None).await.unwrap();
    assert!(failed[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("private address"));
}

#[tokio::test]
async fn the_stream_event_names_the_new_notifications() {
    let event: Value =
        serde_json::from_str(include_str!("data/lambda/dynamodb_stream.json")).unwrap();
    assert_eq!(
        leadscore_lambda::stream_notes(&event),
        vec![(
            "buyer@acme.de".to_string(),
            "5f1d0c8a9b2e4f6a7c3d1e0f9a8b7c6d".to_string()
        )]
    );
    let _ = Delivery::Delivered;
}
