//! The crate's floors (README, "Layout"), kept by a test: every module sits on a floor, and
//! a module names only modules of its own floor or below it. What a file names is read from
//! its code (comments left out): `crate::module`, and the crate-root re-exports
//! `crate::Config` and `crate::Gateway`. The binary (`src/main.rs`) and the composition root
//! stand above everything.
//!
//! `cargo test --test layers -- --nocapture` prints every import that runs upward and every
//! pair of modules that import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, from the ground up. A module not listed here fails the test: every new
/// module is given a floor.
const FLOORS: &[(&str, &[&str])] = &[
    (
        "leaves",
        &[
            "error",
            "range",
            "cors",
            "hex",
            "secret",
            "route",
            "conditional",
            "tls",
            "body",
            "xml",
            "sealed",
            "lane",
        ],
    ),
    ("telemetry", &["telemetry"]),
    ("upstream", &["upstream"]),
    ("subsystems", &["token", "credentials", "limits", "audit", "cache"]),
    ("storage", &["storage"]),
    ("config", &["config"]),
    ("registry", &["registry"]),
    ("request's end", &["usage", "proof"]),
    ("state", &["gateway"]),
    ("planes", &["admin", "server", "proxy"]),
    ("composition root", &["service", "cli", "demo"]),
];

/// Imports that may run upward, each with why (at most five; ideally none).
const ALLOWED_UPWARD: &[(&str, &str, &str)] = &[];

fn floor_of(module: &str) -> Option<usize> {
    FLOORS.iter().position(|(_, modules)| modules.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None`: the crate root or the binary).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    // A `*_tests.rs` file is its module's, included with `#[path]`.
    let name = first.trim_end_matches(".rs").trim_end_matches("_tests");
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The code of a file without its comments (line comments and doc comments).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                match line.find(" // ") {
                    Some(at) if !line[..at].contains('"') => &line[..at],
                    _ => line,
                }
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a file's code names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let module = match name.as_str() {
            "Config" => "config".to_string(),
            "Gateway" => "gateway".to_string(),
            "{" => String::new(),
            _ => name,
        };
        if !module.is_empty() {
            out.insert(module);
        }
        rest = after;
    }
    // `use crate::{a, b::c}` lists.
    let mut rest = code;
    while let Some(at) = rest.find("crate::{") {
        let after = &rest[at + "crate::{".len()..];
        let list = &after[..after.find('}').unwrap_or(after.len())];
        for item in list.split(',') {
            let name: String = item
                .trim()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
        rest = after;
    }
    out
}

struct Imports {
    /// (file, its module, the module it names)
    edges: Vec<(String, String, String)>,
    unplaced: BTreeSet<String>,
}

fn imports() -> Imports {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut edges = Vec::new();
    let mut unplaced = BTreeSet::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else { continue };
        if floor_of(&module).is_none() {
            unplaced.insert(module.clone());
        }
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(root).unwrap().display().to_string();
        for target in named_modules(&code(&text)) {
            if target != module {
                edges.push((name.clone(), module.clone(), target));
            }
        }
    }
    Imports { edges, unplaced }
}

#[test]
fn every_module_names_only_its_own_floor_or_below() {
    let found = imports();
    assert!(
        found.unplaced.is_empty(),
        "modules without a floor (add them to FLOORS): {:?}",
        found.unplaced
    );
    let mut upward = Vec::new();
    for (file, module, target) in &found.edges {
        let (Some(from), Some(to)) = (floor_of(module), floor_of(target)) else {
            continue;
        };
        let allowed = ALLOWED_UPWARD.iter().any(|(f, t, _)| f == file && t == target);
        if to > from && !allowed {
            upward.push(format!("{file} ({}) names {target} ({})", FLOORS[from].0, FLOORS[to].0));
        }
    }
    println!("imports running upward: {}", upward.len() + ALLOWED_UPWARD.len());
    for line in &upward {
        println!("  {line}");
    }
    assert!(ALLOWED_UPWARD.len() <= 5, "at most five allowed exceptions");
    assert!(upward.is_empty(), "imports that run upward:\n{}", upward.join("\n"));
}

#[test]
fn no_two_modules_import_each_other() {
    let found = imports();
    let mut names: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (file, module, target) in &found.edges {
        names
            .entry((module.clone(), target.clone()))
            .or_default()
            .push(file.clone());
    }
    let mut circles = Vec::new();
    for ((a, b), files) in &names {
        if a < b {
            if let Some(back) = names.get(&(b.clone(), a.clone())) {
                circles.push(format!("{a} <-> {b}: {files:?} / {back:?}"));
            }
        }
    }
    println!("modules importing each other: {}", circles.len());
    for line in &circles {
        println!("  {line}");
    }
    assert!(
        circles.is_empty(),
        "modules importing each other:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_reader_sees_imports_and_skips_comments() {
    let text = "use crate::upstream::Endpoint;\n// crate::admin in a comment\nuse crate::{error::GatewayError, secret};\nfn f(g: &crate::Gateway) {} // crate::proxy\n";
    let found = named_modules(&code(text));
    let expected: BTreeSet<String> = ["upstream", "error", "secret", "gateway"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, expected);
}
