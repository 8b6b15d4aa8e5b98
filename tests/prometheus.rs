//! The example alert rules (contrib/prometheus) against Prometheus' own
//! promtool: they parse, their unit tests pass, and they use only metric
//! names the code writes.

mod common;

use common::*;
use std::process::Command;

fn promtool(args: &[&str]) -> String {
    need("promtool");
    ok(Command::new("promtool")
        .current_dir(root().join("contrib/prometheus"))
        .args(args))
}

#[test]
fn alert_rules_pass_promtool_check_and_their_tests() {
    let out = promtool(&["check", "rules", "sprayvault.rules.yml"]);
    assert!(out.contains("SUCCESS: 6 rules found"), "{out}");
    let out = promtool(&["test", "rules", "sprayvault.rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn alert_rules_use_only_metrics_the_code_writes() {
    use sprayvault::metrics::names::*;
    let known = [
        BUILD_INFO,
        EXIT_CODE,
        SUCCESS,
        END,
        DURATION,
        NODES,
        ADDED_BYTES,
        ADDED_OBJECTS,
        ETCD_SNAPSHOT_SUCCESS,
        CERT_EXPIRY,
        ETCD_TAKEN,
        ETCD_SIZE,
        ETCD_REVISION,
    ];
    let rules = std::fs::read_to_string(root().join("contrib/prometheus/sprayvault.rules.yml"))
        .expect("rules file");
    let used: Vec<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("sprayvault_"))
        .collect();
    assert!(used.len() >= 6, "{used:?}");
    for name in used {
        assert!(
            known.contains(&name),
            "the rules use {name}, which sprayvault never writes"
        );
    }
    let readme = manual_text();
    for name in known {
        assert!(
            readme.contains(name),
            "the manual's metrics section lacks {name}"
        );
    }
}
