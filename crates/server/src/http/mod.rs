//! The HTTP API: the router and its layers. Model calls and polls need the API key (when the
//! server has keys) and pass the load-testing gate; output files pass the gate with an optional
//! key; /health, /metrics, /models, the OpenAPI document and the playground are open; the admin
//! API exists when an admin key is set.

mod admin;
mod bria;
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
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::Next;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::Router;
use std::future::Future;
use std::sync::Arc;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use self::gate::Gate;
use crate::auth::Accounts;
use crate::emulation::Route;
use crate::error::ServerError;
use crate::state::AppState;

/// The router of the whole API.
pub fn app(state: AppState) -> Router {
    let (documented, admin, doc) = documented(Some(&state));
    let mut router = Router::new()
        .merge(documented)
        .merge(openapi::docs(doc))
        .merge(crate::playground::routes());
    if state.service.admin_key.is_some() {
        router = router.merge(admin);
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

/// The OpenAPI document as served (and committed as docs/openapi.json).
pub fn openapi_document() -> String {
    let (_, _, doc) = documented(None);
    doc.to_pretty_json().expect("the document serialises")
}

/// Every documented route with its layers, the admin API's routes, and the document of both
/// (the admin API is documented whether it is served or not), each path written once, in its
/// handler's annotation. Without a state (the document alone) the layers are left out.
fn documented(state: Option<&AppState>) -> (Router<AppState>, Router<AppState>, OpenApiDoc) {
    let layers = RouteLayers(state);
    let api = OpenApiRouter::new()
        .routes(layers.call(Route::V1, routes!(v1::run_sync)))
        .route("/{slug}", layers.call(Route::V1, routes!(v1::run_sync)).2)
        .routes(layers.call(Route::Submit, routes!(v2::submit)))
        .routes(layers.gated(Route::Status, routes!(v2::status)))
        .routes(layers.gated(Route::Result, routes!(v2::result)))
        .route(
            "/v1/requests/{id}",
            layers.gated(Route::Result, routes!(v2::result)).2,
        )
        .routes(routes!(v1::user_credits));
    let bria = OpenApiRouter::new()
        .routes(layers.gated(Route::Bria, routes!(bria::increase_resolution)))
        .routes(layers.gated(Route::BriaStatus, routes!(bria::status)));
    let outputs = OpenApiRouter::new().routes(layers.gated(Route::Output, routes!(ops::output)));
    let (router, mut doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ops::health))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::models))
        .merge(layers.keyed(api, middleware::require_key))
        .merge(
            layers
                .keyed(bria, middleware::require_key)
                .layer(from_fn(bria::errors)),
        )
        .merge(layers.keyed(outputs, middleware::optional_key))
        .split_for_parts();
    let (admin, admin_doc) = admin::routes(state).split_for_parts();
    doc.merge(admin_doc);
    (router, admin, openapi::with_aliases(doc))
}

/// The layers of the documented routes, or none (for the document alone).
#[derive(Clone, Copy)]
struct RouteLayers<'a>(Option<&'a AppState>);

impl RouteLayers<'_> {
    /// The load-testing gate of `route` on a handler.
    fn gated(
        self,
        route: Route,
        handler: UtoipaMethodRouter<AppState>,
    ) -> UtoipaMethodRouter<AppState> {
        let Some(state) = self.0 else { return handler };
        let gate = Gate {
            emulation: state.emulation.clone(),
            route,
        };
        handler.map(|handler| handler.route_layer(from_fn_with_state(gate, gate::gate)))
    }

    /// A model call: gated, its slug checked before the gate counts the request.
    fn call(
        self,
        route: Route,
        handler: UtoipaMethodRouter<AppState>,
    ) -> UtoipaMethodRouter<AppState> {
        let gated = self.gated(route, handler);
        match self.0 {
            Some(_) => gated.map(|handler| handler.route_layer(from_fn(middleware::model_slug))),
            None => gated,
        }
    }

    /// A group of routes behind a key check (required or optional).
    fn keyed<F, T>(self, routes: OpenApiRouter<AppState>, check: F) -> OpenApiRouter<AppState>
    where
        F: Fn(State<Arc<Accounts>>, Request, Next) -> T + Clone + Send + Sync + 'static,
        T: Future<Output = Response> + Send + 'static,
    {
        match self.0 {
            Some(state) => routes.route_layer(from_fn_with_state(state.accounts.clone(), check)),
            None => routes,
        }
    }
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
