//! `manage migrate [demoapp] [TARGET] [--fake] [--plan]`.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::Project;
use crate::migrations::runner::{self, MigrateOptions};
use crate::recipes::RunSettings;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "TARGET is `zero`, a migration name or a unique prefix of one (0003); none means the latest.\nExamples: migrate demoapp 0001 | migrate 0002 --fake | migrate 0005 --batch-size 50000"
)]
pub struct Args {
    /// [APP_LABEL] [TARGET], as Django's migrate
    #[arg(num_args = 0..=2, value_name = "APP_LABEL|TARGET")]
    pub args: Vec<String>,
    /// Record (or unrecord) the migrations without running them
    #[arg(long)]
    pub fake: bool,
    /// Print what would run, and run nothing
    #[arg(long)]
    pub plan: bool,
    #[command(flatten)]
    pub batches: super::BatchArgs,
    /// Seconds to pause between backfill batches
    #[arg(long, value_parser = super::parse_seconds, default_value = "0", value_name = "SECONDS")]
    pub pause: Duration,
    #[command(flatten)]
    pub budget: super::BudgetArgs,
    #[command(flatten)]
    pub lock: super::LockArgs,
    /// How long an index's scans must stand still before a migration that
    /// drops an unused index drops it (default: INDEX_WATCH from .env, else
    /// 11; PostgreSQL reports an idle session's scans within 10 s)
    #[arg(long, value_parser = super::parse_positive_seconds, value_name = "SECONDS")]
    pub index_watch: Option<std::time::Duration>,
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let scenario = project.scenario;
    if args.budget.max_latency.is_some() && args.budget.throttle_url.is_none() {
        anyhow::bail!("--max-latency needs --throttle-url, the URL whose answers it times");
    }
    let target = runner::split_args(scenario, &args.args)?;
    // an unknown target is reported before anything touches the database
    runner::resolve_target(scenario, target)?;
    let mut conn = super::connect(project)?;
    crate::db::mark_migrator(&mut conn)?;
    crate::interrupt::on_ctrl_c_cancel(
        &project.database_url,
        crate::interrupt::backend_pid(&mut conn)?,
    );
    let options = MigrateOptions {
        fake: args.fake,
        plan: args.plan,
        settings: RunSettings {
            batch_size: args.batches.batch_size,
            batch_time: args.batches.batch_time,
            vacuum_every: args.batches.vacuum_every,
            pause: args.pause,
            progress: super::progress_wanted(),
            lock: args.lock.policy(project),
            budget: args
                .budget
                .budget(&project.database_url, project.replica_url.as_deref()),
            index_watch: Some(args.index_watch.unwrap_or(project.index_watch)),
        },
    };
    runner::migrate(&mut conn, scenario, target, options, out)?;
    Ok(ExitCode::SUCCESS)
}
