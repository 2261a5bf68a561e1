//! Webhook notifications: the [`Notifier`] is the vault's [`EventSink`]. It turns each
//! notice into a signed JSON POST per webhook that wants its kind, on a queue of its
//! own per webhook, delivered by one task per webhook in order.
//!
//! - **Never in the way.** [`EventSink::notify`] only queues: the backup, release or
//!   restore that caused the notice is neither slowed nor failed by a webhook.
//! - **Bounded.** Each webhook's queue holds `notify.queue` notices; when it is full the
//!   **oldest** waiting notice is dropped to make room (the newest is the most useful
//!   one) and counted as `dropped`.
//! - **Retries.** A connection error, a timeout, 408, 429 or a 5xx answer is retried up
//!   to `notify.max_attempts` attempts in all, waiting `min_backoff`, then twice as
//!   long each time up to `max_backoff`, plus a random jitter; every attempt carries
//!   the same `Idempotency-Key` (and `id` in the body), so a receiver that got a notice
//!   whose answer was lost can tell the retry apart. Other 4xx answers are not retried.
//! - **Signed.** With `secret_file`, `X-Jetvault-Signature: sha256=<hex>` is the
//!   HMAC-SHA256 of the exact body bytes under the file's content.
//! - **Short-lived processes.** A CLI command waits at most `notify.exit_wait` (5 s by
//!   default) at exit for its notices ([`Notifier::flush`]); what is left is given up
//!   and logged, and the command's exit code is unchanged.

mod payload;
mod streak;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use backon::{BackoffBuilder as _, ExponentialBuilder};
use bytes::Bytes;
use jetvault_core::config::{Config, Secret, WebhookConfig, live_secrets};
use jetvault_core::notify::{EventSink, Notice};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::sync::Notify;

pub use payload::{EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, body, signature};
pub use streak::FailureStreak;

/// The labels of the notification counters: the webhook's name and what happened.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct HookLabels {
    /// The webhook's `name` (default: the URL's host).
    pub hook: String,
    /// `delivered`, `retried` (one per retry), `dropped` (queue full) or `failed`
    /// (given up after the last attempt or a 4xx answer).
    pub outcome: &'static str,
}

/// Notifications by webhook and outcome, for this process (registered by
/// [`crate::metrics::Metrics`] as `jetvault_notifications_total`).
pub fn counters() -> &'static Family<HookLabels, Counter> {
    static COUNTERS: LazyLock<Family<HookLabels, Counter>> = LazyLock::new(Family::default);
    &COUNTERS
}

fn count(hook: &str, outcome: &'static str) {
    counters()
        .get_or_create(&HookLabels {
            hook: hook.to_string(),
            outcome,
        })
        .inc();
}

/// The webhooks of a config, each with its queue and delivery task.
#[derive(Debug)]
pub struct Notifier {
    hooks: Vec<Arc<Hook>>,
    /// Values that must never appear in a payload (tokens, live target secrets, the
    /// webhooks' keys), replaced if an error report ever carried one.
    secrets: Vec<Secret>,
    exit_wait: Duration,
}

#[derive(Debug)]
struct Hook {
    name: String,
    config: WebhookConfig,
    key: Option<Secret>,
    timeout: Duration,
    capacity: usize,
    queue: Mutex<VecDeque<Job>>,
    wake: Notify,
    /// Jobs queued or being delivered.
    pending: AtomicUsize,
}

#[derive(Debug)]
struct Job {
    id: String,
    kind: String,
    body: Bytes,
}

#[derive(Debug, Clone, Copy)]
struct RetryPolicy {
    max_attempts: usize,
    min_backoff: Duration,
    max_backoff: Duration,
}

/// Why one attempt failed, and whether another may succeed.
struct Failure {
    reason: String,
    retryable: bool,
}

impl Notifier {
    /// Starts one delivery task per configured webhook; `None` without webhooks. A
    /// webhook whose `secret_file` can't be read is left out with a warning naming the
    /// file (never sent unsigned). Must run inside the Tokio runtime.
    #[must_use]
    pub fn start(config: &Config) -> Option<Arc<Self>> {
        let notify = &config.notify;
        if notify.webhooks.is_empty() {
            return None;
        }
        let client = match reqwest::Client::builder()
            .user_agent(concat!("jetvault/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook client; no notifications");
                return None;
            }
        };
        let policy = RetryPolicy {
            max_attempts: notify.max_attempts,
            min_backoff: notify.min_backoff,
            max_backoff: notify.max_backoff,
        };
        let mut hooks = Vec::new();
        let mut secrets = known_secrets(config);
        for hc in &notify.webhooks {
            let name = hc.display_name();
            let key = match hc.secret() {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(hook = %name, error = %e.report(),
                        "webhook left out: its secret file can't be read");
                    continue;
                }
            };
            secrets.extend(key.clone());
            let hook = Arc::new(Hook {
                name,
                config: hc.clone(),
                key,
                timeout: hc.timeout.unwrap_or(notify.timeout),
                capacity: notify.queue,
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
                pending: AtomicUsize::new(0),
            });
            tokio::spawn(hook.clone().run(client.clone(), policy));
            hooks.push(hook);
        }
        Some(Arc::new(Self {
            hooks,
            secrets,
            exit_wait: notify.exit_wait,
        }))
    }

    /// How long a CLI command waits at exit (`notify.exit_wait`).
    #[must_use]
    pub fn exit_wait(&self) -> Duration {
        self.exit_wait
    }

    /// Waits until every queued notice is delivered or given up, at most `wait`; logs
    /// what is left undelivered. Never fails.
    pub async fn flush(&self, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            let left: usize = self
                .hooks
                .iter()
                .map(|h| h.pending.load(Ordering::Acquire))
                .sum();
            if left == 0 {
                return;
            }
            if Instant::now() >= deadline {
                tracing::warn!(undelivered = left, wait = ?wait,
                    "notifications not delivered before exit; raise notify.exit_wait to wait \
                     longer");
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl EventSink for Notifier {
    fn notify(&self, notice: Notice) {
        let id = uuid::Uuid::new_v4().to_string();
        for hook in self.hooks.iter().filter(|h| h.config.wants(notice.kind)) {
            let secrets: Vec<String> = self.secrets.iter().map(|s| s.expose().into()).collect();
            let body = body(&notice, &id, hook.config.slack, &secrets);
            hook.push(Job {
                id: id.clone(),
                kind: notice.kind.to_string(),
                body: Bytes::from(body),
            });
        }
    }
}

impl Hook {
    /// Queues a job, dropping the oldest waiting one when full.
    fn push(&self, job: Job) {
        let dropped = {
            let mut q = self
                .queue
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let dropped = if q.len() >= self.capacity {
                q.pop_front()
            } else {
                self.pending.fetch_add(1, Ordering::AcqRel);
                None
            };
            q.push_back(job);
            dropped
        };
        if let Some(old) = dropped {
            count(&self.name, "dropped");
            tracing::warn!(hook = %self.name, id = %old.id, event = %old.kind,
                "notification queue full: the oldest waiting notification is dropped; raise \
                 notify.queue or check the webhook");
        }
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<Job> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop_front()
    }

    /// Delivers the queue in order, forever (the task ends with the runtime).
    async fn run(self: Arc<Self>, client: reqwest::Client, policy: RetryPolicy) {
        loop {
            let Some(job) = self.pop() else {
                self.wake.notified().await;
                continue;
            };
            self.deliver(&client, policy, &job).await;
            self.pending.fetch_sub(1, Ordering::AcqRel);
        }
    }

    async fn deliver(&self, client: &reqwest::Client, policy: RetryPolicy, job: &Job) {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_backoff)
            .with_max_delay(policy.max_backoff)
            .with_max_times(policy.max_attempts.saturating_sub(1))
            .with_jitter()
            .build();
        let mut attempt = 1;
        loop {
            match self.send(client, job).await {
                Ok(()) => {
                    count(&self.name, "delivered");
                    tracing::debug!(hook = %self.name, id = %job.id, event = %job.kind, attempt,
                        "notification delivered");
                    return;
                }
                Err(f) => match backoff.next().filter(|_| f.retryable) {
                    Some(wait) => {
                        count(&self.name, "retried");
                        tracing::debug!(hook = %self.name, id = %job.id, attempt,
                            reason = %f.reason, wait = ?wait, "notification not delivered; retrying");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => {
                        count(&self.name, "failed");
                        tracing::warn!(hook = %self.name, id = %job.id, event = %job.kind,
                            attempt, reason = %f.reason,
                            "notification given up; check the webhook's URL and receiver");
                        return;
                    }
                },
            }
        }
    }

    async fn send(&self, client: &reqwest::Client, job: &Job) -> Result<(), Failure> {
        let mut req = client
            .post(&self.config.url)
            .timeout(self.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(IDEMPOTENCY_HEADER, &job.id)
            .header(EVENT_HEADER, &job.kind);
        if let Some(key) = &self.key {
            req = req.header(
                SIGNATURE_HEADER,
                signature(key.expose().as_bytes(), &job.body),
            );
        }
        let resp = req
            .body(job.body.clone())
            .send()
            .await
            .map_err(|e| Failure {
                // reqwest's error names the URL; a webhook URL may hold a token in its path.
                reason: e.without_url().to_string(),
                retryable: true,
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        Err(Failure {
            reason: format!("the receiver answered {status}"),
            retryable: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                || status == reqwest::StatusCode::REQUEST_TIMEOUT,
        })
    }
}

/// The secrets readable now: server tokens and live targets' secrets.
fn known_secrets(config: &Config) -> Vec<Secret> {
    let tokens = config.server.tokens.iter().filter_map(|t| t.resolve().ok());
    let live = config.envs().flat_map(|(env, e)| {
        e.live
            .as_ref()
            .map(|l| live_secrets(&env, l))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(what, s)| s.read(&what).ok())
    });
    tokens.chain(live).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str, capacity: usize) -> Hook {
        Hook {
            name: name.into(),
            config: WebhookConfig {
                name: Some(name.into()),
                url: "http://127.0.0.1:9/hook".into(),
                events: Vec::new(),
                secret_file: None,
                slack: false,
                timeout: None,
            },
            key: None,
            timeout: Duration::from_secs(1),
            capacity,
            queue: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            pending: AtomicUsize::new(0),
        }
    }

    fn job(id: &str) -> Job {
        Job {
            id: id.into(),
            kind: "snapshot-written".into(),
            body: Bytes::new(),
        }
    }

    fn dropped(name: &str) -> u64 {
        counters()
            .get_or_create(&HookLabels {
                hook: name.into(),
                outcome: "dropped",
            })
            .get()
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let h = hook("full-queue-test", 2);
        for id in ["a", "b", "c", "d"] {
            h.push(job(id));
        }
        let ids: Vec<String> = std::iter::from_fn(|| h.pop()).map(|j| j.id).collect();
        assert_eq!(ids, ["c", "d"]);
        assert_eq!(dropped("full-queue-test"), 2);
        assert_eq!(
            h.pending.load(Ordering::Acquire),
            2,
            "queued, not yet delivered"
        );
    }

    #[tokio::test]
    async fn given_up_notices_are_counted_and_flush_returns() {
        // A port just freed: each attempt fails to connect; with two attempts in all,
        // one retry, then given up.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut config = Config::default();
        config.notify.max_attempts = 2;
        config.notify.min_backoff = Duration::from_millis(10);
        config.notify.max_backoff = Duration::from_millis(20);
        config.notify.webhooks.push(WebhookConfig {
            name: Some("given-up-test".into()),
            url: format!("http://127.0.0.1:{port}/hook"),
            events: Vec::new(),
            secret_file: None,
            slack: false,
            timeout: None,
        });
        let n = Notifier::start(&config).expect("a notifier");
        let env = jetvault_core::EnvRef::parse("crm", "production").unwrap();
        n.notify(Notice::now(
            jetvault_core::notify::NoticeKind::BackupFailed,
            &env,
            jetvault_core::notify::NoticeActor::default(),
            "x",
        ));
        n.flush(Duration::from_secs(30)).await;
        let get = |outcome| {
            counters()
                .get_or_create(&HookLabels {
                    hook: "given-up-test".into(),
                    outcome,
                })
                .get()
        };
        assert_eq!((get("retried"), get("failed"), get("delivered")), (1, 1, 0));
    }
}
