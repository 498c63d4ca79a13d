//! One file per request or notification whose body lived in the dispatcher, as ruff_server lays
//! them out. Each takes the session (and the client where it talks to the editor), never the
//! dispatcher: `server::Backend` forwards to these and to the handlers that are their own
//! concept (`actions`, `commands`, `inline`, `inline_protocol`, `settings`, `story_notes`,
//! `notify`).

pub(crate) mod did_change_workspace_folders;
pub(crate) mod did_save;
pub mod document_state;
pub(crate) mod initialize;
pub(crate) mod initialized;
pub(crate) mod shutdown;
