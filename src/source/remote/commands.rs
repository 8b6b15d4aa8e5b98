//! Running command lines on a node, each in an `ssh` process of its own (no
//! master to share): with root's rights (`sudo -n` when needed), its output
//! either collected or handed on in pieces as it arrives.
//!
//! A [`Commands`] needs no SFTP connection: the etcd snapshot of a backup
//! runs its one command without opening another. Whether sudo is needed is
//! then decided on the node by the command line itself.

use super::super::{SshOptions, Target};
use super::{shell_quote, ssh, SourceError};
use std::ffi::OsString;
use std::process::Stdio;
use tokio::io::AsyncReadExt;

/// How a command gets root's rights on a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Sudo {
    /// The user is root, or the inventory does not ask for `become`.
    Never,
    Always,
    /// `become` for a user not known yet: the node checks `id -u`.
    UnlessRoot,
}

/// Command lines for one node.
#[derive(Clone, Debug)]
pub struct Commands {
    node: String,
    ssh_args: Vec<OsString>,
    sudo: Sudo,
}

/// What a command that ran to the end left besides its output.
pub struct Finished {
    /// Bytes of standard output handed on.
    pub bytes: u64,
    /// Its standard error.
    pub stderr: String,
}

impl Commands {
    /// Commands for `target`, deciding sudo on the node (`become` and not root).
    pub fn new(target: &Target, opts: &SshOptions) -> Commands {
        let sudo = if target.become_ {
            Sudo::UnlessRoot
        } else {
            Sudo::Never
        };
        Commands::with(target, ssh::args(target, opts), sudo)
    }

    pub(super) fn with(target: &Target, ssh_args: Vec<OsString>, sudo: Sudo) -> Commands {
        Commands {
            node: target.node.clone(),
            ssh_args,
            sudo,
        }
    }

    /// `cmd` as it must run to have root's rights on this node.
    fn privileged(&self, cmd: &str) -> String {
        privileged(self.sudo, cmd)
    }

    fn command(&self, cmd: &str) -> tokio::process::Command {
        let mut c = ssh::command(&self.ssh_args);
        c.arg(cmd);
        c
    }

    fn failed(&self, what: &str, why: String) -> SourceError {
        SourceError::Command {
            node: self.node.clone(),
            what: what.into(),
            why,
        }
    }

    /// Runs `cmd` as it is (the connecting user's rights); its stdout, at
    /// most [`OUTPUT_LIMIT`] bytes (more is an error: a node cannot make the
    /// backup host hold what it likes), its stderr kept to [`STDERR_LIMIT`].
    pub async fn run(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        let mut child = self
            .command(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(what, format!("cannot start ssh: {e}")))?;
        let mut out = child.stdout.take().expect("stdout was piped");
        let mut err = child.stderr.take().expect("stderr was piped");
        let ((stdout, too_much), (stderr, _)) = tokio::join!(
            read_capped(&mut out, OUTPUT_LIMIT),
            read_capped(&mut err, STDERR_LIMIT)
        );
        let status = child
            .wait()
            .await
            .map_err(|e| self.failed(what, e.to_string()))?;
        if too_much {
            return Err(self.failed(
                what,
                format!(
                    "it printed more than {} KiB, more than any command sprayvault runs prints; not read (check the node)",
                    OUTPUT_LIMIT >> 10
                ),
            ));
        }
        if !status.success() {
            let why = String::from_utf8_lossy(&stderr).trim().to_string();
            return Err(self.failed(what, why));
        }
        Ok(String::from_utf8_lossy(&stdout).to_string())
    }

    /// Runs a fixed command line with root's rights; its stdout. Callers
    /// build `cmd` only from quoted values.
    pub async fn run_privileged(&self, cmd: &str, what: &str) -> Result<String, SourceError> {
        self.run(&self.privileged(cmd), what).await
    }

    /// Runs a fixed command line with root's rights, handing its standard
    /// output to `sink` in pieces of at most `piece` bytes as it arrives.
    /// Fails if the command exits non-zero (with its stderr) or `sink` fails.
    pub async fn stream_privileged<F, E>(
        &self,
        cmd: &str,
        what: &str,
        piece: usize,
        sink: F,
    ) -> Result<Finished, SourceError>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
        E: std::fmt::Display,
    {
        self.stream(&self.privileged(cmd), what, piece, sink).await
    }

    /// Like [`Commands::stream_privileged`] for a fixed program on the node
    /// that takes no arguments, run under sudo as it is (no shell with
    /// root's rights), so a sudo rule can name exactly it.
    pub async fn stream_helper<F, E>(
        &self,
        program: &str,
        what: &str,
        piece: usize,
        sink: F,
    ) -> Result<Finished, SourceError>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
        E: std::fmt::Display,
    {
        self.stream(&helper(self.sudo, program), what, piece, sink)
            .await
    }

    async fn stream<F, E>(
        &self,
        line: &str,
        what: &str,
        piece: usize,
        mut sink: F,
    ) -> Result<Finished, SourceError>
    where
        F: FnMut(&[u8]) -> Result<(), E>,
        E: std::fmt::Display,
    {
        let mut child = self
            .command(line)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.failed(what, format!("cannot start ssh: {e}")))?;
        let mut out = child.stdout.take().expect("stdout was piped");
        let mut err = child.stderr.take().expect("stderr was piped");
        widen_pipe(&out);
        let errors = async { read_capped(&mut err, STDERR_LIMIT).await.0 };
        let reading = async {
            // Wiped when done: it holds what the command printed (a snapshot).
            let mut buf = zeroize::Zeroizing::new(vec![0u8; piece]);
            let mut total = 0u64;
            loop {
                // Fill the buffer before handing it on: pipes deliver small reads.
                let mut filled = 0;
                while filled < buf.len() {
                    match out.read(&mut buf[filled..]).await {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) => return (total, Err(e.to_string())),
                    }
                }
                if filled == 0 {
                    return (total, Ok(()));
                }
                total += filled as u64;
                // On a failing sink, stop reading and end ssh: the closed
                // channel ends the command on the node.
                if let Err(e) = sink(&buf[..filled]) {
                    let _ = child.start_kill();
                    return (total, Err(e.to_string()));
                }
            }
        };
        let ((bytes, sunk), text) = tokio::join!(reading, errors);
        let status = child
            .wait()
            .await
            .map_err(|e| self.failed(what, e.to_string()))?;
        sunk.map_err(|why| SourceError::Io {
            node: self.node.clone(),
            path: what.into(),
            why,
        })?;
        let stderr = String::from_utf8_lossy(&text).trim().to_string();
        if !status.success() {
            return Err(self.failed(what, stderr));
        }
        Ok(Finished { bytes, stderr })
    }
}

/// Lets ssh write up to [`PIPE_BYTES`] ahead of the reader, so that ssh
/// goes on decrypting while a piece is hashed rather than waiting on a
/// full 64 KiB pipe. Best effort: a smaller pipe only costs speed.
fn widen_pipe(out: &tokio::process::ChildStdout) {
    use std::os::fd::AsRawFd;
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor this process owns.
    unsafe { libc::fcntl(out.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
}

/// The pipe size asked for a streamed command's output: 1 MiB, Linux's
/// default `pipe-max-size`.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// The most of a command's standard output [`Commands::run`] keeps.
pub const OUTPUT_LIMIT: usize = 256 << 10;
/// The most of a command's standard error kept (the rest is read and
/// dropped, so the command is never blocked on a full pipe).
pub const STDERR_LIMIT: usize = 16 << 10;

/// Reads `r` to its end, keeping its first `cap` bytes; whether there was
/// more.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(r: &mut R, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut more = false;
    let mut buf = vec![0u8; 16 << 10];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return (kept, more),
            Ok(n) => {
                let room = cap - kept.len();
                kept.extend_from_slice(&buf[..n.min(room)]);
                more |= n > room;
            }
        }
    }
}

fn privileged(sudo: Sudo, cmd: &str) -> String {
    match sudo {
        Sudo::Never => cmd.to_string(),
        Sudo::Always => format!("sudo -n sh -c {}", shell_quote(cmd)),
        Sudo::UnlessRoot => format!(
            "if [ \"$(id -u)\" = 0 ]; then sh -c {q}; else sudo -n sh -c {q}; fi",
            q = shell_quote(cmd)
        ),
    }
}

/// The line that runs `program` (an absolute path, no arguments) with
/// root's rights: under sudo directly, never through `sh -c`.
fn helper(sudo: Sudo, program: &str) -> String {
    let p = shell_quote(program);
    match sudo {
        Sudo::Never => p,
        Sudo::Always => format!("sudo -n {p}"),
        Sudo::UnlessRoot => format!("if [ \"$(id -u)\" = 0 ]; then {p}; else sudo -n {p}; fi"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_up_to_its_cap_and_the_rest_drained() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let data = vec![7u8; 100_000];
        let (kept, more) = rt.block_on(read_capped(&mut &data[..], 16 << 10));
        assert_eq!((kept.len(), more), (16 << 10, true));
        let (kept, more) = rt.block_on(read_capped(&mut &data[..1000], 16 << 10));
        assert_eq!((kept.len(), more), (1000, false));
    }

    #[test]
    fn a_helper_runs_under_sudo_without_a_shell_or_arguments() {
        let h = "/usr/local/libexec/sprayvault/etcd-snapshot";
        assert_eq!(helper(Sudo::Always, h), format!("sudo -n '{h}'"));
        assert_eq!(helper(Sudo::Never, h), format!("'{h}'"));
        assert_eq!(
            helper(Sudo::UnlessRoot, h),
            format!("if [ \"$(id -u)\" = 0 ]; then '{h}'; else sudo -n '{h}'; fi")
        );
    }

    #[test]
    fn privileged_quotes_the_command_once_for_sudo() {
        assert_eq!(privileged(Sudo::Never, "echo 'a b'"), "echo 'a b'");
        assert_eq!(
            privileged(Sudo::Always, "echo 'a b'"),
            "sudo -n sh -c 'echo '\\''a b'\\'''"
        );
    }

    #[test]
    fn unless_root_asks_the_node_who_it_is() {
        let line = privileged(Sudo::UnlessRoot, "rm -f '/x y'");
        let q = "'rm -f '\\''/x y'\\'''";
        assert_eq!(
            line,
            format!("if [ \"$(id -u)\" = 0 ]; then sh -c {q}; else sudo -n sh -c {q}; fi")
        );
        // As whoever runs the tests, the line is valid shell.
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", &line])
            .status()
            .expect("sh runs");
        assert!(out.success());
    }
}
