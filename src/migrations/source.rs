//! One migration as diesel sees it: [`LabMigration`] implements
//! `Migration<Pg>`, so diesel's harness runs it, wraps it in a transaction when
//! its metadata says so, and records it in `__diesel_schema_migrations`.

use std::cell::RefCell;
use std::fmt;
use std::io::{self, Write};
use std::time::Instant;

use diesel::connection::BoxableConnection;
use diesel::connection::SimpleConnection;
use diesel::migration::{
    self, Migration, MigrationMetadata, MigrationName, MigrationSource, MigrationVersion,
};
use diesel::pg::Pg;
use diesel::prelude::*;

use crate::embedded::{SqlFiles, annotate};
use crate::recipes::{Recipe, RunContext, RunSettings};
use crate::retry::LockPolicy;
use crate::scenarios::Scenario;
use crate::timing;

/// A scenario's migration: its SQL files, or a Rust body where the scenario
/// asks for one, writing its timing lines to `out`.
pub struct LabMigration<'a> {
    files: &'static SqlFiles,
    recipe: Option<&'static dyn Recipe>,
    settings: RunSettings,
    /// The lock policy, or None for a migration that runs without one (the
    /// deliberately risky example).
    lock: Option<LockPolicy>,
    out: RefCell<Box<dyn Write + 'a>>,
    name: Name,
    metadata: Metadata,
}

impl<'a> LabMigration<'a> {
    pub fn new(
        scenario: &Scenario,
        files: &'static SqlFiles,
        settings: RunSettings,
        out: Box<dyn Write + 'a>,
    ) -> Self {
        Self {
            files,
            recipe: scenario.rust_migration(files.version),
            settings,
            lock: (files.version != scenario.risky).then_some(settings.lock),
            out: RefCell::new(out),
            name: Name(files),
            metadata: Metadata(files.run_in_transaction()),
        }
    }
}

/// Sends an annotated SQL file chunk by chunk, with its timing lines. Where
/// the file sets its own `lock_timeout` (for the diesel CLI), `lock` (the
/// lab's setting) is applied again after it, so `--lock-timeout` wins.
pub fn run_annotated(
    conn: &mut PgConnection,
    sql: &str,
    lock: Option<&LockPolicy>,
    out: &mut dyn Write,
) -> migration::Result<()> {
    let annotated = annotate(sql);
    if let Some(title) = &annotated.banner {
        timing::banner_start(out, title)?;
    }
    for chunk in &annotated.chunks {
        if let Some(start) = &chunk.start {
            timing::step_start(out, start)?;
        }
        let started = Instant::now();
        for (control, sql) in pieces(&chunk.sql) {
            if control {
                crate::pg_error::execute_plain(conn, &sql)?;
            } else {
                crate::pg_error::execute(conn, &sql)?;
            }
        }
        if let Some(policy) = lock.filter(|_| chunk.sql.contains("lock_timeout")) {
            conn.batch_execute(&format!("SET LOCAL lock_timeout = '{}'", policy.setting()))?;
        }
        if let Some(done) = &chunk.done {
            timing::step_done(out, done, started.elapsed())?;
        }
    }
    if annotated.banner.is_some() {
        timing::banner_end(out)?;
    }
    Ok(())
}

/// A chunk's SQL in the order it runs, its transaction control (`BEGIN;`,
/// `COMMIT;` on lines of their own, as the migrations write them) apart from
/// the statements around it: PL/pgSQL, which tags the statements' errors,
/// cannot run transaction control. Lines inside a dollar-quoted body (a
/// function's `BEGIN`) are never control. Pieces of only comments are left
/// out.
fn pieces(sql: &str) -> Vec<(bool, String)> {
    let mut quoted: Option<String> = None;
    let mut pieces: Vec<(bool, String)> = Vec::new();
    for line in sql.lines() {
        let word = line.trim().to_ascii_uppercase();
        let control = quoted.is_none()
            && matches!(
                word.as_str(),
                "BEGIN;" | "COMMIT;" | "ROLLBACK;" | "START TRANSACTION;"
            );
        for tag in dollar_tags(line) {
            match &quoted {
                Some(open) if *open == tag => quoted = None,
                None => quoted = Some(tag),
                Some(_) => {}
            }
        }
        match pieces.last_mut() {
            Some((false, text)) if !control => {
                text.push_str(line);
                text.push('\n');
            }
            _ => pieces.push((control, format!("{line}\n"))),
        }
    }
    pieces.retain(|(_, text)| {
        text.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with("--"))
    });
    pieces
}

/// The dollar-quote tags on a line (`$$`, `$body$`), in order.
fn dollar_tags(line: &str) -> Vec<String> {
    let code = line.split("--").next().unwrap_or_default();
    let mut tags = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find('$') {
        let after = &rest[start + 1..];
        let len = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if after[len..].starts_with('$') && !after[..len].starts_with(|c: char| c.is_ascii_digit())
        {
            tags.push(format!("${}$", &after[..len]));
            rest = &after[len + 1..];
        } else {
            rest = after;
        }
    }
    tags
}

fn typed(conn: &mut dyn BoxableConnection<Pg>) -> migration::Result<&mut PgConnection> {
    conn.downcast_mut::<PgConnection>()
        .ok_or_else(|| "the lab's migrations need a plain PgConnection".into())
}

impl LabMigration<'_> {
    fn context(&self) -> RunContext<'_> {
        RunContext {
            settings: &self.settings,
            lock: self.lock.as_ref(),
        }
    }
}

impl Migration<Pg> for LabMigration<'_> {
    fn run(&self, conn: &mut dyn BoxableConnection<Pg>) -> migration::Result<()> {
        let conn = typed(conn)?;
        let out = &mut **self.out.borrow_mut();
        match self.recipe {
            Some(recipe) => recipe.up(conn, self.context(), out),
            None => run_annotated(conn, self.files.up, self.lock.as_ref(), out),
        }
    }

    fn revert(&self, conn: &mut dyn BoxableConnection<Pg>) -> migration::Result<()> {
        let conn = typed(conn)?;
        let out = &mut **self.out.borrow_mut();
        match self
            .recipe
            .and_then(|recipe| recipe.down(conn, self.context(), out))
        {
            Some(done) => done,
            None => run_annotated(conn, self.files.down, self.lock.as_ref(), out),
        }
    }

    fn metadata(&self) -> &dyn MigrationMetadata {
        &self.metadata
    }

    fn name(&self) -> &dyn MigrationName {
        &self.name
    }
}

struct Name(&'static SqlFiles);

impl MigrationName for Name {
    fn version(&self) -> MigrationVersion<'_> {
        MigrationVersion::from(self.0.version)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

struct Metadata(bool);

impl MigrationMetadata for Metadata {
    fn run_in_transaction(&self) -> bool {
        self.0
    }
}

/// A scenario's migrations as a diesel `MigrationSource<Pg>`, for code that
/// wants `conn.run_pending_migrations(..)`; timing lines go to stdout.
pub struct ScenarioMigrations {
    pub scenario: &'static Scenario,
    pub settings: RunSettings,
}

impl MigrationSource<Pg> for ScenarioMigrations {
    fn migrations(&self) -> migration::Result<Vec<Box<dyn Migration<Pg>>>> {
        Ok(self
            .scenario
            .migrations()
            .iter()
            .map(|files| {
                Box::new(LabMigration::new(
                    self.scenario,
                    files,
                    self.settings,
                    Box::new(io::stdout()),
                )) as Box<dyn Migration<Pg>>
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_control_is_split_off_but_not_inside_a_function_body() {
        let sql = "BEGIN;\nSET LOCAL lock_timeout = '1s';\n-- a comment\nCREATE FUNCTION f() RETURNS trigger AS $$\nBEGIN\n  RETURN NEW;\nEND\n$$ LANGUAGE plpgsql;\nCOMMIT;\n-- only a comment\n";
        let got = pieces(sql);
        assert_eq!(
            got.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
            [true, false, true]
        );
        assert!(got[1].1.contains("BEGIN\n  RETURN NEW;"));
        assert_eq!(dollar_tags("AS $body$ x $1 $body$"), ["$body$", "$body$"]);
    }
}
