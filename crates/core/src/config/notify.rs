//! `[notify]`: webhooks told of snapshots, releases, restores, prunes and failures.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::secret::{Secret, read_secret_file};
use crate::error::{Error, Result};
use crate::notify::NoticeKind;

/// Notification settings: the webhooks and how delivery retries.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// The most notices waiting per webhook; when full, the oldest waiting one is
    /// dropped (and counted) to make room.
    pub queue: usize,
    /// After how many scheduled backups of one environment failing in a row a
    /// `scheduled-backup-failing` notice is sent (once per run of failures).
    pub failures_in_a_row: u32,
    /// Attempts per notice, the first included.
    pub max_attempts: usize,
    /// The wait before the first retry; it doubles after each failure, with jitter.
    #[serde(with = "humantime_serde")]
    pub min_backoff: Duration,
    /// The longest wait between two attempts.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How long one delivery may take (a webhook's `timeout` overrides it).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a CLI command waits at exit for its notices to be delivered.
    #[serde(with = "humantime_serde")]
    pub exit_wait: Duration,
    /// The webhooks.
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            queue: 1000,
            failures_in_a_row: 3,
            max_attempts: 8,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            exit_wait: Duration::from_secs(5),
            webhooks: Vec::new(),
        }
    }
}

/// One webhook: a URL that receives a signed JSON POST per notice.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and metrics (default: the URL's host).
    pub name: Option<String>,
    /// Where notices are POSTed (`http` or `https`).
    pub url: String,
    /// The kinds sent (default: all).
    #[serde(default)]
    pub events: Vec<NoticeKind>,
    /// A file holding the HMAC-SHA256 key of the `X-Jetvault-Signature` header.
    pub secret_file: Option<PathBuf>,
    /// Adds a Slack-compatible `text` field.
    #[serde(default)]
    pub slack: bool,
    /// How long one delivery may take (default: `notify.timeout`).
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl WebhookConfig {
    /// The name in logs and metrics: `name`, else the URL's host.
    #[must_use]
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            url::Url::parse(&self.url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .unwrap_or_else(|| "webhook".into())
        })
    }

    /// Whether notices of `kind` go to this webhook.
    #[must_use]
    pub fn wants(&self, kind: NoticeKind) -> bool {
        self.events.is_empty() || self.events.contains(&kind)
    }

    /// Reads the signing key, if the webhook has one.
    ///
    /// # Errors
    /// `Config` naming the webhook and the file (never its content).
    pub fn secret(&self) -> Result<Option<Secret>> {
        self.secret_file
            .as_deref()
            .map(|p| {
                read_secret_file(p)
                    .map_err(|e| e.context(format!("notify.webhooks {:?}", self.display_name())))
            })
            .transpose()
    }
}

impl NotifyConfig {
    /// Checks the values (not the secret files: they may exist only where the service
    /// runs; see [`NotifyConfig::secret_problems`]).
    ///
    /// # Errors
    /// `Config` naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.queue == 0 {
            return Err(Error::config(
                "notify.queue = 0: use at least 1 (1000 is the default)",
            ));
        }
        if self.failures_in_a_row == 0 {
            return Err(Error::config(
                "notify.failures_in_a_row = 0: use at least 1 (3 is the default)",
            ));
        }
        if self.max_attempts == 0 {
            return Err(Error::config(
                "notify.max_attempts = 0: use at least 1 (8 is the default)",
            ));
        }
        if self.min_backoff > self.max_backoff {
            return Err(Error::config(format!(
                "notify.min_backoff ({:?}) is over notify.max_backoff ({:?})",
                self.min_backoff, self.max_backoff
            )));
        }
        // A webhook URL may hold a token (Slack's do): errors name the webhook, not it.
        for (i, hook) in self.webhooks.iter().enumerate() {
            let which = hook.name.as_ref().map_or_else(
                || format!("notify.webhooks[{i}]"),
                |n| format!("notify.webhooks {n:?}"),
            );
            let url = url::Url::parse(&hook.url)
                .map_err(|e| Error::config(format!("{which}: url is not a URL: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(Error::config(format!(
                    "{which}: url must be an http:// or https:// URL"
                )));
            }
        }
        Ok(())
    }

    /// Makes relative secret files relative to `dir`, the config file's directory.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for hook in &mut self.webhooks {
            if let Some(p) = &mut hook.secret_file
                && p.is_relative()
            {
                *p = dir.join(&*p);
            }
        }
    }

    /// One line per webhook secret file that can't be read, naming the webhook and the
    /// file.
    #[must_use]
    pub fn secret_problems(&self) -> Vec<String> {
        self.webhooks
            .iter()
            .filter_map(|h| h.secret().err().map(|e| e.report()))
            .collect()
    }

    /// The webhooks' secret files (for the permission warnings).
    pub fn secret_files(&self) -> impl Iterator<Item = &Path> {
        self.webhooks
            .iter()
            .filter_map(|h| h.secret_file.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::notify::NoticeKind;

    #[test]
    fn webhooks_parse_with_defaults_and_filters() {
        let c = Config::parse(
            "[notify]\nfailures_in_a_row = 2\n\
             [[notify.webhooks]]\nurl = \"https://hooks.example.com/a\"\n\
             events = [\"backup-failed\", \"scheduled-backup-failing\"]\nslack = true\n\
             [[notify.webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/x\"\ntimeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(c.notify.queue, 1000);
        assert_eq!(c.notify.failures_in_a_row, 2);
        let [a, b] = &c.notify.webhooks[..] else {
            panic!("two webhooks expected")
        };
        assert_eq!(a.display_name(), "hooks.example.com");
        assert!(a.slack && a.wants(NoticeKind::BackupFailed));
        assert!(!a.wants(NoticeKind::SnapshotWritten));
        assert_eq!(b.display_name(), "ops");
        assert!(NoticeKind::ALL.iter().all(|k| b.wants(*k)));
        assert_eq!(b.timeout, Some(std::time::Duration::from_secs(2)));
    }

    #[test]
    fn the_reference_config_documents_a_webhook() {
        let c = Config::parse(include_str!("../../../../examples/reference.toml")).unwrap();
        let hook = &c.notify.webhooks[0];
        assert_eq!(hook.display_name(), "ops");
        assert!(hook.wants(NoticeKind::ScheduledBackupFailing));
        assert_eq!(c.notify.failures_in_a_row, 3);
    }

    #[test]
    fn environment_variables_set_notify_keys() {
        let vars = [
            ("JETVAULT_NOTIFY__FAILURES_IN_A_ROW", "5"),
            (
                "JETVAULT_NOTIFY__WEBHOOKS",
                "[{url = \"https://h/x\", events = [\"pruned\"]}]",
            ),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let c: Config = crate::config::layers::Layers::new()
            .env(crate::config::layers::EnvVars::from(vars))
            .extract()
            .unwrap();
        c.validate().unwrap();
        assert_eq!(c.notify.failures_in_a_row, 5);
        assert_eq!(c.notify.webhooks[0].url, "https://h/x");
        assert!(c.notify.webhooks[0].wants(NoticeKind::Pruned));
        assert!(!c.notify.webhooks[0].wants(NoticeKind::Released));
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        for (text, needle) in [
            ("[notify]\nqueue = 0\n", "notify.queue"),
            (
                "[notify]\nfailures_in_a_row = 0\n",
                "notify.failures_in_a_row",
            ),
            (
                "[[notify.webhooks]]\nurl = \"ftp://h/x\"\n",
                "notify.webhooks[0]: url must",
            ),
            (
                "[[notify.webhooks]]\nname = \"ops\"\nurl = \"bad url\"\n",
                "\"ops\": url is not",
            ),
            (
                "[[notify.webhooks]]\nurl = \"http://h/\"\nevents = [\"nope\"]\n",
                "nope",
            ),
            (
                "[notify]\nmin_backoff = \"2m\"\nmax_backoff = \"1m\"\n",
                "min_backoff",
            ),
        ] {
            let e = Config::parse(text).unwrap_err().report();
            assert!(e.contains(needle), "{text}: {e}");
            assert!(!e.contains("ftp://h/x") && !e.contains("bad url"), "{e}");
        }
    }

    #[test]
    fn a_missing_secret_file_is_named_never_a_value() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("present");
        std::fs::write(&present, "hmac-planted-5521\n").unwrap();
        let missing = dir.path().join("missing-key");
        let c = Config::parse(&format!(
            "[[notify.webhooks]]\nname = \"a\"\nurl = \"http://h/a\"\nsecret_file = {present:?}\n\
             [[notify.webhooks]]\nname = \"b\"\nurl = \"http://h/b\"\nsecret_file = {missing:?}\n"
        ))
        .unwrap();
        let problems = c.notify.secret_problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("missing-key") && problems[0].contains("\"b\""));
        assert_eq!(
            c.notify.webhooks[0].secret().unwrap().unwrap().expose(),
            "hmac-planted-5521"
        );
        assert!(!format!("{c:?}").contains("hmac-planted"));
    }
}
