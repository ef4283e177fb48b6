//! The model catalog: `models/manifest.json`, built into the binary. It says what every model
//! is (kind, look, license, source, scales, measured speed) and how the engine feeds it
//! (its tiling context, border and shrink), whether or not it is installed.

use std::sync::LazyLock;

use serde::Deserialize;

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

/// How pixels beyond the image border are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Border {
    /// Mirrored about the edge pixel (numpy's `reflect`): keeps texture and gradients going.
    #[default]
    Reflect,
    /// The edge pixel repeated.
    Replicate,
}

/// What a model needs around each tile, in input pixels, and the memory it needs; stored per
/// model in the manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelTiling {
    pub border: Border,
    /// Extra pixels on every side of a tile whose output is cut off: the reach of the model's
    /// zero padding into its output (measured by the engine's `tile_context` bench).
    pub context: usize,
    /// Mirrored pixels fed beyond the image border, at most `context`: enough that a flat image
    /// stays flat to its border (within a level). At the border there is no neighbouring tile
    /// to match, so it can be less than the context joins need, and a whole image pays only
    /// this. Unset: the context (measured by the engine's `border_pad` bench).
    #[serde(default)]
    pub border_pad: Option<usize>,
    /// Pixels on every side that the network's unpadded convolutions consume (its output is
    /// `scale * (input - 2 * shrink)`).
    pub shrink: usize,
    /// ONNX Runtime's working memory for one run, in bytes per input pixel (context
    /// included), at the model's largest scale (measured by benches/tiles.py). For a split
    /// model: the trunk's, with the features it hands the tail and the tile's float output.
    pub bytes_per_pixel: u64,
    /// Set for a model split in two (`<id>-x<scale>.trunk.onnx` and `.tail.onnx`): the
    /// tail runs on strips of the trunk's features (see `inference`).
    #[serde(default)]
    pub tail: Option<Tail>,
}

/// The tail of a split model, which holds the most memory per input pixel (its upsampling
/// layers): it runs on strips of the trunk's features, at most [`Tail::MEMORY`] at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tail {
    /// Feature rows fed above and below a strip (cut off again): the tail's reach, so that
    /// strips join exactly (checked by the golden test of split models).
    pub context: usize,
    /// ONNX Runtime's working memory for the tail, in bytes per feature pixel of a strip
    /// (context included; one feature pixel per input pixel), measured by benches/tiles.py.
    pub bytes_per_pixel: u64,
}

impl Tail {
    /// The tail's working memory: strips are as tall as fits in it.
    pub const MEMORY: u64 = 128 << 20;

    /// Feature rows per strip for features `width` wide (at least one).
    pub fn strip_rows(self, width: usize) -> usize {
        let rows = Self::MEMORY / (self.bytes_per_pixel * width as u64).max(1);
        (rows as usize).saturating_sub(2 * self.context).max(1)
    }

    /// Working memory of the tail on features of `width` x `height`.
    pub(crate) fn working_memory(self, (width, height): (usize, usize)) -> u64 {
        let rows = (self.strip_rows(width) + 2 * self.context).min(height);
        self.bytes_per_pixel * (rows * width) as u64
    }
}

impl Default for ModelTiling {
    /// For a model file the manifest does not describe: a generous guess.
    fn default() -> Self {
        ModelTiling {
            border: Border::Reflect,
            context: 16,
            border_pad: None,
            shrink: 0,
            bytes_per_pixel: 16 << 10,
            tail: None,
        }
    }
}

/// The model used when a request or command names none (CLI and server): the most faithful
/// model that runs a 1-megapixel x4 inside the SDK's 30 s v1 timeout on a 2-core CPU (about
/// 9 s there; it leads every other model's PSNR by 1 dB or more at x4).
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
