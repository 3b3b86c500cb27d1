//! Events: the same JSON shape in files and over HTTP, validated whole.
//!
//! ```json
//! {"id":"evt-1","lead":"Buyer@Acme.de","type":"form.submitted","at":"2026-11-01T10:00:00Z",
//!  "attributes":{"country":"DE"},"props":{"form":"contact"}}
//! ```

use crate::text::fold;
use crate::time::{self, Micros};
use crate::value::Val;
use serde_json::Value as Json;

/// Longest id, lead key and event type accepted.
pub const MAX_KEY_LEN: usize = 512;
/// Most attributes plus props one event may carry.
pub const MAX_FIELDS: usize = 256;
/// Longest attribute or prop name accepted.
pub const MAX_NAME_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The idempotency key.
    pub id: String,
    /// The lead key, normalised (trimmed, lower-cased).
    pub lead: String,
    /// The event type, case-folded.
    pub event_type: String,
    pub at: Micros,
    /// Attribute updates, applied before rules run; `None` removes the attribute.
    pub attributes: Vec<(String, Option<Val>)>,
    /// The event's own properties.
    pub props: Vec<(String, Val)>,
    /// The attributes as sent, for storage and display.
    pub raw_attributes: serde_json::Map<String, Json>,
    /// `"source": "public"`: sent through a public input (a form, the beacon), so its
    /// attributes only add to what trusted senders said (docs/security.md).
    pub public: bool,
}

/// What is wrong with an event: the field and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct EventError {
    pub field: String,
    pub reason: String,
    /// The event is larger than any store holds ([`crate::limits::MAX_EVENT_BYTES`]):
    /// over HTTP a `413`, not a `400`.
    pub too_large: bool,
}

fn err(field: &str, reason: impl Into<String>) -> EventError {
    EventError {
        field: field.to_string(),
        reason: reason.into(),
        too_large: false,
    }
}

/// Normalises a lead key: trimmed, NFKC-normalised (so a full-width `ａｎｎ@ａｃｍｅ．ｄｅ`
/// is `ann@acme.de`) and lower-cased.
pub fn normalise_lead(key: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    key.trim().nfkc().collect::<String>().to_lowercase()
}

/// Characters that show as nothing (zero-width spaces and joiners, bidirectional
/// controls, the byte-order mark, variation selectors, tags): a key holding one would
/// look like another lead's key. Unicode's default-ignorable code points.
pub fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Checks a lead key as sent: `Err` is the reason it is refused.
pub fn check_lead_key(s: &str) -> Result<(), String> {
    match s.char_indices().find(|&(_, c)| invisible(c)) {
        Some((i, c)) => Err(format!(
            "`{}` holds an invisible character (U+{:04X} at byte {i}); keys must be visible text",
            s.escape_default(),
            c as u32
        )),
        None => Ok(()),
    }
}

fn key(obj: &serde_json::Map<String, Json>, field: &str) -> Result<String, EventError> {
    match obj.get(field) {
        None | Some(Json::Null) => Err(err(field, "is missing")),
        Some(Json::String(s)) if s.trim().is_empty() => Err(err(field, "is empty")),
        Some(Json::String(s)) if s.len() > MAX_KEY_LEN => {
            Err(err(field, format!("is longer than {MAX_KEY_LEN} bytes")))
        }
        Some(Json::String(s)) if s.chars().any(char::is_control) => {
            Err(err(field, "must not contain control characters"))
        }
        Some(Json::String(s)) => Ok(s.clone()),
        Some(_) => Err(err(field, "must be a string")),
    }
}

fn fields(
    obj: &serde_json::Map<String, Json>,
    field: &str,
) -> Result<serde_json::Map<String, Json>, EventError> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(serde_json::Map::new()),
        Some(Json::Object(m)) => Ok(m.clone()),
        Some(_) => Err(err(field, "must be an object")),
    }
}

impl Event {
    /// Validates and converts one event.
    pub fn from_json(v: &Json) -> Result<Event, EventError> {
        let Json::Object(obj) = v else {
            return Err(err("event", "must be a JSON object"));
        };
        let size = crate::limits::encoded_len(v);
        if size > crate::limits::MAX_EVENT_BYTES {
            return Err(EventError {
                too_large: true,
                ..err(
                    "event",
                    format!(
                        "takes {size} bytes as JSON; an event holds at most {} (send large text as a link)",
                        crate::limits::MAX_EVENT_BYTES
                    ),
                )
            });
        }
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "id" | "lead" | "type" | "at" | "attributes" | "props" | "source"
            ) {
                return Err(err(
                    k,
                    "is not an event field (id, lead, type, at, attributes, props, source)",
                ));
            }
        }
        let public = match obj.get("source") {
            None | Some(Json::Null) => false,
            Some(Json::String(s)) if s == "public" => true,
            Some(_) => {
                return Err(err(
                    "source",
                    "is `\"public\"` (a public input) or left out (a trusted sender)",
                ))
            }
        };
        let id = key(obj, "id")?;
        let lead = key(obj, "lead")?;
        check_lead_key(&lead).map_err(|r| err("lead", r))?;
        let lead = normalise_lead(&lead);
        let event_type = fold(key(obj, "type")?.trim());
        let at_text = key(obj, "at")?;
        let at = time::parse(&at_text)
            .ok_or_else(|| err("at", format!("`{at_text}` is not an RFC 3339 timestamp")))?;
        let raw_attributes = fields(obj, "attributes")?;
        let raw_props = fields(obj, "props")?;
        if raw_attributes.len() + raw_props.len() > MAX_FIELDS {
            return Err(err(
                "attributes",
                format!("more than {MAX_FIELDS} attributes and props"),
            ));
        }
        for (section, m) in [("attributes", &raw_attributes), ("props", &raw_props)] {
            if let Some(k) = m.keys().find(|k| k.len() > MAX_NAME_LEN) {
                let shown: String = k.chars().take(32).collect();
                return Err(err(
                    &format!("{section}.{shown}…"),
                    format!("a name is longer than {MAX_NAME_LEN} bytes"),
                ));
            }
        }
        let mut attributes = Vec::with_capacity(raw_attributes.len());
        for (k, v) in &raw_attributes {
            let val = Val::from_json(v).map_err(|_| {
                err(
                    &format!("attributes.{k}"),
                    "must be a string, number, boolean, list of strings or null",
                )
            })?;
            attributes.push((k.clone(), val));
        }
        let mut props = Vec::with_capacity(raw_props.len());
        for (k, v) in &raw_props {
            let val = Val::from_json(v).map_err(|_| {
                err(
                    &format!("props.{k}"),
                    "must be a string, number, boolean or list of strings",
                )
            })?;
            if let Some(val) = val {
                props.push((k.clone(), val));
            }
        }
        Ok(Event {
            id,
            lead,
            event_type,
            at,
            attributes,
            props,
            raw_attributes,
            public,
        })
    }

    /// The property named `name`, if set.
    pub fn prop(&self, name: &str) -> Option<&Val> {
        self.props.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_nfkc_normalised_and_invisible_characters_refused() {
        let ev = |lead: &str| {
            Event::from_json(
                &serde_json::json!({"id":"1","lead":lead,"type":"t","at":"2026-11-01T10:00:00Z"}),
            )
        };
        assert_eq!(ev("ＡＮＮ@ａｃｍｅ．ｄｅ").unwrap().lead, "ann@acme.de");
        for bad in [
            "ann\u{200B}@acme.de",
            "\u{202E}ed.emca@nna",
            "ann@acme.de\u{FEFF}",
            "a\u{2066}b",
        ] {
            let e = ev(bad).unwrap_err();
            assert_eq!(e.field, "lead");
            assert!(e.reason.contains("invisible character"), "{e}");
        }
        let long = "x".repeat(129);
        let e = Event::from_json(&serde_json::json!({"id":"1","lead":"a","type":"t","at":"2026-11-01T10:00:00Z","attributes":{long.clone(): 1}})).unwrap_err();
        assert!(e.reason.contains("longer than 128 bytes"), "{e}");
        let e = Event::from_json(&serde_json::json!({"id":"1","lead":"a","type":"t","at":"2026-11-01T10:00:00Z","props":{long: 1}})).unwrap_err();
        assert!(e.field.starts_with("props."), "{e}");
        let ok = "y".repeat(128);
        assert!(Event::from_json(&serde_json::json!({"id":"1","lead":"a","type":"t","at":"2026-11-01T10:00:00Z","attributes":{ok: 1}})).is_ok());
    }

    #[test]
    fn validates_and_normalises() {
        let v = serde_json::json!({"id":"e1","lead":"  Buyer@Acme.DE ","type":"Email.Opened",
            "at":"2026-11-01T10:00:00Z","attributes":{"country":"DE","x":null},"props":{"n":3}});
        let e = Event::from_json(&v).unwrap();
        assert_eq!(e.lead, "buyer@acme.de");
        assert_eq!(e.event_type, "email.opened");
        assert_eq!(e.attributes.len(), 2);
        assert!(e.attributes[1].1.is_none());
        assert!(e.prop("n").is_some());
    }

    #[test]
    fn names_the_bad_field() {
        let bad = |v: serde_json::Value| Event::from_json(&v).unwrap_err().to_string();
        assert_eq!(
            bad(serde_json::json!({"lead":"a","type":"t","at":"2026-11-01T10:00:00Z"})),
            "id: is missing"
        );
        assert_eq!(
            bad(serde_json::json!({"id":"1","lead":5,"type":"t","at":"2026-11-01T10:00:00Z"})),
            "lead: must be a string"
        );
        assert!(
            bad(serde_json::json!({"id":"1","lead":"a","type":"t","at":"soon"}))
                .starts_with("at: `soon`")
        );
        assert!(bad(serde_json::json!({"id":"1","lead":"a","type":"t","at":"2026-11-01T10:00:00Z","attributes":{"o":{"a":1}}})).starts_with("attributes.o:"));
        assert!(bad(serde_json::json!({"id":"1","lead":"a","type":"t","at":"2026-11-01T10:00:00Z","extra":1})).starts_with("extra:"));
    }
}
