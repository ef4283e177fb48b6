//! The load-testing mode: emulates what the hosted service does under load — latency, per-key
//! rate limits, credits, permissions and injected faults — reproducibly from a seed, and counts
//! what it did. Everything is off unless a flag turns it on.

mod chance;
pub mod faults;
pub mod latency;
mod plan;
mod route;
pub mod stats;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use dashmap::DashMap;
use serde::Serialize;

use crate::auth::Account;
use crate::error::Invalid;

use chance::Draws;
pub use faults::{JobFault, Outcome, Rule};
pub use latency::Latency;
pub use plan::JobPlan;
pub use route::Route;
pub use stats::{Event, Kind, Stats};

/// A request the gate let through: who calls, on which route, and what the emulation decided
/// for its job. Handlers find it in the request's extensions.
#[derive(Clone)]
pub struct Pass {
    pub caller: Arc<Account>,
    pub route: Route,
    pub plan: JobPlan,
}

/// The rate-limit headers style of calls from rate-limited keys (`--rate-limit-headers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitHeaders {
    Segmind,
    Ietf,
    XRatelimit,
    None,
}

/// A fault rule that fired.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    pub rule: String,
    pub outcome: Outcome,
}

/// What the emulation decided for one request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    pub fault: Option<Fired>,
    /// The job's target processing time (calls only, when a latency model is on).
    pub latency: Option<Duration>,
}

/// The credits a call costs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Cost {
    pub per_call: f64,
    /// Per second of emulated processing time.
    pub per_second: f64,
}

impl Cost {
    pub fn of(self, latency: Option<Duration>) -> f64 {
        self.per_call + self.per_second * latency.map_or(0.0, |l| l.as_secs_f64())
    }
}

/// Rules, latency and the per-key request counts the draws are numbered by.
pub struct Emulation {
    seed: AtomicU64,
    rules: RwLock<Vec<Rule>>,
    latency: RwLock<Latency>,
    startup: (Vec<Rule>, Latency),
    /// Requests so far per (key name, route): the number of the next draw.
    counts: DashMap<(String, Route), u64>,
    /// Suffix of the next unnamed rule's name.
    next_rule: AtomicU64,
    pub stats: Stats,
    pub cost: Cost,
    pub rate_limit_headers: RateLimitHeaders,
    /// Whether requests may inject their own fault (`x-upres-inject`).
    pub fault_headers: bool,
}

/// The header a request injects its own fault with, when `--allow-fault-headers` is on.
pub const INJECT_HEADER: &str = "x-upres-inject";

impl Emulation {
    pub fn new(
        seed: u64,
        rules: Vec<Rule>,
        latency: Latency,
        cost: Cost,
        rate_limit_headers: RateLimitHeaders,
        fault_headers: bool,
    ) -> Result<Self, Invalid> {
        let emulation = Emulation {
            seed: AtomicU64::new(seed),
            rules: RwLock::default(),
            latency: RwLock::new(latency.clone()),
            startup: (Vec::new(), latency),
            counts: DashMap::new(),
            next_rule: AtomicU64::new(1),
            stats: Stats::default(),
            cost,
            rate_limit_headers,
            fault_headers,
        };
        emulation.replace_rules(rules.clone())?;
        let named = emulation.rules();
        Ok(Emulation {
            startup: (named, emulation.latency()),
            ..emulation
        })
    }

    pub fn seed(&self) -> u64 {
        self.seed.load(Ordering::SeqCst)
    }

    pub fn rules(&self) -> Vec<Rule> {
        self.rules.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn latency(&self) -> Latency {
        self.latency
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_latency(&self, latency: Latency) -> Result<(), Invalid> {
        *self.latency.write().unwrap_or_else(|p| p.into_inner()) = latency.validate()?;
        Ok(())
    }

    /// Replaces every rule (unnamed ones get `rule-N`); names must be unique.
    pub fn replace_rules(&self, rules: Vec<Rule>) -> Result<(), Invalid> {
        let rules = self.named(Vec::new(), rules)?;
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = rules;
        Ok(())
    }

    /// Adds rules after the existing ones.
    pub fn append_rules(&self, rules: Vec<Rule>) -> Result<(), Invalid> {
        let mut current = self.rules.write().unwrap_or_else(|p| p.into_inner());
        *current = self.named(current.clone(), rules)?;
        Ok(())
    }

    /// Removes the rule of that name; false when there is none.
    pub fn delete_rule(&self, name: &str) -> bool {
        let mut rules = self.rules.write().unwrap_or_else(|p| p.into_inner());
        let before = rules.len();
        rules.retain(|r| r.name != name);
        rules.len() < before
    }

    fn named(&self, mut into: Vec<Rule>, added: Vec<Rule>) -> Result<Vec<Rule>, Invalid> {
        for mut rule in added {
            if rule.name.is_empty() {
                rule.name = format!("rule-{}", self.next_rule.fetch_add(1, Ordering::SeqCst));
            }
            if into.iter().any(|r| r.name == rule.name) {
                return Err(Invalid(format!(
                    "two fault rules are named '{}'",
                    rule.name
                )));
            }
            into.push(rule);
        }
        Ok(into)
    }

    /// Back to the start: the startup rules and latency, request numbering from zero (so the
    /// same sequence of decisions again), counters cleared; with `seed`, a new seed.
    pub fn reset(&self, seed: Option<u64>) {
        if let Some(seed) = seed {
            self.seed.store(seed, Ordering::SeqCst);
        }
        *self.rules.write().unwrap_or_else(|p| p.into_inner()) = self.startup.0.clone();
        *self.latency.write().unwrap_or_else(|p| p.into_inner()) = self.startup.1.clone();
        self.counts.clear();
        self.stats.clear();
    }

    /// Decides a request's fault and latency from (seed, key name, route, request number).
    /// `injected` is the request's own `x-upres-inject` value, honoured with fault headers on.
    pub fn decide(&self, route: Route, key_name: &str, injected: Option<&str>) -> Decision {
        let number = {
            let mut count = self
                .counts
                .entry((key_name.to_string(), route))
                .or_default();
            *count += 1;
            *count - 1
        };
        let draws = Draws::new(self.seed(), key_name, route, number);
        let from_header = injected
            .filter(|_| self.fault_headers)
            .and_then(|outcome| Rule::parse_flag(&format!("{}:1:{outcome}", route.name())).ok())
            .map(|rule| Fired {
                rule: "request-header".into(),
                outcome: rule.outcome,
            });
        let fault = from_header.or_else(|| {
            self.rules
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .filter(|rule| rule.matches(route, key_name))
                .find(|rule| draws.uniform(chance::stream(&rule.name)) < rule.probability)
                .map(|rule| Fired {
                    rule: rule.name.clone(),
                    outcome: rule.outcome.clone(),
                })
        });
        let latency = if route.is_call() {
            self.latency().sample(draws)
        } else {
            None
        };
        Decision { fault, latency }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emulation(rules: &[&str], seed: u64) -> Emulation {
        Emulation::new(
            seed,
            rules.iter().map(|r| Rule::parse_flag(r).unwrap()).collect(),
            Latency::Off,
            Cost {
                per_call: 1.0,
                per_second: 0.0,
            },
            RateLimitHeaders::Segmind,
            false,
        )
        .unwrap()
    }

    fn faults(emulation: &Emulation, route: Route, key: &str, n: usize) -> Vec<Option<String>> {
        (0..n)
            .map(|_| emulation.decide(route, key, None).fault.map(|f| f.rule))
            .collect()
    }

    #[test]
    fn fault_rates_match_their_probability_and_the_seed_fixes_the_sequence() {
        let chaos = emulation(&["v1:0.1:502"], 1234);
        let fired = faults(&chaos, Route::V1, "alice", 10_000);
        let count = fired.iter().flatten().count() as f64;
        // Binomial(10,000, 0.1): sigma = 30.
        assert!((count - 1000.0).abs() <= 4.0 * 30.0, "{count}");

        let same = emulation(&["v1:0.1:502"], 1234);
        assert_eq!(faults(&same, Route::V1, "alice", 10_000), fired);
        let other_seed = emulation(&["v1:0.1:502"], 1235);
        assert_ne!(faults(&other_seed, Route::V1, "alice", 10_000), fired);
        // Another key's traffic does not shift alice's sequence.
        let busy = emulation(&["v1:0.1:502"], 1234);
        let mut interleaved = Vec::new();
        for _ in 0..10_000 {
            faults(&busy, Route::V1, "bob", 3);
            interleaved.extend(faults(&busy, Route::V1, "alice", 1));
        }
        assert_eq!(interleaved, fired);
        // Reset starts the same sequence again.
        busy.reset(None);
        assert_eq!(faults(&busy, Route::V1, "alice", 100), fired[..100]);
    }

    #[test]
    fn first_matching_rule_wins_and_rules_filter_by_route_and_key() {
        let chaos = emulation(&["status@bob:1:500", "status:1:delay=1", "v1:0:502"], 0);
        let bob = chaos.decide(Route::Status, "bob", None).fault.unwrap();
        assert_eq!(bob.rule, "rule-1");
        let alice = chaos.decide(Route::Status, "alice", None).fault.unwrap();
        assert_eq!(
            (alice.rule.as_str(), alice.outcome),
            ("rule-2", Outcome::Delay(1.0))
        );
        assert_eq!(faults(&chaos, Route::V1, "alice", 1_000), vec![None; 1_000]);
        assert_eq!(
            chaos.decide(Route::Submit, "alice", None),
            Decision::default()
        );
    }

    #[test]
    fn rules_are_named_uniquely_and_can_be_changed() {
        let chaos = emulation(&["v1:1:500"], 0);
        chaos
            .append_rules(vec![Rule::parse_flag("v1:1:502").unwrap()])
            .unwrap();
        assert_eq!(
            chaos
                .rules()
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["rule-1", "rule-2"]
        );
        let mut named = Rule::parse_flag("v1:1:504").unwrap();
        named.name = "rule-2".into();
        assert!(chaos.append_rules(vec![named]).is_err());
        assert!(chaos.delete_rule("rule-1") && !chaos.delete_rule("rule-1"));
        chaos.reset(Some(9));
        assert_eq!((chaos.rules().len(), chaos.seed()), (1, 9));
    }

    #[test]
    fn fault_headers_only_when_allowed() {
        let closed = emulation(&[], 0);
        assert_eq!(closed.decide(Route::V1, "a", Some("503")).fault, None);
        let open = Emulation {
            fault_headers: true,
            ..emulation(&[], 0)
        };
        let fired = open.decide(Route::V1, "a", Some("503")).fault.unwrap();
        assert_eq!(
            fired.outcome,
            Outcome::Status {
                status: 503,
                message: "Service Unavailable".into()
            }
        );
        assert_eq!(open.decide(Route::V1, "a", Some("nonsense")).fault, None);
    }
}
