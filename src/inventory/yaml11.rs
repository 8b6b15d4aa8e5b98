//! Scalars as Ansible's YAML loader (PyYAML, YAML 1.1) reads them. A plain
//! scalar is resolved by PyYAML's implicit resolver: `yes`/`no`/`on`/`off`
//! (and `true`/`false`, in three spellings each) are booleans but `y` and
//! `n` are not; `0022` is octal (18), `0x1F`, `0b101`, `1_000` and the
//! sexagesimal `1:30` (90) are integers; a float needs a dot (`1.5`,
//! `1.0e+3`, `.5`), so `1e3` and `1.0e3` stay text; `2001-12-14` is a
//! date. Quoted and block scalars are text unless tagged. Explicit `!!`
//! tags convert as PyYAML's SafeConstructor does.
//!
//! Every rule here is held against real `ansible-inventory` by the corpus
//! cases `yaml11-*` of tests/fixtures/inventory.

use super::yaml_error::ScalarError;
use serde_json::Number;

/// A resolved scalar, before it becomes a node.
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Number(Number),
    /// A float with no JSON form (`.inf`, `.nan`), kept as YAML writes it.
    NonFinite(&'static str),
    Str(String),
    /// A date or time, as Python's `isoformat()` (how Ansible prints it).
    Time(String),
}

/// What PyYAML's resolver makes of a plain scalar: the tag it gets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Implicit {
    Null,
    Bool,
    Int,
    Float,
    Timestamp,
    Merge,
    Value,
    Str,
}

/// PyYAML's `Resolver.resolve` for a plain (or `!`-tagged) scalar.
pub fn implicit(v: &str) -> Implicit {
    match v {
        "" | "~" | "null" | "Null" | "NULL" => Implicit::Null,
        "yes" | "Yes" | "YES" | "no" | "No" | "NO" | "true" | "True" | "TRUE" | "false"
        | "False" | "FALSE" | "on" | "On" | "ON" | "off" | "Off" | "OFF" => Implicit::Bool,
        "<<" => Implicit::Merge,
        "=" => Implicit::Value,
        _ if is_float(v) => Implicit::Float,
        _ if is_int(v) => Implicit::Int,
        _ if timestamp(v, true).is_some() => Implicit::Timestamp,
        _ => Implicit::Str,
    }
}

/// The value of a plain scalar (an error for `<<` and `=`, which are only
/// meaningful as keys).
pub fn plain(v: &str) -> Result<Scalar, ScalarError> {
    match implicit(v) {
        Implicit::Null => Ok(Scalar::Null),
        Implicit::Bool => construct("bool", v),
        Implicit::Int => construct("int", v),
        Implicit::Float => construct("float", v),
        Implicit::Timestamp => construct("timestamp", v),
        Implicit::Str => Ok(Scalar::Str(v.to_string())),
        Implicit::Merge => Err(ScalarError::MergeKey),
        Implicit::Value => Err(ScalarError::ValueKey),
    }
}

/// The scalar under the core tag `tag:yaml.org,2002:NAME`, as PyYAML's
/// SafeConstructor makes it; `Err` where Ansible fails too.
pub fn construct(name: &str, v: &str) -> Result<Scalar, ScalarError> {
    let value = || v.to_string();
    match name {
        "null" => Ok(Scalar::Null),
        "str" | "python/unicode" => Ok(Scalar::Str(v.to_string())),
        "bool" => match v.to_lowercase().as_str() {
            "yes" | "true" | "on" => Ok(Scalar::Bool(true)),
            "no" | "false" | "off" => Ok(Scalar::Bool(false)),
            _ => Err(ScalarError::NotBool { value: value() }),
        },
        "int" => int(v).ok_or_else(|| ScalarError::NotInt { value: value() }),
        "float" => float(v).ok_or_else(|| ScalarError::NotFloat { value: value() }),
        "timestamp" => timestamp(v, false)
            .and_then(|t| t.iso())
            .map(Scalar::Time)
            .ok_or_else(|| ScalarError::NotTime { value: value() }),
        "binary" => Err(ScalarError::Binary),
        _ => Err(ScalarError::UnusableTag {
            name: name.to_string(),
        }),
    }
}

/// `[-+]?` then the rest.
fn unsign(v: &str) -> (bool, &str) {
    match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+') => (false, &v[1..]),
        _ => (false, v),
    }
}

fn all(s: &str, f: impl Fn(u8) -> bool) -> bool {
    s.bytes().all(f)
}

fn digit_(c: u8) -> bool {
    c.is_ascii_digit() || c == b'_'
}

/// `:[0-5]?[0-9]` repeated, at least once, from a string starting at ':'.
fn sexagesimal_tail(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() >= 2
        && parts[0].is_empty()
        && parts[1..].iter().all(|p| {
            let b = p.as_bytes();
            match b.len() {
                1 => b[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&b[0]) && b[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// PyYAML's int regexp.
fn is_int(v: &str) -> bool {
    let (_, s) = unsign(v);
    if let Some(b) = s.strip_prefix("0b") {
        return !b.is_empty() && all(b, |c| matches!(c, b'0' | b'1' | b'_'));
    }
    if let Some(x) = s.strip_prefix("0x") {
        return !x.is_empty() && all(x, |c| c.is_ascii_hexdigit() || c == b'_');
    }
    if s == "0" {
        return true;
    }
    if let Some(o) = s.strip_prefix('0') {
        return !o.is_empty() && all(o, |c| matches!(c, b'0'..=b'7' | b'_'));
    }
    if !s.starts_with(|c: char| matches!(c, '1'..='9')) {
        return false;
    }
    match s.find(':') {
        None => all(s, digit_),
        Some(i) => all(&s[..i], digit_) && sexagesimal_tail(&s[i..]),
    }
}

/// PyYAML's float regexp.
fn is_float(v: &str) -> bool {
    let (signed, s) = (v.starts_with(['-', '+']), unsign(v).1);
    if matches!(s, ".inf" | ".Inf" | ".INF") {
        return true;
    }
    if !signed && matches!(s, ".nan" | ".NaN" | ".NAN") {
        return true;
    }
    // `\.[0-9][0-9_]*` (no sign) or `[0-9][0-9_]*` then `:..` or `\.`.
    let exponent_ok = |rest: &str| match rest.find(['e', 'E']) {
        None => all(rest, digit_),
        Some(i) => {
            let (frac, exp) = (&rest[..i], &rest[i + 1..]);
            let digits = exp.strip_prefix(['-', '+']);
            all(frac, digit_)
                && digits.is_some_and(|d| !d.is_empty() && all(d, |c| c.is_ascii_digit()))
        }
    };
    if let Some(rest) = s.strip_prefix('.') {
        return !signed && rest.starts_with(|c: char| c.is_ascii_digit()) && exponent_ok(rest);
    }
    if !s.starts_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let Some(dot) = s.find('.') else {
        return false;
    };
    let whole = &s[..dot];
    let frac = &s[dot + 1..];
    match whole.find(':') {
        None => all(whole, digit_) && exponent_ok(frac),
        Some(i) => all(&whole[..i], digit_) && sexagesimal_tail(&whole[i..]) && all(frac, digit_),
    }
}

fn number_i128(n: i128) -> Number {
    match (i64::try_from(n), u64::try_from(n)) {
        (Ok(x), _) => x.into(),
        (_, Ok(x)) => x.into(),
        _ => float_number(n as f64).expect("an i128 is finite"),
    }
}

fn float_number(f: f64) -> Option<Number> {
    Number::from_f64(f)
}

/// Python's `int(text, base)` on digits only (the sign already taken).
fn digits(s: &str, base: u32) -> Option<i128> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut n: i128 = 0;
    for c in s.chars() {
        n = n
            .checked_mul(i128::from(base))?
            .checked_add(i128::from(c.to_digit(base)?))?;
    }
    Some(n)
}

/// PyYAML's `construct_yaml_int`.
fn int(v: &str) -> Option<Scalar> {
    let v = v.replace('_', "");
    let (neg, s) = unsign(v.trim());
    let sign = if neg { -1 } else { 1 };
    let n = if s == "0" {
        0
    } else if let Some(b) = s.strip_prefix("0b") {
        digits(b, 2)?
    } else if let Some(x) = s.strip_prefix("0x") {
        digits(x, 16)?
    } else if let Some(o) = s.strip_prefix('0') {
        // Python's int(s, 8) also takes a `0o` prefix.
        digits(o.strip_prefix('o').unwrap_or(o), 8)?
    } else if s.contains(':') {
        let mut total: i128 = 0;
        let mut base: i128 = 1;
        for part in s.rsplit(':') {
            total = total.checked_add(digits(part, 10)?.checked_mul(base)?)?;
            base = base.checked_mul(60)?;
        }
        total
    } else {
        match digits(s, 10) {
            Some(n) => n,
            // Beyond i128, as Python's json prints it and serde reads it.
            None if !s.is_empty() && all(s, |c| c.is_ascii_digit()) => {
                let f: f64 = s.parse().ok()?;
                return float_number(if neg { -f } else { f }).map(Scalar::Number);
            }
            None => return None,
        }
    };
    Some(Scalar::Number(number_i128(sign * n)))
}

/// PyYAML's `construct_yaml_float`.
fn float(v: &str) -> Option<Scalar> {
    let v = v.replace('_', "").to_lowercase();
    let (neg, s) = unsign(v.trim());
    let sign = if neg { -1.0 } else { 1.0 };
    let f = if s == ".inf" {
        f64::INFINITY
    } else if s == ".nan" {
        f64::NAN
    } else if s.contains(':') {
        let mut total = 0.0;
        let mut base = 1.0;
        for part in s.rsplit(':') {
            total += python_float(part)? * base;
            base *= 60.0;
        }
        total
    } else {
        python_float(s)?
    };
    let f = sign * f;
    Some(match float_number(f) {
        Some(n) => Scalar::Number(n),
        None if f.is_nan() => Scalar::NonFinite(".nan"),
        None if f > 0.0 => Scalar::NonFinite(".inf"),
        None => Scalar::NonFinite("-.inf"),
    })
}

/// Python's `float(text)` for the texts that reach it here.
fn python_float(s: &str) -> Option<f64> {
    let s = s.trim();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
        || matches!(s, "inf" | "infinity" | "nan" | "-inf" | "+inf");
    if !ok {
        return None;
    }
    s.parse().ok()
}

/// The parts of PyYAML's timestamp regexp.
#[derive(Debug, PartialEq)]
struct Stamp {
    date: (i64, u32, u32),
    time: Option<(u32, u32, u32, String)>,
    /// `Some(None)` for `Z`; `Some(Some(minutes))` for an offset.
    tz: Option<Option<i64>>,
}

fn take_digits<'a>(s: &mut &'a str, min: usize, max: usize) -> Option<&'a str> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    let (d, rest) = s.split_at(n);
    *s = rest;
    Some(d)
}

fn take(s: &mut &str, prefix: char) -> bool {
    match s.strip_prefix(prefix) {
        Some(rest) => {
            *s = rest;
            true
        }
        None => false,
    }
}

/// Matches `YYYY-MM-DD` or `YYYY-M-D[Tt ]H:MM:SS[.frac][ ][Z|±H[:MM]]`;
/// `resolver`: as the implicit resolver, which wants two-digit month and
/// day in a date alone (the constructor does not).
fn timestamp(v: &str, resolver: bool) -> Option<Stamp> {
    let mut s = v;
    let year = take_digits(&mut s, 4, 4)?;
    if !take(&mut s, '-') {
        return None;
    }
    let month = take_digits(&mut s, 1, 2)?;
    if !take(&mut s, '-') {
        return None;
    }
    let day = take_digits(&mut s, 1, 2)?;
    let date = (year.parse().ok()?, month.parse().ok()?, day.parse().ok()?);
    if s.is_empty() {
        let two = month.len() == 2 && day.len() == 2;
        return (two || !resolver).then_some(Stamp {
            date,
            time: None,
            tz: None,
        });
    }
    if !(take(&mut s, 'T') || take(&mut s, 't')) {
        let blanks = s.len() - s.trim_start_matches([' ', '\t']).len();
        if blanks == 0 {
            return None;
        }
        s = &s[blanks..];
    }
    let hour = take_digits(&mut s, 1, 2)?.parse().ok()?;
    if !take(&mut s, ':') {
        return None;
    }
    let minute = take_digits(&mut s, 2, 2)?.parse().ok()?;
    if !take(&mut s, ':') {
        return None;
    }
    let second = take_digits(&mut s, 2, 2)?.parse().ok()?;
    let mut fraction = String::new();
    if take(&mut s, '.') {
        fraction = take_digits(&mut s, 0, usize::MAX)?.to_string();
    }
    s = s.trim_start_matches([' ', '\t']);
    let tz = if s.is_empty() {
        None
    } else if s == "Z" {
        Some(None)
    } else {
        let neg = s.starts_with('-');
        if !(take(&mut s, '-') || take(&mut s, '+')) {
            return None;
        }
        let h: i64 = take_digits(&mut s, 1, 2)?.parse().ok()?;
        let m: i64 = if take(&mut s, ':') {
            take_digits(&mut s, 2, 2)?.parse().ok()?
        } else {
            0
        };
        if !s.is_empty() {
            return None;
        }
        let total = h * 60 + m;
        Some(Some(if neg { -total } else { total }))
    };
    // A blank before the zone was trimmed; a blank alone at the end is not
    // allowed by the regexp.
    if tz.is_none() && v.ends_with([' ', '\t']) {
        return None;
    }
    Some(Stamp {
        date,
        time: Some((hour, minute, second, fraction)),
        tz,
    })
}

impl Stamp {
    /// Python's `date.isoformat()` / `datetime.isoformat()`, or `None`
    /// where Python's date and time types refuse the values.
    fn iso(&self) -> Option<String> {
        let (y, m, d) = self.date;
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days = match m {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => return None,
        };
        if !(1..=9999).contains(&y) || d < 1 || d > days {
            return None;
        }
        let mut out = format!("{y:04}-{m:02}-{d:02}");
        let Some((h, mi, s, frac)) = &self.time else {
            return Some(out);
        };
        if *h > 23 || *mi > 59 || *s > 59 {
            return None;
        }
        out += &format!("T{h:02}:{mi:02}:{s:02}");
        let micros: String = frac.chars().chain("000000".chars()).take(6).collect();
        if micros != "000000" {
            out += &format!(".{micros}");
        }
        match self.tz {
            None => {}
            Some(None) => out += "+00:00",
            Some(Some(off)) => {
                if off.abs() >= 24 * 60 {
                    return None;
                }
                let sign = if off < 0 { '-' } else { '+' };
                out += &format!("{sign}{:02}:{:02}", off.abs() / 60, off.abs() % 60);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: serde_json::Value) -> Scalar {
        match v {
            serde_json::Value::Number(n) => Scalar::Number(n),
            _ => unreachable!(),
        }
    }

    /// Each expectation is what Ansible 2.14's loader gave for `x: TEXT`.
    #[test]
    fn plain_scalars_like_pyyaml() {
        let s = |t: &str| Scalar::Str(t.into());
        let cases = [
            ("yes", Scalar::Bool(true)),
            ("Off", Scalar::Bool(false)),
            ("TRUE", Scalar::Bool(true)),
            ("y", s("y")),
            ("n", s("n")),
            ("yES", s("yES")),
            ("~", Scalar::Null),
            ("", Scalar::Null),
            ("0022", num(json!(18))),
            ("08", s("08")),
            ("1_000", num(json!(1000))),
            ("0x_1F", num(json!(31))),
            ("0b1_0", num(json!(2))),
            ("0b", s("0b")),
            ("0o17", s("0o17")),
            ("+0", num(json!(0))),
            ("-0_", num(json!(0))),
            ("190:20:30", num(json!(685230))),
            ("12:30", num(json!(750))),
            ("-1_0:1_0", s("-1_0:1_0")),
            ("1:60", s("1:60")),
            ("190:20:30.15", num(json!(685230.15))),
            ("1e3", s("1e3")),
            ("1.0e3", s("1.0e3")),
            ("1.0e+3", num(json!(1000.0))),
            ("1.", num(json!(1.0))),
            (".5", num(json!(0.5))),
            ("+.5", s("+.5")),
            ("1_0.5_", num(json!(10.5))),
            ("-.inf", Scalar::NonFinite("-.inf")),
            (".NaN", Scalar::NonFinite(".nan")),
            ("2001-12-14", Scalar::Time("2001-12-14".into())),
            ("2001-1-14", s("2001-1-14")),
            (
                "2001-12-14t21:59:43.10-05:00",
                Scalar::Time("2001-12-14T21:59:43.100000-05:00".into()),
            ),
            (
                "2001-12-14 21:59:43 Z",
                Scalar::Time("2001-12-14T21:59:43+00:00".into()),
            ),
            (
                "2001-12-14 1:59:43.1234567+5",
                Scalar::Time("2001-12-14T01:59:43.123456+05:00".into()),
            ),
            ("10.0.0.1", s("10.0.0.1")),
            ("1.2.3", s("1.2.3")),
            ("node1", s("node1")),
        ];
        for (text, want) in cases {
            assert_eq!(plain(text).as_ref(), Ok(&want), "{text}");
        }
        assert!(plain("2001-13-01").is_err());
        assert!(plain("2001-02-29").is_err());
        assert!(plain("<<").is_err() && plain("=").is_err());
    }

    #[test]
    fn explicit_tags_like_safe_constructor() {
        assert_eq!(construct("int", "0o17"), Ok(num(json!(15))));
        assert_eq!(construct("float", "1e3"), Ok(num(json!(1000.0))));
        assert_eq!(construct("float", "1"), Ok(num(json!(1.0))));
        assert_eq!(construct("null", "abc"), Ok(Scalar::Null));
        assert_eq!(construct("str", "~"), Ok(Scalar::Str("~".into())));
        assert_eq!(construct("bool", "ON"), Ok(Scalar::Bool(true)));
        assert_eq!(
            construct("timestamp", "2001-1-1"),
            Ok(Scalar::Time("2001-01-01".into()))
        );
        let e = construct("timestamp", "2001-1-32").unwrap_err();
        assert_eq!(
            e,
            ScalarError::NotTime {
                value: "2001-1-32".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "\"2001-1-32\" is not a valid date or time (tagged !!timestamp)"
        );
        assert!(construct("int", "1e3").is_err());
        assert!(construct("bool", "y").is_err());
        assert!(construct("binary", "aGVsbG8=").is_err());
        assert_eq!(
            construct("int", "123456789012345678901234567890123456789012"),
            Ok(num(json!(1.2345678901234568e41)))
        );
    }
}
