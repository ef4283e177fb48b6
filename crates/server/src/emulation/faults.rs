//! Fault rules (as LocalStack's chaos API and Envoy's fault filter): on a route, optionally for
//! one key name, with a probability, one outcome: an HTTP error with the hosted service's body,
//! a v2 job that ends FAILED with a message, a v2 job that crashes the replica that runs it, or
//! an added delay. The first rule that matches and fires wins.
//!
//! On the command line a rule is `ROUTE[@KEY]:PROBABILITY:OUTCOME`, the outcome being a status
//! (`502`), `fail=MESSAGE`, `crash` or `delay=SECONDS`: `v1:0.1:502`, `submit@free-tier:0.05:fail=GPU out
//! of memory`, `status:0.2:delay=3`. In files and the admin API it is a JSON/TOML object:
//! `{"name": "flaky", "route": "v1", "key": "free-tier", "probability": 0.1, "status": 502}`
//! (`"message"` overrides the body text; `"fail": "..."`, `"crash": true` or `"delay": 3` for the
//! other outcomes).

use serde::{Deserialize, Serialize};

use super::route::Route;
use crate::error::Invalid;

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answer this status with `{"error": message}`.
    Status { status: u16, message: String },
    /// (v2 submits) admit the job, then end it FAILED with this error.
    Fail(String),
    /// (v2 submits) admit the job; the process that runs it aborts, every time it is run (a
    /// replica dying mid-job, for testing recovery).
    Crash,
    /// Wait this long, then carry on.
    Delay(f64),
}

/// What a fired `fail` or `crash` rule does to the v2 job it admitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobFault {
    Fail(String),
    Crash,
}

/// One rule, as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleFields", into = "RuleFields")]
pub struct Rule {
    pub name: String,
    pub route: Route,
    pub key: Option<String>,
    pub probability: f64,
    pub outcome: Outcome,
}

/// The flat form of a rule in JSON and TOML.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    name: String,
    route: Route,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fail: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    crash: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay: Option<f64>,
}

impl TryFrom<RuleFields> for Rule {
    type Error = Invalid;

    fn try_from(f: RuleFields) -> Result<Self, Invalid> {
        let submit_only = || -> Result<(), Invalid> {
            match f.route {
                Route::Submit | Route::Bria | Route::Any => Ok(()),
                _ => Err("fail and crash apply to jobs: use route submit, bria (or any)".into()),
            }
        };
        let outcome = match (f.status, f.fail.clone(), f.delay, f.crash) {
            (None, None, None, true) if f.message.is_none() => {
                submit_only()?;
                Outcome::Crash
            }
            (Some(status), None, None, false) => Outcome::Status {
                status: error_status(status)?,
                message: f.message.unwrap_or_else(|| default_message(status)),
            },
            (None, Some(message), None, false) if f.message.is_none() => {
                if message.trim().is_empty() {
                    return Err("fail needs a non-empty message".into());
                }
                submit_only()?;
                Outcome::Fail(message)
            }
            (None, None, Some(delay), false) if f.message.is_none() => {
                if !(delay.is_finite() && (0.0..=3600.0).contains(&delay)) {
                    return Err("delay must be between 0 and 3600 seconds".into());
                }
                Outcome::Delay(delay)
            }
            _ => return Err(
                "a rule has exactly one outcome: status (with an optional message), fail, crash or delay"
                    .into(),
            ),
        };
        if !(0.0..=1.0).contains(&f.probability) {
            return Err(Invalid(format!(
                "probability {} is not between 0 and 1",
                f.probability
            )));
        }
        Ok(Rule {
            name: f.name,
            route: f.route,
            key: f.key,
            probability: f.probability,
            outcome,
        })
    }
}

impl From<Rule> for RuleFields {
    fn from(rule: Rule) -> Self {
        let mut fields = RuleFields {
            name: rule.name,
            route: rule.route,
            key: rule.key,
            probability: rule.probability,
            status: None,
            message: None,
            fail: None,
            crash: false,
            delay: None,
        };
        match rule.outcome {
            Outcome::Status { status, message } => {
                fields.status = Some(status);
                fields.message = Some(message);
            }
            Outcome::Fail(message) => fields.fail = Some(message),
            Outcome::Crash => fields.crash = true,
            Outcome::Delay(seconds) => fields.delay = Some(seconds),
        }
        fields
    }
}

impl Rule {
    /// Parses `ROUTE[@KEY]:PROBABILITY:OUTCOME` (see the module documentation).
    pub fn parse_flag(spec: &str) -> Result<Self, Invalid> {
        let bad = |why: &str| Invalid(format!("fault rule '{spec}': {why}"));
        let mut parts = spec.splitn(3, ':');
        let (Some(target), Some(probability), Some(outcome)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected ROUTE[@KEY]:PROBABILITY:OUTCOME"));
        };
        let (route, key) = match target.split_once('@') {
            Some((route, key)) => (route, Some(key.to_string())),
            None => (target, None),
        };
        let mut fields = RuleFields {
            name: String::new(),
            route: Route::parse(route.trim()).ok_or_else(|| bad("unknown route"))?,
            key,
            probability: probability
                .trim()
                .parse()
                .map_err(|_| bad("the probability is not a number"))?,
            status: None,
            message: None,
            fail: None,
            crash: false,
            delay: None,
        };
        let outcome = outcome.trim();
        if outcome == "crash" {
            fields.crash = true;
        } else if let Some(message) = outcome.strip_prefix("fail=") {
            fields.fail = Some(message.to_string());
        } else if let Some(seconds) = outcome.strip_prefix("delay=") {
            fields.delay = Some(
                seconds
                    .parse()
                    .map_err(|_| bad("the delay is not a number"))?,
            );
        } else {
            fields.status = Some(outcome.parse().map_err(|_| {
                bad("the outcome is a status, fail=MESSAGE, crash or delay=SECONDS")
            })?);
        }
        Rule::try_from(fields).map_err(|e| bad(&e.0))
    }

    /// Whether the rule applies to this request.
    pub fn matches(&self, route: Route, key_name: &str) -> bool {
        let route_matches = self.route == route
            || (self.route == Route::Any
                && (route == Route::Submit
                    || !matches!(self.outcome, Outcome::Fail(_) | Outcome::Crash)));
        route_matches && self.key.as_deref().is_none_or(|k| k == key_name)
    }
}

/// A 4xx or 5xx status.
fn error_status(status: u16) -> Result<u16, Invalid> {
    if (400..=599).contains(&status) {
        Ok(status)
    } else {
        Err(Invalid(format!(
            "status {status} is not an error status (400-599)"
        )))
    }
}

/// The texts the emulated hosted errors use (contract, section 4a).
pub fn default_message(status: u16) -> String {
    match status {
        403 => "Insufficient permissions",
        406 => "Insufficient Credits",
        429 => "Rate Limited",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        504 => "Timeout",
        other => {
            return axum::http::StatusCode::from_u16(other)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Injected error")
                .to_string()
        }
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_syntax() {
        let rule = Rule::parse_flag("v1:0.1:502").unwrap();
        assert_eq!(
            (
                rule.route,
                rule.key.as_deref(),
                rule.probability,
                rule.outcome
            ),
            (
                Route::V1,
                None,
                0.1,
                Outcome::Status {
                    status: 502,
                    message: "Bad Gateway".into()
                }
            )
        );
        let rule = Rule::parse_flag("submit@free-tier:0.5:fail=GPU: out of memory").unwrap();
        assert_eq!(rule.key.as_deref(), Some("free-tier"));
        assert_eq!(rule.outcome, Outcome::Fail("GPU: out of memory".into()));
        assert_eq!(
            Rule::parse_flag("status:1:delay=2.5").unwrap().outcome,
            Outcome::Delay(2.5)
        );
        assert_eq!(
            Rule::parse_flag("submit:0.01:crash").unwrap().outcome,
            Outcome::Crash
        );
        for bad in [
            "v1:0.1",
            "v3:0.1:502",
            "v1:lots:502",
            "v1:1.5:502",
            "v1:0.1:302",
            "v1:0.1:fail=boom",
            "submit:0.1:fail=",
            "status:0.1:delay=-1",
            "v1:1:crash",
        ] {
            assert!(Rule::parse_flag(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_form_round_trips_and_matching() {
        let rule: Rule = serde_json::from_str(
            r#"{"name": "slow", "route": "any", "probability": 1, "delay": 2}"#,
        )
        .unwrap();
        assert!(rule.matches(Route::Status, "anyone") && rule.matches(Route::Output, "x"));
        let back: Rule = serde_json::from_value(serde_json::to_value(&rule).unwrap()).unwrap();
        assert_eq!(back, rule);
        let fail: Rule =
            serde_json::from_str(r#"{"route": "any", "key": "a", "probability": 1, "fail": "x"}"#)
                .unwrap();
        assert!(fail.matches(Route::Submit, "a"));
        assert!(!fail.matches(Route::Submit, "b") && !fail.matches(Route::V1, "a"));
        let crash: Rule =
            serde_json::from_str(r#"{"route": "any", "probability": 1, "crash": true}"#).unwrap();
        assert!(crash.matches(Route::Submit, "a") && !crash.matches(Route::V1, "a"));
        assert_eq!(serde_json::to_value(&crash).unwrap()["crash"], true);
        assert!(serde_json::from_str::<Rule>(
            r#"{"route": "submit", "probability": 1, "crash": true, "fail": "x"}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Rule>(
            r#"{"route": "v1", "probability": 1, "status": 500, "delay": 1}"#
        )
        .is_err());
    }
}
