//! `leadscore fmt`: one canonical layout for rules files (docs/authoring.md).
//!
//! - one statement a line, whitespace inside it collapsed to single spaces; statements
//!   inside `if` blocks indented two spaces a level;
//! - within a block of consecutive rules, the effects (`add`, `subtract`, `reset`) start
//!   in one column, and trailing comments line up;
//! - `set` lists written `["a", "b"]`, wrapped at [`WIDTH`] with the items aligned;
//! - comments kept where they were (a comment on a statement's line stays on it; a
//!   comment line stays before the statement it preceded); at most one blank line in a row.
//!
//! Only whitespace changes, and the layout of `set` lists (whose items are what the
//! compiler keeps), so the compiled program is the same but for its line numbers and
//! source hash (`Program::meaning_hash`). A statement with a comment inside it (between
//! its lines) is kept as written, re-indented. Formatting formatted text changes nothing.

use crate::ast::{File, Item};
use crate::{Diagnostic, Span};

/// The columns `s` takes in a terminal or editor: two for each wide (East Asian) character.
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            let wide = matches!(c,
                0x1100..=0x115F | 0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF
                | 0x4E00..=0x9FFF | 0xA000..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF
                | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6 | 0x20000..=0x3FFFD);
            if wide {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Lines are wrapped (sets) and comments aligned up to this width (in columns).
pub const WIDTH: usize = 100;
/// A rule's condition longer than this is not padded to align its effect.
const ALIGN_LIMIT: usize = 56;

/// The canonical layout of `src`, or its syntax errors.
pub fn format(src: &str) -> Result<String, Vec<Diagnostic>> {
    let file: File = crate::parse(src)?;
    let mut out = Vec::new();
    let mut f = Formatter { src, out: &mut out };
    f.block(&file.items, 0, 0, src.len());
    Ok(render(&out))
}

/// One output line before alignment.
#[derive(Debug)]
enum Line {
    Blank,
    /// A comment on a line of its own.
    Comment {
        depth: usize,
        text: String,
    },
    /// A statement (or an `if` header, or `}`), with its trailing comment.
    Code {
        depth: usize,
        /// For a rule: the condition part and the effect part (aligned at the effect).
        rule: Option<(String, String)>,
        text: String,
        comment: Option<String>,
    },
    /// A statement kept as written (a comment inside it), already indented.
    Verbatim(Vec<String>),
}

struct Formatter<'a> {
    src: &'a str,
    out: &'a mut Vec<Line>,
}

/// An item's span without what the parser lets it take after its last token (the line's
/// trailing comment, the line break).
fn trimmed(src: &str, span: Span) -> Span {
    let (start, end) = (span.start as usize, span.end as usize);
    let mut last = start;
    let mut at = start;
    for p in pieces(&src[start..end]) {
        match p {
            Piece::Code(c) => {
                if let Some(i) = c.rfind(|ch: char| !ch.is_whitespace()) {
                    let ch = c[i..].chars().next().map_or(1, char::len_utf8);
                    last = at + i + ch;
                }
                at += c.len();
            }
            Piece::Str(s) => {
                at += s.len();
                last = at;
            }
            Piece::Comment(s) => at += s.len(),
        }
    }
    Span::new(start, last)
}

fn span_of(item: &Item) -> Span {
    match item {
        Item::Ruleset(x) => x.span,
        Item::Set(x) => x.span,
        Item::Score(x) => x.span,
        Item::Total(x) => x.span,
        Item::Rule(x) => x.span,
        Item::If(x) => x.span,
        Item::Grade(x) => x.span,
        Item::Tag(x) => x.span,
        Item::Channel(x) => x.span,
        Item::Notify(x) => x.span,
        Item::Field(x) => x.span,
        Item::Assign(x) => x.span,
        Item::Recycle(x) => x.span,
        Item::Plan(x) => x.span,
    }
}

/// The pieces of a stretch of source: text in quotes, comments, the rest.
#[derive(Debug, PartialEq)]
enum Piece<'s> {
    Code(&'s str),
    Str(&'s str),
    Comment(&'s str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let (mut i, mut start) = (0, 0);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                if start < i {
                    out.push(Piece::Code(&text[start..i]));
                }
                let mut j = i + 1;
                while j < bytes.len() && bytes[j] != b'"' && bytes[j] != b'\n' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let end = (j + 1).min(bytes.len());
                out.push(Piece::Str(&text[i..end]));
                i = end;
                start = i;
            }
            b'#' => {
                if start < i {
                    out.push(Piece::Code(&text[start..i]));
                }
                let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                out.push(Piece::Comment(&text[i..end]));
                i = end;
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < text.len() {
        out.push(Piece::Code(&text[start..]));
    }
    out
}

/// A statement's text with its whitespace collapsed; `None` if a comment is inside it.
fn squash(text: &str) -> Option<String> {
    let mut out = String::new();
    let mut space = false;
    for p in pieces(text) {
        match p {
            Piece::Comment(_) => return None,
            Piece::Str(s) => {
                if space && !out.is_empty() {
                    out.push(' ');
                }
                space = false;
                out.push_str(s);
            }
            Piece::Code(c) => {
                for ch in c.chars() {
                    if ch.is_whitespace() {
                        space = true;
                    } else {
                        if space && !out.is_empty() {
                            out.push(' ');
                        }
                        space = false;
                        out.push(ch);
                    }
                }
            }
        }
    }
    Some(out)
}

/// A rule split at its effect keyword (outside strings): `(condition, effect)`.
fn split_rule(text: &str) -> Option<(String, String)> {
    let mut at = 0;
    for p in pieces(text) {
        match p {
            Piece::Code(c) => {
                for kw in [" add ", " subtract ", " reset "] {
                    if let Some(i) = c.find(kw) {
                        let i = at + i;
                        return Some((text[..i].to_string(), text[i + 1..].to_string()));
                    }
                }
                at += c.len();
            }
            Piece::Str(s) | Piece::Comment(s) => at += s.len(),
        }
    }
    None
}

impl Formatter<'_> {
    /// The items of one block, with the comments and blank lines between `from` and `to`.
    fn block(&mut self, items: &[Item], depth: usize, from: usize, to: usize) {
        let mut at = from;
        for item in items {
            let span = trimmed(self.src, span_of(item));
            self.gap(&self.src[at..span.start as usize], depth);
            self.item(item, span, depth);
            at = span.end as usize;
        }
        self.gap(&self.src[at..to], depth);
    }

    /// What lies between statements: a trailing comment of the statement before (on its
    /// line), comment lines, blank lines.
    fn gap(&mut self, text: &str, depth: usize) {
        let mut newlines = 0usize;
        for p in pieces(text) {
            match p {
                Piece::Comment(c) => {
                    let c = c.trim_end().to_string();
                    if newlines == 0 {
                        if let Some(Line::Code { comment, .. }) = self.out.last_mut() {
                            if comment.is_none() {
                                *comment = Some(c);
                                continue;
                            }
                        }
                    }
                    if newlines >= 2 {
                        self.blank();
                    }
                    self.out.push(Line::Comment { depth, text: c });
                    newlines = 0;
                }
                Piece::Code(w) | Piece::Str(w) => newlines += w.matches('\n').count(),
            }
        }
        if newlines >= 2 {
            self.blank();
        }
    }

    fn blank(&mut self) {
        if !matches!(self.out.last(), None | Some(Line::Blank)) {
            self.out.push(Line::Blank);
        }
    }

    fn code(&mut self, depth: usize, text: String, rule: bool) {
        let rule = if rule { split_rule(&text) } else { None };
        self.out.push(Line::Code {
            depth,
            rule,
            text,
            comment: None,
        });
    }

    fn item(&mut self, item: &Item, span: Span, depth: usize) {
        let raw = &self.src[span.start as usize..span.end as usize];
        match item {
            Item::If(b) => {
                // `if COND {`, the body, `}`.
                let open = b
                    .body
                    .first()
                    .map_or(span.end as usize, |i| span_of(i).start as usize);
                let header_end = header_brace(self.src, span.start as usize, open);
                let header = &self.src[span.start as usize..header_end];
                match squash(header) {
                    Some(h) => self.code(depth, h, false),
                    None => self.verbatim(header, depth),
                }
                let close = span.end as usize - 1;
                self.block(&b.body, depth + 1, header_end, close);
                self.code(depth, "}".into(), false);
            }
            Item::Set(s) => {
                let items: Vec<&str> = s
                    .items
                    .items
                    .iter()
                    .map(|i| &self.src[i.span.start as usize..i.span.end as usize])
                    .collect();
                let inner = &self.src[s.items.span.start as usize..s.items.span.end as usize];
                if pieces(inner).iter().any(|p| matches!(p, Piece::Comment(_))) {
                    return self.verbatim(raw, depth);
                }
                let head = format!("set {} = [", s.name.name);
                self.set_lines(depth, &head, &items);
            }
            Item::Rule(_) => match squash(raw) {
                Some(t) => self.code(depth, t, true),
                None => self.verbatim(raw, depth),
            },
            _ => match squash(raw) {
                Some(t) => self.code(depth, t, false),
                None => self.verbatim(raw, depth),
            },
        }
    }

    /// `set NAME = ["a", "b", …]`, wrapped at the width with the items under the first.
    fn set_lines(&mut self, depth: usize, head: &str, items: &[&str]) {
        let indent = "  ".repeat(depth);
        let one = format!("{head}{}]", items.join(", "));
        if indent.len() + width(&one) <= WIDTH || items.len() < 2 {
            return self.code(depth, one, false);
        }
        let hang = " ".repeat(indent.len() + width(head));
        let mut lines = Vec::new();
        let mut line = format!("{indent}{head}");
        let mut first = true;
        for (n, it) in items.iter().enumerate() {
            let piece = if n + 1 == items.len() {
                format!("{it}]")
            } else {
                format!("{it},")
            };
            let w = width(&line) + usize::from(!first) + width(&piece);
            if !first && w > WIDTH {
                lines.push(line);
                line = format!("{hang}{piece}");
            } else {
                if !first {
                    line.push(' ');
                }
                line.push_str(&piece);
            }
            first = false;
        }
        lines.push(line);
        self.out.push(Line::Verbatim(lines));
    }

    fn verbatim(&mut self, raw: &str, depth: usize) {
        let indent = "  ".repeat(depth);
        let lines = raw
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == 0 {
                    format!("{indent}{}", l.trim())
                } else {
                    format!("{indent}  {}", l.trim())
                }
            })
            .map(|l| l.trim_end().to_string())
            .collect();
        self.out.push(Line::Verbatim(lines));
    }
}

/// Where an `if` header ends: just after its `{` (the first outside text and comments).
fn header_brace(src: &str, from: usize, to: usize) -> usize {
    let mut at = from;
    for p in pieces(&src[from..to]) {
        match p {
            Piece::Code(c) => {
                if let Some(i) = c.find('{') {
                    return at + i + 1;
                }
                at += c.len();
            }
            Piece::Str(s) | Piece::Comment(s) => at += s.len(),
        }
    }
    to
}

/// The lines, with the rules of each run aligned and trailing comments lined up.
fn render(lines: &[Line]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // A run: consecutive code lines of one depth.
        let mut j = i;
        while j < lines.len() {
            match (&lines[i], &lines[j]) {
                (Line::Code { depth: a, .. }, Line::Code { depth: b, .. }) if a == b => j += 1,
                _ => break,
            }
        }
        if j == i {
            match &lines[i] {
                Line::Blank => out.push(String::new()),
                Line::Comment { depth, text } => out.push(format!("{}{text}", "  ".repeat(*depth))),
                Line::Verbatim(v) => out.extend(v.iter().cloned()),
                Line::Code { .. } => unreachable!("a code line starts a run"),
            }
            i += 1;
            continue;
        }
        let run = &lines[i..j];
        let column = run
            .iter()
            .filter_map(|l| match l {
                Line::Code {
                    rule: Some((c, _)), ..
                } if width(c) <= ALIGN_LIMIT => Some(width(c)),
                _ => None,
            })
            .max();
        let texts: Vec<(String, Option<&String>)> = run
            .iter()
            .map(|l| match l {
                Line::Code {
                    depth,
                    rule,
                    text,
                    comment,
                } => {
                    let indent = "  ".repeat(*depth);
                    let body = match (rule, column) {
                        (Some((c, e)), Some(col)) if width(c) <= ALIGN_LIMIT => {
                            let pad = col - width(c) + 1;
                            format!("{c}{}{e}", " ".repeat(pad))
                        }
                        _ => text.clone(),
                    };
                    (format!("{indent}{body}"), comment.as_ref())
                }
                _ => unreachable!("a run holds code lines"),
            })
            .collect();
        let comment_at = texts
            .iter()
            .filter(|(_, c)| c.is_some())
            .map(|(t, _)| width(t) + 2)
            .filter(|w| *w <= WIDTH)
            .max();
        for (t, c) in texts {
            match c {
                Some(c) => {
                    let w = width(&t);
                    let pad = match comment_at {
                        Some(at) if w + 2 <= at => at - w,
                        _ => 2,
                    };
                    out.push(format!("{t}{}{c}", " ".repeat(pad)));
                }
                None => out.push(t),
            }
        }
        i = j;
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    while out.first().is_some_and(String::is_empty) {
        out.remove(0);
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_rules_and_comments_and_wraps_sets() {
        let src = "set t = [\"US\",\"DE\"]\n\n\n# fit\nwhen country in t   add 30  # tier\nwhen product in [\"x\"] add 5\nif country in t {\nwhen a = 1 add 2\n}\ngrade A when score >= 10\ngrade B otherwise\n";
        let out = format(src).unwrap();
        assert_eq!(
            out,
            "set t = [\"US\", \"DE\"]\n\n# fit\nwhen country in t     add 30  # tier\nwhen product in [\"x\"] add 5\nif country in t {\n  when a = 1 add 2\n}\ngrade A when score >= 10\ngrade B otherwise\n"
        );
        assert_eq!(format(&out).unwrap(), out, "idempotent");
    }
}
