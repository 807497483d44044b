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
    let replica_port = risky_migrations::localdb::free_port().unwrap();
    let replica_url = format!("postgres://postgres@localhost:{replica_port}/risky_migrations");
    std::fs::write(
        project.join(".env"),
        format!("PROJECT={PROJECT}\nDATABASE_URL=postgres://postgres:pw@localhost:{port}/risky_migrations\nREPLICA_URL={replica_url}\n"),
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
    // a hot standby beside it, where REPLICA_URL points, replaying 0001
    let start = manage(&["localdb", "start", "--replica"]);
    let said = String::from_utf8_lossy(&start.stdout);
    assert!(start.status.success(), "{said}");
    assert!(
        said.contains(&format!("replica streaming on localhost:{replica_port}")),
        "{said}"
    );
    let mut replica = {
        use diesel::Connection;
        diesel::PgConnection::establish(&replica_url).unwrap()
    };
    #[derive(diesel::QueryableByName)]
    struct Standby {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        in_recovery: bool,
    }
    use diesel::RunQueryDsl;
    let standby = diesel::sql_query("SELECT pg_is_in_recovery() AS in_recovery")
        .get_result::<Standby>(&mut replica)
        .unwrap();
    assert!(standby.in_recovery);
    drop(replica);
    let stop = manage(&["localdb", "stop"]);
    let said = String::from_utf8_lossy(&stop.stdout);
    assert!(
        said.contains("Its replica stopped") && said.contains("stopped"),
        "{said}"
    );
    assert_eq!(manage(&["localdb", "status"]).status.code(), Some(3));
}
