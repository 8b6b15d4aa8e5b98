//! The `sprayvault` binary: parse arguments, run one subcommand, map the
//! result to an exit code (the table is in `sprayvault::exit`).

mod cli;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(cli::main().code())
}
