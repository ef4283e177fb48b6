//! Who calls: API keys as accounts (name, rate limit, credit balance, the slugs a key may
//! call), found by the key a request presents, and the credits a call holds.

mod accounts;
mod credits;
pub mod limiter;

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue};

pub use accounts::{Account, Accounts};
pub use credits::{Balance, Charge, Hold, Settle, UNLIMITED_CREDITS};

/// The account a request was made with (set by the key check, read by handlers and the gate).
#[derive(Clone)]
pub struct Caller(pub Arc<Account>);

/// The key a request presents: `x-api-key`, `api_token` (Bria's clients), or
/// `Authorization: Bearer`.
pub fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    headers
        .get("x-api-key")
        .or_else(|| headers.get("api_token"))
        .map(HeaderValue::as_bytes)
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        })
}
