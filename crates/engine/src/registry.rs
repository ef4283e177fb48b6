//! The model registry: which models are installed (found by file name in the models folder)
//! and their sessions, loaded on first use and shared behind a mutex.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ort::environment::Environment;

use crate::catalog::{self, CatalogEntry, ModelTiling};
use crate::error::{EngineError, Result};
use crate::inference::SrModel;
use crate::runtime::{self, Device, SharedSession};
use crate::user_model;

/// File name of the content-moderation classifier in the models folder.
pub const CLASSIFIER_FILE: &str = "open-nsfw.onnx";

/// An installed super-resolution model and the scales it has weights for.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub id: String,
    /// Scales with their own weights (files `<id>-x<scale>.onnx`).
    pub native_scales: Vec<u32>,
    /// How tiles are fed to it: from the manifest, or the default for a file it does not list.
    pub tiling: ModelTiling,
    /// Its manifest entry, when the manifest lists it.
    pub catalog: Option<&'static CatalogEntry>,
}

impl ModelInfo {
    /// How to produce `scale`: the native scale to run and the box-downscale factor after it.
    /// x2 from an x4-only model is x4 followed by a 2x area downscale.
    pub fn plan(&self, scale: u32) -> Result<(u32, u32)> {
        self.plan_of(scale).ok_or_else(|| {
            let supported: Vec<String> = [2, 4]
                .into_iter()
                .filter(|&s| self.plan_of(s).is_some())
                .map(|s| s.to_string())
                .collect();
            EngineError::UnsupportedScale {
                model: self.id.clone(),
                scale,
                supported: supported.join(", "),
            }
        })
    }

    fn plan_of(&self, scale: u32) -> Option<(u32, u32)> {
        if self.native_scales.contains(&scale) {
            Some((scale, 1))
        } else if scale == 2 && self.native_scales.contains(&4) {
            Some((4, 2))
        } else {
            None
        }
    }
}

pub struct Registry {
    env: &'static Environment,
    dir: PathBuf,
    intra_threads: usize,
    device: Device,
    models: BTreeMap<String, ModelInfo>,
    /// Model files outside the models folder, by id (a user's own, `--model PATH.onnx`).
    files: HashMap<String, PathBuf>,
    sessions: Mutex<HashMap<PathBuf, SharedSession>>,
}

impl Registry {
    /// Lists the models installed in `dir`.
    pub fn scan(
        env: &'static Environment,
        dir: &Path,
        intra_threads: usize,
        device: Device,
    ) -> Result<Self> {
        Ok(Registry {
            env,
            dir: dir.to_path_buf(),
            intra_threads,
            device,
            models: installed(dir)?,
            files: HashMap::new(),
            sessions: Mutex::default(),
        })
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.models.values()
    }

    pub fn model(&self, id: &str) -> Result<&ModelInfo> {
        self.models.get(id).ok_or_else(|| {
            let installed: Vec<&str> = self.models.keys().map(String::as_str).collect();
            let installed = match installed.is_empty() {
                true => "none".to_string(),
                false => installed.join(", "),
            };
            match catalog::entry(id) {
                Some(e) if e.is_sr() => EngineError::ModelNotInstalled(id.to_string(), installed),
                _ => EngineError::UnknownModel(id.to_string(), installed),
            }
        })
    }

    /// The session for `<id>-x<scale>.onnx` (or a user's file), loaded on first use.
    pub fn sr_session(&self, id: &str, native_scale: u32) -> Result<SharedSession> {
        match self.files.get(id) {
            Some(path) => self.session_at(path.clone(), id),
            None => self.session(&format!("{id}-x{native_scale}.onnx"), id),
        }
    }

    /// A super-resolution model file of the user's, anywhere: checked to be one image in, one
    /// image out, its scale found by a probe run ([`user_model::probe`]), then listed under its
    /// path as id with the default tiling. Returns the id.
    pub fn add_file(&mut self, path: &Path) -> Result<String> {
        let id = path.display().to_string();
        if !path.is_file() {
            return Err(EngineError::NotAnUpscaler {
                path: path.to_path_buf(),
                reason: "there is no such file".into(),
            });
        }
        let session =
            self.session_at(path.to_path_buf(), &id)
                .map_err(|e| EngineError::NotAnUpscaler {
                    path: path.to_path_buf(),
                    reason: format!("ONNX Runtime cannot load it ({e})"),
                })?;
        let scale = user_model::probe(&session, path)?;
        self.files.insert(id.clone(), path.to_path_buf());
        self.models.insert(
            id.clone(),
            ModelInfo {
                id: id.clone(),
                native_scales: vec![scale],
                tiling: ModelTiling::default(),
                catalog: None,
            },
        );
        Ok(id)
    }

    /// What the engine runs a tile of `model` with: the whole model's session, or, for a
    /// split model, those of `<id>-x<scale>.trunk.onnx` and `.tail.onnx`.
    pub fn sr_model(&self, model: &ModelInfo, native_scale: u32) -> Result<SrModel> {
        let id = &model.id;
        Ok(match model.tiling.tail {
            None => SrModel::Whole(self.sr_session(id, native_scale)?),
            Some(strips) => SrModel::Split {
                trunk: self.session(&format!("{id}-x{native_scale}.trunk.onnx"), id)?,
                tail: self.session(&format!("{id}-x{native_scale}.tail.onnx"), id)?,
                strips,
            },
        })
    }

    /// The content-moderation classifier's session.
    pub fn classifier_session(&self) -> Result<SharedSession> {
        self.session(CLASSIFIER_FILE, "open-nsfw")
    }

    fn session(&self, file: &str, model: &str) -> Result<SharedSession> {
        self.session_at(self.dir.join(file), model)
    }

    fn session_at(&self, path: PathBuf, model: &str) -> Result<SharedSession> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(session) = sessions.get(&path) {
            return Ok(session.clone());
        }
        if !path.exists() {
            return Err(EngineError::ModelMissing {
                model: model.to_string(),
                path,
            });
        }
        let session = Arc::new(Mutex::new(runtime::load_session(
            self.env,
            &path,
            self.intra_threads,
            self.device,
        )?));
        sessions.insert(path, session.clone());
        Ok(session)
    }
}

/// The super-resolution models installed in `dir` (files `<id>-x<scale>.onnx`), by id. Needs
/// no ONNX Runtime.
pub fn installed(dir: &Path) -> Result<BTreeMap<String, ModelInfo>> {
    let mut models: BTreeMap<String, ModelInfo> = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("models folder {}: {e}. Run `make setup`", dir.display()),
        )
    })?;
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some((id, scale)) = parse_model_file(&name) {
            let info = models.entry(id.to_string()).or_insert_with(|| {
                let catalog = catalog::entry(id);
                ModelInfo {
                    id: id.to_string(),
                    native_scales: vec![],
                    tiling: catalog.map(|e| e.tiling).unwrap_or_default(),
                    catalog,
                }
            });
            info.native_scales.push(scale);
            info.native_scales.sort_unstable();
        }
    }
    Ok(models)
}

/// `esrgan-slim-x4.onnx` -> (`esrgan-slim`, 4).
fn parse_model_file(name: &str) -> Option<(&str, u32)> {
    let stem = name.strip_suffix(".onnx")?;
    let (id, scale) = stem.rsplit_once("-x")?;
    let scale: u32 = scale.parse().ok()?;
    (matches!(scale, 2 | 4) && !id.is_empty()).then_some((id, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_model_file_names() {
        assert_eq!(
            parse_model_file("esrgan-slim-x4.onnx"),
            Some(("esrgan-slim", 4))
        );
        assert_eq!(
            parse_model_file("realesrgan-x4plus-x4.onnx"),
            Some(("realesrgan-x4plus", 4))
        );
        assert_eq!(parse_model_file("open-nsfw.onnx"), None);
        assert_eq!(parse_model_file("m-x3.onnx"), None);
        assert_eq!(parse_model_file("esrgan-slim-x4.onnx.part"), None);
    }

    #[test]
    fn x2_from_x4_only_model_is_planned_as_x4_then_halved() {
        let info = ModelInfo {
            id: "m".into(),
            native_scales: vec![4],
            tiling: ModelTiling::default(),
            catalog: None,
        };
        assert_eq!(info.plan(4).unwrap(), (4, 1));
        assert_eq!(info.plan(2).unwrap(), (4, 2));
        assert!(matches!(
            info.plan(3),
            Err(EngineError::UnsupportedScale { supported, .. }) if supported == "2, 4"
        ));
        let x2_only = ModelInfo {
            native_scales: vec![2],
            ..info.clone()
        };
        assert_eq!(
            x2_only.plan(4).unwrap_err().to_string(),
            "model 'm' cannot upscale by 4x (supported: 2)"
        );
        let both = ModelInfo {
            native_scales: vec![2, 4],
            ..info
        };
        assert_eq!(both.plan(2).unwrap(), (2, 1));
    }
}
