//! The documentation: the book in docs/ builds with the pinned mdbook (installed by
//! scripts/docs.sh, which scripts/test-tools.sh runs) and every local link and anchor in it
//! resolves; the README's links resolve; and the flag tables of the Configuration and Command
//! line pages match `upres serve --help` and `upres upscale --help` (every flag, its
//! environment variable and its default), so they cannot drift. Without mdbook the book test
//! skips, except under `CI=true`, where it fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::workspace;

/// A flag as `--help` or a page's table states it.
#[derive(Debug, PartialEq)]
struct Flag {
    env: Option<String>,
    default: Option<String>,
}

/// The options of a subcommand's `--help` (short or long form): flag -> env var and default.
fn help_flags(subcommand: &str) -> BTreeMap<String, Flag> {
    let out = Command::new(env!("CARGO_BIN_EXE_upres"))
        .args([subcommand, "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let trimmed = trimmed
            .strip_prefix('-')
            .filter(|rest| rest.len() > 3 && rest.as_bytes()[1] == b',')
            .map_or(trimmed, |rest| rest[2..].trim_start());
        if line.starts_with("  ") && trimmed.starts_with("--") {
            let name = trimmed.split([' ', '\t']).next().unwrap().to_string();
            blocks.push((name, trimmed.to_string()));
        } else if let Some((_, body)) = blocks.last_mut() {
            body.push(' ');
            body.push_str(trimmed);
        }
    }
    blocks
        .into_iter()
        .filter(|(name, _)| name != "--help")
        .map(|(name, body)| {
            let env = bracketed(&body, "[env: ").map(|env| env.trim_end_matches('=').to_string());
            let default = bracketed(&body, "[default: ");
            (name, Flag { env, default })
        })
        .collect()
}

/// The text after `open` up to the next `]`.
fn bracketed(text: &str, open: &str) -> Option<String> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(']')? + start;
    Some(text[start..end].to_string())
}

/// A page's markdown with its `{{#include file}}` lines replaced by the file.
fn page(relative: &str) -> String {
    let path = workspace().join("docs/src").join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    text.lines()
        .map(|line| match line.trim().strip_prefix("{{#include ") {
            Some(rest) => {
                let included = path.parent().unwrap().join(rest.trim_end_matches("}}"));
                std::fs::read_to_string(&included).unwrap()
            }
            None => format!("{line}\n"),
        })
        .collect()
}

/// The rows of the page's flag tables (`| `--flag`[, `-f`] | `ENV` | default | ... |`): flag ->
/// the env var (the first code span of its cell) and the default cell as written.
fn table_flags(markdown: &str) -> BTreeMap<String, (Option<String>, String)> {
    let mut rows = BTreeMap::new();
    for line in markdown.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split(" | ")
            .map(str::trim)
            .collect();
        if cells.len() < 3 || !cells[0].starts_with("`--") {
            continue;
        }
        let flag = cells[0]
            .trim_matches('`')
            .split('`')
            .next()
            .unwrap()
            .to_string();
        let env = cells[1]
            .split('`')
            .nth(1)
            .filter(|env| env.starts_with("UPRES_"))
            .map(str::to_string);
        let previous = rows.insert(flag.clone(), (env, cells[2].to_string()));
        assert!(previous.is_none(), "{flag} is in the tables twice");
    }
    rows
}

/// Every flag of `upres <subcommand> --help` is in the page's tables with its env var and
/// default, and the tables list no flag the binary does not have.
fn check_flag_table(subcommand: &str, page_path: &str) {
    let help = help_flags(subcommand);
    let table = table_flags(&page(page_path));
    assert!(help.len() > 5, "too few flags parsed from --help: {help:?}");
    let in_help: BTreeSet<_> = help.keys().collect();
    let in_table: BTreeSet<_> = table.keys().collect();
    assert_eq!(
        in_help.difference(&in_table).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags of `upres {subcommand} --help` missing from docs/src/{page_path}"
    );
    assert_eq!(
        in_table.difference(&in_help).collect::<Vec<_>>(),
        Vec::<&&String>::new(),
        "flags in docs/src/{page_path} that `upres {subcommand}` does not have"
    );
    for (name, flag) in &help {
        let (env, default_cell) = &table[name];
        assert!(flag.env.is_some(), "{name} has no environment variable");
        assert_eq!(&flag.env, env, "{name}: env var in docs/src/{page_path}");
        if let Some(default) = &flag.default {
            assert!(
                default_cell.contains(&format!("`{default}`")),
                "{name}: --help says the default is {default}, docs/src/{page_path} says {default_cell}"
            );
        }
    }
}

#[test]
fn the_configuration_page_lists_every_serve_flag() {
    check_flag_table("serve", "server/configuration.md");
}

#[test]
fn the_command_line_page_lists_every_upscale_flag() {
    check_flag_table("upscale", "cli.md");
}

/// The targets of the markdown links `](target)` in a text, but web addresses.
fn local_links(markdown: &str) -> Vec<String> {
    markdown
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split_whitespace().next().unwrap_or("").to_string())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .collect()
}

#[test]
fn the_readme_links_resolve() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let links = local_links(&readme);
    assert!(links.len() > 10, "{links:?}");
    for link in links {
        let path = link.split('#').next().unwrap();
        assert!(
            workspace().join(path).exists(),
            "README.md links to {link}, which does not exist"
        );
    }
    assert!(
        readme.len() <= 20 * 1024,
        "README.md is {} bytes (at most 20 KiB)",
        readme.len()
    );
}

/// The pinned mdbook, or None (outside CI) when scripts/docs.sh has not installed it.
fn mdbook() -> Option<PathBuf> {
    let path = workspace().join(".cache/tools/mdbook/bin/mdbook");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").is_err(),
        "mdbook is required in CI: run scripts/test-tools.sh (or scripts/docs.sh --install)"
    );
    eprintln!(
        "skipped: no mdbook at {}; run scripts/docs.sh --install",
        path.display()
    );
    None
}

/// The values of `attribute="..."` in an HTML text.
fn attribute_values<'a>(html: &'a str, attribute: &str) -> Vec<&'a str> {
    let open = format!(" {attribute}=\"");
    html.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

fn html_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            html_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "html") {
            found.push(path);
        }
    }
}

#[test]
fn the_book_builds_and_its_links_resolve() {
    let Some(mdbook) = mdbook() else { return };
    let out = tempfile::tempdir().unwrap();
    let build = Command::new(&mdbook)
        .arg("build")
        .arg(workspace().join("docs"))
        .arg("--dest-dir")
        .arg(out.path())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&build.stderr);
    assert!(build.status.success(), "mdbook build failed:\n{log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "mdbook warned:\n{log}"
    );

    let mut pages = Vec::new();
    html_files(out.path(), &mut pages);
    assert!(pages.len() > 30, "only {} pages built", pages.len());
    let ids = |path: &Path| -> BTreeSet<String> {
        let html = std::fs::read_to_string(path).unwrap();
        attribute_values(&html, "id")
            .into_iter()
            .map(str::to_string)
            .collect()
    };
    let mut checked = 0;
    let mut broken = Vec::new();
    for page in &pages {
        let html = std::fs::read_to_string(page).unwrap();
        let links = attribute_values(&html, "href")
            .into_iter()
            .chain(attribute_values(&html, "src"));
        for link in links {
            if link.contains("://")
                || link.starts_with("mailto:")
                || link.starts_with("javascript:")
            {
                continue;
            }
            let (file, anchor) = link.split_once('#').unwrap_or((link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            checked += 1;
            if !target.exists() {
                broken.push(format!(
                    "{}: {link} (no such file)",
                    page.strip_prefix(out.path()).unwrap().display()
                ));
            } else if !anchor.is_empty()
                && target.extension().is_some_and(|e| e == "html")
                && !ids(&target).contains(anchor)
            {
                broken.push(format!(
                    "{}: {link} (no such anchor)",
                    page.strip_prefix(out.path()).unwrap().display()
                ));
            }
        }
    }
    assert!(checked > 500, "only {checked} links checked");
    assert!(
        broken.is_empty(),
        "broken links in the book:\n{}",
        broken.join("\n")
    );
}
