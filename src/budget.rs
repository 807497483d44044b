//! Limits a backfill keeps to while it runs, checked between batches.
//!
//! Every row a batch updates is WAL each standby must replay; a backfill
//! that outruns replay leaves the replicas behind, and reads served from
//! them go stale. Before each batch the backfill asks how far behind the
//! standbys are, and while one is further than `--max-replica-lag` it
//! pauses (and halves its batches); when all are back under it goes on, its
//! batches growing back. It says when it waits, why, and for how long.
//!
//! The lag is read where it is known: on the primary, `pg_stat_replication`
//! for every standby it streams to (`replay_lag`: how long ago the WAL the
//! standby last replayed was written); on the standby REPLICA_URL names, if
//! any, how long ago the last transaction it replayed committed, while it
//! has received WAL it has not replayed (a standby whose replay is paused or
//! slow shows it there first).

use std::io::Write;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};

use crate::db::{self, DbError};
use crate::timing;

/// The limits a backfill keeps to.
#[derive(Debug, Clone, Copy, Default)]
pub struct Budget {
    /// The replicas' replay lag at most.
    pub max_replica_lag: Option<Duration>,
    /// A standby to ask directly (REPLICA_URL).
    pub replica_url: Option<&'static str>,
}

/// How far behind the standbys are.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lag {
    pub seconds: f64,
    /// WAL the primary has written that a standby has not replayed.
    pub bytes: i64,
    /// Standbys the primary streams to.
    pub standbys: i64,
}

#[derive(QueryableByName)]
struct FromPrimary {
    #[diesel(sql_type = BigInt)]
    standbys: i64,
    #[diesel(sql_type = Double)]
    seconds: f64,
    #[diesel(sql_type = BigInt)]
    bytes: i64,
}

#[derive(QueryableByName)]
struct FromReplica {
    #[diesel(sql_type = Double)]
    seconds: f64,
}

/// What the primary says of its standbys.
pub fn from_primary(primary: &mut PgConnection) -> QueryResult<Lag> {
    let row = diesel::sql_query(
        "SELECT count(*) AS standbys,
                coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 AS seconds,
                coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0)::int8 AS bytes
         FROM pg_stat_replication",
    )
    .get_result::<FromPrimary>(primary)?;
    Ok(Lag {
        seconds: row.seconds,
        bytes: row.bytes,
        standbys: row.standbys,
    })
}

/// What a standby says of itself: behind by how long its last replayed
/// transaction is ago, while it has WAL it has not replayed.
pub fn from_replica(replica: &mut PgConnection) -> QueryResult<f64> {
    diesel::sql_query(
        "SELECT CASE WHEN pg_last_wal_receive_lsn() IS NULL
                       OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0
                     ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                END::float8 AS seconds",
    )
    .get_result::<FromReplica>(replica)
    .map(|r| r.seconds)
}

/// Watches the limits for one backfill, and keeps its tally.
pub struct Watch {
    max_lag: Duration,
    replica: Option<PgConnection>,
    /// The furthest behind a standby was seen.
    pub peak: Lag,
    /// Time spent waiting for the lag to come down, and how many waits.
    pub paused: Duration,
    pub pauses: u32,
    said_no_standby: bool,
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

impl Watch {
    /// A watch for `budget`, if it sets a limit.
    pub fn new(budget: Budget) -> Result<Option<Watch>, DbError> {
        let Some(max_lag) = budget.max_replica_lag else {
            return Ok(None);
        };
        let replica = budget.replica_url.map(db::connect).transpose()?;
        Ok(Some(Watch {
            max_lag,
            replica,
            peak: Lag::default(),
            paused: Duration::ZERO,
            pauses: 0,
            said_no_standby: false,
        }))
    }

    /// The lag now: the worst of what the primary and the standby say.
    pub fn lag(&mut self, primary: &mut PgConnection) -> QueryResult<Lag> {
        let mut lag = from_primary(primary)?;
        if let Some(replica) = self.replica.as_mut() {
            lag.seconds = lag.seconds.max(from_replica(replica)?);
        }
        if lag.seconds > self.peak.seconds {
            self.peak.seconds = lag.seconds;
        }
        self.peak.bytes = self.peak.bytes.max(lag.bytes);
        self.peak.standbys = self.peak.standbys.max(lag.standbys);
        Ok(lag)
    }

    /// Returns once every limit is met, pausing (and saying so) until then.
    pub fn wait(
        &mut self,
        primary: &mut PgConnection,
        out: &mut dyn Write,
    ) -> Result<Waited, crate::backfill::BackfillError> {
        let mut lag = self.lag(primary)?;
        if lag.standbys == 0 && self.replica.is_none() && !self.said_no_standby {
            self.said_no_standby = true;
            writeln!(
                out,
                "[{}] --max-replica-lag: the primary streams to no standby and REPLICA_URL is not set: no lag to keep under",
                timing::stamp_clock()
            )?;
        }
        if lag.seconds <= self.max_lag.as_secs_f64() {
            return Ok(Waited::No);
        }
        let started = Instant::now();
        self.pauses += 1;
        writeln!(
            out,
            "[{}] pausing: replica lag {:.1}s ({}) is over --max-replica-lag {:.1}s; batches halve",
            timing::stamp_clock(),
            lag.seconds,
            timing::mib(lag.bytes),
            self.max_lag.as_secs_f64()
        )?;
        out.flush()?;
        while lag.seconds > self.max_lag.as_secs_f64() {
            if crate::interrupt::requested() {
                self.paused += started.elapsed();
                return Ok(Waited::Interrupted);
            }
            std::thread::sleep(POLL);
            lag = self.lag(primary)?;
        }
        let waited = started.elapsed();
        self.paused += waited;
        writeln!(
            out,
            "[{}] resumed after {} paused: replica lag {:.1}s",
            timing::stamp_clock(),
            timing::seconds(waited),
            lag.seconds
        )?;
        Ok(Waited::Paused)
    }

    /// The line that sums it up at the end of a walk.
    pub fn summary(&self, rows: u64, took: Duration) -> String {
        format!(
            "[{}] Replica lag: peak {:.1}s ({} behind) with --max-replica-lag {:.1}s; paused {} in {} pause(s); {} rows/s overall",
            timing::stamp_clock(),
            self.peak.seconds,
            timing::mib(self.peak.bytes),
            self.max_lag.as_secs_f64(),
            timing::seconds(self.paused),
            self.pauses,
            indicatif::HumanCount((rows as f64 / took.as_secs_f64().max(1e-9)) as u64)
        )
    }
}
