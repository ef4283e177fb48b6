//! The OpenAPI document: what the handlers' annotations (utoipa) do not say, and where it is
//! served. The router (utoipa-axum's `OpenApiRouter`, in `mod.rs`) collects the paths; it is served at
//! `/api-doc/openapi.json` with a Swagger UI at `/docs` whose assets are built into the binary.
//! A copy is committed as `docs/openapi.json`; a test fails when it goes stale.

use utoipa::openapi::path::PathItem;
use utoipa::OpenApi;

use super::schema::{Base64Image, ErrorBody, FaultRule, Health, JobStatus, Parameters, Submitted};
use crate::auth::Balance;
use crate::emulation::Latency;
use crate::jobs::Metrics;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "upres",
        description = "A local, drop-in reimplementation of the Segmind serverless API for the model bria-increase-resolution: v1 (synchronous) and v2 (asynchronous) image super-resolution, x2 or x4. Send the key as x-api-key (or Authorization: Bearer) when the server has keys.",
        license(name = "MIT")
    ),
    components(schemas(Parameters, Submitted, JobStatus, ErrorBody, Health, Base64Image, Metrics, Balance, Latency, FaultRule)),
    tags(
        (name = "v1", description = "Segmind's synchronous API"),
        (name = "v2", description = "Segmind's asynchronous API"),
        (name = "bria", description = "Bria's own API for the same model (api_token)"),
        (name = "operations", description = "Health, metrics and the installed models"),
        (name = "admin", description = "The load-testing mode's admin API (x-admin-key)"),
    ),
    modifiers(&ApiKey)
)]
pub struct ApiDoc;

/// `/api-doc/openapi.json` and the Swagger UI at `/docs`, its assets built into the binary and
/// its validator badge off, so the page makes no outside request.
pub fn docs<S: Clone + Send + Sync + 'static>(doc: utoipa::openapi::OpenApi) -> axum::Router<S> {
    utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/api-doc/openapi.json", doc)
        .config(utoipa_swagger_ui::Config::default().validator_url("none"))
        .into()
}

/// The document with the routes served by the same handler as a documented one: `/{slug}` (v1
/// without the prefix) and `/v1/requests/{id}` (the legacy poll_url).
pub fn with_aliases(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for (alias, of, suffix) in [
        ("/{slug}", "/v1/{slug}", "_unprefixed"),
        ("/v1/requests/{id}", "/v2/requests/{id}", "_legacy"),
    ] {
        if let Some(item) = doc.paths.paths.get(of).cloned() {
            doc.paths
                .paths
                .insert(alias.to_string(), renamed(item, suffix));
        }
    }
    doc
}

fn renamed(mut item: PathItem, suffix: &str) -> PathItem {
    for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
        operation.operation_id = operation.operation_id.take().map(|id| id + suffix);
    }
    item
}

/// The x-api-key scheme (and the admin API's x-admin-key).
struct ApiKey;

impl utoipa::Modify for ApiKey {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-api-key"))),
        );
        components.add_security_scheme(
            "api_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("api_token"))),
        );
        components.add_security_scheme(
            "admin_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("x-admin-key"))),
        );
    }
}
