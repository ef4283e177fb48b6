//! The HTTP API: the router and its layers. Model calls and polls need the API key (when the
//! server has keys) and pass the load-testing gate; output files pass the gate with an optional
//! key; /health, /metrics, /models, the OpenAPI document and the playground are open; the admin
//! API exists when an admin key is set.

mod admin;
mod extract;
mod gate;
mod middleware;
mod openapi;
mod ops;
mod schema;
mod urls;
mod v1;
mod v2;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use openapi::document as openapi_document;

use self::gate::Gate;
use crate::emulation::Route;
use crate::error::ServerError;
use crate::state::AppState;

/// The router of the whole API.
pub fn app(state: AppState) -> Router {
    let gated = |route: Route, handler: MethodRouter<AppState>| {
        let gate = Gate {
            emulation: state.emulation.clone(),
            route,
        };
        handler.route_layer(from_fn_with_state(gate, gate::gate))
    };
    // The slug is checked before the gate counts the request.
    let call = |route: Route, handler: MethodRouter<AppState>| {
        gated(route, handler).route_layer(from_fn(middleware::model_slug))
    };
    let api = Router::new()
        .route("/v1/{slug}", call(Route::V1, post(v1::run_sync)))
        .route("/{slug}", call(Route::V1, post(v1::run_sync)))
        .route("/v2/{slug}", call(Route::Submit, post(v2::submit)))
        .route(
            "/v2/requests/{id}/status",
            gated(Route::Status, get(v2::status)),
        )
        .route("/v2/requests/{id}", gated(Route::Result, get(v2::result)))
        .route("/v1/requests/{id}", gated(Route::Result, get(v2::result)))
        .route("/v1/get-user-credits", get(v1::user_credits))
        .route_layer(from_fn_with_state(
            state.accounts.clone(),
            middleware::require_key,
        ));
    let outputs = Router::new()
        .route("/outputs/{file}", gated(Route::Output, get(ops::output)))
        .route_layer(from_fn_with_state(
            state.accounts.clone(),
            middleware::optional_key,
        ));
    let mut router = Router::new()
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        .route("/models", get(ops::models))
        .merge(api)
        .merge(outputs)
        .merge(openapi::docs())
        .merge(crate::playground::routes());
    if state.service.admin_key.is_some() {
        router = router.merge(admin::routes(state.clone()));
    }
    router = router
        .route_layer(from_fn(middleware::remember_route))
        .method_not_allowed_fallback(wrong_method)
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(state.body.limit));
    if let Some(engine) = state.service.stand_in {
        router = router.layer(from_fn_with_state(engine, middleware::name_stand_in));
    }
    router
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(middleware::drop_implausible_id))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(middleware::request_span)
                        .on_request(())
                        .on_response(middleware::on_response)
                        .on_failure(()),
                )
                .layer(from_fn(middleware::remember_method)),
        )
        .layer(from_fn_with_state(state.body, crate::conn::keep_usable))
        .with_state(state)
}

async fn no_route(uri: Uri) -> ServerError {
    ServerError::NoRoute(uri.path().to_string())
}

async fn wrong_method(method: Method, uri: Uri) -> ServerError {
    ServerError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}
