//! Limits a backfill keeps to while it runs, checked between batches.
//!
//! Three limits, each optional, each checked before every batch; while one
//! is exceeded the backfill pauses, its batches halve, and it says which
//! limit and for how long; when all are met its batches grow back:
//!
//! - **replica lag** (`--max-replica-lag`): every row a batch updates is WAL
//!   each standby must replay; a backfill that outruns replay leaves the
//!   replicas behind, and reads served from them go stale. The lag is read
//!   where it is known: on the primary, `pg_stat_replication` for every
//!   standby it streams to (`replay_lag`); for the standby REPLICA_URL
//!   names, if any, how long ago the primary wrote the first WAL it has not
//!   replayed ([`WalClock`]: a standby whose replay is paused or stuck shows
//!   it there, where the primary's `replay_lag` stops moving).
//! - **sessions blocked by the backfill** (`--max-blocked-sessions`): a batch
//!   holds the row locks of every row it updates until it commits, and a
//!   request writing one of them waits that long. Those waits end when the
//!   batch commits, so they cannot be seen between batches: a watcher thread
//!   with its own connection samples `pg_blocking_pids` all along, and
//!   before the next batch the backfill asks it how many sessions waited on
//!   it at once and for how long. Over the limit, the batches halve (the
//!   wait a batch can cause is its duration) and the backfill gives the
//!   writers back as long as the longest of them waited.
//! - **a health check** (`--throttle-url`, `--max-latency`), the way gh-ost
//!   throttles on an HTTP check: the URL is fetched before each batch, and
//!   an error status, no answer, or an answer slower than the limit pauses
//!   the backfill until it answers in time again.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Integer};

use crate::db::{self, DbError};
use crate::timing;

/// What can stop a budget from being kept: the database, the output, or
/// the watcher of the sessions a batch blocks.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("watching the sessions the backfill blocks: {0}")]
    Watcher(String),
}

/// The limits a backfill keeps to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// The replicas' replay lag at most.
    pub max_replica_lag: Option<Duration>,
    /// A standby to ask directly (REPLICA_URL).
    pub replica_url: Option<&'static str>,
    /// Sessions waiting on the backfill's locks at once, at most.
    pub max_blocked: Option<u32>,
    /// The primary, for the blocked-sessions watcher's own connection.
    pub database_url: Option<&'static str>,
    /// A URL that must answer, and in time.
    pub health: Option<HealthCheck>,
}

/// `--throttle-url` and `--max-latency`.
#[derive(Debug, Clone, Copy)]
pub struct HealthCheck {
    pub url: &'static str,
    /// Slower answers than this count as failing (none: only errors do).
    pub max_latency: Option<Duration>,
}

impl Budget {
    /// Whether any limit is set.
    pub fn is_set(&self) -> bool {
        self.max_replica_lag.is_some() || self.max_blocked.is_some() || self.health.is_some()
    }
}

/// The limits as given, before a run's URLs are known (the demo's and the
/// bench's budgeted backfill).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_replica_lag: Option<Duration>,
    pub max_blocked: Option<u32>,
    /// The health check's URL (none: the lab server's read endpoint).
    pub throttle_url: Option<&'static str>,
    pub max_latency: Option<Duration>,
}

impl Limits {
    /// The budget on this run's database, standby and server.
    pub fn on(self, databases: crate::db::Databases<'_>, own_health: &str) -> Budget {
        let (database_url, replica_url) = (databases.primary, databases.replica);
        Budget {
            max_replica_lag: self.max_replica_lag,
            replica_url: replica_url.map(kept),
            max_blocked: self.max_blocked,
            database_url: Some(kept(database_url)),
            health: Some(HealthCheck {
                url: self.throttle_url.unwrap_or_else(|| kept(own_health)),
                max_latency: self.max_latency,
            }),
        }
    }

    /// The limits in a few words, for a step's name.
    pub fn words(&self) -> String {
        let mut words = Vec::new();
        if let Some(lag) = self.max_replica_lag {
            words.push(format!("replica lag {}s", lag.as_secs_f64()));
        }
        if let Some(n) = self.max_blocked {
            words.push(format!("{n} blocked"));
        }
        words.push(match (self.throttle_url, self.max_latency) {
            (None, Some(latency)) => format!("reads {} ms", latency.as_millis()),
            (None, None) => "reads answering".to_owned(),
            (Some(_), Some(latency)) => format!("health {} ms", latency.as_millis()),
            (Some(_), None) => "health answering".to_owned(),
        });
        words.join(", ")
    }
}

/// A setting kept for the whole run: the budget is `Copy`, as the settings
/// that carry it, so its URLs are read once and kept.
pub fn kept(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

/// How far behind the standbys are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    pub seconds: f64,
    /// WAL the primary has written that a standby has not replayed.
    pub bytes: i64,
    /// Standbys the primary streams to.
    pub standbys: i64,
    /// The primary's WAL position when it said so, in bytes.
    pub written: i64,
}

#[derive(QueryableByName)]
struct FromPrimary {
    #[diesel(sql_type = BigInt)]
    standbys: i64,
    #[diesel(sql_type = BigInt)]
    written: i64,
    #[diesel(sql_type = Double)]
    seconds: f64,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

/// What the primary says of its standbys. A standby that has replayed
/// everything is not behind, whatever its `replay_lag` says: that keeps the
/// last figure measured for a while after the standby caught up (measured:
/// 27.8 s shown for a standby already level, which held a backfill 8.6 s).
pub fn from_primary(primary: &mut PgConnection) -> QueryResult<Lag> {
    let row = diesel::sql_query(
        "SELECT count(*) AS standbys,
                pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS written,
                coalesce(max(CASE WHEN replay_lsn >= pg_current_wal_lsn() THEN 0
                                  ELSE extract(epoch FROM replay_lag) END), 0)::float8 AS seconds,
                coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8 AS bytes
         FROM pg_stat_replication",
    )
    .get_result::<FromPrimary>(primary)?;
    Ok(Lag {
        seconds: row.seconds,
        bytes: row.bytes,
        standbys: row.standbys,
        written: row.written,
    })
}

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

/// How far a standby has replayed, in bytes.
pub fn replayed(replica: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query(
        "SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0'), 0)::int8 AS lsn",
    )
    .get_result::<Position>(replica)
    .map(|p| p.lsn)
}

/// When the primary's WAL reached each position it was seen at: a standby
/// is behind by how long ago the primary wrote the first WAL it has not
/// replayed. Unlike the standby's own "time since the last commit it
/// replayed", this does not grow while the primary writes WAL without
/// committing (a long scan pruning pages); unlike the primary's
/// `replay_lag`, it keeps growing while replay is stuck (paused, or waiting
/// for a standby query in conflict with it).
#[derive(Debug, Default)]
pub struct WalClock {
    seen: std::collections::VecDeque<(Instant, i64)>,
}

impl WalClock {
    /// The primary's WAL was at `lsn` at `at`.
    pub fn record(&mut self, at: Instant, lsn: i64) {
        if self.seen.back().is_none_or(|&(_, last)| lsn > last) {
            self.seen.push_back((at, lsn));
        }
    }

    /// How far behind a standby that has replayed up to `replayed` is at
    /// `now`: since the first position seen past it (a lower bound, short by
    /// at most the time between two records).
    pub fn behind(&mut self, now: Instant, replayed: i64) -> Duration {
        // positions the standby has passed are needed no more
        while self.seen.front().is_some_and(|&(_, lsn)| lsn <= replayed) {
            self.seen.pop_front();
        }
        self.seen
            .front()
            .map_or(Duration::ZERO, |&(at, _)| now.saturating_duration_since(at))
    }
}

/// Which limit a pause was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    ReplicaLag,
    Blocked,
    Health,
}

/// Time spent paused for one limit, and how many pauses.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Paused {
    pub time: Duration,
    pub pauses: u32,
}

/// The replica-lag limit and what it saw.
struct LagLimit {
    max: Duration,
    replica: Option<(PgConnection, WalClock)>,
    peak: Lag,
    said_no_standby: bool,
    paused: Paused,
}

/// Sessions waiting on the backfill, as the watcher saw them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Blocked {
    /// The most waiting at once.
    pub sessions: u32,
    /// The longest any of them had waited when seen.
    pub longest: Duration,
}

impl Blocked {
    fn widen(&mut self, other: Blocked) {
        self.sessions = self.sessions.max(other.sessions);
        self.longest = self.longest.max(other.longest);
    }
}

#[derive(Default)]
struct Seen {
    /// Since the backfill last asked.
    recent: Blocked,
    failed: Option<String>,
}

/// A thread sampling, on its own connection, the sessions waiting on locks
/// the backfill's session holds.
struct Watcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    thread: Option<JoinHandle<()>>,
}

/// How often the watcher looks: a wait shorter than this can go unseen.
const WATCH_EVERY: Duration = Duration::from_millis(20);

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = Integer)]
    sessions: i32,
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// The first `server_version_num` whose `pg_locks` says when a wait
/// began (`waitstart`).
const WAITSTART_SINCE: u32 = 140_000;

/// The query for the sessions waiting on a lock `$1` holds (or is ahead
/// of them in the queue for), and the longest wait so far. Before
/// PostgreSQL 14 no view says when a wait began: there the longest is
/// since the waiting statement began, which is at least as long.
fn waiting_sql(server_version_num: u32) -> String {
    let since = if server_version_num >= WAITSTART_SINCE {
        "l.waitstart"
    } else {
        "a.query_start"
    };
    format!(
        "SELECT count(DISTINCT l.pid)::int4 AS sessions,
                coalesce(max(extract(epoch FROM clock_timestamp() - {since})), 0)::float8 AS seconds
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE NOT l.granted AND $1 = ANY(pg_blocking_pids(l.pid))"
    )
}

/// What [`waiting_sql`] finds for `pid`.
fn waiting_on(conn: &mut PgConnection, sql: &str, pid: i32) -> QueryResult<Blocked> {
    let row = diesel::sql_query(sql)
        .bind::<Integer, _>(pid)
        .get_result::<Waiting>(conn)?;
    Ok(Blocked {
        sessions: u32::try_from(row.sessions).unwrap_or(0),
        longest: Duration::from_secs_f64(row.seconds.max(0.0)),
    })
}

impl Watcher {
    fn start(database_url: &str, pid: i32) -> Result<Self, DbError> {
        let mut conn = db::connect(database_url)?;
        let sql = waiting_sql(db::server_version_num(&mut conn)?);
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sample = waiting_on(&mut conn, &sql, pid);
                    let Ok(mut so_far) = seen.lock() else { return };
                    match sample {
                        Ok(blocked) => so_far.recent.widen(blocked),
                        Err(e) => {
                            so_far.failed = Some(e.to_string());
                            return;
                        }
                    }
                    drop(so_far);
                    std::thread::sleep(WATCH_EVERY);
                }
            })
        };
        Ok(Watcher {
            stop,
            seen,
            thread: Some(thread),
        })
    }

    /// What it saw since the last time it was asked.
    fn take(&self) -> Result<Blocked, BudgetError> {
        let mut seen = self
            .seen
            .lock()
            .map_err(|_| BudgetError::Watcher("the watcher thread panicked".to_owned()))?;
        if let Some(failed) = seen.failed.take() {
            return Err(BudgetError::Watcher(failed));
        }
        Ok(std::mem::take(&mut seen.recent))
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The blocked-sessions limit and what it saw.
struct BlockedLimit {
    max: u32,
    watcher: Watcher,
    peak: Blocked,
    paused: Paused,
}

/// The health check and what it saw.
struct HealthLimit {
    check: HealthCheck,
    agent: ureq::Agent,
    peak: Duration,
    failures: u32,
    paused: Paused,
}

/// A health check gets at most this long to answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// How a health check went.
enum Health {
    Good(Duration),
    Slow(Duration),
    Failed(String),
}

impl HealthLimit {
    fn check(&mut self) -> Health {
        let started = Instant::now();
        let answer = self.agent.get(self.check.url).call();
        let took = started.elapsed();
        self.peak = self.peak.max(took);
        match answer {
            Err(ureq::Error::Status(status, _)) => {
                self.failures += 1;
                Health::Failed(format!("answered {status}"))
            }
            Err(ureq::Error::Transport(t)) => {
                self.failures += 1;
                Health::Failed(match t.message() {
                    Some(message) => format!("{}: {message}", t.kind()),
                    None => t.kind().to_string(),
                })
            }
            Ok(_) if self.check.max_latency.is_some_and(|max| took > max) => Health::Slow(took),
            Ok(_) => Health::Good(took),
        }
    }
}

/// Watches the limits for one walk, and keeps its tally.
pub struct Watch {
    lag: Option<LagLimit>,
    blocked: Option<BlockedLimit>,
    health: Option<HealthLimit>,
}

/// What [`Watch::wait`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// Every limit was met.
    No,
    /// It paused until they were.
    Paused,
    /// Ctrl-C came while it waited.
    Interrupted,
}

/// How often a paused backfill asks again.
const POLL: Duration = Duration::from_millis(100);

/// The longest a blocked-sessions pause lasts: the writers got through long
/// before, and the next batches are already smaller.
const MAX_BLOCKED_PAUSE: Duration = Duration::from_secs(1);

impl Watch {
    /// A watch for `budget`, if it sets a limit; `conn` is the backfill's
    /// own session (the one whose locks are watched).
    pub fn new(budget: Budget, conn: &mut PgConnection) -> Result<Option<Watch>, BudgetError> {
        if !budget.is_set() {
            return Ok(None);
        }
        let lag = match budget.max_replica_lag {
            Some(max) => Some(LagLimit {
                max,
                replica: budget
                    .replica_url
                    .map(|url| db::connect(url).map(|c| (c, WalClock::default())))
                    .transpose()?,
                peak: Lag::default(),
                said_no_standby: false,
                paused: Paused::default(),
            }),
            None => None,
        };
        let blocked = match (budget.max_blocked, budget.database_url) {
            (Some(max), Some(url)) => Some(BlockedLimit {
                max,
                watcher: Watcher::start(url, crate::interrupt::backend_pid(conn)?)?,
                peak: Blocked::default(),
                paused: Paused::default(),
            }),
            (Some(_), None) => {
                return Err(BudgetError::Watcher(
                    "--max-blocked-sessions needs the database's URL to watch from".to_owned(),
                ));
            }
            (None, _) => None,
        };
        let health = budget.health.map(|check| HealthLimit {
            check,
            agent: ureq::AgentBuilder::new().timeout(HEALTH_TIMEOUT).build(),
            peak: Duration::ZERO,
            failures: 0,
            paused: Paused::default(),
        });
        Ok(Some(Watch {
            lag,
            blocked,
            health,
        }))
    }

    /// Returns once every limit is met, pausing (and saying why) until then.
    /// The limits are checked in turn: sessions the last batch blocked, the
    /// replicas' lag, the health check.
    pub fn wait(
        &mut self,
        primary: &mut PgConnection,
        out: &mut dyn Write,
    ) -> Result<Waited, BudgetError> {
        let mut waited = Waited::No;
        for outcome in [
            self.wait_for_blocked(out)?,
            self.wait_for_lag(primary, out)?,
            self.wait_for_health(out)?,
        ] {
            match outcome {
                Waited::Interrupted => return Ok(Waited::Interrupted),
                Waited::Paused => waited = Waited::Paused,
                Waited::No => {}
            }
        }
        Ok(waited)
    }

    fn wait_for_blocked(&mut self, out: &mut dyn Write) -> Result<Waited, BudgetError> {
        let Some(limit) = self.blocked.as_mut() else {
            return Ok(Waited::No);
        };
        let last = limit.watcher.take()?;
        limit.peak.widen(last);
        if last.sessions <= limit.max {
            return Ok(Waited::No);
        }
        let pause = last.longest.min(MAX_BLOCKED_PAUSE);
        say(
            out,
            &format!(
                "pausing {}: {} session(s) waited on the last batch's locks (the longest {}), over --max-blocked-sessions {}; batches halve",
                timing::seconds(pause),
                last.sessions,
                timing::seconds(last.longest),
                limit.max
            ),
        )?;
        std::thread::sleep(pause);
        limit.paused.time += pause;
        limit.paused.pauses += 1;
        Ok(Waited::Paused)
    }

    fn wait_for_lag(
        &mut self,
        primary: &mut PgConnection,
        out: &mut dyn Write,
    ) -> Result<Waited, BudgetError> {
        let Some(limit) = self.lag.as_mut() else {
            return Ok(Waited::No);
        };
        let max = limit.max.as_secs_f64();
        let lag = limit.lag(primary)?;
        if lag.standbys == 0 && limit.replica.is_none() && !limit.said_no_standby {
            limit.said_no_standby = true;
            say(
                out,
                "--max-replica-lag: the primary streams to no standby and REPLICA_URL is not set: no lag to keep under",
            )?;
        }
        if lag.seconds <= max {
            return Ok(Waited::No);
        }
        say(
            out,
            &format!(
                "pausing: replica lag {:.1}s ({}) is over --max-replica-lag {max:.1}s; batches halve",
                lag.seconds,
                timing::mib(lag.bytes),
            ),
        )?;
        let mut paused = limit.paused;
        let outcome = pause_until(&mut paused, out, || {
            let lag = limit.lag(primary)?;
            Ok((lag.seconds <= max).then(|| format!("replica lag {:.1}s", lag.seconds)))
        })?;
        limit.paused = paused;
        Ok(outcome)
    }

    fn wait_for_health(&mut self, out: &mut dyn Write) -> Result<Waited, BudgetError> {
        let Some(limit) = self.health.as_mut() else {
            return Ok(Waited::No);
        };
        let why = match limit.check() {
            Health::Good(_) => return Ok(Waited::No),
            Health::Slow(took) => format!(
                "answered in {}, over --max-latency {}",
                timing::seconds(took),
                timing::seconds(limit.check.max_latency.unwrap_or_default())
            ),
            Health::Failed(error) => format!("failed: {error}"),
        };
        say(
            out,
            &format!(
                "pausing: the health check {} {why}; batches halve",
                limit.check.url
            ),
        )?;
        let mut paused = limit.paused;
        let outcome = pause_until(&mut paused, out, || {
            Ok(match limit.check() {
                Health::Good(took) => Some(format!(
                    "the health check answered in {}",
                    timing::seconds(took)
                )),
                Health::Slow(_) | Health::Failed(_) => None,
            })
        })?;
        limit.paused = paused;
        Ok(outcome)
    }

    /// Time paused for each limit set.
    pub fn paused(&self) -> Vec<(Limit, Paused)> {
        let lag = self.lag.as_ref().map(|l| (Limit::ReplicaLag, l.paused));
        let blocked = self.blocked.as_ref().map(|b| (Limit::Blocked, b.paused));
        let health = self.health.as_ref().map(|h| (Limit::Health, h.paused));
        [lag, blocked, health].into_iter().flatten().collect()
    }

    /// Time paused over every limit.
    pub fn total_paused(&self) -> Paused {
        self.paused()
            .iter()
            .fold(Paused::default(), |sum, (_, p)| Paused {
                time: sum.time + p.time,
                pauses: sum.pauses + p.pauses,
            })
    }

    /// The lines that sum it up at the end of a walk: one per limit (its
    /// peak, the time paused for it), then the rate.
    pub fn summary(&self, rows: u64, took: Duration) -> Vec<String> {
        let paused = |p: Paused| {
            format!(
                "paused {} in {} pause(s)",
                timing::seconds(p.time),
                p.pauses
            )
        };
        let mut lines = Vec::new();
        if let Some(l) = &self.lag {
            lines.push(format!(
                "Replica lag: peak {:.1}s ({} behind) with --max-replica-lag {:.1}s; {}",
                l.peak.seconds,
                timing::mib(l.peak.bytes),
                l.max.as_secs_f64(),
                paused(l.paused)
            ));
        }
        if let Some(b) = &self.blocked {
            lines.push(format!(
                "Sessions blocked by the backfill: peak {} at once, the longest wait {}, with --max-blocked-sessions {}; {}",
                b.peak.sessions,
                timing::seconds(b.peak.longest),
                b.max,
                paused(b.paused)
            ));
        }
        if let Some(h) = &self.health {
            let limit = h
                .check
                .max_latency
                .map(|m| format!(" with --max-latency {}", timing::seconds(m)))
                .unwrap_or_default();
            lines.push(format!(
                "Health check {}: slowest answer {}, {} failed{limit}; {}",
                h.check.url,
                timing::seconds(h.peak),
                h.failures,
                paused(h.paused)
            ));
        }
        lines.push(format!(
            "Budget kept: {} rows/s overall, {} of {} paused",
            indicatif::HumanCount((rows as f64 / took.as_secs_f64().max(1e-9)) as u64),
            timing::seconds(self.total_paused().time),
            timing::seconds(took)
        ));
        lines
            .into_iter()
            .map(|line| format!("[{}] {line}", timing::stamp_clock()))
            .collect()
    }
}

impl LagLimit {
    /// The lag now: the worst of what the primary says and what the
    /// standby's replay position says.
    fn lag(&mut self, primary: &mut PgConnection) -> QueryResult<Lag> {
        let mut lag = from_primary(primary)?;
        if let Some((replica, clock)) = self.replica.as_mut() {
            clock.record(Instant::now(), lag.written);
            let behind = clock.behind(Instant::now(), replayed(replica)?);
            lag.seconds = lag.seconds.max(behind.as_secs_f64());
        }
        self.peak.seconds = self.peak.seconds.max(lag.seconds);
        self.peak.bytes = self.peak.bytes.max(lag.bytes);
        self.peak.standbys = self.peak.standbys.max(lag.standbys);
        Ok(lag)
    }
}

/// Polls `met` until it holds (it says how things stand then), counting
/// the time as one pause and saying how long it was; stops early on Ctrl-C.
fn pause_until(
    paused: &mut Paused,
    out: &mut dyn Write,
    mut met: impl FnMut() -> Result<Option<String>, BudgetError>,
) -> Result<Waited, BudgetError> {
    let started = Instant::now();
    paused.pauses += 1;
    let outcome = loop {
        if crate::interrupt::requested() {
            break Waited::Interrupted;
        }
        std::thread::sleep(POLL);
        if let Some(now) = met()? {
            say(
                out,
                &format!(
                    "resumed after {} paused: {now}",
                    timing::seconds(started.elapsed())
                ),
            )?;
            break Waited::Paused;
        }
    };
    paused.time += started.elapsed();
    Ok(outcome)
}

fn say(out: &mut dyn Write, line: &str) -> std::io::Result<()> {
    writeln!(out, "[{}] {line}", timing::stamp_clock())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standby_is_behind_since_the_first_wal_it_has_not_replayed() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut clock = WalClock::default();
        clock.record(at(0), 100);
        clock.record(at(200), 300);
        // a position seen again is not news
        clock.record(at(300), 300);
        clock.record(at(400), 500);
        assert_eq!(clock.behind(at(500), 500), Duration::ZERO, "caught up");
        clock.record(at(600), 700);
        // replayed up to 350: the WAL past it was written by 600 ms at the latest
        assert_eq!(clock.behind(at(1_000), 350), Duration::from_millis(400));
        // replay stuck there: the lag grows with the clock
        assert_eq!(clock.behind(at(3_000), 350), Duration::from_millis(2_400));
    }
}
