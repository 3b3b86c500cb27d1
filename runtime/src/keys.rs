//! Lead keys: how a key as sent becomes the key a lead is stored under.
//!
//! Always: trimmed and lower-cased (DESIGN.md). Optionally, for keys that are e-mail
//! addresses, the variants one mailbox goes by are folded into one key, so that the same
//! person writing from `Ann.Lee+fair@gmail.com` and `annlee@googlemail.com` is one lead:
//!
//! ```
//! use leadscore_runtime::keys::KeyPolicy;
//! let policy = KeyPolicy { strip_plus_tags: true, gmail_dots: true };
//! assert_eq!(policy.normalise(" Ann.Lee+fair@GMail.com "), "annlee@gmail.com");
//! assert_eq!(policy.normalise("annlee@googlemail.com"), "annlee@gmail.com");
//! assert_eq!(policy.normalise("ann.lee+x@acme.de"), "ann.lee@acme.de");
//! assert_eq!(KeyPolicy::default().normalise(" Ann.Lee+x@Acme.de"), "ann.lee+x@acme.de");
//! ```

use serde::Deserialize;

/// The domains whose mailboxes ignore dots in the local part (and are one service).
const GMAIL: [&str; 2] = ["gmail.com", "googlemail.com"];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyPolicy {
    /// `ann+news@acme.de` → `ann@acme.de`: the tag after `+` in an address's local part
    /// is dropped (most mail services deliver tagged addresses to the untagged mailbox).
    pub strip_plus_tags: bool,
    /// `a.n.n@gmail.com` → `ann@gmail.com`, and `googlemail.com` → `gmail.com`: Gmail
    /// ignores dots in the local part.
    pub gmail_dots: bool,
}

impl KeyPolicy {
    /// The stored key for `raw`. Keys that are not e-mail addresses (no single `@` with
    /// text on both sides) are only trimmed and lower-cased.
    pub fn normalise(&self, raw: &str) -> String {
        let key = crate::event::normalise_lead(raw);
        let Some((local, domain)) = key.split_once('@') else {
            return key;
        };
        if local.is_empty() || domain.is_empty() || domain.contains('@') {
            return key;
        }
        let mut local = local.to_string();
        let mut domain = domain.to_string();
        if self.strip_plus_tags {
            if let Some((base, _tag)) = local.split_once('+') {
                if !base.is_empty() {
                    local = base.to_string();
                }
            }
        }
        if self.gmail_dots && GMAIL.contains(&domain.as_str()) {
            let undotted: String = local.chars().filter(|&c| c != '.').collect();
            if !undotted.is_empty() {
                local = undotted;
            }
            domain = GMAIL[0].to_string();
        }
        format!("{local}@{domain}")
    }

    /// Whether the policy changes anything beyond trimming and lower-casing.
    pub fn is_plain(&self) -> bool {
        *self == KeyPolicy::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_asked_for_and_only_on_addresses() {
        let both = KeyPolicy {
            strip_plus_tags: true,
            gmail_dots: true,
        };
        let tags = KeyPolicy {
            strip_plus_tags: true,
            gmail_dots: false,
        };
        let dots = KeyPolicy {
            strip_plus_tags: false,
            gmail_dots: true,
        };
        assert_eq!(tags.normalise("a.b+c@gmail.com"), "a.b@gmail.com");
        assert_eq!(dots.normalise("a.b+c@gmail.com"), "ab+c@gmail.com");
        assert_eq!(both.normalise("A.B+c@GoogleMail.com"), "ab@gmail.com");
        // Dots elsewhere stay: they are part of other services' addresses.
        assert_eq!(both.normalise("a.b@example.com"), "a.b@example.com");
        // Not an address, or an odd one: untouched beyond case and spaces.
        for k in [
            "crm-42",
            "+@x.com",
            "a@b@c",
            "@gmail.com",
            "x@",
            " ..@gmail.com",
        ] {
            assert_eq!(both.normalise(k), crate::event::normalise_lead(k), "{k}");
        }
        assert!(KeyPolicy::default().is_plain() && !both.is_plain());
    }
}
