//! Booleans as Ansible reads them (`ansible.module_utils.parsing.convert_bool`).

use serde_json::Value;

/// `Some(bool)` for the spellings Ansible accepts, `None` otherwise.
pub fn ansible_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x == 1.0 => Some(true),
            Some(x) if x == 0.0 => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" | "1.0" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" | "0.0" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn spellings() {
        for t in [
            json!(true),
            json!("yes"),
            json!("True"),
            json!("ON"),
            json!(1),
            json!("1"),
            json!("t"),
        ] {
            assert_eq!(ansible_bool(&t), Some(true), "{t}");
        }
        for f in [
            json!(false),
            json!("no"),
            json!("False"),
            json!("off"),
            json!(0),
            json!("0"),
            json!("n"),
        ] {
            assert_eq!(ansible_bool(&f), Some(false), "{f}");
        }
        assert_eq!(ansible_bool(&json!("maybe")), None);
    }
}
