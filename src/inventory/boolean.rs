//! Booleans as Ansible reads `ansible_become` (`convert_bool.boolean`,
//! strict): `yes/no`, `true/false`, `on/off`, `y/n`, `t/f`, `1/0` in any
//! case with blanks around, YAML/JSON booleans, and the numbers 1 and 0.
//! Anything else is an error in Ansible too.

use serde_json::Value;

/// `Some(bool)` for the values Ansible accepts, `None` otherwise.
pub fn ansible_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => {
            let x = n.as_f64()?;
            if x == 1.0 {
                Some(true)
            } else if x == 0.0 {
                Some(false)
            } else {
                None
            }
        }
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
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
            json!(" Yes "),
            json!(1),
            json!(1.0),
            json!("1"),
            json!("t"),
            json!("Y"),
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
            json!("F"),
        ] {
            assert_eq!(ansible_bool(&f), Some(false), "{f}");
        }
        for bad in [
            json!("maybe"),
            json!(""),
            json!("1.0"),
            json!(2),
            json!([true]),
            json!(null),
        ] {
            assert_eq!(ansible_bool(&bad), None, "{bad}");
        }
    }
}
