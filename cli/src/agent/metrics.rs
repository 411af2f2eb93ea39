//! The agent's Prometheus metrics.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric the agent exports, labelled by `election`.
pub(crate) struct Metrics {
    registry: Registry,
    /// `elector_is_leader`: 1 while this node's agent holds the election.
    pub(crate) is_leader: Family<Labels, Gauge>,
    /// `elector_epoch`: the epoch of the current leader as this agent last saw it.
    pub(crate) epoch: Family<Labels, Gauge>,
    /// `elector_leader_transitions_total`: leader changes this agent observed.
    pub(crate) transitions: Family<Labels, Counter>,
    /// `elector_renew_latency_seconds`: round trip of a hold renewal, as measured by the
    /// `elector run` that holds it and reported on its next renewal.
    pub(crate) renew_latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// `elector_loss_detection_seconds`: from the last renewal confirmed to the holder to
    /// the moment the leadership ended (resignations excluded): the deadline, for an
    /// expiry, even when the agent notices it at its next lazy check.
    pub(crate) loss_detection: Family<Labels, Histogram, fn() -> Histogram>,
}

impl Metrics {
    /// Registers every metric.
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("elector");
        let is_leader = Family::default();
        let epoch = Family::default();
        let transitions = Family::default();
        let renew_latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        let loss_detection = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "is_leader",
            "1 while this node leads the election",
            is_leader.clone(),
        );
        registry.register(
            "epoch",
            "Epoch of the current leader as last seen",
            epoch.clone(),
        );
        registry.register(
            "leader_transitions",
            "Leader changes observed",
            transitions.clone(),
        );
        registry.register(
            "renew_latency_seconds",
            "Round trip of a leadership renewal between elector run and the agent",
            renew_latency.clone(),
        );
        registry.register(
            "loss_detection_seconds",
            "Time from the last confirmed renewal to the detected end of a leadership",
            loss_detection.clone(),
        );
        Metrics {
            registry,
            is_leader,
            epoch,
            transitions,
            renew_latency,
            loss_detection,
        }
    }

    /// The label set of `election`.
    pub(crate) fn labels(election: &str) -> Labels {
        vec![("election".to_owned(), election.to_owned())]
    }

    /// Drops every series of a forgotten election, so the metrics stay bounded too.
    pub(crate) fn forget(&self, election: &str) {
        let labels = Self::labels(election);
        self.is_leader.remove(&labels);
        self.epoch.remove(&labels);
        self.transitions.remove(&labels);
        self.renew_latency.remove(&labels);
        self.loss_detection.remove(&labels);
    }

    /// The text exposition format.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}
