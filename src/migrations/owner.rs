//! Which project a database belongs to.
//!
//! Every project records versions 0001, 0002, ... in the same
//! `__diesel_schema_migrations`, so a `DATABASE_URL` exported in one
//! project and used in another would read (and rewrite) the wrong history.
//! The first migration therefore marks the database with its project, in
//! its own transaction ([`BOOTSTRAP`], then [`guard_call`], at the top of
//! every project's `0001_initial/up.sql`), and:
//!
//! - `manage` checks the mark before it reads or writes the history
//!   ([`check`]), and refuses with one line naming both projects;
//! - every migration file calls the guard first, so the `diesel` CLI run
//!   in the wrong project's directory refuses too, before it changes
//!   anything: at the top of a file that runs in a transaction, inside the
//!   `DO` block of one that commits as it goes. A file holding one
//!   `CONCURRENTLY` statement alone cannot call anything (a second
//!   statement would make it one implicit transaction, which `CONCURRENTLY`
//!   refuses): what it names guards it instead (the index it builds is on
//!   this project's table; the one it drops has no `IF EXISTS`), so on
//!   another project's database it fails and the CLI records nothing.
//!
//! A database migrated before the mark existed is adopted by the project
//! whose tables it holds.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};

use crate::scenarios::{self, Scenario};

/// The lab's schema, the mark, and the guard: what `0001_initial/up.sql`
/// of every project opens with (a test holds the files to it).
pub const BOOTSTRAP: &str = r#"SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
CREATE SCHEMA IF NOT EXISTS risky_migrations;
CREATE OR REPLACE FUNCTION risky_migrations.guard(claimant text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    owner text;
BEGIN
    IF to_regclass('risky_migrations.project') IS NULL THEN
        CREATE TABLE risky_migrations.project (
            project text PRIMARY KEY,
            marked_at timestamptz NOT NULL DEFAULT now()
        );
    END IF;
    SELECT p.project INTO owner FROM risky_migrations.project p LIMIT 1;
    IF owner IS NULL THEN
        INSERT INTO risky_migrations.project (project) VALUES (claimant);
    ELSIF owner <> claimant THEN
        RAISE EXCEPTION 'this database belongs to %, not %', owner, claimant
            USING ERRCODE = 'RM001',
                  HINT = 'point DATABASE_URL at the database of the project whose migrations you run';
    END IF;
END
$$;
"#;

/// The statement that claims the database for `project`, or refuses.
pub fn guard_call(project: &str) -> String {
    format!("SELECT risky_migrations.guard('{project}');")
}

/// The line before the guard in a file, saying what it is.
const GUARD_COMMENT: &str =
    "-- The lab's guard: refuses another project's database (manage checks it first too).";

/// `sql` with the guard of `project` where it runs first, or None where a
/// file cannot hold it (a lone `CONCURRENTLY` statement, see the module
/// docs). Inside a `DO` block that commits as it goes, the guard is its
/// first statement; anywhere else, the file's first.
pub fn guarded(project: &str, sql: &str, in_transaction: bool) -> Option<String> {
    let call = guard_call(project);
    let commits_as_it_goes = sql.contains("DO $$") && sql.lines().any(|l| l.trim() == "COMMIT;");
    if !in_transaction && commits_as_it_goes {
        let mut lines: Vec<String> = sql.lines().map(str::to_owned).collect();
        let begin = lines.iter().position(|l| l.trim() == "BEGIN")?;
        let perform = call.replacen("SELECT", "PERFORM", 1);
        lines.insert(begin + 1, format!("    {perform}"));
        return Some(lines.join("\n") + "\n");
    }
    if !in_transaction && sql.contains("CONCURRENTLY") {
        return None;
    }
    Some(format!("{GUARD_COMMENT}\n{call}\n{sql}"))
}

/// Whether a committed file calls the guard of `project`.
pub fn is_guarded(project: &str, sql: &str) -> bool {
    sql.contains(guard_call(project).trim_start_matches("SELECT"))
}

/// Whose database it is, as far as it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Marked by its first migration.
    Marked(String),
    /// No mark, no migration recorded: nobody's yet.
    Nobody,
    /// Migrations recorded, but no mark: migrated before the mark existed.
    Unmarked,
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    #[error(
        "this database belongs to {owner}, not {project} (its migration history is {owner}'s): point DATABASE_URL at {project}'s own database (see {project}/.env), or run the command in {owner}/"
    )]
    OtherProject { owner: String, project: String },
    #[error(
        "this database has a migration history, but not {project}'s tables ({tables}){guess}: point DATABASE_URL at {project}'s own database (see {project}/.env)"
    )]
    Unknown {
        project: String,
        tables: String,
        guess: String,
    },
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

#[derive(QueryableByName)]
struct Tables {
    #[diesel(sql_type = Bool)]
    marked: bool,
    #[diesel(sql_type = Bool)]
    history: bool,
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = Nullable<Text>)]
    project: Option<String>,
}

/// What the database says of its owner.
pub fn owner(conn: &mut PgConnection) -> QueryResult<Owner> {
    // either table may not exist: each is read only where it does
    let tables = diesel::sql_query(
        "SELECT to_regclass('risky_migrations.project') IS NOT NULL AS marked,
                to_regclass('__diesel_schema_migrations') IS NOT NULL AS history",
    )
    .get_result::<Tables>(conn)?;
    let read = |conn: &mut PgConnection, sql| diesel::sql_query(sql).get_result::<Found>(conn);
    if tables.marked
        && let Some(project) =
            read(conn, "SELECT project FROM risky_migrations.project LIMIT 1")?.project
    {
        return Ok(Owner::Marked(project));
    }
    let recorded = tables.history
        && read(
            conn,
            "SELECT max(version)::text AS project FROM __diesel_schema_migrations",
        )?
        .project
        .is_some();
    Ok(if recorded {
        Owner::Unmarked
    } else {
        Owner::Nobody
    })
}

/// Refuses a database that is not `scenario`'s: marked by another project,
/// or holding a history without this project's tables. Reads only.
pub fn check(conn: &mut PgConnection, scenario: &Scenario) -> Result<Owner, OwnerError> {
    let project = scenario.project();
    match owner(conn)? {
        Owner::Marked(owner) if owner != project => Err(OwnerError::OtherProject {
            owner,
            project: project.to_owned(),
        }),
        Owner::Unmarked if !has_tables(conn, scenario)? => {
            let mut guess = String::new();
            for other in scenarios::all() {
                if has_tables(conn, other)? {
                    guess = format!("; it holds {}'s", other.project());
                    break;
                }
            }
            Err(OwnerError::Unknown {
                project: project.to_owned(),
                tables: scenario.tables().join(", "),
                guess,
            })
        }
        owner => Ok(owner),
    }
}

/// [`check`], then marks a database whose history has no mark yet (one
/// migrated before the mark existed), or that is nobody's when `faking`
/// (a first migration recorded with `--fake` runs no file to mark it): the
/// guard the migration files call must exist for them. A first migration
/// that runs marks the database itself, in its own transaction.
pub fn claim(conn: &mut PgConnection, scenario: &Scenario, faking: bool) -> Result<(), OwnerError> {
    match check(conn, scenario)? {
        Owner::Unmarked => {}
        Owner::Nobody if faking => {}
        Owner::Marked(_) | Owner::Nobody => return Ok(()),
    }
    conn.transaction(|conn| {
        conn.batch_execute(BOOTSTRAP)?;
        conn.batch_execute(&guard_call(scenario.project()))
    })?;
    Ok(())
}

/// Whether every table `scenario` seeds exists.
fn has_tables(conn: &mut PgConnection, scenario: &Scenario) -> QueryResult<bool> {
    for table in scenario.tables() {
        if !crate::db::table_exists(conn, table)? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every migration file of every project calls its project's guard
    /// first (but for a lone CONCURRENTLY statement), and every first
    /// migration defines it.
    #[test]
    fn every_migration_file_calls_its_projects_guard() {
        for scenario in scenarios::all() {
            let project = scenario.project();
            for files in scenario.migrations() {
                for (file, sql) in [("up.sql", files.up), ("down.sql", files.down)] {
                    let lone_concurrently =
                        guarded(project, sql, files.run_in_transaction()).is_none();
                    assert!(
                        is_guarded(project, sql) || lone_concurrently,
                        "{project}/migrations/{}/{file} does not call {}",
                        files.name,
                        guard_call(project)
                    );
                }
            }
            let first = &scenario.migrations()[0];
            assert!(
                first.up.contains(BOOTSTRAP),
                "{project}'s {} must open with owner::BOOTSTRAP",
                first.name
            );
        }
    }

    #[test]
    fn the_guard_goes_first_in_a_transaction_and_into_a_do_block_outside_one() {
        let call = guard_call("p");
        assert_eq!(
            guarded("p", "ALTER TABLE t ADD c int;\n", true).unwrap(),
            format!("{GUARD_COMMENT}\n{call}\nALTER TABLE t ADD c int;\n")
        );
        let block = "-- c\nDO $$\nDECLARE\n    x int;\nBEGIN\n    COMMIT;\nEND $$;\n";
        let explicit = "BEGIN;\nALTER TABLE t ALTER c DROP NOT NULL;\nCOMMIT;\n";
        assert_eq!(
            guarded("p", explicit, false).unwrap(),
            format!("{GUARD_COMMENT}\n{call}\n{explicit}")
        );
        assert_eq!(
            guarded("p", block, false).unwrap(),
            "-- c\nDO $$\nDECLARE\n    x int;\nBEGIN\n    PERFORM risky_migrations.guard('p');\n    COMMIT;\nEND $$;\n"
        );
        assert_eq!(
            guarded("p", "CREATE INDEX CONCURRENTLY i ON t (c);\n", false),
            None
        );
    }
}
