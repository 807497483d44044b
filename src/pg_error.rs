//! What went wrong in PostgreSQL, told by what it is, never by its words.
//!
//! Servers speak the language of their `lc_messages`: on a German server a
//! lock timeout reads `storniere Anfrage wegen Zeitüberschreitung einer
//! Sperre`. The lab must still retry it, so it tells conditions apart by
//! their SQLSTATE. Diesel 2.3 keeps the SQLSTATE to itself: it maps a few
//! codes to [`DatabaseErrorKind`] (connection failures among them) and
//! exposes the rest only as the translated text. So, for the conditions the
//! lab acts on, PostgreSQL itself writes the code where diesel shows it:
//!
//! - statements that may wait on a lock or be cancelled are sent through
//!   [`execute`], inside a PL/pgSQL block that catches `lock_not_available`,
//!   `query_canceled`, `undefined_table` and the `duplicate_*` conditions
//!   by name and raises them again with the same SQLSTATE and the message
//!   prefixed `[SQLSTATE 55P03]`: ASCII the lab wrote, in every language.
//!   (Asking for English messages with `SET lc_messages` was the other way;
//!   it needs superuser rights, which production migrators rarely have, and
//!   would still be matching words.)
//! - lost connections come from diesel's kinds, which it derives from the
//!   SQLSTATE and libpq's connection status;
//! - what cannot be tagged is established by fact instead: when a query of
//!   the server's endpoints fails, [`crate::db::missing_table`] asks
//!   `to_regclass` whether its table exists; when a statement fails after
//!   Ctrl-C, the lab knows it sent the cancel itself
//!   (`interrupt::requested`).
//!
//! Statements that PL/pgSQL cannot run (transaction control, `VACUUM`,
//! `CREATE INDEX CONCURRENTLY`) go through [`execute_plain`]; a lock timeout
//! there is reported, not retried.

use std::error::Error as StdError;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The conditions the lab acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// 55P03 lock_not_available: `lock_timeout` fired (retry later).
    LockTimeout,
    /// 57014 query_canceled: `pg_cancel_backend` or `statement_timeout`.
    Canceled,
    /// 42P01 undefined_table: the database is not migrated that far.
    UndefinedTable,
    /// 42701 duplicate_column, 42P07 duplicate_table, 42710
    /// duplicate_object: what a migration adds is already there (its undo
    /// was faked).
    AlreadyExists,
    /// The connection is gone (diesel's `ClosedConnection`,
    /// `UnableToSendCommand`).
    ConnectionLost,
    Other,
}

impl Condition {
    /// The SQLSTATE a tagged message carries, as PostgreSQL names it.
    fn from_sqlstate(code: &str) -> Self {
        match code {
            "55P03" => Condition::LockTimeout,
            "57014" => Condition::Canceled,
            "42P01" => Condition::UndefinedTable,
            "42701" | "42P07" | "42710" => Condition::AlreadyExists,
            _ => Condition::Other,
        }
    }
}

/// The prefix [`execute`]'s block writes before a caught condition's message.
const TAG: &str = "[SQLSTATE ";

/// The condition of a diesel error.
pub fn of(error: &DieselError) -> Condition {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => Condition::ConnectionLost,
        DieselError::DatabaseError(_, info) => info
            .message()
            .strip_prefix(TAG)
            .and_then(|rest| rest.get(..5))
            .map_or(Condition::Other, Condition::from_sqlstate),
        _ => Condition::Other,
    }
}

/// An error's first line, as a report quotes it (the server's words, in
/// its language: for people, never for deciding).
pub fn describe(error: &DieselError) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or("error")
        .to_owned()
}

/// Errors that may carry a diesel error somewhere in their chain.
pub trait Classify {
    fn condition(&self) -> Condition;
}

impl Classify for DieselError {
    fn condition(&self) -> Condition {
        of(self)
    }
}

/// The first diesel error in a chain of sources.
fn in_chain(mut error: &(dyn StdError + 'static)) -> Condition {
    loop {
        if let Some(diesel) = error.downcast_ref::<DieselError>() {
            return of(diesel);
        }
        match error.source() {
            Some(source) => error = source,
            None => return Condition::Other,
        }
    }
}

/// What diesel's migration harness returns: our own errors, boxed.
impl Classify for Box<dyn StdError + Send + Sync> {
    fn condition(&self) -> Condition {
        in_chain(&**self)
    }
}

/// `sql` inside the PL/pgSQL block that tags the conditions (module docs).
/// The block runs in the caller's transaction; `SET LOCAL` inside it holds
/// for the rest of that transaction.
pub fn tagged(sql: &str) -> String {
    block(sql, "")
}

/// The setting where [`execute_counted`]'s block leaves its row count.
const ROW_COUNT: &str = "risky_migrations.row_count";

fn block(sql: &str, after: &str) -> String {
    let quote = (0..)
        .map(|n| format!("$lab_sql{n}$"))
        .find(|q| !sql.contains(q.as_str()))
        .unwrap_or_default();
    let outer = (0..)
        .map(|n| format!("$lab_do{n}$"))
        .find(|q| !sql.contains(q.as_str()))
        .unwrap_or_default();
    format!(
        "DO {outer}
DECLARE code text; message text; row_count bigint;
BEGIN
    EXECUTE {quote}{sql}{quote};{after}
EXCEPTION WHEN lock_not_available OR query_canceled OR undefined_table
    OR duplicate_column OR duplicate_table OR duplicate_object THEN
    GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
    RAISE EXCEPTION USING ERRCODE = code, MESSAGE = '{TAG}' || code || '] ' || message;
END {outer}"
    )
}

/// Runs `sql` (one or more statements) so that its conditions are told apart
/// in any server language.
pub fn execute(conn: &mut PgConnection, sql: &str) -> QueryResult<()> {
    conn.batch_execute(&tagged(sql))
}

/// Runs one statement as [`execute`] does and returns the rows it touched
/// (a block answers no rows: it leaves the count in a session setting).
/// `sql` takes no binds: the caller writes its values as literals.
pub fn execute_counted(conn: &mut PgConnection, sql: &str) -> QueryResult<u64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let after = format!(
        "\n    GET DIAGNOSTICS row_count = ROW_COUNT;\n    PERFORM set_config('{ROW_COUNT}', row_count::text, false);"
    );
    conn.batch_execute(&block(sql, &after))?;
    let count = diesel::sql_query(format!("SELECT current_setting('{ROW_COUNT}')::int8 AS n"))
        .get_result::<Count>(conn)?;
    Ok(u64::try_from(count.n).unwrap_or(0))
}

/// Runs what PL/pgSQL cannot: transaction control, `VACUUM`, concurrent
/// index builds. Its conditions read as [`Condition::Other`].
pub fn execute_plain(conn: &mut PgConnection, sql: &str) -> QueryResult<()> {
    conn.batch_execute(sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_messages_name_their_condition_in_any_language() {
        let error = |message: &str| {
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(message.to_owned()))
        };
        assert_eq!(
            of(&error(
                "[SQLSTATE 55P03] storniere Anfrage wegen Zeitüberschreitung einer Sperre"
            )),
            Condition::LockTimeout
        );
        assert_eq!(
            of(&error(
                "[SQLSTATE 57014] canceling statement due to user request"
            )),
            Condition::Canceled
        );
        assert_eq!(
            of(&error("[SQLSTATE 42P01] Relation »x« existiert nicht")),
            Condition::UndefinedTable
        );
        // the English words alone mean nothing: only the tag counts
        assert_eq!(
            of(&error("canceling statement due to lock timeout")),
            Condition::Other
        );
        let boxed: Box<dyn StdError + Send + Sync> = Box::new(error("[SQLSTATE 55P03] anything"));
        assert_eq!(boxed.condition(), Condition::LockTimeout);
    }

    #[test]
    fn the_block_quotes_around_what_the_sql_contains() {
        let sql = "SELECT '$lab_sql0$'";
        let block = tagged(sql);
        assert!(block.contains("EXECUTE $lab_sql1$SELECT '$lab_sql0$'$lab_sql1$;"));
        assert!(block.starts_with("DO $lab_do0$"));
    }
}
