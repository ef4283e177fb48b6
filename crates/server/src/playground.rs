//! The browser playground at `/`: one page, its script and its style sheet, built into the
//! binary. It calls the real v1 endpoint. Its Content-Security-Policy allows loads from this
//! server only (plus the `blob:`/`data:` images the page makes itself), so it works offline and
//! can never leak an image elsewhere.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// No outside script, style, image, font, frame or connection; no form posts, no embedding.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| {
                asset(
                    "text/html; charset=utf-8",
                    include_str!("playground/index.html"),
                )
            }),
        )
        .route(
            "/playground/app.js",
            get(|| {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("playground/app.js"),
                )
            }),
        )
        .route(
            "/playground/app.css",
            get(|| {
                asset(
                    "text/css; charset=utf-8",
                    include_str!("playground/app.css"),
                )
            }),
        )
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}
