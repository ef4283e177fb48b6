//! Shared by the integration tests: a real server on a 127.0.0.1 socket, a tiny image host,
//! images, and polling. Each test binary uses a part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use clap::Parser;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use upres_engine::Engine;
use upres_server::{AppState, JobError, JobSpec, ServeArgs, ServerError, Upscaler};

pub mod python;

pub const SLUG: &str = upres_server::MODEL_SLUG;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

/// Settings as `upres serve` would parse them from these flags.
pub fn args(flags: &[&str]) -> ServeArgs {
    Cli::parse_from(std::iter::once("upres").chain(flags.iter().copied())).serve
}

/// The real engine, loaded once per test binary (models from the workspace `.cache`).
pub fn engine() -> Arc<Engine> {
    static ENGINE: OnceLock<Arc<Engine>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            Arc::new(
                Engine::new(&args(&[]).engine.config())
                    .expect("engine: run scripts/setup.sh esrgan-slim open-nsfw"),
            )
        })
        .clone()
}

/// A server running [`upres_server::run`] on 127.0.0.1, in this test's runtime.
pub struct TestServer {
    pub url: String,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServerError>>,
}

impl TestServer {
    pub async fn start(flags: &[&str], upscaler: Arc<dyn Upscaler>) -> Self {
        let state = AppState::new(&args(flags), upscaler).expect("state");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(upres_server::run(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            url,
            state,
            stop: Some(stop),
            task,
        }
    }

    /// Starts a graceful shutdown; the returned handle ends when the server has stopped.
    pub fn shut_down(mut self) -> JoinHandle<Result<(), ServerError>> {
        let _ = self.stop.take().unwrap().send(());
        self.task
    }

    pub fn v1(&self) -> String {
        format!("{}/v1/{SLUG}", self.url)
    }

    pub fn v2(&self) -> String {
        format!("{}/v2/{SLUG}", self.url)
    }

    /// `target` as a URL: a path (`/health`) on this server, or a URL (`self.v2()`) as it is.
    fn at(&self, target: &str) -> String {
        if target.starts_with('/') {
            format!("{}{target}", self.url)
        } else {
            target.to_string()
        }
    }

    /// GET `target` (a path on this server, or a URL): the status and the JSON body.
    pub async fn get_json(&self, target: &str) -> (StatusCode, Value) {
        get_json(&self.at(target)).await
    }

    /// POST `body` to `target` (a path on this server, or a URL): the status and the JSON body.
    pub async fn post_json(&self, target: &str, body: &Value) -> (StatusCode, Value) {
        send_json(client().post(self.at(target)).json(body)).await
    }
}

/// An HTTP client that never goes through a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

pub async fn post(url: &str, body: &Value) -> reqwest::Response {
    client().post(url).json(body).send().await.unwrap()
}

pub async fn json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
    )
}

/// Sends `request` (any method and headers): the status and the JSON body.
pub async fn send_json(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    json(request.send().await.unwrap()).await
}

/// GET an absolute URL (a `status_url` the server returned): the status and the JSON body.
pub async fn get_json(url: &str) -> (StatusCode, Value) {
    send_json(client().get(url)).await
}

/// Polls a status URL until the job is COMPLETED or FAILED; returns the last status body.
pub async fn wait_terminal(status_url: &str) -> Value {
    wait_terminal_as(status_url, None).await
}

/// [`wait_terminal`] with an `x-api-key`.
pub async fn wait_terminal_as(status_url: &str, key: Option<&str>) -> Value {
    for _ in 0..600 {
        let mut request = client().get(status_url);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let (_, body) = send_json(request).await;
        if matches!(body["status"].as_str(), Some("COMPLETED" | "FAILED")) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job at {status_url} did not finish");
}

/// Submits to v2 and waits; returns the final status body.
pub async fn run_v2(server: &TestServer, body: &Value) -> Value {
    let (status, submitted) = server.post_json(&server.v2(), body).await;
    assert_eq!(status, StatusCode::OK, "{submitted}");
    wait_terminal(submitted["status_url"].as_str().unwrap()).await
}

/// An encoded PNG with a gradient (and a transparent corner with alpha).
pub fn png(width: u32, height: u32, alpha: bool) -> Vec<u8> {
    let rgba = image::RgbaImage::from_fn(width, height, |x, y| {
        let a = if alpha && x < width / 2 && y < height / 2 {
            0
        } else {
            255
        };
        image::Rgba([(x * 255 / width) as u8, (y * 255 / height) as u8, 128, a])
    });
    let pixels = if alpha {
        image::DynamicImage::ImageRgba8(rgba)
    } else {
        image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(rgba).to_rgb8())
    };
    upres_engine::encode(
        &upres_engine::Image::new(pixels),
        upres_engine::OutputFormat::Png,
    )
    .unwrap()
}

pub fn data_uri(bytes: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A tiny HTTP server on 127.0.0.1 that the upscaler server downloads images from:
/// `/img.png`, `/missing` (404), `/hop/{n}` (n redirects, then the image), `/to-file` (a
/// redirect to a file: URL), `/big` (a body over any small limit).
pub async fn image_host(image: Vec<u8>) -> String {
    let image = Arc::new(image);
    let served = image.clone();
    let app = Router::new()
        .route(
            "/img.png",
            get(move || async move { png_response(&served) }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route(
            "/hop/{n}",
            get(|Path(n): Path<u32>| async move {
                let to = if n <= 1 {
                    "/img.png".to_string()
                } else {
                    format!("/hop/{}", n - 1)
                };
                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
            }),
        )
        .route(
            "/to-file",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "file:///etc/passwd")],
                )
            }),
        )
        .route("/big", get(|| async { vec![0u8; 4 << 20] }));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn png_response(image: &[u8]) -> Response {
    ([(header::CONTENT_TYPE, "image/png")], image.to_vec()).into_response()
}

/// Width and height of a PNG.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    let image = image::load_from_memory_with_format(bytes, image::ImageFormat::Png).expect("a PNG");
    (image.width(), image.height())
}

/// A closed gate that blocking jobs wait at until the test opens it.
#[derive(Clone, Default)]
pub struct Gate(Arc<(Mutex<bool>, Condvar)>);

impl Gate {
    pub fn wait(&self) {
        let (open, changed) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = changed.wait(open).unwrap();
        }
    }
    pub fn open(&self) {
        let (open, changed) = &*self.0;
        *open.lock().unwrap() = true;
        changed.notify_all();
    }
}

/// A test upscaler: counts its runs, echoes its input, waits at `gate` when the input is
/// `b"wait"` and panics when it is `b"panic"`.
pub fn scripted(gate: Gate, runs: Arc<AtomicUsize>) -> Arc<dyn Upscaler> {
    Arc::new(
        move |input: &[u8], _spec: &JobSpec| -> Result<Vec<u8>, JobError> {
            runs.fetch_add(1, Ordering::SeqCst);
            match input {
                b"wait" => gate.wait(),
                b"panic" => panic!("scripted panic"),
                _ => {}
            }
            Ok(input.to_vec())
        },
    )
}

/// `image` values for [`scripted`] as data: URIs.
pub fn input(word: &str) -> String {
    data_uri(word.as_bytes())
}

/// Waits until `check` holds (polling), or panics.
pub async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..400 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// The body of a GET as text.
pub async fn text(url: &str) -> String {
    client()
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Jobs waiting in the queue, from /health.
pub async fn queued(server: &TestServer) -> u64 {
    let (_, body) = server.get_json("/health").await;
    body["queued"]
        .as_u64()
        .unwrap_or_else(|| panic!("health: {body}"))
}

/// Asserts an error response: its status, and its `error` message by `check`.
pub fn assert_error(
    status: StatusCode,
    body: &Value,
    want: StatusCode,
    check: impl Fn(&str) -> bool,
) {
    assert_eq!(status, want, "{body}");
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error message in {body}"));
    assert!(check(message), "unexpected error message: {message}");
}

#[path = "redis.rs"]
mod redis;
#[allow(unused_imports)]
pub use redis::RedisServer;

/// A keys file in `dir` with one key `sk-<name>` per `(name, extra TOML lines)`.
pub fn keys_file(dir: &std::path::Path, keys: &[(&str, &str)]) -> std::path::PathBuf {
    let path = dir.join("keys.toml");
    let text: String = keys
        .iter()
        .map(|(name, extra)| format!("[[keys]]\nkey = 'sk-{name}'\nname = '{name}'\n{extra}\n"))
        .collect();
    std::fs::write(&path, text).unwrap();
    path
}
