//! MLflow's webhook events: the entities and actions its protos name, which pairs are valid,
//! how they are spelled on the wire (`MODEL_VERSION`) and in payloads (`model_version`), and
//! the sample data a test delivery carries.

use serde_json::{json, Value};

/// Entities in proto order (the wire number is the index + 1), lower-case as payloads spell them.
pub const ENTITIES: &[&str] = &[
    "registered_model",
    "model_version",
    "model_version_tag",
    "model_version_alias",
    "prompt",
    "prompt_version",
    "prompt_tag",
    "prompt_version_tag",
    "prompt_alias",
    "budget_policy",
];

/// Actions in proto order.
pub const ACTIONS: &[&str] = &["created", "updated", "deleted", "set", "exceeded"];

/// The actions MLflow accepts for an entity, sorted.
pub fn valid_actions(entity: &str) -> &'static [&'static str] {
    match entity {
        "registered_model" | "model_version" | "prompt" | "prompt_version" => &["created"],
        "model_version_tag" | "prompt_tag" | "prompt_version_tag" => &["deleted", "set"],
        "model_version_alias" | "prompt_alias" => &["created", "deleted"],
        "budget_policy" => &["exceeded"],
        _ => &[],
    }
}

/// Reads an enum value as the JSON of a proto enum: its name (any case) or its number.
fn enum_value(
    v: &Value,
    names: &'static [&'static str],
    what: &str,
) -> Result<&'static str, String> {
    let found = match v {
        Value::String(s) => names.iter().find(|n| n.eq_ignore_ascii_case(s)).copied(),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| names.get(usize::try_from(i).ok()?))
            .copied(),
        _ => None,
    };
    found.ok_or_else(|| format!("'{}' is not a valid Webhook{what}", plain(v).to_lowercase()))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One `{entity, action}` of a request, checked as MLflow checks it.
pub fn parse_event(v: &Value) -> Result<(String, String), String> {
    let Some(o) = v.as_object() else {
        return Err(format!(
            "a webhook event must be an object with entity and action, got {v}"
        ));
    };
    let null = Value::Null;
    let entity = enum_value(o.get("entity").unwrap_or(&null), ENTITIES, "Entity")?;
    let action = enum_value(o.get("action").unwrap_or(&null), ACTIONS, "Action")?;
    let valid = valid_actions(entity);
    if !valid.contains(&action) {
        let list = valid
            .iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "Invalid action '{action}' for entity '{entity}'. Valid actions are: [{list}]"
        ));
    }
    Ok((entity.to_string(), action.to_string()))
}

/// The wire form of an event: `{"entity": "MODEL_VERSION", "action": "CREATED"}`.
pub fn wire(entity: &str, action: &str) -> Value {
    json!({"entity": entity.to_uppercase(), "action": action.to_uppercase()})
}

/// Sample data of an event, sent by the test endpoint (same shape as the real event's).
pub fn example(entity: &str, action: &str) -> Value {
    let tags = json!({"team": "ml"});
    match (entity, action) {
        ("registered_model", _) => {
            json!({"name": "example-model", "tags": tags, "description": "a sample model"})
        }
        ("model_version", _) => json!({
            "name": "example-model", "version": "1", "source": "models:/m-0123456789abcdef",
            "run_id": "0123456789abcdef0123456789abcdef", "tags": tags,
            "description": "a sample version",
        }),
        ("model_version_tag" | "prompt_version_tag", "set") => {
            json!({"name": "example-model", "version": "1", "key": "team", "value": "ml"})
        }
        ("model_version_tag" | "prompt_version_tag", _) => {
            json!({"name": "example-model", "version": "1", "key": "team"})
        }
        ("model_version_alias" | "prompt_alias", "created") => {
            json!({"name": "example-model", "alias": "champion", "version": "1"})
        }
        ("model_version_alias" | "prompt_alias", _) => {
            json!({"name": "example-model", "alias": "champion"})
        }
        ("prompt", _) => {
            json!({"name": "example-prompt", "tags": tags, "description": "a sample prompt"})
        }
        ("prompt_version", _) => json!({
            "name": "example-prompt", "version": "1", "template": "Hello {{name}}!",
            "tags": tags, "description": "a sample prompt version",
        }),
        ("prompt_tag", "set") => json!({"name": "example-prompt", "key": "team", "value": "ml"}),
        ("prompt_tag", _) => json!({"name": "example-prompt", "key": "team"}),
        _ => json!({"name": "example-budget", "limit": 100.0, "spent": 120.0}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_as_mlflow_reads_them() {
        let ok = parse_event(&json!({"entity": "MODEL_VERSION", "action": "CREATED"}));
        assert_eq!(ok, Ok(("model_version".into(), "created".into())));
        let by_number = parse_event(&json!({"entity": 4, "action": 3}));
        assert_eq!(
            by_number,
            Ok(("model_version_alias".into(), "deleted".into()))
        );
        assert_eq!(
            parse_event(&json!({"entity": "MODEL_VERSION", "action": "DELETED"})),
            Err(
                "Invalid action 'deleted' for entity 'model_version'. Valid actions are: \
                 ['created']"
                    .into()
            )
        );
        assert!(parse_event(&json!({"entity": "RUN", "action": "CREATED"}))
            .is_err_and(|e| e.contains("'run' is not a valid WebhookEntity")));
        assert!(parse_event(&json!({"entity": 0, "action": 1})).is_err());
        assert!(parse_event(&json!({"entity": 99, "action": 1})).is_err());
        assert!(parse_event(&json!("model_version.created")).is_err());
        assert_eq!(
            wire("model_version_tag", "set")["entity"],
            "MODEL_VERSION_TAG"
        );
        for e in ENTITIES {
            for a in valid_actions(e) {
                assert!(example(e, a).is_object());
            }
        }
    }
}
