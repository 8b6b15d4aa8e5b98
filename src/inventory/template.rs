//! The Jinja templates in connection variables that can be resolved without
//! running Ansible: `{{ inventory_hostname }}` and
//! `{{ inventory_hostname_short }}`, which are the host's own name (and its
//! part before the first `.`). Ansible templates every connection variable
//! before it connects, so `ansible_ssh_private_key_file:
//! .vagrant/machines/{{ inventory_hostname }}/virtualbox/private_key` (the
//! usual Vagrant inventory) is a different key for each host.
//!
//! Anything else Jinja would evaluate (other variables, filters, `{% %}`
//! blocks, `{# #}` comments) is refused by the caller: resolving it would
//! mean running Ansible's templating, lookups included.

/// `text` with the host-name templates replaced; `None` when it holds any
/// other template (then it is refused as a template).
pub fn substitute(text: &str, host: &str) -> Option<String> {
    if text.contains("{%") || text.contains("{#") {
        return None;
    }
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        let value = match after[..end].trim_matches([' ', '\t']) {
            "inventory_hostname" => host,
            "inventory_hostname_short" => host.split('.').next().unwrap_or(host),
            _ => return None,
        };
        out.push_str(value);
        rest = &after[end + 2..];
    }
    // A lone `}}` is text for Jinja, but `{{` without its end is not.
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::substitute;

    #[test]
    fn host_names_are_substituted_and_nothing_else() {
        let s = |t: &str| substitute(t, "node1.example.com");
        assert_eq!(
            s(".vagrant/machines/{{ inventory_hostname }}/virtualbox/private_key").as_deref(),
            Some(".vagrant/machines/node1.example.com/virtualbox/private_key")
        );
        assert_eq!(
            s("~/.ssh/{{inventory_hostname_short}}.pem").as_deref(),
            Some("~/.ssh/node1.pem")
        );
        assert_eq!(
            s("{{ inventory_hostname }}-{{ inventory_hostname }}").as_deref(),
            Some("node1.example.com-node1.example.com")
        );
        assert_eq!(s("/plain/path").as_deref(), Some("/plain/path"));
        for refused in [
            "{{ ip }}",
            "{{ inventory_hostname | upper }}",
            "{{ lookup('env', 'HOME') }}/k",
            "{{ inventory_hostname }",
            "{% if x %}a{% endif %}",
            "{# c #}{{ inventory_hostname }}",
            "{{- inventory_hostname }}",
            "{{ hostvars['x'].inventory_hostname }}",
        ] {
            assert_eq!(s(refused), None, "{refused}");
        }
    }
}
