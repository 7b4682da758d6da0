//! Webhook secrets sealed at rest with Fernet (AES-128-CBC + HMAC-SHA256), keyed by
//! `MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY` as MLflow keys it (a url-safe base64 32-byte key),
//! so a database's sealed secrets read the same in MLflow and plumb.

use std::fmt;
use std::sync::Arc;

/// The sealing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct SecretBox(Arc<fernet::Fernet>);

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    /// Reads a key; the error says what a key looks like (never echoing it).
    pub fn from_key(key: &str) -> Result<Self, String> {
        fernet::Fernet::new(key.trim())
            .map(|f| Self(Arc::new(f)))
            .ok_or_else(|| {
                "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY must be 32 bytes in url-safe base64 \
                 (a Fernet key, e.g. from `python -c \"from cryptography.fernet import Fernet; \
                 print(Fernet.generate_key().decode())\"`)"
                    .to_string()
            })
    }

    pub fn seal(&self, secret: &str) -> String {
        self.0.encrypt(secret.as_bytes())
    }

    /// `None` when the sealed text was not made with this key (or was tampered with).
    pub fn open(&self, sealed: &str) -> Option<String> {
        self.0
            .decrypt(sealed)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_with_the_same_key_only() {
        let a = SecretBox::from_key(&fernet::Fernet::generate_key()).expect("key");
        let b = SecretBox::from_key(&fernet::Fernet::generate_key()).expect("key");
        let sealed = a.seal("s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_eq!(a.open(&sealed).as_deref(), Some("s3cret"));
        assert_eq!(b.open(&sealed), None);
        assert_eq!(a.open("not a token"), None);
        assert!(SecretBox::from_key("short").is_err());
        assert_eq!(format!("{a:?}"), "SecretBox(..)");
    }

    #[test]
    fn reads_a_token_sealed_by_another_fernet_implementation() {
        // The Fernet specification's own example (key, token, plaintext "hello").
        let key = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
        let token = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
        let b = SecretBox::from_key(key).expect("key");
        assert_eq!(b.open(token).as_deref(), Some("hello"));
    }
}
