//! What the tests that start `leadscore serve` share: the server as a child process on a
//! real SQLite file, signing, reads, and a headless Chromium.
#![allow(dead_code)]

use leadscore_http::auth::sign;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const SECRET: &str = "s3cret-current";
pub const OLD_SECRET: &str = "s3cret-previous";
pub const TOKEN: &str = "read-token";

pub struct Server {
    pub child: Child,
    pub url: String,
    pub log: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(rules: &Path, db: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Server {
        let args: Vec<&std::ffi::OsStr> = match config {
            Some(c) => vec!["--config".as_ref(), c.as_os_str()],
            None => Vec::new(),
        };
        Server::start_with(rules, db, &args, env)
    }

    /// With more arguments for `leadscore serve`.
    pub fn start_with(
        rules: &Path,
        db: &Path,
        args: &[&std::ffi::OsStr],
        env: &[(&str, &str)],
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadscore"));
        cmd.arg("serve")
            .arg(rules)
            .arg("--db")
            .arg(db)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("LEADSCORE_WEBHOOK_SECRET")
            .env_remove("LEADSCORE_READ_TOKEN")
            .env_remove("LEADSCORE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("leadscore serve starts");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on http://") {
                    // Text or JSON lines alike: the address ends at a quote or a space.
                    let rest = &line[i + "listening on ".len()..];
                    let url = rest.split(['"', ' ']).next().unwrap_or(rest);
                    let _ = tx.send(url.trim().to_string());
                }
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start:\n{}", log.lock().unwrap()));
        Server { child, url, log }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGTERM, then wait for a graceful exit.
    pub fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(
            status.success(),
            "serve exited with {status}\n{}",
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "leadscore-http-{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub fn zoho() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/001-zoho.rules")
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub fn iso(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn event(id: &str, lead: &str, ty: &str) -> Value {
    json!({"id": id, "lead": lead, "type": ty, "at": iso(now_secs() - 60)})
}

pub async fn post_signed(
    c: &Client,
    s: &Server,
    secret: &str,
    ts: i64,
    body: &Value,
) -> reqwest::Response {
    let body = body.to_string();
    c.post(s.at("/events"))
        .header("content-type", "application/json")
        .header("x-leadscore-timestamp", ts.to_string())
        .header("x-leadscore-signature", sign(secret, ts, body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap()
}

pub async fn get_lead(c: &Client, s: &Server, lead: &str) -> (StatusCode, Value) {
    let r = c
        .get(s.at(&format!("/leads/{lead}")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

pub fn secured() -> Vec<(&'static str, &'static str)> {
    vec![
        ("LEADSCORE_WEBHOOK_SECRET", SECRET),
        ("LEADSCORE_WEBHOOK_SECRET_PREVIOUS", OLD_SECRET),
        ("LEADSCORE_READ_TOKEN", TOKEN),
    ]
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Debian's Chromium (scripts/test.sh installs it; the tests fail without it).
pub fn chromium() -> &'static str {
    ["chromium", "/usr/bin/chromium"]
        .into_iter()
        .find(|c| {
            Command::new(c)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("Debian's chromium is needed for this test (scripts/test.sh installs it)")
}

/// Loads `url` in a headless Chromium with a fresh profile, lets the page run (and
/// navigate) for up to `budget_ms` of virtual time, and returns the DOM it ends on.
pub fn browse(url: &str, profile: &Path, budget_ms: u32, user_agent: Option<&str>) -> String {
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--dump-dom",
    ])
    .arg(format!("--virtual-time-budget={budget_ms}"))
    .arg(format!("--user-data-dir={}", profile.display()));
    if let Some(ua) = user_agent {
        cmd.arg(format!("--user-agent={ua}"));
    }
    let out = cmd.arg(url).output().expect("chromium runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A website on loopback: each path answers its page (HTML); anything else 404.
pub struct Site {
    pub origin: String,
}

impl Site {
    /// Binds a port first, so that the origin can go into leadscore's configuration
    /// before the pages (which name leadscore's address) are known.
    pub fn reserve() -> (std::net::TcpListener, String) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        (listener, origin)
    }

    pub fn serve(
        listener: std::net::TcpListener,
        origin: String,
        pages: Vec<(&'static str, String)>,
    ) -> Site {
        use std::io::{Read, Write};
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut st) = stream else { continue };
                let mut buf = [0u8; 8192];
                let n = st.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("/")
                    .split('?')
                    .next()
                    .unwrap_or("/")
                    .to_string();
                let (status, body) = match pages.iter().find(|(p, _)| *p == path) {
                    Some((_, html)) => ("200 OK", html.clone()),
                    None => ("404 Not Found", "not found".to_string()),
                };
                let _ = write!(
                    st,
                    "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Site { origin }
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

/// Asserts that no row of any table of the SQLite file holds any of `needles` (in any
/// case): what erasure promises.
pub fn assert_nowhere(db: &Path, needles: &[&str]) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in &tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {table}")).unwrap();
        let columns = stmt.column_count();
        let rows: Vec<String> = stmt
            .query_map([], |r| {
                Ok((0..columns)
                    .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                    .collect::<Vec<_>>()
                    .join("|"))
            })
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for row in rows {
            let low = row.to_lowercase();
            for n in needles {
                assert!(!low.contains(&n.to_lowercase()), "{n} in {table}: {row}");
            }
        }
    }
}

/// The `v2` signature of a request to `url` (its path and query are what is signed).
pub fn sign_v2(secret: &str, ts: i64, method: &str, url: &str, body: &[u8]) -> String {
    let u = reqwest::Url::parse(url).expect("an absolute URL");
    let path_and_query = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    };
    leadscore_http::auth::sign_v2(
        secret,
        ts,
        leadscore_http::auth::Target {
            method,
            path_and_query: &path_and_query,
        },
        body,
    )
}

/// A signed request (`POST /leads/{lead}/merge`, `DELETE /leads/{lead}`): `v2`, which
/// binds the method, path and query as well as the body.
pub async fn send_signed(
    c: &Client,
    method: reqwest::Method,
    url: String,
    body: &Value,
) -> reqwest::Response {
    let body = body.to_string();
    let ts = now_secs();
    let signature = sign_v2(SECRET, ts, method.as_str(), &url, body.as_bytes());
    c.request(method, url)
        .header("content-type", "application/json")
        .header("x-leadscore-timestamp", ts.to_string())
        .header("x-leadscore-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Polls `GET /leads/{lead}` until it answers 200 (a browser's requests land a little
/// after it exits).
pub async fn wait_for_lead(c: &Client, s: &Server, lead: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, v) = get_lead(c, s, lead).await;
        if status == 200 {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no lead {lead}\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A headless Chromium driven over WebDriver (Debian's chromium-driver, which
/// scripts/test.sh installs): pages visited one after another as a person would, the
/// browser's cookies and storage kept between them.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: Client,
}

impl Browser {
    /// `user_agent`: `None` keeps headless Chromium's own (`HeadlessChrome`); `prefs`:
    /// Chromium preferences (`{"enable_do_not_track": true}`).
    pub async fn start(user_agent: Option<&str>, prefs: Value) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Debian's chromium-driver is needed (scripts/test.sh installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let http = Client::new();
        let mut args = vec![
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
        ];
        if let Some(ua) = user_agent {
            args.push(format!("--user-agent={ua}"));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args, "prefs": prefs},
        }}});
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let session = loop {
            match http
                .post(format!("{base}/session"))
                .json(&caps)
                .send()
                .await
            {
                Ok(r) => {
                    let v: Value = r.json().await.unwrap();
                    match v["value"]["sessionId"].as_str() {
                        Some(id) => break id.to_string(),
                        None => panic!("no WebDriver session: {v}"),
                    }
                }
                Err(_) if std::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("chromedriver did not start: {e}"),
            }
        };
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut r = self.http.request(method.clone(), url);
        if method == reqwest::Method::POST {
            r = r.json(&body);
        }
        let r = r.send().await.unwrap();
        let v: Value = r.json().await.unwrap();
        assert!(v["value"].get("error").is_none(), "WebDriver {path}: {v}");
        v["value"].clone()
    }

    /// Loads a page and waits until it has loaded.
    pub async fn visit(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// Runs a script in the page; its `return` value.
    pub async fn run(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Runs an asynchronous script (it calls `arguments[0]` with its result).
    pub async fn run_async(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/async",
            json!({"script": script, "args": []}),
        )
        .await
    }

    /// Waits until `expr` (a JavaScript expression) is true in the page.
    pub async fn wait_js(&self, expr: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if self.run(&format!("return !!({expr})")).await == json!(true) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never true: {expr}\n{}",
                self.run("return document.body.innerText").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The page's address now.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Sets the window's size (screenshots).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// A PNG of the window.
    pub async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or(""))
            .unwrap()
    }

    pub async fn delete_cookie(&self, name: &str) {
        self.call(
            reqwest::Method::DELETE,
            &format!("/cookie/{name}"),
            json!({}),
        )
        .await;
    }

    /// Waits until the page's document is `url` and loaded (after a form's navigation).
    pub async fn wait_for_url(&self, url: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.call(reqwest::Method::GET, "/url", Value::Null).await;
            let state = self.run("return document.readyState").await;
            if now == url && state == "complete" {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "still on {now}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn quit(mut self) {
        let url = format!("{}/session/{}", self.base, self.session);
        let _ = self.http.delete(url).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// A SendGrid Signed Event Webhook key pair for tests: the public half for
/// `LEADSCORE_SENDGRID_PUBLIC_KEY`, the private half signs as SendGrid does.
pub struct SendGridKey {
    signing: p256::ecdsa::SigningKey,
    /// Base64 DER, as SendGrid shows it.
    pub public: String,
}

impl SendGridKey {
    pub fn new(seed: u8) -> SendGridKey {
        use base64::Engine;
        use p256::pkcs8::EncodePublicKey;
        let signing = p256::ecdsa::SigningKey::from_bytes(&[seed; 32].into()).unwrap();
        let public = base64::engine::general_purpose::STANDARD.encode(
            signing
                .verifying_key()
                .to_public_key_der()
                .unwrap()
                .as_bytes(),
        );
        SendGridKey { signing, public }
    }

    /// `X-Twilio-Email-Event-Webhook-Signature` for `body` sent at `timestamp`.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        use base64::Engine;
        use p256::ecdsa::signature::Signer;
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let sig: p256::ecdsa::Signature = self.signing.sign(&signed);
        base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
    }
}

/// `leadscore serve` with the Zoho example, a read token and forms allowed from `origins`.
pub fn serve_for_site(dir: &Path, origins: &[&str]) -> Server {
    let config = dir.join("leadscore.toml");
    let list: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
    std::fs::write(
        &config,
        format!("[forms]\nallowed_origins = [{}]\n", list.join(", ")),
    )
    .unwrap();
    Server::start(
        &zoho(),
        &dir.join("l.db"),
        Some(&config),
        &[("LEADSCORE_READ_TOKEN", TOKEN)],
    )
}

/// `GET /leads/{lead}/export` with the read token.
pub async fn export(c: &Client, s: &Server, lead: &str) -> Value {
    c.get(s.at(&format!("/leads/{lead}/export")))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// One request a [`Receiver`] took.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// How a [`Receiver`] answers its `n`th request (from 0): a status, a body, and how long
/// it takes first.
pub type Script = Arc<dyn Fn(usize) -> (u16, String, Duration) + Send + Sync>;

/// A notification receiver on loopback (a stand-in for Slack, DingTalk, a CRM…) that
/// records every request and answers as its script says.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Received>>>,
    /// Requests that arrived (answered or still being answered).
    pub arrived: Arc<std::sync::atomic::AtomicUsize>,
}

impl Receiver {
    pub async fn start(script: Script) -> Receiver {
        use axum::extract::Request;
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let arrived = seen.clone();
        let sink = got.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let (sink, script, seen) = (sink.clone(), script.clone(), seen.clone());
            async move {
                let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (status, answer, delay) = script(n);
                let method = req.method().to_string();
                let uri = req.uri().to_string();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default()
                    .to_vec();
                // Recorded as it arrives: a sender that dies while the answer is slow
                // still delivered it.
                sink.lock().unwrap().push(Received {
                    method,
                    uri,
                    headers,
                    body,
                    status,
                });
                tokio::time::sleep(delay).await;
                (axum::http::StatusCode::from_u16(status).unwrap(), answer)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, got, arrived }
    }

    /// Always `200 ok`.
    pub async fn ok() -> Receiver {
        Receiver::start(Arc::new(|_| (200, "ok".into(), Duration::ZERO))).await
    }

    pub fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `n` requests were answered 2xx.
    pub async fn wait_accepted(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let got = self.accepted();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {n} accepted; received: {:?}",
                got.len(),
                self.received().iter().map(|r| r.status).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The DynamoDB-compatible server the tests run against (scripts/test.sh starts moto on
/// loopback and names it); a test that needs it fails, never skips, without it.
pub fn moto() -> String {
    std::env::var("LEADSCORE_DYNAMODB_ENDPOINT").expect(
        "LEADSCORE_DYNAMODB_ENDPOINT must name a DynamoDB-compatible server (scripts/test.sh starts moto)",
    )
}

/// AWS configuration for a test server: its endpoint, test credentials, one region.
pub async fn moto_config(endpoint: &str) -> aws_config::SdkConfig {
    use aws_sdk_dynamodb::config::{Credentials, Region};
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await
}

pub async fn dynamo_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&moto_config(endpoint).await)
}

/// A table of its own for one test: `name`, the process and the instant.
pub fn table_name(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// A new, empty store on its own table.
pub async fn new_table(
    client: aws_sdk_dynamodb::Client,
    name: &str,
) -> leadscore_store::dynamo::DynamoStore {
    let store = leadscore_store::dynamo::DynamoStore::new(client, table_name(name));
    store.create_table().await.expect("table created");
    store
}

/// One request to a router in this process (no listener): its status and JSON body
/// (`null` when the body is not JSON).
pub async fn oneshot(
    router: &axum::Router,
    req: axum::http::Request<axum::body::Body>,
) -> (u16, Value) {
    use tower::ServiceExt;
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 16 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}
