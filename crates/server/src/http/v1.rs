//! v1: the synchronous call. The job runs while the request waits; the answer is the PNG (or
//! `{"image": base64}` with `"base64": true`) with accounting and timing headers.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde_json::json;

use super::extract::JsonBody;
use crate::admission::Admission;
use crate::auth::{Caller, Charge, UNLIMITED_CREDITS};
use crate::emulation::Pass;
use crate::error::ServerError;
use crate::jobs::Metrics;

/// v1: runs the job and answers with the PNG (or `{"image": base64}` with `"base64": true`).
#[utoipa::path(post, path = "/v1/{slug}", tag = "v1", params(("slug" = String, Path, description = "The model slug: bria-increase-resolution")),
    request_body = super::schema::Parameters,
    responses(
        (status = 200, description = "The upscaled image; with base64: true, JSON",
            content((String = "image/png"), (super::schema::Base64Image = "application/json")),
            headers(("x-request-id" = String), ("x-remaining-credits" = String), ("x-cost" = String),
                ("x-queue-time" = String), ("x-inference-time" = String), ("x-total-time" = String))),
        super::schema::CallErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn run_sync(
    State(admission): State<Arc<Admission>>,
    Extension(pass): Extension<Pass>,
    JsonBody(submission): JsonBody,
) -> Result<Response, ServerError> {
    let base64 = submission.base64;
    let admitted = admission.admit(pass, submission)?;
    let (finished, charge) = admission.run(admitted).await?;
    let headers = timing_headers(&finished.metrics, charge);
    Ok(if base64 {
        let image = base64::engine::general_purpose::STANDARD.encode(&finished.png);
        (headers, Json(json!({ "image": image }))).into_response()
    } else {
        (headers, [(header::CONTENT_TYPE, "image/png")], finished.png).into_response()
    })
}

/// Accounting and timing headers of a v1 answer; `charge` for a key with a balance.
fn timing_headers(metrics: &Metrics, charge: Option<Charge>) -> [(&'static str, String); 7] {
    let secs = |t: Option<f64>| format!("{:.3}", t.unwrap_or_default());
    let ms = |t: Option<f64>| t.unwrap_or_default() * 1000.0;
    let (cost, remaining) = match charge {
        Some(charge) => (format!("{:.4}", charge.cost), charge.remaining),
        None => ("0".to_string(), UNLIMITED_CREDITS),
    };
    [
        ("x-remaining-credits", format!("{remaining:.4}")),
        ("x-cost", cost),
        ("x-generation-time", secs(metrics.inference_time)),
        ("x-queue-time", secs(metrics.queue_time)),
        ("x-inference-time", secs(metrics.inference_time)),
        ("x-total-time", secs(metrics.total_time)),
        (
            "server-timing",
            format!(
                "queue;dur={:.1}, inference;dur={:.1}, total;dur={:.1}",
                ms(metrics.queue_time),
                ms(metrics.inference_time),
                ms(metrics.total_time)
            ),
        ),
    ]
}

/// GET /v1/get-user-credits: the caller's balance, as the hosted account endpoint answers.
#[utoipa::path(get, path = "/v1/get-user-credits", tag = "v1",
    responses((status = 200, description = "The calling key's balance", body = crate::auth::Balance),
        (status = 401, description = "Missing or invalid x-api-key", body = super::schema::ErrorBody)),
    security((), ("api_key" = [])))]
pub(crate) async fn user_credits(Extension(Caller(caller)): Extension<Caller>) -> Response {
    Json(json!(caller.balance())).into_response()
}
