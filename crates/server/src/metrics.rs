//! Prometheus metrics (the `metrics` facade and its Prometheus exporter, as
//! text-embeddings-inference does), served at `GET /metrics`. Labels only ever hold bounded
//! values: route templates (never a raw path, id or URL), methods, statuses, model ids and
//! scales that passed validation, failure reasons, and key and rule names (never a key).

use std::sync::OnceLock;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Seconds buckets: from a fast-engine call (ms) to a large model job (minutes).
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 60.0,
    120.0, 300.0,
];
const MEGAPIXELS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0];

/// The process's recorder (installed once; every server in the process shares it).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Suffix("_megapixels".into()), MEGAPIXELS)
            })
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); then this
        // handle renders nothing, which /metrics shows honestly as an empty page.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
        }
        describe();
        gauge!("upres_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        handle
    })
}

fn describe() {
    describe_gauge!("upres_build_info", "Always 1; the version is a label.");
    describe_counter!(
        "upres_http_requests_total",
        "HTTP requests by route template, method and status."
    );
    describe_histogram!(
        "upres_http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request duration by route template and method."
    );
    describe_gauge!("upres_queue_waiting", "Jobs admitted and not started.");
    describe_gauge!("upres_queue_depth", "Jobs that may wait (beyond it: 429).");
    describe_gauge!("upres_jobs_running", "Jobs PROCESSING now.");
    describe_gauge!(
        "upres_jobs_capacity",
        "Jobs that may be PROCESSING at once."
    );
    describe_gauge!(
        "upres_jobs_on_record",
        "v2 jobs on record in this process's memory (submitted, not expired); 0 with --redis-url."
    );
    describe_counter!(
        "upres_jobs_total",
        "Finished jobs by API (v1, v2) and outcome (completed, failed, expired: a v2 job whose TTL ran out before it started)."
    );
    describe_histogram!(
        "upres_job_queue_seconds",
        Unit::Seconds,
        "Time from admission to start (image download included)."
    );
    describe_histogram!(
        "upres_job_seconds",
        Unit::Seconds,
        "Time from start to outcome (emulated latency included)."
    );
    describe_histogram!(
        "upres_inference_seconds",
        Unit::Seconds,
        "Engine time of a job (decode to PNG) by model and scale."
    );
    describe_histogram!(
        "upres_input_megapixels",
        "Decoded input size of jobs, in megapixels."
    );
    describe_histogram!(
        "upres_fetch_seconds",
        Unit::Seconds,
        "Image URL downloads, successful or not."
    );
    describe_counter!(
        "upres_fetch_failures_total",
        "Failed image URL downloads by reason."
    );
    describe_counter!(
        "upres_emulation_events_total",
        "Load-testing mode: injected faults, rate-limit, credit and permission refusals, emulated latencies; by route, kind, status, rule and key name."
    );
}

/// Sets the gauges that describe the present (called when /metrics is scraped).
pub fn set_now(waiting: usize, depth: usize, running: usize, capacity: u32, on_record: usize) {
    gauge!("upres_queue_waiting").set(waiting as f64);
    gauge!("upres_queue_depth").set(depth as f64);
    gauge!("upres_jobs_running").set(running as f64);
    gauge!("upres_jobs_capacity").set(f64::from(capacity));
    gauge!("upres_jobs_on_record").set(on_record as f64);
}

/// Counts a finished job.
pub fn job_finished(api: &'static str, completed: bool) {
    count_job(api, if completed { "completed" } else { "failed" });
}

/// Counts a v2 job whose TTL ran out while it was queued: it never runs.
pub fn job_expired() {
    count_job("v2", "expired");
}

fn count_job(api: &'static str, outcome: &'static str) {
    counter!("upres_jobs_total", "api" => api, "outcome" => outcome).increment(1);
}
