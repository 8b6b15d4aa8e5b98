//! A node's user and group names, from its `/etc/passwd` and `/etc/group`.
//!
//! kubespray's `kube` and `etcd` users and `kube-cert` group get different ids
//! on different machines, so owners are recorded by name and by id, and a
//! restore maps names to the target's ids (root for a name the target lacks:
//! see `restore::plan::decide_owner`).

use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug, Default)]
pub struct Accounts {
    user_names: HashMap<u32, String>,
    group_names: HashMap<u32, String>,
    user_ids: HashMap<String, u32>,
    group_ids: HashMap<String, u32>,
    /// Ids whose only names on the node are not plain account names.
    refused_users: HashSet<u32>,
    refused_groups: HashSet<u32>,
}

/// Whether `name` is a plain account name, one that can be written into the
/// vault's formats and shown on a terminal as it is: at most 32 bytes, not
/// `-` (the manifest's "none") or starting with `+`/`-`, without control or
/// format characters, whitespace, `:` or `/`. A node's hostile or broken
/// account with another name has its files recorded by id only.
pub fn plain_account_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && !name.starts_with(['+', '-'])
        && !name
            .chars()
            .any(|c| crate::term::is_unsafe(c) || c.is_whitespace() || c == ':' || c == '/')
}

/// The `(name, id)` lines of a passwd or group file; `None` as the name
/// where it is not a plain account name.
fn parse(text: &str) -> Vec<(Option<String>, u32)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let _pw = f.next()?;
            let id = f.next()?.parse::<u32>().ok()?;
            Some((plain_account_name(name).then(|| name.to_string()), id))
        })
        .collect()
}

impl Accounts {
    pub fn from_files(passwd: &str, group: &str) -> Accounts {
        let mut a = Accounts::default();
        for (name, id) in parse(passwd) {
            match name {
                Some(name) => {
                    a.user_names.entry(id).or_insert_with(|| name.clone());
                    a.user_ids.entry(name).or_insert(id);
                }
                None => {
                    a.refused_users.insert(id);
                }
            }
        }
        for (name, id) in parse(group) {
            match name {
                Some(name) => {
                    a.group_names.entry(id).or_insert_with(|| name.clone());
                    a.group_ids.entry(name).or_insert(id);
                }
                None => {
                    a.refused_groups.insert(id);
                }
            }
        }
        a
    }

    /// Why a file owned by `uid`:`gid` is recorded by id only, when the
    /// node names that owner or group only with a name that is not plain.
    pub fn id_only_note(&self, uid: u32, gid: u32) -> Option<String> {
        let user = !self.user_names.contains_key(&uid) && self.refused_users.contains(&uid);
        let group = !self.group_names.contains_key(&gid) && self.refused_groups.contains(&gid);
        let what = match (user, group) {
            (true, true) => format!("owner {uid} and group {gid} have"),
            (true, false) => format!("owner {uid} has"),
            (false, true) => format!("group {gid} has"),
            (false, false) => return None,
        };
        Some(format!(
            "{what} a name on the node that is not a plain account name (control characters, whitespace, ':' or '/', or over 32 bytes); recorded by id only"
        ))
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

    #[test]
    fn hostile_account_names_are_not_used_and_their_ids_stay_nameless() {
        let a = Accounts::from_files(
            "root:x:0:0::/:/bin/sh\nev\til:x:1001:1001::/:/bin/sh\nesc\u{1b}[2J:x:1002:1002::/:/bin/sh\n\
             abcdefghijklmnopqrstuvwxyz0123456:x:1003:1::/:/bin/sh\n-:x:1004:1::/:/bin/sh\nkube:x:998:996::/:/bin/sh\n",
            "root:x:0:\nbad\u{202e}grp:x:1001:\nkube-cert:x:996:\n",
        );
        for uid in [1001, 1002, 1003, 1004] {
            assert_eq!(a.user_name(uid), None, "{uid}");
        }
        assert_eq!(a.group_name(1001), None);
        assert_eq!(a.user_name(998), Some("kube"));
        assert_eq!(a.group_name(996), Some("kube-cert"));
        assert!(plain_account_name("kube-cert") && plain_account_name("systemd-timesync"));
        let hostile =
            Accounts::from_files("ev\til:x:4242:4242::/:/bin/false\n", "g\u{1b}p:x:4243:\n");
        assert_eq!(hostile.user_name(4242), None);
        let note = hostile.id_only_note(4242, 4243).unwrap();
        assert!(note.starts_with("owner 4242 and group 4243 have"), "{note}");
        assert_eq!(hostile.id_only_note(0, 0), None);
        for bad in ["a b", "a:b", "a/b", "", "-", "+nis"] {
            assert!(!plain_account_name(bad), "{bad:?}");
        }
    }
}
