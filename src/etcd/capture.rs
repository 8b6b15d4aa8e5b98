//! Taking a snapshot from one etcd member over SSH, through the member's
//! snapshot helper (`contrib/ansible/files/sprayvault-etcd-snapshot`,
//! installed as [`HELPER`]): a fixed root-owned program that takes no
//! arguments, so the backup account's sudo rule names exactly it. It saves
//! the snapshot with the member's kubespray admin certificate (the paths
//! its etcd.env gives), streams the file back while etcdctl writes it, and
//! reports the member's name, `snapshot status`, `endpoint hashkv` and
//! `endpoint status` on stderr. The file on the node is always removed;
//! nothing of the snapshot touches the control host's disk.

use super::env::AdminCert;
use super::index::{hashkv_text, plain_version, SnapshotIndex};
use super::trailer::Trailer;
use crate::source::remote::shell_quote;
use crate::source::remote::Commands;
use crate::source::SourceError;
use crate::source::{SshOptions, Target};
use crate::vault::mac::MacKey;
use crate::vault::packs::PackWriter;
use crate::vault::VaultError;

/// Where the snapshot helper lives on an etcd member.
pub const HELPER: &str = "/usr/local/libexec/sprayvault/etcd-snapshot";
/// The helper's text, as `contrib/ansible/install.yml` installs it.
pub const HELPER_SCRIPT: &str =
    include_str!("../../contrib/ansible/files/sprayvault-etcd-snapshot");

/// The `etcdctl` command line (v3 API) that talks to `endpoint` with the
/// node's kubespray admin certificate, as run on the node itself.
pub fn etcdctl(endpoint: &str, admin: &AdminCert) -> String {
    format!(
        "ETCDCTL_API=3 etcdctl --endpoints={} --cacert={} --cert={} --key={}",
        shell_quote(endpoint),
        shell_quote(&admin.cacert),
        shell_quote(&admin.cert),
        shell_quote(&admin.key)
    )
}

/// Marks the helper's first line on stderr: without it, the helper did not run.
const HELPER_MARK: &str = "sprayvault-etcd-helper ";
/// Marks the line holding the member's name (`ETCD_NAME`).
const MEMBER: &str = "sprayvault-etcd-member ";
/// Marks the line of the command's stderr that holds `snapshot status`.
const STATUS: &str = "sprayvault-etcd-status ";
/// Marks the line holding the member's `endpoint hashkv` at the snapshot's
/// revision, and the one holding its `endpoint status`.
const HASHKV: &str = "sprayvault-etcd-hashkv ";
const ENDPOINT: &str = "sprayvault-etcd-endpoint ";

/// A member name as etcd and the snapshot index carry it.
fn plain_member(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Why a member gave no snapshot to store; each names the node.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("the snapshot stream passed {0} bytes, the most this backup accepts (4 times the last snapshot's size); stopped. If the database really grew that much, raise --etcd-snapshot-limit")]
    TooLong(u64),
    #[error("node {node}: the etcd snapshot helper {HELPER} did not run ({why}); install it on every etcd member (contrib/ansible/install.yml, or the manual's manual step) and allow it in the backup account's sudo rule")]
    NoHelper { node: String, why: String },
    /// The helper ran and failed, or the connection did.
    #[error(transparent)]
    Stream(SourceError),
    #[error("node {0}: the snapshot helper named no member (is {HELPER} sprayvault's?)")]
    NoMember(String),
    #[error("node {node}: /etc/etcd.env's ETCD_NAME {:?} is not a plain member name (letters, digits, '.', '_', '-'; at most 64)", crate::term::escape(.name))]
    Member { node: String, name: String },
    #[error("node {0}: the snapshot command gave no `snapshot status`")]
    NoStatus(String),
    #[error("node {node}: cannot read `snapshot status`: {why}")]
    Status {
        node: String,
        why: serde_json::Error,
    },
    #[error("node {0}: the snapshot's sha256 trailer does not match its content (a truncated or corrupted snapshot); not stored as good")]
    Trailer(String),
    #[error("node {node}: the snapshot has {size} bytes but `snapshot status` reports a {total}-byte database")]
    Size { node: String, size: u64, total: u64 },
    #[error(transparent)]
    Vault(#[from] VaultError),
}

/// Takes, verifies and stores one snapshot from the member on `target`,
/// refusing a stream longer than `limit` bytes.
pub async fn take(
    target: &Target,
    ssh: &SshOptions,
    key: &MacKey,
    writer: &mut PackWriter<'_>,
    limit: u64,
) -> Result<SnapshotIndex, CaptureError> {
    let node = &target.node;
    let commands = Commands::new(target, ssh);
    let taken = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut trailer = Trailer::default();
    let mut seen = 0u64;
    let streamed = commands
        .stream_helper(HELPER, "taking an etcd snapshot", 1 << 20, |piece| {
            seen += piece.len() as u64;
            if seen > limit {
                return Err(CaptureError::TooLong(limit));
            }
            trailer.update(piece);
            Ok(writer.push(piece)?)
        })
        .await;
    let finished = match streamed {
        Ok(f) => f,
        Err(e) => {
            let text = e.to_string();
            if !text.contains(HELPER_MARK.trim_end()) && !text.contains("not healthy") {
                return Err(CaptureError::NoHelper {
                    node: node.clone(),
                    why: text.trim().to_string(),
                });
            }
            // The helper removes its directory however it ends (a dropped
            // connection included), and old ones at its next run.
            return Err(CaptureError::Stream(e));
        }
    };
    let member = finished
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(MEMBER))
        .map(str::trim)
        .ok_or_else(|| CaptureError::NoMember(node.clone()))?
        .to_string();
    if !plain_member(&member) {
        return Err(CaptureError::Member {
            node: node.clone(),
            name: member,
        });
    }
    let map = Some(writer.finish()?);
    let size = finished.bytes;
    let status = finished
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(STATUS))
        .ok_or_else(|| CaptureError::NoStatus(node.clone()))?;
    let status: serde_json::Value =
        serde_json::from_str(status.trim()).map_err(|why| CaptureError::Status {
            node: node.clone(),
            why,
        })?;
    let num = |k: &str| status.get(k).and_then(serde_json::Value::as_u64);
    let (revision, keys, total) = (
        num("revision").unwrap_or(0),
        num("totalKey").unwrap_or(0),
        num("totalSize"),
    );
    // The member's version and its hash of the key space at the snapshot's
    // revision, for the restore plan and trial restores; a member that
    // compacted past the revision in between, or an etcdctl without
    // hashkv, leaves them out.
    let marked = |m: &str| {
        finished
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix(m))
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j.trim()).ok())
    };
    let hashkv = marked(HASHKV)
        .and_then(|v| v[0]["HashKV"]["hash"].as_u64())
        .map(|h| key.mac(hashkv_text(revision, h).as_bytes()));
    let etcd = marked(ENDPOINT)
        .and_then(|v| v[0]["Status"]["version"].as_str().map(str::to_string))
        // Only what the index can carry and read back.
        .filter(|v| plain_version(v));
    if !trailer.valid() {
        return Err(CaptureError::Trailer(node.clone()));
    }
    if let Some(total) = total.filter(|t| t + 32 != size) {
        return Err(CaptureError::Size {
            node: node.clone(),
            size,
            total,
        });
    }
    Ok(SnapshotIndex {
        node: node.clone(),
        member,
        taken,
        revision,
        keys,
        size,
        chunks: vec![],
        map,
        etcd,
        hashkv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_helper_saves_only_inside_a_fresh_private_directory_and_takes_no_arguments() {
        let h = HELPER_SCRIPT;
        assert!(h.starts_with("#!/bin/sh\n"), "{h}");
        assert!(h.contains("umask 077"), "{h}");
        assert!(h.contains("d=$(mktemp -d /var/tmp/sprayvault-etcd-snap-XXXXXXXXXXXXXXXXXXXXXXXX)"));
        assert!(h.contains("snapshot save \"$t\""));
        assert!(h.contains("trap 'rm -rf \"$d\"' EXIT"));
        assert!(h.contains("trap 'exit 1' HUP INT TERM PIPE"));
        assert!(h.contains("takes no arguments"));
        // etcd.env is read, never sourced or evaluated.
        for bad in [". /etc", "source ", "eval "] {
            assert!(!h.contains(bad), "{bad}");
        }
        for mark in [HELPER_MARK, MEMBER, STATUS, HASHKV, ENDPOINT] {
            assert!(h.contains(mark.trim_end()), "{mark}");
        }
    }

    #[test]
    fn the_helper_is_valid_shell_and_refuses_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etcd-snapshot");
        std::fs::write(&path, HELPER_SCRIPT).unwrap();
        let syntax = std::process::Command::new("sh")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            syntax.status.success(),
            "{}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        let out = std::process::Command::new("sh")
            .arg(&path)
            .arg("--endpoints=evil")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("takes no arguments"));
    }

    #[test]
    fn member_names_are_plain() {
        assert!(plain_member("etcd1") && plain_member("node-1.example"));
        for bad in ["", "a b", "etcd\t1", "x\u{1b}[2J", &"a".repeat(65)] {
            assert!(!plain_member(bad), "{bad:?}");
        }
    }
}
