//! Which project a command acts on, and where its database is.
//!
//! As the seeds' `cd projNN && python manage.py ...`: `--project <dir>` wins,
//! else `PROJECT` from the environment, else `PROJECT` from the nearest `.env`
//! (the current directory, then its parents). The project directory's own
//! `.env` then gives `DATABASE_URL` and `PORT`, and the environment overrides
//! both, as in the seeds' compose files. Nothing here mutates the process
//! environment, so tests can resolve several projects side by side.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::db::redact_url;
use crate::scenarios::{self, Scenario};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no project chosen: pass --project <dir> or set PROJECT in a .env (known projects: {known})"
    )]
    NoProject { known: String },
    #[error("unknown project {name:?} (known projects: {known})")]
    UnknownProject { name: String, known: String },
    #[error("project directory {name}/ not found in {start} or its parents")]
    ProjectDirNotFound { name: String, start: String },
    #[error("DATABASE_URL is not set: put it in {env_file} or the environment")]
    NoDatabaseUrl { env_file: String },
    #[error("cannot read {path}: {reason}")]
    EnvFile { path: String, reason: String },
    #[error("PORT must be a port number, got {0:?}")]
    BadPort(String),
    #[error("LOCK_TIMEOUT must be a duration such as 1s, 500ms or 0.5, got {0:?}")]
    BadLockTimeout(String),
    #[error("INDEX_WATCH must be a duration such as 11s or 3, got {0:?}")]
    BadIndexWatch(String),
    #[error("cannot find the current directory: {0}")]
    Cwd(std::io::Error),
}

/// A resolved project: its scenario, directory and database.
#[derive(Clone)]
pub struct Project {
    pub scenario: &'static Scenario,
    /// The project directory, holding `diesel.toml`, `.env` and `migrations/`.
    pub dir: PathBuf,
    pub database_url: String,
    /// A hot standby of that database (REPLICA_URL), if the user has one:
    /// what the backfill's `--max-replica-lag` watches besides the
    /// primary's `pg_stat_replication`.
    pub replica_url: Option<String>,
    /// The HTTP port the seed used (`runserver` without an address).
    pub port: u16,
    /// How long a safe migration's statement waits for a lock before it gives
    /// up and retries (`LOCK_TIMEOUT`, default 1 s).
    pub lock_timeout: std::time::Duration,
    /// How long an index's scan count must stand still before a migration
    /// drops it as unused (`INDEX_WATCH`, default 11 s).
    pub index_watch: std::time::Duration,
}

impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project")
            .field("name", &self.scenario.project())
            .field("dir", &self.dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("replica_url", &self.replica_url.as_deref().map(redact_url))
            .field("port", &self.port)
            .field("lock_timeout", &self.lock_timeout)
            .finish()
    }
}

impl Project {
    pub fn name(&self) -> &'static str {
        self.scenario.project()
    }

    /// The repository root: the project directory's parent.
    pub fn root(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }
}

/// Resolves the project from `--project`, the environment and `.env` files,
/// starting the `.env` search at `start` (normally the current directory).
pub fn resolve(flag: Option<&str>, start: &Path) -> Result<Project, ConfigError> {
    let known = || {
        scenarios::all()
            .iter()
            .map(|s| s.project())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = match flag
        .map(str::to_owned)
        .or_else(|| std::env::var("PROJECT").ok())
    {
        Some(name) => name,
        None => nearest_env(start)?
            .and_then(|vars| vars.get("PROJECT").cloned())
            .ok_or_else(|| ConfigError::NoProject { known: known() })?,
    };
    // a project directory given as a path (`../proj04_change_column_type/`)
    // names the project by its last component
    let name = Path::new(&name)
        .file_name()
        .and_then(|n| n.to_str())
        .map_or(name.clone(), str::to_owned);
    let scenario = scenarios::find(&name).ok_or_else(|| ConfigError::UnknownProject {
        name: name.clone(),
        known: known(),
    })?;
    let dir = find_project_dir(scenario.project(), start).ok_or_else(|| {
        ConfigError::ProjectDirNotFound {
            name: name.clone(),
            start: start.display().to_string(),
        }
    })?;
    let env_file = dir.join(".env");
    let vars = if env_file.is_file() {
        read_env(&env_file)?
    } else {
        HashMap::new()
    };
    let setting = |key: &str| std::env::var(key).ok().or_else(|| vars.get(key).cloned());
    let database_url = setting("DATABASE_URL").ok_or_else(|| ConfigError::NoDatabaseUrl {
        env_file: env_file.display().to_string(),
    })?;
    let port = match setting("PORT") {
        Some(p) => p.parse().map_err(|_| ConfigError::BadPort(p))?,
        None => scenario.default_port(),
    };
    let lock_timeout = match setting("LOCK_TIMEOUT") {
        Some(text) => parse_duration(&text).ok_or(ConfigError::BadLockTimeout(text))?,
        None => crate::retry::LockPolicy::default().timeout,
    };
    let index_watch = match setting("INDEX_WATCH") {
        Some(text) => parse_duration(&text)
            .filter(|d| !d.is_zero())
            .ok_or(ConfigError::BadIndexWatch(text))?,
        None => crate::recipes::drop_unused_index::DEFAULT_WATCH,
    };
    Ok(Project {
        scenario,
        dir,
        database_url,
        replica_url: setting("REPLICA_URL"),
        port,
        lock_timeout,
        index_watch,
    })
}

/// `1s`, `500ms`, or plain seconds (`0.5`).
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| std::time::Duration::from_secs_f64(n * scale))
}

/// Resolves from the current directory.
pub fn resolve_here(flag: Option<&str>) -> Result<Project, ConfigError> {
    let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
    resolve(flag, &cwd)
}

/// The project directory `start` is in (itself or an ancestor holding a
/// `diesel.toml`), by name: `manage demo` run there acts on that project only.
pub fn enclosing_project(start: &Path) -> Option<String> {
    start
        .ancestors()
        .find(|dir| dir.join("diesel.toml").is_file())
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .map(str::to_owned)
}

/// `start` or an ancestor named `name`, or `name/` inside one of them.
fn find_project_dir(name: &str, start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let is_project = |d: &Path| d.join("diesel.toml").is_file();
        if dir.file_name().is_some_and(|n| n == name) && is_project(dir) {
            Some(dir.to_path_buf())
        } else {
            let inside = dir.join(name);
            is_project(&inside).then_some(inside)
        }
    })
}

/// The variables of the nearest `.env` at or above `start`.
fn nearest_env(start: &Path) -> Result<Option<HashMap<String, String>>, ConfigError> {
    match start
        .ancestors()
        .map(|d| d.join(".env"))
        .find(|p| p.is_file())
    {
        Some(path) => read_env(&path).map(Some),
        None => Ok(None),
    }
}

fn read_env(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let error = |reason: String| ConfigError::EnvFile {
        path: path.display().to_string(),
        reason,
    };
    dotenvy::from_path_iter(path)
        .map_err(|e| error(e.to_string()))?
        .map(|item| item.map_err(|e| error(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enclosing_project_is_the_nearest_directory_with_diesel_toml() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert_eq!(
            enclosing_project(&root.join("proj04_change_column_type/migrations")).as_deref(),
            Some("proj04_change_column_type")
        );
        assert_eq!(enclosing_project(&root.join("src")), None);
    }

    #[test]
    fn lock_timeouts_read_as_people_write_them() {
        use std::time::Duration;
        assert_eq!(parse_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("-1s"), None);
    }
}
