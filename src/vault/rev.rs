//! Turning what an operator types for a point in time (`--at`) into a commit:
//! a commit id, a tag, `latest`, `latest~N`, any git revision, or a date or
//! date-time meaning the last backup at or before it.

use git2::{Oid, Repository};
use time::{
    format_description::well_known::Rfc3339, macros::format_description, Date, OffsetDateTime,
    PrimitiveDateTime,
};

/// Parses `2026-11-20`, `2026-11-20T02:00`, `2026-11-20T02:00:00`, or RFC 3339,
/// to the last second it covers (UTC).
pub fn parse_date(text: &str) -> Option<i64> {
    if let Ok(d) = Date::parse(text, format_description!("[year]-[month]-[day]")) {
        return Some(d.with_hms(23, 59, 59).ok()?.assume_utc().unix_timestamp());
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    let t = text.trim_end_matches('Z');
    for fmt in [
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    ] {
        if let Ok(p) = PrimitiveDateTime::parse(t, fmt) {
            return Some(p.assume_utc().unix_timestamp());
        }
    }
    for fmt in [
        format_description!("[year]-[month]-[day]T[hour]:[minute]"),
        format_description!("[year]-[month]-[day] [hour]:[minute]"),
    ] {
        if let Ok(p) = PrimitiveDateTime::parse(t, fmt) {
            return Some(p.assume_utc().unix_timestamp() + 59);
        }
    }
    None
}

/// Resolves `rev` against the vault's branch `branch`. Errors are plain
/// sentences naming the revision.
pub fn resolve(repo: &Repository, branch: &str, rev: &str) -> Result<Oid, String> {
    let rev = rev.trim();
    let spec = if rev == "latest" || rev.is_empty() {
        branch.to_string()
    } else if let Some(rest) = rev.strip_prefix("latest") {
        if rest.starts_with('~') || rest.starts_with('^') {
            format!("{branch}{rest}")
        } else {
            rev.to_string()
        }
    } else {
        rev.to_string()
    };
    if let Some(limit) = parse_date(rev) {
        let mut walk = repo.revwalk().map_err(|e| e.to_string())?;
        walk.push_ref(branch)
            .map_err(|e| format!("the vault has no backups yet ({e})"))?;
        walk.simplify_first_parent().map_err(|e| e.to_string())?;
        for oid in walk {
            let oid = oid.map_err(|e| e.to_string())?;
            let c = repo.find_commit(oid).map_err(|e| e.to_string())?;
            if c.time().seconds() <= limit {
                return Ok(oid);
            }
        }
        return Err(format!(
            "no backup at or before {rev}; run `sprayvault log` to see the backups there are"
        ));
    }
    let obj = repo
        .revparse_single(&spec)
        .map_err(|_| format!("revision {rev:?} not found; give a commit id, a tag, latest, latest~N or a date such as 2026-11-20 (see `sprayvault log`)"))?;
    let commit = obj
        .peel_to_commit()
        .map_err(|_| format!("revision {rev:?} is not a backup commit"))?;
    Ok(commit.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(86399));
        assert_eq!(parse_date("1970-01-01T00:01"), Some(119));
        assert_eq!(parse_date("1970-01-01T00:00:10Z"), Some(10));
        assert_eq!(parse_date("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_date("latest"), None);
        assert_eq!(parse_date("abc123"), None);
    }
}
