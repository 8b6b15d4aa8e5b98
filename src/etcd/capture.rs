//! Taking a snapshot from one etcd member over SSH: `etcdctl snapshot save`
//! on the node with its kubespray admin certificate (the paths its
//! etcd.env gives), `snapshot status` (etcdutl's where the node has it) for
//! revision and key count, the file streaming back over ssh into the
//! chunker while etcdctl writes it, all in one command line (one `ssh`
//! process). The file on the node is always removed; nothing of the snapshot
//! touches the control host's disk.

use super::chunker::Chunker;
use super::env::{AdminCert, EtcdEnv};
use super::index::{hashkv_text, plain_version, SnapshotIndex};
use super::store::ChunkWriter;
use super::trailer::Trailer;
use crate::source::remote::shell_quote;
use crate::source::remote::Commands;
use crate::source::{SshOptions, Target};
use crate::vault::mac::MacKey;
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

/// Takes, verifies and stores one snapshot from the member on `target`.
/// Errors are sentences naming the node.
pub async fn take(
    target: &Target,
    ssh: &SshOptions,
    key: &MacKey,
    writer: &mut ChunkWriter<'_>,
) -> Result<SnapshotIndex, String> {
    take_with_env(target, ssh, None, key, writer).await
}

/// Marks the line of the command's stderr that holds `snapshot status`.
const STATUS: &str = "sprayvault-etcd-status ";
/// Marks the line holding the member's `endpoint hashkv` at the snapshot's
/// revision, and the one holding its `endpoint status`.
const HASHKV: &str = "sprayvault-etcd-hashkv ";
const ENDPOINT: &str = "sprayvault-etcd-endpoint ";

/// Like [`take`], with the member's `/etc/etcd.env` already read (a backup
/// has just read it): then the snapshot costs one `ssh` process, the command
/// that saves, streams, checks and removes it.
pub async fn take_with_env(
    target: &Target,
    ssh: &SshOptions,
    env: Option<&[u8]>,
    key: &MacKey,
    writer: &mut ChunkWriter<'_>,
) -> Result<SnapshotIndex, String> {
    let node = &target.node;
    let commands = Commands::new(target, ssh);
    let text = match env {
        Some(t) => String::from_utf8_lossy(t).to_string(),
        None => commands
            .run_privileged("cat /etc/etcd.env", "reading /etc/etcd.env")
            .await
            .map_err(|e| e.to_string())?,
    };
    let env = EtcdEnv::parse(&text);
    let member = env
        .get("ETCD_NAME")
        .ok_or(format!("node {node}: /etc/etcd.env has no ETCD_NAME"))?
        .to_string();
    let endpoint = env
        .first_url("ETCD_ADVERTISE_CLIENT_URLS")
        .ok_or(format!(
            "node {node}: /etc/etcd.env has no ETCD_ADVERTISE_CLIENT_URLS"
        ))?
        .to_string();
    let nonce: u64 = rand::random();
    let prefix = format!("{SNAP_PREFIX}{nonce:016x}.");
    let save = save_command(&etcdctl(&endpoint, &env.admin(node)), &endpoint, &prefix);
    let taken = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut chunker = Chunker::new(key);
    let mut trailer = Trailer::default();
    let mut chunks: Vec<(String, u64)> = Vec::new();
    let mut store = |chunk: &[u8]| -> Result<(), String> {
        let mac = key.mac(chunk);
        writer.put(&mac, chunk).map_err(|e| e.to_string())?;
        chunks.push((mac, chunk.len() as u64));
        Ok(())
    };
    let streamed = commands
        .stream_privileged(&save, "taking an etcd snapshot", 1 << 20, |piece| {
            trailer.update(piece);
            chunker.push(piece, &mut store)
        })
        .await;
    let finished = match streamed {
        Ok(f) => f,
        Err(e) => {
            // The command removes the file when it ends; a cut connection
            // may have stopped it first.
            let removed = commands
                .run_privileged(
                    &format!(
                        "find /var/tmp -maxdepth 1 -type d -user 0 -name {} -exec rm -rf {{}} +",
                        shell_quote(&format!("{prefix}*"))
                    ),
                    "removing the snapshot file",
                )
                .await;
            let left = match removed {
                Ok(_) => String::new(),
                Err(_) => format!(" (a directory /var/tmp/{prefix}* holding the snapshot may be left on the node)"),
            };
            return Err(format!("{e}{left}"));
        }
    };
    chunker.finish(&mut store)?;
    let size = finished.bytes;
    let status = finished
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix(STATUS))
        .ok_or(format!(
            "node {node}: the snapshot command gave no `snapshot status`"
        ))?;
    let status: serde_json::Value = serde_json::from_str(status.trim())
        .map_err(|e| format!("node {node}: cannot read `snapshot status`: {e}"))?;
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
        return Err(format!("node {node}: the snapshot's sha256 trailer does not match its content (a truncated or corrupted snapshot); not stored as good"));
    }
    if total.is_some_and(|t| t + 32 != size) {
        return Err(format!(
            "node {node}: the snapshot has {size} bytes but `snapshot status` reports a {}-byte database",
            total.unwrap_or(0)
        ));
    }
    Ok(SnapshotIndex {
        node: node.clone(),
        member,
        taken,
        revision,
        keys,
        size,
        chunks,
        etcd,
        hashkv,
    })
}

/// Names of the directories snapshots are saved in, under `/var/tmp`.
const SNAP_PREFIX: &str = "sprayvault-etcd-snap-";

/// The command line that saves a snapshot on the node into a fresh root-only
/// directory `/var/tmp/PREFIX<random>` (made by `mktemp -d`, so nobody else
/// can create, open or swap anything inside it, whatever they learn of its
/// name) and streams it to stdout while etcdctl writes it, then prints
/// `snapshot status` on stderr after [`STATUS`]; the directory is removed
/// however it ends, and ones older than an hour (of runs cut off) with it.
fn save_command(ctl: &str, endpoint: &str, prefix: &str) -> String {
    // A member that is down would make `snapshot save` wait for its whole
    // command timeout: ask for health first, briefly. Then the file is
    // followed (by descriptor: etcdctl renames `.part` when done) while
    // etcdctl writes it, so the transfer overlaps the save; the trailer
    // check and `snapshot status` catch any short or mixed read.
    format!(
        "umask 077; \
         find /var/tmp -maxdepth 1 -type d -user 0 -name '{SNAP_PREFIX}*' -mmin +60 -exec rm -rf {{}} + 2>/dev/null; \
         d=$(mktemp -d {tmpl}) || exit 1; trap 'rm -rf \"$d\"' EXIT; t=\"$d/snapshot.db\"; log=\"$d/log\"; \
         {ctl} --dial-timeout=5s --command-timeout=10s endpoint health >/dev/null 2>&1 || {{ echo \"etcd member at $(printf %s {ep}) is not healthy\" >&2; exit 1; }}; \
         {ctl} --dial-timeout=10s --command-timeout=600s snapshot save \"$t\" >/dev/null 2>\"$log\" & pid=$!; \
         while [ ! -e \"$t.part\" ] && [ ! -e \"$t\" ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; \
         {{ command exec 3<\"$t.part\" || command exec 3<\"$t\"; }} 2>/dev/null || {{ wait $pid; cat \"$log\" >&2; exit 1; }}; \
         tail -c +1 -s 0.05 --pid=$pid -f /dev/fd/3; wait $pid; rc=$?; \
         [ $rc = 0 ] || {{ cat \"$log\" >&2; exit $rc; }}; \
         st=$(etcdutl snapshot status \"$t\" -w json 2>/dev/null || ETCDCTL_API=3 etcdctl snapshot status \"$t\" -w json) || exit 1; \
         {{ printf '{STATUS}'; printf %s \"$st\" | tr -d '\\r\\n'; echo; }} >&2; \
         rev=$(printf %s \"$st\" | sed -n 's/.*\"revision\":\\([0-9]*\\).*/\\1/p'); \
         {{ printf '{HASHKV}'; {ctl} --dial-timeout=5s --command-timeout=60s endpoint hashkv --rev=\"$rev\" -w json 2>/dev/null | tr -d '\\r\\n'; echo; }} >&2; \
         {{ printf '{ENDPOINT}'; {ctl} --dial-timeout=5s --command-timeout=10s endpoint status -w json 2>/dev/null | tr -d '\\r\\n'; echo; }} >&2",
        ep = shell_quote(endpoint),
        tmpl = shell_quote(&format!("/var/tmp/{prefix}XXXXXXXXXX")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_is_saved_only_inside_a_fresh_private_directory() {
        let c = save_command(
            "etcdctl",
            "https://10.0.0.1:2379",
            "sprayvault-etcd-snap-00ab.",
        );
        assert!(c.starts_with("umask 077;"), "{c}");
        assert!(
            c.contains("mktemp -d '/var/tmp/sprayvault-etcd-snap-00ab.XXXXXXXXXX'"),
            "{c}"
        );
        assert!(c.contains("snapshot save \"$t\""), "{c}");
        // Nothing but the directory itself is named under /var/tmp.
        for (i, _) in c.match_indices("/var/tmp/") {
            assert!(
                c[i..].starts_with("/var/tmp/sprayvault-etcd-snap-00ab.XXXXXXXXXX"),
                "{c}"
            );
        }
    }

    #[test]
    fn the_snapshot_command_runs_in_a_real_shell() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(save_command("etcdctl", "https://10.0.0.1:2379", "p."))
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
