//! Strings that came from a node or from the git host, made inert for a
//! terminal: control characters (ESC among them) and the format characters
//! that reorder or hide text are shown as escapes instead of being sent raw.

use std::borrow::Cow;

/// Unicode format characters that change how text around them looks
/// (bidirectional overrides and isolates, zero-width characters, the BOM,
/// the soft hyphen).
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// Whether `c` must not reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// `s` with every unsafe character written as an escape (`\t`, `\n`,
/// `\x1b`, `\u{202e}`); `s` itself when it has none.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x80 && is_unsafe(c) => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `s` with every line's unsafe characters escaped, the newlines kept
/// (messages of several lines).
pub fn escape_lines(s: &str) -> String {
    s.split('\n')
        .map(|l| escape(l).into_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_and_format_characters_are_made_visible() {
        assert_eq!(escape("node1"), "node1");
        assert!(matches!(escape("plain /etc/kubernetes"), Cow::Borrowed(_)));
        assert_eq!(escape("evil\u{1b}[2Jname"), "evil\\x1b[2Jname");
        assert_eq!(escape("a\tb\nc\u{7f}"), "a\\tb\\nc\\x7f");
        assert_eq!(escape("x\u{202e}y\u{200b}"), "x\\u{202e}y\\u{200b}");
        assert_eq!(escape("\u{9b}31m"), "\\u{9b}31m");
        assert_eq!(escape("příbor"), "příbor");
        assert_eq!(escape_lines("one\u{1b}\ntwo"), "one\\x1b\ntwo");
    }
}
