//! The batched backfill behind 0004: walks the primary key in ranges.
//!
//! Each batch is `UPDATE t SET col = expr WHERE id > lo AND id <= hi AND col
//! IS NULL`: an index range scan touching only its batch (never the
//! originals' `WHERE col IS NULL LIMIT n`, which re-scans the table every
//! batch, nor `id IN (...)` lists), committed on its own before the next, so
//! locks are short and an interruption loses at most the batch in flight. A
//! re-run walks again and finds done ranges already filled. Rows written while
//! it runs are caught because the walk re-reads `max(id)` at its end, and the
//! run only succeeds once a final count finds no NULL: only then does the
//! runner record the migration.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::budget::{Budget, Paused, Waited, Watch};
use crate::retry::{self, LockPolicy, RetryError};
use crate::timing;

/// One column to fill from the others, per table.
#[derive(Debug, Clone, Copy)]
pub struct BackfillSpec {
    pub table: &'static str,
    /// The model name the seed's lines use, e.g. `LargeRecord`.
    pub label: &'static str,
    pub column: &'static str,
    /// The SQL expression the column gets, e.g. `created_at::timestamptz`.
    pub value: &'static str,
}

#[derive(Debug, Clone, Copy)]
pub struct BackfillOptions {
    /// Rows per batch; with `batch_time`, the first batch's.
    pub batch_size: u64,
    /// Grow or shrink the batches so each takes about this long.
    pub batch_time: Option<Duration>,
    pub pause: Duration,
    /// Draw a progress bar on stderr (only where stderr is a terminal).
    pub progress: bool,
    /// Each batch waits at most this long for its locks, then retries.
    pub lock: Option<LockPolicy>,
    /// VACUUM the table after this many rows (see [`vacuum`]).
    pub vacuum_every: Option<u64>,
    /// Limits kept to between batches ([`crate::budget`]).
    pub budget: Budget,
}

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("{count} rows of {table} still have {column} NULL after {passes} passes")]
    NullsLeft {
        table: String,
        column: String,
        count: i64,
        passes: u32,
    },
    #[error("{count} rows of {table} still match {filter} after the walk")]
    RowsLeft {
        table: String,
        filter: String,
        count: i64,
    },
    #[error("batch size must be at least 1")]
    ZeroBatch,
    #[error(
        "interrupted (Ctrl-C) after batch {batch} of {table}; the batches before it are committed"
    )]
    Interrupted { table: String, batch: u64 },
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Locked(#[from] RetryError<diesel::result::Error>),
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error(transparent)]
    Budget(#[from] crate::budget::BudgetError),
}

/// Rows to delete in batches: those of `table` that `filter` matches.
#[derive(Debug, Clone, Copy)]
pub struct PurgeSpec {
    pub table: &'static str,
    /// The model name the seed's lines use, e.g. `LargeEvent`.
    pub label: &'static str,
    /// The condition of the rows to delete, e.g. `kind = 'debug'`.
    pub filter: &'static str,
}

/// What a walk does to each batch of ids: fill a column's NULLs, clear it
/// again (a backfill's way down), or delete the rows a filter matches.
#[derive(Debug, Clone, Copy)]
pub enum Job<'a> {
    Fill(&'a BackfillSpec),
    Clear(&'a BackfillSpec),
    Delete(&'a PurgeSpec),
}

impl Job<'_> {
    fn table(&self) -> &str {
        match self {
            Job::Fill(spec) | Job::Clear(spec) => spec.table,
            Job::Delete(spec) => spec.table,
        }
    }

    fn label(&self) -> &str {
        match self {
            Job::Fill(spec) | Job::Clear(spec) => spec.label,
            Job::Delete(spec) => spec.label,
        }
    }

    fn verb(&self) -> &'static str {
        match self {
            Job::Fill(_) => "backfilled",
            Job::Clear(_) => "cleared",
            Job::Delete(_) => "deleted",
        }
    }

    /// The statement of the batch of ids in `(lo, hi]`, the bounds as SQL:
    /// `$1` and `$2` where `sqlmigrate` shows it, `lo` and `lo + batch_size`
    /// in the plain-SQL twin's loop, integers where it runs.
    pub fn statement(&self, lo: &str, hi: &str) -> String {
        match self {
            Job::Fill(BackfillSpec {
                table,
                column,
                value,
                ..
            }) => format!(
                "UPDATE {table} SET {column} = {value} WHERE id > {lo} AND id <= {hi} AND {column} IS NULL"
            ),
            Job::Clear(BackfillSpec { table, column, .. }) => format!(
                "UPDATE {table} SET {column} = NULL WHERE id > {lo} AND id <= {hi} AND {column} IS NOT NULL"
            ),
            Job::Delete(PurgeSpec { table, filter, .. }) => {
                format!("DELETE FROM {table} WHERE id > {lo} AND id <= {hi} AND {filter}")
            }
        }
    }
}

#[derive(QueryableByName)]
struct Bounds {
    #[diesel(sql_type = Nullable<BigInt>)]
    lo: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    hi: Option<i64>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Filled {
    pub rows: u64,
    /// Time it spent paused by its budget, over every limit.
    pub paused: Paused,
}

/// Fills every table's column; succeeds only when no NULL is left.
pub fn run(
    conn: &mut PgConnection,
    specs: &[BackfillSpec],
    options: BackfillOptions,
    out: &mut dyn Write,
) -> Result<Filled, BackfillError> {
    const MAX_PASSES: u32 = 3;
    let mut total = Filled::default();
    for spec in specs {
        let started = Instant::now();
        let batches = match options.batch_time {
            Some(target) => format!(
                "batches of about {:.2}s (the first {} rows)",
                target.as_secs_f64(),
                HumanCount(options.batch_size)
            ),
            None => format!("batches of {}", HumanCount(options.batch_size)),
        };
        timing::step_start(
            out,
            &format!("Backfilling {}.{} in {batches}...", spec.label, spec.column),
        )?;
        let mut filled = 0;
        for pass in 1..=MAX_PASSES {
            let (rows, paused) = walk(conn, Job::Fill(spec), options, out)?;
            filled += rows;
            total.paused.time += paused.time;
            total.paused.pauses += paused.pauses;
            let left = nulls_left(conn, spec)?;
            if left == 0 {
                break;
            }
            if pass == MAX_PASSES {
                return Err(BackfillError::NullsLeft {
                    table: spec.table.to_owned(),
                    column: spec.column.to_owned(),
                    count: left,
                    passes: pass,
                });
            }
        }
        writeln!(
            out,
            "[{}] Backfill complete! Total: {} rows",
            timing::stamp_clock(),
            HumanCount(filled)
        )?;
        timing::step_done(
            out,
            &format!("✓ {}.{} backfilled", spec.label, spec.column),
            started.elapsed(),
        )?;
        total.rows += filled;
    }
    Ok(total)
}

/// The way down: clears the column again, batched like the way up.
pub fn revert(
    conn: &mut PgConnection,
    specs: &[BackfillSpec],
    options: BackfillOptions,
    out: &mut dyn Write,
) -> Result<u64, BackfillError> {
    let mut total = 0;
    for spec in specs.iter().rev() {
        let started = Instant::now();
        timing::step_start(
            out,
            &format!("Clearing {}.{} in batches...", spec.label, spec.column),
        )?;
        let (cleared, _) = walk(conn, Job::Clear(spec), options, out)?;
        timing::step_done(
            out,
            &format!(
                "✓ {}.{} cleared: {} rows",
                spec.label,
                spec.column,
                HumanCount(cleared)
            ),
            started.elapsed(),
        )?;
        total += cleared;
    }
    Ok(total)
}

/// Deletes the rows each spec's filter matches, batch by batch as a
/// backfill walks; succeeds only when none is left. Returns the rows
/// deleted and the time the budget paused it.
pub fn purge(
    conn: &mut PgConnection,
    specs: &[PurgeSpec],
    options: BackfillOptions,
    out: &mut dyn Write,
) -> Result<Filled, BackfillError> {
    let mut total = Filled::default();
    for spec in specs {
        let started = Instant::now();
        timing::step_start(
            out,
            &format!(
                "Deleting {} rows where {} in batches of {}...",
                spec.label,
                spec.filter,
                HumanCount(options.batch_size)
            ),
        )?;
        let (rows, paused) = walk(conn, Job::Delete(spec), options, out)?;
        let left = rows_matching(conn, spec)?;
        if left > 0 {
            return Err(BackfillError::RowsLeft {
                table: spec.table.to_owned(),
                filter: spec.filter.to_owned(),
                count: left,
            });
        }
        timing::step_done(
            out,
            &format!("✓ {} rows deleted: {}", spec.label, HumanCount(rows)),
            started.elapsed(),
        )?;
        total.rows += rows;
        total.paused.time += paused.time;
        total.paused.pauses += paused.pauses;
    }
    Ok(total)
}

/// The rows of a purge's table its filter still matches.
pub fn rows_matching(conn: &mut PgConnection, spec: &PurgeSpec) -> QueryResult<i64> {
    diesel::sql_query(format!(
        "SELECT count(*) AS count FROM {} WHERE {}",
        spec.table, spec.filter
    ))
    .get_result::<Count>(conn)
    .map(|c| c.count)
}

/// Where a walk is, and what it has said.
struct Cursor {
    /// The ids done are up to `lo`; the table's ids go up to `hi`.
    lo: i64,
    hi: i64,
    /// Where the walk started, and whether every batch so far found
    /// nothing to do (a resumed walk says so once, not per batch).
    first: i64,
    quiet: bool,
    batch: i64,
    number: u64,
    done: u64,
    since_vacuum: u64,
}

impl Cursor {
    /// After the budget's check: smaller batches when a limit was exceeded
    /// (less WAL at a time, shorter row locks); back toward the size asked
    /// for when all is well, unless batches follow a target time.
    fn resize(&mut self, waited: Waited, timed: bool, configured: i64) {
        match waited {
            Waited::Paused => self.batch = (self.batch / 2).max(MIN_BATCH),
            Waited::No if !timed => self.batch = self.batch.saturating_mul(2).min(configured),
            _ => {}
        }
    }

    /// The line for the batch that just ran up to `upper`, if one is due.
    fn line(&mut self, (rows, took): (u64, Duration), upper: i64, verb: &str) -> Option<String> {
        let was_quiet = self.quiet;
        self.quiet &= rows == 0 && upper < self.hi;
        let number = self.number;
        let batch = || {
            format!(
                "Batch {number} {verb}: {} rows ({:.1}s)",
                HumanCount(rows),
                took.as_secs_f64()
            )
        };
        let ids = |to: i64| HumanCount(u64::try_from(to - self.first).unwrap_or(0));
        match (was_quiet, self.quiet, rows) {
            (_, true, _) => None,
            (true, false, 0) => Some(format!(
                "nothing left to do: all {} ids were already {verb}",
                ids(upper.min(self.hi))
            )),
            (true, false, _) if number > 1 => Some(format!(
                "resuming: the first {} ids were already {verb}; {}",
                ids(self.lo),
                batch()
            )),
            _ => Some(batch()),
        }
    }
}

/// Walks the primary key in ranges of `options.batch_size` ids, one short
/// transaction per batch (with `options.lock`'s timeout and retries),
/// pausing and shrinking where the budget says, and looks again for a
/// larger max id at the end, so rows inserted meanwhile are covered too.
/// Returns the rows it changed and the time its budget paused it.
fn walk(
    conn: &mut PgConnection,
    job: Job<'_>,
    options: BackfillOptions,
    out: &mut dyn Write,
) -> Result<(u64, Paused), BackfillError> {
    if options.batch_size == 0 {
        return Err(BackfillError::ZeroBatch);
    }
    let configured = i64::try_from(options.batch_size).unwrap_or(i64::MAX);
    let bounds = diesel::sql_query(format!(
        "SELECT min(id) - 1 AS lo, max(id) AS hi FROM {}",
        job.table()
    ))
    .get_result::<Bounds>(conn)?;
    let (Some(lo), Some(hi)) = (bounds.lo, bounds.hi) else {
        return Ok((0, Paused::default()));
    };
    let mut at = Cursor {
        lo,
        hi,
        first: lo,
        quiet: true,
        batch: configured,
        number: 0,
        done: 0,
        since_vacuum: 0,
    };
    let bar = progress_bar(options.progress, u64::try_from(hi - lo).unwrap_or(0));
    let verb = job.verb();
    let say = |out: &mut dyn Write, line: &str| {
        bar.suspend(|| writeln!(out, "{line}").and_then(|()| out.flush()))
    };
    let mut watch = Watch::new(options.budget, conn)?;
    let walk_started = Instant::now();
    let interrupted = |number| BackfillError::Interrupted {
        table: job.table().to_owned(),
        batch: number,
    };
    while at.lo < at.hi {
        if crate::interrupt::requested() {
            return Err(interrupted(at.number));
        }
        if let Some(watch) = watch.as_mut() {
            let waited = bar.suspend(|| watch.wait(conn, out))?;
            if waited == Waited::Interrupted {
                return Err(interrupted(at.number));
            }
            at.resize(waited, options.batch_time.is_some(), configured);
        }
        let upper = at.lo.saturating_add(at.batch);
        let (rows, took) = batch(conn, job, (at.lo, upper), &options, out)?;
        at.number += 1;
        at.done += rows;
        at.since_vacuum += rows;
        if let Some(line) = at.line((rows, took), upper, verb) {
            say(out, &format!("[{}] {line}", timing::stamp_clock()))?;
        }
        if options
            .vacuum_every
            .is_some_and(|every| at.since_vacuum >= every)
        {
            say(out, &vacuum(conn, job)?)?;
            at.since_vacuum = 0;
        }
        bar.inc(u64::try_from(upper.min(at.hi) - at.lo).unwrap_or(0));
        at.lo = upper;
        if let Some(target) = options.batch_time {
            at.batch = next_batch(at.batch, took, target);
        }
        if at.lo >= at.hi
            && let Some(new_hi) = max_id(conn, job.table())?.filter(|h| *h > at.hi)
        {
            bar.inc_length(u64::try_from(new_hi - at.hi).unwrap_or(0));
            at.hi = new_hi;
        }
        if at.lo < at.hi && !options.pause.is_zero() {
            std::thread::sleep(options.pause);
        }
    }
    bar.finish_and_clear();
    let Some(watch) = &watch else {
        return Ok((at.done, Paused::default()));
    };
    for line in watch.summary(at.done, walk_started.elapsed()) {
        writeln!(out, "{line}")?;
    }
    Ok((at.done, watch.total_paused()))
}

/// One batch, `(lo, upper]`, with the lock policy's retries: the rows it
/// changed and how long it took.
fn batch(
    conn: &mut PgConnection,
    job: Job<'_>,
    (lo, upper): (i64, i64),
    options: &BackfillOptions,
    out: &mut dyn Write,
) -> Result<(u64, Duration), BackfillError> {
    let started = Instant::now();
    // the bounds are integers written as literals: the batch runs inside
    // pg_error's block (a lock timeout is told apart in any language),
    // and a block takes no binds
    let bounded = job.statement(&lo.to_string(), &upper.to_string());
    let run = |conn: &mut PgConnection, _: &mut dyn Write| {
        crate::pg_error::execute_counted(conn, &bounded)
    };
    let rows = match &options.lock {
        Some(policy) => retry::with_retries(conn, policy, job.table(), out, run)?,
        None => run(conn, out)?,
    };
    Ok((rows, started.elapsed()))
}

/// The table's largest id now (rows inserted while the walk ran).
fn max_id(conn: &mut PgConnection, table: &str) -> QueryResult<Option<i64>> {
    diesel::sql_query(format!(
        "SELECT 0::bigint AS lo, max(id) AS hi FROM {table}"
    ))
    .get_result::<Bounds>(conn)
    .map(|b| b.hi)
}

/// Vacuums the table between batches, so the space of the row versions the
/// backfill replaced is reused by the next batches instead of the table
/// growing by a full copy, and the autovacuum that follows a backfill finds
/// less to do. VACUUM takes SHARE UPDATE EXCLUSIVE (reads and writes go
/// on); `SKIP_LOCKED` leaves the table alone when a vacuum already runs on
/// it. Returns the line to print.
fn vacuum(conn: &mut PgConnection, job: Job<'_>) -> Result<String, BackfillError> {
    let started = Instant::now();
    crate::pg_error::execute_plain(conn, &format!("VACUUM (SKIP_LOCKED) {}", job.table()))?;
    Ok(format!(
        "[{}] Vacuumed {} ({:.1}s): the next batches reuse the space of the rows replaced so far",
        timing::stamp_clock(),
        job.label(),
        started.elapsed().as_secs_f64()
    ))
}

/// Batches never shrink below this many ids: below it, the round trip and
/// the commit cost more than the rows.
const MIN_BATCH: i64 = 1_000;

/// The next batch size when batches aim at `target`: scaled by how far the
/// last one was from it, but at most halved or doubled at a time, so one
/// batch slowed by a lock wait or a checkpoint does not swing the size.
fn next_batch(size: i64, took: Duration, target: Duration) -> i64 {
    let scale = (target.as_secs_f64() / took.as_secs_f64().max(1e-6)).clamp(0.5, 2.0);
    ((size as f64 * scale) as i64).max(MIN_BATCH)
}

fn nulls_left(conn: &mut PgConnection, spec: &BackfillSpec) -> QueryResult<i64> {
    diesel::sql_query(format!(
        "SELECT count(*) AS count FROM {} WHERE {} IS NULL",
        spec.table, spec.column
    ))
    .get_result::<Count>(conn)
    .map(|c| c.count)
}

/// A bar with rate and ETA over the id range, or a hidden one.
pub fn progress_bar(shown: bool, length: u64) -> ProgressBar {
    if !shown {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(length), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} rows  {per_sec}  ETA {eta}")
    {
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_move_toward_their_target_time_by_at_most_2x() {
        let ms = Duration::from_millis;
        assert_eq!(next_batch(100_000, ms(100), ms(200)), 200_000);
        assert_eq!(
            next_batch(100_000, ms(50), ms(200)),
            200_000,
            "at most doubled"
        );
        assert_eq!(next_batch(100_000, ms(250), ms(200)), 80_000);
        assert_eq!(
            next_batch(100_000, ms(5_000), ms(200)),
            50_000,
            "at most halved"
        );
        assert_eq!(next_batch(1_500, ms(5_000), ms(200)), MIN_BATCH);
        assert_eq!(next_batch(100_000, Duration::ZERO, ms(200)), 200_000);
    }
}
