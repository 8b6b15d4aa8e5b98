//! The command line's contract: the exit code table in `--help` and in the
//! README are the code's table, and usage errors exit 2.

mod common;

use common::*;

#[test]
fn help_lists_every_exit_code_and_the_readme_agrees() {
    let help = sv_run(&["--help"]).expect(0).out;
    let table: Vec<(u8, String)> = help
        .lines()
        .skip_while(|l| !l.starts_with("Exit codes:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let (code, meaning) = l.trim().split_once("  ").expect("CODE  MEANING");
            (code.parse().expect("a number"), meaning.to_string())
        })
        .collect();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme
        .find("### Exit codes")
        .expect("README has an exit code section")..];
    let rows: Vec<(u8, &str)> = section
        .lines()
        .skip_while(|l| !l.starts_with("| 0 "))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (cells[1].parse().unwrap(), cells[2])
        })
        .collect();
    assert!(table.len() >= 12, "--help's table: {table:?}\n{help}");
    let codes: Vec<u8> = table.iter().map(|(c, _)| *c).collect();
    assert_eq!(
        codes,
        (0..table.len() as u8).collect::<Vec<_>>(),
        "codes not 0..N in order"
    );
    assert_eq!(
        rows.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        codes,
        "the README's exit codes are not --help's"
    );
    for ((code, meaning), (_, row)) in table.iter().zip(&rows) {
        assert!(
            !meaning.is_empty() && !row.is_empty(),
            "exit {code} has no meaning"
        );
    }
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let r = sv_run(&["backup"]).expect(2);
    assert!(r.err.contains("--inventory"), "{}", r.err);
    let r = sv_run(&["nosuchcommand"]).expect(2);
    assert!(r.err.contains("unrecognized subcommand"), "{}", r.err);
    let r = sv_run(&["backup", "-i", "/nonexistent"]).expect(2);
    assert!(
        r.err.contains("--vault DIR") && r.err.contains("SPRAYVAULT_VAULT"),
        "{}",
        r.err
    );
    let r = sv_run(&["verify", "--vault", "/nonexistent", "--full"]).expect(2);
    assert!(r.err.contains("--identity"), "{}", r.err);
    let r = sv_run(&[
        "restore",
        "--vault",
        "/nonexistent",
        "--identity",
        "/x",
        "--",
        "-oProxyCommand=x",
    ])
    .expect(2);
    assert!(r.err.contains("not allowed"), "{}", r.err);
}

#[test]
fn vault_option_goes_before_or_after_the_subcommand_or_in_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let key = age_key(tmp.path(), "k");
    let dir = tmp.path().join("v");
    let d = dir.to_str().unwrap();
    sv_run(&["--vault", d, "init", "--recipient", &key.recipient]).expect(0);
    sv_run(&["log", "--vault", d]).expect(0);
    let out = run(sv().args(["log", "--json"]).env("SPRAYVAULT_VAULT", d));
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["kind"], "init");
    // An existing vault is never overwritten.
    sv_run(&["init", "--vault", d, "--recipient", &key.recipient]).expect(1);
}

#[test]
fn inventory_json_honours_limit() {
    let case = root().join("tests/fixtures/inventory/ini-kubespray/hosts.ini");
    let r = sv_run(&[
        "inventory",
        "-i",
        case.to_str().unwrap(),
        "--json",
        "--limit",
        "etcd:!node3",
    ])
    .expect(0);
    let v: serde_json::Value = serde_json::from_str(&r.out).unwrap();
    let names: Vec<&String> = v["hosts"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["node1", "node2"]);
    sv_run(&[
        "inventory",
        "-i",
        case.to_str().unwrap(),
        "--limit",
        "nosuchhost",
    ])
    .expect(1);
}

#[test]
fn repeated_flags_come_from_the_environment_too() {
    let case = root().join("tests/fixtures/inventory/ini-kubespray/hosts.ini");
    let out = run(sv()
        .args(["inventory", "--json"])
        .env("SPRAYVAULT_INVENTORY", &case));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["hosts"]["node1"].is_object(), "{v}");
    // The flag wins over the variable.
    let out = run(sv()
        .args(["inventory", "-i", case.to_str().unwrap()])
        .env("SPRAYVAULT_INVENTORY", "/nonexistent"));
    assert!(out.status.success());
    let help = sv_run(&["restore", "--help"]).expect(0).out;
    for var in [
        "SPRAYVAULT_INVENTORY",
        "SPRAYVAULT_IDENTITY",
        "SPRAYVAULT_SSH_CONFIG",
    ] {
        assert!(help.contains(var), "restore --help lacks {var}:\n{help}");
    }
}

#[test]
fn durations_take_units_plain_seconds_and_refuse_overflow() {
    let tmp = tempfile::tempdir().unwrap();
    let inv = root().join("tests/fixtures/inventory/ini-kubespray/hosts.ini");
    let inv = inv.to_str().unwrap();
    let missing = tmp.path().join("none");
    let vault = missing.to_str().unwrap();
    // Valid durations get past parsing (to the missing vault: exit 4).
    for d in ["600", "10m", "1h30m", "2w"] {
        let r = sv_run(&["backup", "--vault", vault, "-i", inv, "--lock-wait", d]);
        assert_eq!(r.code, 4, "--lock-wait {d}: {}", r.err);
    }
    for (flag, value, says) in [
        ("--lock-wait", "18446744073709551615w", "too large"),
        ("--connect-timeout", "5y", "unknown unit \"y\""),
        ("--connect-timeout", "1.5d", "like 30s, 5m, 12h, 30d or 2w"),
    ] {
        let r = sv_run(&["backup", "--vault", vault, "-i", inv, flag, value]).expect(2);
        assert!(r.err.contains(says), "{flag} {value}: {}", r.err);
    }
    let r = sv_run(&[
        "certs",
        "--vault",
        vault,
        "--identity",
        "/x",
        "--expiring-within",
        "9999999999999999w",
    ])
    .expect(2);
    assert!(r.err.contains("too large"), "{}", r.err);
}

#[test]
fn verbose_and_quiet_exclude_each_other_and_completions_are_generated() {
    let r = sv_run(&["-v", "-q", "log"]).expect(2);
    assert!(r.err.contains("cannot be used with"), "{}", r.err);
    let bash = sv_run(&["completions", "bash"]).expect(0).out;
    assert!(
        bash.contains("complete -F _sprayvault") && bash.contains("--ssh-config"),
        "{bash}"
    );
    let zsh = sv_run(&["completions", "zsh"]).expect(0).out;
    assert!(zsh.starts_with("#compdef sprayvault"), "{zsh}");
    let fish = sv_run(&["completions", "fish"]).expect(0).out;
    assert!(fish.contains("complete -c sprayvault"), "{fish}");
    sv_run(&["completions", "tcsh"]).expect(2);
    let tmp = tempfile::tempdir().unwrap();
    sv_run(&["man-pages", tmp.path().to_str().unwrap()]).expect(0);
    let page = std::fs::read_to_string(tmp.path().join("sprayvault-backup.1")).unwrap();
    assert!(page.contains("\\-\\-inventory"), "{page}");
    assert!(!tmp.path().join("sprayvault-man-pages.1").exists());
}

/// An identity file that group or others can read is refused, as ssh
/// refuses such keys, naming the file and saying what to do; at 0600 the
/// same file is used.
#[test]
fn an_identity_readable_by_group_or_others_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let key = age_key(tmp.path(), "operator");
    let vault = tmp.path().join("vault");
    let v = vault.to_str().unwrap();
    sv_run(&["init", "--vault", v, "--recipient", &key.recipient]).expect(0);
    let id = key.identity.to_str().unwrap();
    for mode in [0o640, 0o604, 0o660] {
        std::fs::set_permissions(&key.identity, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = sv_run(&["log", "--vault", v, "--identity", id]);
        assert_ne!(r.code, 0, "mode {mode:o} accepted");
        assert!(
            r.err.contains(id) && r.err.contains("chmod 600"),
            "mode {mode:o}: {}",
            r.err
        );
    }
    std::fs::set_permissions(&key.identity, std::fs::Permissions::from_mode(0o600)).unwrap();
    sv_run(&["log", "--vault", v, "--identity", id]).expect(0);
}
