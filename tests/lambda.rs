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
    // Function URLs and HTTP APIs hand cookies over as their own list.
    if let Some((_, c)) = headers.iter().find(|(k, _)| *k == "cookie") {
        v["cookies"] = json!(c.split("; ").collect::<Vec<_>>());
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

/// Seed 001's follow-up section through the Lambda entry on DynamoDB (moto), with a clock
/// the test moves: a form makes an A lead,
/// assigned round robin, its owner told; an hour without a follow-up and the sweep mode's
/// invocation makes it overdue (tag, view, the managers' message delivered); a follow-up
/// clears it; a C lead rising by 20 in 7 days appears in its view.
#[tokio::test(flavor = "multi_thread")]
async fn seed_001s_followup_section_through_the_lambda_entry_on_dynamodb() {
    use leadscore_store::dynamo::DynamoStore;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::{Arc, Mutex};
    let endpoint = std::env::var("LEADSCORE_DYNAMODB_ENDPOINT")
        .expect("LEADSCORE_DYNAMODB_ENDPOINT (scripts/test.sh starts moto)");
    std::env::set_var("AWS_ACCESS_KEY_ID", "test");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "test");
    std::env::set_var("AWS_REGION", "us-east-1");
    let table = format!(
        "desk-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .load()
        .await;
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&shared), &table)
        .create_table()
        .await
        .unwrap();
    // Receivers: every message each got, by path.
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let sink = sink.clone();
        async move {
            let path = req.uri().path().to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                .await
                .unwrap();
            let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            sink.lock().unwrap().push((path, v));
            r#"{"errcode":0,"errmsg":"ok"}"#
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tmp();
    let desk = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/001-zoho.toml"
    ))
    .unwrap();
    let config = dir.join("leadscore.toml");
    std::fs::write(
        &config,
        format!(
            "{desk}\n[notify]\nallow_private = true\n[secrets]\nSLACK_SALES_URL = \"{url}/slack\"\nDINGTALK_MANAGERS_URL = \"{url}/ding\"\nDINGTALK_MANAGERS_SECRET = \"s\"\n[http.zoho]\nurl = \"{url}/crm\"\n"
        ),
    )
    .unwrap();
    let clock = Arc::new(AtomicI64::new(leadscore_runtime::time::now()));
    let c = clock.clone();
    let app = leadscore_lambda::init_with_clock(
        env(&[
            (
                "LEADSCORE_PROGRAM",
                program_file(&dir).display().to_string(),
            ),
            ("LEADSCORE_CONFIG", config.display().to_string()),
            ("LEADSCORE_STORE", format!("dynamodb:{table}")),
            ("LEADSCORE_DYNAMODB_ENDPOINT", endpoint.clone()),
            ("LEADSCORE_WEBHOOK_SECRET", SECRET.into()),
            ("LEADSCORE_READ_TOKEN", TOKEN.into()),
            ("LEADSCORE_READER_AMY", "amy-lambda".into()),
        ]),
        Arc::new(move || c.load(Ordering::SeqCst)),
    )
    .await
    .expect("init");
    let router = leadscore_http::router(app.clone());
    let notifier = leadscore_lambda::notifier(&app);
    let auth = vec![("authorization", format!("Bearer {TOKEN}"))];
    let get = |path: String| {
        let (router, auth) = (router.clone(), auth.clone());
        async move {
            let (status, v) = answer(
                &router,
                request(
                    "function_url_request.json",
                    "GET",
                    &path,
                    &auth,
                    None,
                    false,
                ),
            )
            .await;
            assert_eq!(status, 200, "{path}: {v}");
            v
        }
    };
    let leads = |v: &Value| -> Vec<String> {
        v["leads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["lead"].as_str().unwrap().to_string())
            .collect()
    };
    let form = vec![(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    )];
    for who in ["ann", "bob"] {
        let body = format!(
            "email={who}%40buyer.example&country=US&title=CEO&product=LED+Panel&message=500+pcs"
        );
        let (status, out) = answer(
            &router,
            request(
                "function_url_request.json",
                "POST",
                "/forms/inquiry",
                &form,
                Some(body.as_bytes()),
                false,
            ),
        )
        .await;
        assert_eq!(status, 200, "{out}");
        assert_eq!(out["leads"][0]["grade"], "A");
    }
    let ann = get("/leads/ann@buyer.example".into()).await;
    assert_eq!(ann["desk"]["owner"], "amy@firm.example", "{ann}");
    assert_eq!(
        get("/leads/bob@buyer.example".into()).await["desk"]["owner"],
        "li@firm.example"
    );
    // The stream's first delivery, as the notify mode would make it.
    notifier.deliver_due(100).await.unwrap();
    let slack: Vec<String> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/slack")
        .map(|(_, v)| v["text"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(
        slack
            .iter()
            .any(|t| t.contains("ann@buyer.example (A) is assigned to amy@firm.example")),
        "{slack:?}"
    );
    // An hour and a minute later: the sweep mode's invocation.
    clock.fetch_add(61 * 60_000_000, Ordering::SeqCst);
    let out = leadscore_lambda::sweep_once(&app, &notifier).await.unwrap();
    assert!(out["swept"].as_u64().unwrap() >= 2, "{out}");
    let ann = get("/leads/ann@buyer.example".into()).await;
    assert!(
        ann["tags"].as_array().unwrap().contains(&json!("overdue")),
        "{ann}"
    );
    let overdue = get("/views/overdue".into()).await;
    assert_eq!(
        leads(&overdue),
        ["ann@buyer.example", "bob@buyer.example"],
        "{overdue}"
    );
    let ding: Vec<Value> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p.starts_with("/ding"))
        .map(|(_, v)| v.clone())
        .collect();
    assert!(
        ding.iter()
            .any(|m| m.to_string().contains("no follow-up by")),
        "{ding:?}"
    );
    // Ann is called: cleared.
    let body =
        json!({"id": "call-1", "type": "call.completed", "owner": "amy@firm.example"}).to_string();
    let now = clock.load(Ordering::SeqCst) / 1_000_000;
    let path = "/leads/ann@buyer.example/followups";
    let signature = leadscore_http::auth::sign_v2(
        SECRET,
        now,
        leadscore_http::auth::Target {
            method: "POST",
            path_and_query: path,
        },
        body.as_bytes(),
    );
    let signed = vec![
        ("content-type", "application/json".to_string()),
        ("x-leadscore-timestamp", now.to_string()),
        ("x-leadscore-signature", signature),
    ];
    let (status, out) = answer(
        &router,
        request(
            "function_url_request.json",
            "POST",
            path,
            &signed,
            Some(body.as_bytes()),
            false,
        ),
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let ann = get("/leads/ann@buyer.example".into()).await;
    assert!(
        !ann["tags"].as_array().unwrap().contains(&json!("overdue")),
        "{ann}"
    );
    assert_eq!(
        leads(&get("/views/overdue".into()).await),
        ["bob@buyer.example"]
    );
    // A C lead warming up: 30 points today, none a week ago.
    let at = leadscore_runtime::time::format(clock.load(Ordering::SeqCst) - 60_000_000);
    let body = json!([
        {"id": "c1", "lead": "cara@buyer.example", "type": "page.viewed", "at": at,
         "props": {"page": "product"}},
        {"id": "c2", "lead": "cara@buyer.example", "type": "page.viewed", "at": at,
         "props": {"page": "pricing"}}
    ])
    .to_string();
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
    assert_eq!(out["leads"][0]["grade"], "C");
    assert_eq!(
        leads(&get("/views/c_warming".into()).await),
        ["cara@buyer.example"]
    );
    let history = get("/leads/cara@buyer.example/history?since=7d".into()).await;
    assert_eq!(history["points"].as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history["points"][0]["score"], 30);

    // The console through the same entry, on DynamoDB: amy signs in with her own token
    // (the Function URL is HTTPS: the cookie is Secure) and reads ann's page.
    let raw = |method: &'static str,
               path: &'static str,
               headers: Vec<(&'static str, String)>,
               body: Option<String>| {
        let router = router.clone();
        async move {
            let r = handle(
                router,
                request(
                    "function_url_request.json",
                    method,
                    path,
                    &headers,
                    body.as_deref().map(str::as_bytes),
                    false,
                ),
            )
            .await;
            let status = r.status().as_u16();
            let cookies: Vec<String> = r
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            let body = axum::body::to_bytes(r.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, cookies, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let (status, cookies, _) = raw("GET", "/app/login", vec![], None).await;
    assert_eq!(status, 200);
    let pre = cookies.iter().find(|c| c.starts_with("ls_pre=")).unwrap();
    let pre = pre
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("ls_pre=")
        .to_string();
    let (status, cookies, _) = raw(
        "POST",
        "/app/login",
        vec![
            ("content-type", "application/x-www-form-urlencoded".into()),
            ("cookie", format!("ls_pre={pre}")),
        ],
        Some(format!("token=amy-lambda&csrf={pre}&next=%2Fapp")),
    )
    .await;
    assert_eq!(status, 303);
    let session = cookies
        .iter()
        .find(|c| c.starts_with("ls_session="))
        .unwrap();
    assert!(
        session.contains("Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    let session = session.split(';').next().unwrap().to_string();
    let (status, _, html) = raw(
        "GET",
        "/app/leads/ann%40buyer.example",
        vec![("cookie", session.clone())],
        None,
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("id=\"why\"") && html.contains("amy@firm.example"),
        "{html}"
    );
    let (status, _, html) = raw("GET", "/app?tab=overdue", vec![("cookie", session)], None).await;
    assert_eq!(status, 200);
    assert!(html.contains("bob@buyer.example"), "{html}");
    let (status, _, _) = raw("GET", "/app/leads/ann%40buyer.example", vec![], None).await;
    assert_eq!(status, 303, "no session, no lead");
}
