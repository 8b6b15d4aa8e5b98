//! `sprayvault completions SHELL` and the hidden `sprayvault man-pages DIR`:
//! both generated from the command line's own definition, so they cannot
//! drift from it (the Debian package ships their output).

use super::exit::Exit;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Directory to write sprayvault.1 and sprayvault-SUBCOMMAND.1 into (must exist).
    dir: PathBuf,
}

pub fn run(a: Args) -> anyhow::Result<Exit> {
    use clap_complete::Shell as S;
    let shell = match a.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
    };
    let mut cmd = super::command();
    clap_complete::generate(shell, &mut cmd, "sprayvault", &mut std::io::stdout());
    Ok(Exit::Success)
}

pub fn man_pages(a: ManArgs) -> anyhow::Result<Exit> {
    clap_mangen::generate_to(super::command(), &a.dir)
        .map_err(|e| anyhow::anyhow!("cannot write man pages into {}: {e}", a.dir.display()))?;
    Ok(Exit::Success)
}
