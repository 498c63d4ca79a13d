//! One prompt template: parsing a markdown file with YAML front matter, and rendering its
//! `{{variable}}` placeholders.
//!
//! Parsing is strict and explains itself: every problem becomes a [`LoadWarning`] that names the
//! file and the line, and the template is skipped. Rendering is a single pass over pre-parsed
//! segments, so a value is inserted verbatim — a manuscript that contains `{{` is never expanded.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// Where a template came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateSource {
    /// Compiled into the binary from `prompts/{file}`.
    Bundled(&'static str),
    /// `<workspace>/.storyteller/prompts/{file}`.
    Workspace(PathBuf),
}

impl fmt::Display for TemplateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateSource::Bundled(file) => write!(f, "prompts/{file} (bundled)"),
            TemplateSource::Workspace(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A problem with one template file; the file was skipped, the others still load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadWarning {
    /// The file, as [`TemplateSource`] displays it.
    pub file: String,
    /// 1-based line in the file, when the problem has one.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Variable values for [`Template::render`]. Values may be empty; a declared variable that is
/// absent is an error. A template has a handful of variables and each is looked up on every
/// render: they are kept sorted by name, without hashing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vars<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Vars<'a> {
    pub fn new() -> Self {
        Vars(Vec::new())
    }

    pub fn with(mut self, name: &'a str, value: &'a str) -> Self {
        self.set(name, value);
        self
    }

    /// Sets `name`, replacing the value it had.
    pub fn set(&mut self, name: &'a str, value: &'a str) {
        match self.0.binary_search_by_key(&name, |&(n, _)| n) {
            Ok(at) => self.0[at].1 = value,
            Err(at) => self.0.insert(at, (name, value)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&'a str> {
        let at = self.0.binary_search_by_key(&name, |&(n, _)| n).ok()?;
        Some(self.0[at].1)
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Vars<'a> {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a str)>>(iter: I) -> Self {
        let mut vars = Vars::new();
        for (name, value) in iter {
            vars.set(name, value);
        }
        vars
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "prompt template `{name}` version {version} needs {} that the caller did not provide",
        list(missing)
    )]
    MissingVariables {
        name: String,
        version: u32,
        missing: Vec<String>,
    },
}

fn list(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.len() {
        1 => format!("the variable {}", quoted[0]),
        _ => format!("the variables {}", quoted.join(", ")),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String),
}

/// Where a custom action's text goes (front matter `placement`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomPlacement {
    /// `cursor` (the default): inserted at the cursor; offered at a cursor.
    Cursor,
    /// `replace`: replaces the selection; offered on a selection.
    Replace,
    /// `after`: inserted after the selection; offered on a selection.
    After,
}

impl CustomPlacement {
    pub const NAMES: &[&str] = &["cursor", "replace", "after"];

    pub fn parse(text: &str) -> Option<CustomPlacement> {
        match text {
            "cursor" => Some(CustomPlacement::Cursor),
            "replace" => Some(CustomPlacement::Replace),
            "after" => Some(CustomPlacement::After),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            CustomPlacement::Cursor => "cursor",
            CustomPlacement::Replace => "replace",
            CustomPlacement::After => "after",
        }
    }
}

/// A template that is also a code action of its own (front matter `action: <title>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomAction {
    /// The title in the editor's code action menu.
    pub title: String,
    pub placement: CustomPlacement,
}

/// Longest custom action title (a menu entry, not a paragraph).
const MAX_TITLE_CHARS: usize = 80;

/// A parsed, valid template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    pub version: u32,
    pub description: String,
    /// Declared variables, in front-matter order.
    pub variables: Vec<String>,
    /// `active` as the file declares it (the registry may hold the author's choice instead).
    pub declared_active: bool,
    /// `weight` as the file declares it.
    pub declared_weight: f64,
    /// Set when the file declares `action`: the template is offered as a code action.
    pub action: Option<CustomAction>,
    pub source: TemplateSource,
    /// The body as written (placeholders included).
    pub body: String,
    segments: Vec<Segment>,
}

impl Template {
    /// The body with every placeholder replaced by its value, verbatim. Extra values are ignored
    /// (callers pass all the context they have); a declared variable without a value is an error.
    pub fn render(&self, vars: &Vars<'_>) -> Result<String, RenderError> {
        let missing: Vec<String> = self
            .variables
            .iter()
            .filter(|v| vars.get(v).is_none())
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(RenderError::MissingVariables {
                name: self.name.clone(),
                version: self.version,
                missing,
            });
        }
        let mut out = String::with_capacity(
            self.body.len()
                + self
                    .variables
                    .iter()
                    .filter_map(|v| vars.get(v))
                    .map(str::len)
                    .sum::<usize>(),
        );
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                // Declared (checked at parse time) and present (checked above).
                Segment::Var(name) => out.push_str(vars.get(name).unwrap_or_default()),
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    name: String,
    version: u32,
    #[serde(default)]
    description: String,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default = "default_active")]
    active: bool,
    #[serde(default = "default_weight")]
    weight: f64,
    /// A custom code action's title.
    #[serde(default)]
    action: Option<String>,
    /// Where a custom action's text goes: `cursor` (default), `replace` or `after`.
    #[serde(default)]
    placement: Option<String>,
}

fn default_active() -> bool {
    true
}

fn default_weight() -> f64 {
    1.0
}

const FENCE: &str = "---";

/// Parses one template file. `text` is the whole file.
pub fn parse(source: TemplateSource, text: &str) -> Result<Template, LoadWarning> {
    let warn = |line: Option<usize>, message: String| LoadWarning {
        file: source.to_string(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();

    if lines.first().map(|l| l.trim_end()) != Some(FENCE) {
        return Err(warn(
            Some(1),
            "a prompt template starts with a `---` line, then YAML front matter (name, version, \
             variables), then another `---` line"
                .into(),
        ));
    }
    let Some(close) = lines
        .iter()
        .skip(1)
        .position(|l| l.trim_end() == FENCE)
        .map(|i| i + 1)
    else {
        return Err(warn(
            Some(1),
            "the front matter opened here is never closed with a `---` line".into(),
        ));
    };

    let yaml = lines[1..close].join("\n");
    if yaml.trim().is_empty() {
        return Err(warn(
            Some(1),
            "the front matter is empty; it needs at least `name` and `version`".into(),
        ));
    }
    let front: FrontMatter = serde_norway::from_str(&yaml).map_err(|e| {
        // YAML lines count from the line after the opening fence.
        let line = e.location().map(|l| l.line() + 1).unwrap_or(2);
        warn(Some(line), format!("invalid front matter: {e}"))
    })?;
    let line_of = |key: &str| {
        lines[1..close]
            .iter()
            .position(|l| l.starts_with(&format!("{key}:")))
            .map_or(2, |i| i + 2)
    };

    if !is_template_name(&front.name) {
        return Err(warn(
            Some(line_of("name")),
            format!(
                "`name` must be 1-64 characters of letters, digits, `_` or `-`, got {:?}",
                front.name
            ),
        ));
    }
    if front.version == 0 {
        return Err(warn(
            Some(line_of("version")),
            "`version` must be 1 or more".into(),
        ));
    }
    if !(front.weight.is_finite() && front.weight >= 0.0) {
        return Err(warn(
            Some(line_of("weight")),
            format!(
                "`weight` must be a number of 0 or more, got {}",
                front.weight
            ),
        ));
    }
    let action = match (&front.action, &front.placement) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(warn(
                Some(line_of("placement")),
                "`placement` applies only to a custom action: add `action: <title>`".into(),
            ));
        }
        (Some(title), placement) => {
            let title = title.trim();
            if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS || title.contains('\n') {
                return Err(warn(
                    Some(line_of("action")),
                    format!(
                        "`action` is the title shown in the editor's menu: one line of 1-{MAX_TITLE_CHARS} characters"
                    ),
                ));
            }
            let placement = match placement.as_deref().map(str::trim) {
                None => CustomPlacement::Cursor,
                Some(p) => CustomPlacement::parse(p).ok_or_else(|| {
                    warn(
                        Some(line_of("placement")),
                        format!(
                            "`placement` must be one of {}, got {p:?}",
                            CustomPlacement::NAMES.join(", ")
                        ),
                    )
                })?,
            };
            Some(CustomAction {
                title: title.to_string(),
                placement,
            })
        }
    };
    let mut declared = BTreeSet::new();
    for var in &front.variables {
        if !is_identifier(var) {
            return Err(warn(
                Some(line_of("variables")),
                format!("variable name {var:?} is not an identifier (letters, digits, `_`)"),
            ));
        }
        if !declared.insert(var.as_str()) {
            return Err(warn(
                Some(line_of("variables")),
                format!("variable `{var}` is declared twice"),
            ));
        }
    }

    // The body: after the closing fence, without leading blank lines or trailing whitespace.
    let mut body_start = close + 1;
    while lines.get(body_start).is_some_and(|l| l.trim().is_empty()) {
        body_start += 1;
    }
    let body = lines
        .get(body_start..)
        .unwrap_or_default()
        .join("\n")
        .trim_end()
        .to_string();
    if body.is_empty() {
        return Err(warn(
            Some(close + 1),
            "the template has no text after its front matter".into(),
        ));
    }
    let segments = segments(&body).map_err(|(offset, message)| {
        let line = body_start + 1 + body[..offset].matches('\n').count();
        warn(Some(line), message)
    })?;
    for (offset, segment) in &segments {
        if let Segment::Var(name) = segment
            && !declared.contains(name.as_str())
        {
            let line = body_start + 1 + body[..*offset].matches('\n').count();
            let known = if front.variables.is_empty() {
                "none".to_string()
            } else {
                front.variables.join(", ")
            };
            return Err(warn(
                Some(line),
                format!(
                    "`{{{{{name}}}}}` uses the variable `{name}`, which the front matter does not \
                     declare (declared: {known})"
                ),
            ));
        }
    }

    Ok(Template {
        name: front.name,
        version: front.version,
        description: front.description.trim().to_string(),
        variables: front.variables,
        declared_active: front.active,
        declared_weight: front.weight,
        action,
        source,
        body,
        segments: segments.into_iter().map(|(_, s)| s).collect(),
    })
}

/// Splits a body into text and `{{ name }}` placeholders, each with its byte offset. A `{{` that
/// does not open a well-formed placeholder is an error (offset, message): a typo would otherwise
/// send raw braces to the model.
fn segments(body: &str) -> Result<Vec<(usize, Segment)>, (usize, String)> {
    let mut out = Vec::new();
    let mut rest = 0;
    while let Some(found) = body[rest..].find("{{") {
        let open = rest + found;
        if open > rest {
            out.push((rest, Segment::Text(body[rest..open].to_string())));
        }
        let inner_start = open + 2;
        let Some(close) = body[inner_start..].find("}}").map(|i| inner_start + i) else {
            return Err((open, "`{{` is never closed with `}}`".into()));
        };
        let inner = &body[inner_start..close];
        let name = inner.trim();
        if !is_identifier(name) || inner.contains('\n') {
            return Err((
                open,
                format!(
                    "`{{{{{inner}}}}}` is not a placeholder: write `{{{{name}}}}` with a declared variable name"
                ),
            ));
        }
        out.push((open, Segment::Var(name.to_string())));
        rest = close + 2;
    }
    if rest < body.len() {
        out.push((rest, Segment::Text(body[rest..].to_string())));
    }
    Ok(out)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_template_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> TemplateSource {
        TemplateSource::Workspace(PathBuf::from("/w/.storyteller/prompts/t.md"))
    }

    const GOOD: &str = "---\nname: demo\nversion: 2\nvariables: [before, tone]\n---\n\nTone: {{ tone }}.\nText: {{before}}\n";

    #[test]
    fn a_variable_set_again_keeps_its_last_value_whatever_the_order() {
        let names = [
            "tone", "before", "notes", "after", "heading", "language", "a", "z",
        ];
        let forward: Vars<'_> = names.iter().map(|&n| (n, "1")).collect();
        let mut backward = Vars::new();
        for &name in names.iter().rev() {
            backward.set(name, "0");
            backward.set(name, "1");
        }
        assert_eq!(forward, backward);
        for name in names {
            assert_eq!(forward.get(name), Some("1"));
        }
        assert_eq!(forward.get("missing"), None);
        assert_eq!(
            forward.clone().with("tone", "tense").get("tone"),
            Some("tense")
        );
    }

    #[test]
    fn a_good_file_parses_with_defaults() {
        let t = parse(src(), GOOD).unwrap();
        assert_eq!(t.name, "demo");
        assert_eq!(t.version, 2);
        assert_eq!(t.variables, vec!["before", "tone"]);
        assert!(t.declared_active);
        assert_eq!(t.declared_weight, 1.0);
        assert_eq!(t.body, "Tone: {{ tone }}.\nText: {{before}}");
    }

    #[test]
    fn rendering_inserts_values_verbatim_without_expanding_braces() {
        let t = parse(src(), GOOD).unwrap();
        let manuscript = "She wrote {{tone}} on the wall, and {{ before }} too.";
        let out = t
            .render(&Vars::new().with("before", manuscript).with("tone", "tense"))
            .unwrap();
        assert_eq!(out, format!("Tone: tense.\nText: {manuscript}"));
    }

    #[test]
    fn extra_values_are_ignored_and_empty_values_are_fine() {
        let t = parse(src(), GOOD).unwrap();
        let out = t
            .render(
                &Vars::new()
                    .with("before", "")
                    .with("tone", "plain")
                    .with("notes", "x"),
            )
            .unwrap();
        assert_eq!(out, "Tone: plain.\nText: ");
    }

    #[test]
    fn missing_values_are_named() {
        let t = parse(src(), GOOD).unwrap();
        let err = t.render(&Vars::new().with("before", "x")).unwrap_err();
        assert_eq!(
            err,
            RenderError::MissingVariables {
                name: "demo".into(),
                version: 2,
                missing: vec!["tone".into()]
            }
        );
        assert!(err.to_string().contains("`tone`"));
    }

    #[test]
    fn malformed_files_name_the_line() {
        // (file text, expected line, a word the message must contain)
        let cases: &[(&str, usize, &str)] = &[
            ("no front matter\n", 1, "starts with"),
            ("---\nname: x\nversion: 1\n", 1, "never closed"),
            ("---\n---\nbody\n", 1, "empty"),
            ("---\nname: x\nversion: 1.5\n---\nbody\n", 3, "version"),
            ("---\nname: x\nversion: one\n---\nbody\n", 3, "version"),
            ("---\nversion: 1\n---\nbody\n", 2, "name"),
            (
                "---\nname: x\nversion: 1\nvariables: [a\n---\nbody\n",
                5,
                "invalid front matter",
            ),
            (
                "---\nname: x\nversion: 1\ncolour: red\n---\nbody\n",
                4,
                "colour",
            ),
            ("---\nname: has space\nversion: 1\n---\nbody\n", 2, "`name`"),
            ("---\nname: x\nversion: 0\n---\nbody\n", 3, "`version`"),
            (
                "---\nname: x\nversion: 1\nweight: -2\n---\nbody\n",
                4,
                "`weight`",
            ),
            (
                "---\nname: x\nversion: 1\nvariables: [a, a]\n---\n{{a}}\n",
                4,
                "twice",
            ),
            ("---\nname: x\nversion: 1\n---\n\n\n", 4, "no text"),
            (
                "---\nname: x\nversion: 1\nvariables: [a]\n---\nline one\n{{a}} and {{b}}\n",
                7,
                "`b`",
            ),
            (
                "---\nname: x\nversion: 1\nvariables: [a]\n---\n\nok\n{{a\n",
                8,
                "never closed",
            ),
            (
                "---\nname: x\nversion: 1\nvariables: [a]\n---\n{{a}} {{ two words }}\n",
                6,
                "not a placeholder",
            ),
        ];
        for (text, line, word) in cases {
            let warning = parse(src(), text).unwrap_err();
            assert_eq!(warning.line, Some(*line), "{text:?}: {warning}");
            assert!(warning.message.contains(word), "{text:?}: {warning}");
            assert!(
                warning
                    .to_string()
                    .starts_with(&format!("/w/.storyteller/prompts/t.md:{line}: ")),
                "{warning}"
            );
        }
    }

    #[test]
    fn crlf_files_and_a_byte_order_mark_parse() {
        let text =
            "\u{feff}---\r\nname: demo\r\nversion: 1\r\nvariables: [a]\r\n---\r\nA: {{a}}\r\n";
        let t = parse(src(), text).unwrap();
        assert_eq!(t.render(&Vars::new().with("a", "1")).unwrap(), "A: 1");
    }
}
