//! The demo's report as one self-contained HTML page: per project, the table
//! and an inline SVG chart of request latency over time (log scale), failures
//! marked, each step a shaded band. No script, no network: it opens anywhere.

use std::fmt::Write as _;

use super::report::{DemoReport, ProjectReport, StepKind, duration};
use crate::probe::Sample;

const WIDTH: f64 = 1000.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
/// Room above the plot for the steps' numbers, where no mark can hide them.
const TOP: f64 = 40.0;
const BOTTOM: f64 = 40.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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
    let end = p.end_ms.max(1.0);
    let top_ms = p.timeout_ms.max(10.0);
    let x = |ms: f64| LEFT + (ms / end).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT);
    let y = |ms: f64| {
        let fraction = ms.clamp(1.0, top_ms).log10() / top_ms.log10();
        HEIGHT - BOTTOM - fraction * (HEIGHT - TOP - BOTTOM)
    };
    let _ = writeln!(
        page,
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"request latency over time\">"
    );
    for (i, s) in p.steps.iter().enumerate() {
        let (x0, x1) = (x(s.start_ms), x(s.end_ms));
        let _ = writeln!(
            page,
            "<rect class=\"band\" data-step=\"{}\" x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.18\"><title>{} ({})</title></rect>",
            escape(&s.name),
            (x1 - x0).max(2.0),
            HEIGHT - TOP - BOTTOM,
            band_color(s.kind),
            escape(&s.name),
            duration(s.duration_ms)
        );
        let _ = writeln!(
            page,
            "<text x=\"{x0:.1}\" y=\"{:.1}\" fill=\"{}\">{}</text>",
            TOP - 4.0 - (i % 2) as f64 * 12.0,
            band_color(s.kind),
            i + 1
        );
    }
    // axes: latency decades, and seconds
    let mut decade = 1.0;
    while decade <= top_ms {
        let _ = writeln!(
            page,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eee\"/><text x=\"4\" y=\"{:.1}\">{}</text>",
            WIDTH - RIGHT,
            y(decade) + 4.0,
            duration(decade),
            y = y(decade)
        );
        decade *= 10.0;
    }
    let step_s = ((end / 1000.0 / 10.0).ceil()).max(1.0);
    let mut t = 0.0;
    while t * 1000.0 <= end {
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\">{t:.0} s</text>",
            x(t * 1000.0) - 6.0,
            HEIGHT - BOTTOM + 16.0
        );
        t += step_s;
    }
    let mut dots = |samples: &[Sample], class: &str, color: &str| {
        for s in samples {
            let (cx, cy) = (x(s.sent_ms), y(s.latency_ms));
            if s.ok {
                let _ = write!(
                    page,
                    "<circle class=\"{class}\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"1.8\" fill=\"{color}\"/>"
                );
            } else {
                let _ = write!(
                    page,
                    "<path class=\"failure\" d=\"M{:.1} {:.1}l5 5m0 -5l-5 5\" stroke=\"#d50000\" stroke-width=\"1.5\"/>",
                    cx - 2.5,
                    cy - 2.5
                );
            }
        }
        page.push('\n');
    };
    dots(&p.reads, "read", "#1e88e5");
    dots(&p.writes, "write", "#2e7d32");
    let _ = writeln!(
        page,
        "<text x=\"{LEFT}\" y=\"{:.1}\">● reads  ● writes (green)  ✕ failures; bands: grey baseline, red risky, green safe, orange naive (rolled back); numbers are the steps' rows</text>",
        HEIGHT - 6.0
    );
    page.push_str("</svg>\n");
}
