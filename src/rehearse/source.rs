//! The user's migrations, read as their tool runs them.
//!
//! - A Diesel directory: subdirectories holding `up.sql`, ordered as Diesel
//!   orders them (the version is the name before the first `_`, dashes
//!   removed: `2017-09-23-182408_x` is `20170923182408`), each in one
//!   transaction unless its `metadata.toml` says `run_in_transaction =
//!   false` (a file that exists without the key means no transaction too,
//!   as Diesel reads it). Loose files beside them are noted and ignored.
//! - A directory of plain `.sql` files, in name order, one migration each.
//! - One `.sql` file (`python manage.py sqlmigrate app 0042 > 0042.sql`;
//!   Rails, Flyway, sqlx and golang-migrate write plain SQL too).
//!
//! A plain file runs as Flyway runs it: in one transaction, unless it holds
//! a statement that cannot run in one; then statement by statement.

use std::path::{Path, PathBuf};

/// How a migration's statements are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One transaction (Diesel's default; Flyway's for a plain file).
    Transaction,
    /// Diesel with `run_in_transaction = false`: the file is one string
    /// sent at once, so several statements still run as one implicit
    /// transaction.
    OneString,
    /// Each statement on its own (a plain file holding a statement that
    /// cannot run in a transaction, as Flyway runs it).
    EachStatement,
}

impl Mode {
    /// Whether the statements share one transaction.
    pub fn in_transaction(self, statements: usize) -> bool {
        match self {
            Mode::Transaction => true,
            Mode::OneString => statements > 1,
            Mode::EachStatement => false,
        }
    }

    /// How a migration of `statements` statements runs, in words.
    pub fn words(self, statements: usize) -> &'static str {
        match (self, statements) {
            (Mode::Transaction, _) => "in one transaction",
            (Mode::OneString, 1) => "run_in_transaction = false: its one statement commits alone",
            (Mode::OneString, _) => {
                "run_in_transaction = false, yet sent as one string: its statements run as one implicit transaction"
            }
            (Mode::EachStatement, _) => {
                "statement by statement (it holds a statement that cannot run in a transaction)"
            }
        }
    }
}

/// One migration to rehearse.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The directory or file name.
    pub name: String,
    /// Diesel's version (a plain file's name without `.sql`).
    pub version: String,
    pub path: PathBuf,
    pub sql: String,
    /// Diesel's `run_in_transaction`, where the migration says; a plain
    /// file is decided once it is parsed ([`Mode`]).
    pub diesel_transaction: Option<bool>,
}

/// What was read, and what was passed over.
#[derive(Debug, Clone)]
pub struct Source {
    pub migrations: Vec<Migration>,
    /// Files beside a Diesel directory's migrations, ignored.
    pub ignored: Vec<String>,
    pub kind: SourceKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Diesel,
    PlainDirectory,
    PlainFile,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{0} does not exist")]
    Missing(String),
    #[error("{0} holds no migration (no subdirectory with up.sql, no .sql file)")]
    Empty(String),
    #[error("{path} is not a .sql file or a directory of migrations")]
    NotSql { path: String },
    #[error("migrations {a} and {b} share version {version}: Diesel would run only one of them")]
    SameVersion {
        a: String,
        b: String,
        version: String,
    },
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("no migration named or versioned {wanted:?} in {path} (first: {first}, last: {last})")]
    Unknown {
        wanted: String,
        path: String,
        first: String,
        last: String,
    },
    #[error("--from {from} comes after --to {to}")]
    Backwards { from: String, to: String },
    #[error("--skip {0}: only a migration before the measured ones can be skipped")]
    SkipMeasured(String),
}

/// Diesel's version of a migration directory name.
pub fn diesel_version(name: &str) -> String {
    name.split('_').next().unwrap_or(name).replace('-', "")
}

fn read(path: &Path) -> Result<String, SourceError> {
    std::fs::read_to_string(path).map_err(|error| SourceError::Read {
        path: path.display().to_string(),
        error,
    })
}

/// What `run_in_transaction` a `metadata.toml` says, as Diesel reads it:
/// present without the key means false.
fn metadata_transaction(text: &str) -> bool {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.split_once('='))
        .find(|(key, _)| key.trim() == "run_in_transaction")
        .is_some_and(|(_, value)| value.trim() == "true")
}

/// Reads PATH: a Diesel directory, a directory of `.sql` files, or one file.
pub fn read_path(path: &Path) -> Result<Source, SourceError> {
    let shown = || path.display().to_string();
    if !path.exists() {
        return Err(SourceError::Missing(shown()));
    }
    if path.is_file() {
        if path.extension().is_none_or(|e| e != "sql") {
            return Err(SourceError::NotSql { path: shown() });
        }
        return Ok(Source {
            migrations: vec![plain(path)?],
            ignored: Vec::new(),
            kind: SourceKind::PlainFile,
        });
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|error| SourceError::Read {
            path: shown(),
            error,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    entries.sort();
    let diesel: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.join("up.sql").is_file())
        .collect();
    if !diesel.is_empty() {
        let ignored = entries
            .iter()
            .filter(|p| !p.join("up.sql").is_file())
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        return Ok(Source {
            migrations: diesel_migrations(&diesel)?,
            ignored,
            kind: SourceKind::Diesel,
        });
    }
    let files: Vec<&PathBuf> = entries
        .iter()
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "sql"))
        .collect();
    if files.is_empty() {
        return Err(SourceError::Empty(shown()));
    }
    Ok(Source {
        migrations: files
            .into_iter()
            .map(|f| plain(f))
            .collect::<Result<_, _>>()?,
        ignored: Vec::new(),
        kind: SourceKind::PlainDirectory,
    })
}

/// Diesel's migrations, by version, refusing two with one version.
fn diesel_migrations(dirs: &[&PathBuf]) -> Result<Vec<Migration>, SourceError> {
    let mut migrations: Vec<Migration> = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let metadata = dir.join("metadata.toml");
        let transaction = match metadata.is_file() {
            true => metadata_transaction(&read(&metadata)?),
            false => true,
        };
        migrations.push(Migration {
            version: diesel_version(&name),
            sql: read(&dir.join("up.sql"))?,
            path: dir.join("up.sql"),
            name,
            diesel_transaction: Some(transaction),
        });
    }
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    for pair in migrations.windows(2) {
        if pair[0].version == pair[1].version {
            return Err(SourceError::SameVersion {
                a: pair[0].name.clone(),
                b: pair[1].name.clone(),
                version: pair[0].version.clone(),
            });
        }
    }
    Ok(migrations)
}

fn plain(path: &Path) -> Result<Migration, SourceError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Migration {
        version: name.trim_end_matches(".sql").to_owned(),
        sql: read(path)?,
        path: path.to_path_buf(),
        name,
        diesel_transaction: None,
    })
}

/// The migration `wanted` names: a name or a version, else (as Django's
/// migrate reads `0003`) a prefix of exactly one name.
pub fn find(source: &Source, path: &Path, wanted: &str) -> Result<usize, SourceError> {
    let exact = source.migrations.iter().position(|m| {
        m.name == wanted || m.version == wanted || m.version == wanted.replace('-', "")
    });
    let prefixed: Vec<usize> = (0..source.migrations.len())
        .filter(|&i| source.migrations[i].name.starts_with(wanted))
        .collect();
    let name = |m: Option<&Migration>| m.map(|m| m.name.clone()).unwrap_or_default();
    exact
        .or(match prefixed.as_slice() {
            [only] => Some(*only),
            _ => None,
        })
        .ok_or_else(|| SourceError::Unknown {
            wanted: wanted.to_owned(),
            path: path.display().to_string(),
            first: name(source.migrations.first()),
            last: name(source.migrations.last()),
        })
}

/// Which migrations are measured: `from..=to`, each as [`find`] reads it
/// (default: the last alone). Returns the index range.
pub fn select(
    source: &Source,
    path: &Path,
    (from, to): (Option<&str>, Option<&str>),
) -> Result<std::ops::RangeInclusive<usize>, SourceError> {
    let last = source.migrations.len().saturating_sub(1);
    let start = from.map(|f| find(source, path, f)).transpose()?;
    let end = to.map(|t| find(source, path, t)).transpose()?;
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, last),
        (None, Some(e)) => (e, e),
        (None, None) => (last, last),
    };
    if start > end {
        return Err(SourceError::Backwards {
            from: source.migrations[start].name.clone(),
            to: source.migrations[end].name.clone(),
        });
    }
    Ok(start..=end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_as_diesel_reads_them() {
        assert_eq!(diesel_version("2017-09-23-182408_add_x"), "20170923182408");
        assert_eq!(diesel_version("20170804200817_y"), "20170804200817");
        assert_eq!(diesel_version("0003_z_and_more"), "0003");
        assert!(!metadata_transaction("# present, no key\n"));
        assert!(metadata_transaction("run_in_transaction = true # yes\n"));
    }
}
