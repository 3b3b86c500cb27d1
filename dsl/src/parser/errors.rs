//! Syntax errors: what was expected, said in the language's words, where it was found,
//! and recovery at the next statement so one mistake does not hide the rest.

use super::*;

/// Finds nesting deeper than `MAX_NESTING`, outside strings and comments.
pub(crate) fn too_deep(src: &str) -> Option<Diagnostic> {
    let (mut depth, mut nots) = (0usize, 0usize);
    let (mut in_str, mut in_comment, mut escaped) = (false, false, false);
    let mut word_start = None;
    for (i, c) in src.char_indices() {
        if in_comment {
            in_comment = c != '\n';
            continue;
        }
        if in_str {
            in_str = escaped || c != '"';
            escaped = !escaped && c == '\\';
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word_start.get_or_insert(i);
            continue;
        }
        if let Some(start) = word_start.take() {
            nots = if &src[start..i] == "not" { nots + 1 } else { 0 };
        }
        match c {
            '"' => in_str = true,
            '#' => in_comment = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING || nots > MAX_NESTING {
            return Some(
                Diagnostic::error("E0005", Span::new(i, i + c.len_utf8()), "too deeply nested")
                    .label(format!(
                        "nesting deeper than {MAX_NESTING} levels starts here"
                    ))
                    .help(if c == '{' {
                        "nest fewer `if` blocks: one guard can join conditions with `and`"
                    } else {
                        "split the condition into several rules or sets"
                    }),
            );
        }
    }
    None
}

/// After a syntax error, resumes at the next line that starts a statement and parses the
/// rest as a fragment, so that every broken statement in the file is reported. Returns the
/// regions between the broken statements, `(start, end)`: each read cleanly up to the
/// statement the next error is in.
pub(crate) fn recover(
    src: &str,
    first: &pest::error::Error<Rule>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(usize, usize)> {
    let mut at = error_pos(first);
    let mut good = vec![(0, broken_statement_start(src, at))];
    let mut last_resume = 0;
    while diags.len() < MAX_SYNTAX_ERRORS {
        let Some(resume) = next_statement(src, at, last_resume) else {
            break;
        };
        last_resume = resume;
        // Blank out what was already reported, keeping byte offsets (and so spans) intact.
        let masked = format!("{}{}", " ".repeat(resume), &src[resume..]);
        match Grammar::parse(Rule::fragment, &masked) {
            Ok(_) => {
                good.push((resume, src.len()));
                break;
            }
            Err(err) => {
                let pos = error_pos(&err);
                if pos < resume {
                    break;
                }
                diags.push(syntax_error(src, &err));
                good.push((resume, broken_statement_start(src, pos).max(resume)));
                at = pos;
            }
        }
    }
    good
}

/// Where the statement an error at `pos` is in begins: a misspelled keyword at `pos`
/// begins its own; an error at the first word of a statement means the one before it
/// ended too early; else the last line before `pos` that starts a statement.
fn broken_statement_start(src: &str, pos: usize) -> usize {
    let mut line = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    let (offset, word) = first_word(src, line);
    if offset == pos && misspelled_start(&word).is_some() {
        return pos;
    }
    loop {
        let (offset, word) = first_word(src, line);
        if offset < pos && STARTS.contains(&word.as_str()) && word != "}" {
            return offset;
        }
        if line == 0 {
            return 0;
        }
        line = src[..line - 1].rfind('\n').map_or(0, |i| i + 1);
    }
}

const STARTS: [&str; 16] = [
    "ruleset", "set", "score", "total", "when", "if", "grade", "tag", "channel", "notify", "field",
    "after", "assign", "recycle", "plan", "}",
];

/// The statement keyword a line's first word misspells (`wehn` → `when`), if it is not
/// one itself.
fn misspelled_start(word: &str) -> Option<&'static str> {
    if word.is_empty() || STARTS.contains(&word) {
        return None;
    }
    closest(word, STARTS.iter().copied().filter(|k| *k != "}"))
}

/// Whether a line whose first word is `word` begins a statement, or one with a
/// misspelled keyword (reported there, then recovery goes on).
fn starts_statement(word: &str) -> bool {
    STARTS.contains(&word) || misspelled_start(word).is_some()
}

/// The first word of the line at `line_start`, and its offset.
fn first_word(src: &str, line_start: usize) -> (usize, String) {
    let line = &src[line_start..];
    let trimmed = line.trim_start_matches([' ', '\t', '\r']);
    let offset = line_start + line.len() - trimmed.len();
    let word = if trimmed.starts_with('}') {
        "}".to_string()
    } else {
        trimmed
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    (offset, word)
}

/// Where to resume after an error at `pos`: the statement that begins exactly there (when
/// a statement ended too early, the error lands on the next one), else the first line
/// after `pos` that starts a statement. Always after `last`, so recovery progresses.
fn next_statement(src: &str, pos: usize, last: usize) -> Option<usize> {
    let this_line = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    let (offset, word) = first_word(src, this_line);
    // (A misspelled keyword there was itself the error: resume after it.)
    if offset == pos && pos > last && STARTS.contains(&word.as_str()) {
        return Some(pos);
    }
    let mut line_start = src.get(pos..)?.find('\n').map(|i| pos + i + 1)?;
    while line_start < src.len() {
        let (offset, word) = first_word(src, line_start);
        if starts_statement(&word) && offset > last {
            return Some(offset);
        }
        line_start = src[line_start..].find('\n').map(|i| line_start + i + 1)?;
    }
    None
}

fn error_pos(err: &pest::error::Error<Rule>) -> usize {
    match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    }
}

/// Words for what the parser expected at a point, as a marketer would say them.
fn describe(r: Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "end of file",
        Rule::item | Rule::file | Rule::fragment => {
            "a statement (`when`, `if`, `set`, `score`, `grade`, `tag`)"
        }
        Rule::ruleset_decl | Rule::kw_ruleset => "`ruleset`",
        Rule::set_decl | Rule::kw_set => "`set`",
        Rule::score_decl | Rule::kw_score => "`score`",
        Rule::grade_decl | Rule::kw_grade => "`grade`",
        Rule::tag_decl | Rule::kw_tag => "`tag`",
        Rule::if_block | Rule::kw_if => "`if`",
        Rule::rule_decl | Rule::kw_when => "`when`",
        Rule::channel_decl | Rule::kw_channel => "`channel`",
        Rule::notify_decl | Rule::kw_notify => "`notify`",
        Rule::field_decl | Rule::kw_field => "`field`",
        Rule::kw_protected => "`protected`",
        Rule::once | Rule::kw_once => "`once`",
        Rule::ask | Rule::kw_ask => "`ask \"…\"`",
        Rule::prior => "`within D of EVENT`",
        Rule::kw_of => "`of`",
        Rule::reset | Rule::kw_reset => "`reset`",
        Rule::per_cap | Rule::kw_up => "`up to N per D`",
        Rule::kw_per => "`per`",
        Rule::distinct | Rule::kw_distinct => "`distinct`",
        Rule::decay | Rule::kw_decay => "`decay P% every D`",
        Rule::percent => "a percentage like `25%`",
        Rule::repeat | Rule::kw_every => "`every`",
        Rule::after_decl => "`after inactive for`",
        Rule::assign_decl | Rule::kw_assign => "`assign`",
        Rule::recycle_decl | Rule::kw_recycle => "`recycle after D without followup`",
        Rule::assign_when | Rule::assign_grades => "`grade G`, a condition or `otherwise`",
        Rule::assign_team | Rule::kw_team => "`team NAME`",
        Rule::assign_pool | Rule::kw_pool => "`pool`",
        Rule::assign_company | Rule::kw_company => "`company owner`",
        Rule::round_robin | Rule::kw_round => "`round robin`",
        Rule::kw_robin => "`robin`",
        Rule::assign_by | Rule::kw_by => "`by FIELD`",
        Rule::assign_within => "`within D`",
        Rule::kw_without => "`without`",
        Rule::kw_followup => "`followup`",
        Rule::kw_overdue => "`overdue`",
        Rule::owner_changes | Rule::kw_owner => "`owner changes`",
        Rule::followup_overdue => "`followup overdue`",
        Rule::task_due | Rule::kw_task => "`task due`",
        Rule::kw_due => "`due`",
        Rule::plan_decl | Rule::assign_plan | Rule::kw_plan => "`plan`",
        Rule::plan_step => "a plan step like `email at 0d`",
        Rule::kw_at => "`at`",
        Rule::channel_kind => {
            "a channel kind (`webhook`, `slack`, `feishu`, `lark`, `dingtalk`, `wecom`, `http`)"
        }
        Rule::channel_target | Rule::secret_ref => {
            "where to send: a URL in double quotes, or `secret \"NAME\"`"
        }
        Rule::kw_secret => "`secret`",
        Rule::channel_signed | Rule::kw_signed => "`signed`",
        Rule::grade_becomes | Rule::grade_leaves | Rule::grade_changes | Rule::score_crosses => {
            "`grade becomes G`, `grade leaves G`, `grade changes`, `owner changes`, `followup overdue`, `task due` or `SCORE crosses N`"
        }
        Rule::kw_becomes => "`becomes`",
        Rule::kw_leaves => "`leaves`",
        Rule::kw_changes => "`changes`",
        Rule::kw_crosses => "`crosses`",
        Rule::kw_range => "`range`",
        Rule::kw_apart => "`apart`",
        Rule::kw_total => "`total`",
        Rule::total_term => "a score's name",
        Rule::range => "a range like `0..100`",
        Rule::otherwise | Rule::kw_otherwise => "`otherwise`",
        Rule::block_open => "`{`",
        Rule::block_close | Rule::stray_close => "`}`",
        Rule::event_trigger | Rule::event_type => "an event type like `email.opened`",
        Rule::window | Rule::kw_count => "`count`",
        Rule::action | Rule::verb => "`add` or `subtract`",
        Rule::kw_add => "`add`",
        Rule::kw_subtract => "`subtract`",
        Rule::points => "points (a whole number or a field name)",
        Rule::each | Rule::kw_each => "`each`",
        Rule::max | Rule::kw_max => "`max`",
        Rule::expires | Rule::kw_expires => "`expires after`",
        Rule::kw_after => "`after`",
        Rule::target => "`to` or `from` a score",
        Rule::kw_to => "`to`",
        Rule::kw_from => "`from`",
        Rule::kw_where => "`where`",
        Rule::kw_within => "`within`",
        Rule::cond | Rule::conj | Rule::neg | Rule::comparison => "a condition",
        Rule::not_op | Rule::kw_not => "`not`",
        Rule::inactive | Rule::kw_inactive => "`inactive for`",
        Rule::kw_for => "`for`",
        Rule::grade_until | Rule::kw_until => "`until`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::is_set | Rule::is_not_set | Rule::kw_is => "`is set`",
        Rule::in_set | Rule::kw_in => "`in`",
        Rule::not_in => "`not in`",
        Rule::contains
        | Rule::contains_word
        | Rule::contains_any
        | Rule::contains_any_word
        | Rule::kw_contains => "`contains`",
        Rule::kw_any => "`any`",
        Rule::kw_word => "`word`",
        Rule::compare | Rule::cmp_op => "a comparison (`=`, `!=`, `<`, `<=`, `>`, `>=`)",
        Rule::expr | Rule::callable | Rule::call_args | Rule::path => {
            "a value (a field name, number or text)"
        }
        Rule::arith_op => "`+` or `-`",
        Rule::boolean => "`true` or `false`",
        Rule::list => "a list like `[\"US\", \"DE\"]`",
        Rule::string => "text in double quotes",
        Rule::equals => "`=`",
        Rule::dotdot => "`..`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket => "`[`",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::number => "a number",
        Rule::uint | Rule::int => "a whole number",
        Rule::duration => "a duration like `30d` (m, h, d or w)",
        Rule::ident | Rule::name => "a name",
        _ => return None,
    })
}

/// The token found at `pos`, for "found `ad`".
fn found_at(src: &str, pos: usize) -> String {
    let rest = src.get(pos..).unwrap_or("");
    let Some(first) = rest.chars().next() else {
        return "end of file".into();
    };
    if first == '\n' || first == '\r' {
        return "end of line".into();
    }
    let word: String = if first.is_alphanumeric() || first == '_' {
        rest.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
            .collect()
    } else if first == '"' {
        // The quoted text up to its closing quote, at most 40 characters.
        let mut quoted = String::from('"');
        let line = rest[1..].split('\n').next().unwrap_or("");
        quoted.extend(line.chars().take_while(|c| *c != '"').take(39));
        if line.contains('"') {
            quoted.push('"');
        }
        quoted
    } else {
        rest.chars()
            .take_while(|c| !c.is_alphanumeric() && !c.is_whitespace() && *c != '"')
            .take(3)
            .collect()
    };
    format!("`{word}`")
}

fn join_or(items: &[&str]) -> String {
    match items {
        [] => "something else".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    }
}

pub(crate) fn syntax_error(src: &str, err: &pest::error::Error<Rule>) -> Diagnostic {
    let mut pos = error_pos(err).min(src.len());
    // A line's first word that misspells a statement keyword: said there, not as the
    // previous line ending too early.
    let line_start = src[..pos].rfind('\n').map_or(0, |i| i + 1);
    let (offset, word) = first_word(src, line_start);
    if offset == pos {
        if let Some(keyword) = misspelled_start(&word) {
            return Diagnostic::error(
                "E0001",
                Span::new(pos, pos + word.len()),
                format!("expected a new statement, found `{word}`"),
            )
            .label("not a statement keyword")
            .suggest(Some(keyword));
        }
    }
    let mut found = found_at(src, pos);
    // An error on the first word of a line usually means the previous line ended too
    // early: blame the end of that line.
    let before = src[..pos].trim_end_matches([' ', '\t', '\r', '\n']);
    if src[before.len()..pos].contains('\n') && !before.is_empty() {
        let last_line = &before[before.rfind('\n').map_or(0, |i| i + 1)..];
        if !last_line.trim_start().starts_with('#') {
            pos = before.len();
            found = "end of line".into();
        }
    }
    let found_len = match found.as_str() {
        "end of file" | "end of line" => 0,
        f => f.trim_matches('`').len(),
    };
    let span = Span::new(pos, (pos + found_len).min(src.len()));
    let mut keywords: Vec<&str> = Vec::new();
    let message = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut expected: Vec<&str> = Vec::new();
            // Where a new statement may begin, pest lists every statement keyword; say
            // "a new statement" instead of the whole list.
            let starters = positives.iter().filter(|r| is_statement_start(**r)).count();
            let statement = starters >= 3;
            for r in positives {
                if statement && is_statement_start(*r) {
                    continue;
                }
                // "`add` or `subtract`" joins better as two items.
                let Some(d) = describe(*r) else { continue };
                let pieces: Vec<&str> = d.split(" or ").collect();
                let split = pieces
                    .iter()
                    .all(|x| x.starts_with('`') && x.ends_with('`'));
                for piece in if split { pieces } else { vec![d] } {
                    if !expected.contains(&piece) {
                        expected.push(piece);
                    }
                }
            }
            if statement {
                expected.push("a new statement");
            }
            // Every `word` in the descriptions is a keyword a typo may have meant.
            for d in &expected {
                keywords.extend(d.split('`').skip(1).step_by(2));
            }
            format!("expected {}, found {found}", join_or(&expected))
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let word = found.trim_matches('`');
    if found.starts_with("`\"") && !found.ends_with("\"`") {
        return Diagnostic::error("E0001", span, "this text has no closing `\"`")
            .label("text starts here")
            .help("close the text with `\"` on the same line");
    }
    let mut d = Diagnostic::error("E0001", span, message).label("unexpected here");
    if pos > 0 && src.as_bytes()[pos - 1] == b'=' && (word == ">" || word == "<") {
        return d.help(format!("write `{word}=`, with `=` second"));
    }
    if let Some(s) = closest(word, keywords.iter().copied().filter(|k| k.len() > 1)) {
        d = d.suggest(Some(s));
    } else if found == "end of file" || found == "end of line" {
        d = d.label("the statement ends here too early");
    }
    d
}

/// Rules that can only begin a new top-level statement.
fn is_statement_start(r: Rule) -> bool {
    matches!(
        r,
        Rule::EOI
            | Rule::ruleset_decl
            | Rule::set_decl
            | Rule::score_decl
            | Rule::total_decl
            | Rule::grade_decl
            | Rule::tag_decl
            | Rule::if_block
            | Rule::rule_decl
            | Rule::channel_decl
            | Rule::notify_decl
            | Rule::field_decl
            | Rule::assign_decl
            | Rule::recycle_decl
            | Rule::plan_decl
            | Rule::stray_close
            | Rule::kw_ruleset
            | Rule::kw_set
            | Rule::kw_score
            | Rule::kw_total
            | Rule::kw_grade
            | Rule::kw_tag
            | Rule::kw_if
            | Rule::kw_when
            | Rule::kw_channel
            | Rule::kw_notify
            | Rule::kw_field
            | Rule::kw_assign
            | Rule::kw_recycle
            | Rule::kw_plan
    )
}
