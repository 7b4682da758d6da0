//! The signature MLflow's webhook receivers verify: `X-MLflow-Signature: v1,<base64 of
//! HMAC-SHA256 over "<delivery id>.<unix seconds>.<body>">`, keyed by the webhook's secret.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const DELIVERY_ID_HEADER: &str = "X-MLflow-Delivery-Id";
pub const TIMESTAMP_HEADER: &str = "X-MLflow-Timestamp";
pub const SIGNATURE_HEADER: &str = "X-MLflow-Signature";

/// The `X-MLflow-Signature` value for one attempt.
pub fn signature(secret: &str, delivery_id: &str, timestamp: &str, body: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        unreachable!("HMAC takes keys of any length")
    };
    mac.update(delivery_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_the_joined_parts() {
        // RFC 4231 test case 2: HMAC-SHA256("Jefe", "what do ya want for nothing?"); the parts
        // are joined with dots before signing.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?", "", "")
                .replace("v1,", "")
                .len(),
            44
        );
        assert_eq!(
            signature("whsec", "d-1", "1700000000", "{\"a\": 1}"),
            "v1,3XP2G5cemgPNTI7NCUQrgGnKg5B6kyM5wXFmQVtxhAY=",
            "the value Python's hmac gives for the same input"
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()),
            "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}
