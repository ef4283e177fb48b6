//! Settings files (keys, fault rules): TOML or JSON.

use crate::error::Invalid;

/// Parses a configuration file: TOML for `.toml`, JSON for `.json`, else whichever parses.
pub fn parse_config<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> Result<T, Invalid> {
    let invalid = |e: &dyn std::fmt::Display| Invalid(format!("{}: {e}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| invalid(&e))?;
    let parsed = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| e.to_string()),
        Some("json") => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => serde_json::from_str(&text).or_else(|json| {
            toml::from_str(&text).map_err(|toml| format!("neither JSON ({json}) nor TOML ({toml})"))
        }),
    };
    parsed.map_err(|e| invalid(&e))
}
