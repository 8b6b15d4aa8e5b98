//! Arguments that many subcommands share, defined once so that every command
//! spells them the same way: `-i/--inventory` (`SPRAYVAULT_INVENTORY`),
//! `--identity` (`SPRAYVAULT_IDENTITY`), `-F/--ssh-config`
//! (`SPRAYVAULT_SSH_CONFIG`), durations as `30s`, `5m`, `30d` (a plain number
//! keeps meaning what it meant before units were accepted), and `-o -` for
//! standard output wherever a file is written.
//!
//! A subcommand takes these with `#[command(flatten)]`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The kubespray inventory, required.
#[derive(clap::Args)]
pub struct Inventory {
    /// The kubespray inventory (file or directory).
    #[arg(
        short = 'i',
        long = "inventory",
        env = "SPRAYVAULT_INVENTORY",
        value_name = "PATH"
    )]
    pub inventory: PathBuf,
}

/// The kubespray inventory, where a command can do without it.
#[derive(clap::Args)]
pub struct InventoryOpt {
    /// The kubespray inventory (file or directory).
    #[arg(
        short = 'i',
        long = "inventory",
        env = "SPRAYVAULT_INVENTORY",
        value_name = "PATH"
    )]
    pub inventory: Option<PathBuf>,
}

/// An identity that can decrypt the vault, required.
#[derive(clap::Args)]
pub struct Identity {
    /// An age identity file or OpenSSH private key that can decrypt the vault
    /// (passphrase-protected ones too: `age -p`, `ssh-keygen -N`).
    #[arg(long, env = "SPRAYVAULT_IDENTITY", value_name = "FILE")]
    pub identity: PathBuf,
    #[command(flatten)]
    pub passphrase: Passphrase,
}

/// An identity, where a command only uses one for extra detail.
#[derive(clap::Args)]
pub struct IdentityOpt {
    /// An age identity file or OpenSSH private key that can decrypt the vault
    /// (passphrase-protected ones too: `age -p`, `ssh-keygen -N`).
    #[arg(long, env = "SPRAYVAULT_IDENTITY", value_name = "FILE")]
    pub identity: Option<PathBuf>,
    #[command(flatten)]
    pub passphrase: Passphrase,
}

/// Where a protected identity's passphrase comes from.
#[derive(clap::Args)]
pub struct Passphrase {
    /// The passphrase of a protected identity, on the first line of FILE (mode
    /// 0600 or 0400); without it the passphrase is asked on the terminal.
    #[arg(long, env = "SPRAYVAULT_PASSPHRASE_FILE", value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

impl Identity {
    pub fn load(&self) -> anyhow::Result<sprayvault::vault::crypto::Identity> {
        load_identity(&self.identity, &self.passphrase)
    }
}

impl IdentityOpt {
    pub fn load(&self) -> anyhow::Result<Option<sprayvault::vault::crypto::Identity>> {
        self.identity
            .as_deref()
            .map(|path| load_identity(path, &self.passphrase))
            .transpose()
    }
}

/// Loads an identity, asking for its passphrase only when it is protected.
/// An identity that cannot be used is a usage error (exit 2): the command
/// line names a file that is not a usable key, or not its passphrase.
fn load_identity(
    path: &Path,
    passphrase: &Passphrase,
) -> anyhow::Result<sprayvault::vault::crypto::Identity> {
    use sprayvault::vault::crypto::{read_passphrase_file, CryptoError, Identity};
    let mut ask = |path: &Path, protection| match &passphrase.passphrase_file {
        Some(file) => read_passphrase_file(file),
        None => match ask_on_terminal(&format!(
            "Passphrase for {} ({protection}): ",
            path.display()
        )) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(CryptoError::NoPassphrase {
                path: path.to_path_buf(),
                protection,
            }),
            Err(e) => Err(CryptoError::Terminal(e.to_string())),
        },
    };
    Identity::load_with(path, &mut ask).map_err(|e| super::UsageError(e.to_string()).into())
}

/// Asks on the controlling terminal, without echo; `None` when the process
/// has no terminal (cron, systemd, `setsid`).
fn ask_on_terminal(prompt: &str) -> std::io::Result<Option<age::secrecy::SecretString>> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let mut tty = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
    {
        Ok(t) => t,
        Err(_) => return Ok(None),
    };
    let fd = tty.as_raw_fd();
    // SAFETY: tcgetattr fills the struct for a valid, open descriptor.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(fd, &mut old) } != 0 {
        return Ok(None);
    }
    let mut quiet = old;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    /// Puts the terminal's echo back however the read ends.
    struct Restore(i32, libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: the descriptor is open for the guard's lifetime.
            unsafe { libc::tcsetattr(self.0, libc::TCSAFLUSH, &self.1) };
        }
    }
    // SAFETY: a valid descriptor and a termios read from it.
    if unsafe { libc::tcsetattr(fd, libc::TCSAFLUSH, &quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _restore = Restore(fd, old);
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    // Byte by byte into a buffer that never grows: no copy of the
    // passphrase is left behind.
    const MAX: usize = 1024;
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(MAX));
    let mut byte = [0u8; 1];
    loop {
        match tty.read(&mut byte)? {
            0 => break,
            _ if byte[0] == b'\n' => break,
            _ if line.len() == MAX => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("the passphrase is longer than {MAX} bytes"),
                ))
            }
            _ => line.push(byte[0]),
        }
    }
    zeroize::Zeroize::zeroize(&mut byte);
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let text = std::str::from_utf8(&line).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the passphrase is not UTF-8",
        )
    })?;
    Ok(Some(age::secrecy::SecretString::from(text.to_string())))
}

/// The ssh configuration file.
#[derive(clap::Args)]
pub struct SshConfig {
    /// ssh configuration file, passed to ssh as -F.
    #[arg(long, short = 'F', env = "SPRAYVAULT_SSH_CONFIG", value_name = "FILE")]
    pub ssh_config: Option<PathBuf>,
}

/// ssh's configuration file and connect timeout, for commands that reach nodes.
#[derive(clap::Args)]
pub struct Ssh {
    #[command(flatten)]
    pub config: SshConfig,
    /// How long to wait for ssh to connect to a node (30s, 2m; a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = seconds)]
    pub connect_timeout: Duration,
}

impl Ssh {
    pub fn options(&self) -> sprayvault::source::SshOptions {
        sprayvault::source::SshOptions {
            config_file: self.config.ssh_config.clone(),
            connect_timeout: self.connect_timeout,
        }
    }
}

/// How long to wait for another run's lock on the vault.
#[derive(clap::Args)]
pub struct LockWait {
    /// How long to wait for another run's lock before giving up with exit 5
    /// (10m, 600s; a plain number is seconds).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = seconds)]
    pub lock_wait: Duration,
}

/// Where a command writes its file: a path, or `-` for standard output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputPath {
    Stdout,
    File(PathBuf),
}

impl std::str::FromStr for OutputPath {
    type Err = String;
    fn from_str(s: &str) -> Result<OutputPath, String> {
        match s {
            "" => Err("an empty path: give a file name, or - for standard output".into()),
            "-" => Ok(OutputPath::Stdout),
            _ => Ok(OutputPath::File(PathBuf::from(s))),
        }
    }
}

impl std::fmt::Display for OutputPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputPath::Stdout => f.write_str("standard output"),
            OutputPath::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl OutputPath {
    pub fn is_stdout(&self) -> bool {
        *self == OutputPath::Stdout
    }

    /// Writes through `fill`: to standard output, or to a file created 0600
    /// under a temporary name beside the target, synced and renamed into
    /// place only when `fill` succeeded (nothing half-written is ever left
    /// under the target's name). `binary` refuses a terminal as standard
    /// output.
    pub fn write<F>(&self, binary: bool, fill: F) -> anyhow::Result<()>
    where
        F: FnOnce(&mut dyn Write) -> anyhow::Result<()>,
    {
        match self {
            OutputPath::Stdout => {
                use std::io::IsTerminal;
                let out = std::io::stdout();
                if binary && out.is_terminal() {
                    return Err(super::UsageError(
                        "refusing to write binary data to a terminal: redirect standard output, or give -o FILE"
                            .into(),
                    )
                    .into());
                }
                let mut lock = out.lock();
                fill(&mut lock)?;
                lock.flush()?;
                Ok(())
            }
            OutputPath::File(path) => write_file(path, fill),
        }
    }
}

fn write_file<F>(path: &Path, fill: F) -> anyhow::Result<()>
where
    F: FnOnce(&mut dyn Write) -> anyhow::Result<()>,
{
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| super::UsageError(format!("{} is not a file name", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.sprayvault-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    let result = fill(&mut file).and_then(|()| {
        file.sync_all()?;
        std::fs::rename(&tmp, path)
            .map_err(|e| anyhow::anyhow!("cannot rename into {}: {e}", path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A duration for a flag that took plain seconds before units were accepted.
pub fn seconds(s: &str) -> Result<Duration, String> {
    parse_duration(s, 1).map(Duration::from_secs)
}

/// A duration for a flag whose plain number meant days (`certs --expiring-within 30`).
pub fn days(s: &str) -> Result<Duration, String> {
    parse_duration(s, 86400).map(Duration::from_secs)
}

/// Parses `30s`, `5m`, `12h`, `30d`, `2w`, or a sum such as `1h30m`, into
/// seconds; a plain number counts `plain` seconds per unit. Overflow, an
/// unknown unit or a missing number is an error.
pub fn parse_duration(s: &str, plain: u64) -> Result<u64, String> {
    let bad = |why: &str| {
        format!("{s:?} is not a duration ({why}); write it like 30s, 5m, 12h, 30d or 2w")
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = s.parse().map_err(|_| bad("too large"))?;
        return n.checked_mul(plain).ok_or_else(|| bad("too large"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("a unit without a number"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad("too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        let unit = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 7 * 86400,
            "" => return Err(bad("a number without a unit after another")),
            u => return Err(bad(&format!("unknown unit {u:?}; use s, m, h, d or w"))),
        };
        rest = &rest[unit_len..];
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too large"))?;
    }
    Ok(total)
}

/// `123`, `64K`, `64M`, `2G` (powers of 1024) as a number of bytes.
pub fn size(s: &str) -> Result<u64, String> {
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => {
            return Err(format!(
                "{s:?}: use a number of bytes with an optional K, M or G"
            ))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or(format!(
            "{s:?}: use a number of bytes with an optional K, M or G"
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse_duration("30s", 1), Ok(30));
        assert_eq!(parse_duration("5m", 1), Ok(300));
        assert_eq!(parse_duration("12h", 1), Ok(43200));
        assert_eq!(parse_duration("30d", 1), Ok(30 * 86400));
        assert_eq!(parse_duration("2w", 1), Ok(14 * 86400));
        assert_eq!(parse_duration("1h30m", 1), Ok(5400));
        assert_eq!(parse_duration("0s", 1), Ok(0));
    }

    #[test]
    fn plain_numbers_keep_their_old_unit() {
        assert_eq!(seconds("600"), Ok(Duration::from_secs(600)));
        assert_eq!(days("30"), Ok(Duration::from_secs(30 * 86400)));
        assert_eq!(days("12h"), Ok(Duration::from_secs(43200)));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        for s in [
            "18446744073709551616",
            "18446744073709551615w",
            "213503982334602d",
            "18446744073709551615s1s",
        ] {
            let e = parse_duration(s, 1).unwrap_err();
            assert!(e.contains("too large"), "{s}: {e}");
        }
        assert!(days("213503982334602").unwrap_err().contains("too large"));
    }

    #[test]
    fn malformed_durations_say_how_to_write_one() {
        for s in ["", "s", "5x", "5 m", "-5s", "1.5h", "5m3", "m5"] {
            let e = parse_duration(s, 1).unwrap_err();
            assert!(e.contains("like 30s, 5m"), "{s}: {e}");
        }
        assert!(parse_duration("5y", 1)
            .unwrap_err()
            .contains("unknown unit \"y\""));
    }

    #[test]
    fn dash_is_standard_output() {
        assert_eq!("-".parse::<OutputPath>(), Ok(OutputPath::Stdout));
        assert_eq!(
            "snap.db".parse::<OutputPath>(),
            Ok(OutputPath::File("snap.db".into()))
        );
        assert!("".parse::<OutputPath>().is_err());
    }

    #[test]
    fn a_failed_write_leaves_nothing_under_the_name() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out.db");
        let out = OutputPath::File(target.clone());
        let r = out.write(true, |w| {
            w.write_all(b"half")?;
            anyhow::bail!("stopped")
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
        out.write(true, |w| Ok(w.write_all(b"whole")?)).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"whole");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(size("123"), Ok(123));
        assert_eq!(size("64M"), Ok(64 << 20));
        assert_eq!(size("2G"), Ok(2 << 30));
        assert!(size("12X").is_err());
        assert!(size("M").is_err());
    }
}
