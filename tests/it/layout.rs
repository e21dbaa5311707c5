//! The library's modules import only the modules before them in the one-way flow that
//! `src/lib.rs` describes, so that no two modules depend on each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The top-level modules, each allowed to import only those before it.
const ORDER: &[&str] = &[
    "instant",
    "errors",
    "db",
    "telemetry",
    "cron",
    "sources",
    "features",
    "predicates",
    "config",
    "evaluate",
    "store",
    "incremental",
    "pipeline",
    "metrics",
    "openbadges",
    "report",
    "commands",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("reading src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn leading_name(text: &str) -> String {
    text.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// The `crate::NAME` paths the file's code (not its comments or its inline unit tests) names,
/// `crate::{a, b::c}` groups included.
fn imported_modules(source: &str) -> BTreeSet<String> {
    // The inline test module is last; `#[cfg(test)] mod tests;` names a file, read on its own.
    let code = source.split("#[cfg(test)]\nmod tests {").next().unwrap_or(source);
    let mut found = BTreeSet::new();
    for line in code.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap_or(group);
                found.extend(group.split(',').map(leading_name).filter(|n| !n.is_empty()));
                continue;
            }
            let name = leading_name(rest);
            // `$crate::` in macros and `crate::with_pool!` name macros, not modules.
            let is_macro = rest[name.len()..].starts_with('!');
            if !name.is_empty() && !is_macro && !line[..at].ends_with('$') {
                found.insert(name);
            }
        }
    }
    found
}

#[test]
fn every_module_imports_only_the_modules_before_it_in_the_flow() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    let mut seen = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("a file under src");
        let top = relative.iter().next().and_then(|s| s.to_str()).unwrap_or_default().trim_end_matches(".rs");
        if top == "lib" || top == "main" || relative.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
        let rank = ORDER.iter().position(|m| *m == top);
        let Some(rank) = rank else {
            wrong.push(format!("{}: module '{top}' is not in the layout test's ORDER", relative.display()));
            continue;
        };
        seen.insert(top.to_string());
        let source = std::fs::read_to_string(file).expect("reading a source file");
        for name in imported_modules(&source) {
            match ORDER.iter().position(|m| *m == name) {
                Some(other) if other > rank => {
                    wrong.push(format!("{}: '{top}' imports '{name}', which comes after it", relative.display()))
                }
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "modules importing against the flow:\n{}", wrong.join("\n"));
    // The test reads the real tree: every module of ORDER has files.
    let missing: Vec<_> = ORDER.iter().filter(|m| !seen.contains(**m)).collect();
    assert!(missing.is_empty(), "modules of ORDER with no file under src: {missing:?}");
}

#[test]
fn the_import_scan_sees_paths_in_code_and_not_in_comments() {
    let source = "#[cfg(test)]\nmod unit;\nuse crate::store::Store;\n//! see [`crate::commands`]\n\
                  let x = crate::pipeline::run();\nuse crate::{db::Db, errors};\ncrate::with_pool!(p);\n\
                  #[cfg(test)]\nmod tests { use crate::report; }\n";
    let found: Vec<_> = imported_modules(source).into_iter().collect();
    assert_eq!(found, ["db", "errors", "pipeline", "store"]);
}
