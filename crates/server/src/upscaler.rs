//! What a job runs. Production runs the engine; the job machinery only sees this trait, so
//! tests can also run it with a closure (for example one that panics).

use upres_engine::{Engine, Image, OutputFormat, UpscaleRequest};

use crate::error::ServerError;
use crate::params::JobSpec;

pub trait Upscaler: Send + Sync + 'static {
    /// Checks, before a job is admitted, that it can run (model installed, scale supported).
    fn validate(&self, _spec: &JobSpec) -> Result<(), ServerError> {
        Ok(())
    }

    /// Loads what the first request would otherwise wait for. Blocking.
    fn warm_up(&self, _model: &str) -> Result<(), ServerError> {
        Ok(())
    }

    /// Turns the input file into the output PNG. Blocking: runs on a worker thread.
    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Vec<u8>, ServerError>;
}

impl<F> Upscaler for F
where
    F: Fn(&[u8], &JobSpec) -> Result<Vec<u8>, ServerError> + Send + Sync + 'static,
{
    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Vec<u8>, ServerError> {
        self(input, spec)
    }
}

impl Upscaler for Engine {
    fn validate(&self, spec: &JobSpec) -> Result<(), ServerError> {
        let invalid = |reason: String| ServerError::InvalidField {
            field: "model",
            reason,
        };
        self.model(&spec.model)
            .and_then(|model| model.plan(spec.scale))
            .map_err(|err| invalid(err.to_string()))?;
        Ok(())
    }

    fn warm_up(&self, model: &str) -> Result<(), ServerError> {
        Ok(self.preload(model, false)?)
    }

    fn run(&self, input: &[u8], spec: &JobSpec) -> Result<Vec<u8>, ServerError> {
        let request = UpscaleRequest {
            model: spec.model.clone(),
            scale: spec.scale,
            preserve_alpha: spec.preserve_alpha,
        };
        let image = self.decode(input)?;
        self.check(image.width(), image.height(), &request)?;
        if spec.input_moderation {
            moderate(self, &image, "input")?;
        }
        let output = self.upscale(&image, &request)?;
        drop(image);
        if spec.output_moderation {
            moderate(self, &output, "output")?;
        }
        Ok(upres_engine::encode(&output, OutputFormat::Png)?)
    }
}

fn moderate(engine: &Engine, image: &Image, check: &'static str) -> Result<(), ServerError> {
    let score = engine.unsafe_score(image)?;
    if engine.is_blocked(score) {
        return Err(ServerError::Blocked { check, score });
    }
    Ok(())
}
