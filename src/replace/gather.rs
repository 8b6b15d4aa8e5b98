//! Reading what a replacement plan is decided from: the vault's record of
//! the node, the node itself (the restore plan), and every other etcd
//! member through its own connection and admin certificate. Reads only.

use super::plan::{EtcdSeen, NodeSeen, Observed, OtherMember, RecordedMember};
use super::ReplaceError;
use crate::etcd::env::EtcdEnv;
use crate::etcd::flags;
use crate::etcd::member::{self, Etcdctl};
use crate::inventory::Inventory;
use crate::restore;
use crate::source::connections::Connections;
use crate::source::{Remote, SourceError};
use crate::vault::crypto::Identity;
use crate::vault::trust::Authentic;
use crate::vault::{Backup, Vault};
use std::collections::BTreeMap;

pub const ENV_PATH: &str = "/etc/etcd.env";

/// What was read, for the plan and for carrying it out.
pub struct Gathered {
    pub observed: Observed,
    /// The node's restore plan (without `/etc/etcd.env` for a member: the
    /// replacement writes it itself). `None` when the node was not reached.
    pub restore: Option<restore::Plan>,
    /// The vault's `/etc/etcd.env` of the node: its entry and text.
    pub recorded_env: Option<(crate::vault::manifest::Entry, Vec<u8>)>,
    /// How to reach each other member that answered, by node.
    pub ctls: BTreeMap<String, Etcdctl>,
}

/// Why a member's `etcd.env` (the vault's copy, or the live one) cannot be
/// used; shown in the plan.
#[derive(Clone, Debug, thiserror::Error)]
enum EnvProblem {
    #[error("backup {0} has no state for it")]
    NoNode(String),
    #[error("backup {0} holds no {ENV_PATH} for it; was it an etcd member then?")]
    NoEnv(String),
    #[error("its {ENV_PATH} in backup {backup} has no {}", .missing.join(", "))]
    Missing {
        backup: String,
        missing: Vec<&'static str>,
    },
    #[error("ETCD_DATA_DIR {0:?} in its {ENV_PATH} is not an absolute path")]
    DataDir(String),
}

fn recorded_member(env: &EtcdEnv, backup: &Backup) -> Result<RecordedMember, EnvProblem> {
    let missing: Vec<&'static str> = ["ETCD_NAME", "ETCD_INITIAL_ADVERTISE_PEER_URLS"]
        .into_iter()
        .filter(|k| env.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(EnvProblem::Missing {
            backup: backup.short_id(),
            missing,
        });
    }
    let data_dir = env.data_dir().trim_end_matches('/').to_string();
    if !data_dir.starts_with('/') || data_dir.split('/').any(|c| c == "..") {
        return Err(EnvProblem::DataDir(data_dir));
    }
    Ok(RecordedMember {
        name: env.get("ETCD_NAME").unwrap_or_default().to_string(),
        peer_urls: env
            .get("ETCD_INITIAL_ADVERTISE_PEER_URLS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect(),
        data_dir,
    })
}

async fn other_member(
    remote: Result<&Remote, String>,
    node: &str,
) -> (OtherMember, Option<Etcdctl>) {
    let mut m = OtherMember {
        node: node.to_string(),
        name: None,
        health: Ok(()),
        members: None,
    };
    let r = match remote {
        Ok(r) => r,
        Err(e) => {
            m.health = Err(e);
            return (m, None);
        }
    };
    let (env, ctl) = match Etcdctl::from_live_env(r).await {
        Ok(x) => x,
        Err(e) => {
            m.health = Err(e.to_string());
            return (m, None);
        }
    };
    m.name = env.get("ETCD_NAME").map(str::to_string);
    m.health = member::health(r, &ctl).await.map_err(|e| e.to_string());
    if m.health.is_ok() {
        match member::list(r, &ctl).await {
            Ok(list) => m.members = Some(list),
            Err(e) => m.health = Err(e.to_string()),
        }
    }
    (m, Some(ctl))
}

/// Reads everything the plan needs through `nodes`: the connection to
/// `node` (or why there is none), and one to each other host of the etcd
/// group, in the inventory's order.
pub async fn gather(
    vault: &Vault,
    backup: &Authentic<Backup>,
    identity: &Identity,
    inventory: &Inventory,
    node: &str,
    nodes: &Connections,
    force: bool,
) -> Result<Gathered, ReplaceError> {
    // Where there is no connection, why not: a reason the plan shows.
    let node_remote = nodes
        .get(node)
        .map(|r| r.map_err(SourceError::reason))
        .unwrap_or_else(|| Err("no connection to it was opened".into()));
    let others: Vec<(&str, Result<&Remote, String>)> = nodes
        .each()
        .filter(|(n, _)| *n != node)
        .map(|(n, r)| (n, r.map_err(SourceError::reason)))
        .collect();
    let backup_has_node = backup.nodes.contains_key(node);
    let host = inventory.hosts.get(node);
    let is_etcd = host.is_some_and(|h| h.is_etcd());
    let mut recorded_env = None;
    let mut restore_plan = None;
    let target = match &node_remote {
        Err(e) => Err(e.clone()),
        Ok(remote) if backup_has_node => {
            let mut plan = restore::make_plan(vault, backup, node, identity, *remote).await?;
            if is_etcd {
                if let Some((e, Some(text))) = plan.recorded(ENV_PATH) {
                    recorded_env = Some((e.clone(), text.to_vec()));
                }
                plan.skip(ENV_PATH);
            }
            let seen = NodeSeen {
                hostname: plan.target_hostname.clone(),
                differing: plan.count(restore::Action::Replace),
            };
            restore_plan = Some(plan);
            Ok(seen)
        }
        Ok(remote) => Ok(NodeSeen {
            hostname: remote.hostname().await?,
            differing: 0,
        }),
    };
    let mut ctls = BTreeMap::new();
    let etcd = if is_etcd {
        let recorded = if !backup_has_node {
            Err(EnvProblem::NoNode(backup.short_id()))
        } else if let Some((_, text)) = &recorded_env {
            recorded_member(&EtcdEnv::parse(&String::from_utf8_lossy(text)), backup)
        } else if backup.nodes[node].blobs.contains_key(ENV_PATH) {
            let text = vault.decrypt_file(backup, node, ENV_PATH, identity)?;
            recorded_member(&EtcdEnv::parse(&String::from_utf8_lossy(&text)), backup)
        } else {
            Err(EnvProblem::NoEnv(backup.short_id()))
        }
        .map_err(|e| e.to_string());
        let seen =
            futures_util::future::join_all(others.into_iter().map(|(n, r)| other_member(r, n)))
                .await;
        let mut list = Vec::new();
        for (m, ctl) in seen {
            if let (Ok(()), Some(ctl)) = (&m.health, ctl) {
                ctls.insert(m.node.clone(), ctl);
            }
            list.push(m);
        }
        let own_healthy = match &node_remote {
            Ok(r) => match Etcdctl::from_live_env(r).await {
                Ok((_, ctl)) => member::health(r, &ctl).await.is_ok(),
                Err(_) => false,
            },
            Err(_) => false,
        };
        // The node's etcd must start on the etcd.env the replacement writes
        // (the vault's, with the new cluster's settings: same keys).
        let env_check = match (&node_remote, &recorded_env) {
            (Ok(r), Some((_, text))) => r
                .run_privileged(flags::PROBE, "reading etcd's version and flags")
                .await
                .ok()
                .map(|out| {
                    let bin = flags::Binary::parse(&out);
                    let v = flags::check(&EtcdEnv::parse(&String::from_utf8_lossy(text)), &bin);
                    (bin, v)
                }),
            _ => None,
        };
        Some(EtcdSeen {
            inventory_name: inventory
                .etcd_member_name(node)
                .unwrap_or_else(|| ("etcd1".into(), false)),
            recorded,
            others: list,
            own_healthy,
            env_check,
        })
    } else {
        None
    };
    let deployment_type = host
        .and_then(|h| h.vars.get("etcd_deployment_type"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    Ok(Gathered {
        observed: Observed {
            node: node.to_string(),
            backup: backup.short_id(),
            backup_has_node,
            deployment_type,
            target,
            etcd,
            force,
            control_plane: inventory.control_plane_order.clone(),
        },
        restore: restore_plan,
        recorded_env,
        ctls,
    })
}
