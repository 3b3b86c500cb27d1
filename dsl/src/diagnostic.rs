//! Diagnostics are plain data; this module is the only place that renders them.

use crate::span::{LineIndex, Span};
use ariadne::{Config, IndexType, Label, Report, ReportKind, Source};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a rules file: a code, a message, the place to blame and optional help.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Stable identifier, e.g. `E0201`; documented in docs/language.md.
    pub code: &'static str,
    pub message: String,
    pub span: Span,
    /// Text under the caret at `span`.
    pub label: String,
    /// Further places involved (e.g. the first definition of a duplicate).
    pub related: Vec<(Span, String)>,
    pub help: Option<String>,
    /// The text that would replace `span` to fix it (a "did you mean" name), for tools
    /// that apply fixes (`check --diagnostics json`, the language server).
    pub suggestion: Option<String>,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            related: Vec::new(),
            help: None,
            suggestion: None,
        }
    }

    pub fn warning(code: &'static str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, span, message)
        }
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn related(mut self, span: Span, label: impl Into<String>) -> Self {
        self.related.push((span, label.into()));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when `suggestion` is some, with `x` as the replacement of
    /// the span.
    pub fn suggest(self, suggestion: Option<&str>) -> Self {
        match suggestion {
            Some(s) => self
                .help(format!("did you mean `{s}`?"))
                .replacement(Some(s)),
            None => self,
        }
    }

    /// The replacement of the span that fixes it, without changing the help text.
    pub fn replacement(mut self, suggestion: Option<&str>) -> Self {
        self.suggestion = suggestion.map(str::to_string);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The closest candidate to `wrong` (Damerau-Levenshtein, scaled to the word's length),
/// for "did you mean" hints.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = match wrong.chars().count() {
        0..=2 => 1,
        3..=5 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .filter(|c| *c != wrong)
        .map(|c| {
            (
                strsim::damerau_levenshtein(&wrong.to_lowercase(), &c.to_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// How rendered diagnostics look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Style {
    /// Source excerpt with carets (ariadne).
    #[default]
    Rich,
    /// One line each: `file:line:col: error[E0201]: message (help)`.
    Short,
}

/// Renders diagnostics for one file, in source order, errors and warnings alike.
pub fn render(diags: &[Diagnostic], file: &str, src: &str, style: Style, color: bool) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| (d.span.start, d.severity));
    // The source's line tables are built once for the file, not once per diagnostic (a
    // file with thousands of warnings rendered in quadratic time).
    let lines = LineIndex::new(src);
    let source = Source::from(src);
    let mut out = String::new();
    for d in sorted {
        match style {
            Style::Rich => out.push_str(&render_rich(d, file, src, &source, &lines, color)),
            Style::Short => out.push_str(&render_short(d, file, &lines)),
        }
    }
    out
}

fn kind_word(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn render_short(d: &Diagnostic, file: &str, lines: &LineIndex) -> String {
    let (line, col) = lines.line_col(d.span.start as usize);
    let mut s = format!(
        "{file}:{line}:{col}: {}[{}]: {}",
        kind_word(d),
        d.code,
        d.message
    );
    if let Some(h) = &d.help {
        s.push_str(&format!(" ({h})"));
    }
    s.push('\n');
    s
}

fn render_rich(
    d: &Diagnostic,
    file: &str,
    src: &str,
    source: &Source<&str>,
    lines: &LineIndex,
    color: bool,
) -> String {
    let clamp = |s: Span| {
        let start = (s.start as usize).min(src.len());
        start..(s.end as usize).clamp(start, src.len())
    };
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    // ariadne's header line shows `file:line:col`.
    let mut report = Report::build(kind, (file, clamp(d.span)))
        .with_config(
            Config::default()
                .with_color(color)
                .with_index_type(IndexType::Byte),
        )
        .with_code(d.code)
        .with_message(&d.message);
    let main = Label::new((file, clamp(d.span)));
    report = report.with_label(if d.label.is_empty() {
        main
    } else {
        main.with_message(&d.label)
    });
    for (span, text) in &d.related {
        report = report.with_label(Label::new((file, clamp(*span))).with_message(text));
    }
    if let Some(h) = &d.help {
        report = report.with_help(h);
    }
    let mut buf = Vec::new();
    let written = report.finish().write((file, source), &mut buf).is_ok();
    if written {
        String::from_utf8_lossy(&buf).into_owned()
    } else {
        render_short(d, file, lines)
    }
}
