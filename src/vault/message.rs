//! The commit message of a backup: a human summary line and machine-readable
//! trailers recording when the run happened and how every node fared
//! (see vault-layout, "Commit message").

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeStatus {
    /// Every entry was read.
    Ok,
    /// Reached, but some entries failed; they were carried over.
    Partial(String),
    /// Unreachable: the node's previous state was carried over.
    Failed(String),
    /// Not part of this run (--limit, or no longer in the inventory).
    Carried,
}

impl NodeStatus {
    pub fn word(&self) -> &'static str {
        match self {
            NodeStatus::Ok => "ok",
            NodeStatus::Partial(_) => "partial",
            NodeStatus::Failed(_) => "failed",
            NodeStatus::Carried => "carried",
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            NodeStatus::Partial(r) | NodeStatus::Failed(r) => Some(r),
            _ => None,
        }
    }
}

/// What a commit records about its run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub kind: String,
    pub summary: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub nodes: BTreeMap<String, NodeStatus>,
    /// `(node, path, reason)` for entries that could not be read.
    pub errors: Vec<(String, String, String)>,
    /// The etcd snapshot of this run: `ok <ref> ...` or `failed <reason>`.
    pub etcd: Option<String>,
    /// The control host: `ok <version>`, `partial <reason>`, `failed <reason>`
    /// or `carried <reason>`.
    pub control: Option<String>,
}

fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

impl RunRecord {
    pub fn new(kind: &str, summary: String) -> RunRecord {
        RunRecord {
            kind: kind.into(),
            summary,
            started: None,
            finished: None,
            nodes: BTreeMap::new(),
            errors: vec![],
            etcd: None,
            control: None,
        }
    }

    pub fn to_message(&self) -> String {
        let mut m = format!(
            "{}\n\nSprayvault-Format: {}\nSprayvault-Kind: {}\n",
            one_line(&self.summary),
            super::config::FORMAT,
            self.kind
        );
        if let Some(s) = &self.started {
            m.push_str(&format!("Sprayvault-Started: {s}\n"));
        }
        if let Some(s) = &self.finished {
            m.push_str(&format!("Sprayvault-Finished: {s}\n"));
        }
        for (node, st) in &self.nodes {
            match st.reason() {
                Some(r) => m.push_str(&format!(
                    "Sprayvault-Node: {node} {} {}\n",
                    st.word(),
                    one_line(r)
                )),
                None => m.push_str(&format!("Sprayvault-Node: {node} {}\n", st.word())),
            }
        }
        if let Some(e) = &self.etcd {
            m.push_str(&format!("Sprayvault-Etcd: {}\n", one_line(e)));
        }
        if let Some(c) = &self.control {
            m.push_str(&format!("Sprayvault-Control: {}\n", one_line(c)));
        }
        for (node, path, why) in &self.errors {
            m.push_str(&format!(
                "Sprayvault-Error: {node} {}\t{}\n",
                one_line(path).replace('\t', " "),
                one_line(why)
            ));
        }
        m
    }

    /// Reads the trailers back; unknown trailers are ignored so that newer
    /// writers stay readable.
    pub fn parse(message: &str) -> RunRecord {
        let mut lines = message.lines();
        let summary = lines.next().unwrap_or("").to_string();
        let mut r = RunRecord::new("", summary);
        for line in lines {
            let Some((key, value)) = line.split_once(": ") else {
                continue;
            };
            match key {
                "Sprayvault-Kind" => r.kind = value.to_string(),
                "Sprayvault-Started" => r.started = Some(value.to_string()),
                "Sprayvault-Finished" => r.finished = Some(value.to_string()),
                "Sprayvault-Node" => {
                    let mut it = value.splitn(3, ' ');
                    let node = it.next().unwrap_or("").to_string();
                    let word = it.next().unwrap_or("");
                    let reason = it.next().unwrap_or("").to_string();
                    let st = match word {
                        "ok" => NodeStatus::Ok,
                        "partial" => NodeStatus::Partial(reason),
                        "failed" => NodeStatus::Failed(reason),
                        _ => NodeStatus::Carried,
                    };
                    r.nodes.insert(node, st);
                }
                "Sprayvault-Etcd" => r.etcd = Some(value.to_string()),
                "Sprayvault-Control" => r.control = Some(value.to_string()),
                "Sprayvault-Error" => {
                    let (node, rest) = value.split_once(' ').unwrap_or((value, ""));
                    let (path, why) = rest.split_once('\t').unwrap_or((rest, ""));
                    r.errors
                        .push((node.to_string(), path.to_string(), why.to_string()));
                }
                _ => {}
            }
        }
        r
    }

    /// True when some node or entry failed in this run.
    pub fn is_partial(&self) -> bool {
        !self.errors.is_empty()
            || self
                .etcd
                .as_deref()
                .is_some_and(|e| e.starts_with("failed"))
            || self
                .control
                .as_deref()
                .is_some_and(|c| c.starts_with("failed") || c.starts_with("partial"))
            || self
                .nodes
                .values()
                .any(|s| matches!(s, NodeStatus::Partial(_) | NodeStatus::Failed(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut r = RunRecord::new("backup", "backup: 2/3 nodes ok".into());
        r.started = Some("2026-11-25T02:00:03Z".into());
        r.finished = Some("2026-11-25T02:00:09Z".into());
        r.nodes.insert("node1".into(), NodeStatus::Ok);
        r.nodes.insert("node2".into(), NodeStatus::Carried);
        r.nodes.insert(
            "node3".into(),
            NodeStatus::Failed(
                "ssh: connect to host 127.0.10.13 port 22: Connection refused\nagain".into(),
            ),
        );
        r.errors.push((
            "node1".into(),
            "/etc/x y".into(),
            "permission denied".into(),
        ));
        let m = r.to_message();
        assert!(m.contains("Sprayvault-Node: node3 failed ssh: connect to host 127.0.10.13 port 22: Connection refused / again\n"));
        let back = RunRecord::parse(&m);
        assert_eq!(
            back.nodes["node3"],
            NodeStatus::Failed(
                "ssh: connect to host 127.0.10.13 port 22: Connection refused / again".into()
            )
        );
        assert_eq!(back.errors, r.errors);
        assert_eq!(back.kind, "backup");
        assert!(back.is_partial());
    }
}
