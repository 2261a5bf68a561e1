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

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::id::EnvRef;

    fn env_ref() -> EnvRef {
        EnvRef::parse("crm", "production").unwrap()
    }

    #[test]
    fn parses_keys_and_refuses_unknown_fields() {
        let c =
            Config::parse("[apps.crm.envs.production.diff]\nkeys = [\"uid\", \"key\"]\n").unwrap();
        let diff = c.env(&env_ref()).unwrap().diff.as_ref().unwrap();
        assert_eq!(
            diff.keys.as_deref(),
            Some(&["uid".into(), "key".into()][..])
        );
        let c = Config::parse("[apps.crm.envs.production.diff]\n").unwrap();
        assert_eq!(c.env(&env_ref()).unwrap().diff.as_ref().unwrap().keys, None);
        let e = Config::parse("[apps.crm.envs.production.diff]\nkey = \"id\"\n").unwrap_err();
        assert!(e.to_string().contains("key"), "{e}");
        assert!(Config::parse("[apps.crm.envs.production.diff]\nkeys = \"id\"\n").is_err());
    }
}
