//! One migrator at a time per database.
//!
//! The Docker route runs `manage migrate` in every web container at start,
//! so `docker compose up --scale web=3`, or two deploys that overlap, start
//! several migrators on one database. Like Rails, Flyway and sqlx, the
//! runner takes a session-level PostgreSQL advisory lock for the whole run:
//! a second migrator waits for the first (saying once who holds the lock and
//! since when), then reads the history anew and does what is left, usually
//! nothing. The lock belongs to the session, so a migrator that is killed
//! releases it when its connection closes; advisory locks are per database,
//! so migrators of other databases on the same server never wait.

use std::io::{self, Write};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Double, Integer, Nullable, Text};

use crate::timing;

/// The advisory lock's key: the bytes of `rskymigr`, one fixed number for
/// every `manage` and every version of it, so they all exclude each other.
pub const KEY: i64 = i64::from_be_bytes(*b"rskymigr");

/// Holds the lock until [`MigratorLock::release`] or the session's end.
#[must_use = "the lock is held until released"]
pub struct MigratorLock(());

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    acquired: bool,
}

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Nullable<Text>)]
    application: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    since: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    seconds: Option<f64>,
}

impl MigratorLock {
    /// Takes the lock, waiting for another migrator if one holds it (one
    /// line to `out` says who and since when). Ctrl-C cancels the wait.
    pub fn acquire(conn: &mut PgConnection, out: &mut dyn Write) -> Result<Self, LockError> {
        let try_lock = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS acquired")
            .bind::<BigInt, _>(KEY)
            .get_result::<Acquired>(conn)?;
        if try_lock.acquired {
            return Ok(MigratorLock(()));
        }
        let holder = holder(conn)?;
        writeln!(
            out,
            "[{}] Another migrator is running on this database ({}): waiting for it to finish...",
            timing::stamp_clock(),
            holder
        )?;
        out.flush()?;
        // the wait is as long as the other run: no lock_timeout for it
        conn.batch_execute("SET lock_timeout = 0")?;
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(KEY)
            .execute(conn)?;
        writeln!(
            out,
            "[{}] The other migrator finished; reading the migration history again.",
            timing::stamp_clock()
        )?;
        Ok(MigratorLock(()))
    }

    /// Releases the lock (a session that ends releases it too).
    pub fn release(self, conn: &mut PgConnection) -> QueryResult<()> {
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<BigInt, _>(KEY)
            .execute(conn)
            .map(drop)
    }
}

/// `pid 4242, risky_migrations migrate, connected 12:01:03, 5.2 s ago`: the
/// session holding the lock; it took the lock when it connected.
fn holder(conn: &mut PgConnection) -> QueryResult<String> {
    // pg_locks shows a bigint advisory key as its two halves
    let holders = diesel::sql_query(
        "SELECT a.pid, a.application_name AS application,
                to_char(a.backend_start, 'YYYY-MM-DD HH24:MI:SS') AS since,
                extract(epoch FROM now() - a.backend_start)::float8 AS seconds
         FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.database = (
                   SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.classid::bigint = ($1 >> 32) & 4294967295
           AND l.objid::bigint = $1 & 4294967295 AND l.objsubid = 1
         LIMIT 1",
    )
    .bind::<BigInt, _>(KEY)
    .load::<Holder>(conn)?;
    Ok(match holders.first() {
        Some(h) => format!(
            "pid {}, {}, connected {}, {:.1} s ago",
            h.pid,
            h.application
                .as_deref()
                .filter(|a| !a.is_empty())
                .unwrap_or("an unnamed session"),
            h.since.as_deref().unwrap_or("?"),
            h.seconds.unwrap_or(0.0)
        ),
        None => "it just finished".to_owned(),
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("waiting for the other migrator: {0}")]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}
