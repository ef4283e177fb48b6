//! `upres upscale`: a load -> upscale -> save pipeline over files, globs and folders. Decoding
//! the next image and encoding the previous one run on their own threads while the model works.

mod inputs;

use std::path::PathBuf;
use std::sync::mpsc::sync_channel;
use std::thread;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use upres_engine::{Engine, Image, UpscaleRequest};
use upres_server::EngineArgs;

use self::inputs::Job;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Png,
    Jpeg,
    Webp,
}

#[derive(clap::Args)]
pub struct UpscaleArgs {
    /// Image files, folders (their PNG/JPEG/WebP files) or glob patterns.
    #[arg(required = true)]
    inputs: Vec<String>,
    /// Upscale factor, 1 to 16 (e.g. 3 or 1.5): the model runs at the smallest of its scales
    /// (or chain of them) that reaches it, then the result is resampled to the exact size.
    #[arg(long, short, env = "UPRES_SCALE", default_value = "4", value_parser = parse_scale,
        conflicts_with_all = ["width", "height"])]
    scale: f64,
    /// Output width in pixels (the aspect kept; with --height, the output fits inside both).
    #[arg(long, env = "UPRES_WIDTH", value_parser = clap::value_parser!(u32).range(1..))]
    width: Option<u32>,
    /// Output height in pixels (the aspect kept).
    #[arg(long, env = "UPRES_HEIGHT", value_parser = clap::value_parser!(u32).range(1..))]
    height: Option<u32>,
    /// Walk folders to any depth; under -o the folder tree is kept.
    #[arg(long, short, env = "UPRES_RECURSIVE")]
    recursive: bool,
    /// Leave an input alone when its output exists already.
    #[arg(long, env = "UPRES_SKIP_EXISTING")]
    skip_existing: bool,
    /// Model id (`upres models` lists them), or the path of a super-resolution model of your
    /// own (`.onnx`: one NCHW RGB float image in 0..1 in, one out; its scale is probed).
    #[arg(long, short, env = "UPRES_MODEL", default_value = upres_engine::catalog::DEFAULT_MODEL)]
    model: String,
    /// Output file (one input) or folder. Default: beside each input, as `<name>_x<scale>.<ext>`
    /// (`_w<width>`, `_h<height>` or `_<width>x<height>` with those).
    #[arg(long, short, env = "UPRES_OUTPUT")]
    output: Option<PathBuf>,
    /// Output format. Default: from the output file's extension, else PNG.
    #[arg(long, env = "UPRES_FORMAT", value_enum)]
    format: Option<Format>,
    /// JPEG quality (1-100).
    #[arg(long, env = "UPRES_JPEG_QUALITY", default_value_t = 90, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: u8,
    /// Drop transparency: composite over white and write an opaque image.
    #[arg(long, env = "UPRES_NO_ALPHA")]
    no_alpha: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(scale) if (1.0..=upres_engine::target::MAX_FACTOR).contains(&scale) => Ok(scale),
        _ => Err(format!(
            "the scale is a number from 1 to {}",
            upres_engine::target::MAX_FACTOR
        )),
    }
}

/// What each output's size is: a factor, or a box to fit in.
#[derive(Clone, Copy)]
enum Target {
    Scale(f64),
    Fit(Option<u32>, Option<u32>),
}

impl Target {
    fn of(args: &UpscaleArgs) -> Self {
        match (args.width, args.height) {
            (None, None) => Target::Scale(args.scale),
            (width, height) => Target::Fit(width, height),
        }
    }

    /// The suffix of an output's name: `_x4`, `_x1.5`, `_w1920`, `_h1080`, `_1920x1080`.
    fn suffix(self) -> String {
        match self {
            Target::Scale(scale) => format!("_x{scale}"),
            Target::Fit(Some(w), None) => format!("_w{w}"),
            Target::Fit(None, Some(h)) => format!("_h{h}"),
            Target::Fit(w, h) => format!("_{}x{}", w.unwrap_or(0), h.unwrap_or(0)),
        }
    }

    /// A model's native request (2 or 4) when the target is exactly one.
    fn native(self) -> Option<u32> {
        match self {
            Target::Scale(s) if s == 2.0 || s == 4.0 => Some(s as u32),
            _ => None,
        }
    }
}

/// Runs the batch. Returns Ok(false) when some file failed (each is reported, the batch goes on).
pub fn run(args: UpscaleArgs) -> anyhow::Result<bool> {
    let target = Target::of(&args);
    let inputs = inputs::expand(&args.inputs, args.recursive)?;
    let planned = inputs::plan(&inputs, &args, &target.suffix())?;
    let jobs: Vec<Job> = if args.skip_existing {
        let (done, todo): (Vec<Job>, Vec<Job>) =
            planned.into_iter().partition(|job| job.output.exists());
        if !done.is_empty() {
            eprintln!(
                "skipped {} of {} images: their outputs exist",
                done.len(),
                inputs.len()
            );
        }
        todo
    } else {
        planned
    };
    let mut engine = Engine::new(&args.engine.config())?;
    if args.model.ends_with(".onnx") {
        engine.add_model_file(std::path::Path::new(&args.model))?;
    }
    let model = engine.model(&args.model)?;
    match target {
        Target::Scale(scale) if target.native().is_none() => {
            upres_engine::target::chain(model, scale)?;
        }
        Target::Scale(scale) => {
            model.plan(scale as u32)?;
        }
        Target::Fit(..) => {}
    }

    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(jobs.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} images {elapsed}")
            .unwrap(),
    );
    overall.set_prefix("total");
    let tiles = bars.add(ProgressBar::new(0));
    tiles.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} tiles {msg}").unwrap(),
    );
    tiles.set_prefix("image");

    let (decoded_tx, decoded_rx) = sync_channel::<(Job, anyhow::Result<Image>)>(1);
    let (encoded_tx, encoded_rx) = sync_channel::<(Job, Image)>(1);
    let limits = engine.limits();
    let failures = thread::scope(|scope| {
        scope.spawn(move || {
            for job in jobs {
                let image = std::fs::read(&job.input)
                    .map_err(anyhow::Error::from)
                    .and_then(|bytes| Ok(upres_engine::decode(&bytes, &limits)?));
                if decoded_tx.send((job, image)).is_err() {
                    break;
                }
            }
        });
        let saver = scope.spawn(|| {
            let mut failures = 0;
            for (job, image) in encoded_rx {
                if let Err(err) = save(&job, &image) {
                    report(&bars, &job, &err);
                    failures += 1;
                }
                overall.inc(1);
            }
            failures
        });
        let mut failures = 0;
        for (job, image) in decoded_rx {
            tiles.set_message(job.input.display().to_string());
            let upscaled = image.and_then(|image| {
                upscale(&engine, &image, &args, target, &|run, runs, done, total| {
                    tiles.set_length(total as u64);
                    tiles.set_position(done as u64);
                    if runs > 1 {
                        tiles.set_prefix(format!("run {}/{runs}", run + 1));
                    }
                })
            });
            match upscaled {
                Ok(out) => encoded_tx
                    .send((job, out))
                    .expect("saver runs until the channel closes"),
                Err(err) => {
                    report(&bars, &job, &err);
                    failures += 1;
                    overall.inc(1);
                }
            }
        }
        drop(encoded_tx);
        failures + saver.join().expect("saver thread")
    });
    tiles.finish_and_clear();
    overall.finish();
    if failures > 0 {
        eprintln!("{failures} of {} images failed", inputs.len());
    }
    Ok(failures == 0)
}

/// One image to its target: a native x2 / x4 as the API runs it, any other size through the
/// engine's chain of scales and a resample.
fn upscale(
    engine: &Engine,
    image: &Image,
    args: &UpscaleArgs,
    target: Target,
    progress: &dyn Fn(usize, usize, usize, usize),
) -> anyhow::Result<Image> {
    let preserve_alpha = !args.no_alpha;
    if let Some(scale) = target.native() {
        let request = UpscaleRequest {
            model: args.model.clone(),
            scale,
            preserve_alpha,
        };
        return Ok(engine
            .upscale_with_progress(image, &request, &|done, total| progress(0, 1, done, total))?);
    }
    let size = match target {
        Target::Scale(scale) => {
            upres_engine::target::scaled((image.width(), image.height()), scale)
        }
        Target::Fit(width, height) => {
            upres_engine::target::fit((image.width(), image.height()), width, height)?.0
        }
    };
    Ok(engine.upscale_to(image, &args.model, size, preserve_alpha, progress)?)
}

fn report(bars: &MultiProgress, job: &Job, err: &anyhow::Error) {
    bars.suspend(|| eprintln!("failed: {}: {err:#}", job.input.display()));
}

fn save(job: &Job, image: &Image) -> anyhow::Result<()> {
    let bytes = upres_engine::encode(image, job.format)?;
    if let Some(parent) = job.output.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&job.output, bytes).with_context(|| format!("writing {}", job.output.display()))
}
