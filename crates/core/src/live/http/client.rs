//! One HTTP client per timeout for every HTTP live target in the process.
//!
//! Building a `reqwest::Client` loads and parses the TLS root store, about 50 ms, which at
//! 10,000 environments made `serve` spend minutes building targets at start. A client is
//! a handle to a shared pool, so targets with the same timeout share one: this also
//! lets environments on the same platform host reuse its connections.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{Error, Result};

static CLIENTS: LazyLock<Mutex<HashMap<Duration, reqwest::Client>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The process's client for requests that may take `timeout` (connecting: at most 10 s).
///
/// # Errors
/// `Internal` if the client cannot be built (no TLS backend).
pub(super) fn shared(timeout: Duration) -> Result<reqwest::Client> {
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(c) = clients.get(&timeout) {
        return Ok(c.clone());
    }
    let client = reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("jetvault/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
    clients.insert(timeout, client.clone());
    Ok(client)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LiveConfig;
    use crate::id::EnvRef;

    fn timeouts() -> usize {
        CLIENTS.lock().unwrap().len()
    }

    #[test]
    fn targets_with_one_timeout_share_one_client() {
        let config: LiveConfig = toml::from_str(
            "kind = \"http\"\nurl = \"http://127.0.0.1:9/config\"\ntimeout = \"4321ms\"",
        )
        .unwrap();
        let before = timeouts();
        let started = std::time::Instant::now();
        for n in 0..200 {
            let env = EnvRef::parse("crm", &format!("e{n}")).unwrap();
            super::super::HttpTarget::from_config(&env, &config).unwrap();
        }
        eprintln!("200 targets built in {:?}", started.elapsed());
        assert_eq!(
            timeouts(),
            before + 1,
            "one client for the new timeout, not one per target"
        );
    }
}
