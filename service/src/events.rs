//! What a request's events must be: validated all or nothing, before anything is written.

use super::*;

/// The most events one request may carry.
pub const MAX_EVENTS: usize = 1000;

/// How far in the future an event's `at` may be (clock skew between sender and us).
pub const MAX_SKEW: Micros = 5 * 60 * 1_000_000;

/// A validated event with the JSON it came as (stored as sent).
#[derive(Clone, Debug)]
pub struct Incoming {
    pub event: Event,
    pub json: Json,
}

/// Why a request's events were refused: which event and field.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Invalid {
    pub index: Option<usize>,
    pub field: String,
    pub reason: String,
    /// An event larger than any store holds (`413` over HTTP).
    pub too_large: bool,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.index {
            Some(i) => write!(f, "event {i}: {}: {}", self.field, self.reason),
            None => write!(f, "{}: {}", self.field, self.reason),
        }
    }
}

/// Validates a request body: one event object or an array of them. All or nothing.
pub fn parse_events(body: &Json, now: Micros) -> Result<Vec<Incoming>, Invalid> {
    let (items, single) = match body {
        Json::Array(a) => (a.as_slice(), false),
        Json::Object(_) => (std::slice::from_ref(body), true),
        _ => {
            return Err(Invalid {
                index: None,
                field: "body".into(),
                reason: "must be an event object or an array of events".into(),
                ..Invalid::default()
            })
        }
    };
    if items.is_empty() {
        return Err(Invalid {
            index: None,
            field: "body".into(),
            reason: "the array holds no events".into(),
            ..Invalid::default()
        });
    }
    if items.len() > MAX_EVENTS {
        return Err(Invalid {
            index: None,
            field: "body".into(),
            reason: format!("{} events; at most {MAX_EVENTS} per request", items.len()),
            ..Invalid::default()
        });
    }
    let index = |i: usize| (!single).then_some(i);
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let event = Event::from_json(v).map_err(|e| Invalid {
                index: index(i),
                field: e.field,
                reason: e.reason,
                too_large: e.too_large,
            })?;
            if event.at > now.saturating_add(MAX_SKEW) {
                return Err(Invalid {
                    index: index(i),
                    field: "at".into(),
                    reason: format!(
                        "{} is more than 5 minutes ahead of the server's clock ({})",
                        time::format(event.at),
                        time::format(now)
                    ),
                    ..Invalid::default()
                });
            }
            Ok(Incoming {
                event,
                json: v.clone(),
            })
        })
        .collect()
}
