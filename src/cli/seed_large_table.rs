//! `manage seed_large_table [--large-count N] [--batch-size B]`.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Project;
use crate::seed;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rows for the large table; the tables' rows are replaced, those
    /// written through the API too (default: the original's: 100,000,000
    /// for proj01, 10,000,000 for proj04, 5,000,000 for the others)
    #[arg(long, value_parser = super::parse_count, allow_hyphen_values = true, value_name = "N")]
    pub large_count: Option<u64>,
    /// Rows per COPY batch (default: the original command's)
    #[arg(long, value_parser = super::parse_positive, allow_hyphen_values = true, value_name = "B")]
    pub batch_size: Option<u64>,
    /// Seed even when the rows would not fit on the database's disk
    #[arg(long)]
    pub yes: bool,
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let plan = project.scenario.seed_plan();
    let mut conn = super::connect(project)?;
    // another project's tables are not this one's to fill
    crate::migrations::owner::check(&mut conn, project.scenario)?;
    let count = args.large_count.unwrap_or(plan.default_large_count);
    if !args.yes
        && let Some(disk) = seed::disk_estimate(&mut conn, plan, count)?
        && disk.needed > disk.free
    {
        anyhow::bail!(
            "{} rows need about {} on disk ({:.0} bytes a row, table and key), and the database's disk has {} free: not seeding (--yes to seed anyway)",
            indicatif::HumanCount(count),
            indicatif::HumanBytes(disk.needed as u64),
            disk.bytes_per_row,
            indicatif::HumanBytes(disk.free as u64)
        );
    }
    crate::interrupt::on_ctrl_c_cancel(
        &project.database_url,
        crate::interrupt::backend_pid(&mut conn)?,
    );
    crate::interrupt::saying("stopping the seed (it is rolled back whole)...");
    let seeded = seed::seed(
        &mut conn,
        plan,
        count,
        args.batch_size.unwrap_or(plan.default_batch_size),
        super::progress_wanted(),
        out,
    );
    match seeded {
        Ok(_) => Ok(ExitCode::SUCCESS),
        // one transaction: nothing of it committed, nothing before it lost
        Err(_) if crate::interrupt::requested() => Err(crate::interrupt::Interrupted {
            during: "while seeding: the seed is rolled back whole, the tables hold what they held before; run it again to seed"
                .to_owned(),
        }
        .into()),
        Err(error) => Err(error.into()),
    }
}
