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

/// A node's status without its reason: what reports and metrics count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Partial,
    Failed,
    Carried,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Carried => "carried",
        }
    }
}

impl NodeStatus {
    pub fn outcome(&self) -> Outcome {
        match self {
            NodeStatus::Ok => Outcome::Ok,
            NodeStatus::Partial(_) => Outcome::Partial,
            NodeStatus::Failed(_) => Outcome::Failed,
            NodeStatus::Carried => Outcome::Carried,
        }
    }

    pub fn word(&self) -> &'static str {
        self.outcome().word()
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
    pub errors: Vec<EntryError>,
    /// The etcd snapshot of this run.
    pub etcd: Option<EtcdOutcome>,
    /// The control host: `ok <version>`, `partial <reason>`, `failed <reason>`
    /// or `carried <reason>`.
    pub control: Option<String>,
    /// The detailed text behind each generic reason above (ssh's own
    /// message, with addresses), by subject ([`Subject`]). Never written
    /// into the plaintext message: it goes into the commit's encrypted
    /// `details.age` (vault-layout, Section 11).
    pub details: BTreeMap<String, String>,
}

/// The `Sprayvault-Error` trailer: one entry of a node (or a fact cache
/// file, or a snapshot ref) that could not be read, with a generic reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryError {
    pub node: String,
    pub path: String,
    pub reason: String,
}

impl EntryError {
    pub fn new(node: &str, path: &str, reason: &str) -> EntryError {
        EntryError {
            node: node.into(),
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The one encoding of the trailer's value: `NODE PATH TAB REASON`.
    pub fn encode(&self) -> String {
        format!(
            "{} {}\t{}",
            self.node,
            one_line(&self.path).replace('\t', " "),
            one_line(&self.reason)
        )
    }

    /// The one decoding.
    pub fn decode(value: &str) -> EntryError {
        let (node, rest) = value.split_once(' ').unwrap_or((value, ""));
        let (path, reason) = rest.split_once('\t').unwrap_or((rest, ""));
        EntryError::new(node, path, reason)
    }
}

/// The `Sprayvault-Etcd` trailer: the snapshot a run took, or why none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EtcdOutcome {
    /// `ok <ref> member <m> node <n> revision <r> keys <k> size <s>`.
    Taken {
        /// The full ref name, `refs/sprayvault/etcd/...`.
        reference: String,
        member: String,
        node: String,
        revision: u64,
        keys: u64,
        size: u64,
    },
    /// `failed <generic reason>`.
    Failed(String),
}

impl EtcdOutcome {
    /// The one encoding of the trailer's value.
    pub fn encode(&self) -> String {
        match self {
            EtcdOutcome::Taken {
                reference,
                member,
                node,
                revision,
                keys,
                size,
            } => format!(
                "ok {reference} member {member} node {node} revision {revision} keys {keys} size {size}"
            ),
            EtcdOutcome::Failed(why) => format!("failed {}", one_line(why)),
        }
    }

    /// The one decoding; `None` for a value this version cannot read (a
    /// newer writer's), which readers treat as no snapshot.
    pub fn decode(value: &str) -> Option<EtcdOutcome> {
        if let Some(why) = value.strip_prefix("failed") {
            return Some(EtcdOutcome::Failed(why.trim_start().to_string()));
        }
        let w: Vec<&str> = value.split(' ').collect();
        match w.as_slice() {
            ["ok", reference, "member", member, "node", node, "revision", revision, "keys", keys, "size", size, ..] => {
                Some(EtcdOutcome::Taken {
                    reference: reference.to_string(),
                    member: member.to_string(),
                    node: node.to_string(),
                    revision: revision.parse().ok()?,
                    keys: keys.parse().ok()?,
                    size: size.parse().ok()?,
                })
            }
            _ => None,
        }
    }

    /// The snapshot's ref name, when one was taken.
    pub fn reference(&self) -> Option<&str> {
        match self {
            EtcdOutcome::Taken { reference, .. } => Some(reference),
            EtcdOutcome::Failed(_) => None,
        }
    }
}

/// What a detail is about, as its key in `details.age`.
pub enum Subject<'a> {
    /// A node's failure.
    Node(&'a str),
    /// One entry of a node (or a fact cache file) that could not be read.
    Entry(&'a str, &'a str),
    Etcd,
    Control,
}

impl Subject<'_> {
    pub fn key(&self) -> String {
        match self {
            Subject::Node(n) => format!("node {n}"),
            Subject::Entry(n, p) => format!("entry {n} {}", one_line(p).replace('\t', " ")),
            Subject::Etcd => "etcd".into(),
            Subject::Control => "control".into(),
        }
    }
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
            details: BTreeMap::new(),
        }
    }

    /// Records the detailed text behind a generic reason.
    pub fn detail(&mut self, subject: Subject<'_>, text: &str) {
        self.details.insert(subject.key(), one_line(text));
    }

    /// The plaintext of `details.age`: one `SUBJECT TAB TEXT` line each,
    /// sorted; `None` when there is nothing to tell.
    pub fn details_text(&self) -> Option<String> {
        if self.details.is_empty() {
            return None;
        }
        Some(
            self.details
                .iter()
                .map(|(k, v)| format!("{k}\t{v}\n"))
                .collect(),
        )
    }

    /// Reads `details.age`'s plaintext back into [`RunRecord::details`].
    pub fn parse_details(text: &str) -> BTreeMap<String, String> {
        text.lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
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
            m.push_str(&format!("Sprayvault-Etcd: {}\n", e.encode()));
        }
        if let Some(c) = &self.control {
            m.push_str(&format!("Sprayvault-Control: {}\n", one_line(c)));
        }
        for e in &self.errors {
            m.push_str(&format!("Sprayvault-Error: {}\n", e.encode()));
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
                "Sprayvault-Etcd" => r.etcd = EtcdOutcome::decode(value),
                "Sprayvault-Control" => r.control = Some(value.to_string()),
                "Sprayvault-Error" => r.errors.push(EntryError::decode(value)),
                _ => {}
            }
        }
        r
    }

    /// True when some node or entry failed in this run.
    pub fn is_partial(&self) -> bool {
        !self.errors.is_empty()
            || matches!(self.etcd, Some(EtcdOutcome::Failed(_)))
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
    fn the_etcd_trailer_has_one_encoding() {
        let taken = EtcdOutcome::Taken {
            reference: "refs/sprayvault/etcd/20261125T020004Z-node1".into(),
            member: "etcd1".into(),
            node: "node1".into(),
            revision: 812,
            keys: 30,
            size: 28704,
        };
        let text = "ok refs/sprayvault/etcd/20261125T020004Z-node1 member etcd1 node node1 revision 812 keys 30 size 28704";
        assert_eq!(taken.encode(), text);
        assert_eq!(EtcdOutcome::decode(text), Some(taken.clone()));
        let failed = EtcdOutcome::Failed("no member gave a snapshot".into());
        assert_eq!(EtcdOutcome::decode(&failed.encode()), Some(failed));
        assert_eq!(EtcdOutcome::decode("ok refs/x member"), None);
        assert_eq!(EtcdOutcome::decode("sometime later"), None);
        let mut r = RunRecord::new("backup", "backup".into());
        r.etcd = Some(taken.clone());
        assert_eq!(RunRecord::parse(&r.to_message()).etcd, Some(taken));
    }

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
        r.errors
            .push(EntryError::new("node1", "/etc/x y", "permission denied"));
        r.detail(
            Subject::Node("node3"),
            "ssh: connect to host 127.0.10.13\nport 22",
        );
        let m = r.to_message();
        assert!(m.contains("Sprayvault-Node: node3 failed ssh: connect to host 127.0.10.13 port 22: Connection refused / again\n"));
        // Details never reach the plaintext message.
        assert!(!m.contains("port 22\n") && !m.contains("node node3"), "{m}");
        let d = r.details_text().unwrap();
        assert_eq!(
            d,
            "node node3\tssh: connect to host 127.0.10.13 / port 22\n"
        );
        assert_eq!(RunRecord::parse_details(&d), r.details);
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
