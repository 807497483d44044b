//! `manage bench`: seeding, the backfill and the endpoint against their floors.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::fresh::Place;
use crate::bench::{self, BenchReport};
use crate::config::Project;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs on a fresh database (<database>_bench_<project>) on the server DATABASE_URL points at, or on a throwaway PostgreSQL. The endpoint part needs wrk (apt-get install wrk). Writes bench.json, and the table in Markdown as bench.md, to --out."
)]
pub struct Args {
    /// The PostgreSQL major to run on (13 to 18), in a throwaway cluster,
    /// installed on first use (default: the server at DATABASE_URL, else
    /// the system's)
    #[arg(long, value_name = "MAJOR")]
    pub pg: Option<u32>,
    /// Rows in the large table
    #[arg(long, value_parser = super::parse_count, default_value = "10000000", value_name = "N")]
    pub rows: u64,
    /// Backfill batch sizes to measure, comma-separated
    #[arg(long, value_delimiter = ',', value_parser = super::parse_positive, default_value = "10000,100000,1000000")]
    pub batch_sizes: Vec<u64>,
    /// Also measure batches that adapt to take about this many seconds each
    #[arg(long, value_parser = super::parse_positive_seconds, default_value = "0.2", value_name = "SECONDS")]
    pub batch_time: std::time::Duration,
    /// Seconds each load generator (wrk, pgbench) runs
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub endpoint_seconds: u64,
    /// Only these parts: seed, backfill, recipes, endpoint, instruments (comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = ["seed", "backfill", "recipes", "endpoint", "instruments"])]
    pub only: Vec<String>,
    /// Also a hot standby: the replay lag each backfill run causes, and a run
    /// within a budget (a standby of the throwaway server, or REPLICA_URL's
    /// beside DATABASE_URL's)
    #[arg(long)]
    pub replica: bool,
    /// With --replica or any of these limits, the backfill part adds a run
    /// within them (--max-replica-lag 1 with --replica,
    /// --max-blocked-sessions 0, and the bench's own read endpoint with
    /// --max-latency 0.25 unless given)
    #[command(flatten)]
    pub budget: super::BudgetArgs,
    /// Where bench.json, bench.md and pgbench's files go [default: target/bench]
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let name = project.name();
    let status = |message: &str| eprintln!("[bench {name}] {message}");
    crate::majors::choose(args.pg, out)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| project.root().join("target").join("bench"));
    // the parts write into it as they go (pgbench's files, the budgeted
    // backfill's lines), the report at the end
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::interrupt::saying("stopping the benchmark: no figure from now on is measured...");
    let mut place = Place::default();
    let (database, replica_url) = place.fresh(project, ("bench", args.replica, false), &status)?;
    let mut conn = crate::db::connect(&database.url)?;
    crate::migrations::runner::migrate(
        &mut conn,
        project.scenario,
        Some(project.scenario.start),
        Default::default(),
        &mut std::io::sink(),
    )?;
    let postgres = crate::db::server_version(&mut conn)?;
    let databases = crate::db::Databases {
        primary: &database.url,
        replica: replica_url.as_deref(),
    };
    let figures = parts(project, &args, databases, &dir, &status)?;
    let report = BenchReport {
        project: name.to_owned(),
        rows: args.rows,
        postgres,
        figures,
    };
    bench::write_table(out, &report)?;
    let json = dir.join("bench.json");
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let markdown = dir.join("bench.md");
    let mut table = Vec::new();
    bench::write_markdown(&mut table, &report)?;
    std::fs::write(&markdown, table).with_context(|| format!("writing {}", markdown.display()))?;
    writeln!(out, "\nreport: {} (and bench.md)", json.display())?;
    Ok(ExitCode::SUCCESS)
}

/// A part's figures; one that Ctrl-C cut short measured nothing true (its
/// tools got the signal too): no report, the next run starts afresh.
fn part(
    name: &str,
    figures: Result<Vec<bench::Figure>, bench::BenchError>,
) -> anyhow::Result<Vec<bench::Figure>> {
    if crate::interrupt::requested() {
        return Err(anyhow::Error::new(crate::interrupt::Interrupted {
            during: format!("during the {name} part: nothing was written to bench.json"),
        }));
    }
    Ok(figures?)
}

/// The parts asked for (all by default), in order, on the seeded table.
fn parts(
    project: &Project,
    args: &Args,
    databases: crate::db::Databases<'_>,
    dir: &Path,
    status: &dyn Fn(&str),
) -> anyhow::Result<Vec<bench::Figure>> {
    let wants = |part: &str| args.only.is_empty() || args.only.iter().any(|o| o == part);
    let (url, scenario) = (databases.primary, project.scenario);
    let manage = std::env::current_exe().context("cannot find the manage executable")?;
    let mut figures = Vec::new();
    // every part needs the rows; the seeding part also measures them
    // against their floor
    if wants("seed") {
        figures.extend(part(
            "seeding",
            bench::seeding(&manage, url, scenario, args.rows, status),
        )?);
    } else {
        let seeded = bench::seed_rows(&manage, url, scenario, args.rows, status);
        part("seeding", seeded.map(|_| Vec::new()))?;
    }
    if wants("endpoint") {
        let measured = bench::endpoint(url, scenario, args.endpoint_seconds, dir, status);
        figures.extend(part("endpoint", measured)?);
    }
    if wants("backfill") {
        let batches = bench::backfill::Batches {
            sizes: &args.batch_sizes,
            time: args.batch_time,
        };
        let budget = bench::backfill::BudgetRun {
            limits: args.budget.limits(args.replica),
            log: &dir.join("budgeted-backfill.log"),
        };
        let measured = bench::backfill(databases, scenario, batches, budget, status);
        figures.extend(part("backfill", measured)?);
    }
    if wants("instruments") {
        let measured = bench::instruments(
            databases,
            scenario,
            (args.rows, args.endpoint_seconds),
            status,
        );
        figures.extend(part("instruments", measured)?);
    }
    if wants("recipes") {
        figures.extend(part("recipes", bench::recipes(url, scenario, status))?);
    }
    Ok(figures)
}
