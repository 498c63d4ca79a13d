//! `storyteller-lsp notes [--workspace DIR] [--at FILE:LINE[:COLUMN]] [--json]`: what the story
//! notes index holds for a workspace (the default `contextFiles` globs) and, with `--at`, which
//! notes a prompt at that place would carry and why — `storyteller.notes.list` for the terminal.

use std::path::{Path, PathBuf};

use ropey::Rope;

use super::{Failure, print_json, table};
use crate::assist::notes::{NoteListing, NotesIndex, RootListing};
use crate::config::Settings;
use crate::messages;

/// Where `--at` puts the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: PathBuf,
    /// From 1.
    pub line: usize,
    /// From 1, in characters; `None`: the end of the line.
    pub column: Option<usize>,
}

impl At {
    /// `FILE:LINE` or `FILE:LINE:COLUMN` (a file name may itself hold colons).
    pub fn parse(spec: &str) -> Result<At, Failure> {
        let bad = |reason: &str| Failure::usage(messages::notes::bad_position(reason));
        let number = |s: &str| s.parse::<usize>().ok().filter(|n| *n >= 1);
        let (rest, last) = spec.rsplit_once(':').ok_or_else(|| bad("no line number"))?;
        let last = number(last).ok_or_else(|| bad("the line number is not a number from 1"))?;
        let (file, line, column) = match rest.rsplit_once(':') {
            Some((file, line)) if number(line).is_some() && !file.is_empty() => {
                (file, number(line).unwrap_or(1), Some(last))
            }
            _ => (rest, last, None),
        };
        if file.is_empty() {
            return Err(bad("no file"));
        }
        Ok(At {
            file: PathBuf::from(file),
            line,
            column,
        })
    }

    /// The char offset of the cursor in `text`; lines and columns past the end are clamped.
    pub fn cursor(&self, text: &Rope) -> usize {
        let lines = text.len_lines();
        let line = (self.line - 1).min(lines.saturating_sub(1));
        let start = text.line_to_char(line);
        let content: usize = text
            .line(line)
            .chars()
            .take_while(|c| *c != '\n' && *c != '\r')
            .count();
        start + self.column.map_or(content, |c| (c - 1).min(content))
    }
}

pub async fn list(
    workspace: Option<PathBuf>,
    at: Option<String>,
    json: bool,
) -> Result<(), Failure> {
    let root = match workspace {
        Some(dir) => dir,
        None => std::env::current_dir()
            .map_err(|e| Failure::failed(format!("cannot read the current directory: {e}")))?,
    };
    let root = std::fs::canonicalize(&root)
        .map_err(|e| Failure::usage(format!("--workspace {}: {e}", root.display())))?;
    let at = at.as_deref().map(At::parse).transpose()?;
    let index = NotesIndex::new();
    index
        .index_root(root.clone(), Settings::default().context_files)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let listing = match &at {
        Some(at) => {
            let file = resolve(&root, &at.file);
            let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(&file))
                .await
                .map_err(|e| Failure::failed(e.to_string()))?
                .map_err(|e| {
                    Failure::usage(messages::notes::bad_position(&format!(
                        "cannot read {}: {e}",
                        at.file.display()
                    )))
                })?;
            let text = Rope::from_str(&text);
            index.listing_at(&root, &text, at.cursor(&text))
        }
        None => index.listing(&root, None),
    }
    .ok_or_else(|| Failure::failed(messages::notes::no_roots()))?;
    if json {
        return print_json(&serde_json::json!({ "roots": [listing] }));
    }
    print!("{}", render(&listing));
    Ok(())
}

/// A relative `--at` file is looked for under the current directory, then the workspace.
fn resolve(root: &Path, file: &Path) -> PathBuf {
    if file.is_absolute() || file.exists() {
        file.to_path_buf()
    } else {
        root.join(file)
    }
}

/// The listing as the terminal shows it.
pub fn render(listing: &RootListing) -> String {
    let asked = listing.notes.iter().any(|n| n.at_position.is_some());
    let mut header = vec!["PATH", "TITLE", "NAMES", "INCLUDE", "SUMMARY", "CHARS"];
    if asked {
        header.extend(["PROMPT", "WHY"]);
    }
    header.push("PROBLEM");
    let rows: Vec<Vec<String>> = listing.notes.iter().map(|n| row(n, asked)).collect();
    format!(
        "{} ({} notes; contextFiles: {})\n{}",
        listing.root.display(),
        listing.notes.len(),
        listing.patterns.join(", "),
        table(&header, &rows)
    )
}

fn row(note: &NoteListing, asked: bool) -> Vec<String> {
    let include = if note.story_bible {
        "story bible".to_string()
    } else {
        note.include.as_str().to_string()
    };
    let mut row = vec![
        note.path.clone(),
        note.title.clone(),
        note.names.join(", "),
        include,
        if note.has_summary { "yes" } else { "no" }.to_string(),
        note.chars.to_string(),
    ];
    if asked {
        let at = note.at_position.as_ref();
        row.push(
            at.and_then(|a| a.rank)
                .map_or_else(|| "-".to_string(), |r| format!("#{r}")),
        );
        row.push(at.map(|a| a.why.clone()).unwrap_or_default());
    }
    row.push(note.problem.clone().unwrap_or_default());
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_reads_file_line_and_column() {
        let cases = [
            ("ch1.md:3", Some(("ch1.md", 3, None))),
            ("ch1.md:3:7", Some(("ch1.md", 3, Some(7)))),
            ("C:/book/ch1.md:12", Some(("C:/book/ch1.md", 12, None))),
            ("ch1.md", None),
            ("ch1.md:0", None),
            ("ch1.md:x", None),
            (":4", None),
        ];
        for (spec, expected) in cases {
            let got = At::parse(spec).ok().map(|a| (a.file, a.line, a.column));
            let expected = expected.map(|(f, l, c)| (PathBuf::from(f), l, c));
            assert_eq!(got, expected, "{spec:?}");
        }
    }

    #[test]
    fn the_cursor_is_at_the_end_of_the_line_unless_a_column_is_given() {
        let text = Rope::from_str("Wren sat.\r\nТоби ушёл.\nEnd");
        let at = |line, column| At {
            file: PathBuf::new(),
            line,
            column,
        };
        assert_eq!(at(1, None).cursor(&text), 9);
        assert_eq!(at(2, None).cursor(&text), 21);
        assert_eq!(at(2, Some(3)).cursor(&text), 13);
        assert_eq!(at(2, Some(99)).cursor(&text), 21);
        assert_eq!(at(99, None).cursor(&text), text.len_chars());
    }
}
