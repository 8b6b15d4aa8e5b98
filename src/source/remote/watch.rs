//! Telling a connection whose SFTP server is stuck in one open from one that
//! is merely busy. OpenSSH's sftp-server answers requests one at a time, in
//! order, and an open has no O_NONBLOCK: opening a FIFO swapped in after the
//! listing (or a file on a file system that hangs) blocks it, and every
//! request after it waits too. The server is taken to be stuck when it has
//! answered nothing for a while although an open is waiting; the oldest
//! waiting open is the one it is stuck in, since every request sent before
//! it was answered first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What one connection has answered and which opens are waiting.
#[derive(Debug)]
pub struct Watch {
    born: Instant,
    /// Milliseconds after `born` of the last answer.
    last: AtomicU64,
    next: AtomicU64,
    /// Waiting opens by the order they were sent in.
    opening: Mutex<BTreeMap<u64, String>>,
}

/// An open waiting for its answer; dropping it (answered or given up)
/// counts as an answer.
pub struct Opening {
    watch: Arc<Watch>,
    seq: u64,
}

impl Drop for Opening {
    fn drop(&mut self) {
        self.watch
            .opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.seq);
        self.watch.answered();
    }
}

impl Watch {
    pub fn new() -> Arc<Watch> {
        Arc::new(Watch {
            born: Instant::now(),
            last: AtomicU64::new(0),
            next: AtomicU64::new(0),
            opening: Mutex::new(BTreeMap::new()),
        })
    }

    fn millis(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.born).as_millis() as u64
    }

    /// The server answered something.
    pub fn answered(&self) {
        self.last
            .fetch_max(self.millis(Instant::now()), Ordering::Relaxed);
    }

    /// `path` is about to be opened; keep the guard until it answered.
    pub fn opening(self: &Arc<Self>, path: &str) -> Opening {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.opening
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(seq, path.to_string());
        // The wait starts now, not at the answer before it.
        self.answered();
        Opening {
            watch: Arc::clone(self),
            seq,
        }
    }

    /// The path of the open the server is stuck in at `now`: the oldest
    /// waiting open, when nothing was answered for `quiet`.
    pub fn stuck_at(&self, now: Instant, quiet: Duration) -> Option<String> {
        let last = self.last.load(Ordering::Relaxed);
        if self.millis(now).saturating_sub(last) < quiet.as_millis() as u64 {
            return None;
        }
        let opening = self.opening.lock().unwrap_or_else(|e| e.into_inner());
        opening.values().next().cloned()
    }

    /// Waits until the server is stuck in an open (see [`Watch::stuck_at`]);
    /// its path.
    pub async fn stuck(&self, quiet: Duration) -> String {
        let every = (quiet / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        loop {
            tokio::time::sleep(every).await;
            if let Some(path) = self.stuck_at(Instant::now(), quiet) {
                return path;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUIET: Duration = Duration::from_secs(10);

    #[test]
    fn a_quiet_server_with_no_open_waiting_is_not_stuck() {
        let w = Watch::new();
        assert_eq!(w.stuck_at(Instant::now() + QUIET * 3, QUIET), None);
    }

    #[test]
    fn an_open_waiting_is_stuck_only_once_the_server_was_quiet_long_enough() {
        let w = Watch::new();
        let _fifo = w.opening("/etc/kubernetes/ssl/fifo");
        let now = Instant::now();
        assert_eq!(w.stuck_at(now, QUIET), None);
        assert_eq!(w.stuck_at(now + QUIET / 2, QUIET), None);
        assert_eq!(
            w.stuck_at(now + QUIET * 2, QUIET).as_deref(),
            Some("/etc/kubernetes/ssl/fifo")
        );
    }

    #[test]
    fn the_oldest_waiting_open_is_blamed_and_an_answered_one_never() {
        let w = Watch::new();
        let done = w.opening("/a/answered");
        let fifo = w.opening("/b/fifo");
        let _after = w.opening("/c/queued-behind");
        drop(done);
        let later = Instant::now() + QUIET * 2;
        assert_eq!(w.stuck_at(later, QUIET).as_deref(), Some("/b/fifo"));
        drop(fifo);
        assert_eq!(
            w.stuck_at(Instant::now() + QUIET * 2, QUIET).as_deref(),
            Some("/c/queued-behind")
        );
    }

    #[test]
    fn any_answer_resets_the_quiet_time() {
        let w = Watch::new();
        let _fifo = w.opening("/b/fifo");
        std::thread::sleep(Duration::from_millis(30));
        let before = Instant::now();
        w.answered();
        // Measured from the answer, the quiet time has not passed.
        assert_eq!(
            w.stuck_at(
                before + Duration::from_millis(20),
                Duration::from_millis(25)
            ),
            None
        );
    }

    #[tokio::test]
    async fn stuck_waits_for_the_quiet_time_and_names_the_open() {
        let quiet = Duration::from_millis(200);
        let w = Watch::new();
        let _fifo = w.opening("/b/fifo");
        let started = Instant::now();
        let path = w.stuck(quiet).await;
        assert_eq!(path, "/b/fifo");
        assert!(started.elapsed() >= quiet, "{:?}", started.elapsed());
    }
}
