//! `[encryption]` and `[apps.APP.envs.ENV.encryption]`: the age recipients new snapshots
//! are encrypted to (see [`crate::crypt`]). Only public keys: the identities that read
//! snapshots never come from the config.

use serde::{Deserialize, Serialize};

/// The age X25519 recipients (`age1...`) of new snapshots. Store-wide, every
/// environment's; per environment, it replaces the store-wide list, and an empty list
/// turns encryption off for that environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionConfig {
    /// Public keys, as `age-keygen` prints them; several (e.g. an offline recovery key
    /// beside the everyday one), each of which can decrypt alone.
    #[serde(default)]
    pub recipients: Vec<String>,
}
