//! How `diff` compares an environment's documents: the keys that give array items an
//! identity.

use serde::{Deserialize, Serialize};

/// `[apps.APP.envs.ENV.diff]`: how two versions of the environment are compared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiffConfig {
    /// The keys tried, in order, on every array of objects: the first one that every
    /// item of both versions has, with scalar values unique within each version, gives
    /// the items their identity, and the items are then compared by it rather than by
    /// position. Absent: `["id", "uid", "name"]`. Empty: no array is keyed.
    pub keys: Option<Vec<String>>,
}
