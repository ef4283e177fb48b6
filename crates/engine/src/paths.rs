//! Where the engine's files are: a relative path (the defaults, `.cache/...`) is looked for in
//! the checkout, beside the executable, then in the upres home that `scripts/install.sh` fills.

use std::path::{Path, PathBuf};

/// Where `scripts/install.sh` puts ONNX Runtime and the models for use outside a checkout:
/// `$UPRES_HOME`, else `$XDG_DATA_HOME/upres`, else `~/.local/share/upres`.
pub fn home() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("UPRES_HOME")
        .or_else(|| var("XDG_DATA_HOME").map(|d| d.join("upres")))
        .or_else(|| var("HOME").map(|h| h.join(".local/share/upres")))
}

/// The places a relative path is looked for, in order: the current folder and each folder
/// above it (anywhere inside the checkout), the executable's folder and each above it (a
/// binary built in a checkout, run from elsewhere), then the upres home, where `.cache/X` is
/// `X`. An absolute path is only itself.
pub fn candidates(path: &Path) -> Vec<PathBuf> {
    if path.is_absolute() {
        return vec![path.to_path_buf()];
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let mut all: Vec<PathBuf> = cwd.ancestors().map(|dir| dir.join(path)).collect();
    if let Some(exe) = exe {
        all.extend(exe.ancestors().map(|dir| dir.join(path)));
    }
    if let Some(home) = home() {
        all.push(home.join(path.strip_prefix(".cache").unwrap_or(path)));
    }
    all
}

/// The first existing candidate of `path`; when none exists, `path` under the current folder.
pub fn resolve(path: &Path) -> PathBuf {
    let all = candidates(path);
    all.iter()
        .find(|candidate| candidate.exists())
        .or(all.first())
        .cloned()
        .unwrap_or_else(|| path.to_path_buf())
}

/// Where [`resolve`] looked, for error messages.
pub fn searched(path: &Path) -> String {
    if path.is_absolute() {
        return format!("{} does not exist", path.display());
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let home = home().map_or("no upres home (set UPRES_HOME)".to_string(), |h| {
        h.join(path.strip_prefix(".cache").unwrap_or(path))
            .display()
            .to_string()
    });
    format!(
        "looked for {} in {} and every folder above it, beside the executable in {} and every folder above it, and at {home}",
        path.display(),
        cwd.display(),
        exe.map_or("?".into(), |e| e.display().to_string()),
    )
}

/// [`resolve`]d `path` when it exists.
pub fn existing(path: &Path) -> Option<PathBuf> {
    let resolved = resolve(path);
    resolved.exists().then_some(resolved)
}
