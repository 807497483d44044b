//! `manage runserver [ADDR:]PORT`: the seed's endpoints, as Django's runserver.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::config::Project;
use crate::{db, web};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// PORT or ADDR:PORT (default 127.0.0.1 and the project's PORT; `0:8002` means 0.0.0.0:8002)
    #[arg(value_name = "ADDRPORT")]
    pub addrport: Option<String>,
    /// Database connections in the pool (the default is twice the cores)
    #[arg(long, default_value_t = crate::db::default_pool_size())]
    pub pool_size: u32,
    /// Which release of the app's code to run: proj05_drop_column's release
    /// 2 stops reading and writing legacy_code (its safe path deploys it
    /// after 0003, before 0004); elsewhere there is only release 1
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=2), value_name = "N")]
    pub release: u32,
}

/// `8002`, `0.0.0.0:8002`, `0:8002` (Django's shorthand), `[::1]:8002`.
pub fn parse_addrport(text: Option<&str>, default_port: u16) -> anyhow::Result<SocketAddr> {
    let bad = || {
        anyhow::anyhow!(
            "{:?} is not a valid port number or address:port pair",
            text.unwrap_or("")
        )
    };
    match text {
        None => Ok(SocketAddr::from(([127, 0, 0, 1], default_port))),
        Some(port) if port.chars().all(|c| c.is_ascii_digit()) => Ok(SocketAddr::from((
            [127, 0, 0, 1],
            port.parse::<u16>().map_err(|_| bad())?,
        ))),
        Some(addr) => {
            let addr = addr
                .strip_prefix("0:")
                .map_or_else(|| addr.to_owned(), |port| format!("0.0.0.0:{port}"));
            addr.parse().map_err(|_| bad())
        }
    }
}

pub fn run(project: &Project, args: Args, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let addr = parse_addrport(args.addrport.as_deref(), project.port)?;
    serve(project, addr, (args.pool_size, args.release), out)?;
    Ok(ExitCode::SUCCESS)
}

/// Binds, prints Django's banner, and serves until Ctrl-C.
pub fn serve(
    project: &Project,
    addr: SocketAddr,
    (pool_size, release): (u32, u32),
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let state = web::AppState {
        pool: db::pool(&project.database_url, pool_size),
        scenario: project.scenario,
        release: crate::scenarios::Release::new(release),
    };
    writeln!(
        out,
        "{}",
        chrono::Local::now().format("%B %d, %Y - %H:%M:%S")
    )?;
    writeln!(
        out,
        "Serving {} with database {}",
        project.name(),
        crate::db::redact_url(&project.database_url)
    )?;
    if project.scenario.deploy.is_some() {
        writeln!(out, "Running release {release} of the app's code")?;
    }
    // a server started before its database serves 503s until it answers:
    // say so once, with the way to get one (the pool says when it is back)
    match db::connect(&project.database_url) {
        Err(error) => eprintln!(
            "warning: {error}: serving 503s until it answers (start one with `manage localdb start`, or `docker compose up -d db` in {}/)",
            project.name()
        ),
        Ok(mut conn) => {
            if let Err(error) = crate::migrations::owner::check(&mut conn, project.scenario) {
                anyhow::bail!(error);
            }
        }
    }
    writeln!(out, "Starting development server at http://{addr}/")?;
    writeln!(out, "Quit the server with CONTROL-C.")?;
    out.flush()?;
    actix_web::rt::System::new()
        .block_on(async move {
            web::server(
                state,
                listener,
                web::default_workers(),
                web::Signals::StopOnCtrlC,
            )?
            .await
        })
        .context("the server stopped")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_django_reads_them() {
        assert_eq!(
            parse_addrport(None, 8002).unwrap().to_string(),
            "127.0.0.1:8002"
        );
        assert_eq!(
            parse_addrport(Some("9000"), 8002).unwrap().to_string(),
            "127.0.0.1:9000"
        );
        assert_eq!(
            parse_addrport(Some("0:8002"), 1).unwrap().to_string(),
            "0.0.0.0:8002"
        );
        assert!(parse_addrport(Some("nope"), 1).is_err());
        assert!(parse_addrport(Some("70000"), 1).is_err());
    }
}
