//! Identities and owners against a real lab (sshd in namespaces, see
//! scripts/lab): restores with passphrase-protected identities made by the
//! real `age -p` and `ssh-keygen -N`, the passphrase from a file or the
//! terminal; wrong or exposed passphrases refused; and a node restored onto a
//! machine that lacks the recorded owner names.

mod common;
use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Owner names, modes and content of what kubespray keeps under
/// /etc/kubernetes and /etc/ssl/etcd, as the node sees them.
fn node_state(lab: &Lab, node: &str) -> String {
    lab.exec(
        node,
        &[
            "sh",
            "-c",
            "cd / && find etc/kubernetes etc/ssl/etcd etc/etcd.env -printf '%p %y %u:%g %m %s %l\\n' -type f -exec sha256sum {} \\; | sort",
        ],
    )
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A passphrase file of `mode`.
fn passphrase_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    chmod(&p, mode);
    p
}

/// Runs `command` under `script`, on a terminal of its own, answering each
/// prompt of `answers` (waiting until it is shown, as a person at the
/// terminal would). Returns the exit code and everything the terminal showed.
fn on_terminal(command: &str, answers: &[(&str, &str)]) -> (i32, String) {
    need("script");
    let mut child = Command::new("script")
        .args(["-qfec", command, "/dev/null"])
        .env(
            "SPRAYVAULT_PINS",
            std::env::temp_dir().join(format!("sprayvault-test-pins-{}", std::process::id())),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("script runs (util-linux)");
    let mut input = child.stdin.take().expect("piped");
    let mut output = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = std::io::Read::read(&mut output, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut shown = Vec::new();
    for (prompt, line) in answers {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !String::from_utf8_lossy(&shown).contains(prompt) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(chunk) => shown.extend(chunk),
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "no prompt {prompt:?} from {command}:\n{}",
                        String::from_utf8_lossy(&shown)
                    );
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        input.write_all(format!("{line}\n").as_bytes()).unwrap();
        input.flush().unwrap();
    }
    let status = child.wait().expect("script ends");
    drop(input);
    shown.extend(rx.iter().flatten());
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&shown).to_string(),
    )
}

/// `sprayvault restore NODE` of `vault` on `lab` with `identity`, and more
/// arguments.
fn restore(vault: &str, lab: &Lab, identity: &Path, extra: &[&str]) -> Sv {
    let (inv, cfg) = (lab.inventory(), lab.ssh_config());
    let id = identity.display().to_string();
    let mut a = vec![
        "restore",
        "node1",
        "--vault",
        vault,
        "-i",
        &inv,
        "--ssh-config",
        &cfg,
        "--identity",
        &id,
    ];
    a.extend_from_slice(extra);
    sv_run(&a)
}

/// The command line of `restore` for a shell.
fn restore_line(vault: &str, lab: &Lab, identity: &Path, extra: &str) -> String {
    format!(
        "{} restore node1 --vault {vault} -i {} --ssh-config {} --identity {} {extra}",
        env!("CARGO_BIN_EXE_sprayvault"),
        lab.inventory(),
        lab.ssh_config(),
        identity.display()
    )
}

#[test]
fn a_node_is_restored_with_an_age_identity_protected_by_age_p() {
    need("age");
    let lab = Lab::up("id-age", 140, 1);
    let v = TestVault::new();
    let dir = v.tmp.path();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    let before = node_state(&lab, "node1");

    // The operator's key, protected by the real `age -p` (which asks on a
    // terminal, twice), and the plaintext key gone.
    let key = dir.join("operator.age");
    let (code, shown) = on_terminal(
        &format!("age -p -o {} {}", key.display(), v.key.identity.display()),
        &[
            ("Enter passphrase", "pass phrase"),
            ("Confirm passphrase", "pass phrase"),
        ],
    );
    assert_eq!(code, 0, "age -p: {shown}");
    std::fs::remove_file(&v.key.identity).unwrap();
    chmod(&key, 0o600);
    assert!(std::fs::read(&key)
        .unwrap()
        .starts_with(b"age-encryption.org/v1\n-> scrypt "));

    lab.lab(&["wipe", "node1"]);
    let wiped = node_state(&lab, "node1");
    assert_ne!(wiped, before);

    // A wrong passphrase: its own error, exit 2, nothing changed.
    let wrong = passphrase_file(dir, "wrong", "pass frase", 0o600);
    let w = wrong.display().to_string();
    let r = restore(v.path(), &lab, &key, &["--passphrase-file", &w]).expect(2);
    assert!(
        r.err.contains(&format!(
            "wrong passphrase for identity file {} (an age identity file encrypted with a passphrase)",
            key.display()
        )),
        "{}",
        r.err
    );
    assert_eq!(node_state(&lab, "node1"), wiped);

    // A passphrase file others can read is refused, naming it and its mode.
    let exposed = passphrase_file(dir, "exposed", "pass phrase", 0o640);
    let e = exposed.display().to_string();
    let r = restore(v.path(), &lab, &key, &["--passphrase-file", &e]).expect(2);
    assert!(
        r.err.contains(&format!(
            "passphrase file {e}: it is readable or writable by group or others (mode 0640); `chmod 600` it"
        )),
        "{}",
        r.err
    );
    assert_eq!(node_state(&lab, "node1"), wiped);

    // No terminal and no passphrase file: what to do.
    let mut cmd = sv();
    cmd.args([
        "restore",
        "node1",
        "--vault",
        v.path(),
        "-i",
        &lab.inventory(),
        "--ssh-config",
        &lab.ssh_config(),
        "--identity",
        key.to_str().unwrap(),
    ]);
    // SAFETY: setsid is async-signal-safe; the child leaves its terminal.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let out = run(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("there is no terminal to ask for its passphrase on; give --passphrase-file FILE (or SPRAYVAULT_PASSPHRASE_FILE)"),
        "{err}"
    );

    // On a terminal the passphrase is asked, and not echoed.
    let prompt = format!(
        "Passphrase for {} (an age identity file encrypted with a passphrase): ",
        key.display()
    );
    let (code, shown) = on_terminal(
        &restore_line(v.path(), &lab, &key, "--dry-run"),
        &[(&prompt, "pass phrase")],
    );
    assert_eq!(code, 0, "{shown}");
    assert!(
        !shown.contains("pass phrase"),
        "the passphrase was echoed: {shown}"
    );
    assert!(shown.contains("dry run: nothing was changed"), "{shown}");

    // The right passphrase, from the environment's passphrase file.
    let good = passphrase_file(dir, "good", "pass phrase", 0o400);
    let out = run(sv()
        .args([
            "restore",
            "node1",
            "--vault",
            v.path(),
            "-i",
            &lab.inventory(),
            "--ssh-config",
            &lab.ssh_config(),
            "--identity",
            key.to_str().unwrap(),
        ])
        .env("SPRAYVAULT_PASSPHRASE_FILE", &good));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("0 errors"), "{text}");
    // Same content, modes and owner names (the ids are the wiped machine's).
    assert_eq!(node_state(&lab, "node1"), before);
}

#[test]
fn a_node_is_restored_with_passphrase_protected_openssh_keys() {
    need("ssh-keygen");
    let lab = Lab::up("id-ssh", 141, 1);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut recipients = Vec::new();
    for kind in ["ed25519", "rsa"] {
        ok(Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "ssh pass", "-C", "operator", "-f"])
            .arg(dir.join(format!("id_{kind}"))));
        let public = std::fs::read_to_string(dir.join(format!("id_{kind}.pub"))).unwrap();
        recipients.push(public.trim().to_string());
    }
    let vault = dir.join("vault");
    let vd = vault.to_str().unwrap();
    sv_run(&[
        "init",
        "--vault",
        vd,
        "--recipient",
        &recipients[0],
        "--recipient",
        &recipients[1],
    ])
    .expect(0);
    // The operator's machine trusts the signer init printed.
    let own = sv_run(&["trust", "--vault", vd, "--backup-host", "--json"]).expect(0);
    let own: serde_json::Value = serde_json::from_str(&own.out).unwrap();
    sv_run(&["trust", "--pin", own["signer"].as_str().unwrap()]).expect(0);
    sv_run(&[
        "backup",
        "--vault",
        vd,
        "-i",
        &lab.inventory(),
        "--ssh-config",
        &lab.ssh_config(),
        "--no-facts",
        "--no-etcd-snapshot",
    ])
    .expect(0);
    let before = node_state(&lab, "node1");
    lab.exec(
        "node1",
        &["sh", "-c", "echo tampered > /etc/kubernetes/ssl/ca.key"],
    );

    let good = passphrase_file(dir, "good", "ssh pass", 0o600);
    let wrong = passphrase_file(dir, "wrong", "ssh pas", 0o600);
    let (g, w) = (good.display().to_string(), wrong.display().to_string());
    let ed = dir.join("id_ed25519");
    let rsa = dir.join("id_rsa");

    let r = restore(vd, &lab, &ed, &["--passphrase-file", &w, "--force"]).expect(2);
    assert!(
        r.err.contains(&format!(
            "wrong passphrase for identity file {} (a passphrase-protected OpenSSH key)",
            ed.display()
        )),
        "{}",
        r.err
    );
    assert_ne!(node_state(&lab, "node1"), before);

    // The rsa key decrypts too (plan only), the ed25519 key restores.
    let r = restore(vd, &lab, &rsa, &["--passphrase-file", &g, "--dry-run"]).expect(7);
    assert!(r.out.contains("/etc/kubernetes/ssl/ca.key"), "{}", r.out);
    let r = restore(vd, &lab, &ed, &["--passphrase-file", &g, "--force"]).expect(0);
    assert!(r.out.contains("0 errors"), "{}", r.out);
    assert_eq!(node_state(&lab, "node1"), before);
}

/// The line of the plan for `path`.
fn plan_line<'a>(out: &'a str, path: &str) -> &'a str {
    out.lines()
        .find(|l| l.split_whitespace().nth(4) == Some(path))
        .unwrap_or_else(|| panic!("no plan line for {path}:\n{out}"))
}

/// Makes node1 a fresh machine kubespray never ran on: no `kube`, `etcd` or
/// `kube-cert` account.
fn wipe_fresh(lab: &Lab) {
    lab.lab(&["wipe", "node1", "--fresh"]);
    assert!(!lab
        .exec("node1", &["cat", "/etc/passwd"])
        .contains("\nkube:"));
}

#[test]
fn owner_names_missing_on_the_target_get_root_or_with_numeric_ids_the_recorded_ids() {
    let lab = Lab::up("id-owners", 142, 1);
    let v = TestVault::new();
    v.backup(&lab, &["--no-facts", "--no-etcd-snapshot"])
        .expect(0);
    let stat = |f: &str, p: &str| lab.exec("node1", &["stat", "-c", f, p]).trim().to_string();
    // kubespray's owners: kube's /etc/kubernetes, etcd's certificate
    // directory, etcd's group on etcd.env.
    let kube_dir = "/etc/kubernetes";
    let etcd_dir = "/etc/ssl/etcd/ssl";
    let env = "/etc/etcd.env";
    assert_eq!(stat("%U:%G %a", kube_dir), "kube:root 755");
    assert_eq!(stat("%U:%G %a", etcd_dir), "etcd:root 700");
    assert_eq!(stat("%U:%G", env), "root:etcd");
    let kube_uid = stat("%u", kube_dir);
    let etcd_uid = stat("%u", etcd_dir);
    let etcd_gid = stat("%g", env);
    let id = v.key.identity.clone();

    wipe_fresh(&lab);
    let r = restore(v.path(), &lab, &id, &[]).expect(0);
    let l = plan_line(&r.out, kube_dir);
    assert!(l.contains(" 0755 root:root "), "{l}");
    assert!(
        l.contains(&format!(
            "user kube is not on the target: root applied until kubespray's next run sets the owner (--numeric-ids: the recorded uid {kube_uid})"
        )),
        "{l}"
    );
    let l = plan_line(&r.out, etcd_dir);
    assert!(l.contains(" 0700 root:root "), "{l}");
    assert!(
        l.contains(&format!(
            "user etcd is not on the target: root applied until kubespray's next run sets the owner (--numeric-ids: the recorded uid {etcd_uid})"
        )),
        "{l}"
    );
    let l = plan_line(&r.out, env);
    assert!(l.contains(" 0640 root:root "), "{l}");
    assert!(
        l.contains("group etcd is not on the target: root applied"),
        "{l}"
    );
    assert!(r.out.contains("0 errors"), "{}", r.out);
    assert_eq!(stat("%u:%g %a", kube_dir), "0:0 755");
    assert_eq!(stat("%u:%g %a", etcd_dir), "0:0 700");
    assert_eq!(stat("%u:%g %a", env), "0:0 640");

    // Again on a fresh machine, with the recorded ids: the directories are
    // created root's, held while the restore writes below them, then given
    // the recorded ids.
    wipe_fresh(&lab);
    let r = restore(v.path(), &lab, &id, &["--numeric-ids"]).expect(0);
    let l = plan_line(&r.out, etcd_dir);
    assert!(l.contains(&format!(" 0700 {etcd_uid}:root ")), "{l}");
    assert!(
        l.contains(&format!(
            "user etcd is not on the target: the recorded uid {etcd_uid} applied (--numeric-ids)"
        )),
        "{l}"
    );
    let l = plan_line(&r.out, env);
    assert!(l.contains(&format!(" 0640 root:{etcd_gid} ")), "{l}");
    assert!(
        l.contains(&format!(
            "group etcd is not on the target: the recorded gid {etcd_gid} applied (--numeric-ids)"
        )),
        "{l}"
    );
    assert!(r.out.contains("0 errors"), "{}", r.out);
    assert_eq!(stat("%u:%g %a", kube_dir), format!("{kube_uid}:0 755"));
    assert_eq!(stat("%u:%g %a", etcd_dir), format!("{etcd_uid}:0 700"));
    assert_eq!(stat("%u:%g", env), format!("0:{etcd_gid}"));
}
