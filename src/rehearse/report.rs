//! What a rehearsal found: the JSON (documented in docs/rehearse.md), the
//! terminal's table, a Markdown comment for a pull request, and an HTML
//! page with the statements' timeline over the load's latency.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::seed::Seeded;
use super::verdict::Advice;
use crate::instruments::duration;
use crate::instruments::html::{self, Band, Frame, Series, escape};
use crate::instruments::probe::{Sample, Summary};

/// The whole rehearsal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `PostgreSQL 15.18 ...`, the server it ran on.
    pub postgres: String,
    pub server_version_num: u32,
    /// The rows each table was seeded with.
    pub rows: BTreeMap<String, u64>,
    pub verdict: Verdict,
    pub budget: BudgetReport,
    /// What the load did over the whole rehearsal, and during its baseline.
    pub load: LoadReport,
    pub migrations: Vec<MigrationReport>,
    /// Tables that could not be seeded (or only in part), and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeding_problems: Vec<Seeded>,
    /// Files beside a Diesel directory's migrations, ignored.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignored: Vec<String>,
    /// Every load sample, for the HTML page (not in the JSON).
    #[serde(skip)]
    pub samples: Vec<Sample>,
    #[serde(skip)]
    pub end_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every measured migration kept to the budget.
    WithinBudget,
    /// A migration went over it, or failed.
    OverBudget,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetReport {
    pub max_outage_ms: f64,
    pub max_lock_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadReport {
    pub clients: usize,
    pub requests: usize,
    pub failures: usize,
    /// The queries it ran, by label.
    pub queries: Vec<String>,
    /// Queries that failed before any migration ran: dropped from the mix
    /// (the generator's limits, never charged to a migration).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// What the baseline (no migration running) saw.
    pub baseline: Summary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Failed,
    NotRun,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigrationReport {
    pub name: String,
    pub version: String,
    pub in_transaction: bool,
    /// How it was sent, in words.
    pub mode: String,
    pub status: Status,
    /// PostgreSQL's error, with the statement and its line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: f64,
    pub over_budget: bool,
    pub statements: Vec<StatementReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockReport {
    pub relation: String,
    /// As `pg_locks` names it: `AccessExclusiveLock`.
    pub mode: String,
    pub held_ms: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatementReport {
    pub line: usize,
    pub sql: String,
    pub start_ms: f64,
    pub duration_ms: f64,
    pub locks: Vec<LockReport>,
    pub rewrote: Vec<String>,
    /// How long it waited for a lock, and behind whom.
    pub waited_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blockers: Option<String>,
    pub wal_bytes: i64,
    pub load: Summary,
    /// Why it went over the budget (empty: it kept to it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub over_budget: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<Advice>,
    /// The duration predicted at production size, where asked for and the
    /// statement's time grows with its table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<f64>,
}

impl StatementReport {
    /// The strongest lock it took, and how long it was held.
    pub fn strongest(&self) -> Option<&LockReport> {
        self.locks.iter().max_by(|a, b| {
            let mode = |l: &LockReport| crate::instruments::locks::LockMode::parse(&l.mode);
            mode(a).cmp(&mode(b)).then(a.held_ms.total_cmp(&b.held_ms))
        })
    }
}

/// The first line of a statement, shortened for a table.
fn short(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default().trim();
    let mut text: String = line.chars().take(48).collect();
    if line.chars().count() > 48 || sql.lines().count() > 1 {
        text.push_str("...");
    }
    text
}

const HEADER: [&str; 8] = [
    "migration",
    "line: statement",
    "duration",
    "strongest lock (held)",
    "rewrite",
    "load failed",
    "longest outage",
    "verdict",
];

fn cells(report: &Report) -> Vec<[String; 8]> {
    let mut rows = Vec::new();
    for m in &report.migrations {
        for (i, s) in m.statements.iter().enumerate() {
            let lock = s.strongest().map_or_else(
                || "-".to_owned(),
                |l| {
                    format!(
                        "{} ({})",
                        l.mode.trim_end_matches("Lock"),
                        duration(l.held_ms)
                    )
                },
            );
            let predicted = s
                .predicted_ms
                .map(|p| format!(" (~{} predicted)", duration(p)))
                .unwrap_or_default();
            rows.push([
                if i == 0 {
                    m.name.clone()
                } else {
                    String::new()
                },
                format!("{}: {}", s.line, short(&s.sql)),
                format!("{}{predicted}", duration(s.duration_ms)),
                lock,
                if s.rewrote.is_empty() {
                    "no".to_owned()
                } else {
                    "yes".to_owned()
                },
                format!("{}/{}", s.load.failures, s.load.requests),
                duration(s.load.longest_outage_ms),
                if s.over_budget.is_empty() {
                    "ok".to_owned()
                } else {
                    "OVER".to_owned()
                },
            ]);
        }
        if m.status != Status::Ok {
            rows.push([
                if m.statements.is_empty() {
                    m.name.clone()
                } else {
                    String::new()
                },
                match m.status {
                    Status::Failed => "FAILED".to_owned(),
                    _ => "not run".to_owned(),
                },
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    rows
}

/// The terminal's table, then why each statement went over, its advice,
/// and the failures.
pub fn write_table(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let rows = cells(report);
    let widths: Vec<usize> = (0..8)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([HEADER[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    writeln!(out)?;
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                2 | 5 | 6 => format!("{cell:>w$}"),
                _ => format!("{cell:<w$}"),
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    for line in findings(report) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// What the table does not say: errors, why over budget, advice.
fn findings(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for m in &report.migrations {
        if let Some(error) = &m.error {
            lines.push(format!("\n{} FAILED: {error}", m.name));
        }
        for s in m.statements.iter().filter(|s| !s.over_budget.is_empty()) {
            lines.push(format!(
                "\n{} line {}: over budget: {}",
                m.name,
                s.line,
                s.over_budget.join("; ")
            ));
            for advice in &s.advice {
                let project = advice
                    .project
                    .as_deref()
                    .map(|p| format!(" (the lab shows it: {p})"))
                    .unwrap_or_default();
                lines.push(format!("  advice: {}{project}", advice.text));
                if let Some(rewrite) = &advice.rewrite {
                    for line in rewrite.lines() {
                        lines.push(format!("    {line}"));
                    }
                }
            }
        }
    }
    let verdict = match report.verdict {
        Verdict::WithinBudget => "every measured migration kept to the budget",
        Verdict::OverBudget => "OVER BUDGET: see above",
    };
    lines.push(format!(
        "\n{verdict} (load failures allowed: 0; longest outage: {}; a lock the load needs, held: {}); {}; load: {} queries, {} failed",
        duration(report.budget.max_outage_ms),
        duration(report.budget.max_lock_ms),
        report.postgres.split(" on ").next().unwrap_or(&report.postgres),
        report.load.requests,
        report.load.failures
    ));
    lines
}

/// The Markdown comment for a pull request.
pub fn write_markdown(out: &mut dyn Write, report: &Report) -> io::Result<()> {
    let mark = match report.verdict {
        Verdict::WithinBudget => "✅ Every migration kept to the budget",
        Verdict::OverBudget => "❌ A migration went over the budget",
    };
    let rows: Vec<String> = report
        .rows
        .iter()
        .map(|(t, n)| format!("{t} {}", indicatif::HumanCount(*n)))
        .collect();
    writeln!(out, "### {mark}\n")?;
    writeln!(
        out,
        "Rehearsed by `manage rehearse` on {}, with {} SQL clients of load; rows: {}.\n",
        report
            .postgres
            .split(" on ")
            .next()
            .unwrap_or(&report.postgres),
        report.load.clients,
        rows.join(", ")
    )?;
    writeln!(out, "| {} |", HEADER.join(" | "))?;
    writeln!(out, "|---|---|---:|---|---|---:|---:|---|")?;
    for row in cells(report) {
        let escaped: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        writeln!(out, "| {} |", escaped.join(" | "))?;
    }
    for line in findings(report) {
        let line = line.trim_start_matches('\n');
        if let Some(code) = line.strip_prefix("    ") {
            writeln!(out, "    {code}")?;
        } else {
            writeln!(out, "\n{line}")?;
        }
    }
    Ok(())
}

/// The HTML page: the table, the findings, and the load's latency over
/// time with each statement a band.
pub fn render_html(report: &Report) -> String {
    let mut page = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>risky_migrations rehearse</title>\n<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; font-size: 13px; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left; }
.over td { color: #c62828; } pre { background: #f5f5f5; padding: .5em; }
svg text { font-size: 11px; fill: #444; }
</style></head><body>\n<h1>What the migrations did under load</h1>\n",
    );
    page.push_str("<table>\n<tr>");
    for h in HEADER {
        let _ = write!(page, "<th>{}</th>", escape(h));
    }
    page.push_str("</tr>\n");
    for row in cells(report) {
        let class = if row[7] == "OVER" {
            " class=\"over\""
        } else {
            ""
        };
        let _ = write!(page, "<tr{class}>");
        for cell in row {
            let _ = write!(page, "<td>{}</td>", escape(&cell));
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</table>\n<pre>");
    page.push_str(&escape(&findings(report).join("\n")));
    page.push_str("</pre>\n");
    let bands: Vec<Band<'_>> = report
        .migrations
        .iter()
        .flat_map(|m| m.statements.iter())
        .map(|s| Band {
            name: &s.sql,
            start_ms: s.start_ms,
            end_ms: s.start_ms + s.duration_ms,
            color: if s.over_budget.is_empty() {
                "#43a047"
            } else {
                "#e53935"
            },
        })
        .collect();
    html::chart(
        &mut page,
        &bands,
        &[Series {
            samples: &report.samples,
            class: "query",
            color: "#1e88e5",
        }],
        Frame {
            end_ms: report.end_ms,
            top_ms: 3000.0,
            caption: "● the load's queries  ✕ failures; bands: each statement, green within budget, red over it",
        },
    );
    page.push_str("</body></html>\n");
    page
}
