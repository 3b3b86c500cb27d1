//! The Lambda entry, in-process: AWS's own Function URL and HTTP API (v2) request events,
//! converted by `lambda_http` and answered by the same router as `leadscore serve`.

use base64::Engine as _;
use leadscore_http::auth::sign;
use leadscore_lambda::{handle, init};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;

const SECRET: &str = "lambda-secret";
const TOKEN: &str = "lambda-token";

fn program_file(dir: &std::path::Path) -> PathBuf {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/001-zoho.rules"
    ))
    .unwrap();
    let program = leadscore_compiler::compile(&src, "001-zoho")
        .unwrap()
        .program;
    let path = dir.join("program.lsb");
    std::fs::write(&path, program.to_bytes()).unwrap();
    path
}

/// A fresh directory: process ids and thread ids repeat across runs, the clock does not.
fn tmp() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "leadscore-lambda-{}-{:?}-{}",
        std::process::id(),
        std::thread::current().id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    move |k| m.get(k).cloned()
}

/// A copy of an AWS sample event with this request's method, path, headers and body.
fn request(
    sample: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&[u8]>,
    base64: bool,
) -> lambda_http::Request {
    let file = format!("{}/tests/data/lambda/{sample}", env!("CARGO_MANIFEST_DIR"));
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    v["rawPath"] = json!(path);
    v["rawQueryString"] = json!(query);
    v.as_object_mut().unwrap().remove("queryStringParameters");
    v.as_object_mut().unwrap().remove("pathParameters");
    v["requestContext"]["http"]["method"] = json!(method);
    v["requestContext"]["http"]["path"] = json!(path);
    v["requestContext"]["http"]["sourceIp"] = json!("203.0.113.9");
    let h = v["headers"].as_object_mut().unwrap();
    for (k, val) in headers {
        h.insert(k.to_string(), json!(val));
    }
    match body {
        Some(b) if base64 => {
            v["body"] = json!(base64::engine::general_purpose::STANDARD.encode(b));
            v["isBase64Encoded"] = json!(true);
        }
        Some(b) => {
            v["body"] = json!(String::from_utf8(b.to_vec()).unwrap());
            v["isBase64Encoded"] = json!(false);
        }
        None => {
            v.as_object_mut().unwrap().remove("body");
        }
    }
    lambda_http::request::from_str(&v.to_string()).expect("lambda_http reads the event")
}

async fn answer(router: &axum::Router, req: lambda_http::Request) -> (u16, Value) {
    let r = handle(router.clone(), req).await;
    let status = r.status().as_u16();
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn function_url_and_http_api_requests_are_served_by_the_router() {
    let dir = tmp();
    let config = dir.join("config.toml");
    std::fs::write(&config, "[forms]\nrate_per_minute = 1\n").unwrap();
    let router = init(env(&[
        (
            "LEADSCORE_PROGRAM",
            program_file(&dir).display().to_string(),
        ),
        ("LEADSCORE_CONFIG", config.display().to_string()),
        (
            "LEADSCORE_STORE",
            format!("sqlite:{}", dir.join("l.db").display()),
        ),
        ("LEADSCORE_WEBHOOK_SECRET", SECRET.into()),
        ("LEADSCORE_READ_TOKEN", TOKEN.into()),
    ]))
    .await
    .map(leadscore_http::router)
    .expect("init");

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let at = chrono::DateTime::from_timestamp(now - 30, 0)
        .unwrap()
        .to_rfc3339();
    let body =
        json!({"id": "l1", "lead": "Lam@Bda.com", "type": "email.opened", "at": at}).to_string();
    let signed = vec![
        ("content-type", "application/json".to_string()),
        ("x-leadscore-timestamp", now.to_string()),
        ("x-leadscore-signature", sign(SECRET, now, body.as_bytes())),
    ];
    let (status, out) = answer(
        &router,
        request(
            "function_url_request.json",
            "POST",
            "/events",
            &signed,
            Some(body.as_bytes()),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["accepted"], 1);
    assert_eq!(out["leads"][0]["scores"]["engagement"], 5);

    // Unsigned: refused, as on `serve`.
    let (status, out) = answer(
        &router,
        request(
            "function_url_request.json",
            "POST",
            "/events",
            &[],
            Some(body.as_bytes()),
            false,
        ),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(out["error"], "unauthorized");

    // Reads through the HTTP API's v2 event, with the bearer token.
    let auth = vec![("authorization", format!("Bearer {TOKEN}"))];
    let (status, lead) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "GET",
            "/leads/lam@bda.com",
            &auth,
            None,
            false,
        ),
    )
    .await;
    assert_eq!(status, 200, "{lead}");
    assert_eq!(lead["score"], 5);
    assert_eq!(
        lead["contributions"][0]["rule"],
        "when email.opened add 5 each to engagement"
    );
    let (status, page) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "GET",
            "/leads?grade=C&limit=10",
            &auth,
            None,
            false,
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["leads"][0]["lead"], "lam@bda.com");

    // A form post, base64-encoded as API Gateway delivers it; the rate limit keys on the
    // request context's source address.
    let form = vec![(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    let (status, out) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "POST",
            "/forms/inquiry",
            &form,
            Some(b"email=form%40x.com&country=MY"),
            true,
        ),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["leads"][0]["scores"]["engagement"], 30,
        "inquiry in South-East Asia"
    );
    let (status, _) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "POST",
            "/forms/inquiry",
            &form,
            Some(b"email=again%40x.com"),
            true,
        ),
    )
    .await;
    assert_eq!(status, 429);

    let (status, health) = answer(
        &router,
        request(
            "function_url_request.json",
            "GET",
            "/healthz",
            &[],
            None,
            false,
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(health["ruleset"], "zoho-foreign-trade");
}

#[tokio::test]
async fn init_fails_clearly_on_a_bad_program_or_missing_secrets() {
    let dir = tmp();
    let secrets = || {
        vec![
            ("LEADSCORE_WEBHOOK_SECRET", SECRET.to_string()),
            ("LEADSCORE_READ_TOKEN", TOKEN.to_string()),
        ]
    };
    let missing = dir.join("missing.lsb").display().to_string();
    let mut e = secrets();
    e.push(("LEADSCORE_PROGRAM", missing));
    assert!(init(env(&e))
        .await
        .err()
        .expect("init fails")
        .contains("cannot read the program"));

    let corrupt = dir.join("corrupt.lsb");
    let mut bytes = std::fs::read(program_file(&dir)).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0xff;
    std::fs::write(&corrupt, bytes).unwrap();
    let mut e = secrets();
    e.push(("LEADSCORE_PROGRAM", corrupt.display().to_string()));
    assert!(init(env(&e))
        .await
        .err()
        .expect("init fails")
        .contains("is not a valid program"));

    let e = vec![(
        "LEADSCORE_PROGRAM",
        program_file(&dir).display().to_string(),
    )];
    assert!(init(env(&e))
        .await
        .err()
        .expect("init fails")
        .contains("LEADSCORE_WEBHOOK_SECRET"));
    let mut open = e.clone();
    open.push(("LEADSCORE_ALLOW_OPEN", "1".into()));
    assert!(init(env(&open)).await.is_ok());

    // Shadow rules: a bad file fails init; an empty setting (the template's default) or
    // a good program starts, the latter with the shadow running.
    let mut shadow = open.clone();
    shadow.push(("LEADSCORE_SHADOW_PROGRAM", corrupt.display().to_string()));
    assert!(init(env(&shadow))
        .await
        .err()
        .expect("init fails")
        .contains("is not a valid program"));
    let mut shadow = open.clone();
    shadow.push(("LEADSCORE_SHADOW_PROGRAM", String::new()));
    assert!(init(env(&shadow))
        .await
        .unwrap()
        .service
        .shadow_rules()
        .is_none());
    let mut shadow = open.clone();
    shadow.push((
        "LEADSCORE_SHADOW_PROGRAM",
        program_file(&dir).display().to_string(),
    ));
    let app = init(env(&shadow)).await.unwrap();
    assert_eq!(
        app.service.shadow_rules().unwrap().program.name,
        "zoho-foreign-trade"
    );

    // An A/B variant needs a share in percent.
    let mut variant = open.clone();
    variant.push((
        "LEADSCORE_VARIANT_PROGRAM",
        program_file(&dir).display().to_string(),
    ));
    variant.push(("LEADSCORE_VARIANT_SHARE", "ten".into()));
    assert!(init(env(&variant))
        .await
        .err()
        .expect("init fails")
        .contains("LEADSCORE_VARIANT_SHARE: `ten` is not a percentage"));
    variant.pop();
    variant.push(("LEADSCORE_VARIANT_SHARE", "12.5".into()));
    let app = init(env(&variant)).await.unwrap();
    assert_eq!(app.service.variant().unwrap().1, 1_250);
}

/// The Lambda entry on the DynamoDB store (moto on loopback, started by scripts/test.sh):
/// a lead's batch larger than one transaction is committed in ordered chunks and counted
/// exactly once, and resending it counts nothing.
#[tokio::test(flavor = "multi_thread")]
async fn on_dynamodb_a_large_batch_is_committed_in_chunks_exactly_once() {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    use leadscore_store::dynamo::DynamoStore;
    let endpoint = std::env::var("LEADSCORE_DYNAMODB_ENDPOINT").expect(
        "LEADSCORE_DYNAMODB_ENDPOINT must name a DynamoDB-compatible server (scripts/test.sh starts moto)",
    );
    let table = format!("lambda-{}", std::process::id());
    // The deployment creates the table from template.yaml; here the store does.
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table)
        .create_table()
        .await
        .unwrap();
    let dir = tmp();
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    let router = init(env(&[
        (
            "LEADSCORE_PROGRAM",
            program_file(&dir).display().to_string(),
        ),
        ("LEADSCORE_STORE", format!("dynamodb:{table}")),
        ("LEADSCORE_DYNAMODB_ENDPOINT", endpoint.clone()),
        ("LEADSCORE_ALLOW_OPEN", "1".into()),
    ]))
    .await
    .map(leadscore_http::router)
    .expect("init");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let events: Vec<Value> = (0..100)
        .map(|i| {
            let at = chrono::DateTime::from_timestamp(now - 1000 + i, 0)
                .unwrap()
                .to_rfc3339();
            json!({"id": format!("d{i}"), "lead": "dyn@amo.db", "type": "email.opened", "at": at})
        })
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    let json_ct = vec![("content-type", "application/json".to_string())];
    let (status, out) = answer(
        &router,
        request(
            "function_url_request.json",
            "POST",
            "/events",
            &json_ct,
            Some(&body),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["accepted"], 100);
    assert_eq!(out["leads"].as_array().unwrap().len(), 1);
    assert_eq!(out["leads"][0]["scores"]["engagement"], 500);
    let (status, out) = answer(
        &router,
        request(
            "function_url_request.json",
            "POST",
            "/events",
            &json_ct,
            Some(&body),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(out["accepted"], 0);
    assert_eq!(out["duplicates"].as_array().unwrap().len(), 100);
    let (_, lead) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "GET",
            "/leads/dyn@amo.db",
            &[],
            None,
            false,
        ),
    )
    .await;
    assert_eq!(lead["events"], 100);
    assert_eq!(lead["score"], 500);
    assert_eq!(
        lead["transitions"].as_array().unwrap().len(),
        3,
        "{}",
        lead["transitions"]
    );
    let (_, page) = answer(
        &router,
        request(
            "http_api_v2_request.json",
            "GET",
            "/leads?grade=A",
            &[],
            None,
            false,
        ),
    )
    .await;
    assert_eq!(page["leads"][0]["lead"], "dyn@amo.db");
}
