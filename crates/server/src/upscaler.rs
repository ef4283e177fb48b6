//! What a job runs. Production runs the engine (or one of the fast engines of the load-testing
//! mode); the job machinery only sees this trait, so tests can also run it with a closure (for
//! example one that panics).

use std::sync::Arc;

use serde::Serialize;
use upres_engine::{Engine, Image, OutputFormat, Resample, UpscaleRequest};
use upres_request::{JobSpec, RequestError};

use crate::error::JobError;

pub trait Upscaler: Send + Sync + 'static {
    /// Checks, before a job is admitted, that it can run (model installed, scale supported).
    fn validate(&self, _spec: &JobSpec) -> Result<(), JobError> {
        Ok(())
    }

    /// Loads what the first request would otherwise wait for. Blocking.
    fn warm_up(&self, _model: &str) -> Result<(), JobError> {
        Ok(())
    }

    /// A job's model stage: turns the input file into the output, short of encoding it, which
    /// it hands back as the [`Finish`]. Blocking: runs on a blocking thread holding an engine
    /// worker; the finish runs after the worker is released, beside the next job's model.
    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Finish, JobError>;

    /// A name to show on every response and on /health when the pixels do not come from a
    /// model, so that a fast engine's output never passes for a model's.
    fn stand_in(&self) -> Option<&'static str> {
        None
    }

    /// The models a request may name (GET /models, the playground's model list).
    fn offered_models(&self) -> Vec<OfferedModel> {
        Vec::new()
    }
}

/// What is left of a job after its model stage: encoding the output PNG.
pub struct Finish(Box<dyn FnOnce() -> Result<Vec<u8>, JobError> + Send>);

impl Finish {
    /// A finish that runs `encode`. Blocking.
    pub fn later(encode: impl FnOnce() -> Result<Vec<u8>, JobError> + Send + 'static) -> Self {
        Finish(Box::new(encode))
    }

    /// The output PNG.
    pub(crate) fn run(self) -> Result<Vec<u8>, JobError> {
        (self.0)()
    }
}

impl From<Vec<u8>> for Finish {
    /// A job whose model stage made the PNG itself.
    fn from(png: Vec<u8>) -> Self {
        Finish::later(move || Ok(png))
    }
}

/// An installed model, as GET /models lists it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct OfferedModel {
    pub id: String,
    /// The values `desired_increase` may take with this model.
    pub scales: Vec<u32>,
    /// `faithful`, `GAN` or `fast`, when the manifest lists the model.
    pub look: Option<&'static str>,
    pub description: Option<String>,
    /// SPDX id of the weights' license.
    pub license: Option<String>,
}

impl<F> Upscaler for F
where
    F: Fn(&[u8], &JobSpec) -> Result<Vec<u8>, JobError> + Send + Sync + 'static,
{
    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Finish, JobError> {
        Ok(self(input, spec)?.into())
    }
}

impl Upscaler for Engine {
    fn validate(&self, spec: &JobSpec) -> Result<(), JobError> {
        self.model(&spec.model)
            .and_then(|model| model.plan(spec.scale))
            .map_err(|err| RequestError::invalid("model", err.to_string()))?;
        Ok(())
    }

    fn warm_up(&self, model: &str) -> Result<(), JobError> {
        Ok(self.preload(model, false)?)
    }

    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Finish, JobError> {
        run_job(self, input, spec, |image, request| {
            self.upscale(image, request)
        })
    }

    fn offered_models(&self) -> Vec<OfferedModel> {
        self.models()
            .map(|model| OfferedModel {
                id: model.id.clone(),
                scales: [2, 4]
                    .into_iter()
                    .filter(|&s| model.plan(s).is_ok())
                    .collect(),
                look: model.catalog.and_then(|c| c.look).map(|l| l.as_str()),
                description: model.catalog.map(|c| c.description.clone()),
                license: model.catalog.map(|c| c.license.spdx.clone()),
            })
            .collect()
    }
}

/// What `--engine` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// The super-resolution models.
    Model,
    /// Lanczos3 resize: the load-testing engine with a plausible-looking output.
    FastLanczos,
    /// Nearest-neighbour resize: the cheapest load-testing engine.
    FastNearest,
}

impl EngineKind {
    /// What jobs run on: the engine itself, or a fast engine around it.
    pub fn upscaler(self, engine: Arc<Engine>) -> Arc<dyn Upscaler> {
        match self {
            EngineKind::Model => engine,
            EngineKind::FastLanczos => Arc::new(FastEngine {
                engine,
                resample: Resample::Lanczos,
                name: "fast-lanczos",
            }),
            EngineKind::FastNearest => Arc::new(FastEngine {
                engine,
                resample: Resample::Nearest,
                name: "fast-nearest",
            }),
        }
    }
}

/// The engine's whole job (decode, limits, moderation, alpha, PNG) with a resize in place of the
/// model.
struct FastEngine {
    engine: Arc<Engine>,
    resample: Resample,
    name: &'static str,
}

impl Upscaler for FastEngine {
    fn validate(&self, spec: &JobSpec) -> Result<(), JobError> {
        self.engine.validate(spec)
    }

    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Finish, JobError> {
        run_job(&self.engine, input, spec, |image, request| {
            self.engine.resize(image, request, self.resample)
        })
    }

    fn stand_in(&self) -> Option<&'static str> {
        Some(self.name)
    }

    fn offered_models(&self) -> Vec<OfferedModel> {
        self.engine.offered_models()
    }
}

/// Decode, check, moderate the input, `upscale`, moderate the output; then, as the finish,
/// encode.
fn run_job(
    engine: &Engine,
    input: &[u8],
    spec: &JobSpec,
    upscale: impl FnOnce(&Image, &UpscaleRequest) -> upres_engine::Result<Image>,
) -> Result<Finish, JobError> {
    let request = UpscaleRequest {
        model: spec.model.clone(),
        scale: spec.scale,
        preserve_alpha: spec.preserve_alpha,
    };
    let started = std::time::Instant::now();
    let image = engine.decode(input)?;
    engine.check(image.width(), image.height(), &request)?;
    let megapixels = f64::from(image.width()) * f64::from(image.height()) / 1e6;
    metrics::histogram!("upres_input_megapixels").record(megapixels);
    if spec.input_moderation {
        moderate(engine, &image, "input")?;
    }
    let output = upscale(&image, &request)?;
    drop(image);
    if spec.output_moderation {
        moderate(engine, &output, "output")?;
    }
    let model_stage = started.elapsed();
    let histogram = metrics::histogram!(
        "upres_inference_seconds",
        "model" => request.model,
        "scale" => request.scale.to_string()
    );
    Ok(Finish::later(move || {
        let encoding = std::time::Instant::now();
        let png = upres_engine::encode(&output, OutputFormat::Png)?;
        histogram.record((model_stage + encoding.elapsed()).as_secs_f64());
        Ok(png)
    }))
}

fn moderate(engine: &Engine, image: &Image, check: &'static str) -> Result<(), JobError> {
    let score = engine.unsafe_score(image)?;
    if engine.is_blocked(score) {
        return Err(JobError::Blocked { check, score });
    }
    Ok(())
}
