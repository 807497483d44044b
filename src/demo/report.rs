//! The demo's report: per step, what it cost, as a table, JSON and HTML.

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::instruments::locks::{LockMode, LockSummary};
use crate::instruments::probe::{self, Sample, Summary};

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
    /// A safe step run again within a budget (`--replica`, the budget flags).
    Budgeted,
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
    /// Why the step did not complete (the walkthrough stopped there).
    #[serde(default)]
    pub failed: Option<String>,
    /// With a standby (`--replica`): the WAL the step wrote, the standby's
    /// lag, what its readers saw.
    #[serde(default)]
    pub replica: Option<crate::instruments::replica::ReplicaStep>,
    /// The steady writers' writes that waited (`--writers`).
    #[serde(default)]
    pub slow_writes: SlowWrites,
}

/// The steady writers' inserts and updates that took [`crate::instruments::load::SLOW_WRITE`] or
/// longer during a step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SlowWrites {
    pub count: u64,
    pub longest_ms: f64,
}

impl SlowWrites {
    /// Those that started in `[from, until)`.
    pub fn during(slow: &[crate::instruments::load::SlowWrite], (from, until): (f64, f64)) -> Self {
        slow.iter()
            .filter(|s| s.at_ms >= from && s.at_ms < until)
            .fold(SlowWrites::default(), |sum, s| SlowWrites {
                count: sum.count + 1,
                longest_ms: sum.longest_ms.max(s.took_ms),
            })
    }
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
            failed: None,
            replica: None,
            slow_writes: SlowWrites::default(),
        }
    }
}

/// The requests in flight during a step's window, and later ones that may
/// end an outage it started.
pub fn in_flight(samples: &[Sample], (start_ms, end_ms): (f64, f64), run_end_ms: f64) -> Summary {
    let during = probe::during(samples, (start_ms, end_ms));
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
    pub writers: crate::instruments::load::WriterCounts,
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
    /// Set when Ctrl-C stopped the demo: where. The projects are those
    /// that finished before it; nothing of the one it stopped is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
    pub projects: Vec<ProjectReport>,
}

/// What a report stopped by Ctrl-C says first, everywhere it is written.
pub fn interrupted_line(report: &DemoReport) -> Option<String> {
    report.interrupted.as_ref().map(|during| {
        format!(
            "INCOMPLETE: the demo was interrupted (Ctrl-C) {during}; this report holds only the {} project(s) that finished before it",
            report.projects.len()
        )
    })
}

pub use crate::instruments::duration;

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
    // one kind of note at a time, over every step
    let per_step: [StepNote; 7] = [
        did_not_complete,
        queued,
        locked_others,
        reads_starved,
        other_probes,
        writers_waited,
        standby,
    ];
    let mut notes: Vec<String> = per_step
        .iter()
        .flat_map(|note| report.steps.iter().flat_map(move |step| note(report, step)))
        .collect();
    notes.extend(run_notes(report));
    notes
}

/// What one step says of one kind, if anything.
type StepNote = fn(&ProjectReport, &StepReport) -> Vec<String>;

fn did_not_complete(_: &ProjectReport, step: &StepReport) -> Vec<String> {
    step.failed
        .iter()
        .map(|why| {
            format!(
                "{} DID NOT COMPLETE, and the walkthrough stopped there: {why}",
                step.name
            )
        })
        .collect()
}

fn queued(_: &ProjectReport, step: &StepReport) -> Vec<String> {
    step.queued_behind
        .iter()
        .map(|behind| {
            format!(
                "{} queued {} behind {behind}",
                step.name,
                duration(step.lock_waited_ms)
            )
        })
        .collect()
}

fn locked_others(_: &ProjectReport, step: &StepReport) -> Vec<String> {
    if step.also_locked.is_empty() {
        return Vec::new();
    }
    let held: Vec<String> = step
        .also_locked
        .iter()
        .map(|l| format!("{} on {} ({})", l.mode, l.table, duration(l.held_ms)))
        .collect();
    vec![format!(
        "{} also held {}: writes to those tables waited as long",
        step.name,
        held.join(", ")
    )]
}

fn reads_starved(report: &ProjectReport, step: &StepReport) -> Vec<String> {
    if !queued_reads(step) {
        return Vec::new();
    }
    vec![format!(
        "{}: reads waited up to {} inside the server for a worker with a database connection: the lock itself lets reads through ({}), but the writes blocked on it held all {} of the server's connections",
        step.name,
        duration(step.reads.max_queue_ms),
        step.lock
            .map_or_else(|| "none seen".to_owned(), |m| m.to_string()),
        report.server_connections
    )]
}

/// The other probes: the baseline for reference, then the steps that
/// failed some or slowed them down (past 100 ms, or ten times the
/// baseline and past 20 ms: a query that lost its index).
fn other_probes(report: &ProjectReport, step: &StepReport) -> Vec<String> {
    let baseline_max = |probe: &str| {
        report
            .steps
            .iter()
            .find(|s| s.kind == StepKind::Baseline)
            .and_then(|b| b.also_probed.iter().find(|(p, _)| p == probe))
            .map(|(_, s)| s.max_ms)
    };
    let slower = |probe: &str, s: &Summary| {
        baseline_max(probe).filter(|&b| b > 0.0 && s.max_ms >= 20.0 && s.max_ms >= 10.0 * b)
    };
    let telling = |s: &&(String, Summary)| {
        s.1.requests > 0
            && (step.kind == StepKind::Baseline
                || s.1.failures > 0
                || s.1.max_ms >= 100.0
                || slower(&s.0, &s.1).is_some())
    };
    step.also_probed
        .iter()
        .filter(telling)
        .map(|(probe, s)| {
            let against = match (step.kind == StepKind::Baseline, slower(probe, s)) {
                (false, Some(b)) => {
                    format!(" ({:.0}x the baseline's {})", s.max_ms / b, duration(b))
                }
                _ => String::new(),
            };
            format!(
                "{}: {probe} {} ok / {} failed, max latency {}{against}, longest outage {}",
                step.name,
                s.requests - s.failures,
                s.failures,
                duration(s.max_ms),
                duration(s.longest_outage_ms)
            )
        })
        .collect()
}

fn writers_waited(_: &ProjectReport, step: &StepReport) -> Vec<String> {
    if step.slow_writes.count == 0 {
        return Vec::new();
    }
    vec![format!(
        "{}: {} of the steady writers' inserts and updates waited {} or more, the longest {} (for a lock the step held or queued for, or a server slowed down)",
        step.name,
        step.slow_writes.count,
        duration(crate::instruments::load::SLOW_WRITE.as_secs_f64() * 1000.0),
        duration(step.slow_writes.longest_ms)
    )]
}

fn standby(_: &ProjectReport, step: &StepReport) -> Vec<String> {
    let Some(r) = &step.replica else {
        return Vec::new();
    };
    let locked = if r.locked_ms > 0.0 {
        format!(
            "; they waited on AccessExclusive, replayed there and held {}",
            duration(r.locked_ms)
        )
    } else {
        String::new()
    };
    vec![format!(
        "{}: WAL {}; standby behind by {:.2} s at most ({}); its readers {} ok / {} failed, max latency {}, longest outage {}{locked}",
        step.name,
        crate::timing::mib(r.wal_bytes),
        r.lag_seconds,
        crate::timing::mib(r.lag_bytes),
        r.reads.requests - r.reads.failures,
        r.reads.failures,
        duration(r.reads.max_ms),
        duration(r.reads.longest_outage_ms),
    )]
}

/// What the run as a whole says: the writes checked, the steady writers,
/// how to read the steps under a held lock.
fn run_notes(report: &ProjectReport) -> Vec<String> {
    let mut notes = vec![format!(
        "all {} acknowledged writes are in the table; it holds {} rows: seeded + writers' inserts + probe writes ({} of which landed after their client gave up)",
        report.writes_acknowledged,
        indicatif::HumanCount(report.rows_in_table.max(0) as u64),
        report.late_writes
    )];
    if report.writers != crate::instruments::load::WriterCounts::default() {
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
        .is_some_and(|m| m < crate::instruments::locks::LockMode::AccessExclusive)
        && step.reads.max_queue_ms > 100.0
        && step.reads.max_queue_ms > step.reads.max_ms / 2.0
}

/// One side of a pattern (its risky step, or its safe path) as the
/// summary shows it: the strongest lock on the large table and how long
/// it was held, the requests that failed (every probe), the longest outage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Side {
    pub lock: Option<LockMode>,
    pub held_ms: f64,
    pub failed: usize,
    pub requests: usize,
    pub outage_ms: f64,
    /// With a standby (`--replica`): the furthest behind it fell, and the
    /// reads served from it.
    pub standby: Option<StandbySide>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StandbySide {
    pub lag_seconds: f64,
    pub failed: usize,
    pub requests: usize,
}

impl Side {
    fn of<'a>(steps: impl Iterator<Item = &'a StepReport>) -> Side {
        let mut side = Side {
            lock: None,
            held_ms: 0.0,
            failed: 0,
            requests: 0,
            outage_ms: 0.0,
            standby: None,
        };
        for step in steps {
            if let Some(replica) = &step.replica {
                let standby = side.standby.get_or_insert(StandbySide {
                    lag_seconds: 0.0,
                    failed: 0,
                    requests: 0,
                });
                standby.lag_seconds = standby.lag_seconds.max(replica.lag_seconds);
                standby.failed += replica.reads.failures;
                standby.requests += replica.reads.requests;
            }
            if step.lock > side.lock || (step.lock == side.lock && step.lock_held_ms > side.held_ms)
            {
                side.lock = step.lock;
                side.held_ms = step.lock_held_ms;
            }
            let probes = [&step.reads, &step.writes]
                .into_iter()
                .chain(step.also_probed.iter().map(|(_, s)| s));
            for s in probes {
                side.failed += s.failures;
                side.requests += s.requests;
                side.outage_ms = side.outage_ms.max(s.longest_outage_ms);
            }
        }
        side
    }

    pub fn cells(&self) -> [String; 3] {
        [
            self.lock.map_or_else(
                || "none seen".to_owned(),
                |mode| format!("{mode} ({})", duration(self.held_ms)),
            ),
            format!("{} of {}", self.failed, self.requests),
            duration(self.outage_ms),
        ]
    }

    /// The standby's side, in one cell: "0.33 s behind, 0 of 120 reads
    /// failed" (empty without one).
    pub fn standby_cell(&self) -> String {
        self.standby.map_or_else(String::new, |s| {
            format!(
                "{:.2} s behind, {} of {} reads failed",
                s.lag_seconds, s.failed, s.requests
            )
        })
    }
}

/// A pattern's risky step against its safe path (every step from the
/// risky one's record or re-run on: the safe migrations and any deploy).
pub fn sides(report: &ProjectReport) -> (Side, Side) {
    let risky = report.steps.iter().find(|s| s.kind == StepKind::Risky);
    let safe = report
        .steps
        .iter()
        .filter(|s| matches!(s.kind, StepKind::Safe | StepKind::Deploy));
    (Side::of(risky.into_iter()), Side::of(safe))
}

const SUMMARY_HEADER: [&str; 7] = [
    "pattern",
    "risky step: lock (held)",
    "failed requests",
    "longest outage",
    "safe path: lock (held)",
    "failed requests",
    "longest outage",
];

/// What each column of the tables means: the HTML page's legend.
pub const LEGEND: [(&str, &str); 8] = [
    (
        "lock (held)",
        "the strongest lock the lock monitor (pg_locks, every 10 ms) saw the migration hold on the large table, and the longest it was seen held without a break; a lock shorter than the interval may go unseen",
    ),
    (
        "rewrite",
        "the table's file changed (pg_class.relfilenode): every row was copied",
    ),
    (
        "ok/fail",
        "the probes' requests in flight during the step; anything but 200 (reads) or 201 (writes) within the timeout is a failure",
    ),
    (
        "max lat, p99",
        "the slowest request and the 99th percentile, reads and writes",
    ),
    (
        "longest outage",
        "the longest any request waited, from being sent, for some request to succeed: milliseconds when all is well, the whole blocking time when the table is locked",
    ),
    (
        "failed requests",
        "(summary) every probe of the risky step, or of all the safe path's steps",
    ),
    (
        "risky step",
        "the migration as the talk's original project runs it",
    ),
    (
        "safe path",
        "the safe migrations (and any deploy) that do the same work, each with lock_timeout and retries",
    ),
];

/// The summary as rows of cells, header first.
pub fn summary_rows(reports: &[ProjectReport]) -> Vec<[String; 7]> {
    std::iter::once(SUMMARY_HEADER.map(str::to_owned))
        .chain(reports.iter().map(summary_cells))
        .collect()
}

fn summary_cells(report: &ProjectReport) -> [String; 7] {
    let (risky, safe) = sides(report);
    let [r0, r1, r2] = risky.cells();
    let [s0, s1, s2] = safe.cells();
    [report.project.clone(), r0, r1, r2, s0, s1, s2]
}

/// Every pattern of the run, its risky step beside its safe path.
pub fn write_summary(out: &mut dyn Write, reports: &[ProjectReport]) -> io::Result<()> {
    let rows = summary_rows(reports);
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..7).map(width).collect();
    writeln!(out, "\nrisky step against safe path, every pattern:")?;
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (cell, w))| match i {
                0 | 1 | 4 => format!("{cell:<w$}"),
                _ => format!("{cell:>w$}"),
            })
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    Ok(())
}

/// The same summary in Markdown.
pub fn write_summary_markdown(out: &mut dyn Write, reports: &[ProjectReport]) -> io::Result<()> {
    if reports.is_empty() {
        return Ok(());
    }
    for (i, row) in summary_rows(reports).iter().enumerate() {
        writeln!(out, "| {} |", row.join(" | "))?;
        if i == 0 {
            writeln!(out, "|---|---|---:|---:|---|---:|---:|")?;
        }
    }
    writeln!(out)
}

/// The step at which the walkthrough stopped, if one did not complete.
pub fn stopped_at(report: &ProjectReport) -> Option<&StepReport> {
    report.steps.iter().find(|s| s.failed.is_some())
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

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(table: &str, strongest: Option<LockMode>) -> LockSummary {
        LockSummary {
            table: table.to_owned(),
            strongest,
            held_ms: 40.0,
            waited_ms: 0.0,
            blocked_by: None,
            max_waiters: 0,
            statement: None,
        }
    }

    /// Only locks that stop writes are worth a note about another table.
    #[test]
    fn other_tables_count_from_share_up() {
        assert_eq!(
            OtherLock::blocking_writes(summary("customer", Some(LockMode::ShareRowExclusive))),
            Some(OtherLock {
                table: "customer".to_owned(),
                mode: LockMode::ShareRowExclusive,
                held_ms: 40.0,
            })
        );
        for weak in [
            None,
            Some(LockMode::RowShare),
            Some(LockMode::ShareUpdateExclusive),
        ] {
            assert_eq!(OtherLock::blocking_writes(summary("customer", weak)), None);
        }
    }
}
