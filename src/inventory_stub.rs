use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InventoryError(String);
#[derive(Clone, Debug)]
pub struct Host { pub name: String, pub address: String, pub port: Option<u16>, pub user: Option<String>, pub become_: bool, pub key_file: Option<PathBuf>, pub groups: Vec<String>, pub vars: BTreeMap<String, serde_json::Value> }
pub struct Inventory { pub hosts: BTreeMap<String, Host> }
pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|e| InventoryError(e.to_string()))?;
    let mut hosts = BTreeMap::new();
    let mut group = String::new();
    for l in text.lines() {
        let l = l.trim();
        if l.starts_with('[') { group = l.trim_matches(['[', ']']).to_string(); continue; }
        if l.is_empty() || group != "all" { continue; }
        let mut it = l.split_whitespace();
        let name = it.next().unwrap().to_string();
        let mut h = Host { name: name.clone(), address: name.clone(), port: None, user: None, become_: false, key_file: None, groups: vec![], vars: BTreeMap::new() };
        for kv in it { if let Some((k, v)) = kv.split_once('=') { match k { "ansible_host" => h.address = v.into(), "ansible_user" => h.user = Some(v.into()), "ansible_port" => h.port = v.parse().ok(), "ansible_become" => h.become_ = v == "true", _ => {} } } }
        hosts.insert(name, h);
    }
    Ok(Inventory { hosts })
}
impl Inventory {
    pub fn select(&self, pattern: Option<&str>) -> Result<Vec<&Host>, InventoryError> {
        Ok(self.hosts.values().filter(|h| pattern.map_or(true, |p| p == "all" || p.split(',').any(|x| x == h.name))).collect())
    }
    pub fn to_json(&self) -> serde_json::Value { serde_json::json!({}) }
}
