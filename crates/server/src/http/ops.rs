//! The operational routes: output files, /health, /metrics and /models.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::v2::find;
use crate::auth::Accounts;
use crate::error::ServerError;
use crate::jobs::{JobBackend, JobState};
use crate::queue::Queue;
use crate::state::{Readiness, Service};
use crate::worker::Workers;

/// GET /outputs/{id}.png: the PNG, with no key (the id is the secret). Fault rules see the key
/// when one is presented, else the caller is `anonymous`.
#[utoipa::path(get, path = "/outputs/{file}", tag = "v2",
    params(("file" = String, Path, description = "<request id>.png")),
    responses((status = 200, description = "The output PNG", content_type = "image/png", body = String),
        (status = 404, description = "Unknown, unfinished or expired", body = super::schema::ErrorBody),
        (status = 503, description = "(with --redis-url) the job store is unreachable; see Retry-After", body = super::schema::ErrorBody)))]
pub(crate) async fn output(
    State(jobs): State<Arc<dyn JobBackend>>,
    Path(file): Path<String>,
) -> Result<Response, ServerError> {
    let not_found = || ServerError::RequestNotFound(file.clone());
    let id = file.strip_suffix(".png").ok_or_else(not_found)?;
    let (_, view) = find(jobs.as_ref(), id).await.map_err(|err| match err {
        ServerError::RequestNotFound(_) => not_found(),
        other => other,
    })?;
    let JobState::Completed(output) = view.state else {
        return Err(not_found());
    };
    let (body, length) = output.into_body().await.map_err(|_| not_found())?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/png".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        body,
    )
        .into_response())
}

/// 200 once the default model is loaded, 503 before (or if it failed to load).
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "Ready", body = super::schema::Health),
        (status = 503, description = "Loading the model, or it failed to load", body = super::schema::ErrorBody)))]
pub(crate) async fn health(
    State(service): State<Arc<Service>>,
    State(jobs): State<Arc<dyn JobBackend>>,
    State(queue): State<Arc<Queue>>,
    State(workers): State<Arc<Workers>>,
) -> Result<Json<Value>, ServerError> {
    jobs.check()
        .await
        .map_err(|err| ServerError::NotReady(err.to_string()))?;
    let model = &service.default_model;
    match service.readiness() {
        Readiness::Ready => {
            let mut body = json!({
                "status": "ok",
                "model": model,
                "workers": workers.workers(),
                "queued": queue.waiting(),
                "outputs_in_memory_bytes": jobs.memory_used(),
                "store": jobs.kind(),
            });
            if let Some(engine) = service.stand_in {
                body["engine"] = json!(engine);
            }
            Ok(Json(body))
        }
        Readiness::Loading => Err(ServerError::NotReady(format!("model {model} is loading"))),
        Readiness::Failed(error) => Err(ServerError::NotReady(format!(
            "model {model} failed to load: {error}"
        ))),
    }
}

/// GET /metrics: Prometheus text format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub(crate) async fn metrics(
    State(queue): State<Arc<Queue>>,
    State(workers): State<Arc<Workers>>,
    State(jobs): State<Arc<dyn JobBackend>>,
) -> Response {
    crate::metrics::set_now(
        queue.waiting(),
        queue.depth(),
        workers.running(),
        workers.capacity(),
        jobs.len(),
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::handle().render(),
    )
        .into_response()
}

/// What GET /models answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ModelList {
    /// The model a request that names none gets.
    default_model: String,
    /// Whether model calls need an `x-api-key`.
    api_key_required: bool,
    /// The load-testing engine's name, when jobs run on one instead of the models.
    engine: Option<&'static str>,
    models: Vec<crate::upscaler::OfferedModel>,
}

/// GET /models: the installed models a request may name in `model`, with their scales.
#[utoipa::path(get, path = "/models", tag = "operations",
    responses((status = 200, description = "The installed models", body = ModelList)))]
pub(crate) async fn models(
    State(service): State<Arc<Service>>,
    State(accounts): State<Arc<Accounts>>,
) -> Json<ModelList> {
    Json(ModelList {
        default_model: service.default_model.clone(),
        api_key_required: !accounts.is_empty(),
        engine: service.stand_in,
        models: service.upscaler.offered_models(),
    })
}
