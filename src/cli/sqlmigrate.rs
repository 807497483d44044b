//! `manage sqlmigrate [demoapp] MIGRATION [--backwards]`: needs no database.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Project;
use crate::migrations::runner::{self, MigrateError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// [APP_LABEL] MIGRATION (a name or a unique prefix: 0002)
    #[arg(num_args = 1..=2, required = true, value_name = "APP_LABEL|MIGRATION")]
    pub args: Vec<String>,
    /// Print the SQL of the way down
    #[arg(long)]
    pub backwards: bool,
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let scenario = project.scenario;
    // clap requires one or two arguments
    let name = match args.args.as_slice() {
        [app, name] if app == scenario.app_label() => name,
        [app, _] => return Err(MigrateError::UnknownApp(app.clone()).into()),
        [name, ..] => name,
        [] => return Err(anyhow::anyhow!("sqlmigrate needs a migration name")),
    };
    runner::sqlmigrate(scenario, name, args.backwards, out)?;
    Ok(ExitCode::SUCCESS)
}
