//! Values of INI inventory variables as Ansible reads them: Python's
//! `ast.literal_eval` of the text (numbers, quoted strings, True/False/None,
//! lists, tuples and dicts), or the text itself when that fails. So `22` is a
//! number, `"'22'"` and `yes` are strings, `[1, 2]` is a list.
//!
//! Literals that JSON cannot hold (complex numbers, sets, bytes inside
//! containers, `...`) make ansible-inventory itself fail; here they stay text.

use super::pytoken::{Cursor, Lit};
use serde_json::{Map, Number, Value};

/// The value of `text` as Ansible's INI plugin gives it.
pub fn value(text: &str) -> Value {
    let mut p = Cursor::new(text.trim_start_matches([' ', '\t']));
    match p.expression_list() {
        Some(lit) if p.at_end() => to_json(lit, true).unwrap_or_else(|| text.into()),
        _ => Value::String(text.to_string()),
    }
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

/// Python's expression grammar, as far as `ast.literal_eval` accepts it.
impl Cursor {
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
