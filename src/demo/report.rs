//! The demo's report: per step, what it cost, as a table, JSON and HTML.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::locks::{LockMode, LockSummary};
use crate::probe::{self, Sample, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    Baseline,
    Risky,
    Undo,
    Record,
    Safe,
    Naive,
    /// A new release of the app's code, no migration.
    Deploy,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    pub name: String,
    pub kind: StepKind,
    pub start_ms: f64,
    pub end_ms: f64,
    pub duration_ms: f64,
    /// The strongest lock on the large table, and how long it was seen held.
    pub lock: Option<LockMode>,
    pub lock_held_ms: f64,
    /// How long the step waited in the lock queue before it held its lock,
    /// and behind whom.
    #[serde(default)]
    pub lock_waited_ms: f64,
    #[serde(default)]
    pub queued_behind: Option<String>,
    /// The lock monitor's sampling interval: shorter locks may go unseen.
    pub lock_interval_ms: f64,
    pub max_waiters: i64,
    pub statement: Option<String>,
    /// Tables whose file changed: rewritten.
    pub rewritten: Vec<String>,
    /// The requests in flight during the step.
    pub reads: Summary,
    pub writes: Summary,
    /// Locks that block writes (SHARE or stronger) seen on the scenario's
    /// other tables: a foreign key's fall on the table it references too.
    #[serde(default)]
    pub also_locked: Vec<OtherLock>,
    /// The scenario's other write probes (`POST /customer/`), in flight
    /// during the step.
    #[serde(default)]
    pub also_probed: Vec<(String, Summary)>,
}

/// The strongest lock a step held on another table, and for how long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OtherLock {
    pub table: String,
    pub mode: LockMode,
    pub held_ms: f64,
}

impl OtherLock {
    /// The write-blocking lock in `summary`, if it saw one.
    pub fn blocking_writes(summary: LockSummary) -> Option<Self> {
        summary
            .strongest
            .filter(|mode| *mode >= LockMode::Share)
            .map(|mode| OtherLock {
                table: summary.table,
                mode,
                held_ms: summary.held_ms,
            })
    }
}

impl StepReport {
    /// Reads a step off the timeline: the requests in flight from its start
    /// until the next step's (what it left behind counts too: a dropped
    /// column fails requests after the drop is done), and later ones that
    /// may end an outage it started.
    #[expect(
        clippy::too_many_arguments,
        reason = "one step's facts, gathered from four sources"
    )]
    pub fn new(
        name: &str,
        kind: StepKind,
        (start_ms, end_ms, until_ms): (f64, f64, f64),
        (lock, lock_interval_ms): (LockSummary, f64),
        rewritten: Vec<String>,
        reads: &[Sample],
        writes: &[Sample],
        run_end_ms: f64,
    ) -> Self {
        let summary = |samples: &[Sample]| in_flight(samples, (start_ms, until_ms), run_end_ms);
        StepReport {
            name: name.to_owned(),
            kind,
            start_ms,
            end_ms,
            duration_ms: end_ms - start_ms,
            lock: lock.strongest,
            lock_held_ms: lock.held_ms,
            lock_waited_ms: lock.waited_ms,
            queued_behind: lock.blocked_by,
            lock_interval_ms,
            max_waiters: lock.max_waiters,
            statement: lock.statement,
            rewritten,
            reads: summary(reads),
            writes: summary(writes),
            also_locked: Vec::new(),
            also_probed: Vec::new(),
        }
    }
}

/// The requests in flight during a step's window, and later ones that may
/// end an outage it started.
pub fn in_flight(samples: &[Sample], (start_ms, end_ms): (f64, f64), run_end_ms: f64) -> Summary {
    let during: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent_ms <= end_ms && s.done_ms() >= start_ms)
        .collect();
    let later: Vec<&Sample> = samples.iter().filter(|s| s.sent_ms > end_ms).collect();
    probe::summarize(&during, &later, run_end_ms)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectReport {
    pub project: String,
    pub rows: u64,
    pub postgres: String,
    pub interval_ms: f64,
    pub timeout_ms: f64,
    pub steps: Vec<StepReport>,
    /// Acknowledged writes, all found in the table at the end.
    pub writes_acknowledged: usize,
    /// What the steady writers did (`--writers`).
    #[serde(default)]
    pub writers: super::load::WriterCounts,
    /// Rows in the large table at the end: seeded + writers' inserts + probe
    /// writes that landed, checked equal.
    #[serde(default)]
    pub rows_in_table: i64,
    /// Probe writes present in the table, acknowledged or not.
    #[serde(default)]
    pub probe_writes_in_table: i64,
    /// Probe writes in the table that were never acknowledged: their client
    /// gave up (timeout), and they committed when the lock was released.
    #[serde(default)]
    pub late_writes: i64,
    /// The server's database connections (its workers at most).
    #[serde(default)]
    pub server_connections: u32,
    /// `--hold-lock`, if given.
    #[serde(default)]
    pub hold_lock_ms: Option<f64>,
    /// The safe steps' `lock_timeout`.
    #[serde(default)]
    pub lock_timeout_ms: Option<f64>,
    pub end_ms: f64,
    pub reads: Vec<Sample>,
    pub writes: Vec<Sample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    pub generated_at: String,
    pub projects: Vec<ProjectReport>,
}

/// `12 ms`, `41.2 s`.
pub fn duration(ms: f64) -> String {
    if ms < 999.5 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.1} s", ms / 1000.0)
    }
}

fn ok_fail(s: &Summary) -> String {
    format!("{}/{}", s.requests - s.failures, s.failures)
}

impl StepReport {
    /// The worse of reads and writes for a latency figure, or `-` when no
    /// request was in flight during the step.
    pub fn worst(&self, figure: fn(&Summary) -> f64) -> String {
        if self.reads.requests + self.writes.requests == 0 {
            "-".to_owned()
        } else {
            duration(figure(&self.reads).max(figure(&self.writes)))
        }
    }
}

/// The line that says what was run: rows, server, probes, held lock.
pub fn headline(report: &ProjectReport) -> String {
    format!(
        "{}: {} rows, {}; a read and a write every {}, timeout {}{}",
        report.project,
        indicatif::HumanCount(report.rows),
        report.postgres,
        duration(report.interval_ms),
        duration(report.timeout_ms),
        report.hold_lock_ms.map_or_else(String::new, |ms| format!(
            "; before each step a transaction holds the table for {}",
            duration(ms)
        ))
    )
}

/// What the table alone does not say, in the order the text prints it:
/// whom each step queued behind, the writes checked, the steady writers,
/// and how to read a held lock's figures. The HTML page carries them too.
pub fn notes(report: &ProjectReport) -> Vec<String> {
    let mut notes: Vec<String> = report
        .steps
        .iter()
        .filter_map(|step| {
            step.queued_behind.as_deref().map(|behind| {
                format!(
                    "{} queued {} behind {behind}",
                    step.name,
                    duration(step.lock_waited_ms)
                )
            })
        })
        .collect();
    notes.extend(
        report
            .steps
            .iter()
            .filter(|step| !step.also_locked.is_empty())
            .map(|step| {
                let held: Vec<String> = step
                    .also_locked
                    .iter()
                    .map(|l| format!("{} on {} ({})", l.mode, l.table, duration(l.held_ms)))
                    .collect();
                format!(
                    "{} also held {}: writes to those tables waited as long",
                    step.name,
                    held.join(", ")
                )
            }),
    );
    for step in report.steps.iter().filter(|s| queued_reads(s)) {
        notes.push(format!(
            "{}: reads waited up to {} inside the server for a worker with a database connection: the lock itself lets reads through ({}), but the writes blocked on it held all {} of the server's connections",
            step.name,
            duration(step.reads.max_queue_ms),
            step.lock.map_or_else(|| "none seen".to_owned(), |m| m.to_string()),
            report.server_connections
        ));
    }
    for step in &report.steps {
        for (probe, s) in step.also_probed.iter().filter(|(_, s)| s.requests > 0) {
            notes.push(format!(
                "{}: {probe} {} ok / {} failed, max latency {}, longest outage {}",
                step.name,
                s.requests - s.failures,
                s.failures,
                duration(s.max_ms),
                duration(s.longest_outage_ms)
            ));
        }
    }
    notes.push(format!(
        "all {} acknowledged writes are in the table; it holds {} rows: seeded + writers' inserts + probe writes ({} of which landed after their client gave up)",
        report.writes_acknowledged,
        indicatif::HumanCount(report.rows_in_table.max(0) as u64),
        report.late_writes
    ));
    if report.writers != super::load::WriterCounts::default() {
        let w = &report.writers;
        let error = w
            .first_error
            .as_deref()
            .map_or_else(String::new, |e| format!(" (first: {e})"));
        notes.push(format!(
            "steady writers: {} inserts, {} updates, {} failed{error}",
            w.inserted, w.updated, w.failed
        ));
    }
    if let Some(held) = report.hold_lock_ms {
        notes.push(format!(
            "the outages of the steps are not all the migrations' own: before each step the lab held the table in an open transaction for {}. A risky step queues its ACCESS EXCLUSIVE behind it, and every request queues behind the step for the whole hold; a safe step waits at most its lock_timeout ({}), gives up so the queued requests go through, and retries after a backoff: that is the sawtooth in its latencies",
            duration(held),
            report
                .lock_timeout_ms
                .map_or_else(|| "?".to_owned(), duration)
        ));
    }
    notes
}

/// Whether a step's reads were slow because they queued for a worker, not
/// because a lock stopped them: most of their worst wait was spent before
/// the handler ran, under a lock that does not block reads.
fn queued_reads(step: &StepReport) -> bool {
    step.lock
        .is_some_and(|m| m < crate::locks::LockMode::AccessExclusive)
        && step.reads.max_queue_ms > 100.0
        && step.reads.max_queue_ms > step.reads.max_ms / 2.0
}

/// The demo's table for one project.
pub fn write_table(out: &mut dyn Write, report: &ProjectReport) -> io::Result<()> {
    writeln!(out, "\n{}", headline(report))?;
    let width = report
        .steps
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0)
        .max(HEADER[0].len());
    write_row(out, &HEADER.map(str::to_owned), width)?;
    for step in &report.steps {
        write_row(out, &cells(step), width)?;
    }
    for note in notes(report) {
        writeln!(out, "  {note}")?;
    }
    Ok(())
}

/// The same as Markdown (`report.md`), to paste into a pull request or a
/// README.
pub fn write_markdown(out: &mut dyn Write, report: &ProjectReport) -> io::Result<()> {
    writeln!(out, "**{}**\n", headline(report))?;
    writeln!(out, "| {} |", HEADER.join(" | "))?;
    writeln!(out, "|---|---:|---|---|---:|---:|---:|---:|---:|")?;
    for step in &report.steps {
        writeln!(out, "| {} |", cells(step).join(" | "))?;
    }
    writeln!(out)?;
    for note in notes(report) {
        writeln!(out, "- {note}")?;
    }
    writeln!(out)
}

const HEADER: [&str; 9] = [
    "step",
    "duration",
    "strongest lock (held)",
    "rewrite",
    "reads ok/fail",
    "writes ok/fail",
    "max lat",
    "p99",
    "longest outage",
];

/// One step's row.
fn cells(step: &StepReport) -> [String; 9] {
    [
        step.name.clone(),
        duration(step.duration_ms),
        lock_cell(step),
        if step.rewritten.is_empty() {
            "no"
        } else {
            "yes"
        }
        .to_owned(),
        ok_fail(&step.reads),
        ok_fail(&step.writes),
        step.worst(|s| s.max_ms),
        step.worst(|s| s.p99_ms),
        step.worst(|s| s.longest_outage_ms),
    ]
}

/// One row, the step names `width` characters wide.
fn write_row(out: &mut dyn Write, c: &[String; 9], width: usize) -> io::Result<()> {
    writeln!(
        out,
        "{:<width$} {:>9}  {:<46} {:<7} {:>13} {:>14} {:>8} {:>8} {:>15}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    )
}

/// `AccessExclusive (121 ms)`, or what the sampling could not see.
pub fn lock_cell(step: &StepReport) -> String {
    match (step.lock, step.kind) {
        (Some(mode), _) if step.lock_waited_ms > 0.0 => {
            format!(
                "{mode} ({}, queued {})",
                duration(step.lock_held_ms),
                duration(step.lock_waited_ms)
            )
        }
        (Some(mode), _) => format!("{mode} ({})", duration(step.lock_held_ms)),
        (None, _) if step.lock_waited_ms > 0.0 => {
            format!(
                "queued {}, held < {}",
                duration(step.lock_waited_ms),
                duration(step.lock_interval_ms)
            )
        }
        (None, StepKind::Baseline | StepKind::Record | StepKind::Deploy) => "-".to_owned(),
        (None, _) => format!("none seen (< {})", duration(step.lock_interval_ms)),
    }
}
