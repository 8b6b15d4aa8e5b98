//! kubespray's `/etc/etcd.env`: the `KEY=value` environment file that
//! etcd's systemd unit reads (`EnvironmentFile=/etc/etcd.env`).

use std::collections::BTreeMap;

/// The variables of one `etcd.env`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtcdEnv {
    vars: BTreeMap<String, String>,
}

impl EtcdEnv {
    /// Reads `KEY=value` lines as systemd does for an environment file:
    /// comments and blank lines are skipped, surrounding quotes removed.
    pub fn parse(text: &str) -> EtcdEnv {
        let mut vars = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let v = v.trim();
                let v = v
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                    .unwrap_or(v);
                vars.insert(k.trim().to_string(), v.to_string());
            }
        }
        EtcdEnv { vars }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The first of a comma-separated list of URLs.
    pub fn first_url(&self, key: &str) -> Option<&str> {
        self.get(key)
            .and_then(|v| v.split(',').map(str::trim).find(|u| !u.is_empty()))
    }

    /// `ETCD_DATA_DIR`, or etcd's kubespray default.
    pub fn data_dir(&self) -> &str {
        self.get("ETCD_DATA_DIR").unwrap_or("/var/lib/etcd")
    }

    /// `ETCD_TRUSTED_CA_FILE`, or kubespray's default.
    pub fn client_ca(&self) -> &str {
        self.get("ETCD_TRUSTED_CA_FILE")
            .unwrap_or("/etc/ssl/etcd/ssl/ca.pem")
    }
}

/// `name=url,name=url` (`ETCD_INITIAL_CLUSTER`) as sorted pairs; `None` if
/// an item has no `=`.
pub fn parse_cluster(text: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, url) = item.split_once('=')?;
        out.push((name.trim().to_string(), url.trim().to_string()));
    }
    out.sort();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kubespray_env() {
        let env = EtcdEnv::parse(
            "# Environment file for etcd v3.4.23\nETCD_DATA_DIR=/var/lib/etcd\n\
             ETCD_NAME=etcd1\nETCD_ADVERTISE_CLIENT_URLS=https://10.0.0.1:2379,https://127.0.0.1:2379\n\
             ETCD_INITIAL_CLUSTER_TOKEN=\"k8s_etcd\"\nETCD_QUOTA_BACKEND_BYTES=\n",
        );
        assert_eq!(env.get("ETCD_NAME"), Some("etcd1"));
        assert_eq!(
            env.first_url("ETCD_ADVERTISE_CLIENT_URLS"),
            Some("https://10.0.0.1:2379")
        );
        assert_eq!(env.get("ETCD_INITIAL_CLUSTER_TOKEN"), Some("k8s_etcd"));
        assert_eq!(env.get("ETCD_QUOTA_BACKEND_BYTES"), None);
        assert_eq!(env.data_dir(), "/var/lib/etcd");
        assert_eq!(env.client_ca(), "/etc/ssl/etcd/ssl/ca.pem");
    }

    #[test]
    fn cluster_lists_are_compared_sorted() {
        assert_eq!(
            parse_cluster("etcd2=https://b:2380, etcd1=https://a:2380"),
            parse_cluster("etcd1=https://a:2380,etcd2=https://b:2380")
        );
        assert_eq!(parse_cluster("etcd1"), None);
    }
}
