//! `manage`: the talk's `python manage.py` commands, with Django's names.
//!
//! One file per subcommand, each an `Args` struct and a `run` function writing
//! to the `Write` it is given. [`main`] prints any error once, on one line,
//! and exits non-zero; it never panics on bad input.

pub mod bench;
pub mod demo;
pub mod docs;
pub mod fresh;
pub mod localdb;
pub mod migrate;
pub mod probe;
pub mod rehearse;
pub mod runserver;
pub mod seed_large_table;
pub mod showmigrations;
pub mod sqlmigrate;
pub mod versions;

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, Project};
use crate::db;

#[derive(Debug, Parser)]
#[command(
    name = "manage",
    version,
    about = "The risky_migrations lab: run the talk's migrations, fill their tables, serve and measure",
    after_help = "The project is --project, else PROJECT from the nearest .env. DATABASE_URL and PORT come from the project's .env; the environment overrides them."
)]
pub struct Cli {
    /// Project directory to act on (e.g. proj04_change_column_type)
    #[arg(long, global = true, value_name = "DIR")]
    pub project: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Move the database forward or back to a migration (Django's migrate)
    Migrate(migrate::Args),
    /// List migrations and whether they are applied
    Showmigrations(showmigrations::Args),
    /// Print the SQL a migration runs
    Sqlmigrate(sqlmigrate::Args),
    /// Fill the scenario's tables, the large one with --large-count rows (streams COPY)
    #[command(name = "seed_large_table")]
    SeedLargeTable(seed_large_table::Args),
    /// Serve the project's endpoints (Django's runserver)
    Runserver(runserver::Args),
    /// Start, stop or inspect a local PostgreSQL for this project
    Localdb(localdb::Args),
    /// Request an endpoint on a schedule and report failures, p99 and outages
    Probe(probe::Args),
    /// Run the talk's walkthroughs automated, and measure what each step costs
    Demo(demo::Args),
    /// Measure seeding, the backfill and the endpoint against their floors
    Bench(bench::Args),
    /// Rehearse your own migrations: what each statement locks, for how
    /// long, and what traffic feels, on realistic rows under load
    Rehearse(rehearse::Args),
    /// Rewrite the README's measured tables from one demo run's report.json
    Docs(docs::Args),
}

/// Parses the command line and runs it; errors become one line on stderr.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's message runs over lines (the missing arguments are on
            // the ones after "not provided:"): one line, up to its usage
            let rendered = e.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let line = if message.is_empty() {
                "error: bad arguments".to_owned()
            } else {
                message.join(" ")
            };
            eprintln!("{line} (see --help)");
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help and --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // the server's access log is for runserver; elsewhere it would drown the output
    init_logging(match cli.command {
        Command::Runserver(_) => SERVER_LOG,
        // the demo's server is meant to be starved of connections at times
        Command::Demo(_) | Command::Rehearse(_) => "error",
        _ => "warn",
    });
    let stdout = io::stdout();
    let mut out = stdout.lock();
    match run(cli, &mut out) {
        Ok(code) => code,
        // `manage probe | head`: the reader has gone, nothing to report
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            eprintln!("error: {}", one_line(&e));
            // stopped by the user, not failed: what a shell reports for SIGINT
            if crate::interrupt::requested() {
                ExitCode::from(crate::interrupt::EXIT_STATUS)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// The error chain on one line, each cause once.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause
            .to_string()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// The server's log: Django's one line per request, and warnings.
pub const SERVER_LOG: &str = "info,actix_server=warn";

/// Where the log goes instead of stderr while a command says so: the
/// demo's per-project log, so the server's errors (the point of a risky
/// step: the old release's reads failing) do not flood the console.
static LOG_FILE: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// Sends the log to `file` from now on (None: back to stderr).
pub fn log_to(file: Option<std::fs::File>) {
    if let Ok(mut sink) = LOG_FILE.lock() {
        *sink = file;
    }
}

/// The log's writer: the file [`log_to`] set, else stderr.
struct LogSink;

impl Write for LogSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match LOG_FILE.lock().ok().as_deref_mut().and_then(Option::as_mut) {
            Some(file) => file.write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Logs to stderr at `default` unless RUST_LOG says otherwise.
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogSink)
        // colours only for a person: a log file or a container's log gets plain text
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let here = || config::resolve_here(cli.project.as_deref());
    match cli.command {
        Command::Migrate(args) => migrate::run(&here()?, args, out),
        Command::Showmigrations(args) => showmigrations::run(&here()?, args, out),
        Command::Sqlmigrate(args) => sqlmigrate::run(&here()?, args, out),
        Command::SeedLargeTable(args) => seed_large_table::run(&here()?, args, out),
        Command::Runserver(args) => runserver::run(&here()?, args, out),
        // installing a major needs no project
        Command::Localdb(localdb::Args {
            action: localdb::Action::Install { major },
            ..
        }) => {
            crate::majors::install(major, out)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Localdb(args) => localdb::run(&here()?, args, out),
        Command::Bench(args) => bench::run(&here()?, args, out),
        // the user's migrations, anywhere: no project of the lab's
        Command::Rehearse(args) => rehearse::run(args, out),
        Command::Docs(args) => docs::run(here()?.root(), args, out),
        // a probe with --url needs no project
        Command::Probe(args) => {
            let target = match args.url {
                Some(_) => None,
                None => {
                    let project = here()?;
                    Some((project.port, project.scenario))
                }
            };
            probe::run(args, target, out)
        }
        // the demo runs every project unless one is named or it is run in
        // a project's directory, as every other command acts on that one
        Command::Demo(args) => {
            let cwd = std::env::current_dir().context("cannot find the current directory")?;
            let named = cli
                .project
                .clone()
                .or_else(|| config::enclosing_project(&cwd));
            let projects = match named.as_deref() {
                Some(name) => vec![config::resolve(Some(name), &cwd)?],
                None => crate::scenarios::all()
                    .iter()
                    .map(|s| config::resolve(Some(s.project()), &cwd))
                    .collect::<Result<_, _>>()?,
            };
            demo::run(&projects, args, out)
        }
    }
}

/// A connection to the project's database, or an error naming where it
/// looked and how to get a server.
pub fn connect(project: &Project) -> anyhow::Result<diesel::PgConnection> {
    db::connect(&project.database_url).map_err(|error| {
        anyhow::anyhow!(
            "{error}: start one with `manage localdb start` (or `docker compose up -d db` in {}/), or set DATABASE_URL",
            project.name()
        )
    })
}

/// Whether to draw progress bars: only for a person at a terminal.
pub fn progress_wanted() -> bool {
    io::stderr().is_terminal()
}

/// Parses a row count or batch size: `1000000`, `1_000_000` or `1,000,000`.
pub fn parse_count(text: &str) -> Result<u64, String> {
    let digits: String = text.chars().filter(|c| *c != '_' && *c != ',').collect();
    // rows are counted (and keyed) in bigint: at most i64::MAX of them
    let most = i64::MAX as u64;
    match digits.parse::<u64>() {
        Ok(n) if n <= most => Ok(n),
        Err(_) if digits.starts_with('-') => Err(format!("must be zero or more, got {text}")),
        Err(_) if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) => {
            Err(format!("must be a whole number, got {text:?}"))
        }
        _ => Err(format!(
            "is too large: at most {}, got {text}",
            indicatif::HumanCount(most)
        )),
    }
}

/// Parses a positive count (a batch size).
pub fn parse_positive(text: &str) -> Result<u64, String> {
    match parse_count(text)? {
        0 => Err("must be at least 1".to_owned()),
        n => Ok(n),
    }
}

/// How 0004 sizes its batches: shared by `migrate` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct BatchArgs {
    /// Rows per batch of the batched backfill (default: the scenario's)
    #[arg(long, value_parser = parse_positive, value_name = "N")]
    pub batch_size: Option<u64>,
    /// Grow or shrink the backfill's batches so each takes about this many seconds
    /// (e.g. 0.2); the first batch has --batch-size rows
    #[arg(long, value_parser = parse_positive_seconds, value_name = "SECONDS")]
    pub batch_time: Option<std::time::Duration>,
    /// VACUUM the table after every N rows the backfill fills, so the next
    /// batches reuse the space instead of the table growing by a copy
    #[arg(long, value_parser = parse_positive, value_name = "N")]
    pub vacuum_every: Option<u64>,
}

/// How safe migrations wait for locks: shared by `migrate` and `demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct LockArgs {
    /// Seconds a safe migration's statement waits for a lock before giving up
    /// and retrying (default: LOCK_TIMEOUT from .env, else 1)
    #[arg(long, value_parser = parse_seconds, value_name = "SECONDS")]
    pub lock_timeout: Option<std::time::Duration>,
    /// Retries after a lock timeout, with backoff and jitter, before failing
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub lock_retries: u32,
}

impl LockArgs {
    pub fn policy(&self, project: &Project) -> crate::retry::LockPolicy {
        crate::retry::LockPolicy {
            timeout: self.lock_timeout.unwrap_or(project.lock_timeout),
            retries: self.lock_retries,
            ..crate::retry::LockPolicy::default()
        }
    }
}

/// The limits a backfill keeps to between batches: shared by `migrate`,
/// `demo` and `bench`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct BudgetArgs {
    /// Keep the replicas within this many seconds of replay lag: the
    /// backfill pauses (and halves its batches) while one is further behind
    /// (every standby the primary streams to, and REPLICA_URL's)
    #[arg(long, value_parser = parse_positive_seconds, value_name = "SECONDS")]
    pub max_replica_lag: Option<std::time::Duration>,
    /// Let at most N sessions wait on the backfill's row locks at once (0:
    /// none): after a batch that blocked more, the batches halve and the
    /// backfill pauses as long as the longest of them waited
    #[arg(long, value_name = "N")]
    pub max_blocked_sessions: Option<u32>,
    /// Fetch this URL before each batch and pause while it fails (an error
    /// status or no answer within 5 s), like gh-ost's --throttle-http
    #[arg(long, value_parser = parse_http_url, value_name = "URL")]
    pub throttle_url: Option<String>,
    /// ... and while it answers slower than this many seconds (with
    /// --throttle-url; the demo times its own read endpoint by default)
    #[arg(long, value_parser = parse_positive_seconds, value_name = "SECONDS")]
    pub max_latency: Option<std::time::Duration>,
}

impl BudgetArgs {
    /// The budget for a backfill on `database_url`, with REPLICA_URL's standby.
    pub fn budget(&self, database_url: &str, replica_url: Option<&str>) -> crate::budget::Budget {
        use crate::budget::{Budget, HealthCheck, kept};
        Budget {
            max_replica_lag: self.max_replica_lag,
            replica_url: replica_url
                .filter(|_| self.max_replica_lag.is_some())
                .map(kept),
            max_blocked: self.max_blocked_sessions,
            database_url: self.max_blocked_sessions.map(|_| kept(database_url)),
            health: self.throttle_url.as_deref().map(|url| HealthCheck {
                url: kept(url),
                max_latency: self.max_latency,
            }),
        }
    }

    /// The limits of the demo's and the bench's budgeted backfill, if it
    /// runs (with `replica`, or any limit given): the ones given, and the
    /// lab's defaults for the others.
    pub fn limits(&self, replica: bool) -> Option<crate::budget::Limits> {
        let given = self.max_replica_lag.is_some()
            || self.max_blocked_sessions.is_some()
            || self.throttle_url.is_some()
            || self.max_latency.is_some();
        if !replica && !given {
            return None;
        }
        let own_endpoint = self.throttle_url.is_none();
        Some(crate::budget::Limits {
            max_replica_lag: self
                .max_replica_lag
                .or(replica.then_some(std::time::Duration::from_secs(1))),
            max_blocked: Some(self.max_blocked_sessions.unwrap_or(0)),
            throttle_url: self.throttle_url.as_deref().map(crate::budget::kept),
            max_latency: self.max_latency.or(own_endpoint.then_some(OWN_MAX_LATENCY)),
        })
    }
}

/// A slower answer from the lab's own read endpoint pauses the budgeted
/// backfill: far above its reads' usual few ms, well below a user's patience.
const OWN_MAX_LATENCY: std::time::Duration = std::time::Duration::from_millis(250);

/// Parses an http:// or https:// URL.
pub fn parse_http_url(text: &str) -> Result<String, String> {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.to_owned())
        }
        Ok(_) => Err(format!("must be an http:// or https:// URL, got {text:?}")),
        Err(e) => Err(format!("not a URL ({e}): {text:?}")),
    }
}

/// Parses seconds: `0.5`, `2`.
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(std::time::Duration::from_secs_f64)
        .ok_or_else(|| format!("must be a number of seconds, got {text:?}"))
}

/// Parses a number of seconds above zero (a target time).
pub fn parse_positive_seconds(text: &str) -> Result<std::time::Duration, String> {
    match parse_seconds(text)? {
        d if d.is_zero() => Err(format!("must be more than 0 seconds, got {text:?}")),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_budgeted_run_takes_the_labs_defaults_for_the_limits_not_given() {
        let none = BudgetArgs::default();
        assert!(none.limits(false).is_none(), "no replica, no limit: no run");
        let words = |args: &BudgetArgs, replica| args.limits(replica).map(|l| l.words());
        assert_eq!(
            words(&none, true).as_deref(),
            Some("replica lag 1s, 0 blocked, reads 250 ms")
        );
        let given = BudgetArgs {
            max_blocked_sessions: Some(2),
            throttle_url: Some("http://example.com/health".to_owned()),
            ..BudgetArgs::default()
        };
        assert_eq!(
            words(&given, false).as_deref(),
            Some("2 blocked, health answering")
        );
    }

    #[test]
    fn counts_parse_as_users_write_them() {
        assert_eq!(parse_count("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_count("1,000"), Ok(1000));
        assert!(parse_count("-5").unwrap_err().contains("zero or more"));
        assert!(parse_count("ten").unwrap_err().contains("whole number"));
        assert!(
            parse_count("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse_positive("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert_eq!(
            parse_seconds("0.5"),
            Ok(std::time::Duration::from_millis(500))
        );
    }
}
