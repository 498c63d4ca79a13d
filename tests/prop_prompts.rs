//! Property tests of prompt-template parsing (front matter + `{{variable}}` body, issue 10 item
//! 3): arbitrary files never panic the parser and every refusal points at a line of the file;
//! any valid template — front matter written by a YAML serializer, a body of text and declared
//! placeholders — parses back to exactly what was written and renders like a naive model
//! (values inserted verbatim, a value holding `{{x}}` never expanded).
//!
//! 10,000 cases per property (see `tests/prop_support`).

mod prop_support;

use std::path::PathBuf;

use proptest::prelude::*;
use serde::Serialize;
use storyteller_lsp::prompts::{TemplateSource, Vars, parse};

fn source() -> TemplateSource {
    TemplateSource::Workspace(PathBuf::from("/novel/.storyteller/prompts/scene.md"))
}

const PIECES: &[&str] = &[
    "---",
    "---\n",
    "\n",
    "\r\n",
    "name: scene",
    "name: ",
    "version: 2",
    "version: 0",
    "version: -1",
    "version: x",
    "variables: [before, after]",
    "variables:\n  - before\n  - before",
    "variables: [\"not ok\"]",
    "description: |\n  multi\n  line",
    "weight: 0.5",
    "weight: -1",
    "weight: .nan",
    "active: false",
    "extra: 1",
    "{{before}}",
    "{{after}}",
    "{{ unknown }}",
    "{{",
    "}}",
    "{{\n}}",
    "Continue the story.",
    ":",
    "- ",
    "'",
    "\"",
    "\u{feff}",
    "\t",
    "é🙂",
];

fn file_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        10 => proptest::sample::select(PIECES).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|p| p.concat())
}

#[derive(Debug, Clone, Serialize)]
struct FrontMatter {
    name: String,
    version: u32,
    description: String,
    variables: Vec<String>,
    active: bool,
    weight: f64,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    /// A placeholder of the declared variable with this index, with spaces inside the braces.
    Var(usize, bool),
}

fn front_matter() -> impl Strategy<Value = FrontMatter> {
    (
        "[A-Za-z0-9_-]{1,64}",
        1u32..,
        "[ -~é—🙂]{0,40}",
        proptest::collection::btree_set("[a-z_][a-z0-9_]{0,10}", 0..5),
        any::<bool>(),
        0.0f64..1e6,
    )
        .prop_map(
            |(name, version, description, variables, active, weight)| FrontMatter {
                name,
                version,
                description,
                variables: variables.into_iter().collect(),
                active,
                weight,
            },
        )
}

fn body_pieces() -> impl Strategy<Value = Vec<Piece>> {
    let piece = prop_oneof![
        3 => "[A-Za-z0-9 .,'!?\n}é—]{1,20}".prop_map(Piece::Text),
        2 => (0usize..5, any::<bool>()).prop_map(|(i, spaced)| Piece::Var(i, spaced)),
    ];
    proptest::collection::vec(piece, 0..10)
}

fn values() -> impl Strategy<Value = Vec<String>> {
    // What a value may hold: manuscript text with braces, line ends, placeholders of its own.
    proptest::collection::vec("[ -~\r\n]{0,20}|\\{\\{[a-z]+\\}\\}", 5)
}

proptest! {
    #![proptest_config(prop_support::config())]

    /// Any file: no panic; a refused file is reported at a line the file has (or the line after
    /// its last, for "never closed"), in the file's own name.
    #[test]
    fn any_file_parses_or_is_refused_at_one_of_its_lines(text in file_text()) {
        match parse(source(), &text) {
            Ok(template) => {
                prop_assert!(!template.name.is_empty());
                prop_assert!(template.version >= 1);
                prop_assert!(!template.body.is_empty());
            }
            Err(warning) => {
                prop_assert_eq!(warning.file, source().to_string());
                let lines = text.split('\n').count();
                if let Some(line) = warning.line {
                    prop_assert!((1..=lines + 1).contains(&line), "line {} of {}: {}", line, lines, warning.message);
                }
                prop_assert!(!warning.message.is_empty());
            }
        }
    }

    /// A valid template reads back as written, and renders like the model.
    #[test]
    fn valid_templates_read_back_and_render_like_the_model(
        front in front_matter(),
        pieces in body_pieces(),
        values in values(),
        crlf in any::<bool>(),
    ) {
        let yaml = serde_norway::to_string(&front).expect("YAML");
        let mut body = String::from("Begin");
        let mut expected = String::from("Begin");
        for piece in &pieces {
            match piece {
                Piece::Text(t) => {
                    body.push_str(t);
                    expected.push_str(t);
                }
                Piece::Var(i, spaced) => {
                    let Some(name) = front.variables.get(i % front.variables.len().max(1)) else {
                        continue;
                    };
                    let index = front.variables.iter().position(|v| v == name).unwrap_or(0);
                    body.push_str(&if *spaced { format!("{{{{ {name} }}}}") } else { format!("{{{{{name}}}}}") });
                    expected.push_str(&values[index]);
                }
            }
        }
        body.push_str(" end.");
        expected.push_str(" end.");
        let mut file = format!("---\n{yaml}---\n\n{body}\n");
        if crlf {
            file = file.replace('\n', "\r\n");
        }

        let template = match parse(source(), &file) {
            Ok(t) => t,
            Err(w) => return Err(TestCaseError::fail(format!("refused: {w}\n{file}"))),
        };
        prop_assert_eq!(&template.name, &front.name);
        prop_assert_eq!(template.version, front.version);
        prop_assert_eq!(&template.description, front.description.trim());
        prop_assert_eq!(&template.variables, &front.variables);
        prop_assert_eq!(template.declared_active, front.active);
        prop_assert_eq!(template.declared_weight, front.weight);
        prop_assert_eq!(&template.body, &body);

        let vars: Vars = front
            .variables
            .iter()
            .zip(&values)
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        prop_assert_eq!(template.render(&vars).expect("every variable has a value"), expected);
        // A declared variable without a value is refused, never rendered as empty.
        if let Some(first) = front.variables.first() {
            let partial: Vars = front
                .variables
                .iter()
                .zip(&values)
                .filter(|(name, _)| *name != first)
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            prop_assert!(template.render(&partial).is_err());
        }
    }
}
