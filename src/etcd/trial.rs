//! Trial restore: does a stored etcd snapshot really restore to what its
//! backup recorded? On the machine that holds the identity (never a node):
//!
//! 1. a private directory (0700, a new name in memory-backed storage:
//!    `$XDG_RUNTIME_DIR`, else `/dev/shm`, else the temporary directory)
//!    receives the reassembled, decrypted snapshot (0600), its sha256
//!    trailer checked on the way;
//! 2. the local `etcdutl` (etcd 3.5) or `etcdctl` (3.4) reads its
//!    `snapshot status` and restores it into that directory;
//! 3. a throwaway single-member etcd serves it on unix sockets inside that
//!    directory (no TCP port: only this user can connect); its revision,
//!    key count, `endpoint hashkv` and a sample of keys are read back
//!    through `etcdctl`;
//! 4. etcd is stopped and the directory removed, whatever happened.
//!
//! [`compare`] (pure) then says what disagrees with the vault's index.
//! The plaintext database exists only in that private directory, and only
//! for the length of the trial.

use super::index::{hashkv_text, SnapshotIndex};
use super::store::StoredSnapshot;
use super::trailer::Trailer;
use crate::progress::Progress;
use crate::vault::crypto::Identity;
use crate::vault::{Vault, VaultError};
use serde::Serialize;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use thiserror::Error;

mod command;
pub use command::CommandError;
use command::{clean, json, output};

/// How many keys are read back one by one.
pub const SAMPLE: usize = 5;

#[derive(Debug, Error)]
pub enum TrialError {
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("no local etcd to restore into: a trial restore needs etcd and etcdctl (and etcdutl for etcd 3.5) in one directory of PATH or in /usr/local/bin; install etcd 3.4 or 3.5 on this machine (Debian: apt-get install etcd-server etcd-client)")]
    NoEtcd,
    #[error("trial restore of etcd snapshot {snapshot}: {what}")]
    Failed { snapshot: String, what: String },
}

impl crate::error::Classify for TrialError {
    fn class(&self) -> crate::error::ErrorClass {
        match self {
            TrialError::Vault(v) => v.class(),
            _ => crate::error::ErrorClass::Failed,
        }
    }
}

/// The etcd programs of this machine that a trial uses, all from one
/// directory so that their versions agree.
#[derive(Clone, Debug, Serialize)]
pub struct LocalEtcd {
    pub etcd: PathBuf,
    pub etcdctl: PathBuf,
    /// `etcdutl` where the directory has it, else `etcdctl`.
    pub snapshot_tool: PathBuf,
    pub version: String,
}

/// Finds etcd in the directories of `path` (a `PATH` value), then in
/// `/usr/local/bin` (where kubespray installs it).
pub fn find_local(path: Option<OsString>) -> Result<LocalEtcd, TrialError> {
    let mut dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.push(PathBuf::from("/usr/local/bin"));
    for d in dirs.iter().filter(|d| d.is_absolute()) {
        let (etcd, etcdctl, etcdutl) = (d.join("etcd"), d.join("etcdctl"), d.join("etcdutl"));
        if !(etcd.is_file() && etcdctl.is_file()) {
            continue;
        }
        let version = Command::new(&etcd)
            .arg("--version")
            .env_clear()
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout).lines().find_map(|l| {
                    l.strip_prefix("etcd Version:")
                        .map(|v| v.trim().to_string())
                })
            })
            .unwrap_or_default();
        if version.is_empty() {
            continue;
        }
        let snapshot_tool = if etcdutl.is_file() {
            etcdutl
        } else {
            etcdctl.clone()
        };
        return Ok(LocalEtcd {
            etcd,
            etcdctl,
            snapshot_tool,
            version,
        });
    }
    Err(TrialError::NoEtcd)
}

/// What the trial read back.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Observed {
    /// The reassembled file ends with the sha256 of its content.
    pub trailer_ok: bool,
    /// Bytes of the reassembled file.
    pub size: u64,
    /// `snapshot status` of the file: revision, total keys, database size.
    pub status_revision: Option<u64>,
    pub status_keys: Option<u64>,
    pub status_db_size: Option<u64>,
    /// The throwaway etcd's revision and number of live keys.
    pub served_revision: Option<u64>,
    pub served_keys: Option<u64>,
    /// The keyed hash of the throwaway etcd's `endpoint hashkv` at the
    /// recorded revision (compared with the member's, recorded at backup).
    pub served_hashkv: Option<String>,
    /// Keys read back one by one, and those that did not come back.
    pub sample: Vec<String>,
    pub sample_missing: Vec<String>,
    /// etcd's own tool could not read or restore the file.
    pub unreadable: Option<String>,
}

/// The result of one trial restore.
#[derive(Clone, Debug, Serialize)]
pub struct TrialReport {
    pub snapshot: String,
    pub recorded: SnapshotIndex,
    pub observed: Observed,
    /// Local etcd version used, and its snapshot tool.
    pub etcd_version: String,
    pub tool: String,
    /// The private directory used (removed at the end).
    pub workdir: String,
    /// Everything that disagrees with the vault's index; empty when it matches.
    pub mismatches: Vec<String>,
    pub seconds: f64,
}

/// Every way `o` disagrees with what the backup recorded in `rec`.
pub fn compare(rec: &SnapshotIndex, o: &Observed) -> Vec<String> {
    let mut m = Vec::new();
    let show = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "nothing".into());
    if o.size != rec.size {
        m.push(format!(
            "the reassembled file has {} bytes, the backup recorded {}",
            o.size, rec.size
        ));
    }
    if !o.trailer_ok {
        m.push("the reassembled file does not end with the sha256 of its content (etcd's integrity trailer)".into());
    }
    if let Some(why) = &o.unreadable {
        // Nothing was served: the checks below would only repeat it.
        m.push(format!("etcd's own tool cannot restore it: {why}"));
        return m;
    }
    if o.status_revision != Some(rec.revision) {
        m.push(format!(
            "`snapshot status` reports revision {}, the backup recorded {}",
            show(o.status_revision),
            rec.revision
        ));
    }
    if o.status_keys != Some(rec.keys) {
        m.push(format!(
            "`snapshot status` reports {} keys, the backup recorded {}",
            show(o.status_keys),
            rec.keys
        ));
    }
    if let Some(db) = o.status_db_size {
        if db + 32 != o.size {
            m.push(format!(
                "`snapshot status` reports a {db}-byte database in a {}-byte file",
                o.size
            ));
        }
    }
    if o.served_revision != Some(rec.revision) {
        m.push(format!(
            "the restored etcd serves revision {}, the backup recorded {}",
            show(o.served_revision),
            rec.revision
        ));
    }
    match o.served_keys {
        None => m.push("the restored etcd did not report its key count".into()),
        // `keys` counts every entry of the database (each revision of each
        // key among them): the live keys can never be more.
        Some(n) if n > rec.keys => m.push(format!(
            "the restored etcd serves {n} keys, more than the {} database entries the backup recorded",
            rec.keys
        )),
        Some(_) => {}
    }
    if !o.sample_missing.is_empty() {
        m.push(format!(
            "keys listed by the restored etcd do not read back: {}",
            o.sample_missing.join(", ")
        ));
    }
    // The whole key space: the member's hash at backup against the
    // throwaway etcd's, at the same revision (vaults written before
    // sprayvault recorded it have none: see [`content_check`]).
    if rec.hashkv.is_some() && o.served_hashkv != rec.hashkv {
        m.push(match &o.served_hashkv {
            Some(_) => format!(
                "the restored etcd's `endpoint hashkv` at revision {} differs from the member's at backup: the key space is not what was backed up",
                rec.revision
            ),
            None => format!(
                "the restored etcd gave no `endpoint hashkv` at revision {}",
                rec.revision
            ),
        });
    }
    m
}

/// How much of the content a trial compares: the whole key space when the
/// snapshot's index recorded the member's `endpoint hashkv`, else (snapshots
/// written before) revision, key count and a sample of keys only.
pub fn content_check(rec: &SnapshotIndex) -> &'static str {
    if rec.hashkv.is_some() {
        "the whole key space (endpoint hashkv at the snapshot's revision)"
    } else {
        "revision, key count and a sample of keys only (this snapshot was taken before sprayvault recorded endpoint hashkv)"
    }
}

/// Picks up to `n` keys spread evenly over `keys` (sorted, as etcd lists them).
pub fn spread(keys: &[String], n: usize) -> Vec<String> {
    if keys.len() <= n {
        return keys.to_vec();
    }
    (0..n)
        .map(|i| keys[i * (keys.len() - 1) / (n - 1).max(1)].clone())
        .collect()
}

/// Where the decrypted database may live in memory, not on disk:
/// `$XDG_RUNTIME_DIR` (the user's own tmpfs, 0700) when it is a directory
/// only its owner can enter, else `/dev/shm` (a tmpfs on Linux).
fn memory_dir() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let own = |p: &Path| {
        std::fs::symlink_metadata(p).is_ok_and(|m| {
            m.is_dir() && m.uid() == unsafe { libc::geteuid() } && m.mode() & 0o077 == 0
        })
    };
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        if own(&x) {
            return Some(x);
        }
    }
    let shm = Path::new("/dev/shm");
    std::fs::symlink_metadata(shm)
        .is_ok_and(|m| m.is_dir())
        .then(|| shm.to_path_buf())
}

/// The private directory and the etcd in it; both go on drop.
struct Workdir {
    dir: PathBuf,
    etcd: Option<Child>,
}

impl Workdir {
    fn new() -> Result<Workdir, std::io::Error> {
        let base = memory_dir().unwrap_or_else(std::env::temp_dir);
        let mut tries = 0;
        loop {
            let dir = base.join(format!("sprayvault-trial-{:016x}", rand::random::<u64>()));
            // create, never create_all: an existing name (or a planted
            // symlink) fails instead of being used.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {
                    // The umask cannot widen 0700, but make sure of it.
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(0o700),
                    )?;
                    return Ok(Workdir { dir, etcd: None });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && tries < 10 => tries += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn stop_etcd(&mut self) {
        if let Some(mut c) = self.etcd.take() {
            // SIGTERM first: etcd closes its database cleanly.
            unsafe {
                libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
            }
            let end = Instant::now() + Duration::from_secs(10);
            while Instant::now() < end {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        self.stop_etcd();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn b64(s: &str) -> Option<String> {
    use std::collections::HashMap;
    // etcdctl's JSON gives keys in standard base64.
    let table: HashMap<u8, u8> =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
            .iter()
            .enumerate()
            .map(|(i, c)| (*c, i as u8))
            .collect();
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        acc = (acc << 6) | u32::from(*table.get(&c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

/// A unix socket URL inside the work directory: etcd makes the socket
/// `localhost:N` in its working directory (the 0700 work directory), so no
/// other local user can connect (no TCP port is opened at all).
fn socket_url() -> String {
    format!("unix://localhost:{}", 20000 + rand::random::<u16>() % 40000)
}

/// Restores `file` into the work directory and starts etcd on it, its
/// client and peer listeners unix sockets inside that directory; returns
/// its client URL once it answers.
fn serve(
    local: &LocalEtcd,
    file: &Path,
    work: &mut Workdir,
    progress: &dyn Progress,
) -> Result<String, Served> {
    for attempt in 1..=3 {
        let (peer_url, client_url) = loop {
            let (p, c) = (socket_url(), socket_url());
            if p != c {
                break (p, c);
            }
        };
        let data = work.dir.join(format!("data-{attempt}"));
        output(
            clean(&local.snapshot_tool)
                .args(["snapshot", "restore"])
                .arg(file)
                .arg("--data-dir")
                .arg(&data)
                .args([
                    "--name",
                    "trial",
                    "--initial-cluster",
                    &format!("trial={peer_url}"),
                    "--initial-advertise-peer-urls",
                    &peer_url,
                ]),
            "snapshot restore",
        )
        .map_err(|e| Served::Unrestorable(e.to_string()))?;
        let log_path = work.dir.join(format!("etcd-{attempt}.log"));
        let log = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&log_path)
            .map_err(|e| Served::Failed(format!("cannot create {}: {e}", log_path.display())))?;
        let err_log = log
            .try_clone()
            .map_err(|e| Served::Failed(format!("etcd's log: {e}")))?;
        progress.info(&format!(
            "starting a throwaway etcd {} on {client_url}",
            local.version
        ));
        let child = clean(&local.etcd)
            .current_dir(&work.dir)
            .arg("--name=trial")
            .arg(format!("--data-dir={}", data.display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=trial={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| Served::Failed(format!("cannot start {}: {e}", local.etcd.display())))?;
        work.etcd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = clean(&local.etcdctl)
                .current_dir(&work.dir)
                .arg(format!("--endpoints={client_url}"))
                .args([
                    "--dial-timeout=2s",
                    "--command-timeout=10s",
                    "endpoint",
                    "health",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if health.is_ok_and(|s| s.success()) {
                return Ok(client_url);
            }
            let exited = work.etcd.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            work.stop_etcd();
            if exited.is_some() && text.contains("address already in use") && attempt < 3 {
                break;
            }
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            return Err(Served::Failed(match exited {
                Some(st) => format!("the throwaway etcd exited ({st}): {tail}"),
                None => format!("the throwaway etcd did not become healthy within 60 s: {tail}"),
            }));
        }
    }
    Err(Served::Failed(
        "no free pair of loopback ports for the throwaway etcd after 3 tries".into(),
    ))
}

/// Why [`serve`] gave no etcd.
enum Served {
    /// `snapshot restore` refused the file: a finding about the snapshot.
    Unrestorable(String),
    /// This machine could not run the throwaway etcd.
    Failed(String),
}

/// Restores `snap` with `local` into a private directory, serves it, reads
/// it back, and compares. Environmental failures (no etcd, a port taken,
/// etcd not starting) are errors; disagreement with the vault is a report
/// with mismatches.
pub fn trial(
    vault: &Vault,
    snap: &StoredSnapshot,
    identity: &Identity,
    local: &LocalEtcd,
    progress: &dyn Progress,
) -> Result<TrialReport, TrialError> {
    let started = Instant::now();
    let failed = |what: &dyn std::fmt::Display| TrialError::Failed {
        snapshot: snap.name.clone(),
        what: what.to_string(),
    };
    let mut work = Workdir::new().map_err(|e| {
        failed(&format!(
            "cannot make a private directory under {}: {e}",
            memory_dir().unwrap_or_else(std::env::temp_dir).display()
        ))
    })?;
    let mut o = Observed::default();

    // 1. The snapshot, decrypted into the private directory only.
    let file = work.dir.join("snapshot.db");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| failed(&format!("cannot create {}: {e}", file.display())))?;
        let mut trailer = Trailer::default();
        super::reassemble::read(vault, snap, identity, |piece| {
            trailer.update(piece);
            o.size += piece.len() as u64;
            f.write_all(piece)
        })?;
        f.sync_all()
            .map_err(|e| failed(&format!("writing {}: {e}", file.display())))?;
        o.trailer_ok = trailer.valid();
    }
    progress.info(&format!(
        "snapshot {} reassembled ({} bytes) in {}",
        snap.name,
        o.size,
        work.dir.display()
    ));

    // 2. What etcd's own tool says of the file, then the restore. A file
    // it cannot read is a finding about the snapshot, not an error.
    let status = output(
        clean(&local.snapshot_tool)
            .args(["snapshot", "status", "-w", "json"])
            .arg(&file),
        "snapshot status",
    )
    .and_then(|s| json(&s, "snapshot status"));
    let status = match status {
        Ok(s) => s,
        Err(why) => {
            o.unreadable = Some(why.to_string());
            return finish(snap, local, work, o, started).map_err(|e| failed(&e));
        }
    };
    o.status_revision = status["revision"].as_u64();
    o.status_keys = status["totalKey"].as_u64();
    o.status_db_size = status["totalSize"].as_u64();

    // 3. A throwaway etcd on loopback only.
    let client_url = match serve(local, &file, &mut work, progress) {
        Ok(url) => url,
        Err(Served::Unrestorable(why)) => {
            o.unreadable = Some(why);
            return finish(snap, local, work, o, started).map_err(|e| failed(&e));
        }
        Err(Served::Failed(why)) => return Err(failed(&why)),
    };
    // The database is in the data directory now: the file is not needed.
    let _ = std::fs::remove_file(&file);
    let work_dir = work.dir.clone();
    let ctl = |args: &[&str]| {
        let mut c = clean(&local.etcdctl);
        c.current_dir(&work_dir)
            .arg(format!("--endpoints={client_url}"))
            .args(["--dial-timeout=2s", "--command-timeout=30s"])
            .args(args);
        c
    };
    let st = output(
        &mut ctl(&["endpoint", "status", "-w", "json"]),
        "endpoint status",
    )
    .and_then(|s| json(&s, "endpoint status"))
    .map_err(|e| failed(&e))?;
    o.served_revision = st[0]["Status"]["header"]["revision"].as_u64();
    if snap.index.hashkv.is_some() {
        let rev = format!("--rev={}", snap.index.revision);
        let key = vault.current_content_key(identity)?;
        o.served_hashkv = output(
            &mut ctl(&["endpoint", "hashkv", &rev, "-w", "json"]),
            "endpoint hashkv",
        )
        .and_then(|s| json(&s, "endpoint hashkv"))
        .ok()
        .and_then(|v| v[0]["HashKV"]["hash"].as_u64())
        .map(|h| key.mac(hashkv_text(snap.index.revision, h).as_bytes()));
    }
    let listed = output(
        &mut ctl(&["get", "", "--prefix", "--keys-only", "-w", "json"]),
        "listing the keys",
    )
    .and_then(|s| json(&s, "get --keys-only"))
    .map_err(|e| failed(&e))?;
    o.served_keys = listed["count"]
        .as_u64()
        .or_else(|| listed["kvs"].as_array().map(|a| a.len() as u64))
        .or(Some(0));
    let keys: Vec<String> = listed["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| kv["key"].as_str().and_then(b64))
                .collect()
        })
        .unwrap_or_default();
    for key in spread(&keys, SAMPLE) {
        let got = output(
            &mut ctl(&["get", "-w", "json", "--", &key]),
            "reading a key",
        )
        .and_then(|s| json(&s, "get"));
        let back = got.ok().and_then(|v| {
            v["kvs"]
                .as_array()
                .and_then(|a| a.first().cloned())
                .and_then(|kv| kv["key"].as_str().and_then(b64))
        });
        if back.as_deref() == Some(key.as_str()) {
            o.sample.push(key);
        } else {
            o.sample_missing.push(key);
        }
    }

    finish(snap, local, work, o, started).map_err(|e| failed(&e))
}

/// 4. Stops etcd, removes the private directory (an error if it stays),
///    and compares.
fn finish(
    snap: &StoredSnapshot,
    local: &LocalEtcd,
    mut work: Workdir,
    o: Observed,
    started: Instant,
) -> Result<TrialReport, CommandError> {
    let workdir = work.dir.display().to_string();
    work.stop_etcd();
    drop(work);
    if Path::new(&workdir).exists() {
        return Err(CommandError::Leftover(workdir));
    }
    let mismatches = compare(&snap.index, &o);
    Ok(TrialReport {
        snapshot: snap.name.clone(),
        recorded: snap.index.clone(),
        observed: o,
        etcd_version: local.version.clone(),
        tool: local
            .snapshot_tool
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        workdir,
        mismatches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded() -> SnapshotIndex {
        SnapshotIndex {
            node: "node1".into(),
            member: "etcd1".into(),
            taken: 1795140000,
            revision: 81,
            keys: 95,
            size: 20512,
            chunks: vec![],
            map: None,
            etcd: None,
            hashkv: None,
        }
    }

    fn good() -> Observed {
        Observed {
            trailer_ok: true,
            size: 20512,
            status_revision: Some(81),
            status_keys: Some(95),
            status_db_size: Some(20480),
            served_revision: Some(81),
            served_hashkv: None,
            served_keys: Some(50),
            sample: vec!["/registry/a".into()],
            sample_missing: vec![],
            unreadable: None,
        }
    }

    #[test]
    fn a_snapshot_that_restores_as_recorded_matches() {
        assert_eq!(compare(&recorded(), &good()), Vec::<String>::new());
    }

    #[test]
    fn a_recorded_hashkv_is_compared_and_a_different_one_named() {
        let rec = SnapshotIndex {
            hashkv: Some("a".repeat(64)),
            ..recorded()
        };
        let same = Observed {
            served_hashkv: Some("a".repeat(64)),
            ..good()
        };
        assert_eq!(compare(&rec, &same), Vec::<String>::new());
        let other = Observed {
            served_hashkv: Some("b".repeat(64)),
            ..good()
        };
        let m = compare(&rec, &other);
        assert_eq!(m.len(), 1, "{m:?}");
        assert!(
            m[0].contains("`endpoint hashkv` at revision 81 differs from the member's at backup"),
            "{m:?}"
        );
        assert_eq!(compare(&rec, &good()).len(), 1);
        // Snapshots taken before: the other checks only, and said so.
        assert!(
            content_check(&recorded()).contains("taken before sprayvault recorded endpoint hashkv")
        );
        assert!(content_check(&rec).contains("whole key space"));
    }

    #[test]
    fn each_disagreement_is_named() {
        let cases: Vec<(Observed, &str)> = vec![
            (
                Observed {
                    served_revision: Some(82),
                    ..good()
                },
                "serves revision 82, the backup recorded 81",
            ),
            (
                Observed {
                    status_revision: Some(80),
                    ..good()
                },
                "reports revision 80, the backup recorded 81",
            ),
            (
                Observed {
                    status_keys: Some(94),
                    ..good()
                },
                "reports 94 keys, the backup recorded 95",
            ),
            (
                Observed {
                    trailer_ok: false,
                    ..good()
                },
                "integrity trailer",
            ),
            (
                Observed {
                    size: 20000,
                    status_db_size: Some(19968),
                    ..good()
                },
                "20000 bytes, the backup recorded 20512",
            ),
            (
                Observed {
                    status_db_size: Some(100),
                    ..good()
                },
                "100-byte database in a 20512-byte file",
            ),
            (
                Observed {
                    served_keys: Some(96),
                    ..good()
                },
                "serves 96 keys, more than the 95",
            ),
            (
                Observed {
                    served_keys: None,
                    ..good()
                },
                "did not report its key count",
            ),
            (
                Observed {
                    served_revision: None,
                    ..good()
                },
                "serves revision nothing",
            ),
            (
                Observed {
                    sample_missing: vec!["/registry/x".into()],
                    ..good()
                },
                "do not read back: /registry/x",
            ),
            (
                Observed {
                    unreadable: Some("snapshot restore failed: bad".into()),
                    served_revision: None,
                    served_keys: None,
                    ..good()
                },
                "etcd's own tool cannot restore it: snapshot restore failed: bad",
            ),
        ];
        for (o, want) in cases {
            let got = compare(&recorded(), &o);
            assert_eq!(got.len(), 1, "{want}: {got:?}");
            assert!(got[0].contains(want), "{want}: {got:?}");
        }
    }

    #[test]
    fn the_sample_spreads_over_the_keys() {
        let keys: Vec<String> = (0..100).map(|i| format!("k{i:03}")).collect();
        assert_eq!(spread(&keys, 5), ["k000", "k024", "k049", "k074", "k099"]);
        assert_eq!(spread(&keys[..3], 5).len(), 3);
        assert_eq!(spread(&keys[..1], 1), ["k000"]);
        assert!(spread(&[], 5).is_empty());
    }

    #[test]
    fn the_work_directory_is_private_and_goes_away() {
        use std::os::unix::fs::PermissionsExt;
        let w = Workdir::new().unwrap();
        let dir = w.dir.clone();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        std::fs::write(dir.join("db"), "plaintext").unwrap();
        drop(w);
        assert!(!dir.exists());
    }

    #[test]
    fn etcdctl_json_keys_are_base64() {
        assert_eq!(b64("L3JlZ2lzdHJ5L2E=").as_deref(), Some("/registry/a"));
        assert_eq!(b64("Zm9vYg==").as_deref(), Some("foob"));
        assert_eq!(b64("!!"), None);
    }

    #[test]
    fn local_etcd_is_found_in_one_directory_of_path() {
        let d = std::env::temp_dir().join(format!("sv-trial-find-{}", std::process::id()));
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        // a has only etcdctl: not a usable directory; b has all three.
        std::fs::write(a.join("etcdctl"), "").unwrap();
        for n in ["etcdctl", "etcdutl"] {
            std::fs::write(b.join(n), "").unwrap();
        }
        let script = b.join("etcd");
        std::fs::write(&script, "#!/bin/sh\necho 'etcd Version: 3.5.9'\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let path = std::env::join_paths([&a, &b]).unwrap();
        let found = find_local(Some(path)).unwrap();
        assert_eq!(found.etcd, script);
        assert_eq!(found.snapshot_tool, b.join("etcdutl"));
        assert_eq!(found.version, "3.5.9");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
