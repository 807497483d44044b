//! The demo's view of a hot standby (`manage demo --replica`): how much WAL
//! each step writes on the primary, how far the standby falls behind, and
//! what readers served from the standby see.
//!
//! A sampler thread asks both servers every 50 ms: the primary's WAL
//! position and what it says of its standbys, and how far the standby has
//! replayed (timed by [`crate::budget::WalClock`]). The readers are a second server on the
//! standby's database, probed like the primary's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::budget;
use crate::db::{self, DbError};
use crate::instruments::probe::Summary;

#[derive(QueryableByName)]
struct Locks {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    held: i64,
}

/// One look at both servers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WalSample {
    pub t_ms: f64,
    /// The primary's WAL position, in bytes.
    pub lsn: i64,
    pub lag_seconds: f64,
    pub lag_bytes: i64,
    /// The watched table was ACCESS EXCLUSIVE locked on the standby (by
    /// replay: the only lock the primary's WAL carries to its standbys).
    #[serde(default)]
    pub standby_locked: bool,
}

/// What a step did to the standby and its readers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStep {
    /// WAL the primary wrote from the step's start to the next step's.
    pub wal_bytes: i64,
    /// The furthest behind the standby was seen, in time and in WAL.
    pub lag_seconds: f64,
    pub lag_bytes: i64,
    /// How long the watched table was seen ACCESS EXCLUSIVE locked on the
    /// standby: what its readers waited on.
    #[serde(default)]
    pub locked_ms: f64,
    /// The reads served from the standby meanwhile.
    pub reads: Summary,
}

/// How often the sampler looks.
const EVERY: Duration = Duration::from_millis(50);

/// Samples both servers until finished.
pub struct WalSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<WalSample>>,
}

impl WalSampler {
    /// Samples both servers, and `table`'s locks on the standby.
    pub fn start(
        (primary_url, replica_url): (&str, &str),
        table: &str,
        t0: Instant,
    ) -> Result<Self, DbError> {
        let locked_sql = format!(
            "SELECT count(*)::int8 AS held FROM pg_locks
             WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock' AND granted
               AND relation = (SELECT oid FROM pg_class WHERE relname = '{table}')"
        );
        let mut primary = db::connect(primary_url)?;
        let mut replica = db::connect(replica_url)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let mut clock = budget::WalClock::default();
            while !stopping.load(Ordering::Relaxed) {
                let t_ms = t0.elapsed().as_secs_f64() * 1000.0;
                let looked = (|| -> QueryResult<WalSample> {
                    let now = Instant::now();
                    let lag = budget::from_primary(&mut primary)?;
                    clock.record(now, lag.written);
                    let own = clock.behind(now, budget::replayed(&mut replica)?);
                    let locks = diesel::sql_query(&locked_sql).get_result::<Locks>(&mut replica)?;
                    Ok(WalSample {
                        t_ms,
                        lsn: lag.written,
                        lag_seconds: lag.seconds.max(own.as_secs_f64()),
                        lag_bytes: lag.bytes,
                        standby_locked: locks.held > 0,
                    })
                })();
                // a look that failed (a server busy restarting) is skipped
                if let Ok(sample) = looked {
                    samples.push(sample);
                }
                std::thread::sleep(EVERY);
            }
            samples
        });
        Ok(WalSampler { stop, handle })
    }

    pub fn finish(self) -> Vec<WalSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// The WAL written and the worst lag in `[from, to]`.
pub fn over(samples: &[WalSample], (from, to): (f64, f64)) -> (i64, f64, i64) {
    let at = |t: f64| {
        samples
            .iter()
            .take_while(|s| s.t_ms <= t)
            .last()
            .or(samples.first())
            .map_or(0, |s| s.lsn)
    };
    let within = samples.iter().filter(|s| s.t_ms >= from && s.t_ms <= to);
    let (seconds, bytes) = within.fold((0.0_f64, 0_i64), |(s, b), x| {
        (s.max(x.lag_seconds), b.max(x.lag_bytes))
    });
    ((at(to) - at(from)).max(0), seconds, bytes)
}

/// How long the table was seen locked on the standby in `[from, to]`: the
/// samples that saw it, each standing for the time to the next.
pub fn locked_ms(samples: &[WalSample], (from, to): (f64, f64)) -> f64 {
    samples
        .windows(2)
        .filter(|pair| pair[0].standby_locked && pair[0].t_ms >= from && pair[0].t_ms <= to)
        .map(|pair| pair[1].t_ms - pair[0].t_ms)
        .sum()
}

/// Waits until the standby has replayed everything the primary has written
/// so far (after seeding: the baseline starts level), at most `limit`.
pub fn caught_up(primary_url: &str, replica_url: &str, limit: Duration) -> Result<bool, DbError> {
    let mut primary = db::connect(primary_url)?;
    let mut replica = db::connect(replica_url)?;
    let target = budget::from_primary(&mut primary)?.written;
    let started = Instant::now();
    while started.elapsed() < limit && !crate::interrupt::requested() {
        if budget::replayed(&mut replica)? >= target {
            return Ok(true);
        }
        std::thread::sleep(EVERY);
    }
    Ok(false)
}

/// Connects to the standby's copy of a database the primary just created,
/// waiting (at most `limit`) for the standby to replay its creation.
pub fn connect_when_there(replica_url: &str, limit: Duration) -> Result<(), DbError> {
    let started = Instant::now();
    loop {
        match db::connect(replica_url) {
            Ok(_) => return Ok(()),
            Err(_) if started.elapsed() < limit => std::thread::sleep(EVERY),
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standbys_lock_counts_from_the_first_sample_that_saw_it_to_the_first_that_did_not() {
        let at = |t_ms, standby_locked| WalSample {
            t_ms,
            lsn: 0,
            lag_seconds: 0.0,
            lag_bytes: 0,
            standby_locked,
        };
        let samples = [
            at(0.0, false),
            at(50.0, true),
            at(100.0, true),
            at(160.0, false),
            at(210.0, true),
            at(260.0, false),
        ];
        assert_eq!(locked_ms(&samples, (0.0, 1_000.0)), 160.0);
        assert_eq!(locked_ms(&samples, (0.0, 180.0)), 110.0, "the window's own");
        assert_eq!(locked_ms(&samples[..1], (0.0, 1_000.0)), 0.0);
    }
}
