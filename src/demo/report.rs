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
    /// The lock monitor's sampling interval: shorter locks may go unseen.
    pub lock_interval_ms: f64,
    pub max_waiters: i64,
    pub statement: Option<String>,
    /// Tables whose file changed: rewritten.
    pub rewritten: Vec<String>,
    /// The requests in flight during the step.
    pub reads: Summary,
    pub writes: Summary,
}

impl StepReport {
    /// Reads a step off the timeline: the requests in flight during it, and
    /// later ones that may end an outage it started.
    #[expect(
        clippy::too_many_arguments,
        reason = "one step's facts, gathered from four sources"
    )]
    pub fn new(
        name: &str,
        kind: StepKind,
        start_ms: f64,
        end_ms: f64,
        (lock, lock_interval_ms): (LockSummary, f64),
        rewritten: Vec<String>,
        reads: &[Sample],
        writes: &[Sample],
        run_end_ms: f64,
    ) -> Self {
        let summary = |samples: &[Sample]| {
            let during: Vec<&Sample> = samples
                .iter()
                .filter(|s| s.sent_ms <= end_ms && s.done_ms() >= start_ms)
                .collect();
            let later: Vec<&Sample> = samples.iter().filter(|s| s.sent_ms > end_ms).collect();
            probe::summarize(&during, &later, run_end_ms)
        };
        StepReport {
            name: name.to_owned(),
            kind,
            start_ms,
            end_ms,
            duration_ms: end_ms - start_ms,
            lock: lock.strongest,
            lock_held_ms: lock.held_ms,
            lock_interval_ms,
            max_waiters: lock.max_waiters,
            statement: lock.statement,
            rewritten,
            reads: summary(reads),
            writes: summary(writes),
        }
    }
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
    if ms < 1000.0 {
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

/// The demo's table for one project.
pub fn write_table(out: &mut dyn Write, report: &ProjectReport) -> io::Result<()> {
    writeln!(
        out,
        "\n{}: {} rows, {}; a read and a write every {}, timeout {}",
        report.project,
        indicatif::HumanCount(report.rows),
        report.postgres,
        duration(report.interval_ms),
        duration(report.timeout_ms)
    )?;
    writeln!(
        out,
        "{:<40} {:>9}  {:<30} {:<7} {:>13} {:>14} {:>8} {:>8} {:>15}",
        "step",
        "duration",
        "strongest lock (held)",
        "rewrite",
        "reads ok/fail",
        "writes ok/fail",
        "max lat",
        "p99",
        "longest outage"
    )?;
    for step in &report.steps {
        let lock = lock_cell(step);
        writeln!(
            out,
            "{:<40} {:>9}  {:<30} {:<7} {:>13} {:>14} {:>8} {:>8} {:>15}",
            step.name,
            duration(step.duration_ms),
            lock,
            if step.rewritten.is_empty() {
                "no"
            } else {
                "yes"
            },
            ok_fail(&step.reads),
            ok_fail(&step.writes),
            step.worst(|s| s.max_ms),
            step.worst(|s| s.p99_ms),
            step.worst(|s| s.longest_outage_ms),
        )?;
    }
    writeln!(
        out,
        "all {} acknowledged writes are in the table",
        report.writes_acknowledged
    )
}

/// `AccessExclusive (121 ms)`, or what the sampling could not see.
pub fn lock_cell(step: &StepReport) -> String {
    match (step.lock, step.kind) {
        (Some(mode), _) => format!("{mode} ({})", duration(step.lock_held_ms)),
        (None, StepKind::Baseline | StepKind::Record) => "-".to_owned(),
        (None, _) => format!("none seen (< {})", duration(step.lock_interval_ms)),
    }
}
