//! vault-layout/README.md is a specification the code must keep: its fenced
//! examples are parsed by the code's own readers, and recover.sh is checked
//! against a vault built by hand from the spec with git plumbing and age.

mod common;

use common::*;
use sprayvault::vault::config::VaultConfig;
use sprayvault::vault::manifest::Manifest;
use sprayvault::vault::message::RunRecord;
use std::process::Command;

/// The fenced blocks of the spec whose info string is exactly `info`.
fn blocks(info: &str) -> Vec<String> {
    let spec = std::fs::read_to_string(root().join("vault-layout/README.md")).unwrap();
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in spec.lines() {
        match &mut cur {
            None if line.trim_end() == format!("```{info}") => cur = Some(String::new()),
            Some(body) if line.trim_end() == "```" => {
                out.push(std::mem::take(body));
                cur = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn manifest_examples_parse_and_serialize_identically() {
    let examples = blocks("manifest");
    assert!(!examples.is_empty(), "the spec has no manifest example");
    for text in examples {
        let m = Manifest::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("spec manifest example rejected: {e}\n{text}"));
        assert!(m.entries.len() >= 8);
        assert_eq!(m.to_text(), text, "the code writes the example differently");
    }
}

#[test]
fn config_example_parses_and_serializes_identically() {
    let examples = blocks("json sprayvault.json");
    assert!(!examples.is_empty());
    for text in examples {
        let c = VaultConfig::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("spec sprayvault.json rejected: {e}"));
        assert_eq!(c.to_json(), text);
    }
}

#[test]
fn commit_message_examples_round_trip() {
    let examples = blocks("commit-message");
    assert!(examples.len() >= 2);
    for text in examples {
        let r = RunRecord::parse(&text);
        assert!(!r.kind.is_empty(), "no Sprayvault-Kind in\n{text}");
        assert_eq!(
            r.to_message(),
            text,
            "the code writes the example differently"
        );
    }
}

#[test]
fn recover_sh_passes_its_checks_on_a_hand_made_vault_in_sh_and_dash() {
    for t in ["git", "age", "age-keygen", "dash"] {
        need(t);
    }
    for shell in ["sh", "dash"] {
        let out = ok(Command::new("sh")
            .arg(root().join("vault-layout/examples/test-recover.sh"))
            .arg(shell));
        assert!(out.trim_end().ends_with("ok"), "{out}");
    }
}

#[test]
fn facts_index_example_parses_and_serializes_identically() {
    let examples = blocks("facts-index");
    assert!(!examples.is_empty());
    for text in examples {
        let i = sprayvault::vault::facts_index::FactsIndex::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(i.entries.len(), 2);
        assert_eq!(i.to_text(), text);
    }
}

#[test]
fn etcd_snapshot_example_parses_and_serializes_identically() {
    let examples = blocks("etcd-snapshot");
    assert!(!examples.is_empty());
    for text in examples {
        let i = sprayvault::etcd::index::SnapshotIndex::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        // Versions 1 and 2 list two chunks; version 3 names its page map.
        assert_eq!(i.chunks.len() + usize::from(i.paged()) * 2, 2, "{text}");
        assert_eq!(i.to_text(), text);
    }
}

#[test]
fn etcd_page_map_example_parses_and_reassembles_the_index_example_size() {
    let maps = blocks("etcd-pages");
    assert_eq!(maps.len(), 1);
    let v3 = blocks("etcd-snapshot")
        .into_iter()
        .map(|t| sprayvault::etcd::index::SnapshotIndex::parse(t.as_bytes()).unwrap())
        .find(|i| i.paged())
        .expect("a version 3 example");
    let map = sprayvault::etcd::pages::PageMap::parse(maps[0].as_bytes(), v3.size)
        .unwrap_or_else(|e| panic!("{e}\n{}", maps[0]));
    assert_eq!(map.size(), 528_416);
    assert_eq!(map.to_text(), maps[0]);
}

#[test]
fn pin_file_example_parses_and_serializes_identically() {
    let examples = blocks("pins");
    assert!(!examples.is_empty());
    for text in examples {
        let pins = sprayvault::vault::pins::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(pins.len(), 1);
        assert!(
            pins[0].mac_key.is_some() && pins[0].newest.is_some(),
            "{pins:?}"
        );
        assert_eq!(sprayvault::vault::pins::render(&pins), text);
    }
}

#[test]
fn kubespray_record_example_parses_and_serializes_identically() {
    let examples = blocks("kubespray");
    assert!(!examples.is_empty());
    for text in examples {
        let r = sprayvault::vault::control::KubesprayRecord::parse(text.as_bytes())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(r.describe.as_deref(), Some("v2.24.0"));
        assert_eq!(r.to_text(), text);
    }
}

#[test]
fn the_hand_made_control_host_is_read_and_verified_by_sprayvault() {
    for t in ["git", "age", "age-keygen", "openssl"] {
        need(t);
    }
    let tmp = tempfile::tempdir().unwrap();
    let s = tmp.path().join("sample");
    ok(Command::new("sh")
        .arg(root().join("vault-layout/examples/make-sample-vault.sh"))
        .arg(&s));
    let vault = s.join("vault");
    let v = vault.to_str().unwrap();
    let show = sv_run(&["control", "show", "--vault", v]).expect(0);
    assert!(
        show.out
            .contains("version v2.24.0 (commit 0123456789, unmodified)")
            && show.out.contains(
                "d 0700  root:root  0     2025-11-18T08:36:42Z  /inventory/mycluster/credentials"
            ),
        "{}",
        show.out
    );
    let key = s.join("key.txt");
    let verified = sv_run(&[
        "verify",
        "--vault",
        v,
        "--full",
        "--identity",
        key.to_str().unwrap(),
    ])
    .expect(0);
    assert!(verified.out.contains(": 0 problems"), "{}", verified.out);
    // The expected tree has a 0500 directory.
    ok(Command::new("chmod").arg("-R").arg("u+w").arg(&s));
}
