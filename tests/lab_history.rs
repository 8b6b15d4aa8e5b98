//! History commands on a lab vault in which certificates were really
//! rotated with openssl between two backups.

mod common;

use common::*;
use serde_json::Value;
use std::process::Command;

const ROTATE: &str = r#"set -e
cd /etc/ssl/etcd/ssl
# node1: a new key pair and a new SAN, as a re-issue with a changed inventory would give.
openssl req -newkey rsa:2048 -nodes -keyout member-node1-key.pem -out /tmp/sv-hist-m.csr -subj /CN=etcd-member-node1 2>/dev/null
printf 'subjectAltName=DNS:node1,DNS:etcd-new.example,IP:127.0.46.11\n' > /tmp/sv-hist-m.ext
openssl x509 -req -in /tmp/sv-hist-m.csr -CA ca.pem -CAkey ca-key.pem -set_serial 0x1234ABCD -days 365 -extfile /tmp/sv-hist-m.ext -out member-node1.pem 2>/dev/null
# A certificate about to expire.
openssl req -newkey rsa:2048 -nodes -keyout soon-key.pem -out /tmp/sv-hist-s.csr -subj /CN=expiring-soon 2>/dev/null
openssl x509 -req -in /tmp/sv-hist-s.csr -CA ca.pem -CAkey ca-key.pem -set_serial 0x0BADC0DE -days 10 -out soon.pem 2>/dev/null
chmod 0600 soon-key.pem
chmod 0640 ca.pem
sed -i 's/^ETCD_HEARTBEAT_INTERVAL=.*/ETCD_HEARTBEAT_INTERVAL=300/' /etc/etcd.env
rm -f /tmp/sv-hist-m.csr /tmp/sv-hist-m.ext /tmp/sv-hist-s.csr
"#;

const REISSUE_SAME_KEY: &str = r#"set -e
cd /etc/ssl/etcd/ssl
openssl req -new -key node-node2-key.pem -out /tmp/sv-hist-n.csr -subj /CN=etcd-node-node2 2>/dev/null
openssl x509 -req -in /tmp/sv-hist-n.csr -CA ca.pem -CAkey ca-key.pem -set_serial 0x77 -days 365 -out node-node2.pem 2>/dev/null
rm -f /tmp/sv-hist-n.csr
"#;

fn json(r: &Sv) -> Value {
    serde_json::from_str(&r.out).unwrap_or_else(|e| panic!("{e}: {}", r.out))
}

#[test]
fn log_show_diff_and_certs_after_a_real_rotation() {
    let lab = Lab::up("history", 46, 3);
    let v = TestVault::new();
    v.backup(&lab, &[]).expect(0);
    lab.exec("node1", &["sh", "-c", ROTATE]);
    lab.exec("node2", &["sh", "-c", REISSUE_SAME_KEY]);
    v.backup(&lab, &[]).expect(0);
    let id = v.key.identity.to_str().unwrap();
    let vault = v.path();

    // log: one line per commit, newest first, with change counts.
    let log = json(&sv_run(&["log", "--vault", vault, "--json"]).expect(0));
    let entries = log.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[2]["kind"], "init");
    // node1: member cert + key changed, ca.pem mode, etcd.env; soon.pem + soon-key.pem added; node2: node cert.
    assert_eq!(entries[0]["added"], 2, "{log}");
    assert_eq!(entries[0]["changed"], 5, "{log}");
    assert_eq!(entries[0]["removed"], 0);
    let node_log = json(
        &sv_run(&[
            "log",
            "--vault",
            vault,
            "--node",
            "node2",
            "--path",
            "/etc/ssl/etcd/ssl",
            "--json",
        ])
        .expect(0),
    );
    assert_eq!(node_log[0]["changed"], 1, "{node_log}");
    let table = sv_run(&["log", "--vault", vault]).expect(0).out;
    assert!(table.lines().nth(1).unwrap().contains("3/3"), "{table}");

    // diff with certificate meaning.
    let first = entries[1]["commit"].as_str().unwrap();
    let d = sv_run(&["diff", first, "latest", "--vault", vault, "--identity", id])
        .expect(0)
        .out;
    let serial = ok(Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(
            lab.node_root("node1")
                .join("etc/ssl/etcd/ssl/member-node1.pem"),
        ));
    assert_eq!(serial.trim(), "serial=1234ABCD");
    assert!(
        d.contains("~ node1 /etc/ssl/etcd/ssl/member-node1.pem  (content changed)"),
        "{d}"
    );
    assert!(d.contains(" -> 1234ABCD"), "{d}");
    assert!(d.contains("SAN added: DNS:etcd-new.example"), "{d}");
    assert!(d.contains("SAN removed: DNS:localhost"), "{d}");
    assert!(d.contains("key pair: changed"), "{d}");
    assert!(
        d.contains("~ node2 /etc/ssl/etcd/ssl/node-node2.pem"),
        "{d}"
    );
    let node2_part = &d[d.find("~ node2 /etc/ssl/etcd/ssl/node-node2.pem").unwrap()..];
    assert!(node2_part.contains("key pair: unchanged"), "{d}");
    assert!(
        d.contains("~ node1 /etc/ssl/etcd/ssl/ca.pem  (mode 0644 -> 0640)"),
        "{d}"
    );
    assert!(d.contains("~ ETCD_HEARTBEAT_INTERVAL: 250 -> 300"), "{d}");
    assert!(d.contains("+ node1 /etc/ssl/etcd/ssl/soon.pem"), "{d}");
    assert!(d.contains("private key: "), "{d}");
    assert!(
        !d.contains("BEGIN") && !d.contains("PRIVATE KEY-----"),
        "diff shows key material:\n{d}"
    );
    let dj = json(
        &sv_run(&[
            "diff",
            first,
            "latest",
            "--vault",
            vault,
            "--identity",
            id,
            "--node",
            "node1",
            "--json",
        ])
        .expect(0),
    );
    assert!(dj["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["node"] == "node1"));
    // Without an identity, the changes are still listed.
    let plain = sv_run(&["diff", "latest~1", "latest", "--vault", vault]).expect(0);
    assert!(
        plain.out.contains("member-node1.pem  (content changed)")
            && plain.err.contains("--identity")
    );

    // show: files with owners, and certificates with subject and expiry.
    let s = sv_run(&[
        "show",
        "--vault",
        vault,
        "--node",
        "node1",
        "--identity",
        id,
    ])
    .expect(0)
    .out;
    let line = s
        .lines()
        .find(|l| l.contains("/etc/ssl/etcd/ssl/member-node1.pem"))
        .unwrap();
    assert!(
        line.contains("root:root") && line.contains("CN=etcd-member-node1, expires 20"),
        "{line}"
    );
    let sj = json(&sv_run(&["show", first, "--vault", vault, "--json"]).expect(0));
    assert!(sj["files"].as_array().unwrap().len() > 60);

    // certs: sorted by expiry, the 10-day certificate first, exit 8 inside the window.
    let c = sv_run(&[
        "certs",
        "--vault",
        vault,
        "--identity",
        id,
        "--expiring-within",
        "30d",
        "--json",
    ])
    .expect(8);
    let cj = json(&c);
    let certs = cj["certificates"].as_array().unwrap();
    assert_eq!(certs[0]["subject"], "CN=expiring-soon");
    assert_eq!(certs[0]["serial"], "0BADC0DE");
    assert_eq!(cj["expiring"], 1);
    let times: Vec<i64> = certs
        .iter()
        .map(|c| c["not_after_unix"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    sv_run(&[
        "certs",
        "latest~1",
        "--vault",
        vault,
        "--identity",
        id,
        "--expiring-within",
        "30d",
    ])
    .expect(0);
    let table = sv_run(&["certs", "--vault", vault, "--identity", id])
        .expect(0)
        .out;
    assert!(
        table.contains("1234ABCD") && table.contains("CN=etcd-member-node1"),
        "{table}"
    );

    // A wrong identity cannot decrypt.
    let other = age_key(v.tmp.path(), "other");
    sv_run(&[
        "certs",
        "--vault",
        vault,
        "--identity",
        other.identity.to_str().unwrap(),
    ])
    .expect(6);
}
