//! Splitting an INI host line into words exactly as Python's
//! `shlex.split(line, comments=True)` does (POSIX mode), which is what
//! Ansible's INI plugin uses: quotes group words, a backslash escapes the
//! next character (inside double quotes only `"` and `\`), and `#` starts a
//! comment even in the middle of a word.

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Between words.
    Space,
    /// Inside an unquoted word.
    Word,
    /// Inside quotes of this kind.
    Quoted(char),
    /// Just after a backslash; the state to go back to.
    Escape(Escaped),
}

#[derive(Clone, Copy, PartialEq)]
enum Escaped {
    Word,
    DoubleQuoted,
}

/// Why Python's shlex would raise `ValueError`.
#[derive(Debug, PartialEq)]
pub enum Error {
    /// A quote is not closed.
    Quote,
    /// The line ends with a backslash.
    Escape,
}

/// The words of `line`.
pub fn split(line: &str) -> Result<Vec<String>, Error> {
    let mut words = Vec::new();
    // A word is kept even when empty if it had quotes (`''`): closing a
    // quote always leaves the splitter inside a word.
    let mut word = String::new();
    let mut state = State::Space;
    for c in line.chars() {
        match state {
            State::Space | State::Word => {
                if matches!(c, ' ' | '\t' | '\r' | '\n') {
                    if state == State::Word {
                        words.push(std::mem::take(&mut word));
                    }
                    state = State::Space;
                } else if c == '#' {
                    // The rest of the line is a comment.
                    if state == State::Word {
                        words.push(std::mem::take(&mut word));
                    }
                    return Ok(words);
                } else if c == '\'' || c == '"' {
                    state = State::Quoted(c);
                } else if c == '\\' {
                    state = State::Escape(Escaped::Word);
                } else {
                    word.push(c);
                    state = State::Word;
                }
            }
            State::Quoted(q) => {
                if c == q {
                    state = State::Word;
                } else if c == '\\' && q == '"' {
                    state = State::Escape(Escaped::DoubleQuoted);
                } else {
                    word.push(c);
                }
            }
            State::Escape(back) => {
                if back == Escaped::DoubleQuoted {
                    // Inside double quotes a backslash stays unless it
                    // escapes a double quote or another backslash.
                    if c != '"' && c != '\\' {
                        word.push('\\');
                    }
                    word.push(c);
                    state = State::Quoted('"');
                } else {
                    word.push(c);
                    state = State::Word;
                }
            }
        }
    }
    match state {
        State::Quoted(_) => Err(Error::Quote),
        State::Escape(_) => Err(Error::Escape),
        State::Word => {
            words.push(word);
            Ok(words)
        }
        State::Space => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    fn s(line: &str) -> Vec<String> {
        split(line).unwrap()
    }

    #[test]
    fn like_python_shlex() {
        // Each expectation was produced by Python 3.11's shlex.split(x, comments=True).
        assert_eq!(s("a b=\"c d\" e='f g'"), ["a", "b=c d", "e=f g"]);
        assert_eq!(s("x=a#b y=1"), ["x=a"]);
        assert_eq!(s("a\\ b"), ["a b"]);
        assert_eq!(s("q=\"a\\$b\\\"c\\\\d\""), ["q=a\\$b\"c\\d"]);
        assert_eq!(s("\"\""), [""]);
        assert_eq!(s("a \"\" b"), ["a", "", "b"]);
        assert_eq!(s("a=\"x\"y\"z\""), ["a=xyz"]);
        assert_eq!(s("a #c"), ["a"]);
        assert_eq!(s("a\\#b"), ["a#b"]);
        assert_eq!(s("k='it''s'"), ["k=its"]);
        assert_eq!(s("k=\"#not a comment\""), ["k=#not a comment"]);
        assert!(s("   ").is_empty());
    }

    #[test]
    fn errors() {
        assert!(split("a b='c").is_err());
        assert!(split("a \"b").is_err());
        assert!(split("a b\\").is_err());
    }
}
