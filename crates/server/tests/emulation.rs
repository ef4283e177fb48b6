//! The load-testing mode, through the real router and the real fast engine, on Tokio's paused
//! clock (latencies of seconds, rate limits per minute and the 1-hour TTL run in milliseconds).
//! Each test is one of the properties the mode promises.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use common::*;
use futures::future::join_all;
use serde_json::{json, Value};
use tower::ServiceExt;
use upres_server::{app, AppState, EngineKind};

/// A server on the fast Lanczos engine, with these flags, and its router.
fn emulated(flags: &[&str]) -> (Router, AppState) {
    let upscaler = EngineKind::FastLanczos.upscaler(engine());
    let state = AppState::new(&args(flags), upscaler).expect("state");
    (app(state.clone()), state)
}

/// A keys file in a temporary folder (kept alive by the returned guard).
fn keys_file(toml: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.toml");
    std::fs::write(&path, toml).unwrap();
    (dir, path.to_str().unwrap().to_string())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    fn fault(&self) -> Option<&str> {
        self.header("x-upres-fault")
    }
}

async fn send(
    app: &Router,
    method: Method,
    uri: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "upres.test");
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let request = match body {
        Some(body) => request
            .header("content-type", "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    }
}

fn call_body() -> Value {
    json!({"image": data_uri(&png(8, 6, true)), "desired_increase": 2})
}

/// A call of the model: `version` is "v1" (sync) or "v2" (submit).
async fn call(app: &Router, version: &str, key: Option<&str>) -> Answer {
    send(
        app,
        Method::POST,
        &format!("/{version}/{SLUG}"),
        key,
        Some(&call_body()),
    )
    .await
}

async fn v1(app: &Router, key: Option<&str>) -> Answer {
    call(app, "v1", key).await
}

async fn submit(app: &Router, key: Option<&str>) -> Answer {
    call(app, "v2", key).await
}

/// The path of a URL the server returned (the router is called without a host).
fn path_of(url: &Value) -> String {
    let url = url.as_str().expect("a URL");
    url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap()
}

/// Polls a job's status through injected faults until it is terminal; returns its body.
async fn settle(app: &Router, key: Option<&str>, status_path: &str) -> Value {
    for _ in 0..10_000 {
        let answer = send(app, Method::GET, status_path, key, None).await;
        let body = answer.json();
        if answer.fault().is_none() || body["status"] == "FAILED" {
            assert!(
                matches!(
                    answer.status,
                    StatusCode::OK | StatusCode::UNPROCESSABLE_ENTITY
                ),
                "an unlabelled answer is real: {} {body}",
                answer.status
            );
            if matches!(body["status"].as_str(), Some("COMPLETED" | "FAILED")) {
                return body;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("{status_path} never settled");
}

async fn credits(app: &Router, key: &str) -> f64 {
    let answer = send(app, Method::GET, "/v1/get-user-credits", Some(key), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    body["credits"].as_f64().unwrap() + body["free-credits"].as_f64().unwrap()
}

#[tokio::test(start_paused = true)]
async fn every_admitted_job_ends_once_and_stays_until_its_ttl_whatever_the_faults() {
    let (app, state) = emulated(&[
        "--chaos-seed",
        "7",
        "--latency",
        "lognormal",
        "--latency-median",
        "3",
        "--queue-depth",
        "64",
        "--fault",
        "submit:0.3:fail=GPU out of memory",
        "--fault",
        "submit:0.1:502",
        "--fault",
        "status:0.3:500",
        "--fault",
        "status:0.2:delay=2",
        "--fault",
        "result:0.3:504",
        "--fault",
        "output:0.3:502",
    ]);
    let submitted = tokio::time::Instant::now();
    let mut ids = Vec::new();
    let mut rejected = 0;
    for _ in 0..40 {
        let answer = submit(&app, None).await;
        match answer.status {
            StatusCode::OK => ids.push(answer.json()),
            StatusCode::BAD_GATEWAY => {
                assert!(answer.fault().is_some(), "injected errors are labelled");
                assert_eq!(answer.json()["error"], "Bad Gateway");
                rejected += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(rejected > 0 && ids.len() > 20, "{rejected} rejected");
    assert_eq!(
        state.jobs_on_record(),
        ids.len(),
        "a rejected submit makes no job"
    );

    let mut outcomes = HashSet::new();
    for job in &ids {
        let status_path = path_of(&job["status_url"]);
        let terminal = settle(&app, None, &status_path).await;
        outcomes.insert(terminal["status"].as_str().unwrap().to_string());
        // Terminal for good: later polls agree (faults aside).
        for _ in 0..5 {
            assert_eq!(
                settle(&app, None, &status_path).await["status"],
                terminal["status"]
            );
        }
        if terminal["status"] == "FAILED" {
            assert_eq!(terminal["error"], "GPU out of memory");
        } else {
            // The output is there, through the output route's faults.
            let result = settle(&app, None, &path_of(&job["response_url"])).await;
            let output = path_of(&result["output"]);
            let png = loop {
                let answer = send(&app, Method::GET, &output, None, None).await;
                if answer.fault().is_none() {
                    assert_eq!(answer.status, StatusCode::OK);
                    break answer.body;
                }
                assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
            };
            assert_eq!(png_size(&png), (16, 12));
        }
    }
    assert_eq!(outcomes.len(), 2, "both outcomes occur: {outcomes:?}");

    // Every record is still there just before the TTL (1 hour after submission), with the
    // same outcome; all are gone after it.
    // (Polling every job through the faults takes about a minute of the paused clock.)
    let last_call = submitted + Duration::from_secs(3300);
    assert!(
        tokio::time::Instant::now() < last_call,
        "settling took under an hour"
    );
    tokio::time::advance(last_call - tokio::time::Instant::now()).await;
    for job in &ids {
        let status = settle(&app, None, &path_of(&job["status_url"])).await["status"].clone();
        assert!(status == "COMPLETED" || status == "FAILED");
    }
    tokio::time::advance(submitted + Duration::from_secs(3601) - tokio::time::Instant::now()).await;
    until_paused("the purge", || state.jobs_on_record() == 0).await;
    for job in &ids {
        let gone = loop {
            let answer = send(&app, Method::GET, &path_of(&job["status_url"]), None, None).await;
            if answer.fault().is_none() {
                break answer;
            }
        };
        assert_eq!(gone.status, StatusCode::NOT_FOUND);
    }
}

/// Lets background tasks run (paused clock) until `check` holds.
async fn until_paused(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..1_000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

const PLANS: &str = r#"
[[keys]]
key = "sk-limited"
name = "limited"
rpm = 1
burst = 1
credits = 5

[[keys]]
key = "sk-poor"
name = "poor"
credits = 0.5

[[keys]]
key = "sk-forbidden"
name = "forbidden"
credits = 5
models = ["some-other-model"]

[[keys]]
key = "sk-chaos"
name = "chaos"
credits = 5
"#;

#[tokio::test(start_paused = true)]
async fn rejections_at_admission_make_no_job_and_cost_nothing() {
    let (_dir, keys) = keys_file(PLANS);
    let (app, state) = emulated(&[
        "--keys-file",
        &keys,
        "--fault",
        "submit@chaos:1:503",
        "--fault",
        "v1@chaos:1:500",
    ]);
    let error = |a: &Answer| a.json()["error"].as_str().unwrap_or_default().to_string();
    for version in ["v1", "v2"] {
        for (key, status, message) in [
            (None, 401, "Missing Authorization or x-api-key in header"),
            (
                Some("sk-unknown"),
                401,
                "Unauthorized. API key is invalid or may have expired",
            ),
            (Some("sk-forbidden"), 403, "Insufficient permissions"),
            (Some("sk-poor"), 406, "Insufficient Credits"),
        ] {
            let answer = call(&app, version, key).await;
            assert_eq!(
                (answer.status.as_u16(), error(&answer).as_str()),
                (status, message)
            );
            assert!(answer.fault().is_none(), "real refusals are not labelled");
        }
        let poor = call(&app, version, Some("sk-poor")).await;
        assert_eq!(poor.header("x-remaining-credits"), Some("0.5000"));
        let chaos = call(&app, version, Some("sk-chaos")).await;
        assert!(
            matches!(chaos.status.as_u16(), 500 | 503)
                && chaos.fault()
                    == Some(if chaos.status == 500 {
                        "rule-2"
                    } else {
                        "rule-1"
                    })
        );
    }
    // The limited key: one call a minute.
    assert_eq!(
        submit(&app, Some("sk-limited")).await.status,
        StatusCode::OK
    );
    let limited = v1(&app, Some("sk-limited")).await;
    assert_eq!(
        (limited.status, error(&limited).as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "Rate Limited")
    );
    assert_eq!(limited.header("retry-after"), Some("60"));

    assert_eq!(
        state.jobs_on_record(),
        1,
        "only the admitted submit made a job"
    );
    until_paused("the admitted job", || state.jobs_on_record() == 1).await;
    let job_done = async {
        while credits(&app, "sk-limited").await > 4.0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), job_done)
        .await
        .expect("charged once");
    for (key, balance) in [
        ("sk-limited", 4.0),
        ("sk-poor", 0.5),
        ("sk-forbidden", 5.0),
        ("sk-chaos", 5.0),
    ] {
        assert_eq!(credits(&app, key).await, balance, "{key}");
    }
}

#[tokio::test(start_paused = true)]
async fn credits_never_go_below_zero_under_concurrency_and_charges_add_up() {
    let (_dir, keys) = keys_file(
        "[[keys]]\nkey = 'sk-a'\nname = 'a'\ncredits = 10\n\
         [[keys]]\nkey = 'sk-b'\nname = 'b'\ncredits = 7\n\
         [[keys]]\nkey = 'sk-f'\nname = 'f'\ncredits = 3\n",
    );
    // Each call costs 1 + 0.25 x 2 s = 1.5 credits.
    let (app, _state) = emulated(&[
        "--keys-file",
        &keys,
        "--latency",
        "fixed",
        "--latency-median",
        "2",
        "--cost-per-second",
        "0.25",
        "--fault",
        "submit@f:1:fail=boom",
    ]);
    // v1: 10 credits pay for 6 of 50 concurrent calls.
    let answers = join_all((0..50).map(|_| v1(&app, Some("sk-a")))).await;
    let ok: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .collect();
    assert_eq!(ok.len(), 6);
    assert!(answers
        .iter()
        .all(|a| a.status == StatusCode::OK || a.status == StatusCode::NOT_ACCEPTABLE));
    let charged: f64 = ok
        .iter()
        .map(|a| a.header("x-cost").unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(charged, 9.0);
    assert_eq!(credits(&app, "sk-a").await, 10.0 - charged);
    assert!(ok.iter().all(|a| a
        .header("x-remaining-credits")
        .unwrap()
        .parse::<f64>()
        .unwrap()
        >= 0.0));

    // v2: 7 credits pay for 4 of 50 concurrent submits, charged when they complete.
    let answers = join_all((0..50).map(|_| submit(&app, Some("sk-b")))).await;
    let admitted: Vec<Value> = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .map(Answer::json)
        .collect();
    assert_eq!(admitted.len(), 4);
    let mut charged = 0.0;
    let mut balances = Vec::new();
    for job in &admitted {
        let done = settle(&app, Some("sk-b"), &path_of(&job["status_url"])).await;
        assert_eq!(done["status"], "COMPLETED");
        charged += done["metrics"]["cost"].as_f64().unwrap();
        balances.push(done["metrics"]["remaining_credits"].as_f64().unwrap());
    }
    assert_eq!(charged, 6.0);
    assert_eq!(credits(&app, "sk-b").await, 7.0 - charged);
    assert_eq!(balances.iter().copied().fold(f64::INFINITY, f64::min), 1.0);

    // FAILED jobs give their hold back: two fit in 3 credits, both fail, and the balance is whole.
    let jobs = [
        submit(&app, Some("sk-f")).await,
        submit(&app, Some("sk-f")).await,
    ];
    assert_eq!(
        submit(&app, Some("sk-f")).await.status,
        StatusCode::NOT_ACCEPTABLE
    );
    for job in &jobs {
        assert_eq!(job.fault(), Some("rule-1"));
        let failed = settle(&app, Some("sk-f"), &path_of(&job.json()["status_url"])).await;
        assert_eq!(
            (failed["status"].as_str(), failed["error"].as_str()),
            (Some("FAILED"), Some("boom"))
        );
    }
    assert_eq!(credits(&app, "sk-f").await, 3.0);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_bound_calls_and_never_polls() {
    let (_dir, keys) = keys_file("[[keys]]\nkey = 'sk-p'\nname = 'p'\nrpm = 60\nburst = 3\n");
    let (app, _state) = emulated(&["--keys-file", &keys]);
    let mut first = None;
    for remaining in ["2", "1", "0"] {
        let answer = submit(&app, Some("sk-p")).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.header("x-rate-limit-remaining"), Some(remaining));
        let reset = answer.header("x-rate-limit-reset-at-utc").unwrap();
        assert!(reset.len() == 20 && reset.ends_with('Z'), "{reset}");
        first.get_or_insert(answer.json());
    }
    let limited = submit(&app, Some("sk-p")).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.header("retry-after"), Some("1"));
    assert_eq!(limited.header("x-rate-limit-remaining"), Some("0"));
    assert_eq!(
        v1(&app, Some("sk-p")).await.status,
        StatusCode::TOO_MANY_REQUESTS,
        "v1 shares it"
    );
    // Polls are never limited.
    let status = path_of(&first.unwrap()["status_url"]);
    for _ in 0..50 {
        assert_ne!(
            send(&app, Method::GET, &status, Some("sk-p"), None)
                .await
                .status,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
    // A lone retry after Retry-After succeeds.
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(submit(&app, Some("sk-p")).await.status, StatusCode::OK);

    // Two minutes of a call every 250 ms: at most burst + rate x T admitted in any window.
    let mut admitted = Vec::new();
    let start = tokio::time::Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if v1(&app, Some("sk-p")).await.status == StatusCode::OK {
            admitted.push(tokio::time::Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for (i, from) in admitted.iter().enumerate() {
        for (j, to) in admitted.iter().enumerate().skip(i) {
            let allowed = 3.0 + (*to - *from).as_secs_f64();
            assert!((j - i + 1) as f64 <= allowed + 1e-9);
        }
    }
    assert!(
        admitted.len() >= 115,
        "the steady rate is honoured too: {}",
        admitted.len()
    );

    // Other header styles.
    for (style, names) in [
        (
            "ietf",
            ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"],
        ),
        (
            "x-ratelimit",
            [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ],
        ),
    ] {
        let (app, _state) = emulated(&["--keys-file", &keys, "--rate-limit-headers", style]);
        let answer = submit(&app, Some("sk-p")).await;
        assert_eq!(answer.header(names[0]), Some("3"));
        assert_eq!(answer.header(names[1]), Some("2"));
        assert!(answer.header(names[2]).unwrap().parse::<u64>().is_ok());
        assert!(answer.header("x-rate-limit-remaining").is_none());
    }
}

/// The labelled-fault pattern of 1,000 polls of an unknown request.
async fn fault_pattern(seed: &str) -> Vec<bool> {
    let (app, _state) = emulated(&["--chaos-seed", seed, "--fault", "status:0.1:500"]);
    let path = format!("/v2/requests/{}/status", uuid_like());
    let mut pattern = Vec::new();
    for _ in 0..1_000 {
        let answer = send(&app, Method::GET, &path, None, None).await;
        match answer.status {
            StatusCode::NOT_FOUND => {
                assert!(answer.fault().is_none(), "a real 404 is not labelled")
            }
            StatusCode::INTERNAL_SERVER_ERROR => {
                assert_eq!(answer.fault(), Some("rule-1"));
                assert_eq!(answer.json()["error"], "Internal Server Error");
            }
            other => panic!("{other}"),
        }
        pattern.push(answer.status == StatusCode::INTERNAL_SERVER_ERROR);
    }
    pattern
}

fn uuid_like() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}

#[tokio::test(start_paused = true)]
async fn fault_rates_match_and_a_seed_repeats_the_sequence() {
    let pattern = fault_pattern("99").await;
    let fired = pattern.iter().filter(|&&f| f).count() as f64;
    // Binomial(1,000, 0.1): sigma = 9.5.
    assert!((fired - 100.0).abs() <= 4.0 * 9.5, "{fired}");
    assert_eq!(fault_pattern("99").await, pattern);
    assert_ne!(fault_pattern("100").await, pattern);
}

#[tokio::test(start_paused = true)]
async fn latency_and_capacity_shape_the_job_timeline() {
    let (app, _state) = emulated(&[
        "--latency",
        "fixed",
        "--latency-median",
        "10",
        "--capacity",
        "2",
        "--workers",
        "1",
    ]);
    let start = tokio::time::Instant::now();
    let jobs: Vec<String> = join_all((0..3).map(|_| submit(&app, None)))
        .await
        .iter()
        .map(|a| path_of(&a.json()["status_url"]))
        .collect();
    let states = |app: Router, jobs: Vec<String>| async move {
        let mut all = Vec::new();
        for job in &jobs {
            all.push(send(&app, Method::GET, job, None, None).await.json());
        }
        all
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names = |all: &[Value]| -> Vec<String> {
        let mut names: Vec<String> = all
            .iter()
            .map(|j| j["status"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    // Two places: two jobs PROCESSING (one engine worker is enough: the wait does not hold it).
    assert_eq!(
        names(&states(app.clone(), jobs.clone()).await),
        ["PROCESSING", "PROCESSING", "QUEUED"]
    );
    tokio::time::sleep_until(start + Duration::from_millis(10_500)).await;
    let at_10 = states(app.clone(), jobs.clone()).await;
    assert_eq!(names(&at_10), ["COMPLETED", "COMPLETED", "PROCESSING"]);
    for done in at_10.iter().filter(|j| j["status"] == "COMPLETED") {
        assert_eq!(
            done["metrics"]["inference_time"], 10.0,
            "the target processing time"
        );
    }
    tokio::time::sleep_until(start + Duration::from_millis(20_500)).await;
    let at_20 = states(app.clone(), jobs).await;
    assert!(at_20.iter().all(|j| j["status"] == "COMPLETED"));
    let last = at_20
        .iter()
        .find(|j| j["metrics"]["queue_time"].as_f64().unwrap() > 1.0)
        .unwrap();
    assert_eq!(
        (
            last["metrics"]["queue_time"].as_f64(),
            last["metrics"]["inference_time"].as_f64()
        ),
        (Some(10.0), Some(10.0))
    );
}

#[tokio::test(start_paused = true)]
async fn a_latency_past_the_v1_deadline_is_a_504_at_the_deadline_and_costs_nothing() {
    let (_dir, keys) = keys_file("[[keys]]\nkey = 'sk-a'\nname = 'a'\ncredits = 2\n");
    let (app, _state) = emulated(&[
        "--keys-file",
        &keys,
        "--latency",
        "fixed",
        "--latency-median",
        "200",
        "--latency-max",
        "300",
        "--sync-deadline",
        "120",
    ]);
    let start = tokio::time::Instant::now();
    let answer = v1(&app, Some("sk-a")).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(start.elapsed().as_secs(), 120);
    assert_eq!(answer.header("x-upres-emulated-latency"), Some("200.000"));
    assert_eq!(credits(&app, "sk-a").await, 2.0);
    // Its place was given back: the next call is admitted and runs.
    let quick = emulated(&["--latency", "fixed", "--latency-median", "3"]).0;
    let start = tokio::time::Instant::now();
    let answer = v1(&quick, None).await;
    assert_eq!(
        (answer.status, start.elapsed().as_secs()),
        (StatusCode::OK, 3)
    );
    assert_eq!(png_size(&answer.body), (16, 12));
}

#[tokio::test(start_paused = true)]
async fn real_work_counts_towards_the_target_time() {
    // A job whose real work takes 4 s of the (paused) clock, under a 10 s fixed latency.
    let handle = tokio::runtime::Handle::current();
    let slow: std::sync::Arc<dyn upres_server::Upscaler> = std::sync::Arc::new(
        move |input: &[u8], _: &upres_server::JobSpec| -> Result<Vec<u8>, upres_server::JobError> {
            handle.block_on(tokio::time::advance(Duration::from_secs(4)));
            Ok(input.to_vec())
        },
    );
    let state = AppState::new(
        &args(&["--latency", "fixed", "--latency-median", "10"]),
        slow,
    )
    .unwrap();
    let app = app(state);
    let start = tokio::time::Instant::now();
    let answer = send(
        &app,
        Method::POST,
        &format!("/v1/{SLUG}"),
        None,
        Some(&json!({"image": input("work")})),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body.as_slice()),
        (StatusCode::OK, b"work".as_slice())
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "10 s in all, not 4 + 10"
    );
    assert_eq!(answer.header("x-inference-time"), Some("10.000"));
}

#[tokio::test(start_paused = true)]
async fn the_admin_api_changes_the_emulation_at_runtime() {
    let (_dir, keys) = keys_file("[[keys]]\nkey = 'sk-secret-a'\nname = 'alice'\ncredits = 3\n");
    let (closed, _) = emulated(&["--keys-file", &keys]);
    assert_eq!(
        send(&closed, Method::GET, "/admin/stats", None, None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let (app, _state) = emulated(&[
        "--keys-file",
        &keys,
        "--admin-key",
        "adm",
        "--chaos-seed",
        "5",
        "--fault",
        "result:0.5:504",
    ]);
    let admin = |method: Method, path: &'static str, body: Option<Value>| {
        let app = app.clone();
        async move {
            let mut request = Request::builder()
                .method(method)
                .uri(path)
                .header("x-admin-key", "adm");
            if body.is_some() {
                request = request.header("content-type", "application/json");
            }
            let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
            let response = app.oneshot(request.body(body).unwrap()).await.unwrap();
            let status = response.status();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    for key in [None, Some("wrong")] {
        let answer = send(&app, Method::GET, "/admin/emulation", key, None).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "the API key is not the admin key"
        );
    }
    let (status, overview) = admin(Method::GET, "/admin/emulation", None).await;
    assert_eq!(
        (status, overview["seed"].as_u64()),
        (StatusCode::OK, Some(5))
    );
    assert_eq!(overview["rules"][0]["name"], "rule-1");

    // Replace the rules: every v1 call now fails with 502.
    let down = json!([{"name": "down", "route": "v1", "probability": 1, "status": 502}]);
    assert_eq!(
        admin(Method::PUT, "/admin/faults", Some(down)).await.0,
        StatusCode::OK
    );
    let answer = v1(&app, Some("sk-secret-a")).await;
    assert_eq!(
        (answer.status, answer.fault()),
        (StatusCode::BAD_GATEWAY, Some("down"))
    );
    let (status, rules) = admin(
        Method::POST,
        "/admin/faults",
        Some(json!({"route": "status", "probability": 0.5, "delay": 1})),
    )
    .await;
    assert_eq!(
        (status, rules.as_array().unwrap().len()),
        (StatusCode::OK, 2)
    );
    let (status, error) = admin(
        Method::POST,
        "/admin/faults",
        Some(json!({"route": "v1", "probability": 2, "status": 500})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("probability"),
        "{error}"
    );
    assert_eq!(
        admin(Method::DELETE, "/admin/faults/down", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        admin(Method::DELETE, "/admin/faults/down", None).await.0,
        StatusCode::NOT_FOUND
    );

    // Latency: v1 now takes 5 s.
    let (status, latency) = admin(
        Method::PUT,
        "/admin/latency",
        Some(json!({"model": "fixed", "seconds": 5})),
    )
    .await;
    assert_eq!(
        (status, latency["scale"].as_f64()),
        (StatusCode::OK, Some(1.0))
    );
    let start = tokio::time::Instant::now();
    let answer = v1(&app, Some("sk-secret-a")).await;
    assert_eq!(
        (answer.status, start.elapsed().as_secs()),
        (StatusCode::OK, 5)
    );
    assert_eq!(answer.header("x-upres-emulated-latency"), Some("5.000"));
    assert_eq!(answer.header("x-remaining-credits"), Some("2.0000"));

    // Credits.
    let (_, balance) = admin(
        Method::POST,
        "/admin/keys/alice/credits",
        Some(json!({"add": 5})),
    )
    .await;
    assert_eq!(balance["credits"], 7.0);
    let (_, balance) = admin(
        Method::POST,
        "/admin/keys/alice/credits",
        Some(json!({"set": 1})),
    )
    .await;
    assert_eq!(balance["credits"], 1.0);
    assert_eq!(credits(&app, "sk-secret-a").await, 1.0);
    assert_eq!(
        admin(
            Method::POST,
            "/admin/keys/bob/credits",
            Some(json!({"add": 1}))
        )
        .await
        .0,
        StatusCode::NOT_FOUND
    );

    // Stats name the rule and the key's name, never the key.
    let (_, stats) = admin(Method::GET, "/admin/stats", None).await;
    let down = stats["counts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["rule"] == "down")
        .unwrap();
    assert_eq!(
        (
            down["kind"].as_str(),
            down["key"].as_str(),
            down["status"].as_u64(),
            down["count"].as_u64()
        ),
        (Some("injected-status"), Some("alice"), Some(502), Some(1))
    );
    assert!(!stats.to_string().contains("sk-secret"));

    // Reset: startup rules and latency, balance, counters; a new seed.
    let (status, after) = admin(Method::POST, "/admin/reset", Some(json!({"seed": 6}))).await;
    assert_eq!((status, after["seed"].as_u64()), (StatusCode::OK, Some(6)));
    assert_eq!(after["rules"].as_array().unwrap().len(), 1);
    assert_eq!(after["latency"]["model"], "off");
    assert_eq!(credits(&app, "sk-secret-a").await, 3.0);
    assert_eq!(
        admin(Method::GET, "/admin/stats", None).await.1["counts"],
        json!([])
    );
}

#[tokio::test(start_paused = true)]
async fn without_emulation_flags_answers_carry_nothing_new() {
    let state = AppState::new(&args(&[]), EngineKind::Model.upscaler(engine())).unwrap();
    let app = app(state);
    let answer = v1(&app, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(png_size(&answer.body), (16, 12));
    assert_eq!(answer.header("x-remaining-credits"), Some("1000000.0000"));
    assert_eq!(answer.header("x-cost"), Some("0"));
    let names: Vec<&str> = answer.headers.keys().map(|k| k.as_str()).collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("x-upres") && !n.contains("rate")),
        "{names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fast_engine_keeps_the_image_contract_and_says_so() {
    let server = TestServer::start(
        &["--engine", "fast-lanczos"],
        EngineKind::FastLanczos.upscaler(engine()),
    )
    .await;
    until("ready", || {
        matches!(server.state.readiness(), upres_server::Readiness::Ready)
    })
    .await;
    let health = client()
        .get(format!("{}/health", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-upres-engine"], "fast-lanczos");
    assert_eq!(json(health).await.1["engine"], "fast-lanczos");

    let image = data_uri(&png(256, 256, true));
    for (keep, alpha) in [(true, true), (false, false)] {
        let response = post(
            &server.v1(),
            &json!({"image": image, "desired_increase": 4, "preserve_alpha": keep}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-upres-engine"], "fast-lanczos");
        let out = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(
            (out.width(), out.height(), out.color().has_alpha()),
            (1024, 1024, alpha)
        );
    }
    // The same errors as the models, named as the fast engine's answers too.
    let response = post(
        &server.v1(),
        &json!({"image": image, "desired_increase": 3}),
    )
    .await;
    assert_eq!(response.headers()["x-upres-engine"], "fast-lanczos");
    let (status, body) = json(response).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, |m| {
        m.contains("desired_increase")
    });
    let (status, body) = server
        .post_json(&server.v1(), &json!({"image": data_uri(b"not an image")}))
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, |m| {
        m.contains("format")
    });
    // Moderation runs the real classifier.
    let moderated = post(
        &server.v1(),
        &json!({"image": image, "visual_input_content_moderation": true}),
    )
    .await;
    assert_eq!(moderated.status(), StatusCode::OK);
    server.shut_down().await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_request_injects_its_own_fault_only_behind_the_flag() {
    let inject = |app: Router, outcome: &'static str| async move {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/{SLUG}"))
            .header("content-type", "application/json")
            .header("x-upres-inject", outcome)
            .body(Body::from(call_body().to_string()))
            .unwrap();
        let response = app.oneshot(request).await.unwrap();
        let header = |name: &str| response.headers().get(name).cloned();
        (
            response.status(),
            header("x-upres-fault"),
            header("x-remaining-credits"),
        )
    };
    let (status, fault, _) = inject(emulated(&[]).0, "503").await;
    assert_eq!(
        (status, fault),
        (StatusCode::OK, None),
        "ignored by default"
    );
    let allowed = emulated(&["--allow-fault-headers"]).0;
    let (status, fault, _) = inject(allowed.clone(), "503").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(fault.unwrap(), "request-header");
    // An injected 406 reports the balance, as the real one does.
    let (status, _, remaining) = inject(allowed, "406").await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(remaining.unwrap(), "1000000.0000");
}
