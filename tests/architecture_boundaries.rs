//! The layer rules of ARCHITECTURE.md, checked on the source: only `src/lsp/` (and `main.rs`)
//! know LSP; `providers/` knows neither `routing/` nor `credentials/` (a key reaches it as a
//! `secret::ApiKey`); `store/` and `routing/` never point back up; `app` does not import
//! `admin` (which imports it); `secret.rs` is a leaf; `src/lsp/` reaches the store and the prompt
//! registry only through `assist/` or `admin/`. A
//! change that breaks one fails here with the file, the line and the rule.

use std::path::{Path, PathBuf};

/// One rule: files under `scope` (a path prefix relative to `src/`) must not mention any of
/// `forbidden` in code (comments are not code), except the files in `allowed_files`.
struct Rule {
    name: &'static str,
    scope: &'static str,
    forbidden: &'static [&'static str],
    allowed_files: &'static [&'static str],
}

const RULES: &[Rule] = &[
    Rule {
        name: "only src/lsp/ and main.rs know LSP",
        scope: "",
        forbidden: &["tower_lsp", "lsp_types"],
        allowed_files: &["main.rs"],
    },
    Rule {
        name: "providers/ knows neither routing/ nor credentials/ (nor anything above it)",
        scope: "providers/",
        forbidden: &[
            "crate::routing",
            "crate::credentials",
            "crate::store",
            "crate::assist",
            "crate::admin",
            "crate::app",
            "crate::lsp",
            "crate::cli",
        ],
        allowed_files: &[],
    },
    Rule {
        name: "store/ never reaches for keys or the layers above it",
        scope: "store/",
        forbidden: &[
            "crate::credentials",
            "crate::routing",
            "crate::assist",
            "crate::admin",
            "crate::app",
            "crate::lsp",
            "crate::cli",
        ],
        allowed_files: &[],
    },
    Rule {
        name: "routing/ knows providers, not the layers above it nor where keys are kept",
        scope: "routing/",
        forbidden: &[
            "crate::credentials",
            "crate::store",
            "crate::assist",
            "crate::admin",
            "crate::app",
            "crate::lsp",
            "crate::cli",
        ],
        allowed_files: &[],
    },
    Rule {
        name: "app.rs assembles the services; admin/ uses it, never the other way round",
        scope: "app.rs",
        forbidden: &["crate::admin", "crate::lsp", "crate::cli"],
        allowed_files: &[],
    },
    Rule {
        name: "secret.rs is a leaf (it only registers keys with the log redaction)",
        scope: "secret.rs",
        forbidden: &[
            "crate::credentials",
            "crate::providers",
            "crate::store",
            "crate::routing",
            "crate::app",
            "crate::lsp",
        ],
        allowed_files: &[],
    },
    Rule {
        name: "src/lsp/ only translates: the store and the prompt registry are reached through assist/ or admin/",
        scope: "lsp/",
        forbidden: &[
            "crate::store",
            "crate::prompts",
            "store::",
            "prompts::",
            ".registry()",
            ".store()",
        ],
        allowed_files: &[],
    },
];

/// The code of a line: without a `//` comment (string literals here never hold `//` followed by
/// one of the forbidden paths, so a plain cut is enough).
fn code(line: &str) -> &str {
    match line.find("//") {
        Some(at) => &line[..at],
        None => line,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every breach of `rules` in `files` (path relative to `src/`, text), as "file:line: rule".
fn breaches(rules: &[Rule], files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (relative, text) in files {
        for rule in rules {
            let in_scope = relative.starts_with(rule.scope)
                && !(rule.scope.is_empty() && relative.starts_with("lsp/"))
                && !rule.allowed_files.contains(&relative.as_str());
            if !in_scope {
                continue;
            }
            for (number, line) in text.lines().enumerate() {
                let code = code(line);
                if let Some(word) = rule.forbidden.iter().find(|w| code.contains(**w)) {
                    found.push(format!(
                        "src/{relative}:{}: `{word}` breaks \"{}\"",
                        number + 1,
                        rule.name
                    ));
                }
            }
        }
    }
    found
}

#[test]
fn the_source_keeps_the_layer_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    assert!(
        paths.len() > 50,
        "found only {} files under src/",
        paths.len()
    );
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let relative = p
                .strip_prefix(&src)
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            (
                relative,
                std::fs::read_to_string(p).expect("readable source"),
            )
        })
        .collect();
    let found = breaches(RULES, &files);
    assert!(
        found.is_empty(),
        "layer rules broken:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_finds_what_it_is_meant_to_find() {
    let files = vec![
        (
            "assist/mod.rs".to_string(),
            "use tower_lsp::lsp_types::Url;\n// tower_lsp in a comment is fine\n".to_string(),
        ),
        (
            "lsp/server.rs".to_string(),
            "use tower_lsp::Client;\n".to_string(),
        ),
        (
            "main.rs".to_string(),
            "use tower_lsp::Server;\n".to_string(),
        ),
        (
            "providers/openai.rs".to_string(),
            "use crate::credentials::ApiKey;\nuse crate::secret::ApiKey;\n".to_string(),
        ),
        (
            "store/providers.rs".to_string(),
            "let k = crate::credentials::resolve(); // crate::routing\n".to_string(),
        ),
        (
            "lsp/assist_commands.rs".to_string(),
            "let templates = app.registry().list().await;\nuse crate::store::ProjectId;\n"
                .to_string(),
        ),
    ];
    assert_eq!(
        breaches(RULES, &files),
        vec![
            "src/assist/mod.rs:1: `tower_lsp` breaks \"only src/lsp/ and main.rs know LSP\"",
            "src/providers/openai.rs:1: `crate::credentials` breaks \"providers/ knows neither routing/ nor credentials/ (nor anything above it)\"",
            "src/store/providers.rs:1: `crate::credentials` breaks \"store/ never reaches for keys or the layers above it\"",
            "src/lsp/assist_commands.rs:1: `.registry()` breaks \"src/lsp/ only translates: the store and the prompt registry are reached through assist/ or admin/\"",
            "src/lsp/assist_commands.rs:2: `crate::store` breaks \"src/lsp/ only translates: the store and the prompt registry are reached through assist/ or admin/\"",
        ]
    );
}
