//! Bria's own API for the same model, beside Segmind's: `POST /v2/image/edit/increase_resolution`
//! (with `sync`) and the status service `GET /v2/status/{request_id}`, as its official client
//! (`bria-client`) uses them. A call here is admitted and queued like a Segmind v2 submit, so it
//! shares the job backend, the queue, the limits and the load-testing mode; only the shapes
//! differ: the answers below, and every error as `{"error": {"code", "message", "details"},
//! "request_id"}` with Bria's statuses (`errors`, from the error a response was made from).
//!
//! Job states map as QUEUED and PROCESSING -> IN_PROGRESS, COMPLETED -> COMPLETED with
//! `result.image_url` (the output URL), FAILED -> ERROR with code 422 and the failure as
//! `details`; an unknown or expired id is 404 `{"status": "NOT_FOUND"}`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tokio::time::Instant;
use uuid::Uuid;

use super::extract::BriaBody;
use super::urls::Urls;
use crate::admission::Admission;
use crate::emulation::Pass;
use crate::error::{Failure, ServerError};
use crate::jobs::{JobBackend, JobState, JobView};
use crate::state::Service;

/// How often a `sync` call looks at its job: from 5 ms, doubling, to at most 100 ms.
const FIRST_LOOK: Duration = Duration::from_millis(5);
const LONGEST_LOOK: Duration = Duration::from_millis(100);

/// Bria's increase resolution: with `sync` the answer waits for the result, else it carries the
/// status URL at once (202).
#[utoipa::path(post, path = "/v2/image/edit/increase_resolution", tag = "bria",
    params(("desired_increase" = Option<u32>, Query, description = "2 or 4, when the body has none")),
    request_body = super::schema::BriaParameters,
    responses(
        (status = 200, description = "sync: the result", body = super::schema::BriaCompleted),
        (status = 202, description = "Accepted: poll status_url", body = super::schema::BriaAccepted),
        super::schema::BriaErrors),
    security((), ("api_token" = [])))]
pub(crate) async fn increase_resolution(
    State(admission): State<Arc<Admission>>,
    State(service): State<Arc<Service>>,
    State(jobs): State<Arc<dyn JobBackend>>,
    Extension(pass): Extension<Pass>,
    headers: HeaderMap,
    BriaBody(bria): BriaBody,
) -> Result<Response, ServerError> {
    let admitted = admission.admit(pass, bria.submission)?;
    admitted.check_inline_format()?;
    let id = admission.submit(admitted).await?;
    let urls = Urls::new(&service, &headers, id);
    if !bria.sync {
        let body = json!({ "request_id": id, "status_url": urls.bria_status() });
        return Ok((StatusCode::ACCEPTED, Json(body)).into_response());
    }
    let view = finished(jobs.as_ref(), &id, service.sync_deadline).await?;
    Ok(match view.state {
        JobState::Completed(_) => Json(status_body(&view, &urls)).into_response(),
        _ => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(status_body(&view, &urls)),
        )
            .into_response(),
    })
}

/// Bria's status service: 200 with IN_PROGRESS, COMPLETED or ERROR; 404 NOT_FOUND.
#[utoipa::path(get, path = "/v2/status/{request_id}", tag = "bria",
    params(("request_id" = String, Path, description = "The request id")),
    responses(
        (status = 200, description = "IN_PROGRESS, COMPLETED (with result) or ERROR (with error)", body = super::schema::BriaStatus),
        (status = 404, description = "Unknown or expired id: {\"status\": \"NOT_FOUND\"}")),
    security((), ("api_token" = [])))]
pub(crate) async fn status(
    State(jobs): State<Arc<dyn JobBackend>>,
    State(service): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ServerError> {
    let (uuid, view) = match super::v2::find(jobs.as_ref(), &id).await {
        Err(ServerError::RequestNotFound(_)) => {
            let body = json!({ "status": "NOT_FOUND", "request_id": id });
            return Ok((StatusCode::NOT_FOUND, Json(body)).into_response());
        }
        found => found?,
    };
    Ok(Json(status_body(&view, &Urls::new(&service, &headers, uuid))).into_response())
}

/// The job once COMPLETED or FAILED, within the sync deadline (504 past it; the job goes on).
async fn finished(
    jobs: &dyn JobBackend,
    id: &Uuid,
    deadline: Duration,
) -> Result<JobView, ServerError> {
    let until = Instant::now() + deadline;
    let mut look = FIRST_LOOK;
    loop {
        let view = jobs
            .view(id)
            .await?
            .ok_or_else(|| ServerError::RequestNotFound(id.to_string()))?;
        if matches!(view.state, JobState::Completed(_) | JobState::Failed(_)) {
            return Ok(view);
        }
        if Instant::now() + look > until {
            return Err(ServerError::DeadlineExceeded(deadline));
        }
        tokio::time::sleep(look).await;
        look = (look * 2).min(LONGEST_LOOK);
    }
}

/// A job as Bria's status service shows it.
fn status_body(view: &JobView, urls: &Urls) -> Value {
    let mut body = json!({ "request_id": urls.id });
    match &view.state {
        JobState::Queued | JobState::Processing => body["status"] = json!("IN_PROGRESS"),
        JobState::Completed(_) => {
            body["status"] = json!("COMPLETED");
            body["result"] = json!({ "image_url": urls.output() });
        }
        JobState::Failed(error) => {
            body["status"] = json!("ERROR");
            body["error"] = error_object(StatusCode::UNPROCESSABLE_ENTITY, error);
        }
    }
    body
}

/// Bria's error object: the status, its reason phrase, and what went wrong.
fn error_object(status: StatusCode, details: &str) -> Value {
    json!({
        "code": status.as_u16(),
        "message": status.canonical_reason().unwrap_or("Error"),
        "details": details,
    })
}

/// Middleware on Bria's routes: an error answer (from a handler, the key check or the gate) in
/// Bria's shape and status, its headers (Retry-After, the load-testing labels) kept.
pub(crate) async fn errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut response = next.run(request).await;
    let Some(Failure(error)) = response.extensions_mut().remove::<Failure>() else {
        return response;
    };
    let status = error.bria_status();
    let body = json!({
        "error": error_object(status, &error.bria_message()),
        "request_id": request_id,
    });
    let mut bria = (status, Json(body)).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            bria.headers_mut().insert(name.clone(), value.clone());
        }
    }
    *bria.extensions_mut() = std::mem::take(response.extensions_mut());
    bria
}
