//! Which etcd tool restores a snapshot on a member, and what it can do.
//!
//! etcd 3.5 (as kubespray installs it) has `etcdutl` for the offline
//! snapshot commands; 3.4 has only `etcdctl`. Since etcd 3.5.10,
//! `etcdutl snapshot restore` takes `--bump-revision` and
//! `--mark-compacted`, which Kubernetes needs after a restore: the revision
//! moves past every one a watch cache has seen, and the old revisions read
//! as compacted, so the API server's and controllers' caches are rebuilt
//! instead of silently missing changes. Capabilities are read from the
//! tool's `--help`, not guessed from its version number.

use serde::Serialize;

/// How far a restore moves the revision forward (etcd's documentation and
/// kubeadm's procedure use one billion: more writes than any cluster makes
/// between a snapshot and its restore).
pub const BUMP_REVISION: u64 = 1_000_000_000;

/// The shell that reports the tool on a member, one fact per line, read by
/// [`ToolInfo::parse`].
pub const PROBE: &str = "if command -v etcdutl >/dev/null 2>&1; then echo tool etcdutl; \
     echo version $(etcdutl version 2>/dev/null | sed -n 's/^etcdutl version: *//p' | head -n1); \
     if etcdutl snapshot restore --help 2>&1 | grep -q -- '--bump-revision' && \
        etcdutl snapshot restore --help 2>&1 | grep -q -- '--mark-compacted'; then echo bump yes; fi; \
     elif command -v etcdctl >/dev/null 2>&1; then echo tool etcdctl; \
     echo version $(ETCDCTL_API=3 etcdctl version 2>/dev/null | sed -n 's/^etcdctl version: *//p' | head -n1); fi";

/// The restoring tool of one member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ToolInfo {
    /// `etcdutl` or `etcdctl`; empty when the member has neither.
    pub tool: String,
    /// As the tool reports it, e.g. `3.5.1`.
    pub version: Option<String>,
    /// `snapshot restore` takes `--bump-revision` and `--mark-compacted`.
    pub bump: bool,
}

impl ToolInfo {
    /// Reads the lines [`PROBE`] prints (other lines are ignored).
    pub fn parse(text: &str) -> ToolInfo {
        let mut t = ToolInfo::default();
        for line in text.lines() {
            match line.trim().split_once(' ') {
                // Only the two names it can be: it goes into a root shell line.
                Some(("tool", v)) if matches!(v.trim(), "etcdutl" | "etcdctl") => {
                    t.tool = v.trim().to_string()
                }
                Some(("version", v)) if !v.trim().is_empty() => {
                    t.version = Some(crate::term::escape(v.trim()).into_owned())
                }
                Some(("bump", "yes")) => t.bump = true,
                _ => {}
            }
        }
        // Only etcdutl has these options; a stray line cannot turn them on.
        t.bump &= t.tool == "etcdutl";
        t
    }

    /// The command that runs the tool's snapshot subcommands.
    pub fn command(&self) -> String {
        if self.tool == "etcdctl" {
            "ETCDCTL_API=3 etcdctl".into()
        } else {
            self.tool.clone()
        }
    }

    /// Options `snapshot restore` gets beyond name, cluster and directory.
    pub fn restore_options(&self) -> String {
        if self.bump {
            format!(" --bump-revision {BUMP_REVISION} --mark-compacted")
        } else {
            String::new()
        }
    }

    fn name(&self) -> String {
        format!(
            "{} {}",
            self.tool,
            self.version.as_deref().unwrap_or("(version unknown)")
        )
    }
}

/// What the plan says about the members whose tool cannot bump the
/// revision: one sentence per tool and version, naming its nodes (members
/// without any tool are a problem reported elsewhere).
pub fn too_old(members: &[(&str, &ToolInfo)]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (node, t) in members {
        if t.bump || t.tool.is_empty() {
            continue;
        }
        let name = t.name();
        match groups.iter_mut().find(|(n, _)| *n == name) {
            Some((_, nodes)) => nodes.push(node),
            None => groups.push((name, vec![node])),
        }
    }
    groups
        .into_iter()
        .map(|(what, nodes)| {
            format!(
                "{what} on {} is too old for `snapshot restore --bump-revision {BUMP_REVISION} --mark-compacted` \
                 (etcdutl 3.5.10 and later have them), so the restored revision does not move forward and \
                 Kubernetes' watch caches are not invalidated: restart kube-apiserver, kube-controller-manager, \
                 kube-scheduler and the kubelets after the restore, or upgrade etcd on the members first",
                nodes.join(", ")
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcdutl_3_5_10_or_later_restores_with_a_bumped_revision() {
        let t = ToolInfo::parse("tool etcdutl\nversion 3.5.16\nbump yes\n");
        assert_eq!(
            t,
            ToolInfo {
                tool: "etcdutl".into(),
                version: Some("3.5.16".into()),
                bump: true
            }
        );
        assert_eq!(
            t.restore_options(),
            " --bump-revision 1000000000 --mark-compacted"
        );
        assert!(too_old(&[("node1", &t)]).is_empty());
        assert_eq!(t.command(), "etcdutl");
    }

    #[test]
    fn etcdutl_3_5_1_is_too_old_to_bump_and_the_plan_says_so() {
        let t = ToolInfo::parse("tool etcdutl\nversion 3.5.1\n");
        assert!(!t.bump);
        assert_eq!(t.restore_options(), "");
        let new = ToolInfo::parse("tool etcdutl\nversion 3.5.16\nbump yes\n");
        let why = too_old(&[("node1", &t), ("node2", &new), ("node3", &t)]);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(
            why[0].starts_with("etcdutl 3.5.1 on node1, node3 is too old for `snapshot restore --bump-revision 1000000000 --mark-compacted`"),
            "{why:?}"
        );
        assert!(why[0].contains("3.5.10 and later"), "{why:?}");
    }

    #[test]
    fn a_node_cannot_name_another_tool_for_the_root_shell() {
        let t = ToolInfo::parse("tool rm -rf /; etcdutl\nversion 3.5.16\u{1b}[2J\nbump yes\n");
        assert_eq!(t.tool, "");
        assert_eq!(t.command(), "");
        assert_eq!(t.version.as_deref(), Some("3.5.16\\x1b[2J"));
    }

    #[test]
    fn etcdctl_3_4_restores_and_never_bumps() {
        let t = ToolInfo::parse("tool etcdctl\nversion 3.4.23\nbump yes\n");
        assert!(!t.bump, "only etcdutl has --bump-revision");
        assert_eq!(t.command(), "ETCDCTL_API=3 etcdctl");
        let none = ToolInfo::parse("");
        assert_eq!(none.tool, "");
        let why = too_old(&[("node3", &t), ("node4", &none)]);
        assert_eq!(why.len(), 1, "{why:?}");
        assert!(why[0].starts_with("etcdctl 3.4.23 on node3 is"), "{why:?}");
        assert!(ToolInfo::parse("tool etcdctl\nversion \n")
            .version
            .is_none());
    }
}
