//! The `[scheduler]` section: how `serve` runs the schedules when several replicas share
//! one store (tick claims), and how it spreads the ticks of many environments over
//! their interval.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How scheduled backups are run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Whether each (environment, tick) is claimed in the store first, so that N replicas
    /// sharing the store run it once. Off by default: turn it on when more than one
    /// `serve` shares a store.
    pub claims: bool,
    /// How long a claim holds: a replica that claimed a tick and did not report it done
    /// within this time is presumed dead and another replica takes the tick over. Must
    /// exceed the longest backup, and stay below the shortest schedule interval so that
    /// a tick is taken over within its own interval.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a replica writes its heartbeat (and reads the others'); at most a third
    /// of the lease.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// Whether each environment's ticks run at a fixed, per-environment offset into its
    /// interval (a hash of app and environment), so that many environments on one
    /// schedule do not all read their platform at second 0.
    pub spread: bool,
    /// The largest offset `spread` gives (the offset is also below the interval).
    #[serde(with = "humantime_serde")]
    pub spread_max: Duration,
    /// Live requests the scheduler sends at a time toward one host.
    pub per_host_concurrency: usize,
    /// Live requests per second the scheduler sends toward one host; 0: no limit.
    pub per_host_rate: u32,
    /// Limits of their own for some hosts, keyed `host:port` (`platform.example.com:443`).
    pub hosts: BTreeMap<String, HostLimitConfig>,
}

/// One host's limits (`[scheduler.hosts."host:port"]`); a key not set takes the
/// `[scheduler]` default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostLimitConfig {
    /// Requests at a time.
    pub concurrency: Option<usize>,
    /// Requests per second; 0: no limit.
    pub rate: Option<u32>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            claims: false,
            lease: Duration::from_secs(60),
            heartbeat: Duration::from_secs(10),
            spread: true,
            spread_max: Duration::from_secs(300),
            per_host_concurrency: 8,
            per_host_rate: 0,
            hosts: BTreeMap::new(),
        }
    }
}

impl SchedulerConfig {
    /// Checks the durations.
    ///
    /// # Errors
    /// `Config` naming the key.
    pub fn validate(&self) -> Result<()> {
        if self.lease < Duration::from_millis(200) {
            return Err(Error::config(format!(
                "scheduler.lease = {:?}: use at least 200ms (the default is 60s); it must \
                 exceed the longest backup",
                self.lease
            )));
        }
        if self.heartbeat.is_zero() || self.heartbeat * 3 > self.lease {
            return Err(Error::config(format!(
                "scheduler.heartbeat = {:?}: use more than 0 and at most a third of \
                 scheduler.lease ({:?})",
                self.heartbeat, self.lease
            )));
        }
        if self.per_host_concurrency == 0 || self.hosts.values().any(|h| h.concurrency == Some(0)) {
            return Err(Error::config(
                "scheduler.per_host_concurrency (or a host's concurrency) = 0: use at least 1",
            ));
        }
        Ok(())
    }

    /// The limits of live requests per host these settings give.
    #[must_use]
    pub fn host_limits(&self) -> crate::host_limits::HostLimits {
        use crate::host_limits::{HostLimits, Limit};
        let default = Limit {
            concurrency: self.per_host_concurrency,
            rate: NonZeroU32::new(self.per_host_rate),
        };
        let overrides = self
            .hosts
            .iter()
            .map(|(host, h)| {
                let limit = Limit {
                    concurrency: h.concurrency.unwrap_or(default.concurrency),
                    rate: h.rate.map_or(default.rate, NonZeroU32::new),
                };
                (host.to_ascii_lowercase(), limit)
            })
            .collect();
        HostLimits::with_rates(default, overrides)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn defaults_and_keys() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.scheduler, SchedulerConfig::default());
        let c = Config::parse(
            "[scheduler]\nclaims = true\nlease = \"2s\"\nheartbeat = \"500ms\"\nspread = false\n\
             spread_max = \"1m\"\n",
        )
        .unwrap();
        assert!(c.scheduler.claims && !c.scheduler.spread);
        assert_eq!(c.scheduler.lease, Duration::from_secs(2));
        assert_eq!(c.scheduler.heartbeat, Duration::from_millis(500));
        assert_eq!(c.scheduler.spread_max, Duration::from_secs(60));
    }

    #[test]
    fn refuses_a_heartbeat_too_slow_for_the_lease() {
        let e = Config::parse("[scheduler]\nlease = \"1s\"\nheartbeat = \"500ms\"\n").unwrap_err();
        assert!(e.to_string().contains("scheduler.heartbeat"), "{e}");
        let e = Config::parse("[scheduler]\nlease = \"10ms\"\n").unwrap_err();
        assert!(e.to_string().contains("scheduler.lease"), "{e}");
        assert!(Config::parse("[scheduler]\nbogus = 1\n").is_err());
        assert!(Config::parse("[scheduler]\nper_host_concurrency = 0\n").is_err());
    }

    #[test]
    fn host_limits_default_and_per_host() {
        let c = Config::parse(
            "[scheduler]\nper_host_concurrency = 4\nper_host_rate = 20\n\
             [scheduler.hosts.\"slow.example.com:443\"]\nrate = 2\n\
             [scheduler.hosts.\"big.example.com:443\"]\nconcurrency = 32\nrate = 0\n",
        )
        .unwrap();
        let h = &c.scheduler.hosts;
        assert_eq!(h["slow.example.com:443"].rate, Some(2));
        assert_eq!(h["big.example.com:443"].concurrency, Some(32));
        let limits = c.scheduler.host_limits();
        assert_eq!(limits.per_host(), 4);
        let text = format!("{limits:?}");
        assert!(text.contains("rate: Some(20)"), "{text}");
        assert!(text.contains("concurrency: 32, rate: None"), "{text}");
        assert!(text.contains("concurrency: 4, rate: Some(2)"), "{text}");
    }
}
