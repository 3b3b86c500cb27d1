//! The fuzz targets: each takes any bytes and must neither panic nor answer a server
//! error. `fuzz/` runs them under libFuzzer (docs/testing.md); `tests/corpus.rs` replays
//! their committed seed corpus and every crasher ever found, in every test run.
//!
//! | target | what it feeds |
//! |---|---|
//! | `rules` | the parser and compiler (and, for what compiles, encoding, loading and listing) |
//! | `bytecode` | the program loader (and, for what loads, the engine on one lead) |
//! | `event` | the event JSON decoder and a request's validation |
//! | `form` | `POST /forms/{form}` in its three encodings and others |
//! | `beacon` | `POST /track` and `GET /track` |
//! | `adapters` | SendGrid's Event Webhook (signed), Inbound Parse, Mailchimp |
//!
//! ```
//! leadscore_fuzz_targets::rules(b"when x add 1\ngrade A otherwise\n");
//! leadscore_fuzz_targets::form(b"\x00email=a@b.c");
//! ```
#![forbid(unsafe_code)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use leadscore_http::{App, Config};
use leadscore_runtime::bytecode::{disassemble, Program};
use leadscore_runtime::engine::Engine;
use leadscore_runtime::event::Event;
use leadscore_service::{parse_events, Service};
use leadscore_store::memory::MemoryStore;
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

/// The rules every HTTP target runs under: seed 001's, with its channels.
const RULES: &str = include_str!("../../examples/001-zoho.rules");
/// The fixed instant the targets run at: inputs stay reproducible.
const NOW: i64 = 1_795_000_000_000_000;

pub fn rules(data: &[u8]) {
    let src = String::from_utf8_lossy(data);
    let Ok(out) = leadscore_compiler::compile(&src, "fuzz") else {
        return;
    };
    let bytes = out.program.to_bytes();
    let loaded = Program::from_bytes(&bytes).expect("a compiled program loads");
    assert_eq!(loaded, out.program, "a program survives its encoding");
    disassemble(&loaded);
}

pub fn bytecode(data: &[u8]) {
    let Ok(p) = Program::from_bytes(data) else {
        return;
    };
    disassemble(&p);
    let mut engine = Engine::new(&p);
    let event = Event::from_json(&serde_json::json!({
        "id": "e", "lead": "l", "type": "email.opened", "at": "2026-11-01T00:00:00Z",
        "attributes": {"country": "DE", "points": 7}, "props": {"page": "pricing"}}))
    .expect("a valid event");
    if let Ok(lead) = engine.rebuild("l", std::slice::from_ref(&event), NOW, &mut Vec::new()) {
        engine.evaluate(&lead, NOW, Some(&mut Vec::new()));
    }
}

pub fn event(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = Event::from_json(&v);
    let _ = parse_events(&v, NOW);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

fn program() -> &'static Program {
    static P: OnceLock<Program> = OnceLock::new();
    P.get_or_init(|| {
        leadscore_compiler::compile(RULES, "fuzz")
            .expect("the example compiles")
            .program
    })
}

/// The SendGrid key pair the adapter target signs with.
fn sendgrid() -> &'static (p256::ecdsa::SigningKey, String) {
    static K: OnceLock<(p256::ecdsa::SigningKey, String)> = OnceLock::new();
    K.get_or_init(|| {
        use base64::Engine as _;
        use p256::pkcs8::EncodePublicKey;
        let key = p256::ecdsa::SigningKey::from_bytes(&[5u8; 32].into()).expect("a key");
        let public = key
            .verifying_key()
            .to_public_key_der()
            .expect("encodes")
            .as_bytes()
            .to_vec();
        (
            key,
            base64::engine::general_purpose::STANDARD.encode(public),
        )
    })
}

/// Sends one request to a fresh app on a memory store; a panic or a 5xx is a finding.
fn send(req: Request<Body>) {
    runtime().block_on(async {
        let mut config = Config::default();
        config.forms.rate_per_minute = 0;
        config.track.rate_per_minute = 0;
        config.hooks.sendgrid_public_key = Some(sendgrid().1.clone());
        config.hooks.mailchimp_key = Some("k".into());
        config.hooks.sendgrid_inbound_key = Some("k".into());
        let service = Service::with_clock(
            program().clone(),
            Arc::new(MemoryStore::new()),
            Arc::new(|| NOW),
        );
        let app = leadscore_http::router(App::new(Arc::new(service), config));
        let what = format!("{} {}", req.method(), req.uri());
        let Ok(res) = app.oneshot(req).await;
        assert!(
            !res.status().is_server_error() || res.status() == StatusCode::REQUEST_TIMEOUT,
            "{what} answered {}",
            res.status()
        );
    });
}

/// Splits off the first byte: which variant of the request the input is.
fn pick(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, &[]),
    }
}

fn post(uri: &str, ctype: &str, body: &[u8]) -> Request<Body> {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::CONTENT_TYPE, ctype)
        .header(
            header::USER_AGENT,
            "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0",
        )
        .body(Body::from(body.to_vec()))
        .expect("a request")
}

pub fn form(data: &[u8]) {
    let (which, body) = pick(data);
    let ctype = match which % 5 {
        0 => "application/x-www-form-urlencoded",
        1 => "multipart/form-data; boundary=X",
        2 => "application/json",
        3 => "multipart/form-data",
        _ => "text/plain",
    };
    send(post("/forms/inquiry", ctype, body));
}

pub fn beacon(data: &[u8]) {
    let (which, body) = pick(data);
    match which % 3 {
        0 => send(post("/track", "text/plain;charset=UTF-8", body)),
        1 => send(post("/track", "application/json", body)),
        _ => {
            let query = String::from_utf8_lossy(body);
            let uri = format!("/track?{}", query.replace([' ', '#'], "%20"));
            let Ok(req) = Request::builder()
                .uri(uri)
                .header(header::USER_AGENT, "Mozilla/5.0 Chrome/130.0")
                .body(Body::empty())
            else {
                return;
            };
            send(req);
        }
    }
}

pub fn adapters(data: &[u8]) {
    let (which, body) = pick(data);
    match which % 3 {
        0 => {
            use base64::Engine as _;
            use p256::ecdsa::signature::Signer;
            let ts = "1795000000";
            let mut signed = ts.as_bytes().to_vec();
            signed.extend_from_slice(body);
            let sig: p256::ecdsa::Signature = sendgrid().0.sign(&signed);
            let mut req = post("/hooks/sendgrid", "application/json", body);
            let h = req.headers_mut();
            h.insert(
                "x-twilio-email-event-webhook-signature",
                base64::engine::general_purpose::STANDARD
                    .encode(sig.to_der().as_bytes())
                    .parse()
                    .expect("a header"),
            );
            h.insert(
                "x-twilio-email-event-webhook-timestamp",
                ts.parse().expect("a header"),
            );
            send(req);
        }
        1 => send(post(
            "/hooks/sendgrid/inbound?key=k",
            "multipart/form-data; boundary=xYzZY",
            body,
        )),
        _ => send(post(
            "/hooks/mailchimp?key=k",
            "application/x-www-form-urlencoded",
            body,
        )),
    }
}

/// A target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target by name, for the corpus replay.
pub const TARGETS: [(&str, Target); 6] = [
    ("rules", rules),
    ("bytecode", bytecode),
    ("event", event),
    ("form", form),
    ("beacon", beacon),
    ("adapters", adapters),
];
