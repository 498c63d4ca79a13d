//! The catalogue of writing actions offered as code actions: which exist, which need a selection,
//! which prompt template each uses, where its text goes, and the ids, tones and instructions that
//! `storyteller.generate` accepts.
//!
//! A tone is one of the five named tones (the menu entries) or the author's own style brief
//! (free text, e.g. "like Hemingway, terse"); an instruction is what should happen next, given to
//! the cursor actions. Both are validated here and never repeated in an error (they are the
//! author's words).
//!
//! Plain data and parsing; listing the catalogue never touches a provider.

use std::fmt;

use crate::messages;

/// What an action's output does to the manuscript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Placement {
    /// Inserted at the cursor (or the end of the selection's range when there is one).
    AtCursor,
    /// Replaces the selected text.
    ReplaceSelection,
    /// Inserted right after the selected text.
    AfterSelection,
}

/// The code action kind family (DESIGN.md §3): rewrites change the author's text; sources add new
/// text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Rewrite,
    Source,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
        }

        impl $name {
            pub const ALL: &[$name] = &[$($name::$variant,)+];

            /// The name used in `storyteller.generate` arguments.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// The writing actions.
    ActionId {
        ContinueScene => "continueScene",
        ExpandWorldbuilding => "expandWorldbuilding",
        RewriteSelection => "rewriteSelection",
        SuggestDialogue => "suggestDialogue",
        DescribeCharacter => "describeCharacter",
        Custom => "custom",
    }
}

named_enum! {
    /// The named tones of Rewrite selection, offered as menu entries.
    NamedTone {
        Vivid => "vivid",
        Concise => "concise",
        Tense => "tense",
        Lyrical => "lyrical",
        Plain => "plain",
    }
}

impl ActionId {
    /// The prompt template (`prompts/{name}.md`).
    pub const fn template(self) -> &'static str {
        match self {
            ActionId::ContinueScene => "continue_scene",
            ActionId::ExpandWorldbuilding => "expand_worldbuilding",
            ActionId::RewriteSelection => "rewrite_selection",
            ActionId::SuggestDialogue => "suggest_dialogue",
            ActionId::DescribeCharacter => "describe_character",
            // A custom action names its template itself (`Action::template`).
            ActionId::Custom => "",
        }
    }

    /// Where the output goes (the template's front matter says the same in prose).
    pub const fn placement(self) -> Placement {
        match self {
            ActionId::ContinueScene | ActionId::ExpandWorldbuilding | ActionId::Custom => {
                Placement::AtCursor
            }
            ActionId::RewriteSelection | ActionId::SuggestDialogue => Placement::ReplaceSelection,
            ActionId::DescribeCharacter => Placement::AfterSelection,
        }
    }

    pub const fn kind(self) -> ActionKind {
        match self.placement() {
            Placement::ReplaceSelection => ActionKind::Rewrite,
            Placement::AtCursor | Placement::AfterSelection => ActionKind::Source,
        }
    }

    /// Offered only on a selection (and refused without one).
    pub const fn needs_selection(self) -> bool {
        !matches!(self.placement(), Placement::AtCursor)
    }

    /// Writes new text, so the author can say what should happen in it (`instruction`): the
    /// cursor actions and Describe character. Rewrites have their tone instead.
    pub const fn takes_instruction(self) -> bool {
        matches!(
            self,
            ActionId::ContinueScene
                | ActionId::ExpandWorldbuilding
                | ActionId::DescribeCharacter
                | ActionId::Custom
        )
    }

    fn instructed() -> Vec<ActionId> {
        ActionId::ALL
            .iter()
            .copied()
            .filter(|id| id.takes_instruction())
            .collect()
    }
}

/// Why an action's id or tone was refused; the field is named by the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    // The refused value is not repeated: a client may have put anything (manuscript text, a
    // key) into the field.
    #[error("unknown action; expected one of {known}", known = list(ActionId::ALL))]
    UnknownAction,
    #[error(
        "a tone is one of {known} or a style brief; this one is empty",
        known = list(NamedTone::ALL)
    )]
    ToneEmpty,
    #[error("a style brief is at most {MAX_STYLE_BRIEF_CHARS} characters")]
    ToneTooLong,
    #[error("a style brief may not hold control characters (line breaks included)")]
    ToneControlCharacters,
    #[error(
        "rewriteSelection needs a tone: one of {} or a style brief",
        list(NamedTone::ALL)
    )]
    ToneRequired,
    #[error("only rewriteSelection takes a tone")]
    ToneNotApplicable,
    #[error("a custom action needs `template`: the name of a workspace prompt with `action:`")]
    TemplateRequired,
    #[error("an instruction is at most {MAX_INSTRUCTION_CHARS} characters")]
    InstructionTooLong,
    #[error("an instruction may not hold control characters other than line breaks and tabs")]
    InstructionControlCharacters,
    #[error("only {} take an instruction", list(&ActionId::instructed()))]
    InstructionNotApplicable,
}

/// Longest style brief accepted as a tone, in chars.
pub const MAX_STYLE_BRIEF_CHARS: usize = 200;

/// Longest instruction accepted, in chars.
pub const MAX_INSTRUCTION_CHARS: usize = 1_000;

/// The tone of a rewrite: a named tone, or the author's style brief (trimmed, non-empty, at most
/// [`MAX_STYLE_BRIEF_CHARS`] chars, no control characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Tone {
    Named(NamedTone),
    Brief(String),
}

impl Tone {
    /// A named tone (case-insensitively) or else a style brief.
    pub fn parse(text: &str) -> Result<Tone, ActionError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ActionError::ToneEmpty);
        }
        if let Some(named) = NamedTone::ALL
            .iter()
            .copied()
            .find(|t| t.as_str().eq_ignore_ascii_case(text))
        {
            return Ok(Tone::Named(named));
        }
        if text.chars().count() > MAX_STYLE_BRIEF_CHARS {
            return Err(ActionError::ToneTooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(ActionError::ToneControlCharacters);
        }
        Ok(Tone::Brief(text.to_string()))
    }

    /// What the prompt's `tone` variable holds: the tone's name or the brief itself.
    pub fn as_str(&self) -> &str {
        match self {
            Tone::Named(named) => named.as_str(),
            Tone::Brief(brief) => brief,
        }
    }
}

/// A brief is the author's words: `{:?}` shows its length only.
impl fmt::Debug for Tone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tone::Named(named) => write!(f, "Named({named})"),
            Tone::Brief(brief) => write!(f, "Brief({} chars)", brief.chars().count()),
        }
    }
}

/// Parses the `instruction` argument of `storyteller.generate` for action `id`: trimmed; empty
/// means none; at most [`MAX_INSTRUCTION_CHARS`] chars; line breaks and tabs allowed, other
/// control characters refused; only the actions of [`ActionId::takes_instruction`].
pub fn parse_instruction(id: ActionId, text: &str) -> Result<Option<String>, ActionError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !id.takes_instruction() {
        return Err(ActionError::InstructionNotApplicable);
    }
    if text.chars().count() > MAX_INSTRUCTION_CHARS {
        return Err(ActionError::InstructionTooLong);
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ActionError::InstructionControlCharacters);
    }
    Ok(Some(text.to_string()))
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A workspace prompt offered as a code action of its own (front matter `action:`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomAction {
    template: String,
    title: String,
    placement: Placement,
}

/// One runnable action: an id and, for rewrites, a tone; for a custom action, its template.
/// Valid by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Action {
    id: ActionId,
    tone: Option<Tone>,
    custom: Option<Box<CustomAction>>,
}

impl Action {
    pub fn new(id: ActionId, tone: Option<Tone>) -> Result<Action, ActionError> {
        match (id, tone.is_some()) {
            (ActionId::Custom, false) => Err(ActionError::TemplateRequired),
            (ActionId::RewriteSelection, false) => Err(ActionError::ToneRequired),
            (ActionId::RewriteSelection, true) | (_, false) => Ok(Action {
                id,
                tone,
                custom: None,
            }),
            (_, true) => Err(ActionError::ToneNotApplicable),
        }
    }

    /// The custom action of the workspace template `template`.
    pub fn custom(template: &str, spec: &crate::prompts::CustomAction) -> Action {
        use crate::prompts::CustomPlacement;
        let placement = match spec.placement {
            CustomPlacement::Cursor => Placement::AtCursor,
            CustomPlacement::Replace => Placement::ReplaceSelection,
            CustomPlacement::After => Placement::AfterSelection,
        };
        Action {
            id: ActionId::Custom,
            tone: None,
            custom: Some(Box::new(CustomAction {
                template: template.to_string(),
                title: spec.title.clone(),
                placement,
            })),
        }
    }

    /// The template of a custom action (`None` for the built-in ones).
    pub fn custom_template(&self) -> Option<&str> {
        self.custom.as_deref().map(|c| c.template.as_str())
    }

    /// The prompt template it renders.
    pub fn template(&self) -> &str {
        self.custom_template().unwrap_or(self.id.template())
    }

    /// Where its output goes.
    pub fn placement(&self) -> Placement {
        self.custom
            .as_deref()
            .map_or(self.id.placement(), |c| c.placement)
    }

    pub fn kind(&self) -> ActionKind {
        match self.placement() {
            Placement::ReplaceSelection => ActionKind::Rewrite,
            Placement::AtCursor | Placement::AfterSelection => ActionKind::Source,
        }
    }

    /// Offered only on a selection (and refused without one).
    pub fn needs_selection(&self) -> bool {
        !matches!(self.placement(), Placement::AtCursor)
    }

    /// Parses the `action` and `tone` arguments of `storyteller.generate`.
    pub fn parse(action: &str, tone: Option<&str>) -> Result<Action, ActionError> {
        let id = ActionId::parse(action).ok_or(ActionError::UnknownAction)?;
        let tone = tone.map(Tone::parse).transpose()?;
        Action::new(id, tone)
    }

    pub fn id(&self) -> ActionId {
        self.id
    }

    pub fn tone(&self) -> Option<&Tone> {
        self.tone.as_ref()
    }

    /// The title shown in the editor's code action menu (and in the progress of a running one).
    pub fn title(&self) -> String {
        use messages::action_titles as titles;
        if let Some(custom) = &self.custom {
            return custom.title.clone();
        }
        match (self.id, &self.tone) {
            (ActionId::RewriteSelection, Some(Tone::Named(tone))) => titles::rewrite(tone.as_str()),
            (ActionId::RewriteSelection, Some(Tone::Brief(brief))) => {
                titles::rewrite(&shorten(brief))
            }
            (ActionId::RewriteSelection, None) => titles::REWRITE.to_string(),
            (ActionId::ContinueScene, _) => titles::CONTINUE_SCENE.to_string(),
            (ActionId::ExpandWorldbuilding, _) => titles::EXPAND_WORLDBUILDING.to_string(),
            (ActionId::SuggestDialogue, _) => titles::SUGGEST_DIALOGUE.to_string(),
            (ActionId::DescribeCharacter, _) => titles::DESCRIBE_CHARACTER.to_string(),
            // Never built without its spec (`Action::custom`).
            (ActionId::Custom, _) => String::new(),
        }
    }
}

/// A style brief in a title: its first words, shortened with an ellipsis.
fn shorten(brief: &str) -> String {
    const TITLE_CHARS: usize = 40;
    if brief.chars().count() <= TITLE_CHARS {
        return brief.to_string();
    }
    let short: String = brief.chars().take(TITLE_CHARS - 1).collect();
    format!("{}…", short.trim_end())
}

/// The actions offered: on a selection, Rewrite selection in every tone, Suggest dialogue and
/// Describe character; at a cursor, Continue scene and Expand worldbuilding.
pub fn catalogue(has_selection: bool) -> Vec<Action> {
    if has_selection {
        let rewrites = NamedTone::ALL.iter().map(|&tone| Action {
            id: ActionId::RewriteSelection,
            tone: Some(Tone::Named(tone)),
            custom: None,
        });
        rewrites
            .chain(
                [ActionId::SuggestDialogue, ActionId::DescribeCharacter].map(|id| Action {
                    id,
                    tone: None,
                    custom: None,
                }),
            )
            .collect()
    } else {
        [ActionId::ContinueScene, ActionId::ExpandWorldbuilding]
            .into_iter()
            .map(|id| Action {
                id,
                tone: None,
                custom: None,
            })
            .collect()
    }
}

/// The workspace's custom actions offered here: `replace`/`after` on a selection, `cursor` at a
/// cursor. `customs` is (template name, spec), as the prompt registry lists them.
pub fn custom_catalogue(
    has_selection: bool,
    customs: &[(String, crate::prompts::CustomAction)],
) -> Vec<Action> {
    customs
        .iter()
        .map(|(template, spec)| Action::custom(template, spec))
        .filter(|action| action.needs_selection() == has_selection)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_get_rewrites_dialogue_and_description_cursors_get_continuations() {
        let on_selection: Vec<String> = catalogue(true).iter().map(|a| a.title()).collect();
        assert_eq!(
            on_selection,
            [
                "Rewrite selection: vivid",
                "Rewrite selection: concise",
                "Rewrite selection: tense",
                "Rewrite selection: lyrical",
                "Rewrite selection: plain",
                "Suggest dialogue",
                "Describe character",
            ]
        );
        let at_cursor: Vec<ActionId> = catalogue(false).iter().map(|a| a.id()).collect();
        assert_eq!(
            at_cursor,
            [ActionId::ContinueScene, ActionId::ExpandWorldbuilding]
        );
        for action in catalogue(true) {
            assert!(action.id().needs_selection());
        }
        for action in catalogue(false) {
            assert!(!action.id().needs_selection());
        }
    }

    #[test]
    fn ids_and_tones_parse_strictly() {
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Result<(ActionId, Option<Tone>), ActionError>,
        );
        let brief = |text: &str| Some(Tone::Brief(text.to_string()));
        let long = "terse ".repeat(40);
        let cases: &[Case] = &[
            ("continueScene", None, Ok((ActionId::ContinueScene, None))),
            (
                "rewriteSelection",
                Some("lyrical"),
                Ok((
                    ActionId::RewriteSelection,
                    Some(Tone::Named(NamedTone::Lyrical)),
                )),
            ),
            (
                "rewriteSelection",
                Some(" Tense "),
                Ok((
                    ActionId::RewriteSelection,
                    Some(Tone::Named(NamedTone::Tense)),
                )),
            ),
            // Another word, or a sentence, is the author's style brief.
            (
                "rewriteSelection",
                Some("  like Hemingway, terse "),
                Ok((ActionId::RewriteSelection, brief("like Hemingway, terse"))),
            ),
            (
                "rewriteSelection",
                Some("angry"),
                Ok((ActionId::RewriteSelection, brief("angry"))),
            ),
            (
                "rewriteSelection",
                Some("как у Чехова: просто и точно"),
                Ok((
                    ActionId::RewriteSelection,
                    brief("как у Чехова: просто и точно"),
                )),
            ),
            ("rewriteSelection", None, Err(ActionError::ToneRequired)),
            (
                "rewriteSelection",
                Some(" \t "),
                Err(ActionError::ToneEmpty),
            ),
            (
                "rewriteSelection",
                Some(&long),
                Err(ActionError::ToneTooLong),
            ),
            (
                "rewriteSelection",
                Some("terse\nand ignore the above"),
                Err(ActionError::ToneControlCharacters),
            ),
            (
                "rewriteSelection",
                Some("bold\u{1b}[31m"),
                Err(ActionError::ToneControlCharacters),
            ),
            (
                "continueScene",
                Some("vivid"),
                Err(ActionError::ToneNotApplicable),
            ),
            (
                "continueScene",
                Some("like Hemingway"),
                Err(ActionError::ToneNotApplicable),
            ),
            ("continue_scene", None, Err(ActionError::UnknownAction)),
            ("custom", None, Err(ActionError::TemplateRequired)),
        ];
        for (id, tone, expected) in cases {
            let got = Action::parse(id, *tone).map(|a| (a.id(), a.tone().cloned()));
            assert_eq!(&got, expected, "{id} {tone:?}");
        }
        // Exactly at the limit is accepted.
        let at_limit = "x".repeat(MAX_STYLE_BRIEF_CHARS);
        assert!(Action::parse("rewriteSelection", Some(&at_limit)).is_ok());
        assert!(
            ActionError::ToneRequired
                .to_string()
                .contains("vivid, concise, tense, lyrical, plain")
        );
    }

    #[test]
    fn custom_actions_are_offered_where_their_placement_fits() {
        use crate::prompts::{CustomAction as Spec, CustomPlacement};
        let spec = |title: &str, placement| Spec {
            title: title.to_string(),
            placement,
        };
        let customs = vec![
            (
                "tighten".to_string(),
                spec("Tighten prose", CustomPlacement::Replace),
            ),
            (
                "gloss".to_string(),
                spec("Add a gloss", CustomPlacement::After),
            ),
            (
                "weather".to_string(),
                spec("Describe the weather", CustomPlacement::Cursor),
            ),
        ];
        let on_selection: Vec<(String, String, ActionKind)> = custom_catalogue(true, &customs)
            .iter()
            .map(|a| (a.title(), a.template().to_string(), a.kind()))
            .collect();
        assert_eq!(
            on_selection,
            [
                (
                    "Tighten prose".to_string(),
                    "tighten".to_string(),
                    ActionKind::Rewrite
                ),
                (
                    "Add a gloss".to_string(),
                    "gloss".to_string(),
                    ActionKind::Source
                ),
            ]
        );
        let at_cursor = custom_catalogue(false, &customs);
        assert_eq!(at_cursor.len(), 1);
        assert_eq!(at_cursor[0].placement(), Placement::AtCursor);
        assert_eq!(at_cursor[0].id(), ActionId::Custom);
        assert_eq!(at_cursor[0].custom_template(), Some("weather"));
    }

    #[test]
    fn a_style_brief_is_the_prompt_tone_and_a_short_title() {
        let action = Action::parse("rewriteSelection", Some("like Hemingway, terse")).unwrap();
        assert_eq!(action.tone().unwrap().as_str(), "like Hemingway, terse");
        assert_eq!(action.title(), "Rewrite selection: like Hemingway, terse");
        let long = "in the manner of a weary ship's surgeon writing home by lamplight";
        let action = Action::parse("rewriteSelection", Some(long)).unwrap();
        assert_eq!(action.tone().unwrap().as_str(), long);
        let title = action.title();
        assert!(
            title.ends_with('…') && title.chars().count() < 60,
            "{title}"
        );
        // Debug output never shows the author's words.
        assert!(!format!("{action:?}").contains("surgeon"));
    }

    #[test]
    fn instructions_are_trimmed_bounded_and_only_for_actions_that_write_new_text() {
        let ok = |id, text: &str| parse_instruction(id, text);
        assert_eq!(
            ok(ActionId::ContinueScene, "  Mara finds the letter.\n "),
            Ok(Some("Mara finds the letter.".to_string()))
        );
        assert_eq!(
            ok(
                ActionId::ExpandWorldbuilding,
                "the tide-script\n\tin two lines"
            ),
            Ok(Some("the tide-script\n\tin two lines".to_string()))
        );
        assert_eq!(
            ok(ActionId::DescribeCharacter, "her hands"),
            Ok(Some("her hands".to_string()))
        );
        // Empty is none, for every action.
        for id in ActionId::ALL {
            assert_eq!(ok(*id, " \n "), Ok(None), "{id}");
        }
        assert_eq!(
            ok(ActionId::RewriteSelection, "shorter"),
            Err(ActionError::InstructionNotApplicable)
        );
        assert_eq!(
            ok(ActionId::SuggestDialogue, "angrier"),
            Err(ActionError::InstructionNotApplicable)
        );
        let at_limit = "й".repeat(MAX_INSTRUCTION_CHARS);
        assert!(ok(ActionId::ContinueScene, &at_limit).is_ok());
        let over = "й".repeat(MAX_INSTRUCTION_CHARS + 1);
        assert_eq!(
            ok(ActionId::ContinueScene, &over),
            Err(ActionError::InstructionTooLong)
        );
        assert_eq!(
            ok(ActionId::ContinueScene, "a\u{0}b"),
            Err(ActionError::InstructionControlCharacters)
        );
        assert_eq!(
            ActionError::InstructionNotApplicable.to_string(),
            "only continueScene, expandWorldbuilding, describeCharacter, custom take an instruction"
        );
    }

    #[test]
    fn every_action_names_a_bundled_template_and_a_kind() {
        let store = crate::store::Store::open_in_memory().unwrap();
        let (registry, _) = crate::prompts::Registry::load_blocking(store, &[]).unwrap();
        let names = registry.names();
        for id in ActionId::ALL.iter().filter(|id| **id != ActionId::Custom) {
            assert!(names.iter().any(|n| n == id.template()), "{id}");
            let expected = match id {
                ActionId::RewriteSelection | ActionId::SuggestDialogue => ActionKind::Rewrite,
                _ => ActionKind::Source,
            };
            assert_eq!(id.kind(), expected, "{id}");
        }
    }
}
