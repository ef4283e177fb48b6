//! The playground at `/` and the docs page at `/docs` in a real browser: Debian's `chromium`,
//! driven by Debian's `chromium-driver` over W3C WebDriver (both installed by
//! scripts/test-tools.sh). The network is unplugged for the browser (its proxy drops every
//! connection), and each test checks, from the browser's own network log, that every request
//! the page made went to the server. (Chromium's background traffic to its vendor's services
//! is not the page's, and is not in the page's log.)
//! Outside CI the tests skip when chromedriver is missing; under `CI=true` they fail.
//! `UPRES_BLESS=1` also saves the Playground page's screenshot, docs/src/images/playground.png.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// The name the browser reaches the server by.
const HOST: &str = "upres.test";

/// The server's address as the browser sees it.
fn origin(server: &TestServer) -> String {
    server.url.replace("127.0.0.1", HOST)
}

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The browser's only way out: a proxy on 127.0.0.1 that drops every connection, so for the
/// browser the network is unplugged (loopback addresses bypass it and reach the server).
async fn unplugged_network() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    url
}

/// A headless Chromium session through chromedriver.
struct Browser {
    driver: Child,
    http: reqwest::Client,
    session: String,
    /// The browser's profile folder, removed with the session.
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a browser whose every outside request goes to `proxy`; `None`
    /// when chromedriver is not installed (a failure under `CI=true`).
    async fn launch(proxy: &str) -> Option<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = match Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(driver) => driver,
            Err(err) => {
                assert!(
                    std::env::var("CI").is_err(),
                    "chromedriver is required in CI ({err}): run scripts/test-tools.sh"
                );
                eprintln!("chromedriver not installed ({err}): skipped; scripts/test-tools.sh installs it");
                return None;
            }
        };
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            http: client(),
            session: String::new(),
            profile,
        };
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while browser
            .http
            .get(format!("{base}/status"))
            .send()
            .await
            .is_err()
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args = [
            "--headless=new".to_string(),
            // Tests run as root in CI containers, where Chromium's sandbox cannot start.
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1280,1060".to_string(),
            format!("--proxy-server={proxy}"),
            // The server under a name that is not "localhost" nor a loopback address, so pages
            // cannot treat it as a developer's machine (Swagger UI skips its validator there).
            format!("--host-resolver-rules=MAP {HOST} 127.0.0.1"),
            format!("--proxy-bypass-list={HOST}"),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--no-first-run".to_string(),
            format!("--user-data-dir={}", browser.profile.path().display()),
        ];
        let created = browser
            .http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium(), "args": args},
                "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
            }}}))
            .send()
            .await
            .unwrap();
        let created: Value = created.json().await.unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"));
        browser.session = format!("{base}/session/{session}");
        Some(browser)
    }

    /// One WebDriver command; panics with the driver's message when it fails.
    async fn command(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if !body.is_null() {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        if answer["value"]["error"].is_string() {
            panic!("WebDriver {path}: {}", answer["value"]);
        }
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({ "url": url }))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let found = self
            .command(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT].as_str().unwrap().to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// Types into a field; for a file input, `text` is the path of the file to pick.
    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// The value of `return <expression>` in the page.
    async fn eval(&self, expression: &str) -> Value {
        self.command(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": format!("return {expression};"), "args": []}),
        )
        .await
    }

    /// Polls `expression` until it is truthy and not an empty list; returns its value.
    async fn wait_for(&self, what: &str, expression: &str, limit: Duration) -> Value {
        let started = Instant::now();
        loop {
            let value = self.eval(expression).await;
            let empty = match &value {
                Value::Null | Value::Bool(false) => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Number(n) => n.as_f64() == Some(0.0),
                Value::Object(_) | Value::Bool(true) => false,
            };
            if !empty {
                return value;
            }
            assert!(
                started.elapsed() < limit,
                "waited {limit:?} for {what}; status: {}",
                self.eval("document.getElementById('status')?.textContent")
                    .await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sets a form control's value as a user would, with the event the page listens to.
    async fn set(&self, id: &str, value: &str, event: &str) {
        self.eval(&format!(
            "(() => {{ const c = document.getElementById('{id}'); c.value = '{value}'; \
             c.dispatchEvent(new Event('{event}')); return true; }})()"
        ))
        .await;
    }

    async fn text(&self, id: &str) -> String {
        self.eval(&format!("document.getElementById('{id}').textContent"))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Messages of one of the driver's logs (`browser`: the console; `performance`: DevTools
    /// events) since the last call.
    async fn log(&self, kind: &str) -> Vec<Value> {
        let entries = self
            .command(reqwest::Method::POST, "/se/log", json!({ "type": kind }))
            .await;
        serde_json::from_value(entries).unwrap()
    }

    /// Console messages at level SEVERE (errors, CSP violations) since the last call.
    async fn severe_logs(&self) -> Vec<String> {
        self.log("browser")
            .await
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Every URL that documents from `origin` requested (made, not only completed) since the
    /// last call. (The browser's own pages, such as its new-tab page, are not counted.)
    async fn requested_urls(&self, origin: &str) -> Vec<String> {
        self.log("performance")
            .await
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
            .map(|m| m["message"].clone())
            .filter(|m| m["method"] == "Network.requestWillBeSent")
            .filter(|m| {
                m["params"]["documentURL"]
                    .as_str()
                    .is_some_and(|d| d.starts_with(&format!("{origin}/")))
            })
            .filter_map(|m| Some(m["params"]["request"]["url"].as_str()?.to_string()))
            .collect()
    }

    async fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let png = self
            .command(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap()
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Debian's browser binary (chromedriver does not always find it by itself).
fn chromium() -> String {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("chromium")
        .to_string()
}

/// Asserts that every request the page made went to `origin` (or was a `blob:`/`data:` URL the
/// page made itself), and that it made the `expected` ones (so the log is not empty by mistake).
async fn assert_only_from(browser: &Browser, origin: &str, expected: &[&str]) {
    let urls = browser.requested_urls(origin).await;
    let outside: Vec<&String> = urls
        .iter()
        .filter(|u| {
            !u.starts_with(&format!("{origin}/"))
                && !u.starts_with("blob:")
                && !u.starts_with("data:")
        })
        .collect();
    assert!(outside.is_empty(), "requested from elsewhere: {outside:?}");
    for path in expected {
        assert!(
            urls.iter()
                .any(|u| u.starts_with(&format!("{origin}{path}"))),
            "{path} not among the requests: {urls:?}"
        );
    }
}

/// A crop of the astronaut photo (scripts/setup.sh installs it), saved as a PNG to upload.
fn photo(dir: &Path, width: u32, height: u32) -> PathBuf {
    let photo = image::open(upres_engine::paths::resolve(Path::new(
        ".cache/testdata/astronaut.png",
    )))
    .expect("run scripts/setup.sh first");
    let path = dir.join("astronaut.png");
    photo.crop_imm(150, 40, width, height).save(&path).unwrap();
    path
}

/// Runs the playground once: picks the scale, presses the button, waits for the outcome.
async fn upscale(browser: &Browser, scale: u32) {
    browser.click(&format!("#scale-{scale}")).await;
    browser.click("#run").await;
    browser
        .wait_for(
            "the result",
            "!document.getElementById('run').disabled && document.getElementById('status').textContent",
            Duration::from_secs(180),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playground_upscales_an_upload_x2_and_x4_with_nothing_from_outside() {
    let Some(browser) = Browser::launch(&unplugged_network().await).await else {
        return;
    };
    let server =
        TestServer::start(&["--api-keys", "sk-play", "--allow-private-urls"], engine()).await;
    let files = tempfile::tempdir().unwrap();
    let (width, height) = (96, 80);
    let upload = photo(files.path(), width, height);

    // The page, its CSP, and the model list from the server.
    let page = client()
        .get(format!("{}/", server.url))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("connect-src 'self'"),
        "{csp}"
    );
    browser.goto(&format!("{}/", origin(&server))).await;
    let models = browser
        .wait_for(
            "the model list",
            "[...document.querySelectorAll('#model option')].map(o => o.value)",
            Duration::from_secs(20),
        )
        .await;
    let installed: Vec<String> = engine().models().map(|m| m.id.clone()).collect();
    assert_eq!(models, json!(installed));
    assert_eq!(
        browser.eval("document.getElementById('model').value").await,
        "span",
        "the default model is preselected"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('key-row').hidden")
            .await,
        false,
        "the server has keys: the page asks for one"
    );

    // Pick the file: the page shows it and its size.
    browser.type_into("#file", upload.to_str().unwrap()).await;
    browser
        .wait_for(
            "the input's size",
            &format!("document.getElementById('input-size').textContent === '{width} × {height}'"),
            Duration::from_secs(10),
        )
        .await;

    // Without the key: the server's 401 message, shown as an error.
    upscale(&browser, 2).await;
    let status = browser.text("status").await;
    assert!(status.starts_with("401: "), "{status}");
    assert_eq!(
        browser
            .eval("document.getElementById('status').className")
            .await,
        "error"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('download').hidden")
            .await,
        true
    );

    // x2 with the fast model, then x4 with the default one.
    browser.type_into("#api-key", "sk-play").await;
    for (scale, model) in [(2, "esrgan-slim"), (4, "span")] {
        browser.set("model", model, "change").await;
        upscale(&browser, scale).await;
        let status = browser.text("status").await;
        assert!(status.starts_with("Done in "), "x{scale} {model}: {status}");
        let sizes = browser
            .eval("['before', 'after'].map(id => [document.getElementById(id).naturalWidth, document.getElementById(id).naturalHeight])")
            .await;
        assert_eq!(
            sizes,
            json!([[width, height], [width * scale, height * scale]]),
            "x{scale} {model}"
        );
        assert_eq!(
            browser.text("output-size").await,
            format!("{} × {} (x{scale})", width * scale, height * scale)
        );
        for timing in ["queue-time", "inference-time", "total-time", "round-trip"] {
            let shown = browser.text(timing).await;
            assert!(shown.ends_with(" s"), "{timing}: {shown}");
        }
        assert_eq!(browser.text("request-id").await.len(), 36, "a UUID");
        let download = browser
            .eval("[document.getElementById('download').hidden, document.getElementById('download').download, document.getElementById('download').href.startsWith('blob:')]")
            .await;
        assert_eq!(
            download,
            json!([false, format!("astronaut-x{scale}.png"), true])
        );
    }

    // The slider moves the split between before and after.
    browser.set("split", "30", "input").await;
    assert_eq!(
        browser
            .eval("document.getElementById('compare').style.getPropertyValue('--split')")
            .await,
        "30%"
    );

    // The docs' screenshot: the photo before and after the last (span x4) run, split in the
    // middle.
    if std::env::var_os("UPRES_BLESS").is_some() {
        browser.set("split", "50", "input").await;
        browser.set("api-key", "", "input").await;
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/images/playground.png");
        std::fs::write(&path, browser.screenshot().await).unwrap();
        eprintln!("wrote {}", path.display());
        browser.type_into("#api-key", "sk-play").await;
    }
    browser.set("split", "30", "input").await;

    // An image URL: the server fetches it; the page never loads it, so there is no "before".
    let host = image_host(png(20, 12, false)).await;
    browser.type_into("#url", &format!("{host}/img.png")).await;
    upscale(&browser, 2).await;
    let status = browser.text("status").await;
    assert!(status.starts_with("Done in "), "URL: {status}");
    assert_eq!(
        browser
            .eval("[document.getElementById('before').getAttribute('src'), document.getElementById('after').naturalWidth, document.getElementById('compare').classList.contains('after-only')]")
            .await,
        json!([null, 40, true])
    );
    assert_eq!(
        browser.text("input-size").await,
        "20 × 12 (fetched by the server)"
    );

    assert_only_from(
        &browser,
        &origin(&server),
        &[
            "/playground/app.js",
            "/playground/app.css",
            "/models",
            "/v1/",
        ],
    )
    .await;
    let errors: Vec<String> = browser
        .severe_logs()
        .await
        .into_iter()
        .filter(|m| !m.contains("status of 401"))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");

    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_page_renders_with_nothing_from_outside() {
    let Some(browser) = Browser::launch(&unplugged_network().await).await else {
        return;
    };
    let server = TestServer::start(&[], engine()).await;
    browser.goto(&format!("{}/docs/", origin(&server))).await;
    let title = browser
        .wait_for(
            "Swagger UI to render the document",
            "document.querySelector('.swagger-ui .info .title')?.textContent",
            Duration::from_secs(30),
        )
        .await;
    assert!(title.as_str().unwrap().starts_with("upres"), "{title}");
    let operations = browser
        .eval("document.querySelectorAll('.swagger-ui .opblock').length")
        .await;
    let documented = upres_server::openapi_document();
    let document: Value = serde_json::from_str(&documented).unwrap();
    let expected: usize = document["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| {
            let methods = ["get", "put", "post", "delete", "patch"];
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| methods.contains(&k.as_str()))
                .count()
        })
        .sum();
    assert_eq!(operations, json!(expected), "one block per operation");
    // The two APIs' own routes come first, the admin API last.
    let sections = browser
        .eval("[...document.querySelectorAll('.swagger-ui .opblock-tag')].map(e => e.dataset.tag)")
        .await;
    assert_eq!(sections, json!(["v1", "v2", "bria", "operations", "admin"]));
    assert_only_from(
        &browser,
        &origin(&server),
        &["/docs/", "/api-doc/openapi.json"],
    )
    .await;
    let errors = browser.severe_logs().await;
    assert!(errors.is_empty(), "console errors: {errors:?}");
    browser.quit().await;
}
