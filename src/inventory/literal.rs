//! Values of INI inventory variables as Ansible reads them: Python's
//! `ast.literal_eval` of the text (numbers, quoted strings, True/False/None,
//! lists, tuples and dicts), or the text itself when that fails. So `22` is a
//! number, `"'22'"` and `yes` are strings, `[1, 2]` is a list.
//!
//! Literals that JSON cannot hold (complex numbers, sets, bytes inside
//! containers, `...`) make ansible-inventory itself fail; here they stay text.

use serde_json::{Map, Number, Value};

/// The value of `text` as Ansible's INI plugin gives it.
pub fn value(text: &str) -> Value {
    let mut p = Parser {
        s: text.trim_start_matches([' ', '\t']).chars().collect(),
        i: 0,
    };
    match p.expression_list() {
        Some(lit) if p.at_end() => to_json(lit, true).unwrap_or_else(|| text.into()),
        _ => Value::String(text.to_string()),
    }
}

enum Lit {
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Bool(bool),
    None,
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

fn to_json(lit: Lit, top: bool) -> Option<Value> {
    Some(match lit {
        Lit::Int(i) => match (i64::try_from(i), u64::try_from(i)) {
            (Ok(n), _) => Value::from(n),
            (_, Ok(n)) => Value::from(n),
            _ => Value::Number(Number::from_f64(i as f64)?),
        },
        Lit::Float(f) => Value::Number(Number::from_f64(f)?),
        Lit::Str(s) => Value::String(s),
        // Ansible turns a bytes value into text, but not one inside a list.
        Lit::Bytes(b) if top => Value::String(String::from_utf8_lossy(&b).into_owned()),
        Lit::Bytes(_) => return None,
        Lit::Bool(b) => Value::Bool(b),
        Lit::None => Value::Null,
        Lit::Seq(items) => Value::Array(
            items
                .into_iter()
                .map(|x| to_json(x, false))
                .collect::<Option<_>>()?,
        ),
        Lit::Dict(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                // JSON keys are text; json.dumps writes these scalars so.
                let key = match k {
                    Lit::Str(s) => s,
                    Lit::Int(i) => i.to_string(),
                    Lit::Bool(b) => b.to_string(),
                    Lit::None => "null".into(),
                    _ => return None,
                };
                m.insert(key, to_json(v, false)?);
            }
            Value::Object(m)
        }
    })
}

struct Parser {
    s: Vec<char>,
    i: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.s.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.s.get(self.i + n).copied()
    }

    /// Skips blanks and a trailing `#` comment.
    fn blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.i += 1,
                '#' => self.i = self.s.len(),
                '\\' if self.peek_at(1) == Some('\n') => self.i += 2,
                _ => break,
            }
        }
    }

    fn at_end(&mut self) -> bool {
        self.blank();
        self.i == self.s.len()
    }

    fn eat(&mut self, c: char) -> bool {
        self.blank();
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// `a` or `a, b, ...` (a tuple, so a list in JSON).
    fn expression_list(&mut self) -> Option<Lit> {
        let first = self.expression()?;
        if !self.eat(',') {
            return Some(first);
        }
        let mut items = vec![first];
        self.items_until(None, &mut items)?;
        Some(Lit::Seq(items))
    }

    /// Further comma-separated items up to `close` (or the end), the first
    /// item and its comma already read.
    fn items_until(&mut self, close: Option<char>, items: &mut Vec<Lit>) -> Option<()> {
        loop {
            self.blank();
            let done = match close {
                Some(c) => self.eat(c),
                None => self.i == self.s.len(),
            };
            if done {
                return Some(());
            }
            items.push(self.expression()?);
            if !self.eat(',') {
                return match close {
                    Some(c) if self.eat(c) => Some(()),
                    None => Some(()),
                    _ => None,
                };
            }
        }
    }

    /// One literal, with an optional sign before a number.
    fn expression(&mut self) -> Option<Lit> {
        self.blank();
        match self.peek()? {
            sign @ ('-' | '+') => {
                self.i += 1;
                // The operand must be a plain number: `--1` and `-True` are
                // not literals. Parentheses around it are fine.
                match self.unsigned()? {
                    (Lit::Int(n), false) => Some(Lit::Int(if sign == '-' { -n } else { n })),
                    (Lit::Float(f), false) => Some(Lit::Float(if sign == '-' { -f } else { f })),
                    _ => None,
                }
            }
            _ => self.unsigned().map(|(lit, _)| lit),
        }
    }

    /// An atom, and whether it carried a sign (inside parentheses).
    fn unsigned(&mut self) -> Option<(Lit, bool)> {
        self.blank();
        let c = self.peek()?;
        if c == '(' {
            self.i += 1;
            if self.eat(')') {
                return Some((Lit::Seq(Vec::new()), false));
            }
            self.blank();
            let signed = matches!(self.peek(), Some('-' | '+'));
            let first = self.expression()?;
            if self.eat(')') {
                return Some((first, signed));
            }
            if !self.eat(',') {
                return None;
            }
            let mut items = vec![first];
            self.items_until(Some(')'), &mut items)?;
            return Some((Lit::Seq(items), false));
        }
        let lit = match c {
            '[' => {
                self.i += 1;
                let mut items = Vec::new();
                if !self.eat(']') {
                    items.push(self.expression()?);
                    if !self.eat(']') {
                        if !self.eat(',') {
                            return None;
                        }
                        self.items_until(Some(']'), &mut items)?;
                    }
                }
                Lit::Seq(items)
            }
            '{' => self.dict()?,
            c if c.is_ascii_digit()
                || (c == '.' && self.peek_at(1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.number()?
            }
            c if c.is_alphabetic() || c == '_' || c == '\'' || c == '"' => self.word_or_string()?,
            _ => return None,
        };
        Some((lit, false))
    }

    fn dict(&mut self) -> Option<Lit> {
        self.i += 1;
        let mut pairs = Vec::new();
        loop {
            if self.eat('}') {
                return Some(Lit::Dict(pairs));
            }
            let k = self.expression()?;
            // `{a, b}` is a set, which JSON cannot hold.
            if !self.eat(':') {
                return None;
            }
            let v = self.expression()?;
            if let Some(at) = pairs.iter().position(|(old, _)| same_key(old, &k)) {
                pairs[at].1 = v;
            } else {
                pairs.push((k, v));
            }
            if !self.eat(',') {
                return if self.eat('}') {
                    Some(Lit::Dict(pairs))
                } else {
                    None
                };
            }
        }
    }

    /// True/False/None, or one or more adjacent string literals.
    fn word_or_string(&mut self) -> Option<Lit> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
            self.i += 1;
        }
        let word: String = self.s[start..self.i].iter().collect();
        if !matches!(self.peek(), Some('\'' | '"')) {
            return match word.as_str() {
                "True" => Some(Lit::Bool(true)),
                "False" => Some(Lit::Bool(false)),
                "None" => Some(Lit::None),
                _ => None, // a name: not a literal
            };
        }
        self.i = start;
        let mut out = self.string()?;
        loop {
            self.blank();
            let next_is_string = match (self.peek(), self.peek_at(1), self.peek_at(2)) {
                (Some('\'' | '"'), _, _) => true,
                (Some(a), Some('\'' | '"'), _) => a.is_alphabetic(),
                (Some(a), Some(b), Some('\'' | '"')) => a.is_alphabetic() && b.is_alphabetic(),
                _ => false,
            };
            if !next_is_string {
                return Some(out);
            }
            out = match (out, self.string()?) {
                (Lit::Str(a), Lit::Str(b)) => Lit::Str(a + &b),
                (Lit::Bytes(mut a), Lit::Bytes(b)) => {
                    a.extend(b);
                    Lit::Bytes(a)
                }
                _ => return None, // str and bytes do not concatenate
            };
        }
    }

    /// One string literal with its prefix.
    fn string(&mut self) -> Option<Lit> {
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
    fn number(&mut self) -> Option<Lit> {
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

fn same_key(a: &Lit, b: &Lit) -> bool {
    match (a, b) {
        (Lit::Str(x), Lit::Str(y)) => x == y,
        (Lit::Int(x), Lit::Int(y)) => x == y,
        (Lit::Bool(x), Lit::Bool(y)) => x == y,
        (Lit::None, Lit::None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::value;
    use serde_json::json;

    #[test]
    fn like_ast_literal_eval() {
        // Each expectation is what ansible-inventory printed for the value.
        let cases = [
            ("1", json!(1)),
            ("-5", json!(-5)),
            ("+3", json!(3)),
            ("-(5)", json!(-5)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("0b101", json!(5)),
            ("1_000", json!(1000)),
            ("00", json!(0)),
            ("1.5e3", json!(1500.0)),
            (".5", json!(0.5)),
            ("5.", json!(5.0)),
            ("1_0.5", json!(10.5)),
            ("-0.5", json!(-0.5)),
            ("True", json!(true)),
            ("None", Value::Null),
            ("'quoted'", json!("quoted")),
            ("'a' \"b\"", json!("ab")),
            ("r'\\n'", json!("\\n")),
            ("'\\n'", json!("\n")),
            ("'\\x41\\u00e9\\101'", json!("A\u{e9}A")),
            ("b'by'", json!("by")),
            ("[1, 'two', {'k': None}]", json!([1, "two", {"k": null}])),
            ("(1,2)", json!([1, 2])),
            ("1, 2", json!([1, 2])),
            ("(1,)", json!([1])),
            ("()", json!([])),
            ("{}", json!({})),
            ("[]", json!([])),
            (
                "{'a': [1, (2, 3)], 'b': {'c': True}}",
                json!({"a": [1, [2, 3]], "b": {"c": true}}),
            ),
            ("\"x\" # c", json!("x")),
            ("  5", json!(5)),
            ("22 # ssh", json!(22)),
        ];
        for (text, want) in cases {
            assert_eq!(value(text), want, "{text}");
        }
    }

    use serde_json::Value;

    #[test]
    fn text_when_not_a_literal() {
        for text in [
            "0755",
            "1__0",
            "1_",
            "true",
            "yes",
            "ubuntu  # comment",
            "",
            "x#y",
            "--5",
            "-True",
            "1+2",
            "1 + 2j",
            "{1, 2}",
            "f'x'",
            "10.0.0.3",
            "a b",
            "'a' b'c'",
            "[1,",
            "1abc",
            "set()",
            "...",
            "$HOME",
            "{'a': 1,,}",
            "/etc/key",
        ] {
            assert_eq!(value(text), json!(text), "{text}");
        }
    }
}
