//! The server on the real engine (esrgan-slim, the fast model): pixel sizes, alpha, errors
//! from the engine, moderation, and 50 concurrent v2 jobs.

mod common;

use std::collections::HashSet;

use axum::http::StatusCode;
use common::*;
use futures::future::join_all;
use serde_json::json;

const SLIM: [&str; 4] = [
    "--model",
    "esrgan-slim",
    "--allow-private-urls",
    "--queue-depth=64",
];

#[tokio::test]
async fn v1_upscales_by_2_and_4_keeping_or_dropping_alpha() {
    let host = image_host(png(24, 16, true)).await;
    let server = TestServer::start(&SLIM, engine()).await;
    let image = format!("{host}/img.png");
    for (body, size, has_alpha) in [
        (
            json!({"image": image, "desired_increase": 2}),
            (48, 32),
            true,
        ),
        (json!({"image": image}), (96, 64), true),
        (
            json!({"image": image, "desired_increase": 2, "preserve_alpha": false}),
            (48, 32),
            false,
        ),
    ] {
        let response = post(&server.v1(), &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let inference: f64 = response.headers()["x-inference-time"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(inference > 0.0);
        let output = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
        assert_eq!((output.width(), output.height()), size, "{body}");
        assert_eq!(output.color().has_alpha(), has_alpha, "{body}");
    }
}

#[tokio::test]
async fn fifty_concurrent_v2_jobs_all_complete() {
    let host = image_host(png(16, 12, false)).await;
    let server = TestServer::start(&SLIM, engine()).await;
    let body = json!({"image": format!("{host}/img.png"), "desired_increase": 2});
    let v2 = server.v2();
    let submits = join_all((0..50).map(|_| server.post_json(&v2, &body))).await;
    let ids: HashSet<String> = submits
        .iter()
        .map(|(status, submitted)| {
            assert_eq!(*status, StatusCode::OK, "{submitted}");
            submitted["request_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 50);
    let results = join_all(submits.iter().map(|(_, submitted)| async {
        let done = wait_terminal(submitted["status_url"].as_str().unwrap()).await;
        assert_eq!(done["status"], "COMPLETED", "{done}");
        let (_, result) = get_json(submitted["response_url"].as_str().unwrap()).await;
        let png = client()
            .get(result["output"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        png_size(&png)
    }))
    .await;
    assert!(results.iter().all(|&size| size == (32, 24)), "{results:?}");
}

#[tokio::test]
async fn engine_errors_are_400_on_v1_and_failed_on_v2() {
    let server = TestServer::start(&SLIM, engine()).await;
    let not_an_image = json!({"image": data_uri(b"GIF89a definitely not decodable")});
    let (status, error) = server.post_json(&server.v1(), &not_an_image).await;
    assert_error(status, &error, StatusCode::BAD_REQUEST, |m| {
        m.contains("unsupported image format")
    });
    let failed = run_v2(&server, &not_an_image).await;
    assert_eq!(
        (failed["status"].as_str(), &failed["error"]),
        (Some("FAILED"), &error["error"])
    );

    let truncated = png(32, 32, false)[..60].to_vec();
    let (status, error) = server
        .post_json(&server.v1(), &json!({"image": data_uri(&truncated)}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");

    for url in [server.v1(), server.v2()] {
        let (status, error) = server
            .post_json(
                &url,
                &json!({"image": data_uri(&png(4, 4, false)), "model": "nope"}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = error["error"].as_str().unwrap();
        assert!(
            message.starts_with("invalid 'model': unknown model 'nope' (installed: ")
                && message.contains("esrgan-slim")
                && message.contains("`upres models`"),
            "{message}"
        );
    }
    let (status, error) = server
        .post_json(
            &server.v2(),
            &json!({"image": data_uri(&png(4, 4, false)), "model": "waifu2x-photo", "desired_increase": 4}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["error"],
        "invalid 'model': model 'waifu2x-photo' cannot upscale by 4x (supported: 2)"
    );
}

#[tokio::test]
async fn moderation_blocks_name_the_check() {
    // The threshold is an engine setting: this engine blocks everything it checks.
    let strict =
        upres_engine::Engine::new(&args(&["--moderation-threshold", "0"]).engine.config()).unwrap();
    let server = TestServer::start(&SLIM, std::sync::Arc::new(strict)).await;
    let image = data_uri(&png(32, 32, false));
    let input_check =
        json!({"image": image, "desired_increase": 2, "visual_input_content_moderation": true});
    let (status, error) = server.post_json(&server.v1(), &input_check).await;
    assert_error(status, &error, StatusCode::UNPROCESSABLE_ENTITY, |m| {
        m.starts_with("input image blocked by visual_input_content_moderation")
    });
    let output_check =
        json!({"image": image, "desired_increase": 2, "visual_output_content_moderation": true});
    let failed = run_v2(&server, &output_check).await;
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .starts_with("output image blocked by visual_output_content_moderation"),
        "{failed}"
    );
    // Without the flags nothing is checked.
    assert_eq!(
        post(
            &server.v1(),
            &json!({"image": image, "desired_increase": 2})
        )
        .await
        .status(),
        StatusCode::OK
    );
}

/// GET /models lists what the engine has installed, each with the scales a request may ask
/// for, and says whether keys are needed and which load-testing engine runs.
#[tokio::test]
async fn models_lists_the_installed_models_and_their_scales() {
    let server = TestServer::start(&SLIM, engine()).await;
    let (status, offer) = server.get_json("/models").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(offer["default_model"], "esrgan-slim");
    assert_eq!(offer["api_key_required"], false);
    assert_eq!(offer["engine"], serde_json::Value::Null);
    let listed: Vec<&str> = offer["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    let installed: Vec<String> = engine().models().map(|m| m.id.clone()).collect();
    assert_eq!(listed, installed);
    // Every listed scale works, and only those: checked against the engine's own plan.
    for model in offer["models"].as_array().unwrap() {
        let info = engine()
            .model(model["id"].as_str().unwrap())
            .unwrap()
            .clone();
        let can: Vec<u32> = [2, 4]
            .into_iter()
            .filter(|&s| info.plan(s).is_ok())
            .collect();
        assert_eq!(model["scales"], json!(can), "{model}");
        assert!(!can.is_empty(), "{model}");
    }
    let slim = &offer["models"][listed.iter().position(|id| *id == "esrgan-slim").unwrap()];
    assert_eq!(
        (slim["look"].as_str(), slim["license"].as_str()),
        (Some("fast"), Some("MIT"))
    );

    let fast = TestServer::start(
        &["--api-keys", "k1", "--engine", "fast-nearest"],
        upres_server::EngineKind::FastNearest.upscaler(engine()),
    )
    .await;
    let (_, offer) = fast.get_json("/models").await;
    assert_eq!(
        (
            offer["api_key_required"].as_bool(),
            offer["engine"].as_str()
        ),
        (Some(true), Some("fast-nearest"))
    );
    assert_eq!(offer["models"].as_array().unwrap().len(), installed.len());
}
