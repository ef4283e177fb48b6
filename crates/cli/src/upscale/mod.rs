//! `upres upscale`: a load -> upscale -> save pipeline over files, globs and folders. Decoding
//! the next image and encoding the previous one run on their own threads while the model works.

use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::thread;

use anyhow::{bail, Context};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use upres_engine::{Engine, Image, OutputFormat, UpscaleRequest};
use upres_server::EngineArgs;

const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

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
    /// Upscale factor.
    #[arg(long, short, env = "UPRES_SCALE", default_value_t = 4, value_parser = parse_scale)]
    scale: u32,
    /// Model id (`upres models` lists them).
    #[arg(long, short, env = "UPRES_MODEL", default_value = upres_engine::catalog::DEFAULT_MODEL)]
    model: String,
    /// Output file (one input) or folder. Default: beside each input, as `<name>_x<scale>.<ext>`.
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

fn parse_scale(s: &str) -> Result<u32, String> {
    match s {
        "2" => Ok(2),
        "4" => Ok(4),
        _ => Err("the scale is 2 or 4".into()),
    }
}

/// One unit of work: where it comes from and where it goes.
struct Job {
    input: PathBuf,
    output: PathBuf,
    format: OutputFormat,
}

/// Runs the batch. Returns Ok(false) when some file failed (each is reported, the batch goes on).
pub fn run(args: UpscaleArgs) -> anyhow::Result<bool> {
    let inputs = expand_inputs(&args.inputs)?;
    let jobs = plan_outputs(&inputs, &args)?;
    let engine = Engine::new(&args.engine.config())?;
    let request = UpscaleRequest {
        model: args.model.clone(),
        scale: args.scale,
        preserve_alpha: !args.no_alpha,
    };
    engine.model(&request.model)?.plan(request.scale)?;

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
                Ok(
                    engine.upscale_with_progress(&image, &request, &|done, total| {
                        tiles.set_length(total as u64);
                        tiles.set_position(done as u64);
                    })?,
                )
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

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Files as given, folders as their image files (sorted), globs as their matches.
fn expand_inputs(inputs: &[String]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && is_image(p))
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.to_path_buf());
        } else if input.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(input)?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                bail!("no file matches {input}");
            }
            files.extend(matches);
        } else {
            bail!("no such file or folder: {input}");
        }
    }
    if files.is_empty() {
        bail!("no images found in {}", inputs.join(" "));
    }
    Ok(files)
}

fn output_format(format: Option<Format>, output: Option<&Path>, quality: u8) -> OutputFormat {
    let from_extension = || match output?.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => Some(Format::Jpeg),
        "webp" => Some(Format::Webp),
        "png" => Some(Format::Png),
        _ => None,
    };
    match format.or_else(from_extension).unwrap_or(Format::Png) {
        Format::Png => OutputFormat::Png,
        Format::Jpeg => OutputFormat::Jpeg { quality },
        Format::Webp => OutputFormat::WebP,
    }
}

/// Where each input goes: `-o` as a file when there is one input and it is not a folder,
/// else `-o` as a folder (or the input's folder) with `<name>_x<scale>.<ext>`.
fn plan_outputs(inputs: &[PathBuf], args: &UpscaleArgs) -> anyhow::Result<Vec<Job>> {
    let single_file = match &args.output {
        Some(out) => inputs.len() == 1 && !out.is_dir() && out.extension().is_some(),
        None => false,
    };
    let file_target = args.output.as_deref().filter(|_| single_file);
    let format = output_format(args.format, file_target, args.quality);
    let jobs: Vec<Job> = inputs
        .iter()
        .map(|input| {
            let output = match (&args.output, single_file) {
                (Some(out), true) => out.clone(),
                (folder, _) => {
                    let stem = input.file_stem().unwrap_or_default().to_string_lossy();
                    let dir = folder
                        .clone()
                        .unwrap_or_else(|| input.parent().unwrap_or(Path::new("")).to_path_buf());
                    dir.join(format!("{stem}_x{}.{}", args.scale, format.extension()))
                }
            };
            Job {
                input: input.clone(),
                output,
                format,
            }
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for job in &jobs {
        if !seen.insert(&job.output) {
            bail!(
                "two inputs would both be written to {}",
                job.output.display()
            );
        }
    }
    Ok(jobs)
}
