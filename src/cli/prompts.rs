//! `storyteller-lsp prompts list`: the prompt templates (bundled, and the `--project` workspace's
//! overrides) with their activation and statistics: uses, accepted, partial accepts, the rate,
//! and whether the rate (or the A/B difference) is meaningful yet.

use super::{Failure, Place, print_json, table};

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
