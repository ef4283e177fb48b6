//! `upres models`: the models of the manifest, installed or not, with what a user picks by:
//! scales, look, license and measured speed.

use upres_engine::catalog::{catalog, DEFAULT_MODEL};
use upres_engine::paths::resolve;
use upres_server::ModelsDir;

#[derive(clap::Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    dir: ModelsDir,
}

/// Prints the table; installed models first.
pub fn run(args: ModelsArgs) -> anyhow::Result<()> {
    let dir = resolve(&args.dir.models_dir);
    let installed = upres_engine::registry::installed(&dir).unwrap_or_default();
    let header = [
        "model",
        "installed",
        "scales",
        "look",
        "speed (largest scale, 2-core CPU)",
        "license",
    ];
    let mut rows = vec![header.map(String::from)];
    let mut entries: Vec<_> = catalog().iter().filter(|e| e.is_sr()).collect();
    entries.sort_by_key(|e| !installed.contains_key(&e.id));
    let missing = entries
        .iter()
        .filter(|e| !installed.contains_key(&e.id))
        .count();
    for entry in entries {
        let scales = match entry.scales.as_slice() {
            [4] => "x4 (x2: x4, 2x2 area)".to_string(),
            s => s
                .iter()
                .map(|s| format!("x{s}"))
                .collect::<Vec<_>>()
                .join(" "),
        };
        let default = if entry.id == DEFAULT_MODEL {
            " (default)"
        } else {
            ""
        };
        rows.push([
            format!("{}{default}", entry.id),
            (if installed.contains_key(&entry.id) {
                "yes"
            } else {
                "no"
            })
            .to_string(),
            scales,
            entry.look.map_or("", |l| l.as_str()).to_string(),
            match (entry.megapixels_per_second, entry.speed_class()) {
                (Some(mps), Some(class)) => format!("{mps} MP/s, {class}"),
                _ => "not measured".to_string(),
            },
            entry.license.spdx.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| format!("{cell:w$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    if missing > 0 {
        println!(
            "\n{missing} not installed in {}: `scripts/setup.sh <model>` installs one (from a checkout).",
            dir.display()
        );
    }
    Ok(())
}
