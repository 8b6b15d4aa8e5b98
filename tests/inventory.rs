//! The inventory reader against its ground truth, `ansible-inventory --list`,
//! on a corpus of inventories (tests/fixtures/inventory) covering INI and
//! YAML, ranges, ports, users, become spellings, group_vars/host_vars and
//! their precedence, legacy group names, and directory inventories.

mod common;

use common::*;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Vec<PathBuf> {
    let dir = root().join("tests/fixtures/inventory");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap() != "bad")
        .map(|case| {
            if case
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("dir-")
            {
                return case;
            }
            std::fs::read_dir(&case)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| {
                    p.is_file()
                        && p.file_name()
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .starts_with("hosts")
                })
                .unwrap_or_else(|| panic!("{} has no hosts file", case.display()))
        })
        .collect();
    cases.sort();
    cases
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => matches!(
            s.to_lowercase().as_str(),
            "yes" | "y" | "true" | "t" | "on" | "1"
        ),
        _ => false,
    }
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What ansible-inventory says, in sprayvault's `inventory --json` shape.
fn ansible_view(path: &Path) -> Value {
    need("ansible-inventory");
    let out = ok(Command::new("ansible-inventory")
        .arg("-i")
        .arg(path)
        .arg("--list")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true"));
    let list: Value = serde_json::from_str(&out).unwrap();
    let obj = list.as_object().unwrap();
    let mut parents: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut direct: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (group, def) in obj.iter().filter(|(k, _)| *k != "_meta") {
        for c in def
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            parents
                .entry(c.as_str().unwrap().to_string())
                .or_default()
                .push(group.clone());
        }
        for h in def
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            direct
                .entry(h.as_str().unwrap().to_string())
                .or_default()
                .push(group.clone());
        }
    }
    let hostvars = obj["_meta"]["hostvars"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut hosts = Map::new();
    for (host, groups) in &direct {
        let mut all: BTreeSet<String> = BTreeSet::new();
        let mut stack = groups.clone();
        while let Some(g) = stack.pop() {
            if all.insert(g.clone()) {
                stack.extend(parents.get(&g).cloned().unwrap_or_default());
            }
        }
        all.remove("all");
        all.remove("ungrouped");
        let empty = Map::new();
        let vars = hostvars
            .get(host)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let get = |keys: &[&str]| keys.iter().find_map(|k| vars.get(*k)).cloned();
        hosts.insert(
            host.clone(),
            json!({
                "address": get(&["ansible_host", "ansible_ssh_host"]).map(|v| as_text(&v)).unwrap_or_else(|| host.clone()),
                "port": get(&["ansible_port", "ansible_ssh_port"]).map(|v| as_text(&v).parse::<u16>().unwrap()),
                "user": get(&["ansible_user", "ansible_ssh_user"]).map(|v| as_text(&v)),
                "become": get(&["ansible_become"]).map(|v| truthy(&v)).unwrap_or(false),
                "groups": all.into_iter().collect::<Vec<_>>(),
            }),
        );
    }
    json!({ "hosts": hosts })
}

#[test]
fn every_corpus_inventory_reads_as_ansible_reads_it() {
    let cases = corpus();
    assert!(cases.len() >= 9, "corpus too small: {cases:?}");
    for case in cases {
        let expected = ansible_view(&case);
        let got = sprayvault::inventory::load(&case)
            .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
            .to_json();
        assert_eq!(
            got,
            expected,
            "\n{} differs from ansible-inventory:\nsprayvault: {}\nansible:    {}",
            case.display(),
            got,
            expected
        );
    }
}

#[test]
fn the_cli_prints_the_same_json() {
    let case = root().join("tests/fixtures/inventory/yaml-kubespray/hosts.yaml");
    let r = sv_run(&["inventory", "-i", case.to_str().unwrap(), "--json"]).expect(0);
    let printed: Value = serde_json::from_str(&r.out).unwrap();
    assert_eq!(printed, ansible_view(&case));
    let node = &printed["hosts"]["node1"];
    assert_eq!(node["address"], "95.54.0.12");
    assert_eq!(node["user"], "ubuntu");
    assert_eq!(node["become"], true);
    assert_eq!(
        node["groups"],
        json!(["etcd", "k8s_cluster", "kube_control_plane", "kube_node"])
    );
}

#[test]
fn roles_understand_current_and_legacy_group_names() {
    let inv =
        sprayvault::inventory::load(&root().join("tests/fixtures/inventory/ini-legacy/hosts.ini"))
            .unwrap();
    let m = &inv.hosts["master1"];
    assert!(m.is_control_plane() && m.is_etcd() && !m.is_worker() && m.in_cluster());
    assert!(inv.hosts["worker1"].is_worker());
    let inv =
        sprayvault::inventory::load(&root().join("tests/fixtures/inventory/ini-basic/hosts.ini"))
            .unwrap();
    assert!(
        inv.hosts["node1"].is_control_plane()
            && inv.hosts["node4"].is_worker()
            && !inv.hosts["node4"].is_etcd()
    );
}

#[test]
fn limit_patterns_select_like_ansible() {
    let inv =
        sprayvault::inventory::load(&root().join("tests/fixtures/inventory/ini-basic/hosts.ini"))
            .unwrap();
    let names = |p: &str| {
        inv.select(Some(p))
            .unwrap()
            .iter()
            .map(|h| h.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(names("all"), "node1,node2,node3,node4");
    assert_eq!(names("etcd"), "node1,node2,node3");
    assert_eq!(names("node1:node4"), "node1,node4");
    assert_eq!(names("etcd,!kube_control_plane"), "node3");
    assert_eq!(names("k8s_cluster:&etcd"), "node1,node2,node3");
    assert_eq!(names("node*:!node2"), "node1,node3,node4");
    assert_eq!(names("!etcd"), "node4");
    let err = inv.select(Some("nodeX")).unwrap_err().to_string();
    assert!(err.contains("\"nodeX\" matches no host"), "{err}");
}

#[test]
fn malformed_and_hostile_inventories_are_rejected_with_the_place_named() {
    let dir = root().join("tests/fixtures/inventory/bad");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) == Some("expect") {
            continue;
        }
        let want = std::fs::read_to_string(path.with_extension("expect"))
            .unwrap_or_else(|_| panic!("{} has no .expect", path.display()));
        let err = match sprayvault::inventory::load(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        for line in want.lines().filter(|l| !l.is_empty()) {
            assert!(
                err.contains(line),
                "{}: error {err:?} lacks {line:?}",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} bad cases");
}
