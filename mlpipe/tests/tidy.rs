//! Docs that stay true (rust-analyzer's `tidy` tests, for this repository):
//! - every workspace crate has its entry in ARCHITECTURE.md's code map;
//! - every repository path a doc or a comment names exists (or is a build output the
//!   `.gitignore` names), so a moved or deleted file cannot leave a stale reference behind;
//! - every `mlpipe` command (as `mlpipe --help` lists them) is in the README's command table.
//!
//! Historical notes (`docs/research/`) are exempt from the path check: they describe the
//! repository as it was when they were written, and say so.

#![allow(clippy::unwrap_used)] // test helpers fail loudly by design

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Top-level folders of the repository: a word starting with one of these and a `/` is a
/// repository path.
const TOP: &[&str] = &[
    "shared/",
    "functions/",
    "edge/",
    "infra/",
    "mlpipe/",
    "xtask/",
    "tests/",
    "docs/",
    "examples/",
    "terraform/",
    "third_party/",
    ".ci/",
    ".cargo/",
];

fn git(args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(ROOT)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

/// Tracked files, and every folder above them.
fn tracked() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for file in git(&["ls-files"]).lines() {
        let mut path = file.to_string();
        out.insert(path.clone());
        while let Some(i) = path.rfind('/') {
            path.truncate(i);
            out.insert(format!("{path}/"));
            out.insert(path.clone());
        }
    }
    out
}

/// Repository paths named in `text` (trailing punctuation, `:line` and `#anchor` removed);
/// templated paths (`<name>`, `{a,b}`, `*`, `...`, `$VAR`) are not checked.
fn named_paths(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices('/') {
        let start = text[..i]
            .char_indices()
            .rev()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || "._-/".contains(*c)))
            .map_or(0, |(p, c)| p + c.len_utf8());
        let word_end = text[i..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || "._-/<>{}*$,:#".contains(c)))
            .map_or(text.len(), |p| i + p);
        let word = &text[start..word_end];
        if !TOP.iter().any(|t| word.starts_with(t)) || start + word.find('/').unwrap_or(0) != i {
            continue;
        }
        if word.contains(['<', '>', '{', '}', '*', '$']) || word.contains("...") {
            continue;
        }
        let word = word.split([':', '#', ',']).next().unwrap_or(word);
        let word = word.trim_end_matches(['.', ',', ')']);
        out.push(word.to_string());
    }
    out
}

/// Object keys of the storage layout whose first segment is also a repository folder
/// (`edge/`): named in docs as keys in a bucket, not as files here.
const OBJECT_KEYS: [&str; 1] = [records::keys::EDGE_KEYS];

/// Whether `path` is tracked, or a build output the `.gitignore` names.
fn exists(path: &str, tracked: &BTreeSet<String>) -> bool {
    if tracked.contains(path)
        || tracked.contains(path.trim_end_matches('/'))
        || OBJECT_KEYS.contains(&path)
    {
        return true;
    }
    // A build output: ignored as named, or as a folder (`build/` patterns).
    let folder = format!("{}/", path.trim_end_matches('/'));
    [path, folder.as_str()].iter().any(|p| {
        Command::new("git")
            .args(["check-ignore", "-q", "--no-index", p])
            .current_dir(ROOT)
            .status()
            .is_ok_and(|s| s.success())
    })
}

fn checked_files() -> Vec<String> {
    git(&["ls-files"])
        .lines()
        .filter(|f| {
            let text_kind = [".md", ".rs", ".toml", ".tf", ".yaml", ".yml", ".py", ".sh"]
                .iter()
                .any(|e| f.ends_with(e))
                || f.ends_with("Dockerfile")
                || f.ends_with(".ci/run");
            text_kind && !f.starts_with("docs/research/") && !f.starts_with("third_party/")
        })
        .map(str::to_string)
        .collect()
}

/// The prose of a line: all of it in Markdown, the comment in code and configuration (string
/// literals in code are data, such as object keys, not references to files).
fn prose<'a>(file: &str, line: &'a str) -> &'a str {
    if file.ends_with(".md") {
        return line;
    }
    let marker = if file.ends_with(".rs") { "//" } else { "#" };
    line.find(marker).map_or("", |i| &line[i..])
}

#[test]
fn every_repository_path_named_in_docs_and_comments_exists() {
    let tracked = tracked();
    let mut stale = Vec::new();
    for file in checked_files() {
        let Ok(text) = std::fs::read_to_string(Path::new(ROOT).join(&file)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for path in named_paths(prose(&file, line)) {
                if !exists(&path, &tracked) {
                    stale.push(format!("{file}:{}: {path}", n + 1));
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "paths named but not in the repository:\n{}",
        stale.join("\n")
    );
}

#[test]
fn the_path_check_finds_a_planted_stale_path() {
    let tracked = tracked();
    let text = "see `functions/train/src/metrics.rs` and shared/records/src/keys.rs:12, \
                `inference-logs/<model>/` and edge/edge-worker/build/index.js.";
    let named = named_paths(text);
    assert_eq!(
        named,
        vec![
            "functions/train/src/metrics.rs",
            "shared/records/src/keys.rs",
            "edge/edge-worker/build/index.js"
        ]
    );
    let missing: Vec<&String> = named.iter().filter(|p| !exists(p, &tracked)).collect();
    assert_eq!(missing, vec!["functions/train/src/metrics.rs"]);
    // Only prose is read: a comment in code, not a string literal (an object key).
    let comment = "let k = \"edge/policy.json\"; // see README.md";
    assert_eq!(prose("a.rs", comment), "// see README.md");
    assert_eq!(prose("a.toml", "path = \"x/y\""), "");
    assert_eq!(prose("a.md", "see README.md"), "see README.md");
    // Paths next to characters wider than a byte.
    assert_eq!(
        named_paths("U(±1/x) or «docs/storage.md»"),
        vec!["docs/storage.md"]
    );
}

/// The workspace members, from the root Cargo.toml.
fn members() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn every_crate_is_in_the_code_map() {
    let arch = std::fs::read_to_string(Path::new(ROOT).join("ARCHITECTURE.md")).unwrap();
    let missing: Vec<String> = members()
        .into_iter()
        .filter(|m| !arch.contains(&format!("### `{m}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "crates without a `### `folder`` entry in ARCHITECTURE.md's code map: {missing:?}"
    );
}

/// The naming rule ARCHITECTURE.md states: a crate's package name is its folder's name.
#[test]
fn every_crate_is_named_for_its_folder() {
    let mut wrong = Vec::new();
    for member in members() {
        let text =
            std::fs::read_to_string(Path::new(ROOT).join(&member).join("Cargo.toml")).unwrap();
        let doc: toml::Table = text.parse().unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_string();
        let folder = Path::new(&member).file_name().unwrap().to_str().unwrap();
        if name != folder {
            wrong.push(format!("{member}: package `{name}`"));
        }
    }
    assert!(
        wrong.is_empty(),
        "crates not named for their folder (ARCHITECTURE.md, naming rule): {wrong:?}"
    );
}

/// Every command path `mlpipe --help` lists (`run`, `data versions`, ...), hidden ones
/// excluded as clap excludes them.
fn commands(prefix: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_mlpipe"))
        .args(prefix)
        .arg("--help")
        .output()
        .expect("mlpipe runs");
    let help = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut out = Vec::new();
    let Some(section) = help.split("Commands:").nth(1) else {
        return out;
    };
    for line in section.lines().skip_while(|l| l.trim().is_empty()) {
        if !line.starts_with("  ") {
            break;
        }
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name == "help" || line.starts_with("     ") {
            continue;
        }
        let mut path: Vec<&str> = prefix.to_vec();
        path.push(name);
        let sub = commands(&path);
        if sub.is_empty() {
            out.push(path.join(" "));
        } else {
            out.extend(sub);
        }
    }
    out
}

#[test]
fn every_command_is_in_the_readme_table() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let table: Vec<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `mlpipe "))
        .collect();
    let all = commands(&[]);
    assert!(all.len() > 15, "{all:?}");
    let missing: Vec<&String> = all
        .iter()
        .filter(|c| {
            !table.iter().any(|row| {
                let cell = row.split('|').nth(1).unwrap_or_default();
                cell.contains(&format!("`mlpipe {c}`")) || cell.contains(&format!("`mlpipe {c} "))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "commands missing from the README's command table: {missing:?}"
    );
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Whether Rust source `text` uses the crate `name` (as a path, an import or a macro).
fn uses(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = &text[i + name.len()..];
        let starts_word = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let as_path = starts_word
            && (after.starts_with("::") || after.starts_with('!') || after.starts_with(';'));
        let imported = text[..i].ends_with("use ") && after.starts_with([':', ';', ' ', '{']);
        as_path || imported || text[..i].ends_with("extern crate ")
    })
}

/// Every workspace crate's folder and the names its code uses for its dependencies (the
/// library name after renames, from `cargo metadata`'s resolve graph), with their kinds.
fn declared_dependencies() -> Vec<(String, Vec<(String, String)>)> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(ROOT)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = std::fs::canonicalize(ROOT).unwrap();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m.as_str())
        .collect();
    let mut result = Vec::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let id = node["id"].as_str().unwrap();
        if !members.contains(&id) {
            continue;
        }
        let package = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap();
        let dir = Path::new(package["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap();
        let folder = dir
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let kinds: Vec<String> = d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal").to_string())
                    .collect();
                (d["name"].as_str().unwrap().to_string(), kinds.join("+"))
            })
            .collect();
        result.push((folder, deps));
    }
    result
}

/// Dependencies (normal, dev, build, target-specific) a crate declares and never uses in
/// its sources; `[package.metadata.tidy] unused-ok = [...]` in the crate's Cargo.toml lists
/// deliberate ones (a dependency held only to turn on a feature), with a comment saying why.
#[test]
fn no_crate_declares_a_dependency_it_does_not_use() {
    let mut unused = Vec::new();
    for (folder, deps) in declared_dependencies() {
        let dir = Path::new(ROOT).join(&folder);
        let manifest: toml::Table = std::fs::read_to_string(dir.join("Cargo.toml"))
            .unwrap()
            .parse()
            .unwrap();
        let ok: Vec<String> = manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("tidy"))
            .and_then(|t| t.get("unused-ok"))
            .and_then(|u| u.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(|s| s.replace('-', "_")))
                    .collect()
            })
            .unwrap_or_default();
        let mut files = Vec::new();
        for sub in ["src", "tests", "benches", "examples"] {
            rust_files(&dir.join(sub), &mut files);
        }
        files.push(dir.join("build.rs"));
        let sources: String = files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .collect::<Vec<_>>()
            .join("\n");
        for (name, kinds) in deps {
            if !ok.contains(&name) && !uses(&sources, &name) {
                unused.push(format!("{folder}: {name} ({kinds})"));
            }
        }
    }
    unused.sort();
    assert!(
        unused.is_empty(),
        "declared but never used (remove them, or list them under \
         [package.metadata.tidy] unused-ok with the reason):\n{}",
        unused.join("\n")
    );
}

#[test]
fn the_unused_dependency_check_sees_paths_imports_and_macros() {
    assert!(uses("let x = serde_json::json!({});", "serde_json"));
    assert!(uses("use tracing;\n", "tracing"));
    assert!(uses("use rayon::prelude::*;", "rayon"));
    assert!(uses("    anyhow!(\"x\")", "anyhow"));
    assert!(!uses("let my_serde_json = 1; // serde_json", "serde_json"));
    assert!(!uses("fn tracing_setup() {}", "tracing"));
}
