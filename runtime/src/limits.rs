//! Sizes every store holds: one event, and one lead's state. The smallest store (a
//! DynamoDB item is at most 400 KB, names and keys included) sets them, and every store
//! enforces the same, so a deployment can move between stores without a lead that fits
//! one and breaks another.

use serde::Serialize;

/// The most bytes one event takes as stored JSON.
pub const MAX_EVENT_BYTES: usize = 100 * 1024;
/// The most bytes a lead's state takes as stored JSON (its attributes, rule states and
/// shadow included): what is left of an item for the lead's key, scores and indexes.
pub const MAX_STATE_BYTES: usize = 256 * 1024;

/// How many bytes `v` takes as JSON, without building the text.
pub fn encoded_len<T: Serialize + ?Sized>(v: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    // Writing to a counter cannot fail; a value that cannot serialize counts as huge.
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// Why a lead's new state is refused, if it is too large.
pub fn check_state(lead: &str, encoded: usize) -> Result<(), String> {
    if encoded <= MAX_STATE_BYTES {
        return Ok(());
    }
    Err(format!(
        "lead `{lead}` would take {encoded} bytes, more than the {MAX_STATE_BYTES} a lead may hold: its attributes are too large (remove some with null, or send smaller values); nothing of this lead's events was stored"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_what_serde_json_writes() {
        let v = serde_json::json!({"a": "x\"y\n\u{1}", "n": [1, 2.5, -3], "ü": null});
        assert_eq!(encoded_len(&v), serde_json::to_string(&v).unwrap().len());
        assert!(check_state("l", MAX_STATE_BYTES).is_ok());
        assert!(check_state("l", MAX_STATE_BYTES + 1)
            .unwrap_err()
            .contains("lead `l`"));
    }
}
