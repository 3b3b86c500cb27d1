//! Instants are microseconds since the Unix epoch, UTC.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds since 1970-01-01T00:00:00Z.
pub type Micros = i64;

pub const MICROS_PER_SECOND: i64 = 1_000_000;

/// Parses an RFC 3339 timestamp ("2026-11-01T10:00:00Z", offsets allowed).
pub fn parse(s: &str) -> Option<Micros> {
    let t = DateTime::parse_from_rfc3339(s.trim()).ok()?;
    let t = t.with_timezone(&Utc);
    // Keep to years 1000..9999 so that every instant prints back as RFC 3339.
    let micros = t.timestamp_micros();
    (-30_610_224_000_000_000..=253_402_300_799_999_999)
        .contains(&micros)
        .then_some(micros)
}

/// Formats as RFC 3339 in UTC, with fractional seconds only when there are some.
pub fn format(t: Micros) -> String {
    DateTime::<Utc>::from_timestamp_micros(t)
        .map(|d| d.to_rfc3339_opts(SecondsFormat::AutoSi, true))
        .unwrap_or_else(|| t.to_string())
}

/// Seconds to microseconds.
pub fn seconds(s: u32) -> Micros {
    i64::from(s) * MICROS_PER_SECOND
}

/// A duration as the rules write it (`30m`, `24h`, `7d`, `2w`), in microseconds.
pub fn parse_duration(s: &str) -> Option<Micros> {
    let s = s.trim();
    let unit = match s.chars().last()? {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return None,
    };
    let n: i64 = s[..s.len() - 1]
        .parse()
        .ok()
        .filter(|n| (0..=36_500 * 86_400).contains(n))?;
    n.checked_mul(unit)?.checked_mul(MICROS_PER_SECOND)
}

/// The current time.
pub fn now() -> Micros {
    Utc::now().timestamp_micros()
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let t = super::parse("2026-11-01T10:00:00Z").unwrap();
        assert_eq!(super::format(t), "2026-11-01T10:00:00Z");
        let t = super::parse("2026-11-01T12:00:00.5+02:00").unwrap();
        assert_eq!(super::format(t), "2026-11-01T10:00:00.500Z");
        assert!(super::parse("yesterday").is_none());
        assert!(super::parse("0001-01-01T00:00:00Z").is_none());
    }

    #[test]
    fn durations() {
        assert_eq!(super::parse_duration("7d"), Some(7 * 86_400_000_000));
        assert_eq!(super::parse_duration("30m"), Some(1_800_000_000));
        assert_eq!(super::parse_duration("2w"), Some(14 * 86_400_000_000));
        for bad in ["", "d", "7", "-1d", "1y", "99999999999999d", "7 d"] {
            assert_eq!(super::parse_duration(bad), None, "{bad}");
        }
    }
}
