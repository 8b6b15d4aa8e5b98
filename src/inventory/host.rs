//! From a host's merged variables to how sprayvault reaches it: address,
//! port, user, become and key, read from the variables Ansible's ssh
//! connection reads. Where both the current and the legacy name are set,
//! the legacy one wins, as in Ansible (`ansible_ssh_host` over
//! `ansible_host`, `ansible_ssh_port` over `ansible_port`, `ansible_ssh_user`
//! over `ansible_user`, `ansible_ssh_private_key_file` over
//! `ansible_private_key_file`); a null value counts as not set.

use super::data::{Origin, Vars};
use super::host_error::HostError;
use super::{ansible_bool, check, template, Host, InventoryError};
use serde_json::Value;
use std::path::PathBuf;

/// The first of `names` set to something other than null.
fn pick<'a>(
    vars: &'a Vars,
    names: &[&'static str],
) -> Option<(&'static str, &'a Value, &'a Origin)> {
    names.iter().find_map(|n| match vars.get(*n) {
        Some((v, o)) if !v.is_null() => Some((*n, v, o)),
        _ => None,
    })
}

fn text(what: &'static str, v: &Value) -> Result<String, HostError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(HostError::NotText {
            what,
            value: other.clone(),
        }),
    }
}

/// The text of a connection variable as Ansible templates it, where that
/// needs only the host's name (see `template.rs`); other templates stay,
/// for the checks to refuse.
fn templated(name: &str, what: &'static str, v: &Value) -> Result<String, HostError> {
    let t = text(what, v)?;
    Ok(template::substitute(&t, name).unwrap_or(t))
}

/// A port as Ansible's int conversion takes it: a whole number, also
/// written as text; here it must also be one ssh can use.
fn port(what: &'static str, v: &Value) -> Result<u16, HostError> {
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) if s.contains("{{") => {
            return Err(HostError::PortTemplate {
                what,
                value: s.clone(),
            })
        }
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| HostError::BadPort {
            what,
            value: v.clone(),
        })
}

pub fn build(name: &str, vars: Vars, groups: Vec<String>) -> Result<Host, InventoryError> {
    let fail = |origin: &Origin, why: HostError| InventoryError::Host {
        file: origin.file.clone(),
        line: origin.line,
        host: name.to_string(),
        why,
    };
    let address = match pick(&vars, &["ansible_ssh_host", "ansible_host"]) {
        Some((what, v, o)) => {
            let a = templated(name, what, v).map_err(|w| fail(o, w))?;
            check::address(what, &a).map_err(|w| fail(o, w))?;
            a
        }
        None => name.to_string(),
    };
    let port = match pick(&vars, &["ansible_ssh_port", "ansible_port"]) {
        Some((what, v, o)) => Some(port(what, v).map_err(|w| fail(o, w))?),
        None => None,
    };
    let user = match pick(&vars, &["ansible_ssh_user", "ansible_user"]) {
        Some((what, v, o)) => {
            let u = templated(name, what, v).map_err(|w| fail(o, w))?;
            check::user(what, &u).map_err(|w| fail(o, w))?;
            Some(u)
        }
        None => None,
    };
    let become_ = match pick(&vars, &["ansible_become"]) {
        Some((what, v, o)) => ansible_bool(v).ok_or_else(|| {
            let value = v.clone();
            let why = if v.as_str().is_some_and(|s| s.contains("{{")) {
                HostError::BooleanTemplate { what, value }
            } else {
                HostError::NotBoolean { what, value }
            };
            fail(o, why)
        })?,
        None => false,
    };
    let key_file = match pick(
        &vars,
        &["ansible_ssh_private_key_file", "ansible_private_key_file"],
    ) {
        Some((what, v, o)) => {
            let k = templated(name, what, v).map_err(|w| fail(o, w))?;
            check::key_file(what, &k).map_err(|w| fail(o, w))?;
            Some(PathBuf::from(k))
        }
        None => None,
    };
    Ok(Host {
        name: name.to_string(),
        address,
        port,
        user,
        become_,
        key_file,
        groups,
        vars: vars.into_iter().map(|(k, (v, _))| (k, v)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(pairs: &[(&str, Value)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), (v.clone(), Origin::default())))
            .collect()
    }

    #[test]
    fn legacy_names_win_and_values_convert() {
        let h = build(
            "n1",
            vars(&[
                ("ansible_host", json!("10.0.0.1")),
                ("ansible_ssh_host", json!("10.0.0.2")),
                ("ansible_port", json!("2201")),
                ("ansible_ssh_port", json!(null)),
                ("ansible_user", json!("core")),
                ("ansible_become", json!("Yes")),
                ("ansible_private_key_file", json!("~/.ssh/k")),
            ]),
            vec![],
        )
        .unwrap();
        assert_eq!(
            (h.address.as_str(), h.port, h.user.as_deref(), h.become_),
            ("10.0.0.2", Some(2201), Some("core"), true)
        );
        assert_eq!(h.key_file, Some(PathBuf::from("~/.ssh/k")));
        let bare = build("n2", Vars::new(), vec![]).unwrap();
        assert_eq!(
            (bare.address.as_str(), bare.port, bare.user, bare.become_),
            ("n2", None, None, false)
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (k, v, want) in [
            (
                "ansible_port",
                json!("http"),
                "ansible_port \"http\" is not a port number",
            ),
            ("ansible_ssh_port", json!(70000), "not a port number"),
            ("ansible_become", json!("maybe"), "is not a boolean"),
            (
                "ansible_user",
                json!("root;reboot"),
                "shell metacharacter ';'",
            ),
            ("ansible_host", json!(["a"]), "where text belongs"),
            (
                "ansible_ssh_host",
                json!("$(reboot)"),
                "ansible_ssh_host \"$(reboot)\"",
            ),
        ] {
            let e = build("n1", vars(&[(k, v)]), vec![])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want) && e.contains("'n1'"), "{e}");
        }
    }
}
