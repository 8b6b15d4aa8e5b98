//! The executor's steps on fake members: the order of the steps on every
//! member, the go given only once every member is stopped and swapped, and
//! what each failure (a member that hangs, a command that fails, a snapshot
//! that does not match its trailer) leaves behind. Time is tokio's paused
//! clock, so the deadlines pass without waiting.

use super::apply::execute;
use super::members::Deadlines;
use super::rules::{plan, three};
use super::upload::Pieces;
use super::EtcdRestoreError;
use crate::paths::parent;
use crate::progress::Silent;
use crate::source::fake::{FakeNode, Reply};
use crate::vault::VaultError;
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const STEP: Duration = Duration::from_secs(5);
const DEADLINES: Deadlines = Deadlines {
    step: STEP,
    healthy: Duration::from_secs(20),
};

/// A snapshot held in memory, handed out in pieces of `piece` bytes.
struct Mem {
    data: Vec<u8>,
    at: usize,
    piece: usize,
}

impl Pieces for Mem {
    fn next_piece(&mut self) -> Result<Option<&[u8]>, VaultError> {
        if self.at >= self.data.len() {
            return Ok(None);
        }
        let end = (self.at + self.piece).min(self.data.len());
        let p = &self.data[self.at..end];
        self.at = end;
        Ok(Some(p))
    }
}

/// A database of `n` bytes with etcd's sha256 trailer.
fn snapshot(n: usize) -> Vec<u8> {
    let mut d: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let sum = Sha256::digest(&d);
    d.extend_from_slice(&sum);
    d
}

fn pieces(data: &[u8]) -> Mem {
    Mem {
        data: data.to_vec(),
        at: 0,
        piece: 300 << 10,
    }
}

/// What a step's command is, from its text.
fn kind(cmd: &str) -> &'static str {
    if cmd.contains("sprayvault-etcd-restore-*") {
        "sweep"
    } else if cmd.contains("snapshot restore") {
        "restore"
    } else if cmd.contains("systemd-run") {
        "launch"
    } else if cmd.starts_with("cat ") {
        "state"
    } else if cmd.starts_with("ln -s") {
        if cmd.contains("ln -s go ") || cmd.contains("ln -s 'go' ") {
            "go"
        } else {
            "abort"
        }
    } else if cmd.contains("endpoint health") {
        "health"
    } else if cmd.contains("endpoint status") {
        "status"
    } else if cmd.starts_with("rm -rf") {
        "remove"
    } else {
        "other"
    }
}

/// How one fake member's script behaves.
#[derive(Default)]
struct Script {
    launched: bool,
    decision: Option<&'static str>,
    /// State answers given so far.
    asked: u32,
    /// Commands of this kind never end.
    hang: Option<&'static str>,
    /// Commands of this kind fail.
    fail: Option<&'static str>,
    /// The revision the uploaded snapshot reports.
    revision: u64,
}

/// Every member's answers, in the order given: (node, kind, answer).
type Log = Arc<Mutex<Vec<(String, &'static str, String)>>>;

/// A member that behaves like etcd and the restore script: the state goes
/// `running`, then `swapped`; `go` ends it on the restored data, `abort`
/// on its old data, both with etcd started.
fn member(name: &str, log: &Log, script: Script) -> (FakeNode, Arc<Mutex<Script>>) {
    let node = FakeNode::new(name, name);
    node.dir("/var/tmp", 0o1777, 0, 0);
    let script = Arc::new(Mutex::new(script));
    let (s, log, who) = (script.clone(), log.clone(), name.to_string());
    node.answer(move |cmd| {
        let k = kind(cmd);
        let mut s = s.lock().unwrap();
        if s.hang == Some(k) {
            return Reply::Hang;
        }
        if s.fail == Some(k) {
            return Reply::Fail(format!("{k} failed on purpose"));
        }
        let out = match k {
            "restore" => format!(
                "{{\"hash\":1,\"revision\":{},\"totalKey\":30,\"totalSize\":4096}}\n",
                s.revision
            ),
            "launch" => {
                s.launched = true;
                String::new()
            }
            "state" if s.launched => {
                s.asked += 1;
                match (s.decision, s.asked) {
                    (Some("go"), _) => "done restored started\n".into(),
                    (Some(_), _) => "done old started\n".into(),
                    (None, 1) => "running\n".into(),
                    (None, _) => "swapped\n".into(),
                }
            }
            "go" | "abort" => {
                let d = if k == "go" { "go" } else { "abort" };
                let held = *s.decision.get_or_insert(d);
                format!("{held}\n")
            }
            "health" => "healthy\n".into(),
            "status" => "[{\"Status\":{\"header\":{\"revision\":813}}}]".into(),
            _ => String::new(),
        };
        log.lock()
            .unwrap()
            .push((who.clone(), k, out.trim().to_string()));
        Reply::Out(out)
    });
    (node, script)
}

struct Cluster {
    nodes: Vec<FakeNode>,
    scripts: Vec<Arc<Mutex<Script>>>,
    log: Log,
}

/// Changes only member `n`'s behaviour, with `tweak`.
fn on(n: u8, tweak: fn(&mut Script)) -> impl Fn(u8, &mut Script) {
    move |i, s| {
        if i == n {
            tweak(s)
        }
    }
}

/// Three members; `tweak(i, script)` changes member `i`'s behaviour.
fn cluster(tweak: impl Fn(u8, &mut Script)) -> Cluster {
    let log: Log = Default::default();
    let (mut nodes, mut scripts) = (vec![], vec![]);
    for i in 1..=3u8 {
        let mut s = Script {
            revision: 812,
            ..Default::default()
        };
        tweak(i, &mut s);
        let (n, s) = member(&format!("node{i}"), &log, s);
        nodes.push(n);
        scripts.push(s);
    }
    Cluster {
        nodes,
        scripts,
        log,
    }
}

impl Cluster {
    /// The kinds of the commands run on `node`, in order, repeats of the
    /// state question folded into one.
    fn steps(&self, i: usize) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in self.nodes[i].commands.lock().unwrap().iter() {
            let k = kind(c);
            if !(k == "state" && out.last() == Some(&"state")) {
                out.push(k);
            }
        }
        out
    }

    fn ran(&self, k: &str) -> bool {
        (0..3).any(|i| self.steps(i).contains(&k))
    }
}

async fn run(c: &Cluster, data: &[u8]) -> Result<super::RestoreReport, EtcdRestoreError> {
    let p = plan(three(), false);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let nodes: Vec<&FakeNode> = c.nodes.iter().collect();
    execute(&p, &nodes, ("snap", pieces(data)), DEADLINES, &Silent).await
}

/// The message of a restore that failed in a step (not refused).
fn failed(r: Result<super::RestoreReport, EtcdRestoreError>) -> String {
    match r {
        Err(
            e @ (EtcdRestoreError::Unchanged { .. }
            | EtcdRestoreError::NotStopped { .. }
            | EtcdRestoreError::Trailer(_)),
        ) => e.to_string(),
        other => panic!("expected a failed restore, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn every_member_goes_through_the_steps_in_order_and_the_go_waits_for_all() {
    let c = cluster(|_, _| {});
    let data = snapshot(700 << 10);
    let report = run(&c, &data).await.expect("restore");
    let p = plan(three(), false);
    for (i, m) in p.members.iter().enumerate() {
        assert_eq!(
            c.steps(i),
            ["sweep", "restore", "launch", "state", "go", "state", "remove", "health", "status"],
            "{}",
            m.node
        );
        // The whole snapshot, privately, in its own directory, and the
        // script beside it.
        let up = c.nodes[i].get(&m.upload).expect("uploaded");
        assert_eq!(up.content, data);
        assert_eq!(up.meta.mode & 0o777, 0o600);
        assert_eq!(
            c.nodes[i].get(parent(&m.upload)).unwrap().meta.mode & 0o777,
            0o700
        );
        let script = c.nodes[i]
            .get(&format!("{}/member.sh", parent(&m.upload)))
            .expect("script written");
        assert!(String::from_utf8_lossy(&script.content).contains(&m.restore_dir));
        let r = &report.members[i];
        assert!(r.healthy && r.error.is_none(), "{r:?}");
        assert_eq!(r.revision, Some(813));
        assert_eq!(r.old_data.as_deref(), Some(m.aside.as_str()));
    }
    // No member got the go before every member had said `swapped`.
    let log = c.log.lock().unwrap();
    let first_go = log.iter().position(|(_, k, _)| *k == "go").unwrap();
    for n in ["node1", "node2", "node3"] {
        let swapped = log
            .iter()
            .position(|(who, k, out)| who == n && *k == "state" && out == "swapped")
            .unwrap_or_else(|| panic!("{n} never said swapped"));
        assert!(swapped < first_go, "{n}: {log:#?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_that_stops_answering_while_stopping_sends_every_member_back() {
    // node3's script started, then node3 froze: its state never comes.
    let c = cluster(on(3, |s| s.hang = Some("state")));
    let started = tokio::time::Instant::now();
    let m = failed(run(&c, &snapshot(10 << 10)).await);
    assert!(
        m.starts_with("stopping etcd failed, so nothing was restored"),
        "{m}"
    );
    assert!(m.contains("node3: did not answer for 5 s"), "{m}");
    assert!(!c.ran("go"), "{m}");
    for i in 0..2 {
        assert_eq!(
            c.scripts[i].lock().unwrap().decision,
            Some("abort"),
            "node{}",
            i + 1
        );
        assert!(
            c.steps(i).ends_with(&["abort", "state", "remove"]),
            "{:?}",
            c.steps(i)
        );
    }
    // node3 was told too, once more and briefly, in case it is only slow;
    // its directory stays for its own script.
    assert!(c.steps(2).contains(&"abort"), "{:?}", c.steps(2));
    assert!(!c.steps(2).contains(&"remove"), "{:?}", c.steps(2));
    assert!(
        m.contains("node1 is back on its old data, etcd was started"),
        "{m}"
    );
    // Cut off within the deadlines: the settle time twice, and a step.
    assert!(
        started.elapsed() <= DEADLINES.settle() * 2 + STEP,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_member_that_hangs_restoring_is_cut_off_and_nothing_is_stopped() {
    let c = cluster(on(2, |s| s.hang = Some("restore")));
    let m = failed(run(&c, &snapshot(10 << 10)).await);
    assert!(
        m.starts_with(
            "restoring the snapshot failed, nothing was changed and etcd was not stopped"
        ),
        "{m}"
    );
    assert!(
        m.contains("node node2: restoring the snapshot did not finish within 5 s"),
        "{m}"
    );
    assert!(!c.ran("launch"), "{m}");
    // The uploads and restored copies are removed on every member.
    let p = plan(three(), false);
    for (i, mp) in p.members.iter().enumerate() {
        assert_eq!(c.steps(i).last(), Some(&"remove"), "{:?}", c.steps(i));
        let rm = c.nodes[i].commands.lock().unwrap().last().unwrap().clone();
        assert!(rm.contains(&mp.restore_dir), "{rm}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_upload_that_reports_another_revision_stops_before_etcd_does() {
    let c = cluster(on(1, |s| s.revision = 999));
    let m = failed(run(&c, &snapshot(10 << 10)).await);
    assert!(
        m.contains("node1: the uploaded snapshot reports revision 999, the vault's index 812"),
        "{m}"
    );
    assert!(!c.ran("launch"), "{m}");
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_that_fails_its_trailer_is_removed_unrestored() {
    let c = cluster(|_, _| {});
    let mut data = snapshot(10 << 10);
    data[100] ^= 1;
    let m = failed(run(&c, &data).await);
    assert!(m.contains("does not match its sha256 trailer"), "{m}");
    for i in 0..3 {
        assert_eq!(c.steps(i), ["sweep", "remove"], "node{}", i + 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_failed_sweep_changes_nothing() {
    let c = cluster(on(3, |s| s.fail = Some("sweep")));
    let m = failed(run(&c, &snapshot(10 << 10)).await);
    assert!(m.contains("sweep failed on purpose"), "{m}");
    assert!(m.ends_with("nothing was changed"), "{m}");
    let p = plan(three(), false);
    for (i, mp) in p.members.iter().enumerate() {
        assert_eq!(c.steps(i), ["sweep"]);
        assert!(c.nodes[i].get(parent(&mp.upload)).is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn a_member_that_stays_unhealthy_after_the_go_is_reported_by_name() {
    let c = cluster(on(2, |s| s.hang = Some("health")));
    let report = run(&c, &snapshot(10 << 10)).await.expect("report");
    let bad = &report.members[1];
    assert!(!bad.healthy, "{bad:?}");
    let why = bad.error.as_deref().unwrap();
    assert!(why.starts_with("not healthy 20 s after the go"), "{why}");
    assert!(report.members[0].healthy && report.members[2].healthy);
    // Every member got the go: the cluster runs on the restored data.
    for s in &c.scripts {
        assert_eq!(s.lock().unwrap().decision, Some("go"));
    }
}
