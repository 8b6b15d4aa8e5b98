//! Holding kubespray's account-owned directories under root while a restore
//! writes below them.
//!
//! kubespray gives `/etc/kubernetes` and `manifests/` to `kube`, and
//! `/etc/ssl/etcd` and its `ssl/` to `etcd`. The node I/O rules
//! ([`crate::source::remote`]'s `write_private` and `set_meta`) write and set
//! metadata only below directories that only root can change, so that no
//! local account can swap a symlink in. Rather than trust those accounts, a
//! restore takes such a directory for its duration: owner root, group and
//! other write cleared, done by path through a parent that is already
//! root-only (so nothing can be swapped in for it). Everything below is then
//! root-only again and the usual rules hold. At the end the directory gets
//! back the owner and mode the backup recorded, deepest first, each through a
//! parent still held. A restore cut off in between leaves them root-owned:
//! the safe side, and kubespray's next run (or the next restore) sets them.
//!
//! Invariants:
//! - only a directory the backup recorded, currently owned by the very
//!   account the backup recorded as its owner, is taken; a directory owned by
//!   any other account is left as it is, so the node I/O rules refuse to
//!   write through it;
//! - directories are taken top-down and given back bottom-up.

use crate::source::remote::{root_only, Meta};
use crate::vault::manifest::Kind;

/// What to do with one recorded directory above something the restore writes.
#[derive(Debug, PartialEq, Eq)]
pub enum Hold {
    /// Only root can change it already (or it is not recorded, or is owned
    /// by an account the backup did not record): leave it.
    Leave,
    /// Take it: give it `mode` (the current one without group and other
    /// write), owner root, group `gid` (unchanged).
    Take { mode: u32, gid: u32 },
}

/// Decides [`Hold`] for a directory that is `current` on the node and whose
/// recorded owner has uid `recorded_uid` there (`None`: not a directory the
/// backup recorded).
pub fn decide(current: &Meta, recorded_uid: Option<u32>) -> Hold {
    match recorded_uid {
        Some(uid)
            if current.kind == Some(Kind::Dir)
                && !root_only(current)
                && uid != 0
                && current.uid == uid =>
        {
            Hold::Take {
                mode: current.mode & 0o7755,
                gid: current.gid,
            }
        }
        _ => Hold::Leave,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(uid: u32, gid: u32, mode: u32) -> Meta {
        Meta {
            kind: Some(Kind::Dir),
            mode,
            uid,
            gid,
            size: 0,
            mtime: 0,
        }
    }

    #[test]
    fn a_directory_owned_by_its_recorded_account_is_taken_with_write_cleared() {
        // kubespray's /etc/kubernetes: kube:root 0755, recorded as kube's.
        assert_eq!(
            decide(&dir(20011, 0, 0o755), Some(20011)),
            Hold::Take {
                mode: 0o755,
                gid: 0
            }
        );
        // Group or other write is cleared while held.
        assert_eq!(
            decide(&dir(20012, 5, 0o2775), Some(20012)),
            Hold::Take {
                mode: 0o2755,
                gid: 5
            }
        );
    }

    #[test]
    fn a_directory_owned_by_an_account_the_backup_did_not_record_is_left() {
        // Recorded as root's (or as kube's), owned by someone else now.
        assert_eq!(decide(&dir(10015, 0, 0o755), Some(0)), Hold::Leave);
        assert_eq!(decide(&dir(10015, 0, 0o755), Some(20011)), Hold::Leave);
        // Root-owned but group-writable, recorded as root's: not taken.
        assert_eq!(decide(&dir(0, 10015, 0o775), Some(0)), Hold::Leave);
        // Not recorded at all.
        assert_eq!(decide(&dir(20011, 0, 0o755), None), Hold::Leave);
    }

    #[test]
    fn root_only_directories_and_non_directories_are_left() {
        assert_eq!(decide(&dir(0, 0, 0o755), Some(0)), Hold::Leave);
        let link = Meta {
            kind: Some(Kind::Symlink),
            ..dir(20011, 0, 0o777)
        };
        assert_eq!(decide(&link, Some(20011)), Hold::Leave);
    }
}
