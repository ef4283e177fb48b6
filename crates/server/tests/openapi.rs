//! The OpenAPI document: the committed copy (docs/openapi.json) is what the code generates,
//! the server serves it, it documents every route the router answers, and the docs page is
//! built in (no outside assets, no validator badge).
//! After changing the API: `UPRES_BLESS=1 cargo test -p upres-server --test openapi`.

mod common;

use std::path::Path;

use axum::http::StatusCode;
use common::*;
use serde_json::Value;

fn committed() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[test]
fn the_committed_document_is_current() {
    let generated = upres_server::openapi_document();
    if std::env::var_os("UPRES_BLESS").is_some() {
        std::fs::write(committed(), &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(committed()).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/openapi.json is stale: run UPRES_BLESS=1 cargo test -p upres-server --test openapi"
    );
}

#[tokio::test]
async fn the_server_serves_it_and_it_covers_every_route() {
    let server = TestServer::start(
        &["--admin-key", "adm"],
        scripted(Gate::default(), Default::default()),
    )
    .await;
    let (status, served) = server.get_json("/api-doc/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let generated: Value = serde_json::from_str(&upres_server::openapi_document()).unwrap();
    assert_eq!(served, generated);
    // /docs groups operations by these tags, in this order: the two APIs before the admin API.
    let tags: Vec<&str> = served["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tags, ["v1", "v2", "bria", "operations", "admin"]);
    let paths = served["paths"].as_object().unwrap();
    for (method, route) in [
        ("post", "/v1/{slug}"),
        ("post", "/{slug}"),
        ("post", "/v2/{slug}"),
        ("get", "/v2/requests/{id}/status"),
        ("get", "/v2/requests/{id}"),
        ("get", "/v1/requests/{id}"),
        ("get", "/outputs/{file}"),
        ("get", "/health"),
        ("get", "/metrics"),
        ("get", "/models"),
        ("get", "/v1/get-user-credits"),
        ("post", "/v2/image/edit/increase_resolution"),
        ("get", "/v2/status/{request_id}"),
        ("get", "/admin/emulation"),
        ("put", "/admin/faults"),
        ("delete", "/admin/faults/{name}"),
        ("put", "/admin/latency"),
        ("post", "/admin/keys/{name}/credits"),
        ("get", "/admin/stats"),
        ("post", "/admin/reset"),
    ] {
        assert!(
            paths.get(route).and_then(|p| p.get(method)).is_some(),
            "{method} {route} undocumented"
        );
        // ... and the router really has it (anything but 404 for an unknown path, 405).
        let probe = route
            .replace("{slug}", SLUG)
            .replace("{id}", "x")
            .replace("{file}", "x.png")
            .replace("{name}", "x")
            .replace("{request_id}", "x");
        let answer = client()
            .request(
                method.to_uppercase().parse().unwrap(),
                format!("{}{probe}", server.url),
            )
            .send()
            .await
            .unwrap();
        assert_ne!(
            answer.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {route}"
        );
        if answer.status() == StatusCode::NOT_FOUND {
            let (_, body) = json(answer).await;
            // (Bria's status service answers an unknown id with {"status": "NOT_FOUND"}.)
            let error = body["error"].as_str().unwrap_or_default();
            assert!(
                !error.starts_with("No route"),
                "{method} {route} is not served"
            );
        }
    }
}

#[tokio::test]
async fn the_docs_page_is_built_in() {
    let server = TestServer::start(&[], scripted(Gate::default(), Default::default())).await;
    let page = client()
        .get(format!("{}/docs/", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(
            html.contains(&format!("./{asset}")),
            "{asset} is not served locally"
        );
        let served = client()
            .get(format!("{}/docs/{asset}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), StatusCode::OK, "{asset}");
    }
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "an outside load in the page"
    );
    let init = text(&format!("{}/docs/swagger-initializer.js", server.url)).await;
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(init.contains("/api-doc/openapi.json"));
}

/// schemathesis (pinned in tests/schemathesis/requirements.txt, installed by
/// scripts/test-tools.sh) fuzzes every documented operation of a live server from the served
/// document and finds no server error. The model calls are left out: a generated `image` that
/// happens to be an http URL would make the server download from outside this machine; their
/// bad inputs are covered in api.rs and emulation.rs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let schemathesis =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv-schemathesis/bin/schemathesis");
    assert!(
        schemathesis.exists(),
        "{} missing: run scripts/test-tools.sh",
        schemathesis.display()
    );
    let server = TestServer::start(
        &["--admin-key", "adm"],
        upres_server::EngineKind::FastNearest.upscaler(engine()),
    )
    .await;
    // Its example cache goes to a scratch folder, not into the checkout.
    let scratch = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(schemathesis)
        .current_dir(scratch.path())
        .args(SCHEMATHESIS_ARGS)
        .arg(format!("{}/api-doc/openapi.json", server.url))
        .env("NO_PROXY", "127.0.0.1")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every operation but the model calls (Segmind's and Bria's), 25 examples each, no checks but
/// "no 5xx", seeded.
const SCHEMATHESIS_ARGS: &[&str] = &[
    "run",
    "--checks",
    "not_a_server_error",
    "--exclude-path-regex",
    r"\{slug\}|/v2/image/",
    "--max-examples",
    "25",
    "--seed",
    "1",
];
