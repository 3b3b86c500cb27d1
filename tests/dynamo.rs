//! What the service costs on DynamoDB, counted by an SDK interceptor on every request the
//! client sends (retries included), against the DynamoDB-compatible server scripts/test.sh
//! starts: an event is one strongly consistent read and one transaction; a request that
//! only repeats stored events writes nothing.

mod common;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use common::{moto, moto_config, table_name};
use leadscore_service::{parse_events, Service};
use leadscore_store::dynamo::DynamoStore;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

/// The DynamoDB operation of every request sent (`x-amz-target: DynamoDB_20120810.GetItem`).
#[derive(Debug, Default, Clone)]
struct Sent(Arc<Mutex<Vec<String>>>);

impl Sent {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for Sent {
    fn name(&self) -> &'static str {
        "count DynamoDB requests"
    }

    fn read_before_transmit(
        &self,
        ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = ctx.request().headers().get("x-amz-target").unwrap_or("?");
        let op = target.rsplit('.').next().unwrap_or(target).to_string();
        self.0.lock().unwrap().push(op);
        Ok(())
    }
}

async fn service(rules: &str) -> (Service, Sent) {
    let shared = moto_config(&moto()).await;
    let sent = Sent::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&shared)
        .interceptor(sent.clone())
        .build();
    let table = table_name("requests");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), table);
    store.create_table().await.expect("table created");
    sent.take();
    let program = leadscore_compiler::compile(rules, "t")
        .expect("compiles")
        .program;
    (Service::new(program, Arc::new(store)), sent)
}

async fn post(s: &Service, body: Value) -> Value {
    let events = parse_events(&body, s.now()).expect("valid");
    s.ingest(events).await.expect("stored").to_json()
}

fn event(id: &str, lead: &str, at: &str) -> Value {
    json!({"id": id, "lead": lead, "type": "email.opened", "at": at})
}

#[tokio::test]
async fn an_event_costs_one_read_and_one_write() {
    let (s, sent) =
        service("when email.opened add 10 each\ngrade A when score >= 30\ngrade B otherwise\n")
            .await;
    let one = ["BatchGetItem", "TransactWriteItems"];

    // A new lead, then an event on a stored lead, then one crossing a grade (a transition
    // item rides in the same transaction).
    for (id, at, score) in [
        ("e1", "2026-11-01T00:00:00Z", 10),
        ("e2", "2026-11-01T01:00:00Z", 20),
        ("e3", "2026-11-01T02:00:00Z", 30),
    ] {
        let out = post(&s, event(id, "a@x.com", at)).await;
        assert_eq!(out["leads"][0]["score"], score);
        assert_eq!(sent.take(), one, "event {id}");
    }

    // Ten events for one lead in one request: still one read and one write.
    let batch: Vec<Value> = (0..10)
        .map(|i| event(&format!("b{i}"), "b@x.com", "2026-11-01T00:00:00Z"))
        .collect();
    let out = post(&s, Value::Array(batch)).await;
    assert_eq!(out["leads"][0]["score"], 100);
    assert_eq!(sent.take(), one);

    // Redelivered: read, recognised, nothing written.
    let out = post(&s, event("e3", "a@x.com", "2026-11-01T02:00:00Z")).await;
    assert_eq!(out["duplicates"], json!(["e3"]), "{out}");
    assert_eq!(sent.take(), ["BatchGetItem"]);
    assert_eq!(
        s.lead("a@x.com").await.unwrap().found().unwrap()["score"],
        30
    );
}
