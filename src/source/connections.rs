//! The connections of one command to a set of nodes: opened together, each
//! within ssh's connect timeout, and closed together within
//! [`CLOSE_WITHIN`], whatever the command's work returned. A node that does
//! not answer its close (cut off at a deadline, frozen) has its ssh process
//! killed when the close is dropped. The CLI's runner
//! (`cli::run::with_nodes`) drives every command that works on nodes
//! through it.

use super::{Remote, SourceError, SshOptions, Target};
use futures_util::future::join_all;
use std::time::Duration;

/// How long closing the connections may take, all at once.
pub const CLOSE_WITHIN: Duration = Duration::from_secs(3);

/// One connection per target, or why there is none.
pub struct Connections {
    nodes: Vec<(String, Result<Remote, SourceError>)>,
}

impl Connections {
    /// Connects to every target at once (`read_only`: an SFTP server that
    /// refuses every change).
    pub async fn open(targets: &[Target], ssh: &SshOptions, read_only: bool) -> Connections {
        let opened = join_all(targets.iter().map(|t| async move {
            let r = if read_only {
                Remote::connect_read_only(t, ssh).await
            } else {
                Remote::connect(t, ssh).await
            };
            (t.node.clone(), r)
        }))
        .await;
        Connections { nodes: opened }
    }

    /// The connection to `node`, or why there is none (`None`: not a target).
    pub fn get(&self, node: &str) -> Option<Result<&Remote, &SourceError>> {
        self.nodes
            .iter()
            .find(|(n, _)| n == node)
            .map(|(_, r)| r.as_ref())
    }

    /// Every open connection, in the order of the targets.
    pub fn open_ones(&self) -> Vec<&Remote> {
        self.nodes
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .collect()
    }

    /// The targets that could not be reached, and why.
    pub fn unreachable(&self) -> Vec<&SourceError> {
        self.nodes
            .iter()
            .filter_map(|(_, r)| r.as_ref().err())
            .collect()
    }

    /// Each target's node name and connection, in order.
    pub fn each(&self) -> impl Iterator<Item = (&str, Result<&Remote, &SourceError>)> {
        self.nodes.iter().map(|(n, r)| (n.as_str(), r.as_ref()))
    }

    /// Closes every connection at once, within [`CLOSE_WITHIN`].
    pub async fn close(self) {
        let closing = join_all(
            self.nodes
                .into_iter()
                .filter_map(|(_, r)| r.ok())
                .map(Remote::close),
        );
        let _ = tokio::time::timeout(CLOSE_WITHIN, closing).await;
    }
}
