//! The subcommands. Each returns the process exit code; IO and usage problems are errors
//! (exit 2), problems in the rules are reported and give exit 1.

use crate::DiagFormat;
use anyhow::{Context, Result};
use leadscore_dsl::diagnostic::{render, Style};
use leadscore_dsl::Diagnostic;
use leadscore_runtime::bytecode::{disassemble, Program, MAGIC};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

/// Exit code for problems in the rules (or failing cases).
pub const RULE_ERRORS: u8 = 1;

fn read_source(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}

pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "rules".into(), |s| s.to_string_lossy().into_owned())
}

fn print_diags(diags: &[Diagnostic], path: &Path, src: &str, format: DiagFormat) {
    let style = match format {
        DiagFormat::Rich => Style::Rich,
        DiagFormat::Short => Style::Short,
        DiagFormat::Json => {
            let index = leadscore_dsl::span::LineIndex::new(src);
            let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
            sorted.sort_by_key(|d| (d.span.start, d.severity));
            for d in sorted {
                println!(
                    "{}",
                    diagnostic_json(d, &path.display().to_string(), src, &index)
                );
            }
            return;
        }
    };
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    eprint!(
        "{}",
        render(diags, &path.display().to_string(), src, style, color)
    );
}

/// A place in the source as tools want it: 1-based line and column (in characters), and
/// the byte offsets.
fn place(index: &leadscore_dsl::span::LineIndex, span: leadscore_dsl::Span) -> serde_json::Value {
    let (line, column) = index.line_col(span.start as usize);
    let (end_line, end_column) = index.line_col(span.end as usize);
    serde_json::json!({"line": line, "column": column, "end_line": end_line,
        "end_column": end_column, "start": span.start, "end": span.end})
}

/// One diagnostic as `check --diagnostics json` prints it (docs/authoring.md).
pub fn diagnostic_json(
    d: &Diagnostic,
    file: &str,
    src: &str,
    index: &leadscore_dsl::span::LineIndex,
) -> serde_json::Value {
    let at = place(index, d.span);
    let suggestions: Vec<serde_json::Value> = d
        .suggestion
        .iter()
        .map(|s| {
            serde_json::json!({
                "message": format!("replace `{}` with `{s}`", d.span.text(src)),
                "replacement": s,
                "span": place(index, d.span),
            })
        })
        .collect();
    serde_json::json!({
        "code": d.code,
        "severity": if d.is_error() { "error" } else { "warning" },
        "message": d.message,
        "file": file,
        "line": at["line"],
        "column": at["column"],
        "span": at,
        "label": (!d.label.is_empty()).then_some(&d.label),
        "help": d.help,
        "related": d.related.iter().map(|(s, label)| {
            let mut p = place(index, *s);
            p["label"] = serde_json::json!(label);
            p
        }).collect::<Vec<_>>(),
        "suggestions": suggestions,
    })
}

/// Compiles a rules file, printing its diagnostics; `None` when it has errors.
pub fn compile_file(
    path: &Path,
    format: DiagFormat,
) -> Result<Option<leadscore_compiler::Compiled>> {
    let src = read_source(path)?;
    match leadscore_compiler::compile(&src, &stem(path)) {
        Ok(c) => {
            print_diags(&c.warnings, path, &src, format);
            Ok(Some(c))
        }
        Err(diags) => {
            print_diags(&diags, path, &src, format);
            let n = diags.iter().filter(|d| d.is_error()).count();
            eprintln!(
                "{}: {n} error{}",
                path.display(),
                if n == 1 { "" } else { "s" }
            );
            Ok(None)
        }
    }
}

/// Loads a program from a compiled `.lsb` file or by compiling a rules file.
pub fn load_program(path: &Path) -> Result<Option<Program>> {
    load_program_as(path, DiagFormat::Rich)
}

/// As [`load_program`], printing any diagnostics in `format`.
pub fn load_program_as(path: &Path, format: DiagFormat) -> Result<Option<Program>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.starts_with(&MAGIC) {
        let p = Program::from_bytes(&bytes)
            .with_context(|| format!("cannot load {}", path.display()))?;
        return Ok(Some(p));
    }
    Ok(compile_file(path, format)?.map(|c| c.program))
}

fn bound(x: f64) -> String {
    if x.is_infinite() {
        if x > 0.0 {
            "unbounded".into()
        } else {
            "-unbounded".into()
        }
    } else {
        format!("{x}")
    }
}

pub fn check(
    files: &[std::path::PathBuf],
    format: DiagFormat,
    events: Option<&Path>,
) -> Result<ExitCode> {
    let sample = match events {
        Some(p) => Some((p, crate::sample::Sample::of(&crate::score::read_events(p)?))),
        None => None,
    };
    let mut failed = false;
    for path in files {
        let Some(c) = compile_file(path, format)? else {
            failed = true;
            continue;
        };
        if let Some((sample_path, sample)) = &sample {
            let (diags, unread) = crate::sample::compare(&c.reads, sample);
            print_diags(&diags, path, &read_source(path)?, format);
            for line in &unread {
                eprintln!("{}: {line}", path.display());
            }
            eprintln!(
                "{}: checked against {} events in {}: {} warning(s)",
                path.display(),
                sample.len(),
                sample_path.display(),
                diags.len() + unread.len()
            );
        }
        let p = &c.program;
        let notify = match p.notifies.len() {
            0 => String::new(),
            n => format!(", {n} notify rules on {} channels", p.channels.len()),
        };
        let notify = match (p.assigns.len(), p.plans.len()) {
            (0, _) => notify,
            (a, 0) => format!("{notify}, {a} assign rules"),
            (a, 1) => format!("{notify}, {a} assign rules, 1 plan"),
            (a, n) => format!("{notify}, {a} assign rules, {n} plans"),
        };
        println!(
            "{}: ok — ruleset \"{}\", {} rules, grades {}{notify}",
            path.display(),
            p.name,
            p.rules.len(),
            p.grades
                .iter()
                .map(|g| g.name.as_str())
                .collect::<Vec<_>>()
                .join("/")
        );
        let width = c
            .bounds
            .iter()
            .map(|b| b.name.len())
            .max()
            .unwrap_or(5)
            .max(5);
        for b in &c.bounds {
            let range = b
                .range
                .map_or(String::new(), |(lo, hi)| format!("  (range {lo}..{hi})"));
            println!(
                "  {:width$}  min {:>10}  max {:>10}{range}",
                b.name,
                bound(b.min),
                bound(b.max)
            );
        }
        if c.bounds.len() > 1 || p.total.is_some() {
            let (lo, hi) = c.total_bounds;
            println!(
                "  {:width$}  min {:>10}  max {:>10}",
                "total",
                bound(lo),
                bound(hi)
            );
        }
    }
    Ok(if failed {
        ExitCode::from(RULE_ERRORS)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn compile(file: &Path, output: &Path) -> Result<ExitCode> {
    let Some(c) = compile_file(file, DiagFormat::Rich)? else {
        return Ok(ExitCode::from(RULE_ERRORS));
    };
    let bytes = c.program.to_bytes();
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "wrote {} ({} bytes, program {})",
        output.display(),
        bytes.len(),
        &c.program.hash_hex()[..16]
    );
    Ok(ExitCode::SUCCESS)
}

pub fn disasm(file: &Path) -> Result<ExitCode> {
    let Some(p) = load_program(file)? else {
        return Ok(ExitCode::from(RULE_ERRORS));
    };
    print!("{}", disassemble(&p));
    Ok(ExitCode::SUCCESS)
}

pub fn score(
    file: &Path,
    events: Option<&Path>,
    leads: Option<&Path>,
    now: Option<&str>,
    format: crate::ScoreFormat,
) -> Result<ExitCode> {
    use leadscore_runtime::time;
    let now = match now {
        Some(s) => {
            time::parse(s).with_context(|| format!("--now: `{s}` is not an RFC 3339 timestamp"))?
        }
        None => time::now(),
    };
    if events.is_none() && leads.is_none() {
        anyhow::bail!("nothing to score: give --events FILE and/or --leads FILE");
    }
    let Some(program) = load_program(file)? else {
        return Ok(ExitCode::from(RULE_ERRORS));
    };
    let mut all = Vec::new();
    if let Some(path) = leads {
        all.extend(crate::score::read_leads(path, now)?);
    }
    if let Some(path) = events {
        all.extend(crate::score::read_events(path)?);
    }
    let future = match format {
        crate::ScoreFormat::Json => {
            // One line per lead, written as it is scored.
            use std::io::Write;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let future = crate::score::score_each(&program, all, now, |r| {
                serde_json::to_writer(&mut out, &r.view)?;
                out.write_all(b"\n")?;
                Ok(())
            })?;
            out.flush()?;
            future
        }
        crate::ScoreFormat::Table => {
            let (results, future) = crate::score::score_all(&program, all, now)?;
            print!("{}", crate::score::table(&program, &results));
            future
        }
    };
    if future > 0 {
        eprintln!(
            "note: {future} event(s) after --now {} were not counted",
            time::format(now)
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Compares `text` with the snapshot at `path` (or writes it, with `update`); returns
/// whether it matched, printing a unified diff when not.
fn snapshot(path: &Path, text: &str, update: bool) -> Result<bool> {
    let old = match std::fs::read_to_string(path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if old.as_deref() == Some(text) {
        println!("ok   snapshot {}", path.display());
        return Ok(true);
    }
    if update {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!(
            "{} snapshot {}",
            if old.is_some() { "updated" } else { "wrote" },
            path.display()
        );
        return Ok(true);
    }
    match old {
        None => println!(
            "FAIL snapshot {}: missing (write it with `leadscore test --update`)",
            path.display()
        ),
        Some(old) => {
            println!("FAIL snapshot {} differs:", path.display());
            let diff = similar::TextDiff::from_lines(old.as_str(), text);
            print!(
                "{}",
                diff.unified_diff()
                    .context_radius(3)
                    .header("snapshot", "now")
            );
        }
    }
    Ok(false)
}

pub fn test(
    file: &Path,
    cases: &[std::path::PathBuf],
    snapshots: Option<&Path>,
    update: bool,
) -> Result<ExitCode> {
    if update && snapshots.is_none() {
        anyhow::bail!("--update rewrites snapshots: give --snapshots DIR");
    }
    let Some(program) = load_program(file)? else {
        return Ok(ExitCode::from(RULE_ERRORS));
    };
    let stem = |p: &Path| {
        p.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let (mut passed, mut failed) = (0, 0);
    let mut snapshots_ok = true;
    if let Some(dir) = snapshots {
        // The source hash changes with every comment; the listing is what reviewers read.
        let listing: String = disassemble(&program)
            .lines()
            .filter(|l| !l.starts_with("; source sha256"))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = dir.join(format!("{}.disasm.snap", stem(file)));
        snapshots_ok &= snapshot(&path, &listing, update)?;
    }
    for path in cases {
        let r = crate::cases::run(&program, path)?;
        print!("{}", r.text);
        passed += r.passed;
        failed += r.failed;
        if let Some(dir) = snapshots {
            let snap = dir.join(format!("{}.scores.snap", stem(path)));
            snapshots_ok &= snapshot(&snap, &r.snapshot, update)?;
        }
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed > 0 || !snapshots_ok {
        ExitCode::from(RULE_ERRORS)
    } else {
        ExitCode::SUCCESS
    })
}

/// `leadscore backtest`'s arguments.
pub struct Backtest<'a> {
    pub files: &'a [std::path::PathBuf],
    pub history: Option<crate::backtest::History<'a>>,
    pub outcomes: Option<&'a Path>,
    pub as_of: Option<&'a str>,
    pub top: usize,
    pub html: Option<&'a Path>,
    pub split: Option<&'a str>,
    pub format: crate::ReportFormat,
}

pub fn backtest(a: Backtest<'_>) -> Result<ExitCode> {
    use leadscore_runtime::time;
    let as_of = a
        .as_of
        .map(|s| {
            time::parse(s).with_context(|| format!("--as-of: `{s}` is not an RFC 3339 timestamp"))
        })
        .transpose()?;
    let mut programs = Vec::new();
    for f in a.files {
        let Some(p) = load_program(f)? else {
            return Ok(ExitCode::from(RULE_ERRORS));
        };
        programs.push((p, f.display().to_string()));
    }
    let report = crate::backtest::run(crate::backtest::Options {
        programs,
        history: a
            .history
            .ok_or_else(|| anyhow::anyhow!("give the history: --events FILE or --db FILE"))?,
        outcomes: a.outcomes,
        as_of,
        top: a.top,
        split: a
            .split
            .map(leadscore_runtime::split::parse_percent)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--split: {e}"))?,
    })?;
    if let Some(path) = a.html {
        std::fs::write(path, crate::backtest::html(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    match a.format {
        crate::ReportFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
        crate::ReportFormat::Text => print!("{}", crate::backtest::text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `leadscore fmt FILE... [--check]`: the canonical layout (leadscore_dsl::format). A file
/// with syntax errors is reported and left alone; a file whose layout would change what it
/// compiles to (never expected: only whitespace and set layout change) is refused.
pub fn fmt(files: &[std::path::PathBuf], check: bool) -> Result<ExitCode> {
    let mut failed = false;
    for path in files {
        let src = read_source(path)?;
        let formatted = match leadscore_dsl::format::format(&src) {
            Ok(f) => f,
            Err(diags) => {
                print_diags(&diags, path, &src, DiagFormat::Rich);
                eprintln!("{}: not formatted (syntax errors)", path.display());
                failed = true;
                continue;
            }
        };
        if formatted == src {
            continue;
        }
        let name = stem(path);
        if let (Ok(a), Ok(b)) = (
            leadscore_compiler::compile(&src, &name),
            leadscore_compiler::compile(&formatted, &name),
        ) {
            if a.program.meaning_hash() != b.program.meaning_hash() {
                anyhow::bail!(
                    "{}: formatting would change what the rules mean (a bug in leadscore fmt); the file is left alone",
                    path.display()
                );
            }
        }
        if check {
            let diff = similar::TextDiff::from_lines(&src, &formatted);
            print!(
                "{}",
                diff.unified_diff().header(
                    &path.display().to_string(),
                    &format!("{} (formatted)", path.display())
                )
            );
            failed = true;
        } else {
            std::fs::write(path, &formatted)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("formatted {}", path.display());
        }
    }
    Ok(if failed {
        ExitCode::from(RULE_ERRORS)
    } else {
        ExitCode::SUCCESS
    })
}
