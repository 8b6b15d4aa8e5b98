//! The Ansible fact cache with real Ansible: gathered with `ansible -m setup`
//! into kubespray's jsonfile cache, backed up, lost with a dead node, and
//! restored so that a `--limit` run reading the dead node's hostvars works.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

const PLAYBOOK: &str = "- hosts: all
  gather_facts: false
  tasks:
    - name: read node3's facts as kubespray's templates do
      debug:
        msg: \"node3 is {{ hostvars['node3']['ansible_default_ipv4']['address'] }} ({{ hostvars['node3']['ansible_hostname'] }})\"
";

fn ansible(dir: &Path, args: &[&str]) -> std::process::Output {
    run(Command::new(args[0])
        .args(&args[1..])
        .current_dir(dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1"))
}

#[test]
fn restored_facts_make_a_limit_run_work_while_a_node_is_dead() {
    need("ansible");
    need("ansible-playbook");
    let lab = Lab::up("facts", 51, 3);
    let v = TestVault::new();
    let kube = v.tmp.path().join("kubespray");
    let cache = kube.join("facts-cache");
    std::fs::create_dir_all(&kube).unwrap();
    std::fs::write(
        kube.join("ansible.cfg"),
        format!(
            "[defaults]\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = {}\nfact_caching_timeout = 86400\ninterpreter_python = auto_silent\n\n[ssh_connection]\nssh_args = -F {}\n",
            cache.display(),
            lab.ssh_config()
        ),
    )
    .unwrap();
    std::fs::write(kube.join("read-node3.yml"), PLAYBOOK).unwrap();
    let inv = lab.inventory();
    let cfg = lab.ssh_config();
    let out = ansible(&kube, &["ansible", "-i", &inv, "all", "-m", "setup"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in ["node1", "node2", "node3"] {
        assert!(cache.join(n).is_file(), "ansible wrote no cache for {n}");
    }

    let k = kube.to_str().unwrap();
    let first = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--ansible-dir",
        k,
    ])
    .expect(0);
    assert!(first.out.contains("facts: 3 stored"), "{}", first.out);
    let facts_tree = v.git(&["rev-parse", "main:facts"]);

    // Gathering again changes uptime, clock, memory...: nothing new in the vault.
    std::thread::sleep(std::time::Duration::from_secs(1));
    assert!(
        ansible(&kube, &["ansible", "-i", &inv, "all", "-m", "setup"])
            .status
            .success()
    );
    let second = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--ansible-dir",
        k,
    ])
    .expect(0);
    let id = v.key.identity.to_str().unwrap();
    let changed = sv_run(&["facts", "diff", "--vault", v.path(), "--identity", id]).out;
    assert!(
        second.out.contains("facts: 0 stored, 3 unchanged"),
        "{}\nfacts diff:\n{changed}",
        second.out
    );
    assert_eq!(
        v.git(&["rev-parse", "main:facts"]),
        facts_tree,
        "volatile facts made the history noisy"
    );

    // A night in which only node1's stable facts changed: the one new object
    // is its fact blob, and the metrics count it, objects and bytes.
    let file = cache.join("node1");
    let mut facts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    facts["ansible_kernel_version"] = "#2 SMP sprayvault-test".into();
    std::fs::write(&file, serde_json::to_vec(&facts).unwrap()).unwrap();
    let metrics = v.tmp.path().join("backup.prom");
    let third = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--ansible-dir",
        k,
        "--no-etcd-snapshot",
        "--metrics-file",
        metrics.to_str().unwrap(),
    ])
    .expect(0);
    assert!(
        third.out.contains("facts: 1 stored, 2 unchanged"),
        "{}",
        third.out
    );
    let size: u64 = v
        .git(&["cat-file", "-s", "main:facts/files/node1"])
        .trim()
        .parse()
        .unwrap();
    let prom = std::fs::read_to_string(&metrics).unwrap();
    let gauge = |name: &str| {
        prom.lines()
            .find(|l| l.starts_with(name) && !l.starts_with('#'))
            .and_then(|l| l.rsplit(' ').next())
            .unwrap_or_else(|| panic!("{name} not in\n{prom}"))
            .to_string()
    };
    assert_eq!(gauge("sprayvault_last_run_added_objects"), "1", "{prom}");
    assert_eq!(
        gauge("sprayvault_last_run_added_bytes"),
        size.to_string(),
        "{prom}"
    );

    // node3 dies and /tmp is cleaned: a --limit run that needs its facts fails.
    lab.lab(&["kill", "node3"]);
    std::fs::remove_dir_all(&cache).unwrap();
    let broken = ansible(
        &kube,
        &[
            "ansible-playbook",
            "-i",
            &inv,
            "read-node3.yml",
            "--limit",
            "node1",
        ],
    );
    assert!(
        !broken.status.success(),
        "the run should fail without node3's facts"
    );
    assert!(
        String::from_utf8_lossy(&broken.stdout).contains("undefined"),
        "{}",
        String::from_utf8_lossy(&broken.stdout)
    );

    let r = sv_run(&[
        "facts",
        "restore",
        "--vault",
        v.path(),
        "--identity",
        id,
        "--ansible-dir",
        k,
        "-i",
        &inv,
    ])
    .expect(0);
    assert!(
        r.out.contains("restored facts of node3") && r.out.contains("current time"),
        "{}",
        r.out
    );
    let meta = std::fs::metadata(cache.join("node3")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let age = std::time::SystemTime::now()
        .duration_since(meta.modified().unwrap())
        .unwrap_or_default();
    assert!(age.as_secs() < 60, "restored facts are not fresh: {age:?}");

    let fixed = ansible(
        &kube,
        &[
            "ansible-playbook",
            "-i",
            &inv,
            "read-node3.yml",
            "--limit",
            "node1",
        ],
    );
    let text = String::from_utf8_lossy(&fixed.stdout);
    assert!(fixed.status.success(), "{text}");
    assert!(
        text.contains("node3 is ") && text.contains("(node3)"),
        "{text}"
    );

    // Newer facts of a live host are not overwritten without --force.
    assert!(
        ansible(&kube, &["ansible", "-i", &inv, "node1", "-m", "setup"])
            .status
            .success()
    );
    let r = sv_run(&[
        "facts",
        "restore",
        "node1",
        "--vault",
        v.path(),
        "--identity",
        id,
        "--ansible-dir",
        k,
    ])
    .expect(7);
    assert!(
        r.err.contains("newer facts") && r.err.contains("--force"),
        "{}",
        r.err
    );
    sv_run(&[
        "facts",
        "restore",
        "node1",
        "--vault",
        v.path(),
        "--identity",
        id,
        "--ansible-dir",
        k,
        "--force",
    ])
    .expect(0);

    // facts diff shows stable facts that changed, not volatile ones.
    let f = cache.join("node2");
    let mut facts: serde_json::Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
    facts["ansible_hostname"] = "node2-renamed".into();
    facts["ansible_uptime_seconds"] = 1.into();
    std::fs::write(&f, serde_json::to_vec(&facts).unwrap()).unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--ansible-dir",
        k,
        "--limit",
        "node1",
    ])
    .expect(0);
    assert!(r.out.contains("facts: 1 stored"), "{}", r.out);
    let d = sv_run(&[
        "facts",
        "diff",
        "latest~1",
        "latest",
        "node2",
        "--vault",
        v.path(),
        "--identity",
        id,
    ])
    .expect(0)
    .out;
    assert!(
        d.contains("~ node2 ansible_hostname: \"node2\" -> \"node2-renamed\""),
        "{d}"
    );
    assert!(!d.contains("uptime"), "{d}");

    // No cache configured: reported, not guessed.
    let empty = v.tmp.path().join("no-ansible");
    std::fs::create_dir_all(&empty).unwrap();
    let r = sv_run(&[
        "backup",
        "--vault",
        v.path(),
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--ansible-dir",
        empty.to_str().unwrap(),
        "--limit",
        "node1",
    ]);
    assert_eq!(r.code, 1, "{}", r.err);
    assert!(
        r.err.contains("ansible.cfg") || r.err.contains("fact"),
        "{}",
        r.err
    );
}
