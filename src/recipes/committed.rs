//! The shape two recipes share: a constraint added `NOT VALID`, then
//! statements that each commit on their own, per table.
//!
//! Several statements in one query string would run as one implicit
//! transaction, holding the first statement's lock to the end; here each is
//! sent alone. Re-running after an interruption finishes the job: the first
//! statement (the one that adds the constraint) is skipped when the
//! constraint is already there.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Instant;

use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

use crate::retry::{self, LockPolicy, RetryError};
use crate::timing;

#[derive(Debug, thiserror::Error)]
pub enum SafeDdlError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Locked(#[from] RetryError<diesel::result::Error>),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// One statement of a recipe with the lines printed around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub start: String,
    pub done: String,
    pub sql: String,
}

impl Statement {
    pub fn new(start: String, done: String, sql: String) -> Self {
        Statement { start, done, sql }
    }
}

/// One table's statements: the first adds `constraint`, the rest follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub table: &'static str,
    pub constraint: &'static str,
    pub statements: Vec<Statement>,
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = Bool)]
    exists: bool,
}

/// Whether `table` has a constraint named `constraint`.
pub fn constraint_exists(
    conn: &mut PgConnection,
    table: &str,
    constraint: &str,
) -> QueryResult<bool> {
    diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2) AS exists",
    )
    .bind::<Text, _>(table)
    .bind::<Text, _>(constraint)
    .get_result::<Exists>(conn)
    .map(|e| e.exists)
}

/// Runs every group in turn, each statement in its own transaction, each
/// retried on a lock timeout when `lock` is given.
pub fn run(
    conn: &mut PgConnection,
    groups: &[Committed],
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> Result<(), SafeDdlError> {
    for group in groups {
        let resume = constraint_exists(conn, group.table, group.constraint)?;
        for (i, statement) in group.statements.iter().enumerate() {
            if i == 0 && resume {
                continue;
            }
            timing::step_start(out, &statement.start)?;
            let started = Instant::now();
            let run = |conn: &mut PgConnection, _: &mut dyn Write| {
                crate::pg_error::execute(conn, &statement.sql)
            };
            match lock {
                Some(policy) => retry::with_retries(conn, policy, group.table, out, run)?,
                None => run(conn, out)?,
            }
            timing::step_done(out, &statement.done, started.elapsed())?;
        }
    }
    Ok(())
}

/// The plain-SQL twin for the `diesel` CLI: one `DO` statement that commits
/// between steps (several statements in one file would run as one implicit
/// transaction, holding the first lock to the end). `explain` is the
/// comment block that says what the steps are.
pub fn twin(header: String, explain: &str, groups: &[Committed]) -> String {
    let mut sql = twin_start(header, explain);
    sql.push_str(&body(groups, "    ", false));
    sql.push_str("END $$;\n");
    sql
}

/// [`twin`] with two routes: `newer` on servers from `since` on (a
/// `server_version_num`), `older` before, chosen when it runs. `newer`'s
/// statements are sent with `EXECUTE`: PL/pgSQL parses the whole block
/// before it runs, and an older server's parser refuses their syntax.
pub fn twin_by_version(
    header: String,
    explain: &str,
    since: u32,
    newer: &[Committed],
    older: &[Committed],
) -> String {
    let mut sql = twin_start(header, explain);
    let _ = writeln!(
        sql,
        "    IF current_setting('server_version_num')::int >= {since} THEN"
    );
    sql.push_str(&body(newer, "        ", true));
    sql.push_str("    ELSE\n");
    sql.push_str(&body(older, "        ", false));
    sql.push_str("    END IF;\nEND $$;\n");
    sql
}

fn twin_start(header: String, explain: &str) -> String {
    format!(
        "{header}--
{explain}-- Each step commits before the next; re-running after an interruption finishes the job.
-- A step waits at most 1 s for its lock (`manage` also retries; this does not).
DO $$
BEGIN
    PERFORM set_config('lock_timeout', '1s', false);
"
    )
}

/// Each group's statements, committed one by one, the first skipped where
/// its constraint is already there; every line indented by `indent`, each
/// statement sent with `EXECUTE` where `dynamic`.
fn body(groups: &[Committed], indent: &str, dynamic: bool) -> String {
    let sent = |sql: &str| match dynamic {
        true => format!("EXECUTE '{}'", sql.replace('\'', "''")),
        false => sql.to_owned(),
    };
    let mut sql = String::new();
    for group in groups {
        let Some((add, rest)) = group.statements.split_first() else {
            continue;
        };
        let _ = write!(
            sql,
            "{indent}-- {table}: {constraint}
{indent}IF NOT EXISTS (SELECT 1 FROM pg_constraint
{indent}               WHERE conrelid = '{table}'::regclass AND conname = '{constraint}') THEN
{indent}    {add};
{indent}END IF;
{indent}COMMIT;
",
            table = group.table,
            constraint = group.constraint,
            add = sent(&add.sql),
        );
        for step in rest {
            let _ = writeln!(sql, "{indent}{};\n{indent}COMMIT;", sent(&step.sql));
        }
    }
    sql
}

/// What `sqlmigrate` shows for the way up.
pub fn listed(groups: &[Committed]) -> (String, Vec<String>) {
    (
        "Each statement is committed on its own:".to_owned(),
        groups
            .iter()
            .flat_map(|g| g.statements.iter().map(|s| s.sql.clone()))
            .collect(),
    )
}
