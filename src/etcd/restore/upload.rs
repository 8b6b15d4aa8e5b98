//! Step 1 of an etcd restore: the snapshot, decrypted piece by piece, to a
//! new 0600 file in a fresh root-only directory on every member, its sha256
//! trailer checked on the way. The plaintext never touches the control
//! host's disk.

use super::members::{named, within, Pair};
use super::{EtcdRestoreError, Unchanged};
use crate::etcd::reassemble;
use crate::etcd::trailer::Trailer;
use crate::paths::parent;
use crate::source::{NewFile, NodeFs};
use crate::vault::VaultError;
use futures_util::future::join_all;
use std::time::Duration;

/// The plaintext of a snapshot, in the order of the file.
pub(super) trait Pieces {
    /// The next piece; `None` at the end.
    fn next_piece(&mut self) -> Result<Option<&[u8]>, VaultError>;
}

impl Pieces for reassemble::Reader<'_> {
    fn next_piece(&mut self) -> Result<Option<&[u8]>, VaultError> {
        reassemble::Reader::next_piece(self)
    }
}

/// Streams `pieces` (snapshot `name`) to every member's upload path; each
/// piece must reach every member within `limit`.
pub(super) async fn upload<N: NodeFs, P: Pieces>(
    name: &str,
    mut pieces: P,
    pairs: &[Pair<'_, N>],
    limit: Duration,
) -> Result<(), EtcdRestoreError> {
    let what = "streaming the snapshot";
    let failed = |node: &str, e| EtcdRestoreError::Unchanged {
        step: Unchanged::Upload,
        failures: vec![named(node, &e)],
    };
    let mut files = Vec::new();
    for (m, n) in pairs {
        let file = within(&m.node, what, limit, async {
            n.make_private_dir(parent(&m.upload)).await?;
            n.create_new(&m.upload).await
        })
        .await
        .map_err(|e| failed(&m.node, e))?;
        files.push((m.node.as_str(), file));
    }
    let mut trailer = Trailer::default();
    // Runs of units can be a page long: written in pieces of about 1 MiB.
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(2 << 20));
    loop {
        let piece = pieces.next_piece()?;
        let end = piece.is_none();
        if let Some(p) = piece {
            trailer.update(p);
            plain.extend_from_slice(p);
            if plain.len() < 1 << 20 {
                continue;
            }
        }
        if !plain.is_empty() {
            let writes = join_all(files.iter_mut().map(|(node, f)| {
                let plain = &plain;
                let node = *node;
                async move { (node, within(node, what, limit, f.write(plain)).await) }
            }))
            .await;
            for (node, r) in writes {
                r.map_err(|e| failed(node, e))?;
            }
            zeroize::Zeroize::zeroize(&mut *plain);
        }
        if end {
            break;
        }
    }
    for (node, f) in files {
        within(node, what, limit, f.finish())
            .await
            .map_err(|e| failed(node, e))?;
    }
    if !trailer.valid() {
        return Err(EtcdRestoreError::Trailer(name.to_string()));
    }
    Ok(())
}
