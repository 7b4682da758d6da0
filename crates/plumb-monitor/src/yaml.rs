//! A YAML document (yaml-rust2) as a JSON value, so monitor files are read by the same serde
//! structs as the API's JSON.

use serde_json::{Map, Number, Value};
use yaml_rust2::Yaml;

pub fn to_json(y: &Yaml) -> Result<Value, String> {
    Ok(match y {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::Number((*i).into()),
        Yaml::Real(s) => {
            let f: f64 = y.as_f64().ok_or_else(|| format!("'{s}' is not a number"))?;
            Value::Number(Number::from_f64(f).ok_or_else(|| format!("'{s}' is not finite"))?)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Real(r) => r.clone(),
                    other => {
                        return Err(format!("a mapping key must be a string, found {other:?}"))
                    }
                };
                if m.insert(key.clone(), to_json(v)?).is_some() {
                    return Err(format!("{key}: given twice"));
                }
            }
            Value::Object(m)
        }
        Yaml::Alias(_) => return Err("YAML aliases are not supported".to_string()),
        Yaml::BadValue => return Err("a value YAML could not read".to_string()),
    })
}
