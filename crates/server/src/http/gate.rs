//! The gate of the load-testing mode, as middleware on the model routes, polls and outputs:
//! what a request meets after its key check and before its body is read: permission (403), the
//! key's rate limit (429), an injected fault (an error, a delay, or a v2 job bound to end
//! FAILED) and the emulated latency. It puts the [`Pass`] into the request's extensions and its
//! headers (rate limit, fault and latency labels) on every answer to the request. With no
//! emulation flag set every request passes untouched.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;
use upres_request::MODEL_SLUG;

use crate::auth::limiter::{Limiter, Verdict};
use crate::auth::Caller;
use crate::emulation::{
    faults, Emulation, Event, JobFault, JobPlan, Kind, Outcome, Pass, RateLimitHeaders, Route,
    INJECT_HEADER,
};
use crate::error::ServerError;

/// The gate of one route.
#[derive(Clone)]
pub struct Gate {
    pub emulation: Arc<Emulation>,
    pub route: Route,
}

/// Middleware: lets the request through with its [`Pass`], or refuses it.
pub async fn gate(State(gate): State<Gate>, mut request: Request, next: Next) -> Response {
    let Some(Caller(caller)) = request.extensions().get::<Caller>().cloned() else {
        return ServerError::MissingKey.into_response();
    };
    let mut headers = HeaderMap::new();
    let decided = decide(&gate, caller, request.headers(), &mut headers).await;
    let mut response = match decided {
        Ok(pass) => {
            request.extensions_mut().insert(pass);
            next.run(request).await
        }
        Err(refusal) => refusal.into_response(),
    };
    response.headers_mut().extend(headers);
    response
}

/// What the emulation decides for a request; `headers` gets what every answer carries.
async fn decide(
    gate: &Gate,
    caller: Arc<crate::auth::Account>,
    request: &HeaderMap,
    headers: &mut HeaderMap,
) -> Result<Pass, ServerError> {
    let Gate { emulation, route } = gate;
    let route = *route;
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
            return Err(ServerError::Forbidden);
        }
        if let Some(limiter) = &caller.limiter {
            let verdict = limiter.check(Instant::now());
            rate_limit_headers(emulation.rate_limit_headers, limiter, verdict, headers);
            if let Verdict::Limited { retry_after, .. } = verdict {
                emulation
                    .stats
                    .count(event(Kind::RateLimited, Some(429), None));
                let retry_after = retry_after.as_secs_f64().ceil().max(1.0) as u64;
                return Err(ServerError::RateLimited { retry_after });
            }
        }
    }
    let injected = request.get(INJECT_HEADER).and_then(|v| v.to_str().ok());
    let decision = emulation.decide(route, &caller.name, injected);
    let mut fault = None;
    if let Some(fired) = decision.fault {
        headers.insert("x-upres-fault", header_value(&fired.rule));
        match fired.outcome {
            Outcome::Status { status, message } => {
                emulation
                    .stats
                    .count(event(Kind::InjectedStatus, Some(status), Some(&fired.rule)));
                return Err(
                    if status == 406 && message == faults::default_message(406) {
                        ServerError::InsufficientCredits {
                            remaining: caller.balance().total(),
                        }
                    } else {
                        ServerError::Injected { status, message }
                    },
                );
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
                fault = Some((fired.rule, JobFault::Fail(message)));
            }
            Outcome::Crash => {
                emulation
                    .stats
                    .count(event(Kind::InjectedFailure, None, Some(&fired.rule)));
                fault = Some((fired.rule, JobFault::Crash));
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
        plan: JobPlan {
            latency: decision.latency,
            fault,
        },
    })
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
