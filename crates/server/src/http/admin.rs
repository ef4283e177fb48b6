//! The admin API of the load-testing mode, under /admin, only when `--admin-key` is set and
//! only for requests presenting it in `x-admin-key` (compared in constant time):
//!
//! | Route | Does |
//! |---|---|
//! | `GET /admin/emulation` | seed, engine, latency, capacity, rules, keys |
//! | `GET /admin/faults` | the rules |
//! | `PUT /admin/faults` | replaces the rules (a list, or `{"rules": [...]}`) |
//! | `POST /admin/faults` | appends a rule or a list of rules |
//! | `DELETE /admin/faults`, `DELETE /admin/faults/{name}` | removes all rules, or one |
//! | `GET`, `PUT /admin/latency` | the latency model |
//! | `POST /admin/keys/{name}/credits` | `{"add": n}` or `{"set": n}` on a key's balance |
//! | `GET /admin/stats` | what the emulation did, counted |
//! | `POST /admin/reset` | startup rules and latency, balances and rate limits, numbering of the draws from zero, counters cleared; `{"seed": n}` also sets the seed |

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::emulation::{Latency, Rule};
use crate::error::{Invalid, ServerError};
use crate::state::AppState;

/// The admin routes behind the admin key check (no check without a state: the document alone).
pub fn routes(state: Option<&AppState>) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(rules, replace_rules, append_rules, clear_rules))
        .routes(routes!(delete_rule))
        .routes(routes!(latency, set_latency))
        .routes(routes!(adjust_credits))
        .routes(routes!(stats))
        .routes(routes!(reset));
    match state {
        Some(state) => routes.route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_key,
        )),
        None => routes,
    }
}

async fn require_admin_key(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let expected = state
        .service
        .admin_key
        .as_deref()
        .unwrap_or_default()
        .as_bytes();
    let presented = request
        .headers()
        .get("x-admin-key")
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.ct_eq(presented)) {
        return ServerError::AdminKey.into_response();
    }
    next.run(request).await
}

/// A JSON body, with a JSON error when it does not parse.
pub(crate) struct Body<T>(T);

impl<T: serde::de::DeserializeOwned> axum::extract::FromRequest<AppState> for Body<T> {
    type Rejection = ServerError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ServerError> {
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|e| Invalid(e.body_text()))?;
        let value = if bytes.is_empty() {
            b"null".as_slice()
        } else {
            &bytes
        };
        serde_json::from_slice(value)
            .map(Body)
            .map_err(|e| Invalid(format!("invalid body: {e}")).into())
    }
}

#[utoipa::path(get, path = "/admin/emulation", tag = "admin",
    responses((status = 200, description = "Seed, engine, latency, capacity, cost, rules, keys", body = Object), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn overview(State(state): State<AppState>) -> Json<Value> {
    let emulation = &state.emulation;
    Json(json!({
        "seed": emulation.seed(),
        "engine": state.service.stand_in.unwrap_or("model"),
        "latency": emulation.latency(),
        "capacity": state.workers.capacity(),
        "workers": state.workers.workers(),
        "queue_depth": state.queue.depth(),
        "cost": emulation.cost,
        "rate_limit_headers": emulation.rate_limit_headers,
        "fault_headers": emulation.fault_headers,
        "rules": emulation.rules(),
        "keys": state.accounts.iter().map(|a| a.summary()).collect::<Vec<_>>(),
    }))
}

#[utoipa::path(get, path = "/admin/faults", tag = "admin",
    responses((status = 200, body = Vec<super::schema::FaultRule>), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn rules(State(state): State<AppState>) -> Json<Vec<Rule>> {
    Json(state.emulation.rules())
}

/// One rule, a list, or `{"rules": [...]}`.
pub(crate) struct Rules(Vec<Rule>);

impl<'de> Deserialize<'de> for Rules {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let rules = match value {
            Value::Object(mut object) if object.contains_key("rules") => {
                serde_json::from_value(object.remove("rules").unwrap_or_default())
            }
            Value::Array(_) => serde_json::from_value(value),
            one => serde_json::from_value(one).map(|rule| vec![rule]),
        };
        rules.map(Rules).map_err(D::Error::custom)
    }
}

#[utoipa::path(put, path = "/admin/faults", tag = "admin",
    request_body(content = Vec<super::schema::FaultRule>, description = "A rule, a list, or {\"rules\": [...]}"),
    responses((status = 200, description = "The rules now", body = Vec<super::schema::FaultRule>), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn replace_rules(
    State(state): State<AppState>,
    Body(new): Body<Rules>,
) -> Result<Json<Vec<Rule>>, ServerError> {
    state.emulation.replace_rules(new.0)?;
    Ok(rules(State(state)).await)
}

#[utoipa::path(post, path = "/admin/faults", tag = "admin",
    request_body(content = Vec<super::schema::FaultRule>, description = "A rule, a list, or {\"rules\": [...]}"),
    responses((status = 200, description = "The rules now", body = Vec<super::schema::FaultRule>), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn append_rules(
    State(state): State<AppState>,
    Body(new): Body<Rules>,
) -> Result<Json<Vec<Rule>>, ServerError> {
    state.emulation.append_rules(new.0)?;
    Ok(rules(State(state)).await)
}

#[utoipa::path(delete, path = "/admin/faults", tag = "admin",
    responses((status = 200, description = "No rules", body = Vec<super::schema::FaultRule>), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn clear_rules(State(state): State<AppState>) -> Json<Vec<Rule>> {
    let _ = state.emulation.replace_rules(Vec::new());
    rules(State(state)).await
}

#[utoipa::path(delete, path = "/admin/faults/{name}", tag = "admin",
    params(("name" = String, Path, description = "The rule's name")),
    responses((status = 204, description = "Removed"), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ServerError> {
    if state.emulation.delete_rule(&name) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServerError::NotFound(format!(
            "no fault rule named '{name}'"
        )))
    }
}

#[utoipa::path(get, path = "/admin/latency", tag = "admin",
    responses((status = 200, body = crate::emulation::Latency), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn latency(State(state): State<AppState>) -> Json<Latency> {
    Json(state.emulation.latency())
}

#[utoipa::path(put, path = "/admin/latency", tag = "admin",
    request_body = crate::emulation::Latency,
    responses((status = 200, body = crate::emulation::Latency), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn set_latency(
    State(state): State<AppState>,
    Body(latency): Body<Latency>,
) -> Result<Json<Latency>, ServerError> {
    state.emulation.set_latency(latency)?;
    Ok(Json(state.emulation.latency()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub(crate) enum Adjustment {
    Add(f64),
    Set(f64),
}

#[utoipa::path(post, path = "/admin/keys/{name}/credits", tag = "admin",
    params(("name" = String, Path, description = "The key's name")),
    request_body(content = Object, description = "{\"add\": n} or {\"set\": n}"),
    responses((status = 200, description = "The balance now", body = crate::auth::Balance), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn adjust_credits(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Body(adjustment): Body<Adjustment>,
) -> Result<Json<Value>, ServerError> {
    let account = state
        .accounts
        .by_name(&name)
        .ok_or_else(|| ServerError::NotFound(format!("no key named '{name}'")))?;
    let wallet = account.wallet.as_ref().ok_or_else(|| {
        ServerError::from(Invalid(format!(
            "key '{name}' has no credits configured (keys file)"
        )))
    })?;
    let amount = match adjustment {
        Adjustment::Add(amount) => amount,
        Adjustment::Set(target) => target - wallet.balance().total(),
    };
    if !amount.is_finite() {
        return Err(Invalid::from("the amount must be a finite number").into());
    }
    Ok(Json(json!(wallet.adjust(amount))))
}

#[utoipa::path(get, path = "/admin/stats", tag = "admin",
    responses((status = 200, description = "The seed and every counter", body = Object), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "seed": state.emulation.seed(),
        "counts": state.emulation.stats.snapshot(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reset {
    seed: Option<u64>,
}

#[utoipa::path(post, path = "/admin/reset", tag = "admin",
    request_body(content = Option<Object>, description = "Optional {\"seed\": n}"),
    responses((status = 200, description = "The emulation overview after the reset", body = Object), super::schema::AdminErrors), security(("admin_key" = [])))]
pub(crate) async fn reset(
    State(state): State<AppState>,
    Body(reset): Body<Option<Reset>>,
) -> Json<Value> {
    state.emulation.reset(reset.unwrap_or_default().seed);
    for account in state.accounts.iter() {
        if let Some(wallet) = &account.wallet {
            wallet.reset();
        }
        if let Some(limiter) = &account.limiter {
            limiter.reset();
        }
    }
    overview(State(state)).await
}
