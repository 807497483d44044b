//! `manage bench`: seeding, the backfill and the endpoint against their floors.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;

use super::fresh::{self, FreshDatabase};
use crate::bench::{self, BenchReport};
use crate::config::Project;
use crate::localdb::Throwaway;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Runs on a fresh database (<database>_bench_<project>) on the server DATABASE_URL points at, or on a throwaway PostgreSQL. The endpoint part needs wrk (apt-get install wrk). Writes bench.json, and the table in Markdown as bench.md, to --out."
)]
pub struct Args {
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
    /// Only these parts: seed, backfill, recipes, endpoint (comma-separated)
    #[arg(long, value_delimiter = ',', value_parser = ["seed", "backfill", "recipes", "endpoint"])]
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
    let wants = |part: &str| args.only.is_empty() || args.only.iter().any(|o| o == part);
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| project.root().join("target").join("bench"));
    // the parts write into it as they go (pgbench's files, the budgeted
    // backfill's lines), the report at the end
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    crate::interrupt::saying("stopping the benchmark: no figure from now on is measured...");
    // a part that Ctrl-C cut short measured nothing true (its tools got
    // the signal too): no report, the next run starts afresh
    let part = |name: &str, figures: Result<Vec<bench::Figure>, bench::BenchError>| {
        if crate::interrupt::requested() {
            return Err(anyhow::Error::new(crate::interrupt::Interrupted {
                during: format!("during the {name} part: nothing was written to bench.json"),
            }));
        }
        Ok::<_, anyhow::Error>(figures?)
    };
    let mut throwaway: Option<Throwaway> = None;
    let mut standby: Option<Throwaway> = None;
    let server_url = fresh::server_for(project, &mut throwaway, &status)?;
    let database_name = fresh::database_name(&server_url, "bench", name);
    let database = FreshDatabase::create(&server_url, &database_name, false)?;
    let replica_url = match args.replica {
        false => None,
        true => Some(fresh::with_database(
            &fresh::replica_server(project, &server_url, (&throwaway, &mut standby), &status)?,
            &database_name,
        )?),
    };
    let manage = std::env::current_exe().context("cannot find the manage executable")?;
    let mut conn = crate::db::connect(&database.url)?;
    crate::migrations::runner::migrate(
        &mut conn,
        project.scenario,
        Some(project.scenario.start),
        Default::default(),
        &mut std::io::sink(),
    )?;
    let postgres = crate::db::server_version(&mut conn)?;
    let mut figures = Vec::new();
    // every part needs the rows; the seeding part also measures them
    // against their floor
    if wants("seed") {
        figures.extend(part(
            "seeding",
            bench::seeding(&manage, &database.url, project.scenario, args.rows, &status),
        )?);
    } else {
        part(
            "seeding",
            bench::seed_rows(&manage, &database.url, project.scenario, args.rows, &status)
                .map(|_| Vec::new()),
        )?;
    }
    if wants("endpoint") {
        figures.extend(part(
            "endpoint",
            bench::endpoint(
                &database.url,
                project.scenario,
                args.endpoint_seconds,
                &dir,
                &status,
            ),
        )?);
    }
    if wants("backfill") {
        figures.extend(part(
            "backfill",
            bench::backfill(
                crate::db::Databases {
                    primary: &database.url,
                    replica: replica_url.as_deref(),
                },
                project.scenario,
                bench::backfill::Batches {
                    sizes: &args.batch_sizes,
                    time: args.batch_time,
                },
                bench::backfill::BudgetRun {
                    limits: args.budget.limits(args.replica),
                    log: &dir.join("budgeted-backfill.log"),
                },
                &status,
            ),
        )?);
    }
    if wants("recipes") {
        figures.extend(part(
            "recipes",
            bench::recipes(&database.url, project.scenario, &status),
        )?);
    }
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
