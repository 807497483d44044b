//! `manage`: the management CLI (see `risky_migrations::cli`).

fn main() -> std::process::ExitCode {
    risky_migrations::cli::main()
}
