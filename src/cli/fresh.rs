//! Where the demo and the benchmark run: the server DATABASE_URL points at
//! when one answers there, else a throwaway cluster under `target/`; and on
//! it, a fresh database that is dropped at the end unless kept.

use anyhow::Context as _;
use diesel::Connection as _;
use diesel::connection::SimpleConnection;

use crate::config::Project;
use crate::localdb::{Durability, Throwaway};

/// The servers a run uses: DATABASE_URL's, or throwaway clusters started
/// on first need (a primary, and a standby of it), removed when dropped.
#[derive(Default)]
pub struct Place {
    throwaway: Option<Throwaway>,
    standby: Option<Throwaway>,
}

impl Place {
    /// The server for `project`, see [`server_for`].
    pub fn server(&mut self, project: &Project, status: &dyn Fn(&str)) -> anyhow::Result<String> {
        server_for(project, &mut self.throwaway, status)
    }

    /// A fresh database `<database>_<purpose>_<project>` on that server,
    /// and its copy on a standby when `replica`.
    pub fn fresh(
        &mut self,
        project: &Project,
        (purpose, replica, keep): (&str, bool, bool),
        status: &dyn Fn(&str),
    ) -> anyhow::Result<(FreshDatabase, Option<String>)> {
        let server_url = self.server(project, status)?;
        let name = database_name(&server_url, purpose, project.name());
        let database = FreshDatabase::create(&server_url, &name, keep)?;
        let replica_url = match replica {
            false => None,
            true => Some(with_database(
                &replica_server(
                    project,
                    &server_url,
                    (&self.throwaway, &mut self.standby),
                    status,
                )?,
                &name,
            )?),
        };
        Ok((database, replica_url))
    }
}

/// The server to use for `project`: DATABASE_URL's if it answers, else the
/// throwaway cluster (started on first need and kept in `throwaway`).
pub fn server_for(
    project: &Project,
    throwaway: &mut Option<Throwaway>,
    status: &dyn Fn(&str),
) -> anyhow::Result<String> {
    // `--pg MAJOR` asks for that major: the user's server may run another
    let chosen = crate::localdb::Binaries::chosen();
    if chosen.is_none() && crate::db::connect(&project.database_url).is_ok() {
        status(&format!(
            "using the server at {}",
            crate::db::describe_target(&project.database_url)
        ));
        return Ok(project.database_url.clone());
    }
    if throwaway.is_none() {
        status(match chosen {
            Some(_) => "--pg: starting a throwaway PostgreSQL of that major",
            None => "no server answers at DATABASE_URL: starting a throwaway PostgreSQL",
        });
        *throwaway = Some(Throwaway::start(
            &project.root().join("target").join("lab-pg"),
            Durability::Real,
        )?);
    }
    Ok(throwaway
        .as_ref()
        .map(|t| t.cluster.url("postgres"))
        .unwrap_or_default())
}

/// `url` with its database replaced.
pub fn with_database(url: &str, database: &str) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url).context("DATABASE_URL is not a URL")?;
    url.set_path(&format!("/{database}"));
    Ok(url.to_string())
}

/// `<database>_<purpose>_<project>`: named after the database DATABASE_URL
/// names, so runs against different databases of one server never collide.
pub fn database_name(server_url: &str, purpose: &str, project: &str) -> String {
    let base = url::Url::parse(server_url)
        .ok()
        .map(|u| u.path().trim_start_matches('/').to_owned())
        .filter(|d| !d.is_empty() && d != "postgres")
        .unwrap_or_else(|| "risky_migrations".to_owned());
    format!("{base}_{purpose}_{project}")
}

/// Drops the demo database when the demo ends, however it ends.
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    pub url: String,
    keep: bool,
    /// Drops it even if this process is killed (see [`Self::guarded`]).
    watchdog: Option<std::process::Child>,
}

impl FreshDatabase {
    pub fn create(server_url: &str, name: &str, keep: bool) -> anyhow::Result<Self> {
        let mut admin = crate::db::connect(server_url)?;
        // two queries: in one, they would be one implicit transaction, which DROP DATABASE refuses
        let quoted = crate::db::quote_ident(name);
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))?;
        admin.batch_execute(&format!("CREATE DATABASE {quoted}"))?;
        Ok(FreshDatabase {
            admin_url: server_url.to_owned(),
            name: name.to_owned(),
            url: with_database(server_url, name)?,
            keep,
            watchdog: None,
        })
    }

    /// Also dropped if this process is killed outright (`kill -9`): a
    /// watchdog process drops it with `psql` when this one is gone.
    pub fn guarded(mut self) -> Self {
        let psql = crate::localdb::Binaries::find()
            .map(|b| b.program("psql"))
            .ok()
            .filter(|p| p.is_file());
        if let (Some(psql), false) = (psql, self.keep) {
            let drop = format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                crate::db::quote_ident(&self.name)
            );
            // the URL and the statement travel in the environment: no
            // password on a command line
            let cleanup = format!(
                "{} -X -q -d \"$RISKY_ADMIN_URL\" -c \"$RISKY_DROP\" >/dev/null 2>&1",
                crate::localdb::shell_quote(&psql)
            );
            self.watchdog = crate::localdb::watchdog(
                &cleanup,
                &[("RISKY_ADMIN_URL", &self.admin_url), ("RISKY_DROP", &drop)],
            )
            .ok();
        }
        self
    }

    /// Leaves the database in place after the run.
    pub fn keep(mut self) -> String {
        self.keep = true;
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.url.clone()
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // the watchdog drops it itself when its pipe closes: wait for it
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
            return;
        }
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.admin_url) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                crate::db::quote_ident(&self.name)
            ));
        }
    }
}

/// The standby for `--replica`: one of the throwaway server when the lab
/// runs on it (started on first need), else REPLICA_URL's.
pub fn replica_server(
    project: &Project,
    server_url: &str,
    (primary, standby): (&Option<Throwaway>, &mut Option<Throwaway>),
    status: &dyn Fn(&str),
) -> anyhow::Result<String> {
    let throwaway = primary
        .as_ref()
        .filter(|t| t.cluster.url("postgres") == server_url);
    let Some(primary) = throwaway else {
        return project.replica_url.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "--replica on the server DATABASE_URL points at needs REPLICA_URL, a hot standby of it (or `manage localdb start --replica`)"
            )
        });
    };
    if standby.is_none() {
        status("starting a hot standby of the throwaway PostgreSQL");
        *standby = Some(primary.standby(crate::localdb::Durability::Real)?);
    }
    Ok(standby
        .as_ref()
        .map(|s| s.cluster.url("postgres"))
        .unwrap_or_default())
}
