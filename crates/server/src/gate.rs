//! What a request meets before its body is read, in the load-testing mode: permission (403),
//! the key's rate limit (429), an injected fault (an error, a delay, or a v2 job bound to end
//! FAILED) and the emulated latency; and, once its body is valid, the credits it costs (406).
//! With no emulation flag set every step lets the request through untouched.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use crate::emulation::limiter::{Limiter, Verdict};
use crate::emulation::{
    faults, Account, Event, Hold, JobFault, Kind, Outcome, RateLimitHeaders, Route, INJECT_HEADER,
};
use crate::error::ServerError;
use crate::routes::MODEL_SLUG;
use crate::state::AppState;

/// The account a request was made with (set by the key check).
#[derive(Clone)]
pub struct Caller(pub Arc<Account>);

/// A request let through, with what the emulation decided for it.
pub struct Pass {
    pub caller: Arc<Account>,
    pub route: Route,
    /// Target processing time of the job.
    pub latency: Option<Duration>,
    /// (rule, what it does) when a fault rule fails or crashes the v2 job.
    pub failure: Option<(String, JobFault)>,
    /// Headers every answer to the request carries: rate limit, fault and latency labels.
    pub headers: HeaderMap,
}

/// A refused request: the error and the headers it is answered with.
pub type Refusal = (HeaderMap, ServerError);

impl Pass {
    pub async fn check(
        state: &AppState,
        route: Route,
        caller: Arc<Account>,
        request: &HeaderMap,
    ) -> Result<Pass, Refusal> {
        let emulation = &state.0.emulation;
        let mut headers = HeaderMap::new();
        let event = |kind, status: Option<u16>, rule: Option<&str>| Event {
            route,
            kind,
            status,
            rule: rule.map(str::to_string),
            key: caller.name.clone(),
        };
        if route.is_call() {
            if !caller.may_call(MODEL_SLUG) {
                emulation
                    .stats
                    .count(event(Kind::Forbidden, Some(403), None));
                return Err((headers, ServerError::Forbidden));
            }
            if let Some(limiter) = &caller.limiter {
                let verdict = limiter.check(Instant::now());
                rate_limit_headers(emulation.rate_limit_headers, limiter, verdict, &mut headers);
                if let Verdict::Limited { retry_after, .. } = verdict {
                    emulation
                        .stats
                        .count(event(Kind::RateLimited, Some(429), None));
                    let retry_after = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                    return Err((headers, ServerError::RateLimited { retry_after }));
                }
            }
        }
        let injected = request.get(INJECT_HEADER).and_then(|v| v.to_str().ok());
        let decision = emulation.decide(route, &caller.name, injected);
        let mut failure = None;
        if let Some(fired) = decision.fault {
            headers.insert("x-upres-fault", header_value(&fired.rule));
            match fired.outcome {
                Outcome::Status { status, message } => {
                    emulation.stats.count(event(
                        Kind::InjectedStatus,
                        Some(status),
                        Some(&fired.rule),
                    ));
                    let error = if status == 406 && message == faults::default_message(406) {
                        ServerError::InsufficientCredits {
                            remaining: caller.balance().total(),
                        }
                    } else {
                        ServerError::Injected { status, message }
                    };
                    return Err((headers, error));
                }
                Outcome::Delay(seconds) => {
                    emulation
                        .stats
                        .count(event(Kind::InjectedDelay, None, Some(&fired.rule)));
                    headers.insert("x-upres-emulated-delay", seconds_value(seconds));
                    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
                }
                Outcome::Fail(message) => {
                    emulation
                        .stats
                        .count(event(Kind::InjectedFailure, None, Some(&fired.rule)));
                    failure = Some((fired.rule, JobFault::Fail(message)));
                }
                Outcome::Crash => {
                    emulation
                        .stats
                        .count(event(Kind::InjectedFailure, None, Some(&fired.rule)));
                    failure = Some((fired.rule, JobFault::Crash));
                }
            }
        }
        if let Some(latency) = decision.latency {
            emulation
                .stats
                .count(event(Kind::EmulatedLatency, None, None));
            headers.insert(
                "x-upres-emulated-latency",
                seconds_value(latency.as_secs_f64()),
            );
        }
        Ok(Pass {
            caller,
            route,
            latency: decision.latency,
            failure,
            headers,
        })
    }

    /// Reserves the call's cost from the caller's balance (406 when short). `None` for callers
    /// without a balance.
    pub fn reserve(&self, state: &AppState) -> Result<Option<Hold>, ServerError> {
        let emulation = &state.0.emulation;
        Hold::reserve(&self.caller, emulation.cost.of(self.latency)).map_err(|balance| {
            emulation.stats.count(Event {
                route: self.route,
                kind: Kind::InsufficientCredits,
                status: Some(406),
                rule: None,
                key: self.caller.name.clone(),
            });
            ServerError::InsufficientCredits {
                remaining: balance.total(),
            }
        })
    }
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("unnamed"))
}

fn seconds_value(seconds: f64) -> HeaderValue {
    header_value(&format!("{seconds:.3}"))
}

/// The rate-limit headers of a verdict, in the configured style.
fn rate_limit_headers(
    style: RateLimitHeaders,
    limiter: &Limiter,
    verdict: Verdict,
    headers: &mut HeaderMap,
) {
    let (remaining, reset) = match verdict {
        Verdict::Admitted { remaining, reset } => (remaining, reset),
        Verdict::Limited { reset, .. } => (0, reset),
    };
    let until_reset = reset.saturating_duration_since(Instant::now());
    let reset_unix = (SystemTime::now() + until_reset)
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        .ceil() as u64;
    let burst = limiter.rate().burst;
    let mut set = |name: &'static str, value: String| {
        headers.insert(HeaderName::from_static(name), header_value(&value));
    };
    match style {
        RateLimitHeaders::Segmind => {
            set("x-rate-limit-remaining", remaining.to_string());
            set("x-rate-limit-reset-at-utc", rfc3339(reset_unix));
        }
        RateLimitHeaders::Ietf => {
            set("ratelimit-limit", burst.to_string());
            set("ratelimit-remaining", remaining.to_string());
            set(
                "ratelimit-reset",
                (until_reset.as_secs_f64().ceil() as u64).to_string(),
            );
        }
        RateLimitHeaders::XRatelimit => {
            set("x-ratelimit-limit", burst.to_string());
            set("x-ratelimit-remaining", remaining.to_string());
            set("x-ratelimit-reset", reset_unix.to_string());
        }
        RateLimitHeaders::None => {}
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` of a Unix time (days to civil date as in Howard Hinnant's algorithm).
fn rfc3339(unix: u64) -> String {
    let (days, secs) = ((unix / 86_400) as i64, unix % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_764_106_245), "2025-11-25T21:30:45Z");
        assert_eq!(rfc3339(4_107_542_399), "2100-02-28T23:59:59Z");
    }
}
