//! Taking a snapshot from one etcd member over SSH: `etcdctl snapshot save`
//! on the node with its kubespray admin certificate (the paths its
//! etcd.env gives), `snapshot status` (etcdutl's where the node has it) for
//! revision and key count, the file streaming back over the ssh session into
//! the chunker while etcdctl writes it. The file on the node is always
//! removed; nothing of the snapshot touches the control host's disk.

use super::chunker::Chunker;
use super::env::{AdminCert, EtcdEnv};
use super::index::SnapshotIndex;
use super::store::ChunkWriter;
use super::trailer::Trailer;
use crate::source::remote::shell_quote;
use crate::source::{Remote, SshOptions, Target};
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
    let node = &target.node;
    let remote = Remote::connect(target, ssh)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        let env = EtcdEnv::parse(&String::from_utf8_lossy(&remote.read("/etc/etcd.env").await.map_err(|e| e.to_string())?));
        let member = env.get("ETCD_NAME").ok_or(format!("node {node}: /etc/etcd.env has no ETCD_NAME"))?.to_string();
        let endpoint = env
            .first_url("ETCD_ADVERTISE_CLIENT_URLS")
            .ok_or(format!("node {node}: /etc/etcd.env has no ETCD_ADVERTISE_CLIENT_URLS"))?
            .to_string();
        let nonce: u64 = rand::random();
        let tmp = format!("/var/tmp/sprayvault-etcd-{nonce:016x}.db");
        let ctl = etcdctl(&endpoint, &env.admin(node));
        // A member that is down would make `snapshot save` wait for its whole
        // command timeout: ask for health first, briefly. Then the file is
        // followed (by descriptor: etcdctl renames `.part` when done) while
        // etcdctl writes it, so the transfer overlaps the save; the trailer
        // check and `snapshot status` below catch any short or mixed read.
        let save = format!(
            "umask 077; find /var/tmp -maxdepth 1 -name 'sprayvault-etcd-*' -mmin +60 -delete 2>/dev/null; \
             {ctl} --dial-timeout=5s --command-timeout=10s endpoint health >/dev/null 2>&1 || {{ echo \"etcd member at $(printf %s {ep}) is not healthy\" >&2; exit 1; }}; \
             {ctl} --dial-timeout=10s --command-timeout=600s snapshot save {t} >/dev/null 2>{log} & pid=$!; \
             while [ ! -e {t}.part ] && [ ! -e {t} ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done; \
             {{ command exec 3<{t}.part || command exec 3<{t}; }} 2>/dev/null || {{ wait $pid; cat {log} >&2; rm -f {log}; exit 1; }}; \
             tail -c +1 -s 0.05 --pid=$pid -f /dev/fd/3; wait $pid; rc=$?; \
             [ $rc = 0 ] || cat {log} >&2; rm -f {log}; exit $rc",
            ep = shell_quote(&endpoint),
            t = shell_quote(&tmp),
            log = shell_quote(&format!("{tmp}.log")),
        );
        let taken = time::OffsetDateTime::now_utc().unix_timestamp();
        let streamed = async {
            let mut chunker = Chunker::new(key);
            let mut trailer = Trailer::default();
            let mut chunks: Vec<(String, u64)> = Vec::new();
            let mut store = |chunk: &[u8]| -> Result<(), String> {
                let mac = key.mac(chunk);
                writer.put(&mac, chunk).map_err(|e| e.to_string())?;
                chunks.push((mac, chunk.len() as u64));
                Ok(())
            };
            let size = remote
                .stream_privileged(&save, "taking an etcd snapshot", 1 << 20, |piece| {
                    trailer.update(piece);
                    chunker.push(piece, &mut store)
                })
                .await
                .map_err(|e| e.to_string())?;
            chunker.finish(&mut store)?;
            // etcd 3.5 deprecates `etcdctl snapshot status` for etcdutl's.
            let status = format!(
                "if command -v etcdutl >/dev/null 2>&1; then etcdutl snapshot status {t} -w json; \
                 else ETCDCTL_API=3 etcdctl snapshot status {t} -w json; fi",
                t = shell_quote(&tmp)
            );
            let status = remote.run_privileged(&status, "reading the snapshot's status").await;
            let status: serde_json::Value = serde_json::from_str(status.map_err(|e| e.to_string())?.trim())
                .map_err(|e| format!("node {node}: cannot read `snapshot status`: {e}"))?;
            let num = |k: &str| status.get(k).and_then(serde_json::Value::as_u64);
            let (revision, keys, total) = (num("revision").unwrap_or(0), num("totalKey").unwrap_or(0), num("totalSize"));
            if !trailer.valid() {
                return Err(format!("node {node}: the snapshot's sha256 trailer does not match its content (a truncated or corrupted snapshot); not stored as good"));
            }
            if total.is_some_and(|t| t + 32 != size) {
                return Err(format!("node {node}: the snapshot has {size} bytes but `snapshot status` reports a {}-byte database", total.unwrap_or(0)));
            }
            Ok(SnapshotIndex { node: node.clone(), member: member.clone(), taken, revision, keys, size, chunks })
        }
        .await;
        let removed = remote
            .run_privileged(
                &format!("rm -f {t} {t}.part {t}.log", t = shell_quote(&tmp)),
                "removing the snapshot file",
            )
            .await;
        let index = streamed?;
        removed.map_err(|e| format!("{e} (the snapshot file {tmp} may be left on the node)"))?;
        Ok(index)
    }
    .await;
    remote.close().await;
    result
}
