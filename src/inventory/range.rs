//! Host ranges as Ansible expands them: `node[01:10]`, `gpu-[a:c]`,
//! `web[1:10:2]`; several ranges in one name multiply out.

/// Expands every `[start:end(:stride)]` in `pattern`. Names without brackets
/// come back unchanged. Errors are sentences for the caller to place.
pub fn expand(pattern: &str) -> Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let close = pattern[open..]
        .find(']')
        .map(|i| open + i)
        .ok_or_else(|| format!("unbalanced '[' in host pattern {pattern:?}"))?;
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let parts: Vec<&str> = body.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(format!(
            "host range [{body}] in {pattern:?} must be [start:end] or [start:end:stride]"
        ));
    }
    let (beg, end) = (parts[0], parts[1]);
    let stride: usize = match parts.get(2) {
        Some(s) => s
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| format!("bad stride {s:?} in {pattern:?}"))?,
        None => 1,
    };
    if end.is_empty() {
        return Err(format!("host range [{body}] in {pattern:?} has no end"));
    }
    let mut items = Vec::new();
    if end.chars().all(|c| c.is_ascii_digit())
        && (beg.is_empty() || beg.chars().all(|c| c.is_ascii_digit()))
    {
        let b: u64 = if beg.is_empty() {
            0
        } else {
            beg.parse()
                .map_err(|_| format!("bad range start in {pattern:?}"))?
        };
        let e: u64 = end
            .parse()
            .map_err(|_| format!("bad range end in {pattern:?}"))?;
        if b > e {
            return Err(format!(
                "host range [{body}] in {pattern:?} starts after it ends"
            ));
        }
        let width = if beg.len() > 1 && beg.starts_with('0') {
            beg.len()
        } else {
            0
        };
        let mut i = b;
        while i <= e {
            items.push(format!("{i:0width$}"));
            i += stride as u64;
        }
    } else if beg.len() == 1
        && end.len() == 1
        && beg.chars().all(|c| c.is_ascii_alphabetic())
        && end.chars().all(|c| c.is_ascii_alphabetic())
    {
        let (b, e) = (beg.as_bytes()[0], end.as_bytes()[0]);
        if b > e {
            return Err(format!(
                "host range [{body}] in {pattern:?} starts after it ends"
            ));
        }
        items.extend((b..=e).step_by(stride).map(|c| (c as char).to_string()));
    } else {
        return Err(format!(
            "host range [{body}] in {pattern:?} must be numbers or single letters"
        ));
    }
    let mut out = Vec::new();
    for rest in expand(tail)? {
        for i in &items {
            out.push(format!("{head}{i}{rest}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges() {
        assert_eq!(expand("node1").unwrap(), vec!["node1"]);
        assert_eq!(
            expand("node[01:03]").unwrap(),
            vec!["node01", "node02", "node03"]
        );
        assert_eq!(
            expand("gpu-[a:c]").unwrap(),
            vec!["gpu-a", "gpu-b", "gpu-c"]
        );
        assert_eq!(expand("w[1:7:3]").unwrap(), vec!["w1", "w4", "w7"]);
        assert_eq!(
            expand("r[1:2]-[a:b]").unwrap(),
            vec!["r1-a", "r2-a", "r1-b", "r2-b"]
        );
        assert_eq!(expand("n[8:10]").unwrap(), vec!["n8", "n9", "n10"]);
        for bad in ["n[1:", "n[3:1]", "n[1:2:0]", "n[a:10]", "n[1]"] {
            assert!(expand(bad).is_err(), "{bad}");
        }
    }
}
