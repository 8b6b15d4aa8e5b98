//! The `sprayvault` binary: parse arguments, run one subcommand, map the
//! result to an exit code (the table is in `cli::exit`).

mod cli;

fn main() -> std::process::ExitCode {
    no_core_dumps();
    use cli::exit::Numbered;
    std::process::ExitCode::from(cli::main().code())
}

/// Decrypted keys and snapshots live in this process's memory: it never
/// leaves a core dump, and other processes of the same user cannot attach
/// to it or read its memory through /proc.
fn no_core_dumps() {
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process with valid arguments.
    unsafe {
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}
