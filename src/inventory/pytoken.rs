//! Python's string and number literals, token by token, as Python's
//! tokenizer reads them: `'a'`, `"b"`, `r'\n'`, `b'x'`, triple quotes and
//! escapes; `22`, `0x1F`, `0o17`, `0b1`, `1_000`, `1.5e3`. `literal.rs`
//! builds Python values out of these.

/// A Python literal value.
pub enum Lit {
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// The characters of the text being read, and the position in them.
pub struct Cursor {
    pub s: Vec<char>,
    pub i: usize,
}

impl Cursor {
    pub fn new(text: &str) -> Cursor {
        Cursor {
            s: text.chars().collect(),
            i: 0,
        }
    }

    pub fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    pub fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.i + n).copied()
    }

    /// One string literal with its prefix.
    pub fn string(&mut self) -> Option<Lit> {
        let mut prefix = String::new();
        while let Some(c) = self.peek().filter(|c| c.is_alphabetic()) {
            prefix.push(c.to_ascii_lowercase());
            self.i += 1;
        }
        let (raw, bytes) = match prefix.as_str() {
            "" | "u" => (false, false),
            "r" => (true, false),
            "b" => (false, true),
            "br" | "rb" => (true, true),
            _ => return None, // f-strings are not literals
        };
        let q = self.peek()?;
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.i += if triple { 3 } else { 1 };
        let mut body = String::new();
        loop {
            let c = self.peek()?;
            if c == q && (!triple || (self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q))) {
                self.i += if triple { 3 } else { 1 };
                break;
            }
            if c == '\n' && !triple {
                return None;
            }
            self.i += 1;
            if c == '\\' {
                let e = self.peek()?;
                self.i += 1;
                if bytes && !e.is_ascii() {
                    return None;
                }
                if raw {
                    body.push('\\');
                    body.push(e);
                } else {
                    self.escape(e, bytes, &mut body)?;
                }
            } else if bytes && !c.is_ascii() {
                return None; // bytes literals are ASCII
            } else {
                body.push(c);
            }
        }
        if bytes {
            // Escapes in bytes literals stay below 256.
            return Some(Lit::Bytes(body.chars().map(|c| c as u8).collect()));
        }
        Some(Lit::Str(body))
    }

    /// Appends what `\e` stands for. In bytes, characters are kept below 256.
    fn escape(&mut self, e: char, bytes: bool, out: &mut String) -> Option<()> {
        let simple = match e {
            '\n' => return Some(()),
            '\\' | '\'' | '"' => Some(e),
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            return Some(());
        }
        let code = match e {
            '0'..='7' => {
                let mut n = e.to_digit(8)?;
                for _ in 0..2 {
                    match self.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            self.i += 1;
                        }
                        None => break,
                    }
                }
                if bytes {
                    n & 0xff
                } else {
                    n
                }
            }
            'x' => self.hex(2)?,
            'u' if !bytes => self.hex(4)?,
            'U' if !bytes => self.hex(8)?,
            // \N{...} names are not known here; other escapes stay as written.
            'N' if !bytes => return None,
            _ => {
                out.push('\\');
                out.push(e);
                return Some(());
            }
        };
        out.push(char::from_u32(code)?);
        Some(())
    }

    fn hex(&mut self, digits: usize) -> Option<u32> {
        let mut n: u32 = 0;
        for _ in 0..digits {
            let d = self.peek()?.to_digit(16)?;
            n = n.checked_mul(16)?.checked_add(d)?;
            self.i += 1;
        }
        Some(n)
    }

    /// A Python number: decimal, 0x/0o/0b, or float. Complex numbers and
    /// decimal integers with leading zeros are not literals JSON can hold.
    pub fn number(&mut self) -> Option<Lit> {
        let radix = match (self.peek(), self.peek_at(1).map(|c| c.to_ascii_lowercase())) {
            (Some('0'), Some('x')) => 16,
            (Some('0'), Some('o')) => 8,
            (Some('0'), Some('b')) => 2,
            _ => 10,
        };
        let lit = if radix != 10 {
            self.i += 2;
            let digits = self.digits(radix, true)?;
            Lit::Int(i128::from_str_radix(&digits, radix).ok()?)
        } else {
            let int_part = self.digits(10, false).unwrap_or_default();
            let mut is_float = false;
            let mut text = int_part.clone();
            if self.peek() == Some('.') {
                self.i += 1;
                is_float = true;
                text.push('.');
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    text.push_str(&self.digits(10, false)?);
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let mark = self.i;
                self.i += 1;
                let mut exp = String::from("e");
                if let Some(s @ ('+' | '-')) = self.peek() {
                    exp.push(s);
                    self.i += 1;
                }
                match self.digits(10, false) {
                    Some(d) => {
                        exp.push_str(&d);
                        text.push_str(&exp);
                        is_float = true;
                    }
                    None => self.i = mark,
                }
            }
            if is_float {
                Lit::Float(text.parse().ok()?)
            } else {
                // "0", "00" and "0_0" are fine; "07" is a SyntaxError.
                if int_part.len() > 1
                    && int_part.starts_with('0')
                    && int_part.chars().any(|c| c != '0')
                {
                    return None;
                }
                Lit::Int(int_part.parse().ok()?)
            }
        };
        // `1j` (complex) and `1abc` (a SyntaxError) are not literals here.
        if self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        Some(lit)
    }

    /// Digits of `radix` with single underscores between them (after the
    /// radix prefix an underscore may also come first).
    fn digits(&mut self, radix: u32, lead_underscore: bool) -> Option<String> {
        let mut out = String::new();
        let mut need_digit = true;
        if lead_underscore && self.peek() == Some('_') {
            self.i += 1;
        }
        while let Some(c) = self.peek() {
            if c.is_digit(radix) {
                out.push(c);
                need_digit = false;
            } else if c == '_' && !need_digit {
                need_digit = true;
            } else {
                break;
            }
            self.i += 1;
        }
        if need_digit {
            None
        } else {
            Some(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cursor, Lit};

    fn string(text: &str) -> Option<String> {
        match Cursor::new(text).string()? {
            Lit::Str(s) => Some(s),
            Lit::Bytes(b) => Some(format!("b:{}", String::from_utf8_lossy(&b))),
            _ => None,
        }
    }

    fn number(text: &str) -> Option<String> {
        match Cursor::new(text).number()? {
            Lit::Int(i) => Some(i.to_string()),
            Lit::Float(f) => Some(format!("{f:?}")),
            _ => None,
        }
    }

    #[test]
    fn strings_like_python() {
        assert_eq!(string("'a'").as_deref(), Some("a"));
        assert_eq!(string("\"it's\"").as_deref(), Some("it's"));
        assert_eq!(string("'''x'y'''").as_deref(), Some("x'y"));
        assert_eq!(string("r'\\n'").as_deref(), Some("\\n"));
        assert_eq!(
            string("'\\t\\x41\\101\\u00e9\\q'").as_deref(),
            Some("\tAA\u{e9}\\q")
        );
        assert_eq!(string("b'\\xff'").as_deref(), Some("b:\u{fffd}"));
        assert_eq!(string("b'\\u00e9'").as_deref(), Some("b:\\u00e9"));
        for bad in ["'open", "f'x'", "b'\u{e9}'", "'\\x4'", "'\\N{DASH}'"] {
            assert_eq!(string(bad), None, "{bad}");
        }
    }

    #[test]
    fn numbers_like_python() {
        for (text, want) in [
            ("22", "22"),
            ("0x_1f", "31"),
            ("0o17", "15"),
            ("0b101", "5"),
            ("1_000", "1000"),
            ("00", "0"),
            ("1.5e3", "1500.0"),
            (".5", "0.5"),
            ("5.", "5.0"),
            ("1e-2", "0.01"),
            ("07.5", "7.5"),
        ] {
            assert_eq!(number(text).as_deref(), Some(want), "{text}");
        }
        for bad in ["07", "1__0", "1_", "1j", "1abc", "0x"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }
}
