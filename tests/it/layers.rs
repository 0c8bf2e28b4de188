//! The layer rules of ARCHITECTURE.md, checked on the sources: each top-level module of the
//! library imports only the modules below it (read from every `crate::` path in its files),
//! clap, progress bars and Ctrl-C handling appear only in the command line, and training is
//! imported only by the command line's training commands. A new forbidden import fails this
//! test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Each module of the library and the modules it may import.
const LAYERS: &[(&str, &[&str])] = &[
    ("fsutil", &[]),
    ("plot", &["fsutil"]),
    ("world", &[]),
    ("lang", &["world"]),
    ("vm", &["lang", "world"]),
    ("data", &["fsutil", "lang", "vm", "world"]),
    ("nn", &["fsutil"]),
    ("model", &["data", "fsutil", "lang", "nn", "vm", "world"]),
    (
        "search",
        &[
            "data", "fsutil", "lang", "model", "nn", "plot", "vm", "world",
        ],
    ),
    (
        "train",
        &[
            "data", "fsutil", "lang", "model", "nn", "plot", "search", "vm", "world",
        ],
    ),
    ("exec", &["lang", "vm", "world"]),
    ("fuzzing", &["data", "exec", "lang", "vm", "world"]),
    (
        "cli",
        &[
            "data", "exec", "fsutil", "lang", "model", "nn", "plot", "search", "train", "vm",
            "world",
        ],
    ),
];

/// Files outside `train` that may import it: the training commands.
const TRAIN_IMPORTERS: &[&str] = &["src/cli/train.rs"];

/// The top-level module a source file belongs to (`src/world/json.rs` → `world`).
fn module_of(relative: &Path) -> String {
    let mut parts = relative.iter().skip(1);
    let first = parts
        .next()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_string()
}

/// The top-level modules a source names through `crate::…` paths, comments left out.
fn imports(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `crate::{a, b}` lists several modules.
            if name.is_empty() && after.starts_with('{') {
                let list = &after[1..after.find('}').unwrap_or(after.len())];
                for item in list.split(',') {
                    let item: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !item.is_empty() {
                        found.insert(item);
                    }
                }
            } else if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

/// The rule violations of one file.
fn violations(relative: &Path, source: &str) -> Vec<String> {
    let module = module_of(relative);
    let mut out = Vec::new();
    let Some((_, allowed)) = LAYERS.iter().find(|(name, _)| *name == module) else {
        if module != "lib" && module != "main" {
            out.push(format!(
                "{}: module `{module}` has no place in the layer table",
                relative.display()
            ));
        }
        return out;
    };
    for import in imports(source) {
        if import == module || import == "self" || import == "super" {
            continue;
        }
        if !allowed.contains(&import.as_str()) {
            out.push(format!(
                "{}: `{module}` may not import `{import}`",
                relative.display()
            ));
        }
        if import == "train" && !TRAIN_IMPORTERS.contains(&relative.to_string_lossy().as_ref()) {
            out.push(format!(
                "{}: only the training commands import `train`",
                relative.display()
            ));
        }
    }
    // The terminal belongs to the command line: argument parsing, progress bars, Ctrl-C.
    for library in ["clap", "indicatif", "ctrlc"] {
        let mentioned = source
            .lines()
            .map(|l| l.find("//").map_or(l, |at| &l[..at]))
            .any(|code| {
                code.contains(&format!("{library}::")) || code.contains(&format!("use {library}"))
            });
        if mentioned && module != "cli" {
            out.push(format!(
                "{}: {library} belongs to the command line only",
                relative.display()
            ));
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 50, "the sources were not found");
    let mut problems = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(root).unwrap();
        let source = std::fs::read_to_string(file).unwrap();
        problems.extend(violations(relative, &source));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_checker_finds_forbidden_imports() {
    let world = Path::new("src/world/mod.rs");
    assert_eq!(
        violations(world, "use crate::fsutil;\n"),
        ["src/world/mod.rs: `world` may not import `fsutil`"]
    );
    assert_eq!(
        violations(world, "use crate::{lang::Token, world};\n").len(),
        1
    );
    assert!(violations(world, "// crate::lang in a comment\n").is_empty());
    assert_eq!(
        violations(
            Path::new("src/search/sed.rs"),
            "#[derive(clap::ValueEnum)]\n"
        )
        .len(),
        1
    );
    assert_eq!(
        violations(Path::new("src/search/eval.rs"), "use crate::search::x;\n").len(),
        0
    );
    assert_eq!(
        violations(Path::new("src/cli/run.rs"), "use crate::train::x;\n"),
        ["src/cli/run.rs: only the training commands import `train`"]
    );
    assert_eq!(
        violations(Path::new("src/cli/train.rs"), "use crate::train::x;\n").len(),
        0
    );
    assert_eq!(violations(Path::new("src/newthing.rs"), "").len(), 1);
    assert_eq!(
        violations(
            Path::new("src/lang/ast.rs"),
            "pub use crate::world::Action;"
        )
        .len(),
        0
    );
}
