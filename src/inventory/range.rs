//! Host ranges as Ansible expands them (`expand_hostname_range`):
//! `node[01:10]` (zero-padded), `gpu-[a:c]`, `web[1:10:2]` (with a step),
//! several ranges in one name multiplying out. Where Ansible would quietly
//! make no host (`[3:1]`), this is an error.

use super::parse_error::{ParseError, RangeFault};

/// Guards against `[0:99999999]` by mistake.
const MAX_HOSTS: usize = 100_000;
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The host names `pattern` stands for; a name without `[` is itself.
/// The caller places errors (file, line).
pub fn expand(pattern: &str) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    expand_into(pattern, pattern, &mut out)?;
    Ok(out)
}

fn expand_into(whole: &str, pattern: &str, out: &mut Vec<String>) -> Result<(), ParseError> {
    let Some(open) = pattern.find('[') else {
        out.push(pattern.to_string());
        return Ok(());
    };
    let close = match pattern.find(']') {
        Some(c) if c > open => c,
        _ => {
            return Err(ParseError::UnclosedRange {
                pattern: whole.to_string(),
            })
        }
    };
    let (head, body, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let bad = |fault| ParseError::BadRange {
        range: body.to_string(),
        pattern: whole.to_string(),
        fault,
    };
    let bounds: Vec<&str> = body.split(':').collect();
    if !(2..=3).contains(&bounds.len()) {
        return Err(bad(RangeFault::Shape));
    }
    let beg = if bounds[0].is_empty() { "0" } else { bounds[0] };
    let end = bounds[1];
    if end.is_empty() {
        return Err(bad(RangeFault::NoEnd));
    }
    let step = match bounds.get(2) {
        Some(s) => py_int(s).ok_or_else(|| bad(RangeFault::StepNotWhole))?,
        None => 1,
    };
    if step == 0 {
        return Err(bad(RangeFault::ZeroStep));
    }
    // A leading zero asks for zero-padding to the width of `begin`.
    let width = if beg.len() > 1 && beg.starts_with('0') {
        if beg.len() != end.len() {
            return Err(bad(RangeFault::PaddingWidths));
        }
        beg.len()
    } else {
        0
    };
    let items: Vec<String> = match (LETTERS.find(beg), LETTERS.find(end)) {
        (Some(b), Some(e)) => {
            if b > e {
                return Err(bad(RangeFault::Backwards));
            }
            if step < 0 {
                Vec::new()
            } else {
                LETTERS[b..=e]
                    .chars()
                    .step_by(step as usize)
                    .map(|c| zfill(&c.to_string(), width))
                    .collect()
            }
        }
        _ => {
            let (b, e) = match (py_int(beg), py_int(end)) {
                (Some(b), Some(e)) => (b, e),
                _ => return Err(bad(RangeFault::MixedBounds)),
            };
            // Python's range(b, e + 1, step).
            let mut v = Vec::new();
            let mut i = b;
            while (step > 0 && i <= e) || (step < 0 && i > e + 1) {
                if v.len() >= MAX_HOSTS {
                    return Err(bad(RangeFault::TooMany { limit: MAX_HOSTS }));
                }
                v.push(zfill(&i.to_string(), width));
                i += step;
            }
            v
        }
    };
    if items.is_empty() {
        return Err(bad(RangeFault::NoHost));
    }
    for item in items {
        expand_into(whole, &format!("{head}{item}{tail}"), out)?;
        if out.len() > MAX_HOSTS {
            return Err(ParseError::TooManyHosts {
                pattern: whole.to_string(),
                limit: MAX_HOSTS,
            });
        }
    }
    Ok(())
}

/// Python's `int(text)` for the forms that matter: blanks around, a sign,
/// digits with single underscores between them.
fn py_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return None;
    }
    let n: i64 = digits.replace('_', "").parse().ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `str.zfill`: zeros on the left (after a sign) up to `width`.
fn zfill(s: &str, width: usize) -> String {
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let pad = "0".repeat(width - len);
    match s.strip_prefix('-') {
        Some(rest) => format!("-{pad}{rest}"),
        None => format!("{pad}{s}"),
    }
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn ranges_like_ansible() {
        assert_eq!(expand("node1").unwrap(), ["node1"]);
        assert_eq!(
            expand("node[01:03]").unwrap(),
            ["node01", "node02", "node03"]
        );
        assert_eq!(expand("gpu-[a:c]").unwrap(), ["gpu-a", "gpu-b", "gpu-c"]);
        assert_eq!(expand("w[1:7:3]").unwrap(), ["w1", "w4", "w7"]);
        assert_eq!(expand("w[1:10:2]").unwrap(), ["w1", "w3", "w5", "w7", "w9"]);
        assert_eq!(
            expand("r[1:2]-[a:b]").unwrap(),
            ["r1-a", "r1-b", "r2-a", "r2-b"]
        );
        assert_eq!(expand("n[8:10]").unwrap(), ["n8", "n9", "n10"]);
        assert_eq!(expand("n[:2]").unwrap(), ["n0", "n1", "n2"]);
        assert_eq!(expand("x[A:C]").unwrap(), ["xA", "xB", "xC"]);
        assert_eq!(expand("x[y:B]").unwrap(), ["xy", "xz", "xA", "xB"]);
        assert_eq!(expand("n[10:1:-3]").unwrap(), ["n10", "n7", "n4"]);
    }

    #[test]
    fn bad_ranges_are_errors() {
        for bad in [
            "n[1:",
            "n[3:1]",
            "n[1:2:0]",
            "n[a:10]",
            "n[1]",
            "n[1:2:3:4]",
            "n[01:100]",
            "n[:]",
            "n[0:9999999]",
            "n]1:2[",
        ] {
            assert!(expand(bad).is_err(), "{bad}");
        }
        assert_eq!(
            expand("n[1:").unwrap_err().to_string(),
            "unbalanced '[' in host pattern \"n[1:\": close the range with ']'"
        );
        assert_eq!(
            expand("n[1:2:0]").unwrap_err().to_string(),
            "bad host range [1:2:0] in \"n[1:2:0]\": the step must not be 0"
        );
    }
}
