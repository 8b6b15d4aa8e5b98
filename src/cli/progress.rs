//! Progress on stderr: a redrawn status line on a terminal, plain lines
//! otherwise (cron mails must not fill with carriage returns). `--quiet`
//! keeps only warnings; `--verbose` also shows each unit of work as it
//! starts and keeps every finished one as a line of its own.

use sprayvault::progress::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

pub struct Stderr {
    quiet: bool,
    verbose: bool,
    tty: bool,
    done: Mutex<usize>,
}

impl Stderr {
    /// Without `--verbose`; prefer `Global::progress`, which honours it.
    #[allow(dead_code)]
    pub fn new(quiet: bool) -> Stderr {
        Stderr::with(quiet, false)
    }

    pub fn with(quiet: bool, verbose: bool) -> Stderr {
        Stderr {
            quiet,
            verbose: verbose && !quiet,
            tty: std::io::stderr().is_terminal(),
            done: Mutex::new(0),
        }
    }

    /// Redraws in place: only on a terminal, and not when every line is kept.
    fn redraws(&self) -> bool {
        self.tty && !self.verbose
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.redraws() {
            let _ = write!(err, "\r\x1b[2K{text}\n");
        } else {
            let _ = writeln!(err, "{text}");
        }
    }
}

impl Progress for Stderr {
    fn start(&self, what: &str) {
        if self.verbose {
            self.line(&format!("{what}: started"));
        }
    }

    fn finish(&self, what: &str, outcome: &str) {
        let mut done = self.done.lock().expect("progress lock");
        *done += 1;
        if self.quiet {
            return;
        }
        if self.redraws() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K[{}] {what}: {outcome}", *done);
            let _ = err.flush();
        } else {
            self.line(&format!("{what}: {outcome}"));
        }
    }

    fn info(&self, message: &str) {
        if !self.quiet {
            self.line(message);
        }
    }

    fn warn(&self, message: &str) {
        self.line(&format!("warning: {message}"));
    }
}

impl Drop for Stderr {
    fn drop(&mut self) {
        if self.redraws() && !self.quiet && *self.done.lock().expect("progress lock") > 0 {
            let _ = writeln!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
