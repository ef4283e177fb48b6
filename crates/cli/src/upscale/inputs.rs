//! Which files a batch reads and where each output goes: files as given, folders as their
//! image files (with `--recursive` to any depth, else their subfolders named in a warning),
//! globs as their matches; outputs beside their inputs, in `-o` (the folder tree kept under it),
//! or, for one input, the `-o` file.

use std::path::{Path, PathBuf};

use anyhow::bail;
use upres_engine::OutputFormat;

use super::{Format, UpscaleArgs};

const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "webp"];

/// An input file, and the folder it is in relative to the folder it was found in (empty for a
/// file or glob given as such).
pub struct Input {
    pub path: PathBuf,
    pub subfolder: PathBuf,
}

/// One unit of work: where it comes from and where it goes.
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
    pub format: OutputFormat,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The inputs of the command line, in order (a folder's files sorted).
pub fn expand(inputs: &[String], recursive: bool) -> anyhow::Result<Vec<Input>> {
    let mut files = Vec::new();
    for input in inputs {
        let path = Path::new(input);
        if path.is_dir() {
            walk(path, Path::new(""), recursive, &mut files)?;
        } else if path.exists() {
            files.push(Input {
                path: path.to_path_buf(),
                subfolder: PathBuf::new(),
            });
        } else if input.contains(['*', '?', '[']) {
            let matches: Vec<PathBuf> = glob::glob(input)?
                .filter_map(Result::ok)
                .filter(|p| p.is_file())
                .collect();
            if matches.is_empty() {
                bail!("no file matches {input}");
            }
            files.extend(matches.into_iter().map(|path| Input {
                path,
                subfolder: PathBuf::new(),
            }));
        } else {
            bail!("no such file or folder: {input}");
        }
    }
    if files.is_empty() {
        bail!("no images found in {}", inputs.join(" "));
    }
    Ok(files)
}

/// The image files of `root/subfolder`, and with `recursive` those of its subfolders.
fn walk(
    root: &Path,
    subfolder: &Path,
    recursive: bool,
    files: &mut Vec<Input>,
) -> anyhow::Result<()> {
    let folder = root.join(subfolder);
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&folder)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let (folders, found): (Vec<PathBuf>, Vec<PathBuf>) =
        entries.into_iter().partition(|p| p.is_dir());
    files.extend(found.into_iter().filter(|p| is_image(p)).map(|path| Input {
        path,
        subfolder: subfolder.to_path_buf(),
    }));
    if recursive {
        for inner in folders {
            walk(
                root,
                &subfolder.join(inner.file_name().unwrap_or_default()),
                true,
                files,
            )?;
        }
    } else if !folders.is_empty() {
        let names: Vec<String> = folders
            .iter()
            .map(|f| {
                f.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        eprintln!(
            "warning: {} has subfolders, not read without --recursive: {}",
            folder.display(),
            names.join(", ")
        );
    }
    Ok(())
}

pub fn output_format(format: Option<Format>, output: Option<&Path>, quality: u8) -> OutputFormat {
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

/// Where each input goes: `-o` as a file when there is one input and it is not a folder, else
/// `-o` as a folder (the input's subfolder kept under it) or the input's own folder, with
/// `<name><suffix>.<ext>`. Two inputs may not go to one output.
pub fn plan(inputs: &[Input], args: &UpscaleArgs, suffix: &str) -> anyhow::Result<Vec<Job>> {
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
                    let stem = input.path.file_stem().unwrap_or_default().to_string_lossy();
                    let dir = match folder {
                        Some(folder) => folder.join(&input.subfolder),
                        None => input.path.parent().unwrap_or(Path::new("")).to_path_buf(),
                    };
                    dir.join(format!("{stem}{suffix}.{}", format.extension()))
                }
            };
            Job {
                input: input.path.clone(),
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
