//! One migration run as its tool runs it, statement by statement, each
//! measured: how long it took, the locks it took (read from its own
//! backend between statements inside a transaction, exact; sampled from
//! outside for a statement that commits alone), how long each was held
//! (locks live until commit: an `ALTER` followed by an `UPDATE` holds its
//! ACCESS EXCLUSIVE through the whole `UPDATE`), the tables and indexes it
//! rewrote (their file changed), and the WAL it wrote.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::source::Mode;
use super::statements::Statement;
use crate::instruments::Instruments;
use crate::instruments::locks::LockMode;

/// A lock a statement took on a relation that existed before the
/// migration, and how long it was held.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub relation: String,
    /// The table it belongs to (itself, or an index's table).
    pub table: String,
    pub mode: LockMode,
    pub held_ms: f64,
    /// Seen by sampling from outside (a statement that committed alone),
    /// not read from the backend itself.
    pub sampled: bool,
}

/// One statement, run and measured.
#[derive(Debug, Clone)]
pub struct Traced {
    pub start_ms: f64,
    pub end_ms: f64,
    pub locks: Vec<Held>,
    pub rewrote: Vec<String>,
    pub wal_bytes: i64,
}

/// How a migration ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub traced: Vec<Traced>,
    /// The statement that failed (its index) and PostgreSQL's words.
    pub failed: Option<(usize, String)>,
    /// When its last lock was released (the commit, or the rollback).
    pub released_ms: f64,
    pub in_transaction: bool,
}

/// A user relation: its name, the table it belongs to (itself, or an
/// index's table), and its file.
#[derive(QueryableByName, Debug, Clone)]
pub struct Relation {
    #[diesel(sql_type = BigInt)]
    pub oid: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = Text)]
    pub table: String,
    #[diesel(sql_type = BigInt)]
    node: i64,
}

/// Every user relation's file (tables, indexes, materialized views) and
/// the table it belongs to.
const RELATIONS: &str = "
SELECT c.oid::int8 AS oid, c.relname::text AS name, coalesce(t.relname, c.relname)::text AS table,
       c.relfilenode::int8 AS node
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid
WHERE c.relkind IN ('r', 'i', 'm', 'p', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'risky_migrations')
  AND n.nspname NOT LIKE 'pg\\_%'";

/// The relations, by oid: a relation keeps its oid when it is rewritten
/// (its file changes) and while it is dropped (the lock stays on the oid).
pub fn relations(conn: &mut PgConnection) -> QueryResult<HashMap<i64, Relation>> {
    Ok(diesel::sql_query(RELATIONS)
        .load::<Relation>(conn)?
        .into_iter()
        .map(|r| (r.oid, r))
        .collect())
}

#[derive(QueryableByName)]
struct OwnLock {
    #[diesel(sql_type = BigInt)]
    relation: i64,
    #[diesel(sql_type = Text)]
    mode: String,
}

/// The locks this session holds now on relations, by oid.
fn own_locks(conn: &mut PgConnection) -> QueryResult<Vec<(i64, LockMode)>> {
    let rows = diesel::sql_query(
        "SELECT l.relation::int8 AS relation, l.mode::text AS mode FROM pg_locks l
         WHERE l.pid = pg_backend_pid() AND l.locktype = 'relation' AND l.granted",
    )
    .load::<OwnLock>(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| LockMode::parse(&r.mode).map(|m| (r.relation, m)))
        .collect())
}

#[derive(QueryableByName)]
struct Lsn {
    #[diesel(sql_type = BigInt)]
    lsn: i64,
}

/// The WAL position, in bytes.
fn wal(conn: &mut PgConnection) -> QueryResult<i64> {
    diesel::sql_query("SELECT (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::int8 AS lsn")
        .get_result::<Lsn>(conn)
        .map(|l| l.lsn)
}

/// Runs `statements` in `mode` on `conn` (a migrator's session), each
/// timed on the instruments' clock. `before` is every relation's file
/// before the migration: a lock on a relation it created is nobody else's
/// business, and a file that changed is a rewrite.
pub fn run(
    conn: &mut PgConnection,
    statements: &[Statement],
    mode: Mode,
    instruments: &Instruments,
) -> QueryResult<Outcome> {
    let before = relations(conn)?;
    let writes_own_transactions = statements.iter().any(Statement::is_transaction_control);
    let in_transaction = mode.in_transaction(statements.len()) && !writes_own_transactions;
    if in_transaction {
        conn.batch_execute("BEGIN")?;
    }
    let mut traced: Vec<Traced> = Vec::new();
    // when each lock was first seen: held from there to the release
    let mut acquired: Vec<(i64, LockMode, f64)> = Vec::new();
    let mut failed = None;
    let mut files = before.clone();
    for (i, statement) in statements.iter().enumerate() {
        let wal_before = wal(conn)?;
        let start_ms = instruments.now_ms();
        let done = conn.batch_execute(&statement.sql);
        let end_ms = instruments.now_ms();
        if let Err(error) = done {
            failed = Some((i, crate::pg_error::describe(&error)));
            traced.push(Traced {
                start_ms,
                end_ms,
                locks: Vec::new(),
                rewrote: Vec::new(),
                wal_bytes: 0,
            });
            break;
        }
        if in_transaction {
            for (relation, mode) in own_locks(conn)? {
                let known = before.contains_key(&relation);
                let seen = acquired
                    .iter()
                    .any(|(r, m, _)| *r == relation && *m == mode);
                if known && !seen {
                    acquired.push((relation, mode, start_ms));
                }
            }
        }
        let after = relations(conn)?;
        let mut rewrote: Vec<String> = after
            .values()
            .filter(|r| files.get(&r.oid).is_some_and(|old| old.node != r.node))
            .map(|r| r.name.clone())
            .collect();
        rewrote.sort();
        files = after;
        traced.push(Traced {
            start_ms,
            end_ms,
            locks: Vec::new(),
            rewrote,
            wal_bytes: wal(conn)? - wal_before,
        });
    }
    let end = match (in_transaction, &failed) {
        (true, None) => conn.batch_execute("COMMIT"),
        (true, Some(_)) => conn.batch_execute("ROLLBACK"),
        (false, _) => Ok(()),
    };
    let released_ms = instruments.now_ms();
    if let (Err(error), None) = (end, &failed) {
        // a deferred constraint fails at COMMIT: the last statement's
        failed = Some((
            traced.len().saturating_sub(1),
            crate::pg_error::describe(&error),
        ));
    }
    // each lock charged to the statement that took it, held to the release;
    // of several modes on one relation, the strongest speaks for it
    acquired.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    acquired.dedup_by(|later, kept| later.0 == kept.0);
    for (relation, mode, at) in acquired {
        let Some(slot) = traced.iter_mut().find(|t| t.start_ms == at) else {
            continue;
        };
        // only relations that existed before: one the migration made is
        // nobody else's business yet
        let Some(known) = before.get(&relation) else {
            continue;
        };
        slot.locks.push(Held {
            table: known.table.clone(),
            relation: known.name.clone(),
            mode,
            held_ms: released_ms - at,
            sampled: false,
        });
    }
    Ok(Outcome {
        traced,
        failed,
        released_ms,
        in_transaction,
    })
}
