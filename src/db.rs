//! Connections to PostgreSQL: one for commands, a pool for the server.
//!
//! Every connection pins `TimeZone` to UTC: text becomes `timestamptz`
//! through the session's time zone, and the lab must convert the same way
//! whatever the server's or the user's setting is. Connection errors name the
//! host and database, never the password.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ManageConnection, Pool, R2D2Connection};
use diesel::sql_types::{Bool, Text};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub type PgPool = Pool<Manager>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot connect to PostgreSQL at {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("table {table} does not exist: {hint}")]
    MissingTable { table: String, hint: String },
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

/// The `application_name` of a migrating session: the lock monitor finds
/// the migration by it.
pub const MIGRATOR: &str = "risky_migrations migrate";

/// Names a connection as a migration's, so the lock monitor (and anyone
/// reading `pg_stat_activity`) knows it.
pub fn mark_migrator(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute(&format!("SET application_name = '{}'", MIGRATOR))
}

/// Seconds libpq waits for a server to answer, when the URL says nothing.
const CONNECT_TIMEOUT: u32 = 5;

/// `database_url` with libpq's `connect_timeout` unless it has one: without
/// it, a port where something else listens (not PostgreSQL) keeps libpq
/// waiting for an answer forever.
pub fn with_connect_timeout(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if !url.query_pairs().any(|(k, _)| k == "connect_timeout") => {
            url.query_pairs_mut()
                .append_pair("connect_timeout", &CONNECT_TIMEOUT.to_string());
            url.to_string()
        }
        _ => database_url.to_owned(),
    }
}

/// Opens a connection with the session settings the lab relies on.
pub fn connect(database_url: &str) -> Result<PgConnection, DbError> {
    let mut conn = PgConnection::establish(&with_connect_timeout(database_url)).map_err(|e| {
        DbError::Connect {
            target: describe_target(database_url),
            reason: connection_reason(&e.to_string(), database_url),
        }
    })?;
    configure(&mut conn)?;
    Ok(conn)
}

fn configure(conn: &mut PgConnection) -> QueryResult<()> {
    conn.batch_execute("SET TimeZone = 'UTC'")
}

/// The useful part of libpq's message, on one line and without secrets:
/// `connection to server at "localhost" (::1), port 5999 failed: Connection refused`
/// becomes `Connection refused`.
fn connection_reason(message: &str, database_url: &str) -> String {
    let first = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("unknown error");
    let reason = first
        .rsplit_once("failed: ")
        .map_or(first, |(_, r)| r)
        .trim();
    let reason = reason.trim_start_matches("FATAL:").trim();
    let reason = if reason == "timeout expired" {
        "no answer in time (is what listens there PostgreSQL?)"
    } else {
        reason
    };
    match url::Url::parse(database_url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(password) if !password.is_empty() => reason.replace(&password, "***"),
        _ => reason.to_owned(),
    }
}

/// `name` as a quoted SQL identifier (`"my ""db"""`), for the names SQL
/// cannot bind: databases, tables.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Where a run works: the primary's database, and its copy on a hot
/// standby if there is one.
#[derive(Debug, Clone, Copy)]
pub struct Databases<'a> {
    pub primary: &'a str,
    pub replica: Option<&'a str>,
}

/// The server's pool size: twice the cores. Measured on 2 cores (`manage
/// bench`): 4 connections kept p99 under 5 ms where 16 let PostgreSQL
/// backends, HTTP workers and the load generator fight over the CPUs.
pub fn default_pool_size() -> u32 {
    2 * cores() as u32
}

/// The machine's cores (2 when it cannot tell).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// A pooled connection is trusted without a round trip when it was last
/// used this recently (HikariCP's `aliveBypassWindowMs` is 500 ms too).
const TRUSTED_FOR: Duration = Duration::from_millis(500);

/// A server connection and what the pool knows of it.
pub struct PooledPg {
    conn: PgConnection,
    returned: Instant,
    lost: bool,
}

impl PooledPg {
    /// Runs `work`; a connection error marks the connection lost, so the pool
    /// closes it instead of handing it to the next request.
    pub fn run<T>(
        &mut self,
        work: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> QueryResult<T> {
        let result = work(&mut self.conn);
        if let Err(error) = &result {
            self.lost |= crate::pg_error::of(error) == crate::pg_error::Condition::ConnectionLost;
        }
        result
    }
}

/// r2d2's manager for the server. diesel's own manager has r2d2 ping every
/// connection on checkout: a `SELECT 1` round trip per request, which cost
/// /list_large/ a fifth of its throughput (`manage bench`). This one pings only a
/// connection that sat idle longer than [`TRUSTED_FOR`], and drops one that
/// failed with a connection error.
pub struct Manager {
    database_url: String,
    /// Whether the pool last found the database unreachable: said once
    /// when it goes, once when it is back, not on every retry.
    lost: std::sync::Arc<AtomicBool>,
}

impl ManageConnection for Manager {
    type Connection = PooledPg;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PooledPg, Self::Error> {
        let mut conn = PgConnection::establish(&with_connect_timeout(&self.database_url))
            .map_err(diesel::r2d2::Error::ConnectionError)?;
        if self.lost.swap(false, Ordering::Relaxed) {
            tracing::warn!("the database answers again");
        }
        // no plan_cache_mode here: the list queries have no parameters (their
        // LIMIT is in the text, see `scenarios::FirstRows`), and PostgreSQL
        // plans a parameterless prepared statement once. Forcing generic
        // plans on every statement, as the server once did, made a bound
        // `LIMIT $1` a full scan at 100 M rows.
        configure(&mut conn).map_err(diesel::r2d2::Error::QueryError)?;
        Ok(PooledPg {
            conn,
            returned: Instant::now(),
            lost: false,
        })
    }

    fn is_valid(&self, pooled: &mut PooledPg) -> Result<(), Self::Error> {
        if pooled.returned.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        pooled
            .run(|conn| conn.ping())
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, pooled: &mut PooledPg) -> bool {
        pooled.returned = Instant::now();
        pooled.lost || std::thread::panicking() || pooled.conn.is_broken()
    }
}

/// A pool that starts even when the database is down: the server then answers
/// 503 until it comes back, instead of refusing to start.
pub fn pool(database_url: &str, size: u32) -> PgPool {
    let lost = std::sync::Arc::new(AtomicBool::new(false));
    Pool::builder()
        .max_size(size)
        // every connection opened up front: no request pays for a connect
        .min_idle(None)
        .connection_timeout(Duration::from_secs(2))
        .error_handler(Box::new(LostOnce {
            lost: lost.clone(),
            target: database_url.to_owned(),
        }))
        .build_unchecked(Manager {
            database_url: database_url.to_owned(),
            lost,
        })
}

/// r2d2 reports every failed connect, several a second while the database
/// is down (it keeps trying to fill the pool): this says it once.
#[derive(Debug)]
struct LostOnce {
    lost: std::sync::Arc<AtomicBool>,
    target: String,
}

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for LostOnce {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        if !self.lost.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "no database at {} ({}): answering 503 until it is back",
                describe_target(&self.target),
                connection_reason(&error.to_string(), &self.target)
            );
        }
    }
}

#[derive(QueryableByName)]
pub(crate) struct Exists {
    #[diesel(sql_type = Bool)]
    pub(crate) exists: bool,
}

/// `PostgreSQL 15.18`, from the server's `server_version`.
pub fn server_version(conn: &mut PgConnection) -> QueryResult<String> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        server_version: String,
    }
    let v = diesel::sql_query("SHOW server_version").get_result::<Version>(conn)?;
    Ok(format!(
        "PostgreSQL {}",
        v.server_version
            .split_whitespace()
            .next()
            .unwrap_or_default()
    ))
}

/// Whether `table` exists in the connection's search path.
pub fn table_exists(conn: &mut PgConnection, table: &str) -> QueryResult<bool> {
    diesel::sql_query("SELECT to_regclass($1) IS NOT NULL AS exists")
        .bind::<Text, _>(table)
        .get_result::<Exists>(conn)
        .map(|e| e.exists)
}

/// Whether `table.column` exists.
pub fn column_exists(conn: &mut PgConnection, table: &str, column: &str) -> QueryResult<bool> {
    column_where(conn, (table, column), "")
}

/// Whether `table.column` exists and may hold NULLs (not NOT NULL).
pub fn nullable_column_exists(
    conn: &mut PgConnection,
    table: &str,
    column: &str,
) -> QueryResult<bool> {
    column_where(conn, (table, column), " AND NOT attnotnull")
}

/// Whether `table.column` exists with `and` (SQL on `pg_attribute`) true.
fn column_where(
    conn: &mut PgConnection,
    (table, column): (&str, &str),
    and: &str,
) -> QueryResult<bool> {
    diesel::sql_query(format!(
        "SELECT EXISTS (SELECT 1 FROM pg_attribute
                        WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped{and}) AS exists"
    ))
    .bind::<Text, _>(table)
    .bind::<Text, _>(column)
    .get_result::<Exists>(conn)
    .map(|e| e.exists)
}

/// Whether any of `tables` is missing: asked after a query failed, to tell a
/// database that is not migrated from a broken query without reading the
/// error's words (see [`crate::pg_error`]).
pub fn missing_table(conn: &mut PgConnection, tables: &[&str]) -> bool {
    tables
        .iter()
        .any(|table| matches!(table_exists(conn, table), Ok(false)))
}

/// Fails with [`DbError::MissingTable`] unless every table exists.
pub fn require_tables(conn: &mut PgConnection, tables: &[&str], hint: &str) -> Result<(), DbError> {
    for table in tables {
        if !table_exists(conn, table)? {
            return Err(DbError::MissingTable {
                table: (*table).to_owned(),
                hint: hint.to_owned(),
            });
        }
    }
    Ok(())
}

/// The URL with its password replaced by `***`, for any output.
pub fn redact_url(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(mut url) if url.password().is_some() => {
            // set_password only fails for URLs that cannot have one
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) => "<a DATABASE_URL that is not a URL>".to_owned(),
    }
}

/// `host:port/database`, naming where a URL points without its secrets.
pub fn describe_target(database_url: &str) -> String {
    match url::Url::parse(database_url) {
        Ok(url) => format!(
            "{}:{}{}",
            url.host_str().unwrap_or("localhost"),
            url.port().unwrap_or(5432),
            url.path()
        ),
        Err(_) => "<a DATABASE_URL that is not a URL>".to_owned(),
    }
}

/// A table's comment (`COMMENT ON TABLE`), where it has one: where the
/// lab's migrations leave their marks for a way down to read.
pub fn table_comment(conn: &mut PgConnection, table: &str) -> QueryResult<Option<String>> {
    #[derive(QueryableByName)]
    struct Comment {
        #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
        comment: Option<String>,
    }
    diesel::sql_query("SELECT obj_description(to_regclass($1), 'pg_class') AS comment")
        .bind::<Text, _>(table)
        .get_result::<Comment>(conn)
        .map(|c| c.comment)
}

/// Whether `table`'s comment is `marker`: the mark a migration that ran
/// for real leaves for a later one (or its own way down) to read.
pub fn table_marked(conn: &mut PgConnection, table: &str, marker: &str) -> QueryResult<bool> {
    Ok(table_comment(conn, table)?.as_deref() == Some(marker))
}

/// The server's `server_version_num` (180006 for 18.6): what a recipe
/// that differs by version chooses by, never the version's text.
pub fn server_version_num(conn: &mut PgConnection) -> QueryResult<u32> {
    #[derive(QueryableByName)]
    struct Num {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        n: i32,
    }
    diesel::sql_query("SELECT current_setting('server_version_num')::int4 AS n")
        .get_result::<Num>(conn)
        .map(|n| n.n.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = "postgres://postgres:s3cret@db.example:5434/risky_migrations";
        assert!(!redact_url(url).contains("s3cret"));
        assert!(redact_url(url).contains("db.example:5434"));
        assert_eq!(describe_target(url), "db.example:5434/risky_migrations");
        assert!(!redact_url("not a url s3cret").contains("s3cret"));
    }

    #[test]
    fn libpq_messages_shrink_to_their_reason() {
        let msg = "connection to server at \"localhost\" (::1), port 5999 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?\n";
        assert_eq!(
            connection_reason(msg, "postgres://u:pw@localhost:5999/db"),
            "Connection refused"
        );
        let auth = "connection to server at \"h\" failed: FATAL:  password authentication failed for user \"pw\"";
        assert_eq!(
            connection_reason(auth, "postgres://pw:pw@h/db"),
            "password authentication failed for user \"***\""
        );
    }
}
