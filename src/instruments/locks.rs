//! The lock monitor: what a migration really locks, sampled while it runs.
//!
//! A thread with its own connection reads `pg_locks` every few
//! milliseconds, and `pg_stat_activity` only for what changed (see
//! [`Sampler`]). Migrating sessions are known by
//! their `application_name` ([`MIGRATOR`], which `manage migrate` and the demo
//! set), so the monitor works across processes. For each watched table a
//! sample holds the strongest lock the migration holds, how many sessions wait
//! for a lock on the table, and the migration's statement. Whether a step
//! rewrote a table is read from `pg_class.relfilenode` before and after it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use serde::{Deserialize, Serialize};

use crate::db::{self, DbError};

pub use crate::db::MIGRATOR;

/// PostgreSQL's table lock modes, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    AccessShare,
    RowShare,
    RowExclusive,
    ShareUpdateExclusive,
    Share,
    ShareRowExclusive,
    Exclusive,
    AccessExclusive,
}

impl LockMode {
    /// From `pg_locks.mode`, e.g. `AccessExclusiveLock`.
    pub fn parse(mode: &str) -> Option<Self> {
        Some(match mode.trim_end_matches("Lock") {
            "AccessShare" => LockMode::AccessShare,
            "RowShare" => LockMode::RowShare,
            "RowExclusive" => LockMode::RowExclusive,
            "ShareUpdateExclusive" => LockMode::ShareUpdateExclusive,
            "Share" => LockMode::Share,
            "ShareRowExclusive" => LockMode::ShareRowExclusive,
            "Exclusive" => LockMode::Exclusive,
            "AccessExclusive" => LockMode::AccessExclusive,
            _ => return None,
        })
    }

    /// Whether it stops plain reads (SELECT) of the table.
    pub fn blocks_reads(self) -> bool {
        self == LockMode::AccessExclusive
    }

    /// Whether it stops writes (INSERT, UPDATE, DELETE) to the table.
    pub fn blocks_writes(self) -> bool {
        self >= LockMode::Share
    }
}

impl std::fmt::Display for LockMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// One table at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSample {
    pub t_ms: f64,
    pub table: String,
    /// The strongest lock the migration holds on the table, if any.
    pub held: Option<LockMode>,
    /// A lock the migration waits for on the table, if any.
    #[serde(default)]
    pub waiting: Option<LockMode>,
    /// Who holds up the migration's lock (`pg_blocking_pids`).
    #[serde(default)]
    pub blocked_by: Option<String>,
    /// Sessions waiting for a lock on the table.
    pub waiters: i64,
    pub statement: Option<String>,
}

#[derive(QueryableByName)]
struct Held {
    #[diesel(sql_type = BigInt)]
    relation: i64,
    #[diesel(sql_type = Text)]
    mode: String,
    #[diesel(sql_type = Bool)]
    granted: bool,
    #[diesel(sql_type = Integer)]
    pid: i32,
}

#[derive(QueryableByName)]
struct Oid {
    #[diesel(sql_type = BigInt)]
    oid: i64,
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Session {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Bool)]
    mine: bool,
}

#[derive(QueryableByName)]
struct Said {
    #[diesel(sql_type = Nullable<Text>)]
    text: Option<String>,
}

/// How often what a waiting migrator queues behind is read again.
const BLOCKERS_EVERY: Duration = Duration::from_millis(500);

/// Samples the watched tables' locks cheaply: each sample reads `pg_locks`
/// alone (a fifth of a millisecond), and asks `pg_stat_activity` (the
/// costly view: every session's status) only for what changed: which
/// sessions are migrators (asked once per new session), the migrator's
/// statement (when its lock on a table changes), whom it queues behind
/// (when it starts to wait, then twice a second). Sampling every 10 ms with
/// the view joined in cost 1.1 ms a sample, a tenth of a core.
struct Sampler {
    tables: Vec<String>,
    /// The watched tables' oids, and their names.
    oids: Vec<(i64, String)>,
    /// Whether each session seen is a migrator.
    migrators: HashMap<i32, bool>,
    /// Per table: the migrator's strongest lock last seen, its statement.
    said: HashMap<String, (Option<LockMode>, Option<String>)>,
    /// Per table: whom the migrator queues behind, and when that was read.
    blockers: HashMap<String, (Instant, Option<String>)>,
}

impl Sampler {
    fn new(conn: &mut PgConnection, tables: &[&str]) -> QueryResult<Self> {
        let mut sampler = Sampler {
            tables: tables.iter().map(|t| (*t).to_owned()).collect(),
            oids: Vec::new(),
            migrators: HashMap::new(),
            said: HashMap::new(),
            blockers: HashMap::new(),
        };
        sampler.resolve(conn)?;
        Ok(sampler)
    }

    /// The watched tables' oids (a table rewritten keeps its oid).
    fn resolve(&mut self, conn: &mut PgConnection) -> QueryResult<()> {
        self.oids = diesel::sql_query(
            "SELECT oid::int8 AS oid, relname::text AS name FROM pg_class
             WHERE relname = ANY($1) AND relkind IN ('r', 'p')",
        )
        .bind::<Array<Text>, _>(&self.tables)
        .load::<Oid>(conn)?
        .into_iter()
        .map(|o| (o.oid, o.name))
        .collect();
        Ok(())
    }

    /// Whether each session in `pids` is a migrator, asking only of the new.
    fn learn(&mut self, conn: &mut PgConnection, pids: &[i32]) -> QueryResult<()> {
        let new: Vec<i32> = pids
            .iter()
            .copied()
            .filter(|p| !self.migrators.contains_key(p))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        for session in diesel::sql_query(
            "SELECT pid, coalesce(application_name = $1, false) AS mine FROM pg_stat_activity WHERE pid = ANY($2)",
        )
        .bind::<Text, _>(MIGRATOR)
        .bind::<Array<Integer>, _>(&new)
        .load::<Session>(conn)?
        {
            self.migrators.insert(session.pid, session.mine);
        }
        Ok(())
    }

    fn text(conn: &mut PgConnection, sql: &str, pid: i32) -> QueryResult<Option<String>> {
        diesel::sql_query(sql)
            .bind::<Integer, _>(pid)
            .get_result::<Said>(conn)
            .optional()
            .map(|s| s.and_then(|s| s.text))
    }

    /// One reading of every watched table.
    fn sample(&mut self, conn: &mut PgConnection, t_ms: f64) -> QueryResult<Vec<LockSample>> {
        let oids: Vec<i64> = self.oids.iter().map(|(o, _)| *o).collect();
        let rows = diesel::sql_query(
            "SELECT l.relation::int8 AS relation, l.mode::text AS mode, l.granted, l.pid
             FROM pg_locks l
             WHERE l.locktype = 'relation' AND l.relation = ANY($1::int8[]::oid[])
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.pid <> pg_backend_pid()",
        )
        .bind::<Array<BigInt>, _>(&oids)
        .load::<Held>(conn)?;
        let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
        self.learn(conn, &pids)?;
        let mut samples = Vec::new();
        for (oid, table) in self.oids.clone() {
            let on_table: Vec<&Held> = rows.iter().filter(|r| r.relation == oid).collect();
            let mine = |r: &&&Held| self.migrators.get(&r.pid).copied().unwrap_or(false);
            let strongest = on_table
                .iter()
                .filter(mine)
                .filter(|r| r.granted)
                .max_by_key(|r| LockMode::parse(&r.mode));
            let held = strongest.and_then(|r| LockMode::parse(&r.mode));
            let waiter = on_table.iter().filter(mine).find(|r| !r.granted);
            let waiting = waiter.and_then(|r| LockMode::parse(&r.mode));
            let waiters = on_table
                .iter()
                .filter(|r| !r.granted)
                .filter(|r| !mine(r))
                .count() as i64;
            let statement = self.statement(conn, &table, (held, strongest.map(|r| r.pid)))?;
            let blocked_by = self.blocked_by(conn, &table, waiter.map(|r| r.pid))?;
            samples.push(LockSample {
                t_ms,
                table,
                held,
                waiting,
                blocked_by,
                waiters,
                statement,
            });
        }
        Ok(samples)
    }

    /// The migrator's statement, read again when its lock on the table changes.
    fn statement(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        (held, pid): (Option<LockMode>, Option<i32>),
    ) -> QueryResult<Option<String>> {
        if let Some((seen, statement)) = self.said.get(table)
            && *seen == held
        {
            return Ok(statement.clone());
        }
        let statement = match pid {
            Some(pid) => Self::text(
                conn,
                "SELECT left(query, 300) AS text FROM pg_stat_activity WHERE pid = $1",
                pid,
            )?,
            None => None,
        };
        self.said
            .insert(table.to_owned(), (held, statement.clone()));
        Ok(statement)
    }

    /// Whom the waiting migrator queues behind, read when it starts to wait
    /// and twice a second while it does.
    fn blocked_by(
        &mut self,
        conn: &mut PgConnection,
        table: &str,
        waiting: Option<i32>,
    ) -> QueryResult<Option<String>> {
        let Some(pid) = waiting else {
            self.blockers.remove(table);
            return Ok(None);
        };
        if let Some((at, blockers)) = self.blockers.get(table)
            && at.elapsed() < BLOCKERS_EVERY
        {
            return Ok(blockers.clone());
        }
        let blockers = Self::text(
            conn,
            "SELECT string_agg(coalesce(b.backend_type, 'session') || ' (pid ' || b.pid || '): '
                               || left(b.query, 120), '; ') AS text
             FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids($1))",
            pid,
        )?;
        self.blockers
            .insert(table.to_owned(), (Instant::now(), blockers.clone()));
        Ok(blockers)
    }
}

/// The monitor, sampling in the background.
pub struct LockMonitor {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<LockSample>>,
}

impl LockMonitor {
    /// Connects (failing now if it cannot) and samples every `interval`,
    /// timing samples from `t0`.
    pub fn start(
        database_url: &str,
        tables: &[&str],
        interval: Duration,
        t0: Instant,
    ) -> Result<Self, DbError> {
        let mut conn = db::connect(database_url)?;
        let mut sampler = Sampler::new(&mut conn, tables)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stopping.load(Ordering::Relaxed) {
                let started = Instant::now();
                let t_ms = started.duration_since(t0).as_secs_f64() * 1000.0;
                match sampler.sample(&mut conn, t_ms) {
                    Ok(mut batch) => samples.append(&mut batch),
                    Err(error) => tracing::warn!(%error, "lock sample failed"),
                }
                if let Some(rest) = interval.checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
            samples
        });
        Ok(LockMonitor { stop, handle })
    }

    /// Stops sampling and returns every sample.
    pub fn finish(self) -> Vec<LockSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// What the monitor saw of one table during a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockSummary {
    pub table: String,
    pub strongest: Option<LockMode>,
    /// The longest the strongest lock was seen held without a break, to
    /// within one sampling interval (two brief locks of one step are two
    /// holds, not one long one).
    pub held_ms: f64,
    /// The longest the migration was seen waiting for a lock on the table
    /// without a break: its lock-queue time, during which everyone behind it
    /// waits too. A safe step that times out and retries waits at most its
    /// lock_timeout at a time.
    pub waited_ms: f64,
    /// Who the migration queued behind, as first seen.
    pub blocked_by: Option<String>,
    /// The most sessions seen waiting for a lock on the table at once.
    pub max_waiters: i64,
    pub statement: Option<String>,
}

/// Summarizes the samples of `table` taken in `[from_ms, to_ms]`.
pub fn summarize(
    samples: &[LockSample],
    table: &str,
    from_ms: f64,
    to_ms: f64,
    interval_ms: f64,
) -> LockSummary {
    let window: Vec<&LockSample> = samples
        .iter()
        .filter(|s| s.table == table && s.t_ms >= from_ms && s.t_ms <= to_ms)
        .collect();
    let strongest = window.iter().filter_map(|s| s.held).max();
    let held_ms = longest_run(&window, interval_ms, |s| {
        s.held.is_some() && s.held == strongest
    });
    let waited_ms = longest_run(&window, interval_ms, |s| s.waiting.is_some());
    LockSummary {
        table: table.to_owned(),
        strongest,
        held_ms,
        waited_ms,
        blocked_by: window.iter().find_map(|s| s.blocked_by.clone()),
        max_waiters: window.iter().map(|s| s.waiters).max().unwrap_or(0),
        statement: window
            .iter()
            .find(|s| s.held.is_some() && s.held == strongest)
            .and_then(|s| s.statement.clone()),
    }
}

#[derive(QueryableByName)]
struct FileNode {
    #[diesel(sql_type = Text)]
    rel: String,
    #[diesel(sql_type = BigInt)]
    node: i64,
}

/// The longest run of consecutive samples for which `holds` is true, from
/// its first sample to its last plus one interval.
fn longest_run(
    window: &[&LockSample],
    interval_ms: f64,
    holds: impl Fn(&LockSample) -> bool,
) -> f64 {
    let (mut longest, mut start) = (0.0_f64, None);
    for sample in window {
        match (holds(sample), start) {
            (true, None) => {
                start = Some(sample.t_ms);
                longest = longest.max(interval_ms);
            }
            (true, Some(first)) => longest = longest.max(sample.t_ms - first + interval_ms),
            (false, _) => start = None,
        }
    }
    longest
}

/// Each table's `relfilenode`: a change means the table was rewritten.
pub fn relfilenodes(conn: &mut PgConnection, tables: &[&str]) -> QueryResult<HashMap<String, i64>> {
    let tables: Vec<String> = tables.iter().map(|t| (*t).to_owned()).collect();
    Ok(diesel::sql_query("SELECT relname::text AS rel, relfilenode::bigint AS node FROM pg_class WHERE relname = ANY($1) AND relkind = 'r'")
        .bind::<Array<Text>, _>(tables)
        .load::<FileNode>(conn)?
        .into_iter()
        .map(|f| (f.rel, f.node))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_order_from_weakest_to_strongest() {
        assert_eq!(
            LockMode::parse("AccessExclusiveLock"),
            Some(LockMode::AccessExclusive)
        );
        assert!(LockMode::AccessExclusive > LockMode::ShareUpdateExclusive);
        assert!(LockMode::ShareUpdateExclusive > LockMode::RowExclusive);
        assert!(!LockMode::ShareUpdateExclusive.blocks_writes());
        assert!(LockMode::Share.blocks_writes() && !LockMode::Share.blocks_reads());
        assert_eq!(LockMode::parse("SIReadLock"), None);
    }

    #[test]
    fn the_strongest_lock_is_timed_from_first_to_last_sighting() {
        let at = |t_ms: f64, held: Option<LockMode>, waiters: i64| LockSample {
            t_ms,
            table: "t".to_owned(),
            held,
            waiting: None,
            blocked_by: None,
            waiters,
            statement: held.map(|m| format!("{m:?}")),
        };
        let samples = [
            at(0.0, None, 0),
            at(10.0, Some(LockMode::RowExclusive), 0),
            at(20.0, Some(LockMode::AccessExclusive), 3),
            at(30.0, Some(LockMode::AccessExclusive), 5),
            at(40.0, None, 0),
        ];
        let s = summarize(&samples, "t", 0.0, 40.0, 10.0);
        assert_eq!(s.strongest, Some(LockMode::AccessExclusive));
        assert_eq!(s.held_ms, 20.0);
        assert_eq!(s.max_waiters, 5);
        assert_eq!(summarize(&samples, "t", 35.0, 40.0, 10.0).strongest, None);
        // two brief holds are not one long one
        let brief = [
            at(0.0, Some(LockMode::AccessExclusive), 0),
            at(10.0, Some(LockMode::ShareUpdateExclusive), 0),
            at(20.0, Some(LockMode::ShareUpdateExclusive), 0),
            at(30.0, Some(LockMode::AccessExclusive), 0),
        ];
        assert_eq!(summarize(&brief, "t", 0.0, 40.0, 10.0).held_ms, 10.0);
    }
}
