//! contrib/ansible/install.yml with the real ansible-playbook: this machine
//! (connection=local) as the control host, a lab's nodes as the nodes. Then
//! the installed units' commands run as systemd would run them (user,
//! environment file, the ssh key as a credential), so the backup goes
//! through the account and key the playbook made. The package is purged
//! afterwards.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        uninstall_package();
    }
}

fn playbook(dir: &Path, lab: &Lab, args: &[&str]) -> String {
    let out = run(Command::new("ansible-playbook")
        .current_dir(dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .env("ANSIBLE_NOCOLOR", "1")
        .args(["-i", &lab.inventory(), "-i", "control.ini"])
        .arg(root().join("contrib/ansible/install.yml"))
        .args(args));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "ansible-playbook failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// What systemd does to start `unit` (this machine's PID 1 may not be
/// systemd): its User=, its EnvironmentFile=, its LoadCredential= as a
/// directory only that user can read in $CREDENTIALS_DIRECTORY, its
/// WorkingDirectory=, then ExecStart= with $VARIABLES expanded.
fn run_unit(unit: &str) -> Sv {
    let text = std::fs::read_to_string(format!("/lib/systemd/system/{unit}")).unwrap();
    let value = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .collect()
    };
    let user = value("User").pop().expect("User=");
    let mut env: Vec<(String, String)> = Vec::new();
    for file in value("EnvironmentFile") {
        let body = std::fs::read_to_string(file.trim_start_matches('-')).unwrap();
        for l in body.lines().map(str::trim) {
            if l.starts_with('#') || l.is_empty() {
                continue;
            }
            let (k, v) = l.split_once('=').expect("KEY=value");
            env.push((k.to_string(), v.to_string()));
        }
    }
    let creds = tempfile::tempdir().unwrap();
    for cred in value("LoadCredential") {
        let (name, src) = cred.split_once(':').unwrap();
        let dest = creds.path().join(name);
        std::fs::copy(src, &dest).unwrap();
        ok(Command::new("chown")
            .arg(&user)
            .arg(&dest)
            .arg(creds.path()));
        ok(Command::new("chmod").arg("0400").arg(&dest));
        ok(Command::new("chmod").arg("0500").arg(creds.path()));
    }
    let exec = value("ExecStart").pop().expect("ExecStart=");
    let mut argv: Vec<String> = Vec::new();
    for word in exec.split_whitespace() {
        match word.strip_prefix('$') {
            Some(var) => {
                let v = env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
                argv.extend(v.unwrap_or_default().split_whitespace().map(str::to_string));
            }
            None => argv.push(word.to_string()),
        }
    }
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", &user, "--", "env", "-i", "PATH=/usr/bin:/bin"])
        .arg(format!("HOME=/var/lib/{user}"))
        .arg(format!("CREDENTIALS_DIRECTORY={}", creds.path().display()));
    for (k, v) in &env {
        cmd.arg(format!("{k}={v}"));
    }
    cmd.args(&argv);
    if let Some(dir) = value("WorkingDirectory").pop() {
        cmd.current_dir(dir);
    }
    let out = run(&mut cmd);
    Sv {
        out: String::from_utf8_lossy(&out.stdout).to_string(),
        err: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code().unwrap_or(-1),
    }
}

#[test]
fn playbook_installs_the_control_host_and_nodes_then_the_units_back_up_through_its_account() {
    for t in ["ansible-playbook", "runuser", "visudo", "dpkg"] {
        need(t);
    }
    let (deb, _) = package();
    let lab = Lab::up("ops-ansible", 82, 3);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("ansible.cfg"),
        format!(
            "[defaults]\ninterpreter_python = auto_silent\nhost_key_checking = true\n\n[ssh_connection]\nssh_args = -F {}\n",
            lab.ssh_config()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("control.ini"),
        "[sprayvault_control]\nlocalhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n",
    )
    .unwrap();
    let key = age_key(dir, "operator");
    let vars = serde_json::json!({
        "sprayvault_deb": deb,
        "sprayvault_recipients": [key.recipient],
        "sprayvault_keep_last": 1,
    });
    std::fs::write(dir.join("vars.json"), vars.to_string()).unwrap();
    let _installed = Installed;
    let first = playbook(dir, &lab, &["-e", "@vars.json"]);
    assert!(first.contains("PLAY RECAP"), "{first}");

    // The control host: package, account, its key (root's, 0600), the vault
    // owned by the account, the configuration, the timers enabled.
    ok(Command::new("dpkg").args(["-s", "sprayvault"]));
    let passwd = ok(Command::new("getent").args(["passwd", "sprayvault"]));
    assert!(
        passwd.contains(":/var/lib/sprayvault:/usr/sbin/nologin"),
        "{passwd}"
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let k = std::fs::metadata("/etc/sprayvault/ssh/id_ed25519").unwrap();
    assert_eq!((k.uid(), k.permissions().mode() & 0o777), (0, 0o600));
    let uid: u32 = ok(Command::new("id").args(["-u", "sprayvault"]))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        std::fs::metadata("/var/lib/sprayvault/vault")
            .unwrap()
            .uid(),
        uid
    );
    let env = std::fs::read_to_string("/etc/sprayvault/sprayvault.env").unwrap();
    assert!(env.contains("SPRAYVAULT_KEEP_LAST=1\n"), "{env}");
    for t in ["backup", "verify", "prune"] {
        let link = format!("/etc/systemd/system/timers.target.wants/sprayvault-{t}.timer");
        assert!(
            Path::new(&link).exists(),
            "{link} missing: timer not enabled"
        );
    }
    let inventory = std::fs::read_to_string("/etc/sprayvault/inventory/hosts").unwrap();
    assert!(
        inventory.contains("[etcd]\nnode1\nnode2\nnode3\n"),
        "{inventory}"
    );
    let parsed = sv_run(&["inventory", "-i", "/etc/sprayvault/inventory", "--json"]).expect(0);
    let parsed: serde_json::Value = serde_json::from_str(&parsed.out).unwrap();
    for n in ["node1", "node2", "node3"] {
        assert_eq!(parsed["hosts"][n]["user"], "sprayvault", "{parsed}");
    }

    // The nodes: the account, only the control host's key, the sudo rule.
    let pubkey = std::fs::read_to_string("/etc/sprayvault/ssh/id_ed25519.pub").unwrap();
    for n in ["node1", "node2", "node3"] {
        let pw = lab.exec(n, &["getent", "passwd", "sprayvault"]);
        assert!(pw.contains(":/home/sprayvault:/bin/sh"), "{n}: {pw}");
        let keys = lab.exec(n, &["cat", "/home/sprayvault/.ssh/authorized_keys"]);
        assert_eq!(keys, format!("restrict {}", pubkey.trim()) + "\n");
        // Fixed programs only, no shell; the snapshot helper on etcd
        // members (all three here), root's and without arguments.
        let rule = lab.exec(n, &["sudo", "-l", "-U", "sprayvault"]);
        assert!(
            rule.contains(
                "(root) NOPASSWD: /usr/lib/openssh/sftp-server -R -u 077, /usr/local/libexec/sprayvault/etcd-snapshot \"\""
            ) && !rule.contains("sh -c"),
            "{n}: {rule}"
        );
        let helper = lab.exec(
            n,
            &[
                "stat",
                "-c",
                "%U %G %a",
                "/usr/local/libexec/sprayvault/etcd-snapshot",
            ],
        );
        assert_eq!(helper.trim(), "root root 755", "{n}");
    }

    // Run again: nothing changes.
    let second = playbook(dir, &lab, &["-e", "@vars.json"]);
    for l in second.lines().filter(|l| l.contains(" : ok=")) {
        assert!(
            l.contains(" changed=0 "),
            "second run changed something:\n{second}"
        );
    }

    // The units' commands, as systemd runs them: a backup through the
    // account and key the playbook made, then verify and prune.
    let b = run_unit("sprayvault-backup.service");
    assert_eq!(b.code, 0, "backup:\n{}\n{}", b.out, b.err);
    assert!(b.out.contains("3/3 nodes"), "{}", b.out);
    assert!(b.out.contains("etcd snapshot: "), "{}", b.out);
    let b = run_unit("sprayvault-backup.service");
    assert_eq!(b.code, 0, "second backup:\n{}\n{}", b.out, b.err);
    // `-o -`: the snapshot on stdout is the file `-o FILE` writes, byte for
    // byte (the identity from SPRAYVAULT_IDENTITY).
    let file = dir.join("snap.db");
    // The operator trusts the signer the backup host prints.
    let own = sv_run(&[
        "trust",
        "--vault",
        "/var/lib/sprayvault/vault",
        "--backup-host",
        "--json",
    ])
    .expect(0);
    let own: serde_json::Value = serde_json::from_str(&own.out).unwrap();
    sv_run(&["trust", "--pin", own["signer"].as_str().unwrap()]).expect(0);
    let exported = run(sv()
        .args([
            "etcd",
            "export",
            "--vault",
            "/var/lib/sprayvault/vault",
            "-o",
            "-",
        ])
        .env("SPRAYVAULT_IDENTITY", &key.identity));
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert!(String::from_utf8_lossy(&exported.stderr).contains("sha256 trailer verified"));
    sv_run(&[
        "etcd",
        "export",
        "--vault",
        "/var/lib/sprayvault/vault",
        "-o",
        file.to_str().unwrap(),
        "--identity",
        key.identity.to_str().unwrap(),
    ])
    .expect(0);
    let written = std::fs::read(&file).unwrap();
    assert!(written.len() > 1000);
    assert_eq!(exported.stdout, written);
    let v = run_unit("sprayvault-verify.service");
    assert_eq!(v.code, 0, "verify:\n{}\n{}", v.out, v.err);
    let p = run_unit("sprayvault-prune.service");
    assert_eq!(p.code, 0, "prune:\n{}\n{}", p.out, p.err);
    assert!(p.out.contains("removed 1 snapshots, kept 1"), "{}", p.out);
    // Each node's sshd let in the backup account, with the control host's key.
    let fingerprint =
        ok(Command::new("ssh-keygen").args(["-l", "-f", "/etc/sprayvault/ssh/id_ed25519.pub"]));
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();
    for n in ["node1", "node2", "node3"] {
        let log = std::fs::read_to_string(lab.dir.join("nodes").join(n).join("sshd.log")).unwrap();
        assert!(
            log.lines().any(
                |l| l.contains("Accepted publickey for sprayvault") && l.contains(&fingerprint)
            ),
            "{n}: no login as sprayvault with {fingerprint}:\n{log}"
        );
    }
}
