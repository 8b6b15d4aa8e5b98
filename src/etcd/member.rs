//! Membership of a running etcd cluster, over one member's own `etcdctl`
//! and its kubespray admin certificate: list, add as a learner, remove,
//! promote, and endpoint health.
//!
//! The certificate paths come from the member's own `/etc/etcd.env`
//! (`ETCDCTL_CERT`, `ETCDCTL_KEY`, `ETCDCTL_CACERT`, as kubespray writes
//! them), falling back to kubespray's defaults, so a moved `etcd_cert_dir`
//! works. The parsers of etcdctl's output are pure and unit-tested.

use super::env::EtcdEnv;
use crate::source::remote::shell_quote;
use crate::source::Remote;
use serde::Serialize;

/// Where kubespray writes a member's etcd settings.
const LIVE_ENV: &str = "/etc/etcd.env";

/// Why a member's etcd cannot be asked: its `etcd.env` is unreadable or
/// names no client URL.
#[derive(Debug, thiserror::Error)]
pub enum NoEtcdctl {
    #[error("{}", .0.reason())]
    Read(crate::source::SourceError),
    #[error("{LIVE_ENV} has no ETCD_ADVERTISE_CLIENT_URLS")]
    NoClientUrl,
}

/// How to reach one member with its own admin certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Etcdctl {
    pub endpoint: String,
    pub cacert: String,
    pub cert: String,
    pub key: String,
}

impl Etcdctl {
    /// From `node`'s own `etcd.env`; `None` when it names no client URL.
    pub fn from_env(node: &str, env: &EtcdEnv) -> Option<Etcdctl> {
        let endpoint = env.first_url("ETCD_ADVERTISE_CLIENT_URLS")?.to_string();
        let admin = env.admin(node);
        Some(Etcdctl {
            endpoint,
            cacert: admin.cacert,
            cert: admin.cert,
            key: admin.key,
        })
    }

    /// A member's live `/etc/etcd.env` and an etcdctl with its admin
    /// certificate, read over `remote`.
    pub async fn from_live_env(remote: &Remote) -> Result<(EtcdEnv, Etcdctl), NoEtcdctl> {
        let text = remote
            .read(LIVE_ENV, crate::source::remote::SMALL_FILE_LIMIT)
            .await
            .map_err(NoEtcdctl::Read)?;
        let env = EtcdEnv::parse(&String::from_utf8_lossy(&text));
        let ctl = Etcdctl::from_env(&remote.target.node, &env).ok_or(NoEtcdctl::NoClientUrl)?;
        Ok((env, ctl))
    }

    /// The command line, run on the member itself, with `args` (already quoted).
    pub fn command(&self, args: &str) -> String {
        format!(
            "ETCDCTL_API=3 etcdctl --endpoints={} --cacert={} --cert={} --key={} --dial-timeout=3s --command-timeout=10s {args}",
            shell_quote(&self.endpoint),
            shell_quote(&self.cacert),
            shell_quote(&self.cert),
            shell_quote(&self.key)
        )
    }
}

/// One member as `member list -w json` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Member {
    /// etcd's member id, as etcdctl prints it (hex).
    pub id: String,
    /// Empty for a member added but never started.
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub learner: bool,
}

impl Member {
    /// Has it ever started (a started member publishes its name and client URLs)?
    pub fn started(&self) -> bool {
        !self.name.is_empty()
    }
}

/// What etcdctl said when a member command failed, or why its output
/// could not be read. Callers add the node's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemberError {
    /// etcdctl's one-line error, its JSON log lines taken out.
    #[error("{0}")]
    Command(String),
    #[error("`member list -w json` is not JSON: {0}")]
    NotJson(String),
    #[error("`member list -w json` has no members")]
    NoMembers,
    #[error("a member without an ID in `member list -w json`")]
    NoId,
    #[error("`member add` printed no member id: {0}")]
    NoAddedId(String),
    #[error("`member add` printed no ETCD_INITIAL_CLUSTER: {0}")]
    NoInitialCluster(String),
}

impl MemberError {
    /// etcd answered that the member is not (or no longer) there.
    pub fn member_not_found(&self) -> bool {
        matches!(self, MemberError::Command(t) if t.contains("member not found"))
    }
}

/// Parses `etcdctl member list -w json`.
pub fn parse_list(json: &str) -> Result<Vec<Member>, MemberError> {
    let v: serde_json::Value =
        serde_json::from_str(json.trim()).map_err(|e| MemberError::NotJson(e.to_string()))?;
    let members = v
        .get("members")
        .and_then(|m| m.as_array())
        .ok_or(MemberError::NoMembers)?;
    let strings = |m: &serde_json::Value, k: &str| -> Vec<String> {
        m.get(k)
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    members
        .iter()
        .map(|m| {
            let id = m
                .get("ID")
                .and_then(|i| i.as_u64())
                .ok_or(MemberError::NoId)?;
            Ok(Member {
                id: format!("{id:x}"),
                name: m
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or("")
                    .to_string(),
                peer_urls: strings(m, "peerURLs"),
                client_urls: strings(m, "clientURLs"),
                learner: m.get("isLearner").and_then(|l| l.as_bool()) == Some(true),
            })
        })
        .collect()
}

/// What `member add` reports: the new id and the `ETCD_INITIAL_CLUSTER`
/// the new member must start with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Added {
    pub id: String,
    pub initial_cluster: String,
}

/// Parses the text output of `etcdctl member add` (`Member ID added to
/// cluster ...` then `ETCD_*="..."` lines).
pub fn parse_added(text: &str) -> Result<Added, MemberError> {
    let id = text
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("Member")).then(|| w.next()).flatten()
        })
        .filter(|id| u64::from_str_radix(id, 16).is_ok())
        .ok_or_else(|| MemberError::NoAddedId(text.trim().to_string()))?;
    let env = EtcdEnv::parse(text);
    let initial_cluster = env
        .get("ETCD_INITIAL_CLUSTER")
        .ok_or_else(|| MemberError::NoInitialCluster(text.trim().to_string()))?;
    Ok(Added {
        id: id.to_string(),
        initial_cluster: initial_cluster.to_string(),
    })
}

/// The member a replacement takes the place of: the one with the name, or
/// the one with one of the peer URLs. `Err` when those are two different
/// members (someone else holds the name or the address).
pub fn find<'a>(
    members: &'a [Member],
    name: &str,
    peer_urls: &[String],
) -> Result<Option<&'a Member>, (&'a Member, &'a Member)> {
    let by_name = members.iter().find(|m| !name.is_empty() && m.name == name);
    let by_peer = members
        .iter()
        .find(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u)));
    match (by_name, by_peer) {
        (Some(a), Some(b)) if a.id != b.id => Err((a, b)),
        (a, b) => Ok(a.or(b)),
    }
}

/// `KEY=value` lines of an `etcd.env` with `set` replacing (or appended
/// after) the variables it names; everything else kept as it was.
pub fn rewrite_env(text: &str, set: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut done = vec![false; set.len()];
    for line in text.lines() {
        let key = line
            .trim_start()
            .split_once('=')
            .map(|(k, _)| k.trim())
            .filter(|_| !line.trim_start().starts_with('#'));
        match key.and_then(|k| set.iter().position(|(s, _)| *s == k)) {
            Some(i) if !done[i] => {
                out.push_str(&format!("{}={}\n", set[i].0, set[i].1));
                done[i] = true;
            }
            Some(_) => {}
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for (i, (k, v)) in set.iter().enumerate() {
        if !done[i] {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    out
}

/// What went wrong, without the node's name (callers add it) and without
/// the JSON log lines etcdctl's client prints before its one-line error.
fn why(e: crate::source::SourceError) -> MemberError {
    MemberError::Command(clean(&e.reason()))
}

/// `what: stderr` with etcdctl's JSON log lines taken out.
fn clean(reason: &str) -> String {
    let lines: Vec<&str> = reason
        .lines()
        .map(|l| l.find("{\"level\"").map(|i| &l[..i]).unwrap_or(l).trim())
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(" ").replace(":  ", ": ")
}

/// `member list` through `ctl` on `remote`.
pub async fn list(remote: &Remote, ctl: &Etcdctl) -> Result<Vec<Member>, MemberError> {
    let out = remote
        .run_privileged(
            &ctl.command("member list -w json"),
            "listing etcd's members",
        )
        .await
        .map_err(why)?;
    parse_list(&out)
}

/// `endpoint health` of the member `ctl` points at.
pub async fn health(remote: &Remote, ctl: &Etcdctl) -> Result<(), MemberError> {
    remote
        .run_privileged(
            &ctl.command("endpoint health"),
            "asking etcd for its health",
        )
        .await
        .map(|_| ())
        .map_err(why)
}

/// `member add NAME --peer-urls URLS --learner`.
pub async fn add_learner(
    remote: &Remote,
    ctl: &Etcdctl,
    name: &str,
    peer_urls: &[String],
) -> Result<Added, MemberError> {
    let out = remote
        .run_privileged(
            &ctl.command(&format!(
                "member add {} --peer-urls={} --learner",
                shell_quote(name),
                shell_quote(&peer_urls.join(","))
            )),
            "adding the etcd member as a learner",
        )
        .await
        .map_err(why)?;
    parse_added(&out)
}

pub async fn remove(remote: &Remote, ctl: &Etcdctl, id: &str) -> Result<(), MemberError> {
    remote
        .run_privileged(
            &ctl.command(&format!("member remove {}", shell_quote(id))),
            "removing the old etcd member",
        )
        .await
        .map(|_| ())
        .map_err(why)
}

pub async fn promote(remote: &Remote, ctl: &Etcdctl, id: &str) -> Result<(), MemberError> {
    remote
        .run_privileged(
            &ctl.command(&format!("member promote {}", shell_quote(id))),
            "promoting the learner",
        )
        .await
        .map(|_| ())
        .map_err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"header":{"cluster_id":2410853639071664841,"member_id":8372692735784576085,"raft_term":2},"members":[{"ID":1488142609611786700,"name":"etcd3","peerURLs":["https://127.0.92.13:2380"],"clientURLs":["https://127.0.92.13:2379"]},{"ID":8372692735784576085,"name":"etcd1","peerURLs":["https://127.0.92.11:2380"],"clientURLs":["https://127.0.92.11:2379"]},{"ID":12615451954926290613,"peerURLs":["https://127.0.92.99:2380"],"isLearner":true}]}"#;

    #[test]
    fn reads_member_list_json_of_etcd_3_4() {
        let m = parse_list(LIST).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].id, "14a6f1d1a50889cc");
        assert_eq!(m[0].name, "etcd3");
        assert!(m[0].started() && !m[0].learner);
        assert_eq!(m[2].id, "af1316b6a66386b5");
        assert!(m[2].learner && !m[2].started());
        assert_eq!(m[2].peer_urls, vec!["https://127.0.92.99:2380"]);
        assert!(parse_list("Error: context deadline exceeded").is_err());
    }

    #[test]
    fn reads_member_add_output() {
        let out = "Member af1316b6a66386b5 added to cluster 2175129c8a530ac9\n\nETCD_NAME=\"etcdx\"\nETCD_INITIAL_CLUSTER=\"etcd3=https://127.0.92.13:2380,etcd1=https://127.0.92.11:2380,etcdx=https://127.0.92.99:2380\"\nETCD_INITIAL_ADVERTISE_PEER_URLS=\"https://127.0.92.99:2380\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n";
        let a = parse_added(out).unwrap();
        assert_eq!(a.id, "af1316b6a66386b5");
        assert_eq!(
            a.initial_cluster,
            "etcd3=https://127.0.92.13:2380,etcd1=https://127.0.92.11:2380,etcdx=https://127.0.92.99:2380"
        );
        assert!(parse_added("Member added\n").is_err());
    }

    #[test]
    fn finds_the_member_by_name_or_peer_url() {
        let m = parse_list(LIST).unwrap();
        let peer = |u: &str| vec![u.to_string()];
        assert_eq!(
            find(&m, "etcd3", &peer("https://127.0.92.13:2380"))
                .unwrap()
                .unwrap()
                .id,
            "14a6f1d1a50889cc"
        );
        // Added but never started: no name, found by its peer URL.
        assert_eq!(
            find(&m, "etcdx", &peer("https://127.0.92.99:2380"))
                .unwrap()
                .unwrap()
                .id,
            "af1316b6a66386b5"
        );
        assert!(find(&m, "etcd9", &peer("https://10.0.0.9:2380"))
            .unwrap()
            .is_none());
        // The name is etcd3's, the address etcd1's: ambiguous.
        assert!(find(&m, "etcd3", &peer("https://127.0.92.11:2380")).is_err());
    }

    #[test]
    fn admin_certificates_come_from_etcd_env() {
        let env = EtcdEnv::parse(
            "ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.3:2379\nETCDCTL_CERT=/srv/etcd/admin-n3.pem\nETCDCTL_KEY=/srv/etcd/admin-n3-key.pem\nETCDCTL_CACERT=/srv/etcd/ca.pem\n",
        );
        let c = Etcdctl::from_env("n3", &env).unwrap();
        assert_eq!(c.cert, "/srv/etcd/admin-n3.pem");
        assert_eq!(c.cacert, "/srv/etcd/ca.pem");
        let d = Etcdctl::from_env(
            "n3",
            &EtcdEnv::parse("ETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.3:2379\n"),
        )
        .unwrap();
        assert_eq!(d.key, "/etc/ssl/etcd/ssl/admin-n3-key.pem");
        assert_eq!(d.cacert, "/etc/ssl/etcd/ssl/ca.pem");
        assert!(Etcdctl::from_env("n3", &EtcdEnv::parse("ETCD_NAME=x\n")).is_none());
    }

    #[test]
    fn etcdctl_json_log_lines_are_left_out_of_errors() {
        let r = "asking etcd for its health: {\"level\":\"warn\",\"msg\":\"retrying of unary invoker failed\"}\nhttps://10.0.0.1:2379 is unhealthy: failed to commit proposal: context deadline exceeded\nError: unhealthy cluster";
        assert_eq!(
            clean(r),
            "asking etcd for its health: https://10.0.0.1:2379 is unhealthy: failed to commit proposal: context deadline exceeded Error: unhealthy cluster"
        );
    }

    #[test]
    fn rewrites_only_the_named_variables() {
        let text =
            "# etcd\nETCD_NAME=etcd3\nETCD_INITIAL_CLUSTER_STATE=new\nETCD_INITIAL_CLUSTER=a=b\n";
        let out = rewrite_env(
            text,
            &[
                ("ETCD_INITIAL_CLUSTER_STATE", "existing"),
                ("ETCD_INITIAL_CLUSTER", "etcd1=u1,etcd3=u3"),
            ],
        );
        assert_eq!(out, "# etcd\nETCD_NAME=etcd3\nETCD_INITIAL_CLUSTER_STATE=existing\nETCD_INITIAL_CLUSTER=etcd1=u1,etcd3=u3\n");
        assert_eq!(
            rewrite_env(
                "ETCD_NAME=x\n",
                &[("ETCD_INITIAL_CLUSTER_STATE", "existing")]
            ),
            "ETCD_NAME=x\nETCD_INITIAL_CLUSTER_STATE=existing\n"
        );
    }
}
