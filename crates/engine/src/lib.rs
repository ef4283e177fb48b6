//! upres engine: super-resolution with ONNX Runtime, overlapping tiles, alpha kept apart,
//! codecs with limits, and content moderation.

pub mod alpha;
pub mod catalog;
pub mod codec;
pub mod config;
pub mod error;
pub mod inference;
pub mod moderation;
pub mod output;
pub mod paths;
pub mod planar;
pub mod registry;
pub mod resample;
pub mod runtime;
pub mod target;
pub mod tiling;
pub mod user_model;

pub use catalog::ModelTiling;
pub use codec::{decode, encode, Image, Limits, OutputFormat};
pub use config::EngineConfig;
pub use error::{EngineError, Result};
pub use inference::{run_sr_with, run_untiled, SrModel};
pub use output::Layout;
pub use registry::ModelInfo;
pub use resample::Resample;
pub use runtime::{Device, SharedSession};
pub use tiling::TileConfig;

use crate::output::Output;
use crate::registry::Registry;

/// What to do to one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpscaleRequest {
    pub model: String,
    /// 2 or 4.
    pub scale: u32,
    /// true: RGBA in gives RGBA out. false: transparency is composited over white first and
    /// the output is opaque (no alpha channel).
    pub preserve_alpha: bool,
}

/// Models, sessions and settings. Shared by all callers (`Send + Sync`).
pub struct Engine {
    registry: Registry,
    /// [`EngineConfig::tile`]: one tiling for every image; else chosen per image from the budget.
    tile: Option<TileConfig>,
    tile_overlap: u32,
    memory_budget: u64,
    tile_context: Option<usize>,
    limits: Limits,
    moderation_threshold: f32,
}

impl Engine {
    /// Loads ONNX Runtime (once per process) and lists the installed models. Sessions load on
    /// first use, or with [`Engine::preload`].
    pub fn new(config: &EngineConfig) -> Result<Self> {
        let library =
            paths::existing(&config.ort_library).ok_or_else(|| EngineError::RuntimeMissing {
                path: config.ort_library.clone(),
                reason: paths::searched(&config.ort_library),
            })?;
        let models = paths::existing(&config.models_dir)
            .ok_or_else(|| EngineError::ModelsMissing(paths::searched(&config.models_dir)))?;
        let env = runtime::init(&library)?;
        Ok(Engine {
            registry: Registry::scan(env, &models, config.threads, config.device)?,
            tile: config.tile_config().map(TileConfig::validate).transpose()?,
            tile_overlap: config.tile_overlap,
            memory_budget: config.memory_budget << 20,
            tile_context: config.tile_context,
            limits: config.limits,
            moderation_threshold: config.moderation_threshold,
        })
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.registry.models()
    }

    pub fn model(&self, id: &str) -> Result<&ModelInfo> {
        self.registry.model(id)
    }

    /// Adds a model file of the user's (`--model PATH.onnx`, see [`user_model`]); returns the
    /// id to name it by (its path).
    pub fn add_model_file(&mut self, path: &std::path::Path) -> Result<String> {
        self.registry.add_file(path)
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Loads every session of `model` (and the classifier when `with_classifier`), so the first
    /// request does not pay for it.
    pub fn preload(&self, model: &str, with_classifier: bool) -> Result<()> {
        let info = self.registry.model(model)?;
        for &scale in &info.native_scales {
            self.registry.sr_model(info, scale)?;
        }
        if with_classifier {
            self.registry.classifier_session()?;
        }
        Ok(())
    }

    /// Decodes with this engine's limits.
    pub fn decode(&self, bytes: &[u8]) -> Result<Image> {
        codec::decode(bytes, &self.limits)
    }

    /// Checks the model and scale exist and the output area is within the limit, without running.
    pub fn check(&self, width: u32, height: u32, request: &UpscaleRequest) -> Result<()> {
        self.plan(width, height, request).map(|_| ())
    }

    /// [`Engine::check`], returning the model and its plan: (native scale, downscale after it).
    fn plan(
        &self,
        width: u32,
        height: u32,
        request: &UpscaleRequest,
    ) -> Result<(&ModelInfo, u32, u32)> {
        let model = self.registry.model(&request.model)?;
        let (native, downscale) = model.plan(request.scale)?;
        self.check_output_area(
            u64::from(width) * u64::from(request.scale),
            u64::from(height) * u64::from(request.scale),
        )?;
        Ok((model, native, downscale))
    }

    /// An output of `width` x `height` is within the output-area limit.
    fn check_output_area(&self, width: u64, height: u64) -> Result<()> {
        if width * height > self.limits.max_output_pixels {
            return Err(EngineError::OutputTooLarge {
                width,
                height,
                pixels: width * height,
                limit: self.limits.max_output_pixels,
            });
        }
        Ok(())
    }

    /// How an image of `(width, height)` is tiled for `model` at `scale`: the model's tiling
    /// (with [`EngineConfig::tile_context`] applied) and the tiles: [`EngineConfig::tile`], else
    /// those that compute least within the memory budget once the images are counted (the
    /// planar float input, the output raster and its encoded copy, at most as large).
    pub fn tiling(
        &self,
        model: &ModelInfo,
        (width, height): (usize, usize),
        scale: usize,
        layout: Layout,
    ) -> (ModelTiling, TileConfig) {
        let model = ModelTiling {
            context: self.tile_context.unwrap_or(model.tiling.context),
            ..model.tiling
        };
        let images =
            12 * (width * height) as u64 + 2 * layout.raster_bytes(width * scale, height * scale);
        let tiles = self.tile.unwrap_or_else(|| {
            TileConfig::within_budget(
                model,
                (width, height),
                scale,
                self.tile_overlap,
                self.memory_budget.saturating_sub(images),
            )
        });
        (model, tiles)
    }

    /// Upscales one decoded image.
    pub fn upscale(&self, image: &Image, request: &UpscaleRequest) -> Result<Image> {
        self.upscale_with_progress(image, request, &|_, _| {})
    }

    /// [`Engine::upscale`], calling `progress(tiles_done, tiles_total)` after each tile.
    pub fn upscale_with_progress(
        &self,
        image: &Image,
        request: &UpscaleRequest,
        progress: &dyn Fn(usize, usize),
    ) -> Result<Image> {
        let (model, native, downscale) = self.plan(image.width(), image.height(), request)?;
        let sr = self.registry.sr_model(model, native)?;
        let scale = request.scale as usize;
        let (mut rgb, alpha) = alpha::split(&image.pixels);
        let layout = Layout::of(&image.pixels, request.preserve_alpha);
        if let Some(alpha) = &alpha {
            if layout.alpha {
                alpha::fill_transparent(&mut rgb, alpha);
            } else {
                alpha::composite_over_white(&mut rgb, alpha);
            }
        }
        let (w, h) = (rgb.width, rgb.height);
        let mut out = Output::new(w * scale, h * scale, layout);
        let (model_tiling, tiles) = self.tiling(model, (w, h), scale, layout);
        let total = tiling::grid(w, h, tiles).iter().map(Vec::len).sum();
        let mut done = 0;
        tiling::upscale(
            &rgb,
            tiles,
            model_tiling,
            native as usize,
            downscale as usize,
            |tile, tw, th, consume: &mut dyn FnMut(&[f32])| {
                sr.run(tile, (tw, th), native as usize, consume)?;
                done += 1;
                progress(done, total);
                Ok(())
            },
            |y0, rows| out.write_rgb_rows(y0, rows),
        )?;
        drop(rgb);
        if let (Some(alpha), true) = (alpha, layout.alpha) {
            out.write_alpha(&alpha::upscale(&alpha, w, h, w * scale, h * scale));
        }
        Ok(Image {
            pixels: out.into_image(),
            icc_profile: image.icc_profile.clone(),
        })
    }

    /// Upscales to exactly `size` (any factor up to [`target::MAX_FACTOR`]): the model's scales
    /// in the chain that reaches it ([`target::chain`]), then a Lanczos3 resample to the size.
    /// `progress(run, runs, tiles_done, tiles_total)` after each tile.
    pub fn upscale_to(
        &self,
        image: &Image,
        model: &str,
        size: (u32, u32),
        preserve_alpha: bool,
        progress: &dyn Fn(usize, usize, usize, usize),
    ) -> Result<Image> {
        let factor = (f64::from(size.0) / f64::from(image.width()))
            .max(f64::from(size.1) / f64::from(image.height()));
        let steps = target::chain(self.registry.model(model)?, factor)?;
        self.check_output_area(size.0.into(), size.1.into())?;
        let mut current = std::borrow::Cow::Borrowed(image);
        for (run, &scale) in steps.iter().enumerate() {
            let request = UpscaleRequest {
                model: model.to_string(),
                scale,
                preserve_alpha,
            };
            let step = |done, total| progress(run, steps.len(), done, total);
            current =
                std::borrow::Cow::Owned(self.upscale_with_progress(&current, &request, &step)?);
        }
        let image = current.into_owned();
        if (image.width(), image.height()) == size {
            return Ok(image);
        }
        Ok(Image {
            pixels: resample::resize(&image.pixels, size, true, Resample::Lanczos),
            icc_profile: image.icc_profile,
        })
    }

    /// Resizes instead of running the model (the fast engines), with the same checks and
    /// errors as [`Engine::upscale`]: the model must exist and support the scale.
    pub fn resize(
        &self,
        image: &Image,
        request: &UpscaleRequest,
        resample: Resample,
    ) -> Result<Image> {
        self.plan(image.width(), image.height(), request)?;
        let size = (
            image.width() * request.scale,
            image.height() * request.scale,
        );
        Ok(Image {
            pixels: resample::resize(&image.pixels, size, request.preserve_alpha, resample),
            icc_profile: image.icc_profile.clone(),
        })
    }

    /// P(unsafe) of an image, from the open_nsfw classifier.
    pub fn unsafe_score(&self, image: &Image) -> Result<f32> {
        let session = self.registry.classifier_session()?;
        moderation::score(&session, &moderation::preprocess(&image.pixels, true)?)
    }

    /// Whether a score from [`Engine::unsafe_score`] blocks the image.
    pub fn is_blocked(&self, score: f32) -> bool {
        score >= self.moderation_threshold
    }

    /// The session of one model file, for callers that run it themselves (benchmarks, golden
    /// checks of the converted model).
    pub fn session(&self, model: &str, native_scale: u32) -> Result<SharedSession> {
        self.registry.sr_session(model, native_scale)
    }

    /// The sessions the engine runs a tile with (for a split model, its trunk and tail).
    pub fn sr_model(&self, model: &str, native_scale: u32) -> Result<SrModel> {
        self.registry
            .sr_model(self.registry.model(model)?, native_scale)
    }

    pub fn classifier(&self) -> Result<SharedSession> {
        self.registry.classifier_session()
    }
}
