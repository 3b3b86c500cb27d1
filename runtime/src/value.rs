//! Attribute and property values as the VM sees them: folded once when they arrive, so
//! evaluating a rule allocates nothing.

use crate::text::{fold, is_blank, parse_number};
use serde_json::Value as Json;

/// A text value (JSON strings and numbers both become text; numbers keep their value).
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub raw: String,
    /// Case-folded, for comparisons.
    pub folded: String,
    /// The number it denotes, if any ("30", 4.5).
    pub num: Option<f64>,
}

impl Text {
    pub fn new(raw: &str) -> Text {
        Text {
            raw: raw.to_string(),
            folded: fold(raw.trim()),
            num: parse_number(raw),
        }
    }

    fn number(n: f64, raw: String) -> Text {
        Text {
            folded: raw.clone(),
            raw,
            num: Some(n),
        }
    }

    /// The boolean a text denotes, as checkboxes and spreadsheets write it.
    pub fn boolean(&self) -> Option<bool> {
        match self.folded.as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" => Some(false),
            _ => None,
        }
    }
}

/// A set attribute or property value. Blank texts and empty lists are not values: they
/// count as not set, and [`Val::from_json`] gives `None` for them.
#[derive(Clone, Debug, PartialEq)]
pub enum Val {
    Text(Text),
    Bool(bool),
    List(Vec<Text>),
}

/// Why a JSON value cannot be an attribute or property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadValue {
    /// Objects, and lists of anything but strings (and numbers).
    Shape,
}

impl Val {
    /// Converts a JSON value. `Ok(None)` for values that count as not set (null, blank
    /// text, empty list).
    pub fn from_json(v: &Json) -> Result<Option<Val>, BadValue> {
        Ok(match v {
            Json::Null => None,
            Json::Bool(b) => Some(Val::Bool(*b)),
            Json::Number(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(|f| Val::Text(Text::number(f, n.to_string()))),
            Json::String(s) if is_blank(s) => None,
            Json::String(s) => Some(Val::Text(Text::new(s))),
            Json::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Json::String(s) if is_blank(s) => {}
                        Json::String(s) => out.push(Text::new(s)),
                        Json::Number(n) => {
                            if let Some(f) = n.as_f64() {
                                out.push(Text::number(f, n.to_string()));
                            }
                        }
                        _ => return Err(BadValue::Shape),
                    }
                }
                (!out.is_empty()).then_some(Val::List(out))
            }
            Json::Object(_) => return Err(BadValue::Shape),
        })
    }

    /// The integer a value gives as points: its number truncated toward zero.
    pub fn points(&self) -> Option<i64> {
        match self {
            Val::Text(t) => t.num.map(|n| n.trunc().clamp(-1e15, 1e15) as i64),
            _ => None,
        }
    }
}
