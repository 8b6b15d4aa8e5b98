//! kubespray's side of a `--limit` run, for the tests: a directory with its
//! ansible.cfg (jsonfile fact cache, as kubespray's own), and a playbook
//! asserting kubespray's rule on the fact cache, run by real Ansible.

use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// kubespray's rule before a `--limit` run (v2.27 and later,
/// `roles/kubernetes/preinstall/tasks/0040-verify-settings.yml`), written
/// here from the rule: every host *outside* the limit must have cached facts
/// (kubespray looks at `ansible_default_ipv4`); the hosts in the limit are
/// gathered by the run itself.
pub const ASSERT_FACTS: &str = "- hosts: all
  gather_facts: true
  tasks:
    - name: the hosts outside the limit have cached facts, as kubespray asserts for --limit
      assert:
        that: hostvars[item].ansible_default_ipv4 is defined
        msg: \"Kubespray does not support '--limit' without a populated facts cache\"
      loop: \"{{ groups['all'] | difference(ansible_play_hosts_all) }}\"
      run_once: true
";

pub struct Kubespray {
    pub dir: PathBuf,
    pub cache: PathBuf,
}

impl Kubespray {
    /// A kubespray directory with its ansible.cfg (jsonfile fact cache).
    pub fn new(base: &Path, lab: &Lab) -> Kubespray {
        need("ansible");
        need("ansible-playbook");
        let dir = base.join("kubespray");
        let cache = dir.join("facts-cache");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("ansible.cfg"),
            format!(
                "[defaults]\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = {}\nfact_caching_timeout = 86400\ninterpreter_python = auto_silent\n\n[ssh_connection]\nssh_args = -F {}\n",
                cache.display(),
                lab.ssh_config()
            ),
        )
        .unwrap();
        std::fs::write(dir.join("assert-facts.yml"), ASSERT_FACTS).unwrap();
        Kubespray { dir, cache }
    }

    pub fn run(&self, args: &[&str]) -> (bool, String) {
        let out = run(Command::new(args[0])
            .args(&args[1..])
            .current_dir(&self.dir)
            .env("ANSIBLE_CONFIG", self.dir.join("ansible.cfg"))
            .env("ANSIBLE_NOCOLOR", "1"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }
}
