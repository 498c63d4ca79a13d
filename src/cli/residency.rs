//! `storyteller-lsp residency [allow|keep-eu-only|ask] [--project DIR]`: a project's answer to
//! "Send to {provider} (outside the EU)?", shown or given from a terminal — for editors that show
//! no buttons (Helix), and to change an answer later. A running server reads the answer again
//! the next time a failover stops at the EU border.

use serde::Serialize;

use super::{Failure, Place, print_json};
use crate::messages;
use crate::routing::EuConsent;

/// The answer to give, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Answer {
    /// Failover may send text to providers outside the EU.
    Allow,
    /// Text stays in the EU: the project routes as with `euOnly`.
    KeepEuOnly,
    /// Forget the answer: ask again when a failover would leave the EU.
    Ask,
}

impl Answer {
    fn consent(self) -> EuConsent {
        match self {
            Answer::Allow => EuConsent::Allowed,
            Answer::KeepEuOnly => EuConsent::KeepEuOnly,
            Answer::Ask => EuConsent::Unanswered,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    project: String,
    eu_consent: &'static str,
    eu_consent_text: &'static str,
}

pub async fn run(place: &Place, answer: Option<Answer>, json: bool) -> Result<(), Failure> {
    let (app, project) = place.open().await?;
    if let Some(answer) = answer {
        app.set_eu_consent(project, answer.consent())
            .await
            .map_err(|e| Failure::failed(e.to_string()))?;
    }
    let consent = app
        .eu_consent(project)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let name = place
        .project
        .as_ref()
        .map_or_else(|| "default".to_string(), |p| p.display().to_string());
    if json {
        return print_json(&Report {
            project: name,
            eu_consent: consent.as_str(),
            eu_consent_text: consent.text(),
        });
    }
    println!(
        "{}",
        messages::residency::consent_line(&name, consent.text())
    );
    Ok(())
}
