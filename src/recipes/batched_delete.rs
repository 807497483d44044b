//! Recipe: delete the rows a filter matches in batches of ids, walked as
//! the batched backfill walks them ([`crate::backfill::purge`]): each batch
//! its own short transaction, with a `lock_timeout`, retries and the
//! budget. Its naive twin is one `DELETE` of them all in one transaction.
//! The way down gives the rows back with the scenario's own SQL (the lab
//! can: its rows are a function of their id; a real purge's way down
//! cannot, and Django's `RunPython(purge, noop)` does not try).

use std::io::Write;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::batched_backfill::{loop_twin, unless_marked, walk_options, walk_twin};
use super::{NaiveTwin, Recipe, RecipeResult, RunContext, with_banner};
use crate::backfill::{self, Job, PurgeSpec};

#[derive(Debug)]
pub struct BatchedDelete {
    /// The rows to delete, table by table, in this order.
    pub specs: &'static [PurgeSpec],
    /// Ids per batch unless `--batch-size` says otherwise.
    pub default_batch_size: u64,
    /// A table comment that says another migration deleted the rows (a
    /// risky one that ran for real, whose own way down restores them): the
    /// way down leaves a table that carries it as it is.
    pub kept_if: Option<&'static str>,
    /// The way down: SQL that re-creates the deleted rows of `table`
    /// (given once per spec, in the same order).
    pub restore: &'static [&'static str],
}

impl BatchedDelete {
    /// The restoring statements of the tables this recipe emptied: all but
    /// those marked [`BatchedDelete::kept_if`].
    fn restores_due(&self, conn: &mut PgConnection) -> QueryResult<Vec<&'static str>> {
        let mut due = Vec::new();
        for (spec, restore) in self.specs.iter().zip(self.restore) {
            if !super::marked(conn, spec.table, self.kept_if)? {
                due.push(*restore);
            }
        }
        Ok(due)
    }
}

impl Recipe for BatchedDelete {
    fn describe(&self) -> &'static str {
        "Delete in batches (Rust, one transaction per batch)"
    }

    fn label(&self) -> &'static str {
        "batched delete"
    }

    fn up(
        &self,
        conn: &mut PgConnection,
        run: RunContext<'_>,
        out: &mut dyn Write,
    ) -> RecipeResult {
        with_banner(out, "Deleting in batches", |out| {
            let options = walk_options(self.default_batch_size, run);
            backfill::purge(conn, self.specs, options, out).map(drop)
        })
    }

    fn down(
        &self,
        conn: &mut PgConnection,
        _: RunContext<'_>,
        out: &mut dyn Write,
    ) -> Option<RecipeResult> {
        Some(with_banner(out, "Restoring the deleted rows", |out| {
            for restore in self.restores_due(conn)? {
                let started = std::time::Instant::now();
                crate::timing::step_start(out, "Re-creating the deleted rows...")?;
                conn.batch_execute(restore)?;
                crate::timing::step_done(out, "✓ rows restored", started.elapsed())?;
            }
            Ok::<(), backfill::BackfillError>(())
        }))
    }

    fn twin_up(&self) -> String {
        let body: String = self
            .specs
            .iter()
            .map(|spec| {
                let statement = Job::Delete(spec).statement("lo", "lo + batch_size");
                format!(
                    "    -- {}: {}\n    {}\n",
                    spec.table,
                    spec.filter,
                    walk_twin(spec.table, &statement)
                )
            })
            .collect();
        loop_twin(
            "batched_delete.rs",
            "Deletes the rows,",
            self.default_batch_size,
            &body,
        )
    }

    fn twin_down(&self) -> Option<String> {
        let mut body = String::new();
        for (spec, restore) in self.specs.iter().zip(self.restore) {
            let restore = restore.trim_end().trim_end_matches(';');
            body.push_str(&format!("    -- {}: the deleted rows again\n", spec.table));
            body.push_str(&match self.kept_if {
                Some(marker) => unless_marked(spec.table, marker, &format!("{restore};")),
                None => format!("    {restore};\n"),
            });
        }
        Some(format!(
            "{}--\n-- The way down: re-creates the deleted rows.\nDO $$\nBEGIN\n{body}END $$;\n",
            super::twin_header("batched_delete.rs")
        ))
    }

    fn statements(&self, backwards: bool) -> Option<(String, Vec<String>)> {
        if backwards {
            return Some((
                "The deleted rows re-created:".to_owned(),
                self.restore.iter().map(|s| (*s).to_owned()).collect(),
            ));
        }
        Some((
            format!(
                "For each table, ids walked in ranges of {} (--batch-size), each DELETE committed on its own:",
                self.default_batch_size
            ),
            self.specs
                .iter()
                .map(|spec| Job::Delete(spec).statement("$1", "$2"))
                .collect(),
        ))
    }

    fn naive(&self) -> Option<NaiveTwin> {
        self.one_statement().map(|(_, sql)| NaiveTwin {
            name: "naive: one DELETE (rolled back)",
            sql,
            // after the recipe there is nothing left to delete
            before: true,
        })
    }

    fn one_statement(&self) -> Option<(&'static str, String)> {
        self.specs.last().map(|s| {
            (
                "one DELETE",
                format!("DELETE FROM {} WHERE {}", s.table, s.filter),
            )
        })
    }

    /// No row the filter matches is left.
    fn check(&self, conn: &mut PgConnection) -> QueryResult<Option<String>> {
        let mut left = Vec::new();
        for spec in self.specs {
            let count = backfill::rows_matching(conn, spec)?;
            if count > 0 {
                left.push(format!(
                    "{count} rows of {} where {}",
                    spec.table, spec.filter
                ));
            }
        }
        Ok((!left.is_empty()).then(|| format!("rows left to delete: {}", left.join(", "))))
    }
}
