//! The etcd and control-plane checks of a preflight: every member's health
//! and quorum, the members of the limit, kubespray's first control-plane
//! host. Pure, as the rest of [`super`].

use super::{check, Check, Status};

/// One etcd member host, as asked through its own admin certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSeen {
    pub node: String,
    /// kubespray's member name for it (`etcd_member_name`, else `etcdN`).
    pub name: String,
    /// `endpoint health` through its own connection and certificate.
    pub health: Result<(), String>,
}

/// A member as the cluster lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub learner: bool,
}

/// Decides the etcd checks: every member's health, quorum, and the state of
/// the members in the limit.
pub fn etcd_checks(
    members: &[MemberSeen],
    listed: Option<&[Listed]>,
    limit: &[String],
) -> Vec<Check> {
    let mut out = Vec::new();
    if members.is_empty() {
        return out;
    }
    for m in members {
        out.push(match &m.health {
            Ok(()) => check("etcd", &m.node, Status::Ok, format!("member {} healthy", m.name), None),
            Err(why) if limit.contains(&m.node) => check(
                "etcd",
                &m.node,
                Status::Warn,
                format!("member {} not healthy ({why}); it is in the limit, so the run is to fix it", m.name),
                None,
            ),
            Err(why) => check(
                "etcd",
                &m.node,
                Status::Fail,
                format!("member {} not healthy: {why}; kubespray's etcd role stops on an unhealthy cluster", m.name),
                Some(format!("bring etcd on {} back (systemctl start etcd), or add {} to the limit, or replace it first (sprayvault replace {})", m.node, m.node, m.node)),
            ),
        });
    }
    let healthy = members.iter().filter(|m| m.health.is_ok()).count();
    let voters = listed.map_or(members.len(), |l| {
        l.iter().filter(|m| !m.learner).count().max(1)
    });
    let needed = voters / 2 + 1;
    if healthy < needed {
        out.push(check(
            "etcd",
            "cluster",
            Status::Fail,
            format!(
                "{healthy} of {voters} voting members healthy, {needed} needed: quorum is lost"
            ),
            Some("restore the cluster from a snapshot first: sprayvault etcd restore".into()),
        ));
    } else {
        out.push(check(
            "etcd",
            "cluster",
            Status::Ok,
            format!("quorum: {healthy} of {voters} voting members healthy"),
            None,
        ));
    }
    if let Some(listed) = listed {
        for m in members.iter().filter(|m| limit.contains(&m.node)) {
            match listed.iter().find(|l| l.name == m.name) {
                None => out.push(check(
                    "etcd",
                    &m.node,
                    Status::Fail,
                    format!(
                        "member {} is not in the cluster: kubespray's --limit run does not add it",
                        m.name
                    ),
                    Some(format!(
                        "sprayvault replace {} (adds it back as a learner, then promotes it)",
                        m.node
                    )),
                )),
                Some(l) if l.learner => out.push(check(
                    "etcd",
                    &m.node,
                    Status::Fail,
                    format!("member {} is a learner, without a vote", m.name),
                    Some(format!(
                        "sprayvault replace {} (promotes it once caught up)",
                        m.node
                    )),
                )),
                Some(_) if m.health.is_err() => out.push(check(
                    "etcd",
                    &m.node,
                    Status::Fail,
                    format!(
                        "member {} is in the cluster but its etcd does not answer",
                        m.name
                    ),
                    Some(format!(
                        "sprayvault replace {} (a new member under the same name)",
                        m.node
                    )),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

/// Decides the check of kubespray's first control-plane host.
pub fn first_control_plane_check(
    control_plane: &[String],
    limit: &[String],
    reached: Option<bool>,
    etcd_healthy: Option<bool>,
) -> Option<Check> {
    let first = control_plane.first()?;
    let others: Vec<&String> = control_plane.iter().skip(1).collect();
    if limit.contains(first) {
        let fix = match others.first() {
            Some(o) => format!(
                "for this run list {first} after {} in kube_control_plane (and etcd), and check the cluster-info ConfigMap names {o} and the cluster's CA",
                others.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            None => "run cluster.yml without --limit".into(),
        };
        return Some(check(
            "first control plane",
            first,
            Status::Warn,
            format!("{first} is in the limit and first in kube_control_plane: kubespray treats it as the host that initialises the control plane"),
            Some(fix),
        ));
    }
    if reached == Some(false) || etcd_healthy == Some(false) {
        return Some(check(
            "first control plane",
            first,
            Status::Fail,
            format!("{first}, first in kube_control_plane, is not reachable and healthy: kubespray runs control-plane steps through it"),
            Some(format!("handle {first} first (sprayvault replace {first}), or reorder kube_control_plane so that a healthy host comes first")),
        ));
    }
    Some(check(
        "first control plane",
        first,
        Status::Ok,
        format!("{first} reachable and healthy"),
        None,
    ))
}
