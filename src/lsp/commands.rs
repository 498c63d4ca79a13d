//! `workspace/executeCommand`: the command names of DESIGN.md §3 (one list, advertised and
//! dispatched from [`StorytellerCommand::ALL`]), the argument contract (one JSON object; errors
//! are `InvalidParams` naming the field) and the seam the features fill ([`CommandRunner`]).

use async_trait::async_trait;
use serde_json::{Map, Value};
use tower_lsp::jsonrpc::{self, Error, ErrorCode};
use tower_lsp::lsp_types::ExecuteCommandParams;

use super::session::ServerState;
use crate::messages;
use std::sync::Arc;
use tower_lsp::Client;

/// JSON-RPC code for "the request was valid but failed" (LSP `RequestFailed`).
const REQUEST_FAILED: i64 = -32803;

macro_rules! commands {
    ($($variant:ident => $name:literal,)+) => {
        /// Every command the server executes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum StorytellerCommand {
            $($variant,)+
        }

        impl StorytellerCommand {
            pub const ALL: &[StorytellerCommand] = &[$(StorytellerCommand::$variant,)+];

            pub const fn name(self) -> &'static str {
                match self {
                    $(StorytellerCommand::$variant => $name,)+
                }
            }
        }
    };
}

commands! {
    ProvidersList => "storyteller.providers.list",
    ProvidersCatalog => "storyteller.providers.catalog",
    ProvidersTest => "storyteller.providers.test",
    ProvidersAdd => "storyteller.providers.add",
    ProvidersUpdate => "storyteller.providers.update",
    ProvidersRemove => "storyteller.providers.remove",
    ProvidersSetPrimary => "storyteller.providers.setPrimary",
    ProvidersModels => "storyteller.providers.models",
    SessionsList => "storyteller.sessions.list",
    SessionsAdd => "storyteller.sessions.add",
    SessionsRemove => "storyteller.sessions.remove",
    ProvidersSignIn => "storyteller.providers.signIn",
    ProvidersSignInCode => "storyteller.providers.signInCode",
    Status => "storyteller.status",
    Generate => "storyteller.generate",
    PromptsList => "storyteller.prompts.list",
    PromptsSetActive => "storyteller.prompts.setActive",
    NotesList => "storyteller.notes.list",
    Feedback => "storyteller.feedback",
}

impl StorytellerCommand {
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }
}

/// Why a command did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    /// An argument is missing, of the wrong type, or names something unknown.
    #[error("{field}: {reason}")]
    InvalidArgument { field: String, reason: String },
    /// The command is known but this build does not run it yet.
    #[error("{} is not available yet", .0.name())]
    NotAvailable(StorytellerCommand),
    /// The command ran and failed; `message` is for the author, `kind` for the editor's logic
    /// (e.g. a provider error kind).
    #[error("{message}")]
    Failed {
        message: String,
        kind: Option<String>,
    },
}

impl From<crate::args::ArgsError> for CommandError {
    fn from(e: crate::args::ArgsError) -> CommandError {
        CommandError::InvalidArgument {
            field: e.field,
            reason: e.reason,
        }
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        match e {
            CommandError::InvalidArgument { .. } => Error::invalid_params(e.to_string()),
            CommandError::NotAvailable(command) => Error {
                code: ErrorCode::ServerError(REQUEST_FAILED),
                message: messages::command_unavailable(command.name()).into(),
                data: None,
            },
            CommandError::Failed { message, kind } => Error {
                code: ErrorCode::ServerError(REQUEST_FAILED),
                message: message.into(),
                data: kind.map(|kind| serde_json::json!({ "kind": kind })),
            },
        }
    }
}

/// What a running command may use: the client (messages, requests, progress, edits) and the
/// session state (documents, settings, the application services).
#[derive(Clone)]
pub struct CommandContext {
    pub client: Client,
    pub state: Arc<ServerState>,
}

/// Runs commands. [`StorytellerCommands`] is the server's; tests may inject others.
#[async_trait]
pub trait CommandRunner: Send + Sync {
    async fn run(
        &self,
        cx: CommandContext,
        command: StorytellerCommand,
        arguments: Map<String, Value>,
    ) -> Result<Value, CommandError>;
}

/// A runner that runs nothing (tests of the protocol edge).
pub struct NoCommands;

#[async_trait]
impl CommandRunner for NoCommands {
    async fn run(
        &self,
        _: CommandContext,
        command: StorytellerCommand,
        _: Map<String, Value>,
    ) -> Result<Value, CommandError> {
        Err(CommandError::NotAvailable(command))
    }
}

/// The server's commands: provider and session management in `provider_commands`, the writing
/// features (status, generate, prompts, feedback, notes) in `assist_commands`.
pub struct StorytellerCommands;

#[async_trait]
impl CommandRunner for StorytellerCommands {
    async fn run(
        &self,
        cx: CommandContext,
        command: StorytellerCommand,
        arguments: Map<String, Value>,
    ) -> Result<Value, CommandError> {
        use StorytellerCommand::*;
        match command {
            ProvidersList | ProvidersCatalog | ProvidersTest | ProvidersAdd | ProvidersUpdate
            | ProvidersRemove | ProvidersSetPrimary | ProvidersModels | SessionsList
            | SessionsAdd | SessionsRemove => {
                super::provider_commands::run(cx, command, arguments).await
            }
            Status | Generate | PromptsList | PromptsSetActive | Feedback | NotesList => {
                super::assist_commands::run(cx, command, arguments).await
            }
            ProvidersSignIn | ProvidersSignInCode => {
                super::sign_in::run(cx, command, arguments).await
            }
        }
    }
}

/// Decodes the command and its one argument object. Absent or empty `arguments` mean `{}`.
pub fn parse(
    params: ExecuteCommandParams,
) -> Result<(StorytellerCommand, Map<String, Value>), CommandError> {
    let command = StorytellerCommand::from_name(&params.command).ok_or_else(|| {
        CommandError::InvalidArgument {
            field: "command".into(),
            reason: format!("unknown command {:?}", params.command),
        }
    })?;
    let mut arguments = params.arguments.into_iter();
    let object = match (arguments.next(), arguments.next()) {
        (None, _) => Map::new(),
        (Some(Value::Object(object)), None) => object,
        (Some(Value::Object(_)), Some(_)) => {
            return Err(CommandError::InvalidArgument {
                field: "arguments".into(),
                reason: "expected exactly one object, got more".into(),
            });
        }
        (Some(_), _) => {
            return Err(CommandError::InvalidArgument {
                field: "arguments".into(),
                reason: "expected one JSON object".into(),
            });
        }
    };
    Ok((command, object))
}

pub(crate) async fn execute(
    client: &Client,
    state: &Arc<ServerState>,
    params: ExecuteCommandParams,
) -> jsonrpc::Result<Value> {
    let (command, arguments) = parse(params)?;
    let cx = CommandContext {
        client: client.clone(),
        state: state.clone(),
    };
    Ok(state.features.commands.run(cx, command, arguments).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(command: &str, arguments: Vec<Value>) -> ExecuteCommandParams {
        ExecuteCommandParams {
            command: command.into(),
            arguments,
            work_done_progress_params: Default::default(),
        }
    }

    #[test]
    fn every_command_name_is_unique_and_round_trips() {
        for command in StorytellerCommand::ALL {
            assert_eq!(
                StorytellerCommand::from_name(command.name()),
                Some(*command)
            );
            assert!(command.name().starts_with("storyteller."));
        }
        let names: std::collections::HashSet<_> =
            StorytellerCommand::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), StorytellerCommand::ALL.len());
        assert_eq!(StorytellerCommand::ALL.len(), 19);
    }

    #[test]
    fn arguments_must_be_one_object() {
        let cases: Vec<(ExecuteCommandParams, Result<usize, &str>)> = vec![
            (params("storyteller.status", vec![]), Ok(0)),
            (params("storyteller.status", vec![json!({"a": 1})]), Ok(1)),
            (params("storyteller.unknown", vec![]), Err("command")),
            (
                params("storyteller.status", vec![json!([1])]),
                Err("arguments"),
            ),
            (
                params("storyteller.status", vec![json!("x")]),
                Err("arguments"),
            ),
            (
                params("storyteller.status", vec![json!({}), json!({})]),
                Err("arguments"),
            ),
        ];
        for (input, expected) in cases {
            let label = format!("{input:?}");
            match (parse(input), expected) {
                (Ok((_, args)), Ok(len)) => assert_eq!(args.len(), len, "{label}"),
                (Err(CommandError::InvalidArgument { field, .. }), Err(name)) => {
                    assert_eq!(field, name, "{label}")
                }
                (got, want) => panic!("{label}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn errors_map_to_json_rpc_codes() {
        let invalid: Error = CommandError::InvalidArgument {
            field: "id".into(),
            reason: "expected a number".into(),
        }
        .into();
        assert_eq!(invalid.code, ErrorCode::InvalidParams);
        assert!(invalid.message.starts_with("id: "));
        let failed: Error = CommandError::Failed {
            message: "nope".into(),
            kind: Some("invalidKey".into()),
        }
        .into();
        assert_eq!(failed.code, ErrorCode::ServerError(REQUEST_FAILED));
        assert_eq!(failed.data, Some(json!({"kind": "invalidKey"})));
    }
}
