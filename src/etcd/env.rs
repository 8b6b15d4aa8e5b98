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

    /// Every variable name, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
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

    /// kubespray's `etcd_cert_dir` as this file shows it: the directory of
    /// the member's own certificate (`ETCD_CERT_FILE`), else of the CA,
    /// else kubespray's default `/etc/ssl/etcd/ssl`.
    pub fn cert_dir(&self) -> &str {
        ["ETCD_CERT_FILE", "ETCD_TRUSTED_CA_FILE", "ETCDCTL_CACERT"]
            .iter()
            .filter_map(|k| self.get(k))
            .filter_map(|p| p.rsplit_once('/').map(|(d, _)| d))
            .find(|d| d.starts_with('/') && d.len() > 1)
            .unwrap_or(DEFAULT_CERT_DIR)
    }

    /// The admin client certificate of `node` that etcdctl uses there:
    /// kubespray writes `ETCDCTL_CACERT`, `ETCDCTL_CERT` and `ETCDCTL_KEY`
    /// into etcd.env; older releases did not, and then the paths are
    /// kubespray's names in [`EtcdEnv::cert_dir`].
    pub fn admin(&self, node: &str) -> AdminCert {
        let dir = self.cert_dir();
        AdminCert {
            cacert: self
                .get("ETCDCTL_CACERT")
                .unwrap_or(self.client_ca())
                .to_string(),
            cert: self
                .get("ETCDCTL_CERT")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{dir}/admin-{node}.pem")),
            key: self
                .get("ETCDCTL_KEY")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{dir}/admin-{node}-key.pem")),
        }
    }
}

/// kubespray's default `etcd_cert_dir`.
pub const DEFAULT_CERT_DIR: &str = "/etc/ssl/etcd/ssl";

/// The files etcdctl authenticates with on a member.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AdminCert {
    pub cacert: String,
    pub cert: String,
    pub key: String,
}

/// Why sprayvault cannot handle etcd deployed as `etcd_deployment_type`
/// says, or `None` when it can. kubespray's `host` (the default) and
/// `docker`/`containerd` run etcd as the systemd unit `etcd.service` from
/// `/etc/etcd.env`; with `kubeadm`, etcd is a static pod of kubeadm's with
/// its certificates under `/etc/kubernetes/pki/etcd` and no etcd.env.
pub fn deployment_refusal(node: &str, deployment_type: Option<&str>) -> Option<String> {
    match deployment_type.map(str::trim) {
        None | Some("") | Some("host") | Some("docker") | Some("containerd") => None,
        Some("kubeadm") => Some(format!(
            "host {node} has etcd_deployment_type: kubeadm: etcd runs as kubeadm's static pod \
             (no /etc/etcd.env, certificates in /etc/kubernetes/pki/etcd), which sprayvault does not \
             restore; restore it with kubeadm's own procedure (etcdutl snapshot restore on each \
             control plane node), or deploy etcd with etcd_deployment_type: host"
        )),
        Some(other) => Some(format!(
            "host {node} has etcd_deployment_type: {other}, which kubespray does not know (host, \
             docker, containerd or kubeadm); fix the inventory"
        )),
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
    fn admin_certificate_comes_from_etcdctl_lines_else_the_cert_dir() {
        let env = EtcdEnv::parse(
            "ETCD_CERT_FILE=/etc/etcd/pki/member-n1.pem\nETCD_TRUSTED_CA_FILE=/etc/etcd/pki/ca.pem\n",
        );
        assert_eq!(env.cert_dir(), "/etc/etcd/pki");
        assert_eq!(
            env.admin("n1"),
            AdminCert {
                cacert: "/etc/etcd/pki/ca.pem".into(),
                cert: "/etc/etcd/pki/admin-n1.pem".into(),
                key: "/etc/etcd/pki/admin-n1-key.pem".into(),
            }
        );
        let env = EtcdEnv::parse(
            "ETCD_CERT_FILE=/etc/etcd/pki/member-n1.pem\nETCDCTL_CACERT=/x/ca.pem\n\
             ETCDCTL_CERT=/x/admin.pem\nETCDCTL_KEY=/x/admin-key.pem\n",
        );
        assert_eq!(env.admin("n1").cert, "/x/admin.pem");
        assert_eq!(env.admin("n1").key, "/x/admin-key.pem");
        assert_eq!(env.admin("n1").cacert, "/x/ca.pem");
        let bare = EtcdEnv::parse("ETCD_NAME=etcd1\n");
        assert_eq!(bare.cert_dir(), DEFAULT_CERT_DIR);
        assert_eq!(bare.admin("n2").cert, "/etc/ssl/etcd/ssl/admin-n2.pem");
        assert_eq!(bare.admin("n2").cacert, "/etc/ssl/etcd/ssl/ca.pem");
    }

    #[test]
    fn kubeadm_deployed_etcd_is_refused_by_name() {
        for ok in [
            None,
            Some("host"),
            Some("docker"),
            Some("containerd"),
            Some(""),
        ] {
            assert_eq!(deployment_refusal("node1", ok), None, "{ok:?}");
        }
        let why = deployment_refusal("node1", Some("kubeadm")).unwrap();
        assert!(
            why.contains("host node1 has etcd_deployment_type: kubeadm"),
            "{why}"
        );
        assert!(why.contains("static pod"), "{why}");
        let why = deployment_refusal("node2", Some("podman")).unwrap();
        assert!(why.contains("node2") && why.contains("podman"), "{why}");
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
