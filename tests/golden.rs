//! Golden files: the help of every command and the main error messages, as
//! the binary prints them, with volatile values (temporary paths, times,
//! ids) masked, so that a change of output shows up as a diff in review.
//! `SPRAYVAULT_UPDATE_GOLDEN=1 cargo test --test golden` rewrites them.

mod common;

use common::golden::{compare as check, finish, mask};
use common::*;

#[test]
fn help_texts_match_their_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let top = sv_run(&["--help"]).expect(0).out;
    let mut failures = vec![];
    check(
        "help/sprayvault.txt",
        &mask(&top, Some(tmp.path())),
        &mut failures,
    );
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 20, "{commands:?}");
    for c in &commands {
        let help = sv_run(&[c, "--help"]).expect(0).out;
        check(
            &format!("help/{c}.txt"),
            &mask(&help, Some(tmp.path())),
            &mut failures,
        );
        // Subcommands (etcd ls, facts restore, ...).
        let subs: Vec<String> = help
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.is_empty())
            .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .filter(|s| s != "help")
            .collect();
        for s in subs {
            let h = sv_run(&[c, &s, "--help"]).expect(0).out;
            check(
                &format!("help/{c}-{s}.txt"),
                &mask(&h, Some(tmp.path())),
                &mut failures,
            );
        }
    }
    finish(failures);
}

#[test]
fn main_error_messages_match_their_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let key = age_key(t, "operator");
    let vault = t.join("vault");
    let v = vault.to_str().unwrap();
    let missing = t.join("missing");
    let m = missing.to_str().unwrap();
    sv_run(&["init", "--vault", v, "--recipient", &key.recipient]).expect(0);
    let inv = t.join("inventory.ini");
    std::fs::write(&inv, "[all]\nnode1 ansible_host=127.0.0.1\n").unwrap();
    let bad_inv = t.join("bad.ini");
    std::fs::write(&bad_inv, "[all]\nnode1 ansible_host='127.0.0.1\n").unwrap();
    let (i, bi, id) = (
        inv.to_str().unwrap(),
        bad_inv.to_str().unwrap(),
        key.identity.to_str().unwrap(),
    );
    let pins = t.join("pins");
    let own = sv_run(&["trust", "--vault", v, "--backup-host", "--json"]).expect(0);
    let signer = serde_json::from_str::<serde_json::Value>(&own.out).unwrap()["signer"]
        .as_str()
        .unwrap()
        .to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("no-vault", vec!["log", "--vault", m]),
        (
            "init-twice",
            vec!["init", "--vault", v, "--recipient", &key.recipient],
        ),
        (
            "bad-recipient",
            vec!["init", "--vault", m, "--recipient", "age1nope"],
        ),
        ("bad-inventory", vec!["inventory", "-i", bi]),
        (
            "unknown-node",
            vec!["show", "--node", "node9", "--vault", v],
        ),
        ("unknown-revision", vec!["show", "nosuchrev", "--vault", v]),
        (
            "restore-unpinned-vault",
            vec!["restore", "node1", "--vault", v, "-i", i, "--identity", id],
        ),
        (
            "restore-empty-vault",
            vec![
                "restore",
                "node1",
                "--vault",
                v,
                "-i",
                i,
                "--identity",
                id,
                "--expect-signer",
                &signer,
            ],
        ),
        (
            "bad-duration",
            vec!["backup", "--vault", v, "-i", i, "--connect-timeout", "5y"],
        ),
    ];
    let mut failures = vec![];
    for (name, args) in cases {
        let out = run(sv().env("SPRAYVAULT_PINS", &pins).args(&args));
        let r = Sv {
            out: String::from_utf8_lossy(&out.stdout).to_string(),
            err: String::from_utf8_lossy(&out.stderr).to_string(),
            code: out.status.code().unwrap_or(-1),
        };
        let text = format!("exit {}\n{}", r.code, mask(&r.err, Some(t)));
        check(&format!("errors/{name}.txt"), &text, &mut failures);
    }
    finish(failures);
}
