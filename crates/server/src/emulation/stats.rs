//! Counters of what the emulation did, by route, kind, status, rule and key name (never the
//! key itself). Served by the admin API's /admin/stats.

use dashmap::DashMap;
use serde::Serialize;

use super::route::Route;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A fault rule answered with an error status.
    InjectedStatus,
    /// A fault rule delayed the request.
    InjectedDelay,
    /// A fault rule made a v2 job end FAILED.
    InjectedFailure,
    /// The key's rate limit answered 429.
    RateLimited,
    /// The key's balance was short: 406.
    InsufficientCredits,
    /// The key may not call the model: 403.
    Forbidden,
    /// A job was given an emulated processing time.
    EmulatedLatency,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Event {
    pub route: Route,
    pub kind: Kind,
    /// The HTTP status answered (absent when the request went on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The fault rule, for injected outcomes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub key: String,
}

#[derive(Debug, Default)]
pub struct Stats(DashMap<Event, u64>);

#[derive(Serialize)]
pub struct Count {
    #[serde(flatten)]
    pub event: Event,
    pub count: u64,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::InjectedStatus => "injected-status",
            Kind::InjectedDelay => "injected-delay",
            Kind::InjectedFailure => "injected-failure",
            Kind::RateLimited => "rate-limited",
            Kind::InsufficientCredits => "insufficient-credits",
            Kind::Forbidden => "forbidden",
            Kind::EmulatedLatency => "emulated-latency",
        }
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl Stats {
    /// Counts an event here (for /admin/stats) and in the Prometheus metrics.
    pub fn count(&self, event: Event) {
        metrics::counter!(
            "upres_emulation_events_total",
            "route" => event.route.name(),
            "kind" => event.kind.name(),
            "status" => event.status.map_or(String::new(), |s| s.to_string()),
            "rule" => event.rule.clone().unwrap_or_default(),
            "key" => event.key.clone()
        )
        .increment(1);
        *self.0.entry(event).or_default() += 1;
    }

    /// Every counter, largest first.
    pub fn snapshot(&self) -> Vec<Count> {
        let mut all: Vec<Count> = self
            .0
            .iter()
            .map(|e| Count {
                event: e.key().clone(),
                count: *e.value(),
            })
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.count));
        all
    }

    pub fn clear(&self) {
        self.0.clear();
    }
}
