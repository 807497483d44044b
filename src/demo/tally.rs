//! The walk read off the instruments' timeline: each step's lock, probes,
//! standby and writers; then every acknowledged write found and every row
//! accounted for.

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};

use super::plan::Planned;
use super::report::{self, OtherLock, ProjectReport, SlowWrites, StepReport};
use super::walk::Window;
use super::{DemoError, DemoOptions, SERVER_CONNECTIONS, labels};
use crate::instruments::probe::Sample;
use crate::instruments::{LOCK_INTERVAL, Measured, locks, replica};
use crate::scenarios::Scenario;

/// What the run was, besides what it measured.
pub struct Run<'a> {
    pub scenario: &'static Scenario,
    pub options: &'a DemoOptions,
    pub postgres: String,
    pub planned: &'a [Planned],
}

/// The report: each step's window read off the probes and the lock
/// samples, every acknowledged write found, every row accounted for.
pub fn report(
    conn: &mut PgConnection,
    run: &Run<'_>,
    windows: Vec<Window>,
    measured: Measured,
) -> Result<ProjectReport, DemoError> {
    let (scenario, options) = (run.scenario, run.options);
    let completed = windows.iter().all(|w| w.failed.is_none());
    let next_starts: Vec<f64> = windows
        .iter()
        .skip(1)
        .map(|w| w.start_ms)
        .chain([measured.end_ms])
        .collect();
    let steps = run
        .planned
        .iter()
        .zip(windows)
        .zip(next_starts)
        .map(|((planned, window), until_ms)| {
            step_report(scenario, planned, window, until_ms, &measured)
        })
        .collect();
    let reads = measured.samples(labels::READS).to_vec();
    let writes = measured.samples(labels::WRITES).to_vec();
    let present = verify_writes(conn, scenario.large_table(), &writes)?;
    for extra in scenario.also_probe {
        if let Some(table) = extra.table {
            verify_writes(conn, table, measured.samples(&labels::also(extra)))?;
        }
    }
    let (rows_in_table, probe_writes) = count_rows(
        conn,
        (scenario, completed),
        options.large_count,
        measured.writer_counts.inserted,
    )?;
    Ok(ProjectReport {
        project: scenario.project().to_owned(),
        rows: options.large_count,
        postgres: run.postgres.clone(),
        interval_ms: options.interval.as_secs_f64() * 1000.0,
        timeout_ms: options.timeout.as_secs_f64() * 1000.0,
        steps,
        writes_acknowledged: present,
        writers: measured.writer_counts.clone(),
        rows_in_table,
        probe_writes_in_table: probe_writes,
        late_writes: probe_writes.saturating_sub(present as i64).max(0),
        hold_lock_ms: options.hold_lock.map(|h| h.as_secs_f64() * 1000.0),
        server_connections: SERVER_CONNECTIONS,
        lock_timeout_ms: Some(options.lock.timeout.as_secs_f64() * 1000.0),
        end_ms: measured.end_ms,
        reads,
        writes,
    })
}

/// One step: its lock on the large table (and write-blocking ones on the
/// others), the requests in flight from its start until the next step's
/// (what it left behind counts too: a dropped column fails requests after
/// the drop is done), the standby, the writers that waited.
fn step_report(
    scenario: &Scenario,
    planned: &Planned,
    window: Window,
    until_ms: f64,
    measured: &Measured,
) -> StepReport {
    let Window {
        start_ms,
        end_ms,
        rewritten,
        failed,
    } = window;
    let interval_ms = LOCK_INTERVAL.as_secs_f64() * 1000.0;
    let large = scenario.large_table();
    let summarize = |table: &str| {
        locks::summarize(&measured.lock_samples, table, start_ms, end_ms, interval_ms)
    };
    let lock = summarize(large);
    let in_flight =
        |samples: &[Sample]| report::in_flight(samples, (start_ms, until_ms), measured.end_ms);
    let replica = measured.wal.as_deref().map(|wal| {
        let (wal_bytes, lag_seconds, lag_bytes) = replica::over(wal, (start_ms, until_ms));
        replica::ReplicaStep {
            wal_bytes,
            lag_seconds,
            lag_bytes,
            locked_ms: replica::locked_ms(wal, (start_ms, until_ms)),
            reads: in_flight(measured.samples(labels::STANDBY_READS)),
        }
    });
    StepReport {
        name: planned.name.clone(),
        kind: planned.kind,
        start_ms,
        end_ms,
        duration_ms: end_ms - start_ms,
        lock: lock.strongest,
        lock_held_ms: lock.held_ms,
        lock_waited_ms: lock.waited_ms,
        queued_behind: lock.blocked_by,
        lock_interval_ms: interval_ms,
        max_waiters: lock.max_waiters,
        statement: lock.statement,
        rewritten,
        reads: in_flight(measured.samples(labels::READS)),
        writes: in_flight(measured.samples(labels::WRITES)),
        also_locked: scenario
            .tables()
            .iter()
            .filter(|t| **t != large)
            .filter_map(|t| OtherLock::blocking_writes(summarize(t)))
            .collect(),
        also_probed: scenario
            .also_probe
            .iter()
            .map(|extra| {
                let label = labels::also(extra);
                let summary = in_flight(measured.samples(&label));
                (label, summary)
            })
            .collect(),
        failed,
        replica,
        slow_writes: SlowWrites::during(&measured.slow_writes, (start_ms, until_ms)),
    }
}

/// Checks that the large table holds exactly the rows written to it (seeded,
/// inserted by writers, and probe writes that landed), and that the safe
/// path's column has no NULL. Returns the row count and how many probe
/// writes landed (acknowledged or not: a write whose client timed out can
/// still commit once the lock is released).
fn count_rows(
    conn: &mut PgConnection,
    (scenario, completed): (&Scenario, bool),
    seeded: u64,
    inserted: u64,
) -> Result<(i64, i64), DemoError> {
    let large = scenario.large_table();
    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = BigInt)]
        found: i64,
        #[diesel(sql_type = BigInt)]
        probes: i64,
    }
    // rows the migrations delete are left out, at whatever state the
    // walkthrough stopped: the seeded rows they do not match are counted
    let (kept, seeded) = match scenario.purged {
        Some(purged) => (
            format!("WHERE NOT ({})", purged.filter),
            (purged.kept_of_seeded)(seeded),
        ),
        None => (String::new(), seeded),
    };
    // one statement, one snapshot: writes the stopped server had queued can
    // still land while the lab counts, and must land in both counts or none
    let Counts { found, probes } = diesel::sql_query(format!(
        "SELECT count(*) AS found, count(*) FILTER (WHERE {} LIKE 'probe write %') AS probes FROM {large} {kept}",
        scenario.name_column
    ))
    .get_result::<Counts>(conn)?;
    let expected = seeded as i64 + inserted as i64 + probes;
    if found != expected {
        return Err(DemoError::RowCount {
            table: large.to_owned(),
            found,
            expected,
        });
    }
    // a walkthrough that stopped early left the recipes' work undone
    for (_, recipe) in scenario.rust_migrations.iter().filter(|_| completed) {
        if let Some(problem) = recipe.check(conn)? {
            return Err(DemoError::Check(problem));
        }
    }
    Ok((found, probes))
}

/// Checks that every write the server acknowledged (a 201 with an id) is in
/// `table`; returns how many there are, or fails naming the missing ids.
pub fn verify_writes(
    conn: &mut PgConnection,
    table: &str,
    writes: &[Sample],
) -> Result<usize, DemoError> {
    let acknowledged: Vec<i64> = writes
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| s.id)
        .collect();
    #[derive(QueryableByName)]
    struct Missing {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let missing = diesel::sql_query(format!(
        "SELECT a.id FROM unnest($1) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = a.id) ORDER BY a.id"
    ))
    .bind::<Array<BigInt>, _>(&acknowledged)
    .load::<Missing>(conn)?;
    if missing.is_empty() {
        Ok(acknowledged.len())
    } else {
        let ids: Vec<String> = missing.iter().take(20).map(|m| m.id.to_string()).collect();
        Err(DemoError::LostWrites {
            table: table.to_owned(),
            acknowledged: acknowledged.len(),
            missing: missing.len(),
            ids: ids.join(", "),
        })
    }
}
