//! `manage showmigrations [demoapp]`, in Django's format.

use std::io::Write;
use std::process::ExitCode;

use crate::config::Project;
use crate::migrations::runner::{self, MigrateError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Django's app label (there is one: demoapp)
    pub app_label: Option<String>,
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if let Some(app) = args.app_label.filter(|a| a != project.scenario.app_label()) {
        return Err(MigrateError::UnknownApp(app).into());
    }
    let mut conn = super::connect(project)?;
    runner::showmigrations(&mut conn, project.scenario, out)?;
    Ok(ExitCode::SUCCESS)
}
