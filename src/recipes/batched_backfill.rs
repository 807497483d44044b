//! Recipe: fill a new column in batches ([`crate::backfill`] walks the
//! primary key), each batch its own short transaction with a `lock_timeout`
//! and retries; the way down clears it again, batched too. Its naive twin
//! is one `UPDATE` of the whole table in one transaction.

use std::fmt::Write as _;
use std::io::Write;

use diesel::prelude::*;

use super::{NaiveTwin, Recipe, RecipeResult, RunContext, twin_header, with_banner};
use crate::backfill::{self, BackfillOptions, BackfillSpec, Job};

#[derive(Debug)]
pub struct BatchedBackfill {
    /// One column per table, filled in this order (cleared in reverse).
    pub specs: &'static [BackfillSpec],
    /// Rows per batch unless `--batch-size` says otherwise.
    pub default_batch_size: u64,
    /// A table comment that says another migration filled the column (a
    /// risky one that ran for real, whose own way down clears it): the way
    /// down leaves the column of a table that carries it as it is.
    pub kept_if: Option<&'static str>,
}

impl BatchedBackfill {
    /// The specs whose column this recipe filled: all but those of tables
    /// marked [`BatchedBackfill::kept_if`].
    fn filled_here(&self, conn: &mut PgConnection) -> QueryResult<Vec<BackfillSpec>> {
        let mut specs = Vec::new();
        for spec in self.specs {
            if !super::marked(conn, spec.table, self.kept_if)? {
                specs.push(*spec);
            }
        }
        Ok(specs)
    }

    fn options(&self, run: RunContext<'_>) -> BackfillOptions {
        walk_options(self.default_batch_size, run)
    }

    /// The plain-SQL loop that commits per batch ([`loop_twin`]).
    fn twin(&self, clear: bool) -> String {
        let what = if clear {
            "The way down: clears the column again,"
        } else {
            "Fills the column,"
        };
        let ordered: Vec<&BackfillSpec> = if clear {
            self.specs.iter().rev().collect()
        } else {
            self.specs.iter().collect()
        };
        let mut body = String::new();
        for spec in ordered {
            let BackfillSpec { table, column, .. } = spec;
            let job = if clear {
                Job::Clear(spec)
            } else {
                Job::Fill(spec)
            };
            let walk = walk_twin(table, &job.statement("lo", "lo + batch_size"));
            let _ = match self.kept_if.filter(|_| clear) {
                Some(marker) => write!(
                    body,
                    "    -- {table}.{column}, unless another migration filled it
{}",
                    unless_marked(table, marker, &walk)
                ),
                None => write!(body, "    -- {table}.{column}\n    {walk}\n"),
            };
        }
        loop_twin("batched_backfill.rs", what, self.default_batch_size, &body)
    }
}

/// A walk's plain-SQL twin: one `DO` statement, since several statements
/// in one file would run as one implicit transaction, in which the
/// `COMMIT` between batches is refused. `body` walks each table.
pub(super) fn loop_twin(source: &str, what: &str, batch_size: u64, body: &str) -> String {
    format!(
        "{}--
-- {what} walking the primary key in ranges of {batch_size} ids and
-- committing after each batch, so no lock is held for long and an
-- interruption loses at most one batch. A batch waits at most 1 s for its
-- locks (`manage` also retries; this does not).
DO $$
DECLARE
    batch_size constant bigint := {batch_size};
    lo bigint;
    max_id bigint;
BEGIN
    PERFORM set_config('TimeZone', 'UTC', false);
    PERFORM set_config('lock_timeout', '1s', false);
{body}END $$;
",
        twin_header(source),
    )
}

/// The loop over one table's ids, `statement` run on `(lo, lo + batch_size]`.
pub(super) fn walk_twin(table: &str, statement: &str) -> String {
    format!(
        "SELECT min(id) - 1, max(id) INTO lo, max_id FROM {table};
    WHILE lo < max_id LOOP
        {statement};
        COMMIT;
        lo := lo + batch_size;
        -- rows inserted meanwhile are covered too
        SELECT max(id) INTO max_id FROM {table};
    END LOOP;"
    )
}

/// `sql` (indented lines of a DO block) run unless `table` carries the
/// comment `marker`: another migration did this work, and its own way
/// down undoes it.
pub(super) fn unless_marked(table: &str, marker: &str, sql: &str) -> String {
    format!(
        "    IF obj_description('{table}'::regclass, 'pg_class') IS DISTINCT FROM '{marker}' THEN
        {}
    END IF;
",
        sql.replace("\n", "\n    ")
    )
}

/// How a walk by key range runs: the flags' batch size, else the recipe's.
pub(super) fn walk_options(default_batch_size: u64, run: RunContext<'_>) -> BackfillOptions {
    let settings = run.settings;
    BackfillOptions {
        batch_size: settings.batch_size.unwrap_or(default_batch_size),
        batch_time: settings.batch_time,
        pause: settings.pause,
        progress: settings.progress,
        lock: run.lock.copied(),
        vacuum_every: settings.vacuum_every,
        budget: settings.budget,
    }
}

impl Recipe for BatchedBackfill {
    fn describe(&self) -> &'static str {
        "Backfill in batches (Rust, one transaction per batch)"
    }

    fn label(&self) -> &'static str {
        "batched backfill"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Backfilling in batches", |out| {
            backfill::run(conn, self.specs, self.options(run), out).map(drop)
        })
    }

    fn down(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> Option<RecipeResult> {
        Some(with_banner(
            out,
            "Clearing the backfilled column in batches",
            |out| {
                let specs = self.filled_here(conn)?;
                backfill::revert(conn, &specs, self.options(run), out).map(drop)
            },
        ))
    }

    fn twin_up(&self) -> String {
        self.twin(false)
    }

    fn twin_down(&self) -> Option<String> {
        Some(self.twin(true))
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        let sql = |spec: &BackfillSpec| {
            let job = if backwards {
                Job::Clear(spec)
            } else {
                Job::Fill(spec)
            };
            job.statement("$1", "$2")
        };
        Some((
            format!(
                "For each table, ids walked in ranges of {} (--batch-size), each UPDATE committed on its own:",
                self.default_batch_size
            ),
            self.specs.iter().map(sql).collect(),
        ))
    }

    fn naive(&self) -> Option<NaiveTwin> {
        self.specs.last().map(|s| NaiveTwin {
            name: "naive: one UPDATE (rolled back)",
            sql: format!("UPDATE {} SET {} = {}", s.table, s.column, s.value),
            before: false,
        })
    }

    /// Every row has its value: a column that is NOT NULL by now (or gone,
    /// as proj04's is once swapped in) is not scanned.
    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        let mut unfilled = Vec::new();
        for spec in self.specs {
            let nullable = crate::db::nullable_column_exists(conn, spec.table, spec.column)?;
            let unfilled_row = format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE {} IS NULL) AS exists",
                spec.table, spec.column
            );
            if nullable
                && diesel::sql_query(unfilled_row)
                    .get_result::<crate::db::Exists>(conn)?
                    .exists
            {
                unfilled.push(format!("{}.{}", spec.table, spec.column));
            }
        }
        Ok((!unfilled.is_empty())
            .then(|| format!("rows left without a value: {}", unfilled.join(", "))))
    }

    fn backfill(&self) -> Option<super::Backfilled> {
        Some(super::Backfilled {
            specs: self.specs,
            default_batch_size: self.default_batch_size,
        })
    }
}
