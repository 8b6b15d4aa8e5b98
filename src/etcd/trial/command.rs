//! Running this machine's etcd programs for a trial restore: a clean
//! environment, their output, and why a command gave none to use.

use std::path::Path;
use std::process::{Command, Stdio};

/// A command of the local etcd with nothing from the caller's environment
/// (etcd reads `ETCD_*` variables as flags, etcdctl `ETCDCTL_*`).
pub(super) fn clean(program: &Path) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("ETCDCTL_API", "3");
    c
}

/// Why one command of a trial gave no answer to use.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{what}: cannot run {program:?}: {why}")]
    Spawn {
        what: String,
        program: std::ffi::OsString,
        why: std::io::Error,
    },
    #[error("{what} failed ({status}): {stderr}")]
    Exit {
        what: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{what} is not JSON: {why}")]
    Json {
        what: String,
        why: serde_json::Error,
    },
    #[error("cannot remove {0}; remove it by hand (it holds the decrypted database)")]
    Leftover(String),
}

/// Runs `c`; its stdout, or an error with its stderr.
pub(super) fn output(c: &mut Command, what: &str) -> Result<String, CommandError> {
    let o = c
        .stdin(Stdio::null())
        .output()
        .map_err(|why| CommandError::Spawn {
            what: what.into(),
            program: c.get_program().to_owned(),
            why,
        })?;
    if !o.status.success() {
        return Err(CommandError::Exit {
            what: what.into(),
            status: o.status,
            stderr: String::from_utf8_lossy(&o.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&o.stdout).to_string())
}

/// A command's output as JSON.
pub(super) fn json(text: &str, what: &str) -> Result<serde_json::Value, CommandError> {
    serde_json::from_str(text.trim()).map_err(|why| CommandError::Json {
        what: what.into(),
        why,
    })
}
