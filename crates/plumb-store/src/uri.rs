//! Backend store URIs as MLflow users write them: which one names PostgreSQL (any
//! `postgresql+driver://` spelling), and the URI without its password for messages.

/// Accepts the URI spellings MLflow users have in their configs (`postgresql://`,
/// `postgres://`, `postgresql+psycopg2://`, any `+driver`) and returns libpq's.
pub fn normalize_url(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once("://")?;
    let base = scheme.split('+').next().unwrap_or(scheme);
    matches!(base, "postgresql" | "postgres").then(|| format!("postgres://{rest}"))
}

/// The URI without its password, for messages.
pub fn redact(uri: &str) -> String {
    match (uri.find("://"), uri.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &uri[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &uri[..s + 3], &uri[at..]),
                None => uri.to_string(),
            }
        }
        _ => uri.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_uri_spellings_are_accepted() {
        for (given, want) in [
            (
                "postgresql://u:p@h:5432/db",
                Some("postgres://u:p@h:5432/db"),
            ),
            ("postgres://h/db", Some("postgres://h/db")),
            ("postgresql+psycopg2://u@h/db", Some("postgres://u@h/db")),
            ("postgresql+pg8000://u@h/db", Some("postgres://u@h/db")),
            ("sqlite:///x.db", None),
            ("mysql://h/db", None),
        ] {
            assert_eq!(normalize_url(given).as_deref(), want, "{given}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgresql://u:secret@h/db"),
            "postgresql://u:***@h/db"
        );
        assert_eq!(redact("postgresql://u@h/db"), "postgresql://u@h/db");
    }
}
