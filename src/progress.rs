//! How long-running operations report progress without printing.
//!
//! The core calls these methods; the CLI decides whether they become a live
//! status line on a terminal or plain log lines for cron.

/// Receives progress events. Implementations must be cheap and thread-safe.
pub trait Progress: Send + Sync {
    /// A unit of work (usually a node) started.
    fn start(&self, _what: &str) {}
    /// A unit of work finished; `outcome` is a short word or sentence.
    fn finish(&self, _what: &str, _outcome: &str) {}
    /// Free-form information worth a log line.
    fn info(&self, _message: &str) {}
    /// Something went wrong but the operation goes on.
    fn warn(&self, _message: &str) {}
}

/// Progress that goes nowhere, for tests and library users who don't care.
pub struct Silent;

impl Progress for Silent {}
