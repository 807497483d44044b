//! The demo's report as one self-contained HTML page: the summary, and per
//! project the table and the chart of request latency over time
//! ([`crate::instruments::html`]), each step a shaded band.

use std::fmt::Write as _;

use super::report::{DemoReport, ProjectReport, StepKind, duration};
use crate::instruments::html::{self, Band, Frame, Series, escape};

fn band_color(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Baseline => "#9e9e9e",
        StepKind::Risky | StepKind::Undo => "#e53935",
        StepKind::Record | StepKind::Safe | StepKind::Deploy => "#43a047",
        StepKind::Naive => "#fb8c00",
        StepKind::Budgeted => "#00897b",
    }
}

/// The whole page.
pub fn render(report: &DemoReport) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>risky_migrations: what each migration cost</title>\n<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.risky td:first-child, .undo td:first-child { color: #c62828; }
.safe td:first-child, .record td:first-child { color: #2e7d32; }
.naive td:first-child { color: #ef6c00; }
svg text { font-size: 11px; fill: #444; }
.interrupted { color: #c62828; font-size: 1.2em; }
.legend { font-size: 13px; color: #555; } .legend dt { font-weight: bold; } .legend dd { margin: 0 0 4px 1.5em; }
</style></head><body>\n<h1>What each migration cost, measured</h1>\n",
    );
    let _ = writeln!(
        page,
        "<p>Generated {} by <code>manage demo</code>.</p>",
        escape(&report.generated_at)
    );
    if let Some(line) = super::report::interrupted_line(report) {
        let _ = writeln!(
            page,
            "<p class=\"interrupted\"><strong>{}</strong></p>",
            escape(&line)
        );
    }
    summary(&mut page, report);
    for project in &report.projects {
        project_section(&mut page, project);
    }
    page.push_str("</body></html>\n");
    page
}

/// Every pattern's risky step beside its safe path, and what the columns
/// mean.
fn summary(page: &mut String, report: &DemoReport) {
    if report.projects.is_empty() {
        return;
    }
    page.push_str(
        "<h2>Risky step against safe path, every pattern</h2>\n<table class=\"summary\">\n",
    );
    for (i, row) in super::report::summary_rows(&report.projects)
        .iter()
        .enumerate()
    {
        let cell = if i == 0 { "th" } else { "td" };
        page.push_str("<tr>");
        for text in row {
            let _ = write!(page, "<{cell}>{}</{cell}>", escape(text));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n<dl class=\"legend\">\n");
    for (column, meaning) in super::report::LEGEND {
        let _ = writeln!(
            page,
            "<dt>{}</dt><dd>{}</dd>",
            escape(column),
            escape(meaning)
        );
    }
    page.push_str("</dl>\n");
}

fn project_section(page: &mut String, p: &ProjectReport) {
    let _ = writeln!(
        page,
        "<section class=\"project\" id=\"{0}\"><h2>{0}</h2>\n<p>{1}.</p>",
        escape(&p.project),
        escape(&super::report::headline(p)),
    );
    page.push_str("<table><tr><th>step</th><th>duration</th><th>strongest lock (held)</th><th>rewrite</th><th>reads ok/fail</th><th>writes ok/fail</th><th>max latency</th><th>p99</th><th>longest outage</th></tr>\n");
    for s in &p.steps {
        let lock = super::report::lock_cell(s);
        let _ = writeln!(
            page,
            "<tr class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}</td><td>{}/{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            format!("{:?}", s.kind).to_lowercase(),
            escape(&s.name),
            duration(s.duration_ms),
            lock,
            if s.rewritten.is_empty() { "no" } else { "yes" },
            s.reads.requests - s.reads.failures,
            s.reads.failures,
            s.writes.requests - s.writes.failures,
            s.writes.failures,
            s.worst(|x| x.max_ms),
            s.worst(|x| x.p99_ms),
            s.worst(|x| x.longest_outage_ms),
        );
    }
    page.push_str("</table>\n<ul class=\"notes\">\n");
    for note in super::report::notes(p) {
        let _ = writeln!(page, "<li>{}</li>", escape(&note));
    }
    page.push_str("</ul>\n");
    chart(page, p);
    page.push_str("</section>\n");
}

fn chart(page: &mut String, p: &ProjectReport) {
    let bands: Vec<Band<'_>> = p
        .steps
        .iter()
        .map(|s| Band {
            name: &s.name,
            start_ms: s.start_ms,
            end_ms: s.end_ms,
            color: band_color(s.kind),
        })
        .collect();
    let series = [
        Series {
            samples: &p.reads,
            class: "read",
            color: "#1e88e5",
        },
        Series {
            samples: &p.writes,
            class: "write",
            color: "#2e7d32",
        },
    ];
    html::chart(
        page,
        &bands,
        &series,
        Frame {
            end_ms: p.end_ms,
            top_ms: p.timeout_ms,
            caption: "● reads  ● writes (green)  ✕ failures; bands: grey baseline, red risky, green safe, orange naive (rolled back); numbers are the steps' rows",
        },
    );
}
