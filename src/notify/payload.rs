//! What a webhook receives: the JSON body of a notice and its HMAC-SHA256 signature.

use hmac::{Hmac, KeyInit, Mac};
use jetvault_core::notify::Notice;
use serde::Serialize;
use sha2::Sha256;

/// The header carrying `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "X-Jetvault-Signature";
/// The header carrying the notice's id (the same on every retry).
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// The header carrying the notice's kind.
pub const EVENT_HEADER: &str = "X-Jetvault-Event";

/// The JSON body of one notice.
#[derive(Debug, Serialize)]
pub struct Payload<'a> {
    /// The idempotency id: one per notice, the same on every retry and every webhook.
    pub id: &'a str,
    /// What happened (`snapshot-written`, `backup-failed`, ...).
    pub event: String,
    /// The app id.
    pub app: &'a str,
    /// The environment id.
    pub env: &'a str,
    /// The snapshot version concerned, if one.
    pub version: Option<u64>,
    /// When (RFC 3339, UTC).
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who (a name, never a token), through which front end, from which host.
    pub actor: &'a jetvault_core::notify::NoticeActor,
    /// One sentence for a person.
    pub message: String,
    /// The same sentence for Slack's incoming webhooks (`slack = true` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The body of `notice` under `id`; `slack` adds the `text` field. Every value in
/// `secrets` that appears in the message is replaced with `<redacted>` (error reports
/// name files and variables, never secrets; this makes sure of it).
#[must_use]
pub fn body(notice: &Notice, id: &str, slack: bool, secrets: &[String]) -> Vec<u8> {
    let mut message = notice.message.clone();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        message = message.replace(s.as_str(), "<redacted>");
    }
    let text = slack.then(|| {
        let v = notice
            .version
            .map_or_else(String::new, |v| format!(" (v{v})"));
        format!("jetvault [{}] {}{v}", notice.kind, message)
    });
    let payload = Payload {
        id,
        event: notice.kind.to_string(),
        app: notice.env.app.as_str(),
        env: notice.env.env.as_str(),
        version: notice.version,
        at: notice.at,
        actor: &notice.actor,
        message,
        text,
    };
    // A struct of strings, numbers and a timestamp always encodes.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `key`.
#[must_use]
pub fn signature(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jetvault_core::EnvRef;
    use jetvault_core::events::Actor;
    use jetvault_core::notify::NoticeKind;

    #[test]
    fn signature_matches_rfc_4231_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn body_names_the_event_and_redacts_known_secrets() {
        let env = EnvRef::parse("crm", "production").unwrap();
        let mut n = Notice::now(
            NoticeKind::BackupFailed,
            &env,
            &Actor::on_this_host("scheduler", "schedule"),
            "backup of crm/production failed: live answered 401 to token s3cr3t-planted",
        );
        n.version = Some(4);
        let b = body(&n, "id-1", true, &["s3cr3t-planted".into()]);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["id"], "id-1");
        assert_eq!(v["event"], "backup-failed");
        assert_eq!(v["app"], "crm");
        assert_eq!(v["env"], "production");
        assert_eq!(v["version"], 4);
        assert_eq!(v["actor"]["via"], "schedule");
        assert!(v["text"].as_str().unwrap().contains("backup-failed"));
        assert!(!String::from_utf8_lossy(&b).contains("s3cr3t-planted"));
        let plain = body(&n, "id-1", false, &[]);
        let v: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert!(v.get("text").is_none());
    }
}
