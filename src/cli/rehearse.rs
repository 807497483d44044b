//! `manage rehearse PATH`: your own migrations, measured under load.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use super::fresh::FreshDatabase;
use crate::localdb::{Durability, Throwaway};
use crate::rehearse::report::{self, Verdict};
use crate::rehearse::{self, Options, verdict::Budget};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 every measured migration kept to the budget; 1 one went over it or failed (PostgreSQL's error quoted, with the statement and its line); 2 the rehearsal could not run (bad path, unknown --from, server unreachable, parse error); 130 Ctrl-C.\n\nBy default it runs on a throwaway PostgreSQL of its own (removed after, even on Ctrl-C or kill -9). With --database-url it creates a database of its own on that server, works only in it, and drops it at the end.\n\nThe JSON (--json) is documented in docs/rehearse.md."
)]
pub struct Args {
    /// A Diesel migrations directory, a directory of .sql files, or one .sql file
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// The PostgreSQL major to rehearse on (13 to 18), in a throwaway
    /// cluster, installed on first use (default: the system's)
    #[arg(long, value_name = "MAJOR", conflicts_with = "database_url")]
    pub pg: Option<u32>,
    /// The first migration measured: a directory or file name, or a version
    /// (the ones before it are applied unmeasured; default: the last alone)
    #[arg(long, value_name = "MIGRATION")]
    pub from: Option<String>,
    /// The last migration measured (default: --from's, or the last)
    #[arg(long, value_name = "MIGRATION")]
    pub to: Option<String>,
    /// A migration before --from not to apply, as `migrate --fake` records
    /// one without running it; repeat for several
    #[arg(long, value_name = "MIGRATION", action = clap::ArgAction::Append)]
    pub skip: Vec<String>,
    /// Rows seeded into every table (N, default 100,000), or into one
    /// (TABLE=N); repeat for several
    #[arg(long, value_name = "N|TABLE=N", action = clap::ArgAction::Append)]
    pub rows: Vec<String>,
    /// Rehearse on this server instead, in a database of its own (created,
    /// used, dropped)
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Leave the rehearsal's database (or cluster) and say how to connect
    #[arg(long)]
    pub keep: bool,
    /// SQL clients of load on the tables the migrations touch
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub load: usize,
    /// Also probe your own endpoint (your app pointed at the rehearsal's database)
    #[arg(long, value_parser = super::parse_http_url, value_name = "URL")]
    pub probe_url: Option<String>,
    /// A transaction holds the first table the migrations touch when each
    /// starts, this long (e.g. 5s): the lock queue
    #[arg(long, value_parser = parse_duration, value_name = "DUR")]
    pub hold_lock: Option<Duration>,
    /// An autovacuum runs on the first table the migrations touch when each starts
    #[arg(long)]
    pub autovacuum: bool,
    /// Also a hot standby: its lag (a standby of the throwaway cluster, or
    /// REPLICA_URL's with --database-url)
    #[arg(long)]
    pub replica: bool,
    /// The longest the load may go without an answer
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DUR")]
    pub max_outage: Duration,
    /// The longest a lock the load needs may be held
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DUR")]
    pub max_lock: Duration,
    /// Production's rows in a table (TABLE=N), for predicted durations
    #[arg(long, value_name = "TABLE=N", action = clap::ArgAction::Append)]
    pub production_rows: Vec<String>,
    /// Your own value for a column the seeder gets wrong: TABLE.COLUMN=SQL,
    /// an expression of the row's number `i` (e.g.
    /// "orders.status=(ARRAY['new','paid'])[1 + i % 2]"); repeat for several
    #[arg(long, value_name = "TABLE.COLUMN=SQL", action = clap::ArgAction::Append)]
    pub value: Vec<String>,
    /// Read production's row counts from this database's statistics
    /// (reltuples, read-only), for predicted durations, and the indexes it
    /// never scanned (idx_scan 0), which the load does not read through
    #[arg(long, value_name = "URL")]
    pub scale_from: Option<String>,
    /// An index your application does not read through (production's
    /// idx_scan stands still): the load does not either; repeat for several
    #[arg(long, value_name = "NAME", action = clap::ArgAction::Append)]
    pub unused_index: Vec<String>,
    /// A load query that takes longer fails
    #[arg(long, value_parser = parse_duration, default_value = "3s", value_name = "DUR")]
    pub timeout: Duration,
    /// How long the load runs alone before the first migration (its baseline)
    #[arg(long, value_parser = parse_duration, default_value = "2s", value_name = "DUR")]
    pub settle: Duration,
    /// The whole report as JSON (documented in docs/rehearse.md)
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// A comment ready to paste into a pull request
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
    /// One self-contained page: the load's latency over time, a band per statement
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// `2`, `2s`, `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
        .ok_or_else(|| format!("must be a duration (2s, 500ms), got {text:?}"))
}

/// `N` for every table, `TABLE=N` for one.
fn rows(args: &[String]) -> anyhow::Result<(u64, BTreeMap<String, u64>)> {
    let mut all = 100_000;
    let mut per = BTreeMap::new();
    for arg in args {
        match arg.split_once('=') {
            Some((table, n)) => {
                let n = super::parse_count(n).map_err(|e| anyhow::anyhow!("--rows {arg}: {e}"))?;
                per.insert(table.to_owned(), n);
            }
            None => {
                all = super::parse_count(arg).map_err(|e| anyhow::anyhow!("--rows {arg}: {e}"))?
            }
        }
    }
    Ok((all, per))
}

/// `TABLE=N` pairs.
fn production(args: &[String]) -> anyhow::Result<BTreeMap<String, u64>> {
    args.iter()
        .map(|arg| {
            let (table, n) = arg
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--production-rows {arg}: must be TABLE=N"))?;
            let n = super::parse_count(n)
                .map_err(|e| anyhow::anyhow!("--production-rows {arg}: {e}"))?;
            Ok((table.to_owned(), n))
        })
        .collect()
}

/// `TABLE.COLUMN=SQL` pairs.
fn values(args: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    args.iter()
        .map(|arg| match arg.split_once('=') {
            Some((target, sql)) if target.contains('.') && !sql.trim().is_empty() => {
                Ok((target.to_owned(), sql.to_owned()))
            }
            _ => Err(anyhow::anyhow!("--value {arg}: must be TABLE.COLUMN=SQL")),
        })
        .collect()
}

/// What production's statistics say, read-only.
struct Production {
    rows: BTreeMap<String, u64>,
    /// Indexes it counted no scan of since its statistics were reset.
    unscanned: Vec<String>,
}

/// Production's row counts and unscanned indexes from its statistics.
fn scale_from(url: &str) -> anyhow::Result<Production> {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        rows: i64,
    }
    let mut conn = crate::db::connect(url).context("--scale-from")?;
    conn.batch_execute("SET default_transaction_read_only = on")?;
    let counts = diesel::sql_query(
        "SELECT c.relname::text AS name, greatest(c.reltuples, 0)::int8 AS rows
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .load::<Count>(&mut conn)?;
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let unscanned = diesel::sql_query(
        "SELECT indexrelname::text AS name FROM pg_stat_user_indexes WHERE idx_scan = 0",
    )
    .load::<Name>(&mut conn)?;
    Ok(Production {
        rows: counts
            .into_iter()
            .map(|c| (c.name, c.rows as u64))
            .collect(),
        unscanned: unscanned.into_iter().map(|n| n.name).collect(),
    })
}

pub fn run(args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    crate::interrupt::saying(
        "stopping the rehearsal: its database is dropped, nothing is reported...",
    );
    // what can be refused before a server is touched is refused first: exit 2
    let (options, plan) = match prepare(&args) {
        Ok(ready) => ready,
        Err(error) => return Ok(cannot(&error)),
    };
    if let Err(error) = crate::majors::choose(args.pg, out) {
        return Ok(cannot(&anyhow::Error::new(error)));
    }
    let place = match Place::new(&args) {
        Ok(place) => place,
        Err(error) => return Ok(cannot(&error)),
    };
    let databases = crate::db::Databases {
        primary: &place.database.url,
        replica: place.replica_url.as_deref(),
    };
    if let Some(url) = databases.replica {
        crate::instruments::replica::connect_when_there(url, Duration::from_secs(120))?;
    }
    let rehearsed = rehearse::rehearse(&plan, databases, &options, out);
    let report = match rehearsed {
        Ok(report) => report,
        Err(rehearse::RehearseError::Interrupted(stopped)) => return Err(stopped.into()),
        Err(error) => return Ok(cannot(&anyhow::Error::new(error))),
    };
    report::write_table(out, &report)?;
    write_files(&args, &report)?;
    if args.keep {
        place.keep(out)?;
    }
    Ok(match report.verdict {
        Verdict::WithinBudget => ExitCode::SUCCESS,
        Verdict::OverBudget => ExitCode::FAILURE,
    })
}

/// One line, exit 2: the rehearsal could not run.
fn cannot(error: &anyhow::Error) -> ExitCode {
    eprintln!("error: could not rehearse: {}", super::one_line(error));
    ExitCode::from(2)
}

/// The options from the flags, and the migrations read and parsed.
fn prepare(args: &Args) -> anyhow::Result<(Options, rehearse::Plan)> {
    let (all, per) = rows(&args.rows)?;
    let Production {
        rows: mut production_rows,
        unscanned,
    } = match &args.scale_from {
        Some(url) => scale_from(url)?,
        None => Production {
            rows: BTreeMap::new(),
            unscanned: Vec::new(),
        },
    };
    production_rows.extend(production(&args.production_rows)?);
    let mut unused_indexes = args.unused_index.clone();
    unused_indexes.extend(unscanned);
    let options = Options {
        path: args.path.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        skip: args.skip.clone(),
        rows: all,
        rows_for: per,
        load: args.load,
        probe_url: args.probe_url.clone(),
        hold_lock: args.hold_lock,
        autovacuum: args.autovacuum,
        budget: Budget {
            max_outage: args.max_outage,
            max_lock: args.max_lock,
        },
        production_rows,
        values: values(&args.value)?,
        unused_indexes,
        settle: args.settle,
        timeout: args.timeout,
    };
    let plan = rehearse::plan(&options)?;
    Ok((options, plan))
}

/// Where the rehearsal runs: a throwaway cluster of its own, or a database
/// of its own on the user's server; gone at the end unless kept.
struct Place {
    database: FreshDatabase,
    replica_url: Option<String>,
    // dropped after the database, which lives on them
    standby: Option<Throwaway>,
    cluster: Option<Throwaway>,
}

impl Place {
    fn new(args: &Args) -> anyhow::Result<Self> {
        let name = format!("risky_migrations_rehearsal_{}", std::process::id());
        let (server_url, cluster) = match &args.database_url {
            Some(url) => (url.clone(), None),
            None => {
                let base = std::env::temp_dir().join("risky_migrations");
                // an autovacuum to provoke must wake within seconds
                let settings: &[(&str, &str)] = match args.autovacuum {
                    true => &[("autovacuum_naptime", "1")],
                    false => &[],
                };
                let throwaway = Throwaway::start_with(&base, Durability::Real, settings)?;
                (throwaway.cluster.url("postgres"), Some(throwaway))
            }
        };
        let database = FreshDatabase::create(&server_url, &name, false)?.guarded();
        let (replica_url, standby) = match (args.replica, &cluster) {
            (false, _) => (None, None),
            (true, Some(primary)) => {
                let standby = primary.standby(Durability::Real)?;
                let url = super::fresh::with_database(&standby.cluster.url("postgres"), &name)?;
                (Some(url), Some(standby))
            }
            (true, None) => {
                let replica = std::env::var("REPLICA_URL").map_err(|_| {
                    anyhow::anyhow!("--replica with --database-url needs REPLICA_URL, a hot standby of that server")
                })?;
                (Some(super::fresh::with_database(&replica, &name)?), None)
            }
        };
        Ok(Place {
            database,
            replica_url,
            standby,
            cluster,
        })
    }

    /// Leaves everything where it is, and says how to connect.
    fn keep(self, out: &mut dyn Write) -> anyhow::Result<()> {
        let Place {
            database,
            standby,
            cluster,
            ..
        } = self;
        let url = database.keep();
        writeln!(
            out,
            "kept the rehearsal's database: psql {}",
            crate::db::redact_url(&url)
        )?;
        if let Some(cluster) = cluster {
            let kept = cluster.keep();
            writeln!(
                out,
                "its cluster keeps running: stop it with `pg_ctl -D {} stop`",
                kept.data_dir().display()
            )?;
        }
        if let Some(standby) = standby {
            let kept = standby.keep();
            writeln!(
                out,
                "and its standby: `pg_ctl -D {} stop`",
                kept.data_dir().display()
            )?;
        }
        Ok(())
    }
}

/// --json, --markdown, --html.
fn write_files(args: &Args, report: &report::Report) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.markdown {
        let mut text = Vec::new();
        report::write_markdown(&mut text, report)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, report::render_html(report))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
