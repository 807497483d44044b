//! Django's `migrate` semantics on diesel's migration table.
//!
//! `migrate [app] [TARGET]` moves the database forward or back to TARGET:
//! unapplied migrations up to it are applied in order, applied ones after it
//! are reverted newest first. TARGET is `zero`, a full name or a unique
//! prefix (`0003`); none means the latest. `--fake` records or unrecords
//! without running; `--plan` prints what would happen. The output keeps
//! Django's shape (`Operations to perform:`, `  Applying demoapp.X... OK`)
//! and adds what the lab measured: each migration's duration.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::time::Instant;

use diesel::connection::SimpleConnection;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_migrations::MigrationHarness;

use super::lock::MigratorLock;
use super::source::LabMigration;
use crate::embedded::{SqlFiles, annotate};
use crate::pg_error::Classify;
use crate::recipes::RunSettings;
use crate::retry;
use crate::scenarios::Scenario;
use crate::timing;

diesel::table! {
    __diesel_schema_migrations (version) {
        version -> VarChar,
        run_on -> Timestamp,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("No installed app with label '{0}'.")]
    UnknownApp(String),
    #[error("Cannot find a migration matching '{target}' from app '{app}' (known: {known})")]
    UnknownTarget {
        target: String,
        app: String,
        known: String,
    },
    #[error(
        "More than one migration matches '{target}' in app '{app}': {matches}. Please be more specific."
    )]
    Ambiguous {
        target: String,
        app: String,
        matches: String,
    },
    #[error(
        "{verb} {name} failed: {cause}. It is not recorded as done: run the same command again to {retry}"
    )]
    Failed {
        verb: &'static str,
        name: String,
        #[source]
        cause: Box<StepError>,
        retry: &'static str,
    },
    #[error(transparent)]
    Owner(#[from] super::owner::OwnerError),
    #[error(transparent)]
    Lock(#[from] super::lock::LockError),
    #[error(transparent)]
    LockSetup(#[from] retry::RetryError<diesel::result::Error>),
    #[error("interrupted (Ctrl-C) while waiting for the other migrator; nothing was run")]
    InterruptedWaiting,
    #[error(
        "{verb} {name} failed: {cause}. The schema already has what it adds (was it undone with --fake?): record it without running it, `manage migrate {version} --fake`"
    )]
    AlreadyThere {
        verb: &'static str,
        name: String,
        version: String,
        #[source]
        cause: Box<StepError>,
    },
    #[error("reading the migration table: {0}")]
    Table(String),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why one migration failed, as its steps raised it: kept typed, so a
/// caller can ask what it was (a backfill interrupted, a lock never got,
/// a database error), not only read it. (diesel's harness boxes a step's
/// error; a boxed error is not itself an `Error`, hence the wrapper.)
#[derive(Debug)]
pub struct StepError(pub retry::RetryError<Box<dyn std::error::Error + Send + Sync>>);

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            retry::RetryError::Failed(error) => error.fmt(f),
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for StepError {}

/// What Ctrl-C during a migration says when no step said more.
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C): what was running is rolled back")]
pub struct RolledBack;

/// Where `migrate` goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Latest,
    Zero,
    /// The index of a migration in the scenario's list.
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Unapply,
}

/// One planned move.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub files: &'static SqlFiles,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct MigrateOptions {
    pub fake: bool,
    pub plan: bool,
    pub settings: RunSettings,
}

/// Reads `[app] [target]` as Django does: one argument that is the app label
/// is the app, otherwise it is the target.
pub fn split_args<'a>(
    scenario: &Scenario,
    args: &'a [String],
) -> Result<Option<&'a str>, MigrateError> {
    match args {
        [] => Ok(None),
        [one] if one == scenario.app_label() => Ok(None),
        [one] => Ok(Some(one)),
        [app, target] if app == scenario.app_label() => Ok(Some(target)),
        [app, ..] => Err(MigrateError::UnknownApp(app.clone())),
    }
}

/// `zero`, a full migration name, or a unique prefix of one.
pub fn resolve_target(scenario: &Scenario, text: Option<&str>) -> Result<Target, MigrateError> {
    let Some(text) = text else {
        return Ok(Target::Latest);
    };
    if text == "zero" {
        return Ok(Target::Zero);
    }
    let migrations = scenario.migrations();
    if let Some(i) = migrations.iter().position(|m| m.name == text) {
        return Ok(Target::Index(i));
    }
    let matches: Vec<usize> = (0..migrations.len())
        .filter(|&i| migrations[i].name.starts_with(text))
        .collect();
    match matches.as_slice() {
        [i] => Ok(Target::Index(*i)),
        [] => Err(MigrateError::UnknownTarget {
            target: text.to_owned(),
            app: scenario.app_label().to_owned(),
            known: format!(
                "zero, {}",
                migrations
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
        many => Err(MigrateError::Ambiguous {
            target: text.to_owned(),
            app: scenario.app_label().to_owned(),
            matches: many
                .iter()
                .map(|&i| migrations[i].name)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The versions recorded in `__diesel_schema_migrations` (created if missing).
pub fn applied_versions(conn: &mut PgConnection) -> Result<BTreeSet<String>, MigrateError> {
    let applied = MigrationHarness::<Pg>::applied_migrations(conn)
        .map_err(|e| MigrateError::Table(e.to_string()))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// The moves that bring `applied` to `target`: applies first, in order, or
/// reverts, newest first.
pub fn plan(
    migrations: &'static [SqlFiles],
    applied: &BTreeSet<String>,
    target: Target,
) -> Vec<Step> {
    let keep = match target {
        Target::Latest => migrations.len(),
        Target::Zero => 0,
        Target::Index(i) => i + 1,
    };
    let is_applied = |m: &SqlFiles| applied.contains(m.version);
    let mut steps: Vec<Step> = migrations[keep..]
        .iter()
        .rev()
        .filter(|m| is_applied(m))
        .map(|files| Step {
            files,
            direction: Direction::Unapply,
        })
        .collect();
    steps.extend(
        migrations[..keep]
            .iter()
            .filter(|m| !is_applied(m))
            .map(|files| Step {
                files,
                direction: Direction::Apply,
            }),
    );
    steps
}

/// `manage migrate`: plans, then runs (or fakes, or prints) each step.
pub fn migrate(
    conn: &mut PgConnection,
    scenario: &Scenario,
    target_text: Option<&str>,
    options: MigrateOptions,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    let target = resolve_target(scenario, target_text)?;
    if options.plan {
        super::owner::check(conn, scenario)?;
        let applied = applied_versions(conn)?;
        return print_plan(
            scenario,
            &plan(scenario.migrations(), &applied, target),
            out,
        );
    }
    let lock = match MigratorLock::acquire(conn, out) {
        Err(_) if crate::interrupt::requested() => return Err(MigrateError::InterruptedWaiting),
        other => other?,
    };
    let result = migrate_locked(conn, scenario, target, options, out);
    let released = lock.release(conn);
    result?;
    released?;
    Ok(())
}

/// [`migrate`] with the migrator lock held: the history is read under it,
/// so what another migrator just did is not done twice.
fn migrate_locked(
    conn: &mut PgConnection,
    scenario: &Scenario,
    target: Target,
    options: MigrateOptions,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    // another project's history is neither read nor written
    super::owner::claim(conn, scenario, options.fake)?;
    let applied = applied_versions(conn)?;
    let steps = plan(scenario.migrations(), &applied, target);
    let app = scenario.app_label();
    writeln!(out, "Operations to perform:")?;
    match target {
        Target::Latest => writeln!(out, "  Apply all migrations: {app}")?,
        Target::Zero => writeln!(out, "  Unapply all migrations: {app}")?,
        Target::Index(i) => writeln!(
            out,
            "  Target specific migration: {}, from {app}",
            scenario.migrations()[i].name
        )?,
    }
    writeln!(out, "Running migrations:")?;
    if steps.is_empty() {
        writeln!(out, "  No migrations to apply.")?;
    }
    for step in steps {
        run_step(conn, scenario, step, options, out)?;
    }
    Ok(())
}

fn run_step(
    conn: &mut PgConnection,
    scenario: &Scenario,
    step: Step,
    options: MigrateOptions,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    let app = scenario.app_label();
    let verb = match step.direction {
        Direction::Apply => "Applying",
        Direction::Unapply => "Unapplying",
    };
    write!(out, "  {verb} {app}.{}...", step.files.name)?;
    out.flush()?;
    if options.fake {
        record(conn, step)?;
        writeln!(out, " FAKED")?;
        return Ok(());
    }
    // the deliberately risky migration runs as the seed ran it: no
    // lock_timeout; its way back is the lab's, and retries as the safe steps do
    let risky = step.files.version == scenario.risky && step.direction == Direction::Apply;
    let lock = match (!risky).then_some(options.settings.lock) {
        Some(policy) => Some(retry::set_lock_timeout(conn, &policy, out)?),
        None => {
            conn.batch_execute("SET lock_timeout = 0")?;
            None
        }
    };
    let options = MigrateOptions {
        settings: RunSettings {
            lock: lock.unwrap_or(options.settings.lock),
            ..options.settings
        },
        ..options
    };
    let started = Instant::now();
    let attempt = |conn: &mut PgConnection, out: &mut dyn Write| {
        let mut lines = FreshLine {
            inner: out,
            started: false,
        };
        let migration =
            LabMigration::new(scenario, step.files, options.settings, Box::new(&mut lines));
        match step.direction {
            Direction::Apply => MigrationHarness::<Pg>::run_migration(conn, &migration).map(drop),
            Direction::Unapply => {
                MigrationHarness::<Pg>::revert_migration(conn, &migration).map(drop)
            }
        }
    };
    // a transactional migration that hit its lock timeout was rolled back
    // whole: retry it whole (the Rust ones retry statement by statement)
    let result = match lock.filter(|_| step.files.run_in_transaction()) {
        Some(policy) => {
            let large = scenario.large_table();
            retry::with_retries(conn, &policy, large, out, attempt)
        }
        None => attempt(conn, out).map_err(retry::RetryError::Failed),
    };
    match result {
        Ok(()) => {
            writeln!(out, " OK ({})", timing::seconds(started.elapsed()))?;
            Ok(())
        }
        Err(error) => Err(failure(step, error, out)?),
    }
}

/// What a failed step says, and the error that carries it: interrupted
/// (the lab sent the cancel itself: no need to read the error for it),
/// already there (its undo was faked), or failed.
fn failure(
    step: Step,
    error: retry::RetryError<Box<dyn std::error::Error + Send + Sync>>,
    out: &mut dyn Write,
) -> Result<MigrateError, MigrateError> {
    let (verb, retry) = match step.direction {
        Direction::Apply => ("Applying", "finish it"),
        Direction::Unapply => ("Unapplying", "finish reverting it"),
    };
    let name = step.files.name.to_owned();
    if crate::interrupt::requested() {
        writeln!(out, " INTERRUPTED")?;
        // the backfill says where it stopped; anything else was rolled back
        let said = match &error {
            retry::RetryError::Failed(boxed) => boxed
                .downcast_ref::<crate::backfill::BackfillError>()
                .is_some_and(|e| matches!(e, crate::backfill::BackfillError::Interrupted { .. })),
            _ => false,
        };
        let cause = Box::new(StepError(if said {
            error
        } else {
            retry::RetryError::Failed(Box::new(RolledBack))
        }));
        return Ok(MigrateError::Failed {
            verb,
            name,
            cause,
            retry,
        });
    }
    writeln!(out, " FAILED")?;
    let already = matches!(&error, retry::RetryError::Failed(e)
        if e.condition() == crate::pg_error::Condition::AlreadyExists);
    Ok(if already && step.direction == Direction::Apply {
        MigrateError::AlreadyThere {
            verb,
            name,
            version: step.files.version.to_owned(),
            cause: Box::new(StepError(error)),
        }
    } else {
        MigrateError::Failed {
            verb,
            name,
            cause: Box::new(StepError(error)),
            retry,
        }
    })
}

/// Records (apply) or unrecords (unapply) a migration without running it.
fn record(conn: &mut PgConnection, step: Step) -> QueryResult<()> {
    use __diesel_schema_migrations::dsl;
    match step.direction {
        Direction::Apply => diesel::insert_into(dsl::__diesel_schema_migrations)
            .values(dsl::version.eq(step.files.version))
            .on_conflict_do_nothing()
            .execute(conn)
            .map(drop),
        Direction::Unapply => {
            diesel::delete(dsl::__diesel_schema_migrations.find(step.files.version))
                .execute(conn)
                .map(drop)
        }
    }
}

fn describe(scenario: &Scenario, files: &SqlFiles) -> String {
    match scenario.rust_migration(files.version) {
        Some(recipe) => recipe.describe().to_owned(),
        None => annotate(files.up)
            .banner
            .unwrap_or_else(|| "Raw SQL operation".to_owned()),
    }
}

fn print_plan(
    scenario: &Scenario,
    steps: &[Step],
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    writeln!(out, "Planned operations:")?;
    if steps.is_empty() {
        writeln!(out, "  No planned migration operations.")?;
    }
    for step in steps {
        let undo = if step.direction == Direction::Unapply {
            "Undo "
        } else {
            ""
        };
        writeln!(out, "{}.{}", scenario.app_label(), step.files.name)?;
        writeln!(out, "    {undo}{}", describe(scenario, step.files))?;
    }
    Ok(())
}

/// `manage showmigrations`, in Django's format.
pub fn showmigrations(
    conn: &mut PgConnection,
    scenario: &Scenario,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    super::owner::check(conn, scenario)?;
    let applied = applied_versions(conn)?;
    writeln!(out, "{}", scenario.app_label())?;
    for m in scenario.migrations() {
        let mark = if applied.contains(m.version) {
            'X'
        } else {
            ' '
        };
        writeln!(out, " [{mark}] {}", m.name)?;
    }
    Ok(())
}

/// `manage sqlmigrate`: the SQL `manage migrate` runs for one migration.
pub fn sqlmigrate(
    scenario: &'static Scenario,
    target: &str,
    backwards: bool,
    out: &mut dyn Write,
) -> Result<(), MigrateError> {
    let files = match resolve_target(scenario, Some(target))? {
        Target::Index(i) => &scenario.migrations()[i],
        Target::Zero | Target::Latest => {
            return Err(MigrateError::UnknownTarget {
                target: target.to_owned(),
                app: scenario.app_label().to_owned(),
                known: scenario
                    .migrations()
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    };
    let twin = |out: &mut dyn Write| {
        writeln!(
            out,
            "-- `manage migrate` runs this from Rust; the diesel CLI runs migrations/{}/{}.sql, its plain-SQL twin.",
            files.name,
            if backwards { "down" } else { "up" }
        )
    };
    let shown = scenario
        .rust_migration(files.version)
        .and_then(|recipe| recipe.statements(backwards));
    match shown {
        Some((comment, statements)) => {
            twin(out)?;
            writeln!(out, "-- {comment}")?;
            for statement in statements {
                writeln!(out, "{statement};")?;
            }
        }
        None => {
            let sql = if backwards { files.down } else { files.up };
            let wrap = files.run_in_transaction();
            if wrap {
                writeln!(out, "BEGIN;")?;
            }
            write!(out, "{sql}")?;
            if wrap {
                writeln!(out, "COMMIT;")?;
            }
        }
    }
    Ok(())
}

/// Starts a migration's own lines on a fresh line after `  Applying X...`,
/// as Django's output does when a migration prints.
struct FreshLine<'a> {
    inner: &'a mut dyn Write,
    started: bool,
}

impl Write for FreshLine<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.started && !buf.is_empty() {
            self.started = true;
            self.inner.write_all(b"\n")?;
        }
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
