//! `manage rehearse`: the user's own migrations, measured under load
//! before they reach production.
//!
//! On a database of its own: the migrations before the measured ones are
//! applied as their tool applies them, unmeasured, to build the schema;
//! every table is seeded ([`seed`]); SQL load starts on the tables the
//! measured migrations touch ([`load`], a baseline first, so only what a
//! migration causes is charged to it); then each measured migration runs
//! as its tool runs it, statement by statement ([`trace`]), while the lab's
//! instruments watch; the verdict and advice come from [`verdict`], the
//! predictions from [`predict`], the output from [`report`].

pub mod load;
pub mod predict;
pub mod report;
pub mod seed;
pub mod source;
pub mod statements;
pub mod trace;
pub mod verdict;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::db::{self, Databases, DbError};
use crate::instruments::load::{LoadQuery, SqlLoadSetup};
use crate::instruments::probe::{self, Method};
use crate::instruments::{
    InstrumentError, Instruments, Measured, ProbeSpec, ReplicaSetup, Setup, Target,
};
use report::{MigrationReport, Report, StatementReport, Status, Verdict};
use source::{Migration, Mode, Source};
use statements::Statement;
use verdict::Budget;

/// What to rehearse, and how.
#[derive(Debug, Clone)]
pub struct Options {
    pub path: PathBuf,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Migrations before `from` not applied (`--skip`, as `migrate --fake`).
    pub skip: Vec<String>,
    /// Rows seeded into every table, and per table.
    pub rows: u64,
    pub rows_for: BTreeMap<String, u64>,
    /// SQL clients of load.
    pub load: usize,
    /// The user's own endpoint, probed as the demo probes its own.
    pub probe_url: Option<String>,
    /// A transaction holding the first touched table when each migration starts.
    pub hold_lock: Option<Duration>,
    /// An autovacuum running on the first touched table when each migration starts.
    pub autovacuum: bool,
    pub budget: Budget,
    /// Production's rows per table, for the predictions.
    pub production_rows: BTreeMap<String, u64>,
    /// The user's values for some columns: `table.column` to an SQL
    /// expression of the row's number `i`.
    pub values: BTreeMap<String, String>,
    /// Indexes the application does not read through (the user's word,
    /// or production's statistics): the load does not either.
    pub unused_indexes: Vec<String>,
    /// The baseline's length, and the pause between migrations.
    pub settle: Duration,
    /// A load query or request that takes longer fails.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RehearseError {
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Parse(#[from] statements::ParseError),
    #[error("{name}, before the measured migrations, fails: {error}")]
    Prefix { name: String, error: String },
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Instruments(#[from] InstrumentError),
    #[error(
        "--autovacuum needs autovacuum to wake within seconds (autovacuum_naptime is {0} here): rehearse on the throwaway cluster, which sets it to 1s"
    )]
    Naptime(String),
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
}

/// The migrations read, the measured ones chosen, and each measured one's
/// statements: everything that can be refused before a database is touched.
pub struct Plan {
    pub source: Source,
    pub measured: std::ops::RangeInclusive<usize>,
    pub statements: Vec<Vec<Statement>>,
    /// Migrations before the measured ones that are not applied: recorded
    /// without running, as `migrate --fake` does (`--skip`).
    pub skipped: Vec<usize>,
}

/// Reads and parses what `options` asks for.
pub fn plan(options: &Options) -> Result<Plan, RehearseError> {
    let source = source::read_path(&options.path)?;
    let measured = source::select(
        &source,
        &options.path,
        (options.from.as_deref(), options.to.as_deref()),
    )?;
    let statements = source.migrations[measured.clone()]
        .iter()
        .map(|m| statements::split(&m.name, &m.sql))
        .collect::<Result<_, _>>()?;
    let skipped = options
        .skip
        .iter()
        .map(|s| match source::find(&source, &options.path, s)? {
            i if i >= *measured.start() => Err(source::SourceError::SkipMeasured(s.clone())),
            i => Ok(i),
        })
        .collect::<Result<_, _>>()?;
    Ok(Plan {
        source,
        measured,
        statements,
        skipped,
    })
}

/// How a migration's statements are sent (see [`Mode`]).
fn mode(migration: &Migration, statements: &[Statement]) -> Mode {
    match migration.diesel_transaction {
        Some(true) => Mode::Transaction,
        Some(false) => Mode::OneString,
        None if statements.iter().any(Statement::refuses_transaction) => Mode::EachStatement,
        None => Mode::Transaction,
    }
}

/// Applies a migration before the measured ones, as its tool would.
fn apply_unmeasured(conn: &mut PgConnection, migration: &Migration) -> Result<(), RehearseError> {
    let failed = |error: String| RehearseError::Prefix {
        name: migration.name.clone(),
        error,
    };
    let statements =
        statements::split(&migration.name, &migration.sql).map_err(|e| failed(e.message))?;
    let sent = match mode(migration, &statements) {
        Mode::Transaction => conn.batch_execute(&format!("BEGIN;\n{}\n;COMMIT", migration.sql)),
        Mode::OneString => conn.batch_execute(&migration.sql),
        Mode::EachStatement => statements
            .iter()
            .try_for_each(|s| conn.batch_execute(&s.sql)),
    };
    sent.map_err(|error| {
        let _ = conn.batch_execute("ROLLBACK");
        failed(crate::pg_error::describe(&error))
    })
}

/// Each relation's table (an index's table, a table itself), by name.
type TablesOf = std::collections::HashMap<String, String>;

fn tables_of(conn: &mut PgConnection) -> QueryResult<TablesOf> {
    Ok(trace::relations(conn)?
        .into_values()
        .map(|r| (r.name, r.table))
        .collect())
}

/// The tables the measured statements name that exist now, seeded.
fn touched(plan: &Plan, tables: &[seed::Table], relations: &TablesOf) -> Vec<seed::Table> {
    let mut names: Vec<String> = plan
        .statements
        .iter()
        .flatten()
        .flat_map(|s| s.relations.iter())
        .map(|r| relations.get(r).cloned().unwrap_or_else(|| r.clone()))
        .collect();
    // a relation named in the text the parse tree keeps opaque (a DO
    // block's body, a function's) or an index named by the statement (DROP
    // INDEX, REINDEX) stands for its table
    for statement in plan.statements.iter().flatten() {
        for word in statement
            .sql
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        {
            if let Some(table) = relations.get(word) {
                names.push(table.clone());
            }
        }
    }
    tables
        .iter()
        .filter(|t| names.contains(&t.name))
        .cloned()
        .collect()
}

/// Runs each query once, before the baseline: those that fail then are
/// the generator's limits, dropped and reported, never charged to a
/// migration.
fn trial(conn: &mut PgConnection, queries: Vec<LoadQuery>) -> (Vec<LoadQuery>, Vec<String>) {
    let t0 = std::time::Instant::now();
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for query in queries {
        let sample = crate::instruments::load::run_query(conn, &query, 0, t0);
        match sample.ok {
            true => kept.push(query),
            false => dropped.push(format!(
                "{}: {}",
                query.label,
                sample.error.map(|e| e.to_string()).unwrap_or_default()
            )),
        }
    }
    (kept, dropped)
}

/// Provokes a real autovacuum on `table`: its thresholds to zero, its pace
/// slowed to a crawl, dead rows made; waits until a worker is on it.
fn provoke_autovacuum(conn: &mut PgConnection, table: &seed::Table) -> Result<(), RehearseError> {
    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        value: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        seconds: i32,
    }
    let naptime = diesel::sql_query(
        "SELECT current_setting('autovacuum_naptime') AS value, setting::int4 AS seconds FROM pg_settings WHERE name = 'autovacuum_naptime'",
    )
    .get_result::<Setting>(conn)?;
    if naptime.seconds > 5 {
        return Err(RehearseError::Naptime(naptime.value));
    }
    let column = table
        .updatable(&[])
        .map(db::quote_ident)
        .unwrap_or_default();
    conn.batch_execute(&format!(
        "ALTER TABLE {t} SET (autovacuum_vacuum_threshold = 0, autovacuum_vacuum_scale_factor = 0,
             autovacuum_vacuum_cost_delay = 100, autovacuum_vacuum_cost_limit = 1);
         UPDATE {t} SET {column} = {column} WHERE ctid IN (SELECT ctid FROM {t} LIMIT 1000)",
        t = table.qualified
    ))?;
    #[derive(QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(60) && !crate::interrupt::requested() {
        let on_it = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query LIKE '%{}%'",
            table.name.replace('\'', "''")
        ))
        .get_result::<Found>(conn)?;
        if on_it.n > 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// What the load and the instruments watch.
fn setup(
    databases: Databases<'_>,
    options: &Options,
    (watched, queries): (&[seed::Table], Vec<LoadQuery>),
) -> Setup {
    Setup {
        probes: options
            .probe_url
            .iter()
            .map(|url| ProbeSpec {
                label: "your endpoint".to_owned(),
                target: Target::Url(url.clone()),
                method: Method::Get,
                interval: Duration::from_millis(20),
                timeout: options.timeout,
            })
            .collect(),
        replica: databases
            .replica
            .zip(watched.first())
            .map(|(url, table)| ReplicaSetup {
                url: url.to_owned(),
                table: table.name.clone(),
            }),
        watch: watched.iter().map(|t| t.name.clone()).collect(),
        sql_load: Some(SqlLoadSetup {
            clients: options.load,
            queries,
            pause: Duration::from_millis(5),
            timeout: options.timeout,
        }),
        ..Setup::on(databases.primary)
    }
}

/// A migration as it ran: its statements' traces and how it ended.
struct Ran {
    mode: Mode,
    outcome: Option<trace::Outcome>,
}

/// The whole rehearsal on the (fresh, empty) database of `databases`;
/// what it does is said to `out` as it goes.
pub fn rehearse(
    plan: &Plan,
    databases: Databases<'_>,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Report, RehearseError> {
    let mut conn = db::connect(databases.primary)?;
    db::mark_migrator(&mut conn)?;
    crate::interrupt::on_ctrl_c_cancel(
        databases.primary,
        crate::interrupt::backend_pid(&mut conn)?,
    );
    let say = |out: &mut dyn Write, line: String| {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    let first = *plan.measured.start();
    say(
        out,
        format!("applying the {first} migrations before the measured ones (unmeasured)"),
    );
    for (i, migration) in plan.source.migrations[..first].iter().enumerate() {
        interrupted("while applying the migrations before the measured ones")?;
        if !plan.skipped.contains(&i) {
            apply_unmeasured(&mut conn, migration)?;
        }
    }
    let postgres = db::server_version(&mut conn)?;
    let version_num = db::server_version_num(&mut conn)?;
    say(
        out,
        "seeding every table (rows made from the catalog, triggers off):".to_owned(),
    );
    let tables = seed::tables(&mut conn, &planned_keys(plan), &options.values)?;
    let rows_for = |name: &str| options.rows_for.get(name).copied().unwrap_or(options.rows);
    let seeding = seed::seed(&mut conn, &tables, &rows_for, out)?;
    interrupted("while seeding")?;
    let relations = tables_of(&mut conn)?;
    let watched = touched(plan, &tables, &relations);
    let mut queries = Vec::new();
    let planned = planned_columns(plan);
    let none = load::Planned::default();
    for table in &watched {
        let planned = planned.get(&table.name).unwrap_or(&none);
        queries.extend(load::queries(
            &mut conn,
            table,
            (&seeding, planned, &options.unused_indexes),
        )?);
    }
    let (queries, dropped) = trial(&mut conn, queries);
    let labels: Vec<String> = queries.iter().map(|q| q.label.clone()).collect();
    say(
        out,
        load_line(options, &watched, labels.len(), dropped.len()),
    );
    let instruments = Instruments::start(setup(databases, options, (&watched, queries)))?;
    crate::interrupt::sleep(options.settle);
    let baseline_end = instruments.now_ms();
    let ran = run_measured(
        &mut conn,
        plan,
        (&instruments, &watched, databases),
        options,
        out,
    );
    let measured = instruments.finish();
    let ran = ran?;
    let rehearsed: BTreeMap<String, u64> = seeding
        .seeded
        .iter()
        .map(|s| (s.table.clone(), s.rows))
        .collect();
    let context = Context {
        plan,
        options,
        loaded: watched.iter().map(|t| t.name.clone()).collect(),
        rehearsed: &rehearsed,
        version_num,
        relations: &relations,
        baseline_end,
    };
    // each migration's load runs until the next one starts (or the end)
    let starts: Vec<f64> = ran
        .iter()
        .filter_map(|r| r.outcome.as_ref()?.traced.first().map(|t| t.start_ms))
        .skip(1)
        .chain([measured.end_ms])
        .collect();
    let migrations = ran
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let next = starts.get(i).copied().unwrap_or(measured.end_ms);
            migration_report(&context, (i, next), r, &measured)
        })
        .collect::<Vec<_>>();
    let all = measured_samples(&measured);
    let over = migrations
        .iter()
        .any(|m| m.over_budget || m.status != Status::Ok);
    Ok(Report {
        postgres,
        server_version_num: version_num,
        rows: rehearsed.clone(),
        verdict: if over {
            Verdict::OverBudget
        } else {
            Verdict::WithinBudget
        },
        budget: report::BudgetReport {
            max_outage_ms: options.budget.max_outage.as_secs_f64() * 1000.0,
            max_lock_ms: options.budget.max_lock.as_secs_f64() * 1000.0,
        },
        load: report::LoadReport {
            clients: options.load,
            requests: all.len(),
            failures: all.iter().filter(|s| !s.ok).count(),
            queries: labels,
            dropped,
            baseline: probe::summarize_during(&all, (0.0, baseline_end)),
        },
        migrations,
        seeding_problems: seeding
            .seeded
            .iter()
            .filter(|s| s.problem.is_some())
            .cloned()
            .collect(),
        ignored: plan.source.ignored.clone(),
        samples: all,
        end_ms: measured.end_ms,
    })
}

/// Every `ALTER TABLE` command the measured statements run (those in `DO`
/// blocks included), with the table it alters.
fn alter_commands(plan: &Plan) -> Vec<(&str, &pg_query::protobuf::AlterTableCmd)> {
    use pg_query::NodeEnum;
    let nodes = plan
        .statements
        .iter()
        .flatten()
        .flat_map(|s| s.node.iter().chain(&s.inner));
    let mut commands = Vec::new();
    for node in nodes {
        let NodeEnum::AlterTableStmt(alter) = node else {
            continue;
        };
        let Some(table) = &alter.relation else {
            continue;
        };
        for cmd in &alter.cmds {
            if let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node {
                commands.push((table.relname.as_str(), cmd.as_ref()));
            }
        }
    }
    commands
}

/// The names in a list of string nodes (a constraint's columns).
fn string_names(nodes: &[pg_query::protobuf::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(pg_query::NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The constraint an `ALTER TABLE .. ADD CONSTRAINT` command adds.
fn added_constraint(
    cmd: &pg_query::protobuf::AlterTableCmd,
) -> Option<&pg_query::protobuf::Constraint> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(pg_query::NodeEnum::Constraint(con)) => Some(con),
        _ => None,
    }
}

/// The foreign keys the measured statements add to existing columns
/// (`ALTER TABLE .. ADD [CONSTRAINT ..] FOREIGN KEY (..) REFERENCES ..`).
fn planned_keys(plan: &Plan) -> Vec<seed::PlannedKey> {
    use pg_query::protobuf::{AlterTableType, ConstrType};
    alter_commands(plan)
        .into_iter()
        .filter(|(_, cmd)| cmd.subtype == AlterTableType::AtAddConstraint as i32)
        .filter_map(|(table, cmd)| {
            let con = added_constraint(cmd)?;
            let parent = con.pktable.as_ref()?;
            (con.contype == ConstrType::ConstrForeign as i32).then(|| seed::PlannedKey {
                table: table.to_owned(),
                columns: string_names(&con.fk_attrs),
                parent: parent.relname.clone(),
                parent_columns: string_names(&con.pk_attrs),
            })
        })
        .collect()
}

/// What the measured statements are about to do to existing columns, by
/// table: make them NOT NULL (`SET NOT NULL`, a `CHECK (col IS NOT NULL)`,
/// PostgreSQL 18's `NOT NULL col` constraint), or drop them.
fn planned_columns(plan: &Plan) -> BTreeMap<String, load::Planned> {
    use pg_query::protobuf::{AlterTableType, ConstrType};
    let mut planned: BTreeMap<String, load::Planned> = BTreeMap::new();
    for (table, cmd) in alter_commands(plan) {
        let columns = planned.entry(table.to_owned()).or_default();
        if cmd.subtype == AlterTableType::AtSetNotNull as i32 {
            columns.required.push(cmd.name.clone());
        }
        if cmd.subtype == AlterTableType::AtDropColumn as i32 {
            columns.dropped.push(cmd.name.clone());
        }
        let Some(con) = added_constraint(cmd) else {
            continue;
        };
        if con.contype == ConstrType::ConstrNotnull as i32 {
            columns.required.extend(string_names(&con.keys));
        }
        columns
            .required
            .extend(not_null_checked(con.raw_expr.as_deref()));
    }
    planned
}

/// The columns a CHECK expression tests `IS NOT NULL`.
fn not_null_checked(expression: Option<&pg_query::protobuf::Node>) -> Vec<String> {
    use pg_query::NodeEnum;
    use pg_query::protobuf::NullTestType;
    let Some(expression) = expression.and_then(|e| e.node.as_ref()) else {
        return Vec::new();
    };
    let mut columns = Vec::new();
    for (node, ..) in expression.nodes() {
        if let pg_query::NodeRef::NullTest(test) = node
            && test.nulltesttype == NullTestType::IsNotNull as i32
            && let Some(NodeEnum::ColumnRef(column)) =
                test.arg.as_deref().and_then(|a| a.node.as_ref())
            && let Some(Some(NodeEnum::String(name))) =
                column.fields.last().map(|f| f.node.as_ref())
        {
            columns.push(name.sval.clone());
        }
    }
    columns
}

/// Fails with where Ctrl-C stopped the rehearsal, if it did.
fn interrupted(during: &str) -> Result<(), RehearseError> {
    match crate::interrupt::requested() {
        true => Err(crate::interrupt::Interrupted {
            during: during.to_owned(),
        }
        .into()),
        false => Ok(()),
    }
}

/// A duration with a tenth of a millisecond where it is under ten (a read
/// through an index takes a fraction of one).
fn fine_duration(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        crate::instruments::duration(ms)
    }
}

/// What the load will be, in one line.
fn load_line(options: &Options, watched: &[seed::Table], queries: usize, dropped: usize) -> String {
    let baseline = format!("a baseline of {:.1} s first", options.settle.as_secs_f64());
    if watched.is_empty() {
        return format!(
            "load: none (the measured migrations touch no table that exists before them); {baseline}"
        );
    }
    let tables: Vec<&str> = watched.iter().map(|t| t.name.as_str()).collect();
    let dropped = if dropped == 0 {
        String::new()
    } else {
        format!(", {dropped} dropped (they failed before any migration ran)")
    };
    format!(
        "load: {} clients on {} ({queries} queries){dropped}; {baseline}",
        options.load,
        tables.join(", ")
    )
}

/// Runs the measured migrations in order, each behind the conditions
/// asked for; after one fails, the rest are not run (as a deploy stops).
fn run_measured(
    conn: &mut PgConnection,
    plan: &Plan,
    (instruments, watched, databases): (&Instruments, &[seed::Table], Databases<'_>),
    options: &Options,
    out: &mut dyn Write,
) -> Result<Vec<Ran>, RehearseError> {
    let mut ran = Vec::new();
    let mut stopped = false;
    for (migration, statements) in plan.source.migrations[plan.measured.clone()]
        .iter()
        .zip(&plan.statements)
    {
        let mode = mode(migration, statements);
        if stopped {
            ran.push(Ran {
                mode,
                outcome: None,
            });
            continue;
        }
        interrupted(&format!("before {}", migration.name))?;
        let _ = writeln!(out, "{} ({})", migration.name, mode.words(statements.len()));
        if options.autovacuum
            && let Some(table) = watched.first()
        {
            provoke_autovacuum(conn, table)?;
        }
        let holder = match (options.hold_lock, watched.first()) {
            (Some(hold), Some(table)) => Some(crate::instruments::load::Holder::start(
                databases.primary,
                &table.qualified,
                hold,
            )?),
            _ => None,
        };
        let outcome = trace::run(conn, statements, mode, instruments)?;
        drop(holder);
        interrupted(&format!("during {}", migration.name))?;
        for (statement, traced) in statements.iter().zip(&outcome.traced) {
            let _ = writeln!(
                out,
                "  line {}: {} ({})",
                statement.line,
                statement.kind(),
                crate::instruments::duration(traced.end_ms - traced.start_ms)
            );
        }
        if let Some((_, error)) = &outcome.failed {
            let _ = writeln!(out, "  FAILED: {error}");
            stopped = true;
        }
        ran.push(Ran {
            mode,
            outcome: Some(outcome),
        });
        crate::interrupt::sleep(options.settle / 2);
    }
    Ok(ran)
}

/// Every sample the load and the probes took, in the order sent.
fn measured_samples(measured: &Measured) -> Vec<probe::Sample> {
    let mut all: Vec<probe::Sample> = measured
        .sql_load
        .as_ref()
        .map(crate::instruments::load::LoadMeasured::all)
        .unwrap_or_default();
    all.extend(measured.probes.iter().flat_map(|(_, s)| s.iter().cloned()));
    all.sort_by(|a, b| a.sent_ms.total_cmp(&b.sent_ms));
    all
}

/// The statement of a transaction that took the strongest lock on a table
/// the load uses (the first of equals): what the transaction leaves behind
/// is charged to it.
fn hardest<'a>(outcome: &'a trace::Outcome, loaded: &[String]) -> &'a trace::Traced {
    let strongest = |t: &trace::Traced| {
        t.locks
            .iter()
            .filter(|l| loaded.contains(&l.table))
            .map(|l| l.mode)
            .max()
    };
    let mut hardest = &outcome.traced[0];
    for traced in &outcome.traced[1..] {
        if strongest(traced) > strongest(hardest) {
            hardest = traced;
        }
    }
    hardest
}

/// What the report of each migration needs besides its own run.
struct Context<'a> {
    plan: &'a Plan,
    options: &'a Options,
    loaded: Vec<String>,
    rehearsed: &'a BTreeMap<String, u64>,
    version_num: u32,
    relations: &'a TablesOf,
    /// Where the load's baseline ends: what "slower" is measured against.
    baseline_end: f64,
}

fn migration_report(
    context: &Context<'_>,
    (index, next_start): (usize, f64),
    ran: &Ran,
    measured: &Measured,
) -> MigrationReport {
    let migration = &context.plan.source.migrations[*context.plan.measured.start() + index];
    let statements = &context.plan.statements[index];
    let mode_words = ran.mode.words(statements.len()).to_owned();
    let Some(outcome) = &ran.outcome else {
        return MigrationReport {
            name: migration.name.clone(),
            version: migration.version.clone(),
            in_transaction: ran.mode.in_transaction(statements.len()),
            mode: mode_words,
            status: Status::NotRun,
            error: None,
            duration_ms: 0.0,
            over_budget: false,
            statements: Vec::new(),
        };
    };
    let all = measured_samples(measured);
    let reports: Vec<StatementReport> = statements
        .iter()
        .zip(&outcome.traced)
        .enumerate()
        .map(|(i, (statement, traced))| {
            // what a statement leaves behind counts too (a dropped column
            // breaks writes after it): its load runs to the next one's start
            let until = outcome
                .traced
                .get(i + 1)
                .map_or(next_start, |next| next.start_ms);
            statement_report(
                context,
                (statement, traced, (until, next_start)),
                outcome,
                (&all, measured),
            )
        })
        .collect();
    let start = outcome.traced.first().map_or(0.0, |t| t.start_ms);
    MigrationReport {
        name: migration.name.clone(),
        version: migration.version.clone(),
        in_transaction: outcome.in_transaction,
        mode: mode_words,
        status: if outcome.failed.is_some() {
            Status::Failed
        } else {
            Status::Ok
        },
        error: outcome.failed.as_ref().map(|(i, error)| {
            let statement = &statements[*i];
            format!(
                "{error} (line {}: {})",
                statement.line,
                statement.sql.lines().next().unwrap_or_default()
            )
        }),
        duration_ms: outcome.released_ms - start,
        over_budget: reports.iter().any(|s| !s.over_budget.is_empty()),
        statements: reports,
    }
}

fn statement_report(
    context: &Context<'_>,
    (statement, traced, (until, next_start)): (&Statement, &trace::Traced, (f64, f64)),
    outcome: &trace::Outcome,
    (all, measured): (&[probe::Sample], &Measured),
) -> StatementReport {
    let window = (traced.start_ms, traced.end_ms);
    let charged = (traced.start_ms, until.max(traced.end_ms));
    let mut locks = traced.locks.clone();
    if !outcome.in_transaction {
        locks.extend(sampled_locks(
            &measured.lock_samples,
            &context.loaded,
            window,
        ));
    }
    let waits = context
        .loaded
        .iter()
        .map(|t| {
            crate::instruments::locks::summarize(
                &measured.lock_samples,
                t,
                window.0,
                window.1,
                10.0,
            )
        })
        .filter(|s| s.waited_ms > 0.0)
        .max_by(|a, b| a.waited_ms.total_cmp(&b.waited_ms));
    let in_window = probe::during(all, charged);
    let load = probe::summarize(&in_window, &[], charged.1);
    let errors = verdict::errors(&in_window);
    let own_ms = traced.end_ms - traced.start_ms;
    // the tables it names (an index standing for its table) and those it
    // locked (the parser names no table for some statements, REINDEX)
    let tables: Vec<String> = statement
        .relations
        .iter()
        .map(|r| {
            context
                .relations
                .get(r)
                .cloned()
                .unwrap_or_else(|| r.clone())
        })
        .chain(locks.iter().map(|l| l.table.clone()))
        .collect();
    // what grows with the table is its work, not its wait for the lock
    let working_ms = own_ms - waits.as_ref().map_or(0.0, |w| w.waited_ms).min(own_ms);
    let predicted_ms = predict::predict(
        statement,
        (working_ms, !traced.rewrote.is_empty()),
        &tables,
        (context.rehearsed, &context.options.production_rows),
    );
    let mut slowed = false;
    let mut over = verdict::over(
        &context.options.budget,
        (&load, &errors),
        &locks,
        &context.loaded,
    );
    if let Some(load) = &measured.sql_load {
        // what it left behind shows once its locks are gone: in a
        // transaction, from the commit (before it, queries wait for them),
        // charged to the statement that locked a loaded table hardest
        let after = if !outcome.in_transaction {
            (traced.end_ms, charged.1)
        } else if std::ptr::eq(traced, hardest(outcome, &context.loaded)) {
            (outcome.released_ms, next_start.max(outcome.released_ms))
        } else {
            (0.0, 0.0)
        };
        for slower in verdict::slower(&load.queries, (0.0, context.baseline_end), after) {
            slowed = true;
            over.push(format!(
                "the load's \"{}\" took {} a query before the migrations and {} after it (medians, {:.0}x): its plan lost what made it fast",
                slower.label,
                fine_duration(slower.before_ms),
                fine_duration(slower.after_ms),
                slower.after_ms / slower.before_ms
            ));
        }
    }
    if let Some(predicted) = predicted_ms {
        let rows_of = statement.node.as_ref().and_then(verdict::unbatched_write);
        over.extend(verdict::over_at_size(
            &context.options.budget,
            (&locks, &context.loaded),
            (own_ms, predicted),
            rows_of.as_deref(),
        ));
    }
    let mut advice = Vec::new();
    if !over.is_empty() {
        advice = verdict::advise(statement, context.version_num);
        if locks
            .iter()
            .any(|l| l.mode == crate::instruments::locks::LockMode::AccessExclusive)
        {
            advice.push(verdict::Advice {
                text: verdict::LOCK_TIMEOUT.to_owned(),
                project: Some("proj01_add_not_null_constraint".to_owned()),
                rewrite: None,
            });
        }
        if slowed {
            advice.push(verdict::Advice {
                text: verdict::SLOWER_ADVICE.to_owned(),
                project: Some("proj08_drop_indexes".to_owned()),
                rewrite: None,
            });
        }
        if errors.iter().any(|(e, _)| e.contains("deadlock detected")) {
            advice.push(verdict::Advice {
                text: verdict::DEADLOCK.to_owned(),
                project: Some("proj07_add_foreign_key".to_owned()),
                rewrite: None,
            });
        }
        if outcome.in_transaction && verdict::held_through_later(&locks, &context.loaded, own_ms) {
            advice.push(verdict::Advice {
                text: verdict::SPLIT.to_owned(),
                project: None,
                rewrite: None,
            });
        }
    }
    StatementReport {
        line: statement.line,
        sql: statement.sql.clone(),
        start_ms: traced.start_ms,
        duration_ms: traced.end_ms - traced.start_ms,
        locks: locks
            .iter()
            .map(|l| report::LockReport {
                relation: l.relation.clone(),
                mode: format!("{}Lock", l.mode),
                held_ms: l.held_ms,
            })
            .collect(),
        rewrote: traced.rewrote.clone(),
        waited_ms: waits.as_ref().map_or(0.0, |w| w.waited_ms),
        blockers: waits.and_then(|w| w.blocked_by),
        wal_bytes: traced.wal_bytes,
        load,
        over_budget: over,
        advice,
        predicted_ms,
    }
}

/// The locks the monitor saw the migrator hold on the loaded tables in a
/// window: a statement that committed alone can only be watched from
/// outside.
fn sampled_locks(
    samples: &[crate::instruments::locks::LockSample],
    loaded: &[String],
    (from, to): (f64, f64),
) -> Vec<trace::Held> {
    loaded
        .iter()
        .filter_map(|table| {
            let seen = crate::instruments::locks::summarize(samples, table, from, to, 10.0);
            seen.strongest.map(|mode| trace::Held {
                relation: table.clone(),
                table: table.clone(),
                mode,
                held_ms: seen.held_ms,
                sampled: true,
            })
        })
        .collect()
}
