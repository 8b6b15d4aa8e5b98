//! One run at a time per vault: an exclusive flock(2) on `VAULT/sprayvault/lock`.
//!
//! The kernel drops the lock when the holder dies, even by SIGKILL, so a killed
//! run never leaves a stale lock behind; the holder's pid is written into the
//! file only to name it in the "vault locked" error.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// Held for the lifetime of the value.
pub struct VaultLock {
    _file: File,
}

pub enum LockError {
    /// Another process holds it; its recorded pid, if readable.
    Busy(Option<String>),
    Io(std::io::Error),
}

impl VaultLock {
    /// Tries to take the lock, polling until `wait` has passed.
    pub fn acquire(path: &Path, wait: Duration) -> Result<VaultLock, LockError> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LockError::Io)?;
        let deadline = Instant::now() + wait;
        loop {
            // SAFETY: flock on a file descriptor we own; no memory is shared.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            if rc == 0 {
                file.set_len(0).map_err(LockError::Io)?;
                file.rewind().map_err(LockError::Io)?;
                writeln!(file, "{}", std::process::id()).map_err(LockError::Io)?;
                return Ok(VaultLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(LockError::Io(err));
            }
            if Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim().to_string();
                return Err(LockError::Busy((!holder.is_empty()).then_some(holder)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
