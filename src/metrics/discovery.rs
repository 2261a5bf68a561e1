//! Discovery refreshes and config reloads: registered in the service's [`Metrics`]
//! registry, counted by `serve`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::{Metrics, ResultLabels};

/// Discovery refreshes and config reloads (SIGHUP), registered by
/// [`DiscoveryMetrics::register`]; cheap to clone (the counters are shared).
#[derive(Debug, Clone, Default)]
pub struct DiscoveryMetrics {
    refreshes: Family<ResultLabels, Counter>,
    discovered: Gauge,
    skipped: Gauge,
    reloads: Family<ResultLabels, Counter>,
}

impl DiscoveryMetrics {
    /// Registers the discovery and reload metrics in `metrics`.
    pub fn register(metrics: &mut Metrics) -> Self {
        let m = Self::default();
        let r = &mut metrics.registry;
        r.register(
            "discovery_refreshes",
            "Reads of the discovery source, by result (ok, failed: the last good list is kept)",
            m.refreshes.clone(),
        );
        r.register(
            "discovery_environments",
            "Environments the last good discovery listed (configured ones left out)",
            m.discovered.clone(),
        );
        r.register(
            "discovery_skipped_entries",
            "Entries the last good discovery skipped (bad ids, missing fields, duplicates)",
            m.skipped.clone(),
        );
        r.register(
            "config_reloads",
            "Config file reloads on SIGHUP, by result (ok, failed: the running config is kept)",
            m.reloads.clone(),
        );
        m
    }

    /// Counts a discovery refresh; a good one also sets how many it listed and skipped.
    pub fn record_refresh(&self, found: Option<(usize, usize)>) {
        let result = if found.is_some() { "ok" } else { "failed" };
        self.refreshes.get_or_create(&ResultLabels { result }).inc();
        if let Some((discovered, skipped)) = found {
            self.discovered
                .set(i64::try_from(discovered).unwrap_or(i64::MAX));
            self.skipped.set(i64::try_from(skipped).unwrap_or(i64::MAX));
        }
    }

    /// Counts a config reload.
    pub fn record_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabels { result }).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_discovery_refreshes_and_reloads() {
        let mut m = Metrics::new();
        let d = DiscoveryMetrics::register(&mut m);
        d.record_refresh(Some((1000, 2)));
        d.record_refresh(None);
        d.record_refresh(None);
        d.record_reload(false);
        let text = m.encode();
        for want in [
            "jetvault_discovery_refreshes_total{result=\"ok\"} 1",
            "jetvault_discovery_refreshes_total{result=\"failed\"} 2",
            "jetvault_discovery_environments 1000",
            "jetvault_discovery_skipped_entries 2",
            "jetvault_config_reloads_total{result=\"failed\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
