//! What a note says about itself: YAML front matter (`title`, `aliases`, `include`, `summary`;
//! other keys are the author's own and ignored), or the habits authors already have — a first
//! `# Heading` as the title and an `Aliases: Toby, Wren` line.
//!
//! A note is never lost to a mistake in its front matter: the text after it is kept as the body
//! and the mistake is reported (it is shown by `storyteller.notes.list`).

use serde::Deserialize;

/// Whether a note goes into prompts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Include {
    /// In every prompt, first.
    Always,
    /// When one of its names is near the cursor.
    #[default]
    Mentioned,
    /// In no prompt, ever.
    Never,
}

impl Include {
    fn parse(value: &str) -> Option<Include> {
        match value.trim().to_lowercase().as_str() {
            "always" => Some(Include::Always),
            "mentioned" => Some(Include::Mentioned),
            "never" => Some(Include::Never),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Include::Always => "always",
            Include::Mentioned => "mentioned",
            Include::Never => "never",
        }
    }
}

/// A note's file, read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub title: Option<String>,
    pub aliases: Vec<String>,
    pub include: Include,
    pub summary: Option<String>,
    pub body: String,
    /// What was wrong with the front matter, for the author.
    pub problem: Option<String>,
}

#[derive(Deserialize, Default)]
struct Front {
    title: Option<Scalar>,
    aliases: Option<Aliases>,
    include: Option<Scalar>,
    summary: Option<Scalar>,
}

/// `aliases: [Toby, Wren]` or `aliases: Toby, Wren`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Aliases {
    List(Vec<Scalar>),
    One(Scalar),
}

/// A YAML scalar as text: authors write `title: 1984` too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Number(f64),
    Bool(bool),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Number(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

/// Reads a note's text.
pub fn parse(text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let body = match split_front_matter(text) {
        Split::None => text,
        Split::Unclosed(rest) => {
            parsed.problem = Some(crate::messages::notes::front_matter_unclosed());
            rest
        }
        Split::Closed { yaml, body } => {
            match serde_norway::from_str::<Option<Front>>(yaml) {
                Ok(front) => apply(&mut parsed, front.unwrap_or_default()),
                Err(e) => {
                    // YAML lines count from the line after the opening fence.
                    let line = e.location().map_or(2, |l| l.line() + 1);
                    parsed.problem = Some(crate::messages::notes::front_matter_invalid(line));
                }
            }
            body
        }
    };
    parsed.body = body_habits(&mut parsed, body);
    parsed
}

fn apply(parsed: &mut Parsed, front: Front) {
    parsed.title = front
        .title
        .map(Scalar::into_text)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    parsed.aliases = match front.aliases {
        Some(Aliases::List(list)) => list.into_iter().map(Scalar::into_text).collect(),
        Some(Aliases::One(one)) => split_aliases(&one.into_text()),
        None => Vec::new(),
    };
    parsed.aliases.retain(|a| !a.trim().is_empty());
    parsed.summary = front
        .summary
        .map(Scalar::into_text)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(include) = front.include {
        let value = include.into_text();
        match Include::parse(&value) {
            Some(include) => parsed.include = include,
            None => parsed.problem = Some(crate::messages::notes::include_unknown(&value)),
        }
    }
}

enum Split<'t> {
    None,
    Unclosed(&'t str),
    Closed { yaml: &'t str, body: &'t str },
}

/// `(YAML, body)` of a file with closed front matter; `(None, text)` otherwise (an unclosed
/// block is body text: nothing the author wrote is lost). For files other than notes
/// (`STORY.md`, chapters).
pub fn split_yaml(text: &str) -> (Option<&str>, &str) {
    match split_front_matter(text) {
        Split::Closed { yaml, body } => (Some(yaml), body),
        Split::None | Split::Unclosed(_) => (None, text.strip_prefix('\u{feff}').unwrap_or(text)),
    }
}

/// Front matter is a first line `---`, YAML, and a line `---` (or `...`).
fn split_front_matter(text: &str) -> Split<'_> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return Split::None;
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        let bare = line.trim_end();
        if bare == "---" || bare == "..." {
            return Split::Closed {
                yaml: &rest[..offset],
                body: &rest[offset + line.len()..],
            };
        }
        offset += line.len();
    }
    Split::Unclosed(rest)
}

/// The title from a first `# Heading` (unless the front matter named one) and aliases from an
/// `Aliases:` line among the first lines; both are taken out of the body.
fn body_habits(parsed: &mut Parsed, body: &str) -> String {
    let mut lines: Vec<&str> = body.trim().lines().collect();
    let mut taken = 0;
    while taken < 2 {
        let Some(first) = lines.first().map(|l| l.trim()) else {
            break;
        };
        if let Some(heading) = first.strip_prefix('#') {
            let heading = heading.trim_start_matches('#').trim();
            match &parsed.title {
                None if !heading.is_empty() => parsed.title = Some(heading.to_string()),
                Some(title) if title.eq_ignore_ascii_case(heading) => {}
                // A heading that is not the note's title is part of its text.
                _ => break,
            }
        } else if let Some(list) = alias_line(first) {
            parsed.aliases.extend(split_aliases(list));
        } else {
            break;
        }
        lines.remove(0);
        taken += 1;
        while lines.first().is_some_and(|l| l.trim().is_empty()) {
            lines.remove(0);
        }
    }
    lines.join("\n").trim().to_string()
}

fn alias_line(line: &str) -> Option<&str> {
    let (key, value) = line.split_once(':')?;
    let key = key.trim().trim_matches('*').trim().to_lowercase();
    matches!(key.as_str(), "aliases" | "alias" | "псевдонимы" | "также")
        .then(|| value.trim_start_matches('*'))
}

fn split_aliases(list: &str) -> Vec<String> {
    list.split([',', ';'])
        .map(|a| a.trim().trim_matches(['"', '\'', '[', ']']).trim())
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter_gives_title_aliases_include_and_summary() {
        let parsed = parse(
            "---\ntitle: Tide-script\naliases: [tide script, marks]\ninclude: always\nsummary: Old shorthand.\npov: first\n---\nThe body.\n",
        );
        assert_eq!(parsed.title.as_deref(), Some("Tide-script"));
        assert_eq!(parsed.aliases, ["tide script", "marks"]);
        assert_eq!(parsed.include, Include::Always);
        assert_eq!(parsed.summary.as_deref(), Some("Old shorthand."));
        assert_eq!(parsed.body, "The body.");
        assert_eq!(parsed.problem, None);
    }

    #[test]
    fn heading_and_aliases_line_are_read_from_the_body() {
        let parsed = parse("# Tobias Hale\nAliases: Toby, Wren's brother\n\nDigs mussels.");
        assert_eq!(parsed.title.as_deref(), Some("Tobias Hale"));
        assert_eq!(parsed.aliases, ["Toby", "Wren's brother"]);
        assert_eq!(parsed.body, "Digs mussels.");

        let parsed =
            parse("---\naliases: Pike\n---\n# Ezra Pike\n**Aliases:** the harbourmaster\nText.");
        assert_eq!(parsed.title.as_deref(), Some("Ezra Pike"));
        assert_eq!(parsed.aliases, ["Pike", "the harbourmaster"]);
        assert_eq!(parsed.body, "Text.");
    }

    #[test]
    fn a_heading_other_than_the_title_stays_in_the_body() {
        let parsed = parse("---\ntitle: Mara\n---\n# Early life\nBorn on the rock.");
        assert_eq!(parsed.title.as_deref(), Some("Mara"));
        assert_eq!(parsed.body, "# Early life\nBorn on the rock.");
    }

    #[test]
    fn malformed_front_matter_keeps_the_note_and_says_why() {
        let cases = [
            ("---\naliases: [Toby\n---\nBody text.", "Body text."),
            ("---\ninclude: sometimes\n---\nBody text.", "Body text."),
            // Unclosed: the YAML-looking line is read as an `Aliases:` line of the body.
            (
                "---\naliases: Toby\nBody text, never closed.",
                "Body text, never closed.",
            ),
            ("---\n- a list\n---\nBody text.", "Body text."),
        ];
        for (text, body) in cases {
            let parsed = parse(text);
            assert!(parsed.problem.is_some(), "{text:?}");
            assert_eq!(parsed.body, body, "{text:?}");
            assert_eq!(parsed.include, Include::Mentioned, "{text:?}");
        }
    }

    #[test]
    fn empty_and_plain_notes_parse() {
        assert_eq!(parse(""), Parsed::default());
        let parsed = parse("---\n---\nJust text.");
        assert_eq!((parsed.body.as_str(), parsed.problem), ("Just text.", None));
        let parsed = parse("Plain text, no title.");
        assert_eq!(
            (parsed.title, parsed.body.as_str()),
            (None, "Plain text, no title.")
        );
        let parsed = parse("---\ntitle: 1984\ninclude: NEVER\n---\n");
        assert_eq!(parsed.title.as_deref(), Some("1984"));
        assert_eq!(parsed.include, Include::Never);
    }
}
