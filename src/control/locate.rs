//! Finding the control host's kubespray directory and what of it to record.
//!
//! kubespray runs from a checkout with the inventory at
//! `inventory/NAME/` inside it; so the directory is `--kubespray-dir`, else
//! the checkout the inventory sits in (its grandparent, when the parent is
//! named `inventory` and the grandparent holds `ansible.cfg` or
//! `cluster.yml`), else `--ansible-dir`.

use std::path::{Component, Path, PathBuf};

/// Where the control host's state is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The kubespray directory (absolute, symlinks resolved).
    pub dir: PathBuf,
    /// How it was found, for the report.
    pub how: &'static str,
    /// The inventory given to the backup, control-relative (`/inventory/mycluster`).
    pub inventory: String,
    /// What to record: (source path on this host, control-relative path),
    /// each read recursively, in this order.
    pub roots: Vec<(PathBuf, String)>,
    /// The ansible.cfg in use, if any.
    pub ansible_cfg: Option<PathBuf>,
    /// The recorded inventory directory inside the checkout, relative to it
    /// (`inventory/mycluster`), which the checkout's own changes leave out.
    pub inside: Option<String>,
}

/// kubespray writes these beside the inventory (`inventory_dir`).
pub const BESIDE: [&str; 4] = ["group_vars", "host_vars", "credentials", "artifacts"];

fn looks_like_kubespray(dir: &Path) -> bool {
    dir.join("ansible.cfg").is_file() || dir.join("cluster.yml").is_file()
}

/// The kubespray checkout an inventory lies in, by kubespray's layout.
fn from_layout(inv_dir: &Path) -> Option<PathBuf> {
    let parent = inv_dir.parent()?;
    if parent.file_name()? != "inventory" {
        return None;
    }
    let top = parent.parent()?;
    looks_like_kubespray(top).then(|| top.to_path_buf())
}

/// `/`-joined components of `p` below `base`, if `p` is below it.
fn relative(p: &Path, base: &Path) -> Option<String> {
    let rest = p.strip_prefix(base).ok()?;
    let parts: Vec<String> = rest
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Why the kubespray directory cannot be looked for.
#[derive(Debug, thiserror::Error)]
pub enum LocateError {
    #[error("inventory {}: {why}", .path.display())]
    Inventory { path: PathBuf, why: std::io::Error },
    #[error("--kubespray-dir {} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    #[error("--kubespray-dir {}: {why}", .path.display())]
    KubesprayDir { path: PathBuf, why: std::io::Error },
}

/// Finds the directory. `Ok(None)`: no kubespray directory (a note, not an
/// error); `Err`: `--kubespray-dir` names no directory.
pub fn locate(
    kubespray_dir: Option<&Path>,
    inventory: &Path,
    ansible_dir: Option<&Path>,
    ansible_config_env: Option<&Path>,
) -> Result<Option<Located>, LocateError> {
    let inventory = std::fs::canonicalize(inventory).map_err(|why| LocateError::Inventory {
        path: inventory.to_path_buf(),
        why,
    })?;
    let inv_is_dir = inventory.is_dir();
    let inv_dir = if inv_is_dir {
        inventory.clone()
    } else {
        inventory
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    };
    let (dir, how) = match (kubespray_dir, from_layout(&inv_dir), ansible_dir) {
        (Some(d), _, _) => match std::fs::canonicalize(d) {
            Ok(c) if c.is_dir() => (c, "--kubespray-dir"),
            Ok(_) => return Err(LocateError::NotADirectory(d.to_path_buf())),
            Err(why) => {
                return Err(LocateError::KubesprayDir {
                    path: d.to_path_buf(),
                    why,
                })
            }
        },
        (None, Some(d), _) => (d, "the inventory's location"),
        (None, None, Some(d)) => match std::fs::canonicalize(d) {
            Ok(c) if c.is_dir() => (c, "--ansible-dir"),
            _ => return Ok(None),
        },
        (None, None, None) => return Ok(None),
    };
    let inside = relative(&inv_dir, &dir);
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("inventory")
            .to_string()
    };
    // Inside the checkout, paths are kept; outside, the inventory is
    // recorded as inventory/NAME, as kubespray would have it.
    let rel_dir = match &inside {
        Some(r) => format!("/{r}"),
        None => format!("/inventory/{}", name(&inv_dir)),
    };
    let whole_dir = inv_is_dir || inside.is_some();
    let mut roots = Vec::new();
    let inventory_rel = if inv_is_dir {
        rel_dir.clone()
    } else {
        format!("{rel_dir}/{}", name(&inventory))
    };
    if whole_dir {
        roots.push((inv_dir.clone(), rel_dir.clone()));
    } else {
        roots.push((inventory.clone(), inventory_rel.clone()));
        for sub in BESIDE {
            let p = inv_dir.join(sub);
            if p.symlink_metadata().is_ok() {
                roots.push((p, format!("{rel_dir}/{sub}")));
            }
        }
    }
    let ansible_cfg = match ansible_config_env {
        Some(p) if p.is_dir() => Some(p.join("ansible.cfg")),
        Some(p) => Some(p.to_path_buf()),
        None => Some(dir.join("ansible.cfg")),
    }
    .filter(|p| p.is_file());
    Ok(Some(Located {
        dir,
        how,
        inventory: inventory_rel,
        roots,
        ansible_cfg,
        inside: inside.filter(|_| whole_dir),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "x").unwrap();
    }

    #[test]
    fn found_from_kubesprays_layout() {
        let t = tempfile::tempdir().unwrap();
        let k = std::fs::canonicalize(t.path()).unwrap().join("kubespray");
        touch(&k.join("ansible.cfg"));
        touch(&k.join("inventory/mycluster/hosts.yaml"));
        touch(&k.join("inventory/mycluster/group_vars/all/all.yml"));
        for inv in [
            k.join("inventory/mycluster"),
            k.join("inventory/mycluster/hosts.yaml"),
        ] {
            let l = locate(None, &inv, None, None).unwrap().unwrap();
            assert_eq!(l.dir, k);
            assert_eq!(l.how, "the inventory's location");
            assert_eq!(
                l.roots,
                vec![(k.join("inventory/mycluster"), "/inventory/mycluster".into())]
            );
            assert_eq!(l.ansible_cfg, Some(k.join("ansible.cfg")));
            assert_eq!(l.inside.as_deref(), Some("inventory/mycluster"));
        }
        let l = locate(None, &k.join("inventory/mycluster/hosts.yaml"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(l.inventory, "/inventory/mycluster/hosts.yaml");
    }

    #[test]
    fn inventory_elsewhere_is_recorded_as_inventory_name() {
        let t = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(t.path()).unwrap();
        let k = base.join("ks");
        std::fs::create_dir_all(&k).unwrap();
        touch(&base.join("lab/inventory.ini"));
        touch(&base.join("lab/credentials/kube_encrypt_token.creds"));
        touch(&base.join("lab/unrelated.txt"));
        let l = locate(Some(&k), &base.join("lab/inventory.ini"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(l.how, "--kubespray-dir");
        assert_eq!(l.inventory, "/inventory/lab/inventory.ini");
        assert_eq!(
            l.roots,
            vec![
                (
                    base.join("lab/inventory.ini"),
                    "/inventory/lab/inventory.ini".into()
                ),
                (
                    base.join("lab/credentials"),
                    "/inventory/lab/credentials".into()
                ),
            ]
        );
        assert_eq!(l.ansible_cfg, None);
        assert_eq!(l.inside, None);
    }

    #[test]
    fn absent_is_none_but_a_wrong_kubespray_dir_is_an_error() {
        let t = tempfile::tempdir().unwrap();
        touch(&t.path().join("inventory.ini"));
        let inv = t.path().join("inventory.ini");
        assert_eq!(locate(None, &inv, None, None).unwrap(), None);
        assert_eq!(
            locate(None, &inv, Some(&t.path().join("nope")), None).unwrap(),
            None
        );
        assert!(locate(Some(&t.path().join("nope")), &inv, None, None).is_err());
        let l = locate(None, &inv, Some(t.path()), None).unwrap().unwrap();
        assert_eq!(l.how, "--ansible-dir");
    }
}
