//! The inventory reader against its ground truth, Ansible itself: for every
//! inventory of the corpus in tests/fixtures/inventory (INI and YAML, ranges,
//! quoting, ports, users, become spellings, key files, group_vars/host_vars
//! precedence, legacy group names, directories), `ansible-inventory --list`
//! must give the same hosts, addresses, ports, users, become, groups, key
//! files and variables; `ansible --list-hosts` the same `--limit` selections.
//! The cases under bad/ must be refused with the message in their `expect`.
//! The public inventories of tests/fixtures/inventory-public (Ansible's own
//! test inventories, kubespray, OpenShift, k3s, Ceph, AWX; SOURCES says
//! where each comes from) are held against Ansible the same way.
//!
//! A case is a directory holding an inventory named `hosts` or `hosts.*`
//! (found at any depth, as in yaml-kubespray/inventory/mycluster/), with its
//! group_vars/ and host_vars/ beside it; a case named `dir-*` is itself the
//! inventory. ansible-inventory missing is a failure: run
//! scripts/install-deps.

mod common;

use common::*;
use serde_json::{json, Map, Value};
use sprayvault::inventory::{self, InventoryError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/inventory")
}

/// The inventory file of a case directory: `hosts` or `hosts.*`, at any
/// depth outside group_vars/ and host_vars/.
fn inventory_in(dir: &Path) -> Option<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in &entries {
        let name = p.file_name().unwrap().to_str().unwrap();
        if p.is_file() && (name == "hosts" || name.starts_with("hosts.")) {
            return Some(p.clone());
        }
    }
    entries
        .iter()
        .filter(|p| p.is_dir() && !p.ends_with("group_vars") && !p.ends_with("host_vars"))
        .find_map(|p| inventory_in(p))
}

/// (case name, inventory path) for every good case.
fn corpus() -> Vec<(String, PathBuf)> {
    cases_in(&fixtures())
}

/// The public inventories, each with its source in SOURCES.
fn public() -> PathBuf {
    root().join("tests/fixtures/inventory-public")
}

/// (case name, inventory path) for every case directory of `dir`.
fn cases_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut cases: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && !p.ends_with("bad"))
        .map(|case| {
            let name = case.file_name().unwrap().to_str().unwrap().to_string();
            let path = if name.starts_with("dir-") {
                case.clone()
            } else {
                inventory_in(&case)
                    .unwrap_or_else(|| panic!("{} has no hosts file", case.display()))
            };
            (name, path)
        })
        .collect();
    cases.sort();
    cases
}

/// `ansible-inventory -i PATH --list`, failing when it can parse nothing
/// (instead of its default: warn and carry on with an empty inventory). It
/// runs in the fixtures directory, which has no group_vars/ of its own.
fn ansible_list(path: &Path) -> Value {
    need("ansible-inventory");
    let out = ok(Command::new("ansible-inventory")
        .arg("-i")
        .arg(path)
        .arg("--list")
        .current_dir(fixtures())
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "true")
        .env("ANSIBLE_NOCOLOR", "1"));
    serde_json::from_str(&out).unwrap_or_else(|e| {
        panic!(
            "ansible-inventory -i {} printed no JSON ({e}):\n{out}",
            path.display()
        )
    })
}

/// ansible-inventory's output for every case, computed once for all tests.
fn ansible_corpus() -> &'static Vec<(String, PathBuf, Value)> {
    static CACHE: OnceLock<Vec<(String, PathBuf, Value)>> = OnceLock::new();
    CACHE.get_or_init(|| ansible_lists(corpus()))
}

/// ansible-inventory's output for each case.
fn ansible_lists(cases: Vec<(String, PathBuf)>) -> Vec<(String, PathBuf, Value)> {
    {
        // Two at a time: each run is mostly Python starting up.
        let mut out = Vec::new();
        for pair in cases.chunks(2) {
            let handles: Vec<_> = pair
                .iter()
                .cloned()
                .map(|(name, path)| {
                    std::thread::spawn(move || {
                        let v = ansible_list(&path);
                        (name, path, v)
                    })
                })
                .collect();
            for h in handles {
                out.push(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        }
        out
    }
}

/// The first of `names` set to something other than null (the legacy
/// `ansible_ssh_*` names come first: Ansible's ssh connection prefers them).
fn pick<'a>(vars: &'a Map<String, Value>, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|n| vars.get(*n).filter(|v| !v.is_null()))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Ansible's `boolean()`, for values Ansible accepts.
fn boolean(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() == Some(1.0),
        Value::String(s) => matches!(
            s.trim().to_lowercase().as_str(),
            "y" | "yes" | "on" | "1" | "true" | "t"
        ),
        _ => panic!("ansible accepted the boolean {v}?"),
    }
}

/// Variables ansible-inventory never shows (its INTERNAL_VARS).
const INTERNAL: [&str; 19] = [
    "ansible_diff_mode",
    "ansible_config_file",
    "ansible_facts",
    "ansible_forks",
    "ansible_inventory_sources",
    "ansible_limit",
    "ansible_playbook_python",
    "ansible_run_tags",
    "ansible_skip_tags",
    "ansible_verbosity",
    "ansible_version",
    "inventory_dir",
    "inventory_file",
    "inventory_hostname",
    "inventory_hostname_short",
    "groups",
    "group_names",
    "omit",
    "playbook_dir",
];

/// What Ansible says of one inventory, in sprayvault's terms.
struct Expected {
    /// The `sprayvault inventory --json` document.
    json: Value,
    vars: BTreeMap<String, Map<String, Value>>,
    key_files: BTreeMap<String, Option<PathBuf>>,
}

fn expected(path: &Path, list: &Value) -> Expected {
    let obj = list.as_object().unwrap();
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut direct: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (group, def) in obj.iter().filter(|(k, _)| *k != "_meta") {
        for c in def
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            parents.entry(c.as_str().unwrap()).or_default().push(group);
        }
        for h in def
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            direct.entry(h.as_str().unwrap()).or_default().push(group);
        }
    }
    let empty = Map::new();
    let hostvars = obj["_meta"]["hostvars"].as_object().unwrap_or(&empty);
    let (mut hosts, mut vars, mut key_files) = (Map::new(), BTreeMap::new(), BTreeMap::new());
    for (host, groups) in &direct {
        let mut all: BTreeSet<&str> = BTreeSet::new();
        let mut stack = groups.clone();
        while let Some(g) = stack.pop() {
            if all.insert(g) {
                stack.extend(parents.get(g).cloned().unwrap_or_default());
            }
        }
        all.remove("all");
        all.remove("ungrouped");
        let v: Map<String, Value> = hostvars
            .get(*host)
            .and_then(Value::as_object)
            .unwrap_or(&empty)
            .iter()
            .map(|(k, x)| (k.clone(), unwrap_unsafe(x)))
            .collect();
        let v = &v;
        hosts.insert(
            host.to_string(),
            json!({
                "address": pick(v, &["ansible_ssh_host", "ansible_host"]).map(text).unwrap_or_else(|| host.to_string()),
                "port": pick(v, &["ansible_ssh_port", "ansible_port"]).map(|p| text(p).trim().parse::<u16>().unwrap()),
                "user": pick(v, &["ansible_ssh_user", "ansible_user"]).map(text),
                "become": pick(v, &["ansible_become"]).map(boolean).unwrap_or(false),
                "groups": all,
            }),
        );
        key_files.insert(
            host.to_string(),
            pick(
                v,
                &["ansible_ssh_private_key_file", "ansible_private_key_file"],
            )
            .map(|k| PathBuf::from(text(k))),
        );
        let shown: Map<String, Value> = v
            .iter()
            .filter(|(k, _)| !INTERNAL.contains(&k.as_str()))
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect();
        vars.insert(host.to_string(), shown);
    }
    // Connection variables that are templates: what Ansible makes of them.
    let templates = hosts.iter().any(|(h, _)| {
        CONNECTION.iter().any(|k| {
            hostvars
                .get(h)
                .and_then(|v| v.get(*k))
                .is_some_and(|v| text(v).contains("{{"))
        })
    });
    if templates {
        for (host, t) in ansible_templated(path) {
            let Some(h) = hosts.get(&host) else {
                continue;
            };
            let mut h = h.as_object().unwrap().clone();
            h.insert("address".into(), json!(t.address));
            h.insert("user".into(), json!(t.user));
            hosts.insert(host.clone(), Value::Object(h));
            key_files.insert(host, t.key_file.map(PathBuf::from));
        }
    }
    Expected {
        json: json!({ "hosts": hosts }),
        vars,
        key_files,
    }
}

/// The variables Ansible's ssh connection templates that sprayvault reads.
const CONNECTION: [&str; 6] = [
    "ansible_ssh_host",
    "ansible_host",
    "ansible_ssh_user",
    "ansible_user",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
];

struct Templated {
    address: String,
    user: Option<String>,
    key_file: Option<String>,
}

/// The connection variables of every host as Ansible templates them before
/// it connects: `ansible -m debug` (which connects nowhere) prints them.
fn ansible_templated(path: &Path) -> BTreeMap<String, Templated> {
    need("ansible");
    let msg = "msg={{ {'address': ansible_ssh_host | default(ansible_host | default(inventory_hostname)), \
               'user': ansible_ssh_user | default(ansible_user | default(None)), \
               'key': ansible_ssh_private_key_file | default(ansible_private_key_file | default(None))} }}";
    // Hosts whose templates Ansible cannot resolve fail (and are left
    // out here); the others succeed.
    let out = run(Command::new("ansible")
        .arg("-i")
        .arg(path)
        .args(["all", "-m", "debug", "-a", msg])
        .current_dir(fixtures())
        .env("ANSIBLE_NOCOLOR", "1"));
    let out = String::from_utf8_lossy(&out.stdout);
    // `HOST | SUCCESS => {` ... `}` for each host.
    let mut found = BTreeMap::new();
    let mut lines = out.lines();
    while let Some(line) = lines.next() {
        let Some(host) = line.strip_suffix(" | SUCCESS => {") else {
            continue;
        };
        let mut doc = String::from("{");
        for l in lines.by_ref() {
            doc.push_str(l);
            if l == "}" {
                break;
            }
        }
        let v: Value = serde_json::from_str(&doc).unwrap_or_else(|e| panic!("{e}: {doc}"));
        let m = &v["msg"];
        found.insert(
            host.to_string(),
            Templated {
                address: text(&m["address"]),
                user: m["user"].as_str().map(str::to_string),
                key_file: m["key"].as_str().map(str::to_string),
            },
        );
    }
    found
}

/// ansible-inventory shows `!unsafe` values as `{"__ansible_unsafe": v}`;
/// sprayvault keeps the value itself.
fn unwrap_unsafe(v: &Value) -> Value {
    match v {
        Value::Object(m) if m.len() == 1 && m.contains_key("__ansible_unsafe") => {
            m["__ansible_unsafe"].clone()
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), unwrap_unsafe(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(unwrap_unsafe).collect()),
        other => other.clone(),
    }
}

#[test]
fn the_corpus_covers_every_construct() {
    let names: Vec<String> = corpus().into_iter().map(|(n, _)| n).collect();
    for want in [
        "ini-kubespray",
        "ini-legacy",
        "ini-ranges",
        "ini-quoting",
        "ini-sections",
        "ini-noext",
        "yaml-kubespray",
        "yaml-deep",
        "yaml-json",
        "yaml-noext",
        "become-ini",
        "become-yaml",
        "ports",
        "ports-yaml",
        "users",
        "key-files",
        "precedence",
        "ungrouped",
        "dir-inventory",
        "dir-kubespray",
        "yaml11-booleans",
        "yaml11-integers",
        "yaml11-floats",
        "yaml11-timestamps",
        "yaml11-tags",
        "yaml11-merge",
        "yaml11-vault-unsafe",
        "yaml11-nulls-keys",
        "unicode-names",
        "vagrant-keys",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "the corpus lacks {want}: {names:?}"
        );
    }
}

#[test]
fn every_corpus_inventory_reads_as_ansible_inventory_reads_it() {
    let mut diffs = Vec::new();
    for (name, path, list) in ansible_corpus() {
        match inventory::load(path) {
            Err(e) => diffs.push(format!("{name}: refused: {e}")),
            Ok(inv) => diffs.extend(host_differences(name, path, list, &inv)),
        }
    }
    assert!(
        diffs.is_empty(),
        "differences from ansible-inventory:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn variables_and_key_files_are_what_ansible_merges() {
    let mut diffs = Vec::new();
    for (name, path, list) in ansible_corpus() {
        let inv = inventory::load(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        diffs.extend(var_differences(name, path, list, &inv));
    }
    assert!(
        diffs.is_empty(),
        "differences from ansible-inventory:\n{}",
        diffs.join("\n")
    );
}

/// Spot checks of what the corpus is there to show, so that a change in
/// both Ansible and sprayvault would still be noticed.
#[test]
fn the_rules_the_corpus_shows() {
    let load = |case: &str| {
        let (_, path) = corpus().into_iter().find(|(n, _)| n == case).unwrap();
        inventory::load(&path).unwrap()
    };
    let inv = load("precedence");
    let user = |h: &str| inv.hosts[h].user.clone().unwrap();
    let level = |h: &str| inv.hosts[h].vars["level"].clone();
    assert_eq!(level("h_full"), "host_vars_b"); // host_vars/ over everything
    assert_eq!(level("h_inline"), "inline"); // inline over group_vars/
    assert_eq!(level("h_child_file"), "kube_node_group_vars"); // child's file over parent's
    assert_eq!(level("h_allfile"), "all_group_vars"); // group_vars/all over [plain:vars]
    assert_eq!(user("h_same"), "z_grp"); // same depth: the later name wins
    assert_eq!(user("h_prio"), "m_prio"); // unless ansible_group_priority says otherwise
    assert_eq!(inv.hosts["h_gpu"].port, Some(2004)); // deeper group over zzz
    let inv = load("ini-legacy");
    assert_eq!(inv.hosts["master2"].address, "192.168.1.11"); // ansible_ssh_host over ansible_host
    assert_eq!(inv.hosts["master2"].port, Some(2222));
    assert_eq!(inv.hosts["worker2"].user.as_deref(), Some("ops"));
    let inv = load("ports");
    assert_eq!(inv.hosts["p11"].port, Some(2211)); // the port where the host is first named
    assert_eq!(inv.hosts["p06"].port, Some(2306));
    let inv = load("ini-ranges");
    let nodes: Vec<&String> = inv.hosts.keys().filter(|h| h.starts_with("node")).collect();
    assert_eq!(nodes.len(), 12); // node01..node10, node0, node3
    assert!(
        inv.hosts.contains_key("node10")
            && inv.hosts.contains_key("web9")
            && !inv.hosts.contains_key("web2")
    );
    let inv = load("yaml-kubespray");
    let n1 = &inv.hosts["node1"];
    assert_eq!(
        (n1.address.as_str(), n1.user.as_deref(), n1.become_),
        ("95.54.0.12", Some("ubuntu"), true)
    );
    assert_eq!(
        n1.groups,
        ["etcd", "k8s_cluster", "kube_control_plane", "kube_node"]
    );
    assert_eq!(n1.vars["etcd_memory_limit"], "512M");
}

/// The YAML 1.1 rules, one spot check each (a YAML 1.2 reader gets every
/// one of these wrong).
#[test]
fn yaml_is_read_by_yaml_1_1_rules_as_ansible_reads_it() {
    let load = |case: &str| {
        let (_, path) = corpus().into_iter().find(|(n, _)| n == case).unwrap();
        inventory::load(&path).unwrap()
    };
    let var = |inv: &inventory::Inventory, h: &str, k: &str| inv.hosts[h].vars[k].clone();
    let inv = load("yaml11-booleans");
    assert!(inv.hosts["b1"].become_ && !inv.hosts["b2"].become_);
    assert_eq!(var(&inv, "b1", "v_yes"), json!(true));
    assert_eq!(var(&inv, "b2", "v_OFF"), json!(false));
    assert_eq!(var(&inv, "b4", "v_y"), json!("y"));
    assert_eq!(var(&inv, "b4", "v_quoted"), json!("yes"));
    let inv = load("yaml11-integers");
    assert_eq!(inv.hosts["i1"].port, Some(18)); // ansible_port: 0022
    assert_eq!(inv.hosts["i2"].port, Some(2222)); // 2_222
    assert_eq!(inv.hosts["i3"].port, Some(2222)); // 0x8AE
    assert_eq!(inv.hosts["i4"].port, Some(1170)); // 02222
    assert_eq!(var(&inv, "i3", "v_sexagesimal"), json!(685230));
    assert_eq!(var(&inv, "i3", "v_not_octal"), json!("08"));
    let inv = load("yaml11-floats");
    assert_eq!(var(&inv, "f1", "v_exp_nodot"), json!("1e3"));
    assert_eq!(var(&inv, "f1", "v_exp_unsigned"), json!("1.0e3"));
    assert_eq!(var(&inv, "f1", "v_exp_signed"), json!(1000.0));
    let inv = load("yaml11-timestamps");
    assert_eq!(
        var(&inv, "t1", "v_canonical"),
        json!("2001-12-14T21:59:43.100000-05:00")
    );
    let inv = load("yaml11-tags");
    assert_eq!(inv.hosts["g1"].port, Some(2200));
    assert_eq!(var(&inv, "g1", "v_str_octal"), json!("0022"));
    assert_eq!(var(&inv, "g1", "v_nonspecific_quoted"), json!(42));
    let inv = load("yaml11-merge");
    assert_eq!(inv.hosts["m2"].port, Some(2202)); // own key over merged
    assert_eq!(var(&inv, "m3", "tier"), json!("ssh")); // earlier merged wins
    assert_eq!(var(&inv, "m4", "<<"), json!("quoted"));
    let inv = load("yaml11-vault-unsafe");
    assert_eq!(inv.hosts["v1"].user.as_deref(), Some("core"));
    assert_eq!(inv.hosts["v2"].port, Some(18));
    assert!(var(&inv, "v2", "db_password")["__ansible_vault"]
        .as_str()
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
}

#[test]
fn the_cli_prints_the_same_json() {
    let (_, path, list) = ansible_corpus()
        .iter()
        .find(|(n, _, _)| n == "yaml-kubespray")
        .unwrap();
    let r = sv_run(&["inventory", "-i", path.to_str().unwrap(), "--json"]).expect(0);
    let printed: Value =
        serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", r.out));
    assert_eq!(printed, inventory::load(path).unwrap().to_json());
    assert_eq!(printed, expected(path, list).json);
}

#[test]
fn roles_understand_current_and_legacy_group_names() {
    let load = |case: &str| {
        let (_, path) = corpus().into_iter().find(|(n, _)| n == case).unwrap();
        inventory::load(&path).unwrap()
    };
    let inv = load("ini-legacy");
    let m = &inv.hosts["master1"];
    assert!(m.is_control_plane() && m.is_etcd() && !m.is_worker() && m.in_cluster());
    assert!(inv.hosts["worker1"].is_worker() && !inv.hosts["worker1"].is_control_plane());
    assert!(inv.hosts["etcd3"].is_etcd() && !inv.hosts["etcd3"].in_cluster());
    let inv = load("ini-kubespray");
    assert!(
        inv.hosts["node1"].is_control_plane()
            && inv.hosts["node1"].is_etcd()
            && !inv.hosts["node1"].is_worker()
    );
    assert!(
        inv.hosts["node4"].is_worker()
            && !inv.hosts["node4"].is_etcd()
            && inv.hosts["node4"].in_cluster()
    );
}

/// `ansible -i PATH PATTERN --list-hosts`, sorted.
fn ansible_hosts(path: &Path, pattern: &str) -> Vec<String> {
    need("ansible");
    let out = ok(Command::new("ansible")
        .arg("-i")
        .arg(path)
        .arg(pattern)
        .arg("--list-hosts")
        .current_dir(fixtures())
        .env("ANSIBLE_NOCOLOR", "1"));
    let mut hosts: Vec<String> = out
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(|l| l.trim().to_string())
        .collect();
    hosts.sort();
    hosts
}

#[test]
fn limit_patterns_select_what_ansible_selects() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "ini-kubespray",
            &[
                "all",
                "*",
                "node1",
                "etcd",
                "node1:node4",
                "node1,node4",
                "etcd,!kube_node",
                "k8s_cluster:&etcd",
                "node*:!node2",
                "!etcd",
                "&etcd",
                "kube_*",
                "node[!13]",
                "etcd:kube_node:!node3",
                " node2 , node5 ",
            ],
        ),
        (
            "ini-sections",
            &[
                "region",
                "zone_b:&rack1",
                "zone_?",
                "rack2,!h1",
                "h*:!zone_a",
                "prio_*",
            ],
        ),
        ("ungrouped", &["ungrouped", "ungrouped:kube_node", "u*:!u2"]),
        (
            "ini-ranges",
            &[
                "*.example.com",
                "gpu-?.example.com",
                "node0[!1]:&etcd",
                "web*,edge*",
                "lonely.example.com",
            ],
        ),
    ];
    let mut checks = Vec::new();
    for (case, patterns) in cases {
        let (_, path) = corpus().into_iter().find(|(n, _)| n == case).unwrap();
        for p in patterns {
            checks.push((case, path.clone(), *p));
        }
    }
    let mut diffs = Vec::new();
    // Two at a time: each ansible run is mostly Python starting up.
    for pair in checks.chunks(2) {
        let wants: Vec<Vec<String>> = std::thread::scope(|s| {
            let runs: Vec<_> = pair
                .iter()
                .map(|(_, path, p)| s.spawn(move || ansible_hosts(path, p)))
                .collect();
            runs.into_iter()
                .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        for ((case, path, p), want) in pair.iter().zip(wants) {
            let inv = inventory::load(path).unwrap();
            let got: Vec<String> = match inv.select(Some(p)) {
                Ok(hosts) => hosts.iter().map(|h| h.name.clone()).collect(),
                Err(e) => vec![format!("error: {e}")],
            };
            if got != want {
                diffs.push(format!(
                    "{case} {p:?}: ansible {want:?}, sprayvault {got:?}"
                ));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "--limit differences:\n{}",
        diffs.join("\n")
    );
}

#[test]
fn patterns_that_select_nothing_are_errors_naming_them() {
    let (_, path) = corpus()
        .into_iter()
        .find(|(n, _)| n == "ini-kubespray")
        .unwrap();
    let inv = inventory::load(&path).unwrap();
    assert_eq!(inv.select(None).unwrap().len(), 5);
    for (pattern, named) in [
        ("nodeX", "\"nodeX\" matches no host"),
        ("etcd:nodeX", "\"nodeX\" matches no host"),
        ("etcd:!nodeX", "\"!nodeX\" matches no host"),
        ("calico_rr", "\"calico_rr\" matches no host"),
        (
            "etcd:&kube_node:!node2:!node3",
            "\"etcd:&kube_node:!node2:!node3\" matches no host",
        ),
        ("~node[12]", "regular expressions are not supported"),
        ("etcd[0]", "subscripts like group[0] are not supported"),
    ] {
        let err = inv.select(Some(pattern)).unwrap_err();
        assert!(matches!(
            err,
            InventoryError::NoMatch { .. } | InventoryError::Pattern { .. }
        ));
        let err = err.to_string();
        assert!(err.contains(named), "{pattern}: {err}");
    }
}

/// (case, inventory, expected lines) for every case under bad/.
fn bad_cases() -> Vec<(String, PathBuf, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures().join("bad")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let expect = std::fs::read_to_string(dir.join("expect"))
            .unwrap_or_else(|_| panic!("{name} has no expect file"));
        let path = inventory_in(&dir).unwrap_or_else(|| panic!("{name} has no hosts file"));
        out.push((name, path, expect));
    }
    out.sort();
    out
}

#[test]
fn malformed_and_hostile_inventories_are_refused_with_the_place_named() {
    let cases = bad_cases();
    assert!(cases.len() >= 50, "only {} bad cases", cases.len());
    let mut problems = Vec::new();
    for (name, path, expect) in &cases {
        match inventory::load(path) {
            Ok(inv) => problems.push(format!(
                "{name}: accepted, with hosts {:?}",
                inv.hosts.keys().collect::<Vec<_>>()
            )),
            Err(e) => {
                let text = e.to_string();
                for want in expect.lines().filter(|l| !l.is_empty()) {
                    if !text.contains(want) {
                        problems.push(format!("{name}: the error lacks {want:?}:\n  {text}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn directories_skip_what_ansible_skips() {
    let dir = fixtures().join("dir-kubespray");
    let inv = inventory::load(&dir).unwrap();
    assert_eq!(inv.hosts.len(), 5);
    assert!(
        !inv.hosts.contains_key("stale1"),
        "inventory.ini is ignored in a directory"
    );
    assert_eq!(inv.skipped.len(), 1, "{:?}", inv.skipped);
    assert!(
        inv.skipped[0].contains("artifacts/admin.conf")
            && inv.skipped[0].contains("'apiVersion:' ends with ':'"),
        "{:?}",
        inv.skipped
    );
    // The same .ini file given by itself is read.
    let ini = inventory::load(&dir.join("inventory.ini")).unwrap();
    assert_eq!(ini.hosts.keys().collect::<Vec<_>>(), ["stale1"]);
    assert!(ini.skipped.is_empty());
    // A directory of which no file can be read is an error.
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes"), "this is not an inventory\n").unwrap();
    let err = inventory::load(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("notes line 1") && err.contains("not name=value"),
        "{err}"
    );
}

#[test]
fn a_missing_inventory_is_a_read_error() {
    let err = inventory::load(&fixtures().join("no-such-inventory.yaml")).unwrap_err();
    assert!(matches!(err, InventoryError::Read { .. }));
    assert!(err.to_string().contains("no-such-inventory.yaml"), "{err}");
}

#[test]
fn text_reads_like_a_file_without_var_files() {
    let inv = inventory::from_text(
        Path::new("hosts.yaml"),
        "all:\n  hosts:\n    n1: {ansible_host: 10.0.0.1, ansible_become: yes}\n  children:\n    etcd:\n      hosts:\n        n1:\n",
    )
    .unwrap();
    assert_eq!(inv.hosts["n1"].address, "10.0.0.1");
    assert!(inv.hosts["n1"].become_ && inv.hosts["n1"].is_etcd());
    let inv = inventory::from_text(
        Path::new("hosts"),
        "[kube_node]\nw[1:3] ansible_port=2200\n",
    )
    .unwrap();
    assert_eq!(inv.hosts.len(), 3);
    assert_eq!(inv.groups["kube_node"].len(), 3);
    assert!(
        inventory::from_text(Path::new("hosts.ini"), "[all]\nn1 ansible_user='a b'\n").is_err()
    );
}

/// One unusable host failed the whole inventory, even when `--limit` left
/// it out; Ansible fails only on the hosts it uses, and so does sprayvault
/// now: selecting the host (or every host) is still refused, naming it.
#[test]
fn regression_unusable_host_outside_limit_failed_the_inventory() {
    let path = fixtures().join("bad/limit-unusable-host/hosts");
    let inv = inventory::read(&path).unwrap();
    let names = |hosts: Vec<&inventory::Host>| -> Vec<String> {
        hosts.iter().map(|h| h.name.clone()).collect()
    };
    for pattern in ["kube_node", "node*", "all:!bastion", "node1,node2", "node2"] {
        let ours = names(inv.select(Some(pattern)).unwrap());
        assert_eq!(ours, ansible_hosts(&path, pattern), "{pattern}");
    }
    for pattern in [
        None,
        Some("all"),
        Some("bastion"),
        Some("*"),
        Some("node1:bastion"),
    ] {
        let e = inv.select(pattern).unwrap_err().to_string();
        assert!(
            e.contains("host '-oProxyCommand=x'") && e.contains("starts with '-'"),
            "{pattern:?}: {e}"
        );
    }
    let p = path.to_str().unwrap();
    let r = sv_run(&["inventory", "-i", p, "--limit", "kube_node", "--json"]).expect(0);
    let printed: Value = serde_json::from_str(&r.out).unwrap();
    let hosts: Vec<&String> = printed["hosts"].as_object().unwrap().keys().collect();
    assert_eq!(hosts, ["node1", "node2"]);
    for args in [
        vec!["inventory", "-i", p],
        vec!["inventory", "-i", p, "--json"],
    ] {
        let r = sv_run(&args).expect(1);
        assert!(r.err.contains("host '-oProxyCommand=x'"), "{}", r.err);
    }
}

/// Host names in any script, and the host-name templates of Vagrant
/// inventories, as Ansible resolves them (the corpus checks every value;
/// these are the spot checks).
#[test]
fn non_ascii_names_and_host_name_templates() {
    let load = |case: &str| {
        let (_, path) = corpus().into_iter().find(|(n, _)| n == case).unwrap();
        inventory::load(&path).unwrap()
    };
    let inv = load("unicode-names");
    let h = &inv.hosts["příbor"];
    assert_eq!(
        (h.address.as_str(), h.port, h.user.as_deref()),
        ("10.0.0.11", Some(2201), Some("spravce"))
    );
    assert!(h.is_etcd() && h.is_control_plane());
    assert_eq!(inv.hosts["東京-1"].user.as_deref(), Some("ops"));
    assert_eq!(inv.select(Some("skupina_ř")).unwrap().len(), 3);
    let inv = load("vagrant-keys");
    assert_eq!(
        inv.hosts["k8s-1"].key_file.as_deref(),
        Some(Path::new(".vagrant/machines/k8s-1/virtualbox/private_key"))
    );
    assert_eq!(inv.hosts["k8s-3.vagrant"].address, "k8s-3.local");
    assert_eq!(
        inv.hosts["k8s-3.vagrant"].key_file.as_deref(),
        Some(Path::new("~/.vagrant.d/keys/k8s-3.key"))
    );
}

/// Where Ansible and sprayvault differ on the usable hosts of an
/// inventory: connection settings and groups, and hosts only one has.
fn host_differences(
    name: &str,
    path: &Path,
    list: &Value,
    inv: &inventory::Inventory,
) -> Vec<String> {
    let want = expected(path, list).json;
    let got = inv.to_json();
    let mut diffs = Vec::new();
    for (host, w) in want["hosts"].as_object().unwrap() {
        if !inv.unusable.contains_key(host) && got["hosts"].get(host) != Some(w) {
            diffs.push(format!(
                "{name} {host}:\n  ansible:    {w}\n  sprayvault: {}",
                got["hosts"][host]
            ));
        }
    }
    for host in got["hosts"].as_object().unwrap().keys() {
        if want["hosts"].get(host).is_none() {
            diffs.push(format!(
                "{name}: sprayvault has the host {host}, Ansible does not"
            ));
        }
    }
    diffs
}

/// Where Ansible and sprayvault differ on the usable hosts' variables and
/// key files.
fn var_differences(
    name: &str,
    path: &Path,
    list: &Value,
    inv: &inventory::Inventory,
) -> Vec<String> {
    let want = expected(path, list);
    let mut diffs = Vec::new();
    for (host, h) in &inv.hosts {
        let Some(theirs) = want.vars.get(host) else {
            continue;
        };
        let ours: Map<String, Value> = h.vars.clone().into_iter().collect();
        let keys: BTreeSet<&String> = theirs.keys().chain(ours.keys()).collect();
        for k in keys {
            let (a, o) = (theirs.get(k), ours.get(k));
            if a != o {
                diffs.push(format!(
                    "{name} {host} {k}: ansible {a:?}, sprayvault {o:?}"
                ));
            }
        }
        if want.key_files[host] != h.key_file {
            diffs.push(format!(
                "{name} {host} key file: ansible {:?}, sprayvault {:?}",
                want.key_files[host], h.key_file
            ));
        }
    }
    diffs
}

/// Public inventories (Ansible's own tests, kubespray, OpenShift, k3s,
/// Ceph, AWX; see SOURCES) read as ansible-inventory reads them. The hosts
/// sprayvault refuses are the ones SOURCES names with why, each for a
/// template it cannot resolve or a setting that is unsafe; every other
/// host must agree in every value.
#[test]
fn public_inventories_read_as_ansible_inventory_reads_them() {
    let text = std::fs::read_to_string(public().join("SOURCES")).unwrap();
    let mut sources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert!(
            f.len() >= 4,
            "SOURCES: {line:?} is not case, repository, commit, path"
        );
        let refused = f.get(4).map(|r| {
            r.split(' ')
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect()
        });
        sources.insert(f[0].to_string(), refused.unwrap_or_default());
    }
    let cases = cases_in(&public());
    let names: BTreeSet<String> = cases.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        sources.keys().cloned().collect(),
        "SOURCES and the case directories differ"
    );
    assert!(cases.len() >= 60, "only {} public inventories", cases.len());
    let mut diffs = Vec::new();
    let mut agree = 0;
    for (name, path, list) in ansible_lists(cases) {
        let inv = match inventory::read(&path) {
            Ok(inv) => inv,
            Err(e) => {
                diffs.push(format!("{name}: refused: {e}"));
                continue;
            }
        };
        let mut d = host_differences(&name, &path, &list, &inv);
        d.extend(var_differences(&name, &path, &list, &inv));
        let refused: BTreeSet<String> = inv.unusable.keys().cloned().collect();
        if refused != sources[&name] {
            let why: Vec<String> = inv.unusable.values().map(|e| e.to_string()).collect();
            diffs.push(format!(
                "{name}: sprayvault refuses {refused:?}, SOURCES says {:?}: {why:?}",
                sources[&name]
            ));
        }
        if d.is_empty() && refused.is_empty() {
            agree += 1;
        }
        diffs.extend(d);
    }
    eprintln!("{agree} public inventories agree with ansible-inventory in every host and value");
    assert!(
        diffs.is_empty(),
        "differences from ansible-inventory:\n{}",
        diffs.join("\n")
    );
}
