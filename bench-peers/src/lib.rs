//! The seed-001 scheme (`examples/001-zoho.rules`) four ways, for benchmarks (a)–(c) of
//! docs/performance.md: leadscore's compiled program, a hand-written Rust function (the
//! floor), GoRules ZEN's expression VM (`zen-expression`) and `cel-interpreter`.
//!
//! Every engine gets the same synthetic leads: attributes as JSON (as a webhook brings
//! them) and a behaviour state. leadscore's behaviour state is its own lead state, built
//! by replaying each lead's events once; the other engines get the facts the rules need,
//! summarised from the same events. Each evaluation then builds its input from that and
//! scores the lead at `now`.

use leadscore_runtime::bytecode::Program;
use leadscore_runtime::engine::Engine;
use leadscore_runtime::event::Event;
use leadscore_runtime::state::LeadState;
use leadscore_runtime::time::{self, Micros};
use serde_json::{json, Map, Value};

pub const RULES: &str = include_str!("../../examples/001-zoho.rules");
pub const NOW: &str = "2026-11-20T00:00:00Z";

const DAY: i64 = 86_400;

/// What the rules say about one lead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scores {
    pub fit: i64,
    pub engagement: i64,
    pub grade: char,
}

impl Scores {
    fn new(fit: i64, engagement: i64) -> Scores {
        let total = fit + engagement;
        let grade = if total >= 70 {
            'A'
        } else if total >= 40 {
            'B'
        } else {
            'C'
        };
        Scores {
            fit,
            engagement,
            grade,
        }
    }
}

/// The behaviour facts seed 001's event rules need, as a peer engine's input holds them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Behaviour {
    pub visited: bool,
    pub visits_3_in_7d: bool,
    pub viewed_product: bool,
    pub viewed_pricing: bool,
    pub contact_form: bool,
    pub inquiry_form: bool,
    pub opens: i64,
    pub clicks: i64,
    pub replied: bool,
    pub whatsapp: bool,
    pub long_call: bool,
    pub unsubscribed_2_in_7d: bool,
    /// Unix seconds of the lead's latest event.
    pub last_seen: i64,
}

pub struct Lead {
    pub key: String,
    /// Attributes as sent: absent when the lead never gave one.
    pub attributes: Map<String, Value>,
    pub events: Vec<Event>,
    pub behaviour: Behaviour,
}

/// xorshift64*: deterministic synthetic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn now_secs() -> i64 {
    time::parse(NOW).expect("NOW parses") / 1_000_000
}

/// `n` varied leads: every country tier, product class and role tier, Chinese and
/// English messages, dense and sparse visit and unsubscribe patterns, and inactivity
/// on both sides of 30 days (and exactly on it).
pub fn leads(n: usize) -> Vec<Lead> {
    let mut rng = Rng(0x5EED_0001_2026_1123);
    let now = now_secs();
    (0..n).map(|i| lead(&mut rng, i, now)).collect()
}

fn lead(rng: &mut Rng, i: usize, now: i64) -> Lead {
    let key = format!("lead{i}@example.com");
    let mut attributes = Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            attributes.insert(k.to_string(), Value::String(v.to_string()));
        }
    };
    put(
        "country",
        rng.pick(&[
            "US", "DE", "jp", "PL", "MY", "MX", "KP", "IR", "SG", "FR", "BR", "CN", "IN", "EG", "",
            "",
        ]),
    );
    put(
        "product",
        rng.pick(&[
            "LED Panel",
            "solar inverter",
            "LED bulb",
            "Cable",
            "furniture",
            "Textiles",
            "widget",
            "",
            "",
            "",
        ]),
    );
    put(
        "title",
        rng.pick(&[
            "CEO",
            "Purchasing Manager",
            "Project Manager",
            "Senior Engineer",
            "Admin Assistant",
            "Owner & Director",
            "Designer",
            "Intern",
            "Buyer",
            "",
            "",
        ]),
    );
    put(
        "message",
        rng.pick(&[
            "We need 500 pcs of LED panels, please quote.",
            "Please send your catalogue.",
            "请告知规格和采购量",
            "What is the MOQ?",
            "Hello there",
            "",
        ]),
    );
    let bonus = [0, 0, 0, 10, 20, 35][rng.below(6) as usize];
    if bonus > 0 {
        attributes.insert("sales_bonus".into(), json!(bonus));
    }

    // Behaviour as offsets in seconds from the lead's first event.
    let mut timeline: Vec<(i64, &str, Value)> = Vec::new();
    let mut b = Behaviour::default();
    let visits = rng.below(5) as i64;
    let dense = rng.chance(50);
    let first_visit = (rng.below(10) as i64 + 1) * DAY;
    for v in 0..visits {
        let gap = if dense { DAY } else { 10 * DAY };
        timeline.push((first_visit + v * gap, "site.visited", json!({})));
    }
    b.visited = visits > 0;
    b.visits_3_in_7d = visits >= 3 && dense;
    let mut once = |rng: &mut Rng, ty: &'static str, props: Value| -> bool {
        if rng.chance(15) {
            timeline.push(((rng.below(40 * 24) as i64 + 1) * 3600, ty, props));
            true
        } else {
            false
        }
    };
    b.viewed_product = once(rng, "page.viewed", json!({"page": "product"}));
    b.viewed_pricing = once(rng, "page.viewed", json!({"page": "pricing"}));
    b.contact_form = once(rng, "form.submitted", json!({"form": "contact"}));
    b.inquiry_form = once(rng, "form.submitted", json!({"form": "inquiry"}));
    b.replied = once(rng, "email.replied", json!({}));
    b.whatsapp = once(rng, "whatsapp.added", json!({}));
    let minutes = [0, 0, 3, 5, 12][rng.below(5) as usize];
    if minutes > 0 {
        timeline.push((20 * DAY, "call.completed", json!({ "minutes": minutes })));
    }
    b.long_call = minutes >= 5;
    b.opens = rng.below(4) as i64;
    for k in 0..b.opens {
        timeline.push((2 * DAY + k * 7200, "email.opened", json!({})));
    }
    b.clicks = rng.below(2) as i64;
    for k in 0..b.clicks {
        timeline.push((3 * DAY + k * 7200, "email.clicked", json!({})));
    }
    let unsubscribes = rng.below(3) as i64;
    let unsubscribe_gap = if rng.chance(50) { DAY } else { 20 * DAY };
    for k in 0..unsubscribes {
        timeline.push((
            5 * DAY + k * unsubscribe_gap,
            "email.unsubscribed",
            json!({}),
        ));
    }
    b.unsubscribed_2_in_7d = unsubscribes == 2 && unsubscribe_gap == DAY;

    // The lead's latest event lies 1 to 45 days (exactly 30 for some) before now.
    let last = timeline.iter().map(|t| t.0).max().unwrap_or(0);
    let silent = [
        DAY,
        10 * DAY,
        29 * DAY,
        30 * DAY,
        30 * DAY - 1,
        31 * DAY,
        45 * DAY,
    ][rng.below(7) as usize];
    let start = now - silent - last;
    b.last_seen = now - silent;

    let mut events = vec![json!({
        "id": format!("{key}/0"), "lead": key, "type": "lead.created",
        "at": time::format(start * 1_000_000), "attributes": Value::Object(attributes.clone()),
    })];
    timeline.sort_by_key(|t| t.0);
    for (n, (offset, ty, props)) in timeline.into_iter().enumerate() {
        events.push(json!({
            "id": format!("{key}/{}", n + 1), "lead": key, "type": ty,
            "at": time::format((start + offset) * 1_000_000), "props": props,
        }));
    }
    let events = events
        .iter()
        .map(|e| Event::from_json(e).expect("synthetic events are valid"))
        .collect();
    Lead {
        key,
        attributes,
        events,
        behaviour: b,
    }
}

// ---------------------------------------------------------------------------------------
// leadscore

pub struct Leadscore {
    pub program: Program,
}

impl Leadscore {
    pub fn new() -> Leadscore {
        let program = leadscore_compiler::compile(RULES, "001-zoho")
            .expect("seed 001 compiles")
            .program;
        Leadscore { program }
    }

    /// Each lead's state: its events replayed once, as the store would hold it.
    pub fn states(&self, leads: &[Lead]) -> Vec<LeadState> {
        let mut engine = Engine::new(&self.program);
        let now = time::parse(NOW).unwrap();
        leads
            .iter()
            .map(|l| {
                engine
                    .rebuild(&l.key, &l.events, now, &mut Vec::new())
                    .expect("replays")
            })
            .collect()
    }
}

impl Default for Leadscore {
    fn default() -> Self {
        Leadscore::new()
    }
}

/// A full evaluation of one stored lead: its attributes read into the engine's input
/// (as after loading the state), every rule evaluated at `now`.
pub fn leadscore_score(engine: &mut Engine, state: &mut LeadState, now: Micros) -> Scores {
    engine.attach(state);
    let e = engine.evaluate(state, now, None);
    let grade = &engine.program().grades[e.grade.index()].name;
    let mut s = Scores::new(e.scores[0], e.scores[1]);
    s.grade = grade.chars().next().unwrap_or('?');
    s
}

// ---------------------------------------------------------------------------------------
// The floor: the same rules written by hand.

const QTY_SPEC: [&str; 13] = [
    "quantity",
    "qty",
    "moq",
    "pcs",
    "units",
    "specification",
    "spec",
    "size",
    "数量",
    "采购量",
    "规格",
    "尺寸",
    "型号",
];

fn text(attributes: &Map<String, Value>, key: &str) -> String {
    attributes
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .unwrap_or_default()
}

/// Whether `phrase` occurs in `text` with a non-alphanumeric character (or the end) on
/// both sides.
fn has_word(text: &str, phrase: &str) -> bool {
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

pub fn native_score(lead: &Lead, now: i64) -> Scores {
    let a = &lead.attributes;
    let b = &lead.behaviour;
    let country = text(a, "country");
    let product = text(a, "product");
    let title = text(a, "title");
    let message = text(a, "message");
    let c = country.as_str();
    let mut fit = match c {
        "us" | "de" | "jp" => 30,
        "pl" | "my" | "mx" => 20,
        "" | "kp" | "ir" | "sy" => 0,
        _ => 5,
    };
    fit += match product.as_str() {
        "led panel" | "solar inverter" => 25,
        "led bulb" | "cable" => 15,
        "furniture" | "textiles" => -10,
        _ => 0,
    };
    let any_word = |words: &[&str]| words.iter().any(|w| has_word(&title, w));
    let west = matches!(c, "us" | "ca" | "gb" | "de" | "fr" | "it" | "es" | "nl");
    if any_word(&["engineer", "designer", "project manager"]) {
        fit += 15;
    } else if any_word(&["owner", "ceo", "director", "manager"]) {
        fit += if west { 40 } else { 30 };
    } else if any_word(&["assistant", "admin"]) {
        fit += 5;
    }
    let bonus = a.get("sales_bonus").and_then(Value::as_i64).unwrap_or(0);
    if bonus > 0 {
        fit += bonus.min(20);
    }

    let mut eng = 0;
    let on = |flag: bool, points: i64| if flag { points } else { 0 };
    let sea = matches!(c, "my" | "sg" | "th" | "vn" | "id" | "ph");
    eng += on(b.visited, 5) + on(b.visits_3_in_7d, 15);
    eng += on(b.viewed_product, 10) + on(b.viewed_pricing, 20) + on(b.contact_form, 10);
    eng += on(b.inquiry_form, if sea { 30 } else { 20 });
    eng += on(QTY_SPEC.iter().any(|w| message.contains(w)), 15);
    eng += 5 * b.opens + 10 * b.clicks;
    eng += on(b.replied, 20) + on(b.whatsapp, 15) + on(b.long_call, 20);
    eng -= on(b.unsubscribed_2_in_7d, 20) + on(now - b.last_seen >= 30 * DAY, 10);
    Scores::new(fit, eng)
}

// ---------------------------------------------------------------------------------------
// Peer engines: the input they take, built from the same lead.

fn input(lead: &Lead, now: i64) -> Value {
    let a = &lead.attributes;
    let b = &lead.behaviour;
    let s = |k: &str| a.get(k).cloned().unwrap_or(Value::String(String::new()));
    json!({
        "country": s("country"), "product": s("product"), "title": s("title"),
        "message": s("message"),
        "sales_bonus": a.get("sales_bonus").and_then(Value::as_i64).unwrap_or(0),
        "visited": b.visited, "visits_3_in_7d": b.visits_3_in_7d,
        "viewed_product": b.viewed_product, "viewed_pricing": b.viewed_pricing,
        "contact_form": b.contact_form, "inquiry_form": b.inquiry_form,
        "opens": b.opens, "clicks": b.clicks, "replied": b.replied, "whatsapp": b.whatsapp,
        "long_call": b.long_call, "unsubscribed_2_in_7d": b.unsubscribed_2_in_7d,
        "last_seen": b.last_seen, "now": now,
    })
}

const ZEN_FIT: &str = r#"
(lower(country) in ["us", "de", "jp"] ? 30
  : lower(country) in ["pl", "my", "mx"] ? 20
  : country != "" and not (lower(country) in ["kp", "ir", "sy"]) ? 5 : 0)
+ (lower(product) in ["led panel", "solar inverter"] ? 25
  : lower(product) in ["led bulb", "cable"] ? 15
  : lower(product) in ["furniture", "textiles"] ? -10 : 0)
+ (matches(lower(title), "\b(engineer|designer|project manager)\b") ? 15
  : matches(lower(title), "\b(owner|ceo|director|manager)\b")
    ? (lower(country) in ["us", "ca", "gb", "de", "fr", "it", "es", "nl"] ? 40 : 30)
  : matches(lower(title), "\b(assistant|admin)\b") ? 5 : 0)
+ (sales_bonus > 0 ? min([sales_bonus, 20]) : 0)
"#;

const ZEN_ENGAGEMENT: &str = r#"
(visited ? 5 : 0) + (visits_3_in_7d ? 15 : 0)
+ (viewed_product ? 10 : 0) + (viewed_pricing ? 20 : 0) + (contact_form ? 10 : 0)
+ (inquiry_form ? (lower(country) in ["my", "sg", "th", "vn", "id", "ph"] ? 30 : 20) : 0)
+ (some(["quantity", "qty", "moq", "pcs", "units", "specification", "spec", "size",
         "数量", "采购量", "规格", "尺寸", "型号"], contains(lower(message), #)) ? 15 : 0)
+ opens * 5 + clicks * 10
+ (replied ? 20 : 0) + (whatsapp ? 15 : 0) + (long_call ? 20 : 0)
- (unsubscribed_2_in_7d ? 20 : 0) - (now - last_seen >= 2592000 ? 10 : 0)
"#;

pub struct Zen {
    fit: zen_expression::Expression<zen_expression::expression::Standard>,
    engagement: zen_expression::Expression<zen_expression::expression::Standard>,
    vm: zen_expression::vm::VM,
}

impl Zen {
    /// Both expressions compiled once.
    pub fn new() -> Zen {
        Zen {
            fit: zen_expression::compile_expression(ZEN_FIT).expect("zen fit compiles"),
            engagement: zen_expression::compile_expression(ZEN_ENGAGEMENT)
                .expect("zen engagement compiles"),
            vm: zen_expression::vm::VM::new(),
        }
    }

    pub fn score(&mut self, lead: &Lead, now: i64) -> Scores {
        let context: zen_expression::variable::Variable = input(lead, now).into();
        let number = |v: zen_expression::variable::Variable| {
            v.to_value().as_i64().expect("zen returns an integer")
        };
        let fit = number(
            self.fit
                .evaluate_with(context.clone(), &mut self.vm)
                .expect("zen fit"),
        );
        let engagement = number(
            self.engagement
                .evaluate_with(context, &mut self.vm)
                .expect("zen engagement"),
        );
        Scores::new(fit, engagement)
    }
}

impl Default for Zen {
    fn default() -> Self {
        Zen::new()
    }
}

const CEL_FIT: &str = r#"
(country.matches("(?i)^(us|de|jp)$") ? 30
  : country.matches("(?i)^(pl|my|mx)$") ? 20
  : country != "" && !country.matches("(?i)^(kp|ir|sy)$") ? 5 : 0)
+ (product.matches("(?i)^(led panel|solar inverter)$") ? 25
  : product.matches("(?i)^(led bulb|cable)$") ? 15
  : product.matches("(?i)^(furniture|textiles)$") ? -10 : 0)
+ (title.matches("(?i)\\b(engineer|designer|project manager)\\b") ? 15
  : title.matches("(?i)\\b(owner|ceo|director|manager)\\b")
    ? (country.matches("(?i)^(us|ca|gb|de|fr|it|es|nl)$") ? 40 : 30)
  : title.matches("(?i)\\b(assistant|admin)\\b") ? 5 : 0)
+ (sales_bonus > 0 ? (sales_bonus > 20 ? 20 : sales_bonus) : 0)
"#;

const CEL_ENGAGEMENT: &str = r#"
(visited ? 5 : 0) + (visits_3_in_7d ? 15 : 0)
+ (viewed_product ? 10 : 0) + (viewed_pricing ? 20 : 0) + (contact_form ? 10 : 0)
+ (inquiry_form ? (country.matches("(?i)^(my|sg|th|vn|id|ph)$") ? 30 : 20) : 0)
+ (message.matches("(?i)quantity|qty|moq|pcs|units|specification|spec|size|数量|采购量|规格|尺寸|型号") ? 15 : 0)
+ opens * 5 + clicks * 10
+ (replied ? 20 : 0) + (whatsapp ? 15 : 0) + (long_call ? 20 : 0)
- (unsubscribed_2_in_7d ? 20 : 0) - (now - last_seen >= 2592000 ? 10 : 0)
"#;

pub struct Cel {
    fit: cel_interpreter::Program,
    engagement: cel_interpreter::Program,
    root: cel_interpreter::Context<'static>,
}

impl Cel {
    /// Both programs parsed once; the standard functions registered once.
    pub fn new() -> Cel {
        Cel {
            fit: cel_interpreter::Program::compile(CEL_FIT).expect("cel fit parses"),
            engagement: cel_interpreter::Program::compile(CEL_ENGAGEMENT)
                .expect("cel engagement parses"),
            root: cel_interpreter::Context::default(),
        }
    }

    pub fn score(&self, lead: &Lead, now: i64) -> Scores {
        let mut ctx = self.root.new_inner_scope();
        if let Value::Object(fields) = input(lead, now) {
            for (k, v) in fields {
                // CEL keeps int and uint apart; JSON's non-negative numbers would be uint.
                match v.as_i64() {
                    Some(n) => ctx.add_variable_from_value(k, n),
                    None => ctx.add_variable(k, v).expect("cel takes JSON values"),
                }
            }
        }
        let number = |v: cel_interpreter::Value| match v {
            cel_interpreter::Value::Int(n) => n,
            other => panic!("cel returned {other:?}"),
        };
        Scores::new(
            number(self.fit.execute(&ctx).expect("cel fit")),
            number(self.engagement.execute(&ctx).expect("cel engagement")),
        )
    }
}

impl Default for Cel {
    fn default() -> Self {
        Cel::new()
    }
}
