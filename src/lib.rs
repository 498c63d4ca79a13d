//! StoryTeller LSP: AI help for fiction authors inside their editor.
//!
//! Layers (see ARCHITECTURE.md): `lsp` (protocol edge) → `assist` (what to ask) → `routing`
//! (which provider, when) → `providers` (vendor wire formats); beside them `credentials`, `store`,
//! `prompts`, `documents`. Only `lsp` knows LSP.

pub mod admin;
pub mod app;
pub mod args;
pub mod assist;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod demo;
pub mod documents;
pub mod failpoint;
pub mod lsp;
pub mod memory;
pub mod messages;
pub mod oauth;
pub mod prompts;
pub mod providers;
pub mod routing;
pub mod secret;
pub mod simulator;
pub mod store;
pub mod telemetry;
pub mod usage_log;
