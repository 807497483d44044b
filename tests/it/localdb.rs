//! `manage localdb` in a project directory of its own.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::support::{PROJ04, root};

const PROJECT: &str = PROJ04.project;

#[test]
fn localdb_starts_serves_and_stops_where_the_env_points() {
    let dir = tempfile::Builder::new()
        .prefix("localdb")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    // as root the cluster runs as `postgres`, which must reach its directory
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let project = dir.path().join(PROJECT);
    std::fs::create_dir(&project).unwrap();
    std::fs::copy(
        root().join(PROJECT).join("diesel.toml"),
        project.join("diesel.toml"),
    )
    .unwrap();
    let port = risky_migrations::localdb::free_port().unwrap();
    std::fs::write(
        project.join(".env"),
        format!("PROJECT={PROJECT}\nDATABASE_URL=postgres://postgres:pw@localhost:{port}/risky_migrations\n"),
    )
    .unwrap();
    let manage = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_manage"))
            .current_dir(&project)
            .env_remove("DATABASE_URL")
            .env_remove("PROJECT")
            .args(args)
            .output()
            .unwrap()
    };
    let status = manage(&["localdb", "status"]);
    assert_eq!(status.status.code(), Some(3));
    let start = manage(&["localdb", "start"]);
    let said = String::from_utf8_lossy(&start.stdout);
    assert!(
        start.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&start.stderr)
    );
    assert!(
        said.contains(&format!(
            "running on localhost:{port}, database risky_migrations"
        )),
        "{said}"
    );
    let migrated = manage(&["migrate", "0001"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert!(manage(&["localdb", "status"]).status.success());
    assert!(
        manage(&["localdb", "start"]).status.success(),
        "starting twice is fine"
    );
    let stop = manage(&["localdb", "stop"]);
    assert!(String::from_utf8_lossy(&stop.stdout).contains("stopped"));
    assert_eq!(manage(&["localdb", "status"]).status.code(), Some(3));
}
