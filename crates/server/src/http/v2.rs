//! v2: the asynchronous calls. A submit is admitted and answered at once (QUEUED, with the
//! URLs to poll); polls read the job from the job backend.

use std::sync::Arc;

use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use uuid::Uuid;

use super::extract::JsonBody;
use super::urls::Urls;
use crate::admission::Admission;
use crate::emulation::Pass;
use crate::error::ServerError;
use crate::jobs::{JobBackend, JobState, JobView};
use crate::state::Service;

/// v2: admits the job, answers at once; the image downloads and the job runs in the background.
#[utoipa::path(post, path = "/v2/{slug}", tag = "v2", params(("slug" = String, Path, description = "The model slug: bria-increase-resolution")),
    request_body = super::schema::Parameters,
    responses((status = 200, description = "Admitted", body = super::schema::Submitted), super::schema::CallErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn submit(
    State(admission): State<Arc<Admission>>,
    State(service): State<Arc<Service>>,
    Extension(pass): Extension<Pass>,
    headers: HeaderMap,
    JsonBody(submission): JsonBody,
) -> Result<Json<Value>, ServerError> {
    let admitted = admission.admit(pass, submission)?;
    let id = admission.submit(admitted).await?;
    let urls = Urls::new(&service, &headers, id);
    Ok(Json(json!({
        "request_id": id,
        "status": "QUEUED",
        "poll_url": urls.poll(),
        "status_url": urls.status(),
        "response_url": urls.response(),
    })))
}

/// GET /v2/requests/{id}/status.
#[utoipa::path(get, path = "/v2/requests/{id}/status", tag = "v2", params(("id" = String, Path, description = "The request id")),
    responses((status = 200, description = "QUEUED, PROCESSING or COMPLETED", body = super::schema::JobStatus), super::schema::PollErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn status(
    State(jobs): State<Arc<dyn JobBackend>>,
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    poll(jobs.as_ref(), &service, &headers, &id, false).await
}

/// GET /v2/requests/{id} and /v1/requests/{id} (the poll_url).
#[utoipa::path(get, path = "/v2/requests/{id}", tag = "v2", params(("id" = String, Path, description = "The request id")),
    responses((status = 200, description = "The status; once COMPLETED with the output URL", body = super::schema::JobStatus), super::schema::PollErrors),
    security((), ("api_key" = [])))]
pub(crate) async fn result(
    State(jobs): State<Arc<dyn JobBackend>>,
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    poll(jobs.as_ref(), &service, &headers, &id, true).await
}

/// A status poll, or with `full` a result poll.
async fn poll(
    jobs: &dyn JobBackend,
    service: &Service,
    headers: &HeaderMap,
    id: &str,
    full: bool,
) -> Result<Response, ServerError> {
    let (id, view) = find(jobs, id).await?;
    Ok(job_response(&view, &Urls::new(service, headers, id), full))
}

/// The job of a request id, unless unknown or expired (404).
pub(crate) async fn find(jobs: &dyn JobBackend, id: &str) -> Result<(Uuid, JobView), ServerError> {
    let not_found = || ServerError::RequestNotFound(id.to_string());
    let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
    let view = jobs.view(&uuid).await?.ok_or_else(not_found)?;
    Ok((uuid, view))
}

/// A job's status body; with `full`, a completed job carries its `output` URL. FAILED is 422.
fn job_response(view: &JobView, urls: &Urls, full: bool) -> Response {
    let label = view
        .fault
        .as_deref()
        .and_then(|rule| HeaderValue::from_str(rule).ok())
        .map(|rule| [(HeaderName::from_static("x-upres-fault"), rule)]);
    let mut body = json!({
        "status": view.state.name(),
        "request_id": urls.id,
        "metrics": view.metrics,
    });
    match (&view.state, full) {
        (JobState::Failed(error), _) => {
            body["error"] = json!(error);
            return (StatusCode::UNPROCESSABLE_ENTITY, label, Json(body)).into_response();
        }
        (JobState::Completed(_), true) => {
            body["output"] = json!(urls.output());
            body["error"] = Value::Null;
        }
        _ => {
            body["status_url"] = json!(urls.status());
            body["response_url"] = json!(urls.response());
        }
    }
    Json(body).into_response()
}
