//! PLACEHOLDER until the feature lands: every command of this group answers "not available".

use serde_json::{Map, Value};

use super::commands::{CommandContext, CommandError, StorytellerCommand};

pub(crate) async fn run(
    _cx: CommandContext,
    command: StorytellerCommand,
    _arguments: Map<String, Value>,
) -> Result<Value, CommandError> {
    Err(CommandError::NotAvailable(command))
}
