//! `manage bench`: the three hot paths against their floors, in one run on
//! one cluster, as ratios.
//!
//! - Seeding: `seed_large_table` (a child process, so its peak RSS is its
//!   own) against `INSERT INTO <copy of the table> SELECT .. FROM
//!   generate_series`, the same rows with PostgreSQL doing all the work. Both
//!   are logged (crash-safe), both maintain the primary key while loading.
//!   Seeding also runs at a tenth of the rows, to show its memory is flat.
//! - Backfill: 0004 at several batch sizes, a read probe running, against
//!   one plain `UPDATE` of the whole table (rolled back), from the same
//!   vacuumed state each time.
//! - Endpoint: `wrk` on `/list_large/` against `pgbench` running the same
//!   SELECT on the same cluster.
//! - Recipes: each safe DDL recipe (an index built concurrently, a foreign
//!   key validated apart, NOT NULL through a check) against the one
//!   statement it does the work of (rolled back), a write probe running:
//!   what letting writes through costs in time, and what it spares them.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use crate::backfill::{self, BackfillOptions};
use crate::budget::{Limits, Paused};
use crate::db::{self, DbError};
use crate::demo::replica;
use crate::migrations::runner::{self, MigrateOptions};
use crate::probe::{self, Method, Probe, ProbeConfig, Sample};
use crate::recipes::BatchedBackfill;
use crate::retry::LockPolicy;
use crate::scenarios::Scenario;
use crate::timing;
use crate::web::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error(transparent)]
    Migrate(#[from] runner::MigrateError),
    #[error(transparent)]
    Backfill(#[from] backfill::BackfillError),
    #[error("{what}: {detail}")]
    Tool { what: String, detail: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One measured figure next to its floor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub name: String,
    pub ours: f64,
    pub floor: Option<f64>,
    pub unit: String,
    /// ours / floor (time: lower is better; throughput: higher is better).
    pub ratio: Option<f64>,
    pub target: String,
}

impl Figure {
    fn new(
        name: impl Into<String>,
        ours: f64,
        floor: Option<f64>,
        unit: &str,
        target: &str,
    ) -> Self {
        let ratio = floor.filter(|f| *f > 0.0).map(|f| ours / f);
        Figure {
            name: name.into(),
            ours,
            floor,
            unit: unit.to_owned(),
            ratio,
            target: target.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    pub project: String,
    pub rows: u64,
    pub postgres: String,
    pub figures: Vec<Figure>,
}

fn secs(since: Instant) -> f64 {
    since.elapsed().as_secs_f64()
}

/// Seeds `rows` rows with `manage seed_large_table`, as a user runs it, and
/// returns how many seconds it took and its peak memory in MiB (as the
/// command reports it: the peak of this process's children would count
/// whatever else it ran, initdb among them).
pub fn seed_rows(
    manage: &Path,
    database_url: &str,
    scenario: &Scenario,
    rows: u64,
    status: &dyn Fn(&str),
) -> Result<(f64, f64), BenchError> {
    status(&format!(
        "seeding {} rows (manage seed_large_table)",
        indicatif::HumanCount(rows)
    ));
    let started = Instant::now();
    let output = Command::new(manage)
        .env("DATABASE_URL", database_url)
        .args([
            "--project",
            scenario.project(),
            "seed_large_table",
            "--large-count",
            &rows.to_string(),
        ])
        .output()?;
    if !output.status.success() {
        return Err(BenchError::Tool {
            what: "seed_large_table".to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    let took = secs(started);
    let said = String::from_utf8_lossy(&output.stdout);
    let peak = said
        .rsplit_once("peak memory ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|mib| mib.parse::<f64>().ok())
        .ok_or_else(|| BenchError::Tool {
            what: "seed_large_table".to_owned(),
            detail: format!("no peak memory in its output: {said}"),
        })?;
    Ok((took, peak))
}

/// Seeding: ours (a child `manage seed_large_table`) against the floor.
pub fn seeding(
    manage: &Path,
    database_url: &str,
    scenario: &Scenario,
    rows: u64,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let plan = scenario.seed_plan();
    let seed = |n: u64| seed_rows(manage, database_url, scenario, n, status);
    let (_, small_rss) = seed((rows / 10).max(1))?;
    let (ours, large_rss) = seed(rows)?;

    status("the floor: INSERT .. SELECT generate_series into a copy of the table");
    let mut conn = db::connect(database_url)?;
    let large = plan.large().table;
    conn.batch_execute(&format!(
        "DROP TABLE IF EXISTS bench_floor; CREATE TABLE bench_floor (LIKE {large} INCLUDING ALL)"
    ))?;
    let started = Instant::now();
    diesel::sql_query(format!(
        "INSERT INTO bench_floor ({}) {}",
        plan.floor_columns, plan.floor_select
    ))
    .bind::<diesel::sql_types::BigInt, _>(rows as i64)
    .execute(&mut conn)?;
    let floor = secs(started);
    conn.batch_execute("DROP TABLE bench_floor")?;
    Ok(vec![
        Figure::new(
            format!("seed_large_table, {} rows", indicatif::HumanCount(rows)),
            ours,
            Some(floor),
            "s",
            "<= 1.3x",
        ),
        Figure::new(
            format!(
                "seeding peak RSS at {} rows vs at {}",
                indicatif::HumanCount(rows),
                indicatif::HumanCount((rows / 10).max(1))
            ),
            large_rss,
            Some(small_rss),
            "MiB",
            "flat (~1.0x)",
        ),
    ])
}

/// Where the backfill part runs: the database, and its standby if any.
#[derive(Debug, Clone, Copy)]
pub struct Servers<'a> {
    pub database_url: &'a str,
    pub replica_url: Option<&'a str>,
}

/// One measured run: when it ran, and when the standby had replayed it
/// (its end, without one): the lag a run causes lasts until then.
struct Run {
    name: String,
    from: f64,
    to: f64,
    replayed: f64,
    /// Within a budget: the time it paused.
    budget: Option<Paused>,
}

/// How long the bench waits for a standby to replay one run.
const REPLAY_PATIENCE: Duration = Duration::from_secs(600);

/// The backfill at each batch size, adapting to a batch time, within a
/// budget (`limits`; its lines go to `budget_log`), and the plain UPDATE,
/// with a read probe; with a standby, the lag each allowed.
pub fn backfill(
    servers: Servers<'_>,
    scenario: &'static Scenario,
    (batch_sizes, batch_time): (&[u64], Duration),
    (limits, budget_log): (Option<Limits>, &Path),
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let Some((backfill_version, recipe)) = scenario.rust_migrations.iter().find_map(|(v, r)| {
        r.as_any()
            .downcast_ref::<BatchedBackfill>()
            .map(|backfill| (*v, backfill))
    }) else {
        return Ok(Vec::new());
    };
    let Servers {
        database_url,
        replica_url,
    } = servers;
    let (specs, default_batch_size) = (recipe.specs, recipe.default_batch_size);
    let mut conn = just_before(database_url, scenario, backfill_version)?;
    let sink = &mut std::io::sink();

    let server = serve(database_url, scenario)?;
    let t0 = Instant::now();
    let reads = Probe::start(
        ProbeConfig::until_stopped(
            server.url(scenario.read_probe),
            Method::Get,
            Duration::from_millis(20),
            Duration::from_secs(3),
        ),
        t0,
        None,
    );
    let sampler = match replica_url {
        Some(url) => {
            replica::connect_when_there(url, REPLAY_PATIENCE)?;
            let sampler =
                replica::WalSampler::start((database_url, url), scenario.large_table(), t0)?;
            Some((url, sampler))
        }
        None => None,
    };
    // the standby level with the primary before a run, and the moment it
    // has replayed the run after it
    let replayed = || -> Result<f64, BenchError> {
        if let Some((url, _)) = &sampler {
            status("waiting for the standby to replay it");
            replica::caught_up(database_url, url, REPLAY_PATIENCE)?;
        }
        Ok(t0.elapsed().as_secs_f64() * 1000.0)
    };
    let large = scenario.large_table();
    let mut runs = Vec::new();
    let at = |t0: Instant| t0.elapsed().as_secs_f64() * 1000.0;
    let fixed = |size: u64| BackfillOptions {
        batch_size: size,
        batch_time: None,
        pause: Duration::ZERO,
        progress: false,
        lock: Some(LockPolicy::default()),
        vacuum_every: None,
        budget: Default::default(),
    };
    let adaptive = BackfillOptions {
        batch_time: Some(batch_time),
        ..fixed(default_batch_size)
    };
    let about = format!("batches of about {:.2} s", batch_time.as_secs_f64());
    let walks = batch_sizes
        .iter()
        .map(|&size| {
            let name = format!("batches of {}", indicatif::HumanCount(size));
            (name, fixed(size))
        })
        .chain([(about.clone(), adaptive)])
        .chain(limits.map(|limits| {
            (
                format!("{about} within a budget ({})", limits.words()),
                BackfillOptions {
                    budget: limits.on(
                        (database_url, replica_url),
                        &server.url(scenario.read_probe),
                    ),
                    ..adaptive
                },
            )
        }));
    for (name, run) in walks {
        conn.batch_execute(&format!("VACUUM ANALYZE {large}"))?;
        replayed()?;
        status(&format!("backfill, {name}"));
        let budgeted = run.budget.is_set();
        let mut log = match budgeted {
            true => Some(std::fs::File::create(budget_log)?),
            false => None,
        };
        let out: &mut dyn Write = match log.as_mut() {
            Some(file) => file,
            None => &mut *sink,
        };
        let from = at(t0);
        let filled = backfill::run(&mut conn, specs, run, out)?;
        let to = at(t0);
        runs.push(Run {
            name: format!("backfill {backfill_version}, {name}"),
            from,
            to,
            replayed: replayed()?,
            budget: budgeted.then_some(filled.paused),
        });
        status("clearing it again");
        backfill::revert(
            &mut conn,
            specs,
            BackfillOptions {
                batch_time: None,
                ..fixed(1_000_000)
            },
            sink,
        )?;
    }
    conn.batch_execute(&format!("VACUUM ANALYZE {large}"))?;
    replayed()?;
    status("the floor: one plain UPDATE of the whole table (rolled back)");
    let from = at(t0);
    if let Some(spec) = specs.last() {
        conn.batch_execute(&format!(
            "BEGIN; UPDATE {} SET {} = {}; ROLLBACK",
            spec.table, spec.column, spec.value
        ))?;
    }
    let to = at(t0);
    let floor = Run {
        name: "one plain UPDATE".to_owned(),
        from,
        to,
        replayed: replayed()?,
        budget: None,
    };
    let samples = reads.finish();
    let wal = sampler.map(|(_, sampler)| sampler.finish());
    drop(server);
    let max_lag = limits.and_then(|l| l.max_replica_lag);
    Ok(backfill_figures(
        &samples,
        wal.as_deref(),
        (runs, floor),
        max_lag,
    ))
}

/// Each DDL recipe's migration against the one statement it replaces,
/// from the same state, with writes probed all along.
pub fn recipes(
    database_url: &str,
    scenario: &'static Scenario,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    let measured: Vec<(&str, &dyn crate::recipes::Recipe, (&str, String))> = scenario
        .rust_migrations
        .iter()
        .filter_map(|(v, r)| r.one_statement().map(|one| (*v, *r, one)))
        .collect();
    if measured.is_empty() {
        return Ok(Vec::new());
    }
    let server = serve(database_url, scenario)?;
    let t0 = Instant::now();
    let writes = Probe::start(
        ProbeConfig::until_stopped(
            server.url(scenario.write_probe),
            Method::Post,
            Duration::from_millis(20),
            Duration::from_secs(10),
        ),
        t0,
        None,
    );
    let at = |t0: Instant| t0.elapsed().as_secs_f64() * 1000.0;
    let sink = &mut std::io::sink();
    let mut windows = Vec::new();
    for (version, recipe, (what, sql)) in measured {
        let mut conn = just_before(database_url, scenario, version)?;
        let before = scenario.version_before(version);
        conn.batch_execute(&format!("VACUUM ANALYZE {}", scenario.large_table()))?;
        status(&format!("{version} {}", recipe.label()));
        let start = at(t0);
        runner::migrate(
            &mut conn,
            scenario,
            Some(version),
            MigrateOptions::default(),
            sink,
        )?;
        let ours = (start, at(t0));
        runner::migrate(
            &mut conn,
            scenario,
            Some(before),
            MigrateOptions::default(),
            sink,
        )?;
        conn.batch_execute("SET lock_timeout = 0")?;
        conn.batch_execute(&format!("VACUUM ANALYZE {}", scenario.large_table()))?;
        status(&format!("the floor: {sql} (rolled back)"));
        let start = at(t0);
        conn.batch_execute(&format!("BEGIN; {sql}; ROLLBACK"))?;
        let floor = (start, at(t0));
        windows.push((format!("{version} {}", recipe.label()), what, ours, floor));
    }
    let samples = writes.finish();
    drop(server);
    let during = |window| probe::summarize_during(&samples, window);
    let mut figures = Vec::new();
    for (name, what, ours, floor) in windows {
        figures.push(Figure::new(
            format!("{name} vs one {what}"),
            (ours.1 - ours.0) / 1000.0,
            Some((floor.1 - floor.0) / 1000.0),
            "s",
            "the price of letting writes through",
        ));
        let (w_ours, w_floor) = (during(ours), during(floor));
        figures.push(Figure::new(
            format!(
                "  writes' max latency during it ({} of {} failed) vs during the one statement ({} of {})",
                w_ours.failures, w_ours.requests, w_floor.failures, w_floor.requests
            ),
            w_ours.max_ms,
            Some(w_floor.max_ms),
            "ms",
            "far below 1x",
        ));
    }
    Ok(figures)
}

/// A migrator's connection to the database on the safe path, just before
/// migration `version`: the risky step as the safe path takes it (run or
/// faked), then every step up to `version`.
fn just_before(
    database_url: &str,
    scenario: &'static Scenario,
    version: &str,
) -> Result<PgConnection, BenchError> {
    let mut conn = db::connect(database_url)?;
    db::mark_migrator(&mut conn)?;
    crate::interrupt::on_ctrl_c_cancel(database_url, crate::interrupt::backend_pid(&mut conn)?);
    let sink = &mut std::io::sink();
    let options = |fake| MigrateOptions {
        fake,
        ..MigrateOptions::default()
    };
    runner::migrate(
        &mut conn,
        scenario,
        Some(scenario.risky),
        options(scenario.safe_path_fakes_risky),
        sink,
    )?;
    let before = scenario.version_before(version);
    runner::migrate(&mut conn, scenario, Some(before), options(false), sink)?;
    // the benchmark's own VACUUMs wait for autovacuum like any maintenance
    // job (the runner left the migrations' short lock_timeout on the session)
    conn.batch_execute("SET lock_timeout = 0")?;
    Ok(conn)
}

/// Each backfill run's time against the plain UPDATE's, the reads' p99
/// during each, and with a standby, the lag each caused (until it was
/// replayed) and the WAL it wrote.
fn backfill_figures(
    samples: &[Sample],
    wal: Option<&[replica::WalSample]>,
    (runs, floor): (Vec<Run>, Run),
    max_lag: Option<Duration>,
) -> Vec<Figure> {
    let floor_s = (floor.to - floor.from) / 1000.0;
    let mut figures = Vec::new();
    let lag = |run: &Run, target: String, figures: &mut Vec<Figure>| {
        if let Some(wal) = wal {
            let (bytes, seconds, _) = replica::over(wal, (run.from, run.replayed));
            figures.push(Figure::new(
                format!(
                    "  replica lag: peak (it wrote {} of WAL)",
                    timing::mib(bytes)
                ),
                seconds,
                None,
                "s",
                &target,
            ));
        }
    };
    let reads = |run: &Run, target: &str, figures: &mut Vec<Figure>| {
        let reads = probe::summarize_during(samples, (run.from, run.to));
        figures.push(Figure::new(
            format!(
                "  reads during it: p99 ({} failed of {})",
                reads.failures, reads.requests
            ),
            reads.p99_ms,
            None,
            "ms",
            target,
        ));
    };
    for run in &runs {
        figures.push(Figure::new(
            run.name.clone(),
            (run.to - run.from) / 1000.0,
            Some(floor_s),
            "s",
            if run.budget.is_some() {
                "<= 2x"
            } else {
                "<= 1.5x"
            },
        ));
        if let Some(paused) = run.budget {
            figures.push(Figure::new(
                format!("  of which paused by the budget ({} pauses)", paused.pauses),
                paused.time.as_secs_f64(),
                None,
                "s",
                "",
            ));
        }
        reads(run, "< 100 ms, 0 failed", &mut figures);
        let limit = max_lag
            .filter(|_| run.budget.is_some())
            .map(|max| format!("its limit, {:.1} s", max.as_secs_f64()))
            .unwrap_or_default();
        lag(run, limit, &mut figures);
    }
    figures.push(Figure::new(
        format!("{} (the floor)", floor.name),
        floor_s,
        Some(floor_s),
        "s",
        "",
    ));
    reads(&floor, "", &mut figures);
    lag(&floor, String::new(), &mut figures);
    figures
}

/// Runs a tool, failing with its stderr.
fn tool(command: &mut Command, what: &str) -> Result<String, BenchError> {
    let output = command.output().map_err(|e| BenchError::Tool {
        what: what.to_owned(),
        detail: format!("cannot run it: {e}"),
    })?;
    if !output.status.success() {
        return Err(BenchError::Tool {
            what: what.to_owned(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `1.23ms`, `850.00us`, `1.02s` in milliseconds.
fn wrk_ms(text: &str) -> Option<f64> {
    let (number, scale) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// Requests/s, p50 and p99 (ms) from `wrk --latency` output.
pub fn parse_wrk(output: &str) -> Option<(f64, f64, f64)> {
    let rate = output
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|r| r.trim().parse().ok())?;
    let percentile = |p: &str| {
        output.lines().find_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next() == Some(p))
                .then(|| parts.next().and_then(wrk_ms))
                .flatten()
        })
    };
    Some((rate, percentile("50%")?, percentile("99%")?))
}

/// The server as `runserver` sets it up (pool size, workers), in-process.
fn serve(database_url: &str, scenario: &'static Scenario) -> std::io::Result<web::Running> {
    web::Running::spawn(
        AppState {
            pool: db::pool(database_url, db::default_pool_size()),
            scenario,
            release: crate::scenarios::Release::default(),
        },
        web::default_workers(),
    )
}

/// The endpoint under wrk against pgbench running its SELECT; pgbench's
/// script and logs go to `work_dir` (which exists).
pub fn endpoint(
    database_url: &str,
    scenario: &'static Scenario,
    seconds: u64,
    work_dir: &Path,
    status: &dyn Fn(&str),
) -> Result<Vec<Figure>, BenchError> {
    // a settled table: no autovacuum of the fresh rows during the measurement
    status("VACUUM ANALYZE before measuring");
    db::connect(database_url)?
        .batch_execute(&format!("VACUUM ANALYZE {}", scenario.large_table()))?;
    let server = serve(database_url, scenario)?;
    let path = scenario.read_probe;
    let url = server.url(path);
    let wrk = |seconds: u64| {
        let duration = format!("-d{seconds}s");
        tool(
            Command::new("wrk").args(["-t2", "-c16", &duration, "--latency", &url]),
            "wrk (apt-get install wrk)",
        )
    };
    status("warming up (wrk for 2 s, not counted)");
    wrk(2)?;
    status(&format!("wrk -t2 -c16 -d{seconds}s on {path}"));
    let out = wrk(seconds)?;
    drop(server);
    let (rate, p50, p99) = parse_wrk(&out).ok_or_else(|| BenchError::Tool {
        what: "wrk".to_owned(),
        detail: "unreadable output".to_owned(),
    })?;

    let script = work_dir.join("list_large.sql");
    std::fs::write(&script, pgbench_script(&(scenario.list_large_sql)()))?;
    let program = crate::localdb::Binaries::find()
        .map_err(|e| BenchError::Tool {
            what: "pgbench".to_owned(),
            detail: e.to_string(),
        })?
        .program("pgbench");
    let pgbench = |mode: &str| {
        status(&format!(
            "pgbench -M {mode} -c16 -j2 -T{seconds} running the same SELECT"
        ));
        run_pgbench(&program, database_url, mode, seconds, &script, work_dir)
    };
    // pgbench's default protocol is the floor the targets name; the server
    // prepares its statements, so the prepared floor is shown beside it
    let simple = pgbench("simple")?;
    let prepared = pgbench("prepared")?;
    /// Not measured here: the original Django dev server's figure, measured
    /// once on this kind of machine (DESIGN section 9), as a reference.
    const DJANGO_RPS: f64 = 217.0;
    Ok(vec![
        Figure::new(
            format!("{path} throughput (wrk -t2 -c16)"),
            rate,
            Some(simple.tps),
            "req/s",
            ">= 0.7x pgbench",
        ),
        Figure::new(
            "  vs pgbench -M prepared",
            rate,
            Some(prepared.tps),
            "req/s",
            "",
        ),
        Figure::new(
            "  vs Django's runserver (reference, not this run: 217 req/s once measured here)",
            rate,
            Some(DJANGO_RPS),
            "req/s",
            ">= 10x",
        ),
        Figure::new(
            format!("{path} p50 (pgbench: the SELECT alone)"),
            p50,
            simple.percentile(0.50),
            "ms",
            "",
        ),
        Figure::new(
            format!("{path} p99 (pgbench: the SELECT alone)"),
            p99,
            simple.percentile(0.99),
            "ms",
            "< 5 ms",
        ),
    ])
}

/// What a pgbench run measured.
struct Pgbench {
    tps: f64,
    /// Every transaction's latency (ms), sorted.
    latencies: Vec<f64>,
}

impl Pgbench {
    /// Nearest rank.
    fn percentile(&self, p: f64) -> Option<f64> {
        let rank = (self.latencies.len() as f64 * p).ceil() as usize;
        self.latencies.get(rank.saturating_sub(1)).copied()
    }
}

/// `pgbench -M <mode> -c16 -j2`, logging one transaction in a hundred for
/// the percentiles: logging every one cost pgbench 40% of its rate.
fn run_pgbench(
    program: &Path,
    database_url: &str,
    mode: &str,
    seconds: u64,
    script: &Path,
    work_dir: &Path,
) -> Result<Pgbench, BenchError> {
    let is_log = |e: &std::fs::DirEntry| e.file_name().to_string_lossy().starts_with("pgbench_log");
    for old in std::fs::read_dir(work_dir)?
        .filter_map(Result::ok)
        .filter(is_log)
    {
        std::fs::remove_file(old.path())?;
    }
    let out = tool(
        Command::new(program)
            .current_dir(work_dir)
            .args([
                "-n",
                "-M",
                mode,
                "-c16",
                "-j2",
                &format!("-T{seconds}"),
                "-l",
                "--sampling-rate=0.01",
                "--log-prefix=pgbench_log",
                "-f",
            ])
            .arg(script)
            .arg(database_url),
        "pgbench",
    )?;
    let tps: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| BenchError::Tool {
            what: "pgbench".to_owned(),
            detail: "no tps line".to_owned(),
        })?;
    let mut latencies: Vec<f64> = Vec::new();
    for log in std::fs::read_dir(work_dir)?
        .filter_map(Result::ok)
        .filter(is_log)
    {
        // client transaction latency_us ...
        latencies.extend(
            std::fs::read_to_string(log.path())?
                .lines()
                .filter_map(|line| line.split_whitespace().nth(2)?.parse::<f64>().ok())
                .map(|us| us / 1000.0),
        );
    }
    latencies.sort_by(f64::total_cmp);
    Ok(Pgbench { tps, latencies })
}

/// The SQL as a pgbench script. pgbench reads `:name` as a variable even
/// inside a string literal (`'HH24:MI:SS'`), which breaks `-M prepared`; a
/// literal's colons are written `\x3a` in an escape string instead, which
/// PostgreSQL reads as the same text.
fn pgbench_script(sql: &str) -> String {
    let mut script = String::with_capacity(sql.len() + 16);
    for (i, part) in sql.split('\'').enumerate() {
        if i > 0 {
            script.push('\'');
        }
        if i % 2 == 1 && part.contains(':') {
            // inside a literal: E'..' takes backslash escapes
            script.insert(script.len() - 1, 'E');
            script.push_str(&part.replace('\\', "\\\\").replace(':', "\\x3a"));
        } else {
            script.push_str(part);
        }
    }
    script.push_str(";\n");
    script
}

/// The table's cells: figure, ours, floor, ratio, target.
fn cells(report: &BenchReport) -> Vec<[String; 5]> {
    report
        .figures
        .iter()
        .map(|f| {
            let show = |v: f64| format!("{v:.2} {}", f.unit);
            [
                f.name.clone(),
                show(f.ours),
                f.floor.map_or_else(|| "-".to_owned(), show),
                f.ratio
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}x")),
                f.target.clone(),
            ]
        })
        .collect()
}

const HEADER: [&str; 5] = ["figure", "ours", "floor", "ratio", "target"];

fn title(report: &BenchReport) -> String {
    format!(
        "{}: {} rows, {}",
        report.project,
        indicatif::HumanCount(report.rows),
        report.postgres
    )
}

/// The benchmark's table, aligned for a terminal.
pub fn write_table(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
    let rows = cells(report);
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([HEADER[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..4).map(width).collect();
    writeln!(out, "\n{}", title(report))?;
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        writeln!(
            out,
            "{:<w0$}  {:>w1$}  {:>w2$}  {:>w3$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
        )?;
    }
    Ok(())
}

/// The same table in Markdown, as the README shows it.
pub fn write_markdown(out: &mut dyn Write, report: &BenchReport) -> std::io::Result<()> {
    writeln!(out, "{}\n", title(report))?;
    writeln!(out, "| {} |", HEADER.join(" | "))?;
    writeln!(out, "|---|---:|---:|---:|---|")?;
    for mut row in cells(report) {
        // an indented figure belongs to the one above it
        if let Some(sub) = row[0].strip_prefix("  ") {
            row[0] = format!("↳ {}", sub.trim());
        }
        writeln!(out, "| {} |", row.map(|c| c.trim().to_owned()).join(" | "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let out = "Running 10s test @ http://127.0.0.1:1/list_large/\n  Latency Distribution\n     50%  850.00us\n     75%    1.20ms\n     90%    2.00ms\n     99%    4.10ms\n  123 requests in 10.00s\nRequests/sec:  12345.67\n";
        assert_eq!(parse_wrk(out), Some((12345.67, 0.85, 4.1)));
        assert_eq!(wrk_ms("1.02s"), Some(1020.0));
    }

    #[test]
    fn pgbench_script_hides_colons_in_literals_only() {
        assert_eq!(
            pgbench_script("SELECT to_char(t::timestamptz, 'HH24:MI:SS'), 'a''b' FROM x"),
            "SELECT to_char(t::timestamptz, E'HH24\\x3aMI\\x3aSS'), 'a''b' FROM x;\n"
        );
    }
}
