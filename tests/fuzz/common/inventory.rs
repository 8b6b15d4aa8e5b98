//! Shared body of the inventory fuzz targets: parse the input as an
//! inventory file of the given name and, when that works, exercise what the
//! CLI does with it next (JSON listing, host patterns). Nothing may panic;
//! errors are fine.

use std::path::Path;

/// At most this many bytes of the input's last line are used as a pattern.
const MAX_PATTERN: usize = 256;

pub fn run(file_name: &str, data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let Ok(inv) = sprayvault::inventory::from_text(Path::new(file_name), &text) else {
        return;
    };
    let json = inv.to_json();
    // The listing must be serializable, as `sprayvault inventory` prints it.
    assert!(json.to_string().starts_with('{'), "inventory JSON prints as an object");
    let all = inv.select(Some("all"));
    if !inv.hosts.is_empty() {
        let all = all.expect("`all` selects every host of a non-empty inventory");
        assert_eq!(all.len(), inv.hosts.len(), "`all` selects every host");
    }
    // A pattern taken from the input itself: its last line, so the fuzzer
    // steers it along with the host and group names it can match.
    let last = text.lines().last().unwrap_or("").trim();
    let mut end = last.len().min(MAX_PATTERN);
    while !last.is_char_boundary(end) {
        end -= 1;
    }
    let _ = inv.select(Some(&last[..end]));
    // And patterns built from what was parsed: a host, a group, negation
    // and intersection of them.
    let host = inv.hosts.keys().next().cloned();
    let group = inv.groups.keys().last().cloned();
    if let Some(h) = &host {
        let got = inv.select(Some(h)).expect("a host name selects that host");
        assert!(got.iter().any(|x| &x.name == h), "host {h:?} not selected by its name");
    }
    if let (Some(h), Some(g)) = (&host, &group) {
        for p in [format!("{g}:!{h}"), format!("{g},&{h}"), format!("{g}*:{h}")] {
            let _ = inv.select(Some(&p));
        }
    }
}
