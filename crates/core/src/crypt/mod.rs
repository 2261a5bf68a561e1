//! Client-side encryption with age: a stored snapshot of an environment with recipients
//! is `age(zstd(json))` in age's binary format, so that `age -d -i key.txt | zstd -d`
//! gives the configuration back. Everything about keys lives here: the recipients that
//! new snapshots are encrypted to ([`Encryption`], from the config), the identities
//! that read them ([`Identities`], from a file or the environment, never from the
//! config), and the structure check `verify` does without an identity ([`header`]).
//!
//! The snapshot's metadata stays plaintext: it names the recipients (see
//! [`crate::meta::SnapshotMeta::recipients`]), so that reading code knows an object is
//! encrypted and errors can say to whom.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use age::secrecy::ExposeSecret;
use age::x25519;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::id::EnvRef;

pub use rekey::RekeyReport;

pub mod header;
mod rekey;
#[cfg(test)]
mod tests;

/// The environment variable naming an identity file.
pub const IDENTITY_FILE_VAR: &str = "JETVAULT_AGE_IDENTITY_FILE";
/// The environment variable holding identities (`AGE-SECRET-KEY-1...`) themselves.
pub const IDENTITY_VAR: &str = "JETVAULT_AGE_IDENTITY";

/// The X25519 recipients a snapshot is encrypted to, in the order the config gives.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<x25519::Recipient>,
    names: Vec<String>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.names).finish()
    }
}

impl Recipients {
    /// Parses age X25519 recipients (`age1...`), refusing an empty list and duplicates.
    ///
    /// `origin` names where they come from in errors (e.g. `[encryption] recipients`).
    ///
    /// # Errors
    /// `Config` naming the recipient that is not an X25519 public key.
    pub fn parse(list: &[String], origin: &str) -> Result<Self> {
        if list.is_empty() {
            return Err(Error::config(format!(
                "{origin} is empty: name at least one age recipient (age1...), or remove \
                 the setting"
            )));
        }
        let mut keys = Vec::with_capacity(list.len());
        let mut names = Vec::with_capacity(list.len());
        for r in list {
            let key: x25519::Recipient = r.trim().parse().map_err(|e| {
                Error::config(format!(
                    "{origin}: {r:?} is not an age X25519 recipient ({e}); recipients \
                     look like age1... (make one with `age-keygen`, which prints it as \
                     \"public key\")"
                ))
            })?;
            let name = key.to_string();
            if names.contains(&name) {
                return Err(Error::config(format!(
                    "{origin} names {name} twice: remove one"
                )));
            }
            keys.push(key);
            names.push(name);
        }
        Ok(Self { keys, names })
    }

    /// The public keys, as `age1...` strings.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// Which environments' new snapshots are encrypted, and to whom: the store's
/// `[encryption]` recipients, overridden per environment by
/// `[apps.A.envs.E.encryption]` (whose empty list turns encryption off there).
#[derive(Debug, Clone, Default)]
pub struct Encryption {
    default: Option<Recipients>,
    per_env: HashMap<EnvRef, Option<Recipients>>,
}

impl Encryption {
    /// No encryption anywhere.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Every environment's snapshots encrypted to `recipients`.
    #[must_use]
    pub fn store_wide(recipients: Recipients) -> Self {
        Self {
            default: Some(recipients),
            per_env: HashMap::new(),
        }
    }

    /// `env`'s snapshots encrypted to `recipients` (`None`: not encrypted), whatever
    /// the store-wide setting.
    #[must_use]
    pub fn with_env(mut self, env: EnvRef, recipients: Option<Recipients>) -> Self {
        self.per_env.insert(env, recipients);
        self
    }

    /// The encryption settings of a config (checked when the config was validated).
    ///
    /// # Errors
    /// `Config` naming a recipient that is not an X25519 public key.
    pub fn from_config(config: &Config) -> Result<Self> {
        let mut out = Self::none();
        if let Some(e) = &config.encryption {
            out.default = Some(Recipients::parse(&e.recipients, "[encryption] recipients")?);
        }
        for (env, env_config) in config.envs() {
            if let Some(e) = &env_config.encryption {
                let origin = format!("[apps.{}.envs.{}.encryption] recipients", env.app, env.env);
                let recipients = if e.recipients.is_empty() {
                    None
                } else {
                    Some(Recipients::parse(&e.recipients, &origin)?)
                };
                out.per_env.insert(env, recipients);
            }
        }
        Ok(out)
    }

    /// The recipients of `env`'s new snapshots; `None`: they are stored unencrypted.
    #[must_use]
    pub fn recipients(&self, env: &EnvRef) -> Option<&Recipients> {
        match self.per_env.get(env) {
            Some(r) => r.as_ref(),
            None => self.default.as_ref(),
        }
    }
}

/// The identities (secret keys) that decrypt snapshots, with where they came from.
#[derive(Clone, Default)]
pub struct Identities {
    keys: Arc<Vec<x25519::Identity>>,
    source: Option<String>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the keys themselves.
        f.debug_struct("Identities")
            .field("count", &self.keys.len())
            .field("source", &self.source)
            .finish()
    }
}

impl Identities {
    /// No identity: encrypted snapshots can't be read.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses identities from text: one `AGE-SECRET-KEY-1...` a line, blank lines and
    /// `#` comments ignored (the format `age-keygen` writes). `source` names the text
    /// in errors.
    ///
    /// # Errors
    /// `Config` naming the line that is not an X25519 identity, or text with none.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key: x25519::Identity = line.parse().map_err(|e| {
                Error::config(format!(
                    "{source}, line {}: not an age X25519 identity ({e}); identities look \
                     like AGE-SECRET-KEY-1... (the file `age-keygen -o key.txt` writes)",
                    n + 1
                ))
            })?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(Error::config(format!(
                "{source} holds no age identity (AGE-SECRET-KEY-1...)"
            )));
        }
        Ok(Self {
            keys: Arc::new(keys),
            source: Some(source.to_string()),
        })
    }

    /// Reads identities from a file (see [`Identities::parse`]).
    ///
    /// # Errors
    /// `Config` if the file can't be read or holds no identity.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_named(path, &format!("identity file {}", path.display()))
    }

    fn from_file_named(path: &Path, source: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read the age identity file {} ({source}): {e}",
                path.display()
            ))
        })?;
        Self::parse(&text, source)
    }

    /// The identities a process is given: `file` (the `--identity` flag) if set, else
    /// the file `JETVAULT_AGE_IDENTITY_FILE` names, else the keys in
    /// `JETVAULT_AGE_IDENTITY`; none if nothing is set.
    ///
    /// # Errors
    /// `Config` for a file that can't be read or a value that is not an identity.
    pub fn from_process(file: Option<&Path>) -> Result<Self> {
        if let Some(path) = file {
            return Self::from_file(path);
        }
        if let Some(path) = std::env::var_os(IDENTITY_FILE_VAR).filter(|p| !p.is_empty()) {
            let path = PathBuf::from(path);
            let source = format!("{IDENTITY_FILE_VAR}={}", path.display());
            return Self::from_file_named(&path, &source);
        }
        match std::env::var(IDENTITY_VAR) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text, IDENTITY_VAR),
            _ => Ok(Self::none()),
        }
    }

    /// Whether there is no identity.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public keys (`age1...`) of the identities, for messages.
    #[must_use]
    pub fn public_keys(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| k.to_public().to_string())
            .collect()
    }

    /// A one-off identity (tests and key generation): the identity and its recipient.
    #[must_use]
    pub fn generate() -> (String, String) {
        let key = x25519::Identity::generate();
        (
            key.to_string().expose_secret().to_string(),
            key.to_public().to_string(),
        )
    }
}

/// How to give an identity, for error messages.
pub const HOW_TO_GIVE_IDENTITY: &str = "pass --identity FILE (an age identity file, as \
     `age-keygen -o FILE` writes), or set JETVAULT_AGE_IDENTITY_FILE to such a file or \
     JETVAULT_AGE_IDENTITY to the AGE-SECRET-KEY-1... itself";

/// Encrypts `plain` (a zstd frame) to `recipients`, in age's binary format.
///
/// # Errors
/// `Internal` if age fails.
pub fn encrypt(plain: &[u8], recipients: &Recipients) -> Result<Vec<u8>> {
    let encryptor =
        age::Encryptor::with_recipients(recipients.keys.iter().map(|r| r as &dyn age::Recipient))
            .map_err(|e| Error::internal(format!("age: cannot start encrypting: {e}")))?;
    // The header (about 100 bytes a recipient), a 16-byte nonce, 16 bytes a 64 KiB chunk.
    let mut out = Vec::with_capacity(plain.len() + 200 * recipients.keys.len() + 64);
    let mut writer = encryptor
        .wrap_output(&mut out)
        .map_err(|e| Error::internal(format!("age: cannot write the header: {e}")))?;
    writer
        .write_all(plain)
        .and_then(|()| writer.finish().map(drop))
        .map_err(|e| Error::internal(format!("age: encryption failed: {e}")))?;
    Ok(out)
}

/// Decrypts an age object with `identities`.
///
/// `what` names the object and `recipients` the keys its metadata says it is
/// encrypted to, both for errors.
///
/// # Errors
/// `Config` if there is no identity or none of them opens the object (the message
/// names the recipients and what to set); `Corrupt` if the bytes are not a valid age
/// object or fail authentication.
pub fn decrypt(
    data: &[u8],
    identities: &Identities,
    recipients: &[String],
    what: &str,
) -> Result<Vec<u8>> {
    let to = recipients.join(", ");
    if identities.is_empty() {
        return Err(Error::config(format!(
            "{what} is encrypted (age) to {to}, and no identity was given to read it: \
             {HOW_TO_GIVE_IDENTITY}"
        )));
    }
    let decryptor = age::Decryptor::new_buffered(data)
        .map_err(|e| Error::corrupt(format!("{what} is not a valid age object: {e}")))?;
    let mut reader =
        match decryptor.decrypt(identities.keys.iter().map(|k| k as &dyn age::Identity)) {
            Ok(r) => r,
            Err(age::DecryptError::NoMatchingKeys) => {
                return Err(Error::config(format!(
                    "{what} is encrypted (age) to {to}; none of the identities given ({}, \
                 public key {}) opens it: give the identity of one of those recipients",
                    identities.source.as_deref().unwrap_or("given"),
                    identities.public_keys().join(", ")
                )));
            }
            Err(e) => {
                return Err(Error::corrupt(format!(
                    "{what} (age, encrypted to {to}) cannot be decrypted: {e}"
                )));
            }
        };
    let mut out = Vec::with_capacity(data.len());
    reader.read_to_end(&mut out).map_err(|e| {
        Error::corrupt(format!(
            "{what} (age, encrypted to {to}) fails decryption: {e}"
        ))
    })?;
    Ok(out)
}
