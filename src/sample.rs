//! `leadscore check --events SAMPLE.jsonl`: what the rules read set against what real
//! events carry, so that a typo like `email.opend` or `contry` is a warning instead of a
//! rule that silently never fires (docs/language.md, "Checks").

use leadscore_compiler::Reads;
use leadscore_dsl::diagnostic::closest;
use leadscore_dsl::Diagnostic;
use leadscore_runtime::event::Event;
use std::collections::{BTreeMap, BTreeSet};

/// What a sample of events carries.
#[derive(Default)]
pub struct Sample {
    /// Event type → how many events of it.
    types: BTreeMap<String, usize>,
    attributes: BTreeSet<String>,
    /// Event type → the attributes its events set.
    type_attributes: BTreeMap<String, BTreeSet<String>>,
    /// Event type → the props its events carry.
    props: BTreeMap<String, BTreeSet<String>>,
}

impl Sample {
    pub fn of(events: &[Event]) -> Sample {
        let mut s = Sample::default();
        for e in events {
            *s.types.entry(e.event_type.clone()).or_default() += 1;
            s.attributes
                .extend(e.raw_attributes.keys().map(|k| k.to_string()));
            s.type_attributes
                .entry(e.event_type.clone())
                .or_default()
                .extend(e.raw_attributes.keys().map(|k| k.to_string()));
            s.props
                .entry(e.event_type.clone())
                .or_default()
                .extend(e.props.iter().map(|(k, _)| k.clone()));
        }
        s
    }

    pub fn len(&self) -> usize {
        self.types.values().sum()
    }
}

/// Warnings located in the rules (W0201–W0203), then the sample's event types no rule
/// reads (W0204, which have no place in the rules: one line each).
pub fn compare(reads: &Reads, sample: &Sample) -> (Vec<Diagnostic>, Vec<String>) {
    let mut diags = Vec::new();
    let types: Vec<&str> = sample.types.keys().map(String::as_str).collect();
    let mut reported = BTreeSet::new();
    for (ty, span) in &reads.events {
        if sample.types.contains_key(ty) || !reported.insert(("type", ty.clone())) {
            continue;
        }
        let d = Diagnostic::warning(
            "W0201",
            *span,
            format!("no event of type `{ty}` in the sample"),
        )
        .label("this rule never fires on the sample");
        diags.push(match closest(ty, types.iter().copied()) {
            Some(near) => d.help(format!(
                "did you mean `{near}`? ({} in the sample)",
                events(sample.types[near])
            )),
            None => d.help(format!("the sample's event types: {}", types.join(", "))),
        });
    }
    let attributes: Vec<&str> = sample.attributes.iter().map(String::as_str).collect();
    for (name, span) in &reads.attributes {
        if name.starts_with('@')
            || sample.attributes.contains(name)
            || !reported.insert(("attribute", name.clone()))
        {
            continue;
        }
        let d = Diagnostic::warning(
            "W0202",
            *span,
            format!("no event in the sample sets the attribute `{name}`"),
        )
        .label("never set in the sample");
        diags.push(match closest(name, attributes.iter().copied()) {
            Some(near) => d.help(format!("did you mean `{near}`?")),
            None => d,
        });
    }
    for (ty, prop, span) in &reads.props {
        let Some(carried) = sample.props.get(ty) else {
            // The type itself is missing: W0201 says so.
            continue;
        };
        if carried.contains(prop) || !reported.insert(("prop", format!("{ty}.{prop}"))) {
            continue;
        }
        let d = Diagnostic::warning(
            "W0203",
            *span,
            format!("no `{ty}` event in the sample carries the prop `{prop}`"),
        )
        .label("never in the sample");
        diags.push(match closest(prop, carried.iter().map(String::as_str)) {
            Some(near) => d.help(format!("did you mean `{near}`?")),
            None => d,
        });
    }
    let read: BTreeSet<&str> = reads.events.iter().map(|(t, _)| t.as_str()).collect();
    let read_attributes: BTreeSet<&str> =
        reads.attributes.iter().map(|(a, _)| a.as_str()).collect();
    // A type no event rule takes still matters when its events set attributes the rules
    // read (`lead.updated`, a form): only types that feed nothing are reported.
    let feeds = |t: &str| {
        sample
            .type_attributes
            .get(t)
            .is_some_and(|attrs| attrs.iter().any(|a| read_attributes.contains(a.as_str())))
    };
    let unread = sample
        .types
        .iter()
        .filter(|(t, _)| !read.contains(t.as_str()) && !feeds(t))
        .map(|(t, n)| {
            let near = closest(t, read.iter().copied())
                .map(|r| format!(" (did you mean `{r}`?)"))
                .unwrap_or_default();
            format!(
                "warning[W0204]: no rule reads the sample's event type `{t}` ({}){near}",
                events(*n)
            )
        })
        .collect();
    (diags, unread)
}

fn events(n: usize) -> String {
    match n {
        1 => "1 event".into(),
        n => format!("{n} events"),
    }
}
