//! The prompt templates as the editor's commands see them: listing them with their statistics,
//! choosing the active version, counting feedback, and the workspace's custom actions. The `lsp`
//! layer calls these, never the registry itself.

use std::path::Path;

use crate::app::App;
use crate::prompts::{CustomAction, CustomPlacement, PromptError, TemplateSummary};

use super::actions::{self, Action};
use super::{AssistError, Assistant};

/// Every template with its versions and statistics.
pub async fn list(app: &App) -> Result<Vec<TemplateSummary>, PromptError> {
    app.registry().list().await
}

/// Makes `version` of `name` active (alone, or in the A/B pool with `weight`); returns the
/// versions of `name` afterwards.
pub async fn set_active(
    app: &App,
    name: &str,
    version: u32,
    weight: Option<f64>,
) -> Result<Vec<TemplateSummary>, PromptError> {
    app.registry().set_active(name, version, weight).await?;
    Ok(list(app)
        .await?
        .into_iter()
        .filter(|t| t.name == name)
        .collect())
}

/// The argument a [`set_active`] refusal is about (`name`, `version`, `weight`); `None` when it
/// is no fault of the arguments.
pub fn refused_field(error: &PromptError) -> Option<&'static str> {
    match error {
        PromptError::UnknownTemplate(_) => Some("name"),
        PromptError::UnknownVersion { .. } => Some("version"),
        PromptError::InvalidWeight(_) => Some("weight"),
        _ => None,
    }
}

/// The custom action `name` stands for until the workspace's prompts are at hand.
pub fn provisional_custom(name: &str) -> Action {
    let provisional = CustomAction {
        title: name.to_string(),
        placement: CustomPlacement::Cursor,
    };
    Action::custom(name, &provisional)
}

/// The custom action `name` of the workspace at `root`, if it has one.
pub fn custom_action(app: &App, root: &Path, name: &str) -> Option<Action> {
    app.registry()
        .custom_action(root, name)
        .map(|spec| Action::custom(name, &spec))
}

/// The custom actions of the workspace at `root` that fit a selection or a cursor.
pub fn custom_actions(app: &App, root: &Path, has_selection: bool) -> Vec<Action> {
    actions::custom_catalogue(has_selection, &app.registry().custom_actions(root))
}

impl Assistant {
    /// Counts a shown inline suggestion as accepted (`storyteller.feedback`): `Some(())` when
    /// the id was known (and not counted yet).
    pub async fn feedback(
        &self,
        app: &App,
        suggestion_id: &str,
        accepted: bool,
    ) -> Result<Option<()>, AssistError> {
        Ok(self
            .accept(app.registry(), suggestion_id, accepted)
            .await?
            .map(|_| ()))
    }

    /// Judges the applied actions and shown suggestions that are due (after an edit, a save or
    /// a close), counting the successes in the background.
    pub fn judge_due(&self, app: &App, due: super::acceptance::Due, text: ropey::Rope) {
        self.count_acceptance(app.registry(), due, text);
    }
}
