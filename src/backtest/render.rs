//! The backtest report as text (the terminal) and as one self-contained HTML page (maud,
//! inline SVG charts, no script).

use super::*;

fn count(v: &Json) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn pct(v: &Json) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

/// The report for people.
pub fn text(r: &Json) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "backtest as of {}: {} leads, {} won (base rate {})",
        r["as_of"].as_str().unwrap_or_default(),
        r["leads"],
        r["won"],
        pct(&r["base_rate"])
    );
    if r["events_after_as_of"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            s,
            "{} event(s) after that instant not counted",
            r["events_after_as_of"]
        );
    }
    if r["outcomes_without_history"].as_u64().unwrap_or(0) > 0 {
        let _ = writeln!(
            s,
            "{} outcome(s) for leads without events ignored",
            r["outcomes_without_history"]
        );
    }
    for v in r["versions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\n{}: {} ({})",
            v["file"].as_str().unwrap_or_default(),
            v["ruleset"].as_str().unwrap_or_default(),
            v["program"]
                .as_str()
                .unwrap_or_default()
                .get(..16)
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "  {:<16} {:>7} {:>6} {:>6} {:>6} {:>6} {:>10}",
            "grade", "leads", "won", "lost", "disq", "open", "conversion"
        );
        for g in v["grades"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {:<16} {:>7} {:>6} {:>6} {:>6} {:>6} {:>10}",
                g["grade"].as_str().unwrap_or_default(),
                count(&g["leads"]),
                count(&g["won"]),
                count(&g["lost"]),
                count(&g["disqualified"]),
                count(&g["open"]),
                pct(&g["conversion"])
            );
        }
        if let Some(l) = v["top_lift"].as_f64() {
            let _ = writeln!(
                s,
                "  top grade {}: {l:.2}x the base rate",
                v["top_grade"].as_str().unwrap_or_default()
            );
        }
        let _ = writeln!(s, "  score distribution:");
        let bins = v["histogram"].as_array().cloned().unwrap_or_default();
        let most = bins
            .iter()
            .filter_map(|b| b["leads"].as_u64())
            .max()
            .unwrap_or(0)
            .max(1);
        for b in &bins {
            let n = b["leads"].as_u64().unwrap_or(0);
            let bar = "#".repeat(((n * 40).div_ceil(most)) as usize);
            let line = format!(
                "  {:>6} .. {:<6} {:>6} {bar}",
                b["from"].to_string(),
                b["to"].to_string(),
                n
            );
            let _ = writeln!(s, "{}", line.trim_end());
        }
        for w in v["warnings"].as_array().into_iter().flatten() {
            let _ = writeln!(s, "  warning: {}", w.as_str().unwrap_or_default());
        }
    }
    for a in r["arms"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "\narm {} ({}% of leads, {}): {} leads, {} won, conversion {}",
            a["arm"].as_str().unwrap_or_default(),
            a["share"],
            a["file"].as_str().unwrap_or_default(),
            count(&a["leads"]),
            count(&a["won"]),
            pct(&a["conversion"])
        );
        for g in a["grades"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {:<16} {:>7} {:>6} {:>10}",
                g["grade"].as_str().unwrap_or_default(),
                count(&g["leads"]),
                count(&g["won"]),
                pct(&g["conversion"])
            );
        }
    }
    if let Some(c) = r.get("changes") {
        let _ = writeln!(s, "\n{} lead(s) change grade", c["moved"]);
        for m in c["matrix"].as_array().into_iter().flatten() {
            let _ = writeln!(
                s,
                "  {} -> {}: {}",
                m["from"].as_str().unwrap_or_default(),
                m["to"].as_str().unwrap_or_default(),
                m["leads"]
            );
        }
        let movers = c["movers"].as_array().cloned().unwrap_or_default();
        if !movers.is_empty() {
            let _ = writeln!(s, "\nbiggest movers:");
        }
        for m in &movers {
            let _ = writeln!(
                s,
                "  {} ({}): {} {} -> {} {} ({:+})",
                m["lead"].as_str().unwrap_or_default(),
                m["outcome"].as_str().unwrap_or("open"),
                m["old"]["score"],
                m["old"]["grade"].as_str().unwrap_or_default(),
                m["new"]["score"],
                m["new"]["grade"].as_str().unwrap_or_default(),
                m["delta"].as_i64().unwrap_or(0)
            );
            let (gone, came, same) = explanation_diff(&m["old"], &m["new"]);
            for (sign, list) in [('-', &gone), ('+', &came)] {
                for c in list {
                    let _ = writeln!(
                        s,
                        "    {sign} line {:>3}: {:+} {}  {}",
                        count(&c["line"]),
                        c["points"].as_i64().unwrap_or(0),
                        c["score"].as_str().unwrap_or_default(),
                        c["rule"].as_str().unwrap_or_default()
                    );
                }
            }
            if same > 0 {
                let _ = writeln!(s, "      ({same} contribution(s) unchanged)");
            }
        }
    }
    s
}

/// A self-contained HTML page (inline CSS and SVG, no scripts, nothing fetched) of the
/// same report, for the people who own the rules.
pub fn html(r: &Json) -> String {
    use maud::{html, PreEscaped, DOCTYPE};
    let s = |v: &Json| v.as_str().unwrap_or_default().to_string();
    let versions = r["versions"].as_array().cloned().unwrap_or_default();
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "leadscore backtest as of " (s(&r["as_of"])) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Backtest as of " (s(&r["as_of"])) }
                p.summary {
                    (count(&r["leads"])) " leads, " (count(&r["won"])) " won — base rate "
                    (pct(&r["base_rate"])) "."
                    @if count(&r["events_after_as_of"]) > 0 {
                        " " (count(&r["events_after_as_of"])) " event(s) after that instant not counted."
                    }
                    @if count(&r["outcomes_without_history"]) > 0 {
                        " " (count(&r["outcomes_without_history"])) " outcome(s) for leads without events ignored."
                    }
                }
                div.versions {
                    @for v in &versions {
                        section.version {
                            h2 { (s(&v["file"])) }
                            p { "ruleset " (s(&v["ruleset"])) }
                            p.hash { "program " code { (s(&v["program"]).get(..16).unwrap_or_default()) } }
                            @for w in v["warnings"].as_array().into_iter().flatten() {
                                p.warning { "⚠ " (s(w)) }
                            }
                            table {
                                thead { tr { th { "grade" } th { "leads" } th { "won" } th { "lost" } th { "disq." } th { "open" } th { "conversion" } } }
                                tbody {
                                    @for g in v["grades"].as_array().into_iter().flatten() {
                                        tr {
                                            td { (s(&g["grade"])) }
                                            td.n { (count(&g["leads"])) }
                                            td.n { (count(&g["won"])) }
                                            td.n { (count(&g["lost"])) }
                                            td.n { (count(&g["disqualified"])) }
                                            td.n { (count(&g["open"])) }
                                            td.n { (pct(&g["conversion"])) }
                                        }
                                    }
                                }
                            }
                            @if let Some(l) = v["top_lift"].as_f64() {
                                p { "Top grade " (s(&v["top_grade"])) ": " (format!("{l:.2}")) "× the base rate." }
                            }
                            h3 { "Conversion per grade" }
                            (PreEscaped(conversion_chart(v, r["base_rate"].as_f64())))
                            h3 { "Score distribution" }
                            (PreEscaped(histogram_chart(v)))
                        }
                    }
                }
                @if let Some(c) = r.get("changes") {
                    h2 { (count(&c["moved"])) " lead(s) change grade" }
                    ul {
                        @for m in c["matrix"].as_array().into_iter().flatten() {
                            li { (s(&m["from"])) " → " (s(&m["to"])) ": " (count(&m["leads"])) }
                        }
                    }
                    @let movers = c["movers"].as_array().cloned().unwrap_or_default();
                    @if !movers.is_empty() {
                        h2 { "Biggest movers" }
                        table.movers {
                            thead { tr { th { "lead" } th { "outcome" } th { "before" } th { "after" } th { "why" } } }
                            tbody {
                                @for m in &movers {
                                    tr {
                                        td { (s(&m["lead"])) }
                                        td { (m["outcome"].as_str().unwrap_or("open")) }
                                        td.n { (m["old"]["score"]) " " (s(&m["old"]["grade"])) }
                                        td.n { (m["new"]["score"]) " " (s(&m["new"]["grade"])) }
                                        @let (gone, came, same) = explanation_diff(&m["old"], &m["new"]);
                                        td {
                                            @for (label, list) in [("no longer", &gone), ("now", &came)] {
                                                @for c in list {
                                                    div.why {
                                                        span.label { (label) } " line " (c["line"]) ": "
                                                        (format!("{:+}", c["points"].as_i64().unwrap_or(0))) " "
                                                        (s(&c["score"])) " — " code { (s(&c["rule"])) }
                                                    }
                                                }
                                            }
                                            @if same > 0 {
                                                div.why.label { (same) " contribution(s) unchanged" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page.into_string()
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1em;color:#555}\
.versions{display:flex;gap:2em;flex-wrap:wrap}.version{flex:1 1 30em}\
table{border-collapse:collapse;margin:.5em 0}th,td{padding:.2em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.warning{background:#fff3cd;padding:.4em .6em;border-left:4px solid #e0a800}\
.hash{color:#777;font-size:.85em}.why{font-size:.85em}.label{color:#777}svg text{font:12px system-ui,sans-serif}";

/// Horizontal bars: each grade's conversion, with the base rate as a dashed line.
fn conversion_chart(v: &Json, base: Option<f64>) -> String {
    use std::fmt::Write;
    let grades = v["grades"].as_array().cloned().unwrap_or_default();
    let (left, width, row) = (90.0, 300.0, 24.0);
    let height = row * grades.len() as f64 + 20.0;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" role="img" aria-label="conversion per grade">"#,
        left + width + 70.0
    );
    for (i, g) in grades.iter().enumerate() {
        let y = i as f64 * row + 4.0;
        let c = g["conversion"].as_f64().unwrap_or(0.0);
        let name = maud::html! { (g["grade"].as_str().unwrap_or_default()) }.into_string();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end">{name}</text><rect x="{left}" y="{y}" width="{:.1}" height="{}" fill="#4a7bd0"/><text x="{:.1}" y="{}">{} ({} leads)</text>"##,
            left - 6.0,
            y + 14.0,
            c * width,
            row - 8.0,
            left + c * width + 4.0,
            y + 14.0,
            pct(&g["conversion"]),
            count(&g["leads"])
        );
    }
    if let Some(b) = base {
        let x = left + b * width;
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="0" y2="{}" stroke="#c33" stroke-dasharray="4 3"/><text x="{x:.1}" y="{}" fill="#c33">base {}</text>"##,
            height - 16.0,
            height - 3.0,
            pct(&json!(b))
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Vertical bars: leads per score bin.
fn histogram_chart(v: &Json) -> String {
    use std::fmt::Write;
    let bins = v["histogram"].as_array().cloned().unwrap_or_default();
    let most = bins
        .iter()
        .map(|b| count(&b["leads"]))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let (bar, gap, tall) = (34.0, 6.0, 120.0);
    let width = bins.len() as f64 * (bar + gap);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{}" role="img" aria-label="score distribution">"#,
        tall + 40.0
    );
    for (i, b) in bins.iter().enumerate() {
        let n = count(&b["leads"]);
        let h = n as f64 / most * tall;
        let x = i as f64 * (bar + gap);
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{:.1}" width="{bar}" height="{h:.1}" fill="#6aa56a"><title>{}..{}: {n}</title></rect><text x="{}" y="{}" text-anchor="middle">{n}</text><text x="{}" y="{}" text-anchor="middle">{}</text>"##,
            tall - h + 14.0,
            b["from"],
            b["to"],
            x + bar / 2.0,
            tall - h + 11.0,
            x + bar / 2.0,
            tall + 30.0,
            b["from"]
        );
    }
    svg.push_str("</svg>");
    svg
}
