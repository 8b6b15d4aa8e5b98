//! Which facts are volatile: they change on every gathering (clock, uptime,
//! free memory, load, the ssh client's port in the environment, free space)
//! without saying anything about the host. Backups and `facts diff` compare
//! facts without them, so that a night in which only these changed adds
//! nothing to the history.

use serde_json::Value;

/// Top-level facts left out of comparisons.
pub const VOLATILE: [&str; 10] = [
    "ansible_date_time",
    "ansible_uptime_seconds",
    "ansible_memfree_mb",
    "ansible_memory_mb",
    "ansible_swapfree_mb",
    "ansible_loadavg",
    "ansible_env",
    "ansible_mounts",
    "ansible_lvm",
    "ansible_local",
];

/// Facts that are sets reported as lists, in an order that varies between
/// gatherings.
const UNORDERED: [&str; 5] = [
    "ansible_interfaces",
    "ansible_virtualization_tech_guest",
    "ansible_virtualization_tech_host",
    "ansible_all_ipv4_addresses",
    "ansible_all_ipv6_addresses",
];

/// The facts without volatile keys, unordered lists sorted; keys sorted.
pub fn stable(facts: &Value) -> Value {
    let mut v = facts.clone();
    if let Value::Object(m) = &mut v {
        for k in VOLATILE {
            m.remove(k);
        }
        for k in UNORDERED {
            if let Some(Value::Array(a)) = m.get_mut(k) {
                a.sort_by_key(|x| x.to_string());
            }
        }
    }
    v
}

/// Canonical bytes of the stable facts: what the keyed hash is taken over.
pub fn stable_bytes(facts: &Value) -> Vec<u8> {
    serde_json::to_vec(&stable(facts)).expect("JSON values serialize")
}

/// Leaves of a JSON value as `dotted.path -> value`.
pub fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn volatile_changes_do_not_change_the_stable_form() {
        let a = json!({"ansible_hostname": "node1", "ansible_uptime_seconds": 5, "ansible_interfaces": ["lo", "eth0"], "ansible_date_time": {"epoch": "1"}});
        let b = json!({"ansible_date_time": {"epoch": "2"}, "ansible_interfaces": ["eth0", "lo"], "ansible_uptime_seconds": 9, "ansible_hostname": "node1"});
        assert_eq!(stable_bytes(&a), stable_bytes(&b));
        let c = json!({"ansible_hostname": "node9"});
        assert_ne!(stable_bytes(&a), stable_bytes(&c));
    }

    #[test]
    fn flattens_to_dotted_paths() {
        let mut out = vec![];
        flatten("", &json!({"a": {"b": 1, "c": [1]}, "d": "x"}), &mut out);
        assert_eq!(
            out,
            vec![
                ("a.b".into(), json!(1)),
                ("a.c".into(), json!([1])),
                ("d".into(), json!("x"))
            ]
        );
    }
}
