//! Recipe: a foreign key on a table full of rows without blocking its
//! writes (or the referenced table's) for the length of a scan.
//!
//! `ADD CONSTRAINT .. FOREIGN KEY` checks every existing row before it
//! commits, holding SHARE ROW EXCLUSIVE on the table and on the table it
//! references: inserts, updates and deletes on both wait for the whole scan
//! (reads go on). The safe recipe takes two statements, each committed on
//! its own:
//!
//! 1. `ADD CONSTRAINT .. NOT VALID`: the same locks, for a moment: no scan;
//!    rows written from now on are checked;
//! 2. `VALIDATE CONSTRAINT`: scans the existing rows under SHARE UPDATE
//!    EXCLUSIVE (and ROW SHARE on the referenced table): reads and writes on
//!    both go on.
//!
//! The constraint ends as the one-statement way leaves it (same name, same
//! definition, validated), with a comment saying the recipe added it: the
//! way down removes only a constraint the recipe added, so after the risky
//! migration really ran (the `diesel` CLI runs every file) reverting the
//! recipe gives back the risky migration's state. Its naive twin is the
//! risky migration itself.

use std::fmt::Write as _;
use std::io::Write;

use diesel::prelude::*;

use super::committed::{self, Committed, Statement};
use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};

#[derive(Debug, Clone, Copy)]
pub struct ForeignKeySpec {
    pub table: &'static str,
    /// The model name the lines use, e.g. `LargeOrder`.
    pub label: &'static str,
    /// The constraint's name and what it says after `FOREIGN KEY`:
    /// `(customer_id) REFERENCES customer (id) DEFERRABLE INITIALLY DEFERRED`.
    pub constraint: &'static str,
    pub definition: &'static str,
    /// The field the lines name: `customer`.
    pub field: &'static str,
}

/// The comment the recipe leaves on a constraint it added.
const MARK: &str = "added NOT VALID, then validated (the safe recipe)";

/// The two statements for one table, in order.
pub fn statements(spec: &ForeignKeySpec) -> Committed {
    let ForeignKeySpec {
        table,
        label,
        constraint,
        definition,
        field,
    } = *spec;
    Committed {
        table,
        constraint,
        statements: vec![
            Statement::new(
                format!("Adding FK {field} to {label} as NOT VALID (no scan)..."),
                format!("✓ {label} FK added (NOT VALID: new rows checked)"),
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY {definition} NOT VALID; \
                     COMMENT ON CONSTRAINT {constraint} ON {table} IS '{MARK}'"
                ),
            ),
            Statement::new(
                format!("Validating FK {field} on {label} (reads and writes go on)..."),
                format!("✓ {label} FK validated"),
                format!("ALTER TABLE {table} VALIDATE CONSTRAINT {constraint}"),
            ),
        ],
    }
}

/// The recipe for a list of tables, each in turn.
#[derive(Debug)]
pub struct ForeignKeyNotValid(pub &'static [ForeignKeySpec]);

impl ForeignKeyNotValid {
    fn groups(&self) -> Vec<Committed> {
        self.0.iter().map(statements).collect()
    }
}

impl Recipe for ForeignKeyNotValid {
    fn describe(&self) -> &'static str {
        "Add foreign keys (NOT VALID, then VALIDATE)"
    }

    fn label(&self) -> &'static str {
        "safe foreign key"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Adding foreign keys without a long lock", |out| {
            committed::run(conn, &self.groups(), run.lock, out)
        })
    }

    /// The way down is the directory's `down.sql`.
    fn twin_up(&self) -> String {
        committed::twin(
            twin_header("foreign_key.rs"),
            "-- A foreign key without holding writes for a scan:
--   1. ADD CONSTRAINT .. FOREIGN KEY .. NOT VALID  brief SHARE ROW EXCLUSIVE on both tables, no scan
--   2. VALIDATE CONSTRAINT  scans under SHARE UPDATE EXCLUSIVE: reads and writes go on
",
            &self.groups(),
        )
    }

    /// Drops each constraint the recipe added (its comment says so), the
    /// last table first.
    fn twin_down(&self) -> Option<String> {
        let mut sql = format!(
            "{}-- Removes each foreign key the recipe added (its comment says so): after a
-- real 0002 the constraint is 0002's, and its own way down removes it.
-- banner: Removing foreign keys the safe recipe added
SET LOCAL lock_timeout = '1s';
SET LOCAL statement_timeout = '5s';
",
            twin_header("foreign_key.rs")
        );
        for spec in self.0.iter().rev() {
            let ForeignKeySpec {
                table,
                label,
                constraint,
                field,
                ..
            } = *spec;
            let _ = write!(
                sql,
                "-- step: Removing FK {field} from {label}... | ✓ {label} FK removed
DO $$
BEGIN
    IF obj_description((SELECT oid FROM pg_constraint
                        WHERE conrelid = '{table}'::regclass AND conname = '{constraint}'),
                       'pg_constraint') = '{MARK}' THEN
        ALTER TABLE {table} DROP CONSTRAINT {constraint};
    END IF;
END $$;
"
            );
        }
        Some(sql)
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        (!backwards).then(|| committed::listed(&self.groups()))
    }

    /// The one-statement way is the scenario's risky migration: the demo
    /// measures it there.
    fn naive(&self) -> Option<NaiveTwin> {
        None
    }

    /// The validating `ADD CONSTRAINT` of the largest table (the last).
    fn one_statement(&self) -> Option<(&'static str, String)> {
        self.0.last().map(|spec| {
            let sql = format!(
                "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY {}",
                spec.table, spec.constraint, spec.definition
            );
            ("validating ADD CONSTRAINT", sql)
        })
    }

    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        #[derive(QueryableByName)]
        struct Valid {
            #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
            valid: Option<bool>,
        }
        for spec in self.0 {
            let valid = diesel::sql_query(
                "SELECT (SELECT convalidated FROM pg_constraint WHERE conrelid = to_regclass($1) AND conname = $2) AS valid",
            )
            .bind::<diesel::sql_types::Text, _>(spec.table)
            .bind::<diesel::sql_types::Text, _>(spec.constraint)
            .get_result::<Valid>(conn)?
            .valid;
            match valid {
                Some(true) => {}
                Some(false) => {
                    return Ok(Some(format!(
                        "{} on {} is still NOT VALID after the safe path",
                        spec.constraint, spec.table
                    )));
                }
                None => {
                    return Ok(Some(format!(
                        "{} has no constraint {} after the safe path",
                        spec.table, spec.constraint
                    )));
                }
            }
        }
        Ok(None)
    }
}
