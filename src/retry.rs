//! Short lock timeouts, retried with backoff: how safe DDL behaves when
//! production is not quiet.
//!
//! A statement that needs ACCESS EXCLUSIVE waits in the lock queue behind any
//! transaction using the table, and every query that arrives after it waits
//! behind *it*: a 2 ms `ADD COLUMN` becomes a long outage. With a short
//! `lock_timeout` the statement gives up instead, its transaction is rolled
//! back, traffic flows again, and it retries after a backoff with jitter. Each
//! time, the line says who held the table (from `pg_locks` and
//! `pg_stat_activity`), so the user can act on it.

use std::fmt::Display;
use std::io::{self, Write};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Double, Integer, Nullable, Text};
use rand::Rng;

use crate::pg_error::{Classify, Condition};
use crate::timing;

/// How safe steps wait for their locks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LockPolicy {
    /// `lock_timeout` for each attempt.
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; it doubles each time, up to `max_backoff`, with jitter.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for LockPolicy {
    fn default() -> Self {
        LockPolicy {
            timeout: Duration::from_secs(1),
            retries: 10,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl LockPolicy {
    /// `lock_timeout` as PostgreSQL reads it: `1000ms`.
    pub fn setting(&self) -> String {
        format!("{}ms", self.timeout.as_millis().max(1))
    }

    /// The pause before attempt `attempt` (1-based), jittered by up to half.
    pub fn pause(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        base.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

/// How long a safe step waits before PostgreSQL cancels an autovacuum in its
/// way, where the lab may set `deadlock_timeout`.
pub const YIELD_AFTER: Duration = Duration::from_millis(100);

#[derive(QueryableByName)]
struct Millis {
    #[diesel(sql_type = Integer)]
    ms: i32,
}

/// Sets the session's `lock_timeout` for `policy`, and makes sure that
/// PostgreSQL's deadlock check runs before it fires.
///
/// A session that has waited `deadlock_timeout` for a lock held by an
/// ordinary autovacuum has PostgreSQL cancel that autovacuum (not one that
/// prevents wraparound). With `lock_timeout` no longer than
/// `deadlock_timeout` (both 1 s by default) the wait ends before that check,
/// so a safe step retried behind a long autovacuum (minutes on a freshly
/// backfilled 100 M-row table) gives up where it would have got its lock in
/// about a second. So the session's `deadlock_timeout` goes below the
/// `lock_timeout`, and to at most [`YIELD_AFTER`]: every request queues
/// behind the waiting step until the autovacuum yields (at 100 M rows, a
/// 500 ms `deadlock_timeout` was the longest outage of the whole safe path).
/// Where the role may not set it (a superuser-only setting unless granted)
/// and it is not already below the `lock_timeout`, the `lock_timeout` goes
/// above it instead, and one line says so. Returns the `lock_timeout` in
/// force.
pub fn set_lock_timeout(
    conn: &mut PgConnection,
    policy: &LockPolicy,
    out: &mut dyn Write,
) -> Result<LockPolicy, RetryError<diesel::result::Error>> {
    let wanted = policy.timeout.as_millis().max(1);
    let deadlock = diesel::sql_query(
        "SELECT setting::int AS ms FROM pg_settings WHERE name = 'deadlock_timeout'",
    )
    .get_result::<Millis>(conn)
    .map_err(RetryError::Failed)?;
    let deadlock = u128::try_from(deadlock.ms).unwrap_or(0);
    let mut policy = *policy;
    let lowered = (wanted / 2).clamp(1, YIELD_AFTER.as_millis());
    if deadlock > lowered
        && conn
            .batch_execute(&format!("SET deadlock_timeout = '{lowered}ms'"))
            .is_err()
        && deadlock >= wanted
    {
        policy.timeout = Duration::from_millis(u64::try_from(deadlock + 500).unwrap_or(u64::MAX));
        writeln!(
            out,
            "[{}] this role may not lower deadlock_timeout ({deadlock}ms), so lock_timeout goes from {wanted}ms to {} (above it, PostgreSQL can cancel an autovacuum in the way)",
            timing::stamp_clock(),
            policy.setting()
        )?;
    }
    conn.batch_execute(&format!("SET lock_timeout = '{}'", policy.setting()))
        .map_err(RetryError::Failed)?;
    Ok(policy)
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    seconds: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    query: Option<String>,
}

/// The sessions holding a lock on `table`, as one line: `pid 123 (idle in
/// transaction for 9.2 s): SELECT ...`.
pub fn holders(conn: &mut PgConnection, table: &str) -> QueryResult<String> {
    let holders = diesel::sql_query(
        "SELECT DISTINCT a.pid, a.state,
                extract(epoch FROM now() - coalesce(a.xact_start, a.query_start))::float8 AS seconds,
                left(regexp_replace(a.query, '\\s+', ' ', 'g'), 100) AS query
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'relation' AND l.relation = to_regclass($1) AND l.granted
           AND a.pid <> pg_backend_pid()
         ORDER BY seconds DESC NULLS LAST LIMIT 3",
    )
    .bind::<Text, _>(table)
    .load::<Holder>(conn)?;
    if holders.is_empty() {
        return Ok("nobody any more (the holder finished)".to_owned());
    }
    Ok(holders
        .iter()
        .map(|h| {
            format!(
                "pid {} ({} for {:.1} s): {}",
                h.pid,
                h.state.as_deref().unwrap_or("?"),
                h.seconds.unwrap_or(0.0),
                h.query.as_deref().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join("; "))
}

#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    #[error(
        "gave up after {attempts} attempts to lock {table} ({timeout} lock_timeout each); last held by {holders}"
    )]
    GaveUp {
        attempts: u32,
        table: String,
        timeout: String,
        holders: String,
    },
    #[error(transparent)]
    Failed(E),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Runs `attempt` until it does not fail on a lock timeout, pausing between
/// attempts and saying each time who held `table`. The attempt must leave
/// nothing behind when it fails (its transaction rolled back), and send its
/// statements through [`crate::pg_error::execute`] so that a lock timeout is
/// recognized in any server language.
pub fn with_retries<T, E: Display + Classify>(
    conn: &mut PgConnection,
    policy: &LockPolicy,
    table: &str,
    out: &mut dyn Write,
    mut attempt: impl FnMut(&mut PgConnection, &mut dyn Write) -> Result<T, E>,
) -> Result<T, RetryError<E>> {
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt(conn, out) {
            Err(error) if error.condition() == Condition::LockTimeout => {
                let holders = holders(conn, table).unwrap_or_else(|e| format!("(unknown: {e})"));
                if tries > policy.retries {
                    return Err(RetryError::GaveUp {
                        attempts: tries,
                        table: table.to_owned(),
                        timeout: policy.setting(),
                        holders,
                    });
                }
                let pause = policy.pause(tries);
                writeln!(
                    out,
                    "[{}] lock_timeout ({}) on {table}, held by {holders}; retry {}/{} in {}",
                    timing::stamp_clock(),
                    policy.setting(),
                    tries,
                    policy.retries,
                    timing::seconds(pause)
                )?;
                out.flush()?;
                std::thread::sleep(pause);
            }
            Err(error) => return Err(RetryError::Failed(error)),
            Ok(value) => return Ok(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let policy = LockPolicy::default();
        for attempt in 1..=10 {
            let pause = policy.pause(attempt);
            let base = (200.0 * 2f64.powi(attempt as i32 - 1)).min(5000.0);
            assert!(
                pause.as_secs_f64() * 1000.0 >= base * 0.5 - 1e-6
                    && pause.as_secs_f64() * 1000.0 <= base + 1e-6
            );
        }
        assert_eq!(policy.setting(), "1000ms");
    }
}
