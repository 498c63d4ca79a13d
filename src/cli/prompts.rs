//! `storyteller-lsp prompts list`: the prompt templates (bundled, and the `--project` workspace's
//! overrides) with their activation and statistics: uses, accepted, partial accepts, the rate,
//! and whether the rate (or the A/B difference) is meaningful yet.

use super::{Exit, Failure, Place, print_json, table};
use crate::messages;
use crate::prompts::PromptError;

pub async fn list(place: &Place, json: bool) -> Result<(), Failure> {
    let (app, _) = place.open().await?;
    let templates = app
        .registry()
        .list()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    if json {
        return print_json(&templates);
    }
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                t.name.clone(),
                t.version.to_string(),
                if t.active { "yes" } else { "no" }.to_string(),
                format!("{}", t.weight),
                t.usage_count.to_string(),
                t.success_count.to_string(),
                t.partial_count.to_string(),
                if t.usage_count == 0 {
                    "-".to_string()
                } else {
                    format!("{:.0}%", t.success_rate * 100.0)
                },
                if t.meaningful { "yes" } else { "not yet" }.to_string(),
                t.source.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "NAME",
                "VERSION",
                "ACTIVE",
                "WEIGHT",
                "USES",
                "ACCEPTED",
                "PARTIAL",
                "RATE",
                "MEANINGFUL",
                "SOURCE"
            ],
            &rows
        )
    );
    Ok(())
}

/// `storyteller-lsp prompts set-active NAME VERSION [--weight W]`: the same choice as the editor's
/// `storyteller.prompts.setActive` (through [`crate::prompts::Registry::set_active`]), then
/// the versions of `NAME` afterwards. Exit 3 for an unknown template or version, 2 for a weight
/// that is not a number of 0 or more.
pub async fn set_active(
    place: &Place,
    name: &str,
    version: u32,
    weight: Option<f64>,
    json: bool,
) -> Result<(), Failure> {
    let (app, _) = place.open().await?;
    app.registry()
        .set_active(name, version, weight)
        .await
        .map_err(|e| match e {
            PromptError::UnknownTemplate(_) | PromptError::UnknownVersion { .. } => Failure {
                exit: Exit::NotFound,
                message: e.to_string(),
            },
            PromptError::InvalidWeight(_) => Failure::usage(e.to_string()),
            other => Failure::failed(other.to_string()),
        })?;
    let versions: Vec<_> = app
        .registry()
        .list()
        .await
        .map_err(|e| Failure::failed(e.to_string()))?
        .into_iter()
        .filter(|t| t.name == name)
        .collect();
    if json {
        return print_json(&versions);
    }
    for t in &versions {
        println!(
            "{}",
            messages::prompt_version_line(&t.name, t.version, t.active, t.weight)
        );
    }
    Ok(())
}
