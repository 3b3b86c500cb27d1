//! Text semantics shared by the compiler and the VM: case folding, words, sentences,
//! domains and whole-word matching.

use unicode_segmentation::UnicodeSegmentation;

/// Unicode default case folding (`"Straße"` and `"STRASSE"` fold alike).
pub fn fold(s: &str) -> String {
    if s.is_ascii() {
        s.to_ascii_lowercase()
    } else {
        caseless::default_case_fold_str(s)
    }
}

/// Characters that make up words for whole-word matching. CJK ideographs, kana and hangul
/// are not word characters here: Chinese, Japanese and Korean text has no spaces, so a
/// keyword inside it counts as a word.
fn is_word_char(c: char) -> bool {
    (c.is_alphanumeric() || c == '_') && !is_cjk(c)
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x2E80..=0x9FFF      // CJK radicals, kana, ideographs
        | 0xA960..=0xA97F    // hangul jamo extended
        | 0xAC00..=0xD7AF    // hangul syllables
        | 0xF900..=0xFAFF    // compatibility ideographs
        | 0xFF00..=0xFFEF    // full-width forms
        | 0x20000..=0x3FFFF) // ideograph extensions
}

/// Whether `needle` occurs in `hay` as whole words: not preceded or followed by a word
/// character. Both are already folded. `"moq"` is not a word of `"moqueta"`.
/// Where `needle` first occurs in `hay`. memchr's search suits the short texts of lead
/// attributes better than `str::find`, which builds a two-way searcher on every call.
pub fn find(hay: &str, needle: &str) -> Option<usize> {
    memchr::memmem::find(hay.as_bytes(), needle.as_bytes())
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

pub fn contains_word(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(i) = hay.get(from..).and_then(|h| find(h, needle)) {
        let start = from + i;
        let end = start + needle.len();
        let before_ok = hay[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c))
            || !needle.chars().next().is_some_and(is_word_char);
        let after_ok = hay[end..].chars().next().is_none_or(|c| !is_word_char(c))
            || !needle.chars().next_back().is_some_and(is_word_char);
        if before_ok && after_ok {
            return true;
        }
        // Advance by one character.
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Words in a text (Unicode word boundaries; each CJK ideograph is a word).
pub fn word_count(s: &str) -> usize {
    s.unicode_words().count()
}

/// Sentences in a text: Unicode sentence boundaries (so "1.5 mm" is not a break and
/// "。" is), counting only sentences with at least one letter or digit.
pub fn sentence_count(s: &str) -> usize {
    s.unicode_sentences()
        .filter(|x| x.chars().any(char::is_alphanumeric))
        .count()
}

/// The registrable domain of an e-mail address (after the last `@`) or of a URL (its
/// host): the public suffix and the label before it, by the Public Suffix List
/// (`buyer@sales.acme.co.uk` → `acme.co.uk`). A host the list does not place (an IP
/// address, `localhost`, a bare suffix) is kept whole, without a leading `www.` or
/// trailing dot. Empty when there is none.
pub fn domain(s: &str) -> &str {
    let host = host(s);
    // Two labels or fewer are their own registrable domain, or a bare suffix kept whole:
    // either way the host, without a lookup (most addresses: `acme.de`, `gmail.com`).
    if host.bytes().filter(|&b| b == b'.').count() < 2
        || host.parse::<std::net::IpAddr>().is_ok()
        || host.starts_with('[')
    {
        return host;
    }
    psl2::lookup(host)
        .and_then(|d| d.registrable_domain())
        .unwrap_or(host)
}

/// The host of an e-mail address or URL, without a leading `www.` or trailing dot.
fn host(s: &str) -> &str {
    let s = s.trim();
    let host = match s.rfind('@') {
        Some(i) => &s[i + 1..],
        None => {
            let rest = s.split_once("://").map_or(s, |(_, r)| r);
            let end = rest.find(['/', '?', '#', ':']).unwrap_or(rest.len());
            &rest[..end]
        }
    };
    let host = host.trim_end_matches('.').trim_end_matches('>');
    host.strip_prefix("www.").unwrap_or(host)
}

/// Whether a text counts as set: not empty or whitespace only.
pub fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

/// The number a text denotes, if it is one ("30", " 4.5 "); not "inf" or "nan".
pub fn parse_number(s: &str) -> Option<f64> {
    let t = s.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_unicode_case_folding() {
        assert_eq!(fold("Straße"), fold("STRASSE"));
        assert_eq!(fold("MOQ"), "moq");
        assert_eq!(fold("预算"), "预算");
    }

    #[test]
    fn whole_words() {
        assert!(contains_word("need moq and price", "moq"));
        assert!(!contains_word("moqueta", "moq"));
        assert!(contains_word("purchasing manager", "manager"));
        assert!(!contains_word("management", "manager"));
        assert!(contains_word("project manager", "project manager"));
        assert!(contains_word("我们的预算是", "预算"));
        assert!(contains_word("moq: 500", "moq"));
        assert!(!contains_word("", "moq"));
    }

    #[test]
    fn counting() {
        assert_eq!(
            sentence_count("Hi. We need 1.5 mm tubes. Price? Thanks!"),
            4
        );
        assert_eq!(sentence_count("你好。我们需要报价。"), 2);
        assert_eq!(sentence_count("   "), 0);
        assert_eq!(word_count("need 500 units"), 3);
    }

    #[test]
    fn domains() {
        assert_eq!(domain("Buyer@Acme.de"), "Acme.de");
        // The registrable domain, by the public-suffix list.
        assert_eq!(domain("buyer@sub.acme.co.uk"), "acme.co.uk");
        assert_eq!(domain("buyer@sales.eu.acme.de"), "acme.de");
        assert_eq!(domain("li@vip.163.com"), "163.com");
        assert_eq!(domain("https://shop.acme.com.cn/x"), "acme.com.cn");
        assert_eq!(domain("ann@acme.github.io"), "acme.github.io");
        // Hosts the list does not place are kept whole.
        assert_eq!(domain("http://192.168.0.10:8080/x"), "192.168.0.10");
        assert_eq!(domain("root@localhost"), "localhost");
        assert_eq!(domain("co.uk"), "co.uk");
        assert_eq!(domain("https://www.acme.de/contact?x=1"), "acme.de");
        assert_eq!(domain("acme.de"), "acme.de");
        assert_eq!(domain(""), "");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(" 30 "), Some(30.0));
        assert_eq!(parse_number("4.5"), Some(4.5));
        assert_eq!(parse_number("inf"), None);
        assert_eq!(parse_number("30 units"), None);
    }
}
