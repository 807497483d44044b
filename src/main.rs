//! The web server alone, as the Docker image runs it: `risky_migrations
//! [ADDR:]PORT`, the project and database from `.env` and the environment.
//! `manage runserver` runs the same server. `RELEASE=2` in the environment
//! runs proj05_drop_column's second release (`manage runserver --release 2`).

use std::process::ExitCode;

fn main() -> ExitCode {
    risky_migrations::cli::init_logging(risky_migrations::cli::SERVER_LOG);
    let addrport = std::env::args().nth(1);
    let result = risky_migrations::config::resolve_here(None)
        .map_err(anyhow::Error::from)
        .and_then(|project| {
            let addr = risky_migrations::cli::runserver::parse_addrport(
                addrport.as_deref(),
                project.port,
            )?;
            let release = match std::env::var("RELEASE") {
                Ok(text) => text
                    .parse::<u32>()
                    .ok()
                    .filter(|r| (1..=2).contains(r))
                    .ok_or_else(|| anyhow::anyhow!("RELEASE must be 1 or 2, got {text:?}"))?,
                Err(_) => 1,
            };
            risky_migrations::cli::runserver::serve(
                &project,
                addr,
                (risky_migrations::db::default_pool_size(), release),
                &mut std::io::stdout(),
            )
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", risky_migrations::cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
