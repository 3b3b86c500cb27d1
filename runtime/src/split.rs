//! A/B split of leads between two rule versions: deterministic by the lead key, so a lead
//! stays in its arm across requests, restarts, machines and the backtest.

use sha2::{Digest, Sha256};

/// Shares are in basis points: 10,000 is every lead.
pub const WHOLE: u32 = 10_000;

/// Which rules score a lead under a split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arm {
    /// The live rules.
    A,
    /// The variant.
    B,
}

impl Arm {
    pub fn name(self) -> &'static str {
        match self {
            Arm::A => "A",
            Arm::B => "B",
        }
    }
}

/// The arm of the (normalised) lead `key` when `share` basis points of leads go to the
/// variant: the first 8 bytes of the key's SHA-256, as a number, modulo 10,000.
pub fn arm(key: &str, share: u32) -> Arm {
    let digest = Sha256::digest(key.as_bytes());
    let n = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    if (n % u64::from(WHOLE)) < u64::from(share.min(WHOLE)) {
        Arm::B
    } else {
        Arm::A
    }
}

/// Parses a share given in percent (`10`, `12.5`) into basis points.
pub fn parse_percent(s: &str) -> Result<u32, String> {
    let p: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("`{s}` is not a percentage"))?;
    if !(0.0..=100.0).contains(&p) {
        return Err(format!("{s}: a share is between 0 and 100 percent"));
    }
    Ok((p * 100.0).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_stable_and_within_one_percent_of_the_share() {
        for share in [1_000, 5_000, 9_000] {
            let n = 100_000;
            let b = (0..n)
                .filter(|i| arm(&format!("lead{i}@example.com"), share) == Arm::B)
                .count();
            let got = b as f64 / n as f64;
            let want = f64::from(share) / f64::from(WHOLE);
            assert!((got - want).abs() < 0.01, "share {share}: {got}");
        }
        // Fixed values: the split must not change between releases.
        assert_eq!(arm("buyer@acme.de", 5_000), arm("buyer@acme.de", 5_000));
        let fixed: Vec<Arm> = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"]
            .iter()
            .map(|k| arm(k, 5_000))
            .collect();
        assert_eq!(fixed, FIXED);
        assert_eq!(arm("a@x.com", 0), Arm::A);
        assert_eq!(arm("a@x.com", WHOLE), Arm::B);
    }

    // Checked independently: python3 hashlib.sha256(key).digest()[:8], big-endian, % 10000.
    const FIXED: [Arm; 4] = [Arm::B, Arm::B, Arm::A, Arm::B];

    #[test]
    fn percentages() {
        assert_eq!(parse_percent("10"), Ok(1_000));
        assert_eq!(parse_percent("12.5%"), Ok(1_250));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("ten").is_err());
    }
}
