//! A webhook delivery: does it know the trigger's secret, and what input does it carry. Pure
//! functions of the request's parts, so every refusal is tested without a server.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::config::{Signature, WebhookTrigger};
use crate::error::Error;
use crate::submission::{MAX_INPUT_DEPTH, json_depth};

/// What the server read from a webhook request.
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub body: Vec<u8>,
    /// `X-Hub-Signature-256`.
    pub signature: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// The sender's id of this delivery (`X-GitHub-Delivery`, `X-Gitea-Delivery`,
    /// `X-Delivery-Id`): a delivery sent again submits nothing new.
    pub id: Option<String>,
}

/// Refuses a delivery that does not prove it knows the secret, comparing in constant time.
pub fn verify(hook: &WebhookTrigger, delivery: &Delivery) -> Result<(), Error> {
    let refused = |message: &str| {
        Err(Error::Unauthorized {
            message: message.to_string(),
        })
    };
    match hook.signature {
        Signature::HmacSha256 => {
            let Some(header) = delivery.signature.as_deref() else {
                return refused(
                    "the delivery has no X-Hub-Signature-256 header; sign the body with HMAC-SHA256 \
                     under the webhook's secret and send `sha256=HEX`",
                );
            };
            let Some(signature) = header
                .trim()
                .strip_prefix("sha256=")
                .and_then(|hex_text| hex::decode(hex_text).ok())
            else {
                return refused("X-Hub-Signature-256 is not `sha256=` followed by hex digits");
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(hook.secret.expose().as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(&delivery.body);
            if mac.verify_slice(&signature).is_err() {
                return refused(
                    "X-Hub-Signature-256 does not match the body under the webhook's secret",
                );
            }
        }
        Signature::Bearer => {
            let Some(token) = delivery
                .authorization
                .as_deref()
                .and_then(|header| header.trim().strip_prefix("Bearer "))
            else {
                return refused("the delivery has no `Authorization: Bearer SECRET` header");
            };
            let expected = hook.secret.expose().as_bytes();
            if !bool::from(token.trim().as_bytes().ct_eq(expected)) {
                return refused("the bearer secret is not the webhook's secret");
            }
        }
    }
    Ok(())
}

/// The job's input: the body as JSON, or the part `input_pointer` names.
pub fn input(hook: &WebhookTrigger, body: &[u8]) -> Result<Value, Error> {
    let invalid = |message: String| Error::InvalidField {
        field: "body".into(),
        message,
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|error| invalid(format!("is not JSON: {error}")))?;
    let depth = json_depth(&value);
    if depth > MAX_INPUT_DEPTH {
        return Err(invalid(format!(
            "is nested {depth} levels deep; at most {MAX_INPUT_DEPTH} are accepted"
        )));
    }
    if hook.input_pointer.is_empty() {
        return Ok(value);
    }
    match value.pointer(&hook.input_pointer) {
        Some(part) => Ok(part.clone()),
        None => Err(invalid(format!(
            "has nothing at `{}`, the part this webhook takes as the job's input",
            hook.input_pointer
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde_json::json;

    use super::*;
    use crate::config::{Config, TriggerSource};

    const SECRET: &str = "0123456789abcdef0123";

    fn hook(signature: &str, pointer: &str) -> WebhookTrigger {
        let text = format!(
            "[types.deploy]\ncommand = [\"true\"]\n[triggers.deploy]\nwebhook = \"deploy\"\n\
             secret_env = \"SECRET\"\nsignature = \"{signature}\"\ninput_pointer = \"{pointer}\"\n\
             type = \"deploy\"\n"
        );
        let env = HashMap::from([("SECRET".to_string(), SECRET.to_string())]);
        let config = Config::from_toml(&text, &env).unwrap();
        match &config.triggers["deploy"].source {
            TriggerSource::Webhook(hook) => hook.clone(),
            other => panic!("a webhook: {other:?}"),
        }
    }

    fn signed(body: &[u8], secret: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn delivery(body: &[u8], signature: Option<String>) -> Delivery {
        Delivery {
            body: body.to_vec(),
            signature,
            ..Delivery::default()
        }
    }

    #[test]
    fn a_body_signed_with_the_secret_is_accepted() {
        let body = br#"{"ref":"main"}"#;
        let hook = hook("hmac-sha256", "");
        assert!(verify(&hook, &delivery(body, Some(signed(body, SECRET)))).is_ok());
    }

    #[test]
    fn a_wrong_missing_or_malformed_signature_is_refused() {
        let body = br#"{"ref":"main"}"#;
        let hook = hook("hmac-sha256", "");
        let cases = [
            Some(signed(body, "another secret of some length")),
            Some(signed(br#"{"ref":"evil"}"#, SECRET)),
            None,
            Some("sha1=abcd".into()),
            Some("sha256=not-hex".into()),
        ];
        for signature in cases {
            let outcome = verify(&hook, &delivery(body, signature.clone()));
            assert!(
                matches!(outcome, Err(Error::Unauthorized { .. })),
                "{signature:?} was not refused"
            );
        }
    }

    #[test]
    fn a_bearer_webhook_wants_the_secret_itself() {
        let hook = hook("bearer", "");
        let with = |authorization: Option<&str>| Delivery {
            authorization: authorization.map(str::to_string),
            ..Delivery::default()
        };
        assert!(verify(&hook, &with(Some(&format!("Bearer {SECRET}")))).is_ok());
        assert!(verify(&hook, &with(Some("Bearer 0123456789abcdef012"))).is_err());
        assert!(verify(&hook, &with(Some(SECRET))).is_err());
        assert!(verify(&hook, &with(None)).is_err());
    }

    #[test]
    fn the_input_is_the_body_or_the_part_the_pointer_names() {
        let body = br#"{"payload":{"ref":"main"},"other":1}"#;
        assert_eq!(
            input(&hook("bearer", ""), body).unwrap(),
            json!({"payload": {"ref": "main"}, "other": 1})
        );
        assert_eq!(
            input(&hook("bearer", "/payload"), body).unwrap(),
            json!({"ref": "main"})
        );
        let missing = input(&hook("bearer", "/nope"), body).unwrap_err();
        assert!(missing.to_string().contains("/nope"), "{missing}");
        let malformed = input(&hook("bearer", ""), b"{not json").unwrap_err();
        assert!(malformed.to_string().contains("not JSON"), "{malformed}");
    }
}
