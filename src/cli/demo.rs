//! `manage demo`: the seeds' walkthroughs, automated and measured.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::fresh::Place;
use crate::config::Project;
use crate::demo::{self, DemoError, DemoOptions, report};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Uses the server DATABASE_URL points at when one answers there, else starts a throwaway PostgreSQL under target/. Each project runs on a fresh database, <database>_demo_<project> (risky_migrations_demo_proj04_change_column_type with the .env defaults), dropped at the end unless --keep."
)]
pub struct Args {
    /// The PostgreSQL major to run on (13 to 18), in a throwaway cluster,
    /// installed on first use (default: the server at DATABASE_URL, else
    /// the system's)
    #[arg(long, value_name = "MAJOR")]
    pub pg: Option<u32>,
    /// Run the demo on each of these majors (e.g. 13,14,15,16,17,18), one
    /// after the other, and write one table of every pattern on every
    /// major (versions.md in the report directory)
    #[arg(
        long,
        value_name = "MAJORS",
        value_delimiter = ',',
        conflicts_with = "pg"
    )]
    pub versions: Vec<u32>,
    /// Rows in the large table
    #[arg(long, value_parser = super::parse_count, default_value = "1000000", value_name = "N")]
    pub large_count: u64,
    /// Seconds between two requests of each probe (reads and writes)
    #[arg(long, value_parser = super::parse_seconds, default_value = "0.02", value_name = "SECONDS")]
    pub interval: Duration,
    /// Seconds before a request counts as failed
    #[arg(long, value_parser = super::parse_seconds, default_value = "3", value_name = "SECONDS")]
    pub timeout: Duration,
    #[command(flatten)]
    pub batches: super::BatchArgs,
    /// Seconds of baseline, and of pause after each step
    #[arg(long, value_parser = super::parse_seconds, default_value = "1", value_name = "SECONDS")]
    pub settle: Duration,
    /// Keep the demo databases
    #[arg(long)]
    pub keep: bool,
    /// Also a hot standby: the WAL each step writes, how far the standby
    /// falls behind, what readers served from it see (a standby of the
    /// throwaway server, or REPLICA_URL's beside DATABASE_URL's)
    #[arg(long)]
    pub replica: bool,
    /// With --replica or any of these limits, the backfill runs a second
    /// time on the same table within them (--max-replica-lag 1 with
    /// --replica, --max-blocked-sessions 0, and the demo's own read
    /// endpoint with --max-latency 0.25 unless given)
    #[command(flatten)]
    pub budget: super::BudgetArgs,
    #[command(flatten)]
    pub lock: super::LockArgs,
    /// Before each step, hold the large table in an open read transaction this
    /// many seconds: shows the lock queue (risky steps wait and take traffic
    /// down with them; safe steps time out, let traffic through, and retry)
    #[arg(long, value_parser = super::parse_seconds, value_name = "SECONDS")]
    pub hold_lock: Option<Duration>,
    /// Steady writers (an insert and an update each, every 10 ms) besides the write probe
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub writers: usize,
    /// Where report.json, report.html and the migration logs go (default: target/demo)
    #[arg(long, value_name = "DIR")]
    pub report_dir: Option<PathBuf>,
}

pub fn run(projects: &[Project], args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    crate::majors::choose(args.pg, out)?;
    let root = projects
        .first()
        .map(|p| p.root().to_path_buf())
        .unwrap_or_default();
    let report_dir = args
        .report_dir
        .clone()
        .unwrap_or_else(|| root.join("target").join("demo"));
    std::fs::create_dir_all(&report_dir)
        .with_context(|| format!("creating {}", report_dir.display()))?;
    if !args.versions.is_empty() {
        if let Some(major) = args
            .versions
            .iter()
            .find(|m| !crate::majors::SUPPORTED.contains(m))
        {
            anyhow::bail!(crate::majors::InstallError::Unsupported(*major));
        }
        return super::versions::run(&args.versions, &report_dir, out);
    }
    let options = options(&args, projects);
    crate::interrupt::saying(
        "stopping the demo: nothing from now on is measured (the step running is cancelled)...",
    );
    let mut place = Place::default();
    let mut reports = Vec::new();
    let mut interrupted = None;
    for project in projects {
        match run_one(project, &mut place, (&args, options), &report_dir, out)? {
            Ok(report) => reports.push(report),
            Err(stopped) => {
                interrupted = Some(stopped);
                break;
            }
        }
    }
    let report = report::DemoReport {
        generated_at: chrono::Local::now().to_rfc3339(),
        interrupted: interrupted.as_ref().map(|i| i.during.clone()),
        projects: reports,
    };
    write_reports(&report, &report_dir, out)?;
    if let Some(stopped) = interrupted {
        return Err(stopped.into());
    }
    let stopped: Vec<String> = report
        .projects
        .iter()
        .filter_map(|p| report::stopped_at(p).map(|step| format!("{}: {}", p.project, step.name)))
        .collect();
    if stopped.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    // measured and reported, but a safe path that could not finish is
    // the finding, not a success
    writeln!(
        out,
        "a safe path did not complete (its step gave up; the reports say why): {}",
        stopped.join("; ")
    )?;
    Ok(ExitCode::FAILURE)
}

/// The walkthrough's options from the flags.
fn options(args: &Args, projects: &[Project]) -> DemoOptions {
    DemoOptions {
        large_count: args.large_count,
        interval: args.interval,
        timeout: args.timeout,
        batch_size: args.batches.batch_size,
        batch_time: args.batches.batch_time,
        vacuum_every: args.batches.vacuum_every,
        settle: args.settle,
        progress: super::progress_wanted(),
        hold_lock: args.hold_lock,
        writers: args.writers,
        index_watch: projects.first().map(|p| p.index_watch),
        lock: match projects.first() {
            Some(project) => args.lock.policy(project),
            None => crate::retry::LockPolicy::default(),
        },
        budget: args.budget.limits(args.replica),
    }
}

/// One project's walkthrough on a fresh database, its table printed: its
/// report, or where Ctrl-C stopped it.
fn run_one(
    project: &Project,
    place: &mut Place,
    (args, options): (&Args, DemoOptions),
    report_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<Result<report::ProjectReport, crate::interrupt::Interrupted>> {
    let name = project.name();
    let status = |message: &str| eprintln!("[{name}] {message}");
    let (database, replica_url) =
        place.fresh(project, ("demo", args.replica, args.keep), &status)?;
    let log_path = report_dir.join(format!("{name}.log"));
    let mut log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    // the server's own errors go to the log; the console says how many
    // requests failed, step by step
    super::log_to(log.try_clone().ok());
    let databases = crate::db::Databases {
        primary: &database.url,
        replica: replica_url.as_deref(),
    };
    let ran = demo::run_project(project.scenario, databases, options, &mut log, &status);
    super::log_to(None);
    let report = match ran {
        Ok(report) => report,
        Err(DemoError::Interrupted(stopped)) => return Ok(Err(stopped)),
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!(
                "the {name} demo failed (its migration log: {})",
                log_path.display()
            )));
        }
    };
    report::write_table(out, &report)?;
    if args.keep {
        writeln!(
            out,
            "kept the database: {}",
            crate::db::redact_url(&database.url)
        )?;
    }
    out.flush()?;
    Ok(Ok(report))
}

/// report.json, report.html and report.md, and the summary on the console;
/// a report Ctrl-C cut short says so first, everywhere.
fn write_reports(
    report: &report::DemoReport,
    report_dir: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let json = report_dir.join("report.json");
    std::fs::write(&json, serde_json::to_string_pretty(report)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let html = report_dir.join("report.html");
    std::fs::write(&html, demo::html::render(report))
        .with_context(|| format!("writing {}", html.display()))?;
    if report.projects.len() > 1 {
        report::write_summary(out, &report.projects)?;
    }
    let incomplete = report::interrupted_line(report);
    let mut markdown = Vec::new();
    if let Some(line) = &incomplete {
        writeln!(markdown, "**{line}**\n")?;
    }
    report::write_summary_markdown(&mut markdown, &report.projects)?;
    for project in &report.projects {
        report::write_markdown(&mut markdown, project)?;
    }
    let md = report_dir.join("report.md");
    std::fs::write(&md, markdown).with_context(|| format!("writing {}", md.display()))?;
    writeln!(
        out,
        "\nreport: {}, {} and {}",
        json.display(),
        html.display(),
        md.display()
    )?;
    if let Some(line) = incomplete {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
