//! A node's user and group names, from its `/etc/passwd` and `/etc/group`.
//!
//! kubespray's `kube` and `etcd` users and `kube-cert` group get different ids
//! on different machines, so owners are recorded by name and by id, and a
//! restore maps names to the target's ids (root for a name the target lacks:
//! see `restore::plan::decide_owner`).

use std::collections::HashMap;

#[derive(Clone, Debug, Default)]
pub struct Accounts {
    user_names: HashMap<u32, String>,
    group_names: HashMap<u32, String>,
    user_ids: HashMap<String, u32>,
    group_ids: HashMap<String, u32>,
}

fn parse(text: &str) -> Vec<(String, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let id = f.next()?.parse::<u32>().ok()?;
            (!name.is_empty() && !name.starts_with(['+', '-'])).then(|| (name.to_string(), id))
        })
        .collect()
}

impl Accounts {
    pub fn from_files(passwd: &str, group: &str) -> Accounts {
        let mut a = Accounts::default();
        for (name, id) in parse(passwd) {
            a.user_names.entry(id).or_insert_with(|| name.clone());
            a.user_ids.entry(name).or_insert(id);
        }
        for (name, id) in parse(group) {
            a.group_names.entry(id).or_insert_with(|| name.clone());
            a.group_ids.entry(name).or_insert(id);
        }
        a
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.user_names.get(&uid).map(String::as_str)
    }
    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.group_names.get(&gid).map(String::as_str)
    }
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.user_ids.get(name).copied()
    }
    pub fn gid(&self, name: &str) -> Option<u32> {
        self.group_ids.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group() {
        let a = Accounts::from_files(
            "root:x:0:0:root:/root:/bin/bash\n# comment\nkube:x:998:996::/home/kube:/sbin/nologin\nbroken\n",
            "root:x:0:\nkube-cert:x:996:kube\n",
        );
        assert_eq!(a.user_name(998), Some("kube"));
        assert_eq!(a.uid("kube"), Some(998));
        assert_eq!(a.group_name(996), Some("kube-cert"));
        assert_eq!(a.gid("kube-cert"), Some(996));
        assert_eq!(a.user_name(5), None);
    }
}
