//! Progress on stderr: a redrawn status line on a terminal, plain lines
//! otherwise (cron mails must not fill with carriage returns).

use sprayvault::progress::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

pub struct Stderr {
    quiet: bool,
    tty: bool,
    done: Mutex<usize>,
}

impl Stderr {
    pub fn new(quiet: bool) -> Stderr {
        Stderr {
            quiet,
            tty: std::io::stderr().is_terminal(),
            done: Mutex::new(0),
        }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}\n");
        } else {
            let _ = writeln!(err, "{text}");
        }
    }
}

impl Progress for Stderr {
    fn finish(&self, what: &str, outcome: &str) {
        let mut done = self.done.lock().expect("progress lock");
        *done += 1;
        if self.quiet {
            return;
        }
        if self.tty {
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
        if self.tty && !self.quiet && *self.done.lock().expect("progress lock") > 0 {
            let _ = writeln!(std::io::stderr(), "\r\x1b[2K");
        }
    }
}
