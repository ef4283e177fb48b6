//! The model catalog: `models/manifest.json`, built into the binary. It says what every model
//! is (kind, look, license, source, scales, measured speed) and how the engine feeds it
//! (its tiling context, border and shrink), whether or not it is installed.

use std::sync::LazyLock;

use serde::Deserialize;

use crate::tiling::ModelTiling;

/// What a super-resolution model's output looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Look {
    /// Trained for fidelity (PSNR): reproduces the picture, adds no invented texture.
    Faithful,
    /// A GAN: sharper and cleaner to the eye, lower PSNR by design.
    Gan,
    /// Cheap, about bicubic quality: for tests and load tests.
    Fast,
}

impl Look {
    pub fn as_str(self) -> &'static str {
        match self {
            Look::Faithful => "faithful",
            Look::Gan => "GAN",
            Look::Fast => "fast",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Source {
    pub registry: String,
    pub package: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct License {
    pub spdx: String,
}

/// One model of the manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CatalogEntry {
    pub id: String,
    /// `sr` (super-resolution) or `classifier`.
    pub kind: String,
    pub description: String,
    /// Scales with their own weights.
    #[serde(default)]
    pub scales: Vec<u32>,
    pub look: Option<Look>,
    pub source: Source,
    pub license: License,
    #[serde(default)]
    pub tiling: ModelTiling,
    /// Input megapixels per second at the model's largest scale through the engine, 512x512
    /// input, on the reference machine (2 cores, no GPU; `benches/benches/latency.rs`).
    pub megapixels_per_second: Option<f64>,
}

/// The model used when a request or command names none (CLI and server): the most faithful
/// model that runs a 1-megapixel x4 inside the SDK's v1 timeout on a 2-core CPU (README,
/// "Choosing the default model").
pub const DEFAULT_MODEL: &str = "span";

/// Seconds the official SDK waits for a v1 (synchronous) answer.
pub const SDK_TIMEOUT_SECONDS: f64 = 30.0;

impl CatalogEntry {
    pub fn is_sr(&self) -> bool {
        self.kind == "sr"
    }

    /// How fast the model is on the reference machine, by what a 1-megapixel input takes.
    pub fn speed_class(&self) -> Option<&'static str> {
        let seconds = 1.0 / self.megapixels_per_second?;
        Some(if seconds <= 10.0 {
            "fast (1 MP under 10 s)"
        } else if seconds <= SDK_TIMEOUT_SECONDS {
            "medium (1 MP under 30 s)"
        } else {
            "slow (1 MP over 30 s: use v2)"
        })
    }
}

#[derive(Deserialize)]
struct Manifest {
    models: Vec<CatalogEntry>,
}

static CATALOG: LazyLock<Vec<CatalogEntry>> = LazyLock::new(|| {
    let manifest: Manifest = serde_json::from_str(include_str!("../../../models/manifest.json"))
        .expect("models/manifest.json is checked by the catalog's unit test");
    manifest.models
});

/// Every model the manifest lists, installed or not, in manifest order.
pub fn catalog() -> &'static [CatalogEntry] {
    &CATALOG
}

pub fn entry(id: &str) -> Option<&'static CatalogEntry> {
    catalog().iter().find(|e| e.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_parses_and_every_sr_model_says_how_to_feed_it() {
        let sr: Vec<_> = catalog().iter().filter(|e| e.is_sr()).collect();
        assert!(sr.len() >= 4);
        for e in &sr {
            assert!(
                !e.scales.is_empty() && e.look.is_some(),
                "{}: scales and look",
                e.id
            );
        }
        assert!(entry("open-nsfw").is_some_and(|e| !e.is_sr()));
        let ids: std::collections::HashSet<_> = catalog().iter().map(|e| &e.id).collect();
        assert_eq!(ids.len(), catalog().len(), "duplicate ids");
    }
}
