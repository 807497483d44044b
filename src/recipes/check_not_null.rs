//! Recipe: NOT NULL on an existing column without scanning under ACCESS
//! EXCLUSIVE. Its naive twin is the plain `SET NOT NULL`.
//!
//! A plain `SET NOT NULL` scans the whole table while holding ACCESS
//! EXCLUSIVE: every read and write waits for the scan. The safe recipe takes
//! four statements, each committed on its own (sent one at a time: several
//! statements in one query string would be one implicit transaction, holding
//! the first lock to the end):
//!
//! 1. `ADD CONSTRAINT .. CHECK (col IS NOT NULL) NOT VALID`: brief lock, no scan;
//! 2. `VALIDATE CONSTRAINT`: scans under SHARE UPDATE EXCLUSIVE, traffic goes on;
//! 3. `SET NOT NULL`: PostgreSQL 12+ sees the valid check and skips its scan;
//! 4. `DROP CONSTRAINT`: the check is redundant now.
//!
//! Re-running after an interruption finishes the job: step 1 is skipped when
//! the check is already there.
//!
//! PostgreSQL 18 has a route of its own, two statements: `ADD CONSTRAINT ..
//! NOT NULL col NOT VALID` (brief lock, no scan; new rows are checked at
//! once) and `VALIDATE CONSTRAINT` (the scan, under SHARE UPDATE
//! EXCLUSIVE), after which the column is NOT NULL. The recipe takes it
//! where the server is 18 or later (by `server_version_num`); measured
//! against the CHECK route in docs/versions.md.

use std::io::Write;

use diesel::prelude::*;

use super::committed::{self, Committed, Statement};
use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};

#[derive(Debug, Clone, Copy)]
pub struct NotNullSpec {
    pub table: &'static str,
    /// The model name the lines use, e.g. `LargeRecord`.
    pub label: &'static str,
    pub column: &'static str,
    /// The temporary check's name.
    pub constraint: &'static str,
}

/// The first `server_version_num` with `NOT NULL .. NOT VALID`.
pub const NOT_VALID_NOT_NULL_SINCE: u32 = 180_000;

/// PostgreSQL 18's two statements for one column: the constraint keeps
/// the check's name, and is the column's NOT NULL once valid.
pub fn statements_18(spec: &NotNullSpec) -> Committed {
    let NotNullSpec {
        table,
        label,
        column,
        constraint,
    } = *spec;
    Committed {
        table,
        constraint,
        statements: vec![
            Statement::new(
                format!("Adding NOT NULL {column} NOT VALID to {label} (PostgreSQL 18)..."),
                format!("✓ {label} NOT NULL added, not yet validated"),
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {constraint} NOT NULL {column} NOT VALID"
                ),
            ),
            Statement::new(
                format!("Validating NOT NULL on {label} (reads and writes go on)..."),
                format!("✓ {label}.{column} is NOT NULL"),
                format!("ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"),
            ),
        ],
    }
}

/// The four statements for one column, in order.
pub fn statements(spec: &NotNullSpec) -> Committed {
    let NotNullSpec {
        table,
        label,
        column,
        constraint,
    } = *spec;
    let statements = vec![
        Statement::new(
            format!("Adding CHECK ({column} IS NOT NULL) NOT VALID to {label}..."),
            format!("✓ {label} check added"),
            format!(
                "ALTER TABLE {table} ADD CONSTRAINT {constraint} CHECK ({column} IS NOT NULL) NOT VALID"
            ),
        ),
        Statement::new(
            format!("Validating the check on {label} (reads and writes go on)..."),
            format!("✓ {label} check validated"),
            format!("ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"),
        ),
        Statement::new(
            format!("Setting {label}.{column} NOT NULL (the valid check spares the scan)..."),
            format!("✓ {label}.{column} is NOT NULL"),
            format!("ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL"),
        ),
        Statement::new(
            format!("Dropping the redundant check on {label}..."),
            format!("✓ {label} check dropped"),
            format!("ALTER TABLE {table} DROP CONSTRAINT {constraint}"),
        ),
    ];
    Committed {
        table,
        constraint,
        statements,
    }
}

/// The recipe for a list of columns, each table in turn.
#[derive(Debug)]
pub struct CheckNotNull(pub &'static [NotNullSpec]);

impl CheckNotNull {
    fn groups(&self) -> Vec<Committed> {
        self.0.iter().map(statements).collect()
    }

    fn groups_18(&self) -> Vec<Committed> {
        self.0.iter().map(statements_18).collect()
    }
}

impl Recipe for CheckNotNull {
    fn describe(&self) -> &'static str {
        "Enforce NOT NULL (CHECK NOT VALID, VALIDATE, SET NOT NULL)"
    }

    fn label(&self) -> &'static str {
        "safe NOT NULL"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Enforcing NOT NULL without a long lock", |out| {
            let groups = if crate::db::server_version_num(conn)? >= NOT_VALID_NOT_NULL_SINCE {
                self.groups_18()
            } else {
                self.groups()
            };
            committed::run(conn, &groups, run.lock, out)
        })
    }

    /// The way down is the directory's `down.sql`.
    fn twin_up(&self) -> String {
        committed::twin_by_version(
            twin_header("check_not_null.rs"),
            "-- NOT NULL without scanning under ACCESS EXCLUSIVE. PostgreSQL 18 and later:
--   1. ADD CONSTRAINT .. NOT NULL col NOT VALID  brief lock, no scan
--   2. VALIDATE CONSTRAINT  scans under SHARE UPDATE EXCLUSIVE: reads and writes go on
-- Before 18:
--   1. ADD CONSTRAINT .. CHECK (col IS NOT NULL) NOT VALID  brief lock, no scan
--   2. VALIDATE CONSTRAINT  scans under SHARE UPDATE EXCLUSIVE: reads and writes go on
--   3. SET NOT NULL         PostgreSQL 12+ trusts the valid check and skips the scan
--   4. DROP CONSTRAINT      the check is now redundant
",
            NOT_VALID_NOT_NULL_SINCE,
            &self.groups_18(),
            &self.groups(),
        )
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        (!backwards).then(|| committed::listed(&self.groups()))
    }

    fn naive(&self) -> Option<NaiveTwin> {
        self.0.last().map(|s| NaiveTwin {
            name: "naive: SET NOT NULL (rolled back)",
            sql: format!(
                "ALTER TABLE {} ALTER COLUMN {} SET NOT NULL",
                s.table, s.column
            ),
            before: true,
        })
    }

    fn one_statement(&self) -> Option<(&'static str, String)> {
        self.naive().map(|naive| ("SET NOT NULL", naive.sql))
    }

    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            count: i64,
        }
        for spec in self.0 {
            let nulls = diesel::sql_query(format!(
                "SELECT count(*) AS count FROM {} WHERE {} IS NULL",
                spec.table, spec.column
            ))
            .get_result::<Count>(conn)?
            .count;
            if nulls > 0 {
                return Ok(Some(format!(
                    "{nulls} rows of {} have {} NULL after the safe path",
                    spec.table, spec.column
                )));
            }
        }
        Ok(None)
    }
}
