//! Turning what an operator types for a point in time (`--at`) into a
//! backup: `latest`, `latest~N`, a date or date-time (the last backup at or
//! before it), or a commit id or its prefix. Only backups are named: the
//! commit is looked up on the branch's first-parent line (the history the
//! vault's signatures authenticate), never through git's revision syntax,
//! so a tag or ref that a git host adds (one named like a short id) cannot
//! stand for a backup.

use git2::{Oid, Repository};
use thiserror::Error;
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

/// Why a revision names no backup. `shown` is what the operator typed,
/// escaped for a terminal.
#[derive(Debug, Error)]
pub enum RevError {
    #[error("the vault has no backups yet ({0})")]
    NoBackups(git2::Error),
    #[error("reading the vault's history: {0}")]
    Git(#[from] git2::Error),
    #[error("revision {0:?} does not name a backup; give latest, latest~N, a date such as 2026-11-20, or a backup's commit id (see `sprayvault log`); tags and refs are not backups")]
    NotABackupName(String),
    #[error("revision {shown:?}: the vault has {count} backups; see `sprayvault log`")]
    TooFarBack { shown: String, count: usize },
    #[error("no backup at or before {0}; run `sprayvault log` to see the backups there are")]
    NoneBefore(String),
    #[error("revision {0:?} is not a backup of this vault; give a commit id that `sprayvault log` shows, latest, latest~N or a date such as 2026-11-20")]
    Unknown(String),
    #[error("revision {shown:?} names {count} backups; give more of its digits")]
    Ambiguous { shown: String, count: usize },
    #[error("backup {backup} is not in the authenticated history of vault {vault}")]
    NotAuthenticated { backup: String, vault: String },
}

/// The backups on `branch`, newest first (its first-parent line).
fn backups(repo: &Repository, branch: &str) -> Result<Vec<Oid>, RevError> {
    let tip = repo.refname_to_id(branch).map_err(RevError::NoBackups)?;
    first_parents(repo, tip)
}

/// The first-parent line from `tip`, newest first.
pub fn first_parents(repo: &Repository, tip: Oid) -> Result<Vec<Oid>, RevError> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    walk.simplify_first_parent()?;
    Ok(walk.collect::<Result<Vec<Oid>, git2::Error>>()?)
}

/// What `rev` asks for, before the history is read.
#[derive(Debug, PartialEq, Eq)]
pub enum Wanted {
    /// `latest` (0) or `latest~N`.
    Back(usize),
    /// The last backup at or before this time (Unix seconds).
    AtOrBefore(i64),
    /// A commit id or a prefix of at least 4 hex digits.
    Id(String),
}

/// Reads what an operator typed for a backup; `None` for anything else (a
/// tag, a ref, `HEAD~2`, `main`).
pub fn wanted(rev: &str) -> Option<Wanted> {
    let rev = rev.trim();
    if rev.is_empty() || rev == "latest" {
        return Some(Wanted::Back(0));
    }
    if let Some(n) = rev.strip_prefix("latest~") {
        return (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .then(|| n.parse().ok().map(Wanted::Back))
            .flatten();
    }
    if let Some(t) = parse_date(rev) {
        return Some(Wanted::AtOrBefore(t));
    }
    (rev.len() >= 4 && rev.len() <= 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Wanted::Id(rev.to_ascii_lowercase()))
}

/// Resolves `rev` to a backup on the vault's branch `branch` (see the
/// module). Errors are plain sentences naming the revision.
pub fn resolve(repo: &Repository, branch: &str, rev: &str) -> Result<Oid, RevError> {
    pick(repo, backups(repo, branch)?, rev)
}

/// Resolves `rev` among the backups on the first-parent line from `tip`
/// (an authenticated newest backup).
pub fn resolve_from(repo: &Repository, tip: Oid, rev: &str) -> Result<Oid, RevError> {
    pick(repo, first_parents(repo, tip)?, rev)
}

fn pick(repo: &Repository, history: Vec<Oid>, rev: &str) -> Result<Oid, RevError> {
    let shown = crate::term::escape(rev.trim()).into_owned();
    let Some(want) = wanted(rev) else {
        return Err(RevError::NotABackupName(shown));
    };
    match want {
        Wanted::Back(n) => history.get(n).copied().ok_or(RevError::TooFarBack {
            shown,
            count: history.len(),
        }),
        Wanted::AtOrBefore(limit) => {
            for oid in history {
                if repo.find_commit(oid)?.time().seconds() <= limit {
                    return Ok(oid);
                }
            }
            Err(RevError::NoneBefore(shown))
        }
        Wanted::Id(prefix) => {
            let found: Vec<Oid> = history
                .into_iter()
                .filter(|o| o.to_string().starts_with(&prefix))
                .collect();
            match found[..] {
                [one] => Ok(one),
                [] => Err(RevError::Unknown(shown)),
                _ => Err(RevError::Ambiguous {
                    shown,
                    count: found.len(),
                }),
            }
        }
    }
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

    /// A repository with backups at times 100 and 200 on `main`; their ids.
    fn two_backups(dir: &std::path::Path) -> (Repository, Oid, Oid) {
        let repo = Repository::init_bare(dir).unwrap();
        let (a, b) = {
            let tree = repo.treebuilder(None).unwrap().write().unwrap();
            let tree = repo.find_tree(tree).unwrap();
            let sig = |t| git2::Signature::new("t", "t@t", &git2::Time::new(t, 0)).unwrap();
            let a = repo
                .commit(
                    Some("refs/heads/main"),
                    &sig(100),
                    &sig(100),
                    "one",
                    &tree,
                    &[],
                )
                .unwrap();
            let parent = repo.find_commit(a).unwrap();
            let b = repo
                .commit(
                    Some("refs/heads/main"),
                    &sig(200),
                    &sig(200),
                    "two",
                    &tree,
                    &[&parent],
                )
                .unwrap();
            (a, b)
        };
        (repo, a, b)
    }

    #[test]
    fn a_tag_named_like_a_short_id_never_stands_for_a_backup() {
        let tmp = tempfile::tempdir().unwrap();
        let (repo, old, new) = two_backups(tmp.path());
        // The git host's tag: named like the newest backup's short id, on
        // the older backup (git's own rev-parse prefers it).
        let short = new.to_string()[..10].to_string();
        repo.tag_lightweight(&short, &repo.find_object(old, None).unwrap(), false)
            .unwrap();
        assert_eq!(repo.revparse_single(&short).unwrap().id(), old);
        assert_eq!(resolve(&repo, "refs/heads/main", &short).unwrap(), new);
        assert_eq!(resolve(&repo, "refs/heads/main", "latest~1").unwrap(), old);
        assert_eq!(resolve(&repo, "refs/heads/main", "latest").unwrap(), new);
        assert_eq!(
            resolve(&repo, "refs/heads/main", "1970-01-01T00:02:30Z").unwrap(),
            old
        );
        // A commit off the branch is no backup, whatever names it.
        let stray = repo
            .commit(
                None,
                &git2::Signature::now("x", "x@x").unwrap(),
                &git2::Signature::now("x", "x@x").unwrap(),
                "stray",
                &repo.find_commit(old).unwrap().tree().unwrap(),
                &[],
            )
            .unwrap();
        repo.tag_lightweight("v1", &repo.find_object(stray, None).unwrap(), false)
            .unwrap();
        assert!(matches!(
            resolve(&repo, "refs/heads/main", &stray.to_string()),
            Err(RevError::Unknown(_))
        ));
        assert!(matches!(
            resolve(&repo, "refs/heads/main", "v1"),
            Err(RevError::NotABackupName(_))
        ));
        let far = resolve(&repo, "refs/heads/main", "latest~2").unwrap_err();
        assert!(far.to_string().contains("the vault has 2 backups"), "{far}");
    }

    #[test]
    fn only_backups_are_named_never_tags_refs_or_git_syntax() {
        assert_eq!(wanted("latest"), Some(Wanted::Back(0)));
        assert_eq!(wanted(""), Some(Wanted::Back(0)));
        assert_eq!(wanted("latest~3"), Some(Wanted::Back(3)));
        assert_eq!(
            wanted("2026-11-20").map(|w| matches!(w, Wanted::AtOrBefore(_))),
            Some(true)
        );
        assert_eq!(wanted("1A2b3c4d5e"), Some(Wanted::Id("1a2b3c4d5e".into())));
        for not in [
            "main",
            "HEAD~1",
            "latest^",
            "latest~",
            "latest~x",
            "v1.0",
            "abc",
            "refs/tags/x",
            "1a2b3c4d5e~1",
            &"a".repeat(41),
        ] {
            assert_eq!(wanted(not), None, "{not}");
        }
    }
}
