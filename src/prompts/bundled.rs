//! The templates compiled into the binary (`prompts/*.md`). A unit test checks that this list
//! and the directory agree, so a new file cannot be forgotten.

/// (file name, contents).
pub(crate) const FILES: &[(&str, &str)] = &[
    (
        "inline_continuation.md",
        include_str!("../../prompts/inline_continuation.md"),
    ),
    (
        "inline_continuation_terse.md",
        include_str!("../../prompts/inline_continuation_terse.md"),
    ),
    (
        "continue_scene.md",
        include_str!("../../prompts/continue_scene.md"),
    ),
    (
        "rewrite_selection.md",
        include_str!("../../prompts/rewrite_selection.md"),
    ),
    (
        "suggest_dialogue.md",
        include_str!("../../prompts/suggest_dialogue.md"),
    ),
    (
        "describe_character.md",
        include_str!("../../prompts/describe_character.md"),
    ),
    (
        "expand_worldbuilding.md",
        include_str!("../../prompts/expand_worldbuilding.md"),
    ),
];
