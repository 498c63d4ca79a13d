//! Prompt template rows (`prompt_templates`): what must outlive a restart — usage and success
//! counts, and the author's activation choices. The text itself comes from the template files
//! at every start (see `crate::prompts`); this module never interprets it.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{StoreError, StoreResult, Timestamp, parse_timestamp};

/// A template as loaded from its file, to be written over the stored row.
#[derive(Debug, Clone, PartialEq)]
pub struct TemplateUpsert<'a> {
    pub name: &'a str,
    pub version: u32,
    pub template: &'a str,
    pub variables: &'a [String],
    /// The file's `active`; ignored once the author chose through `setActive`.
    pub active: bool,
    /// The file's `weight`; ignored once the author chose through `setActive`.
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TemplateRecord {
    pub name: String,
    pub version: u32,
    pub variables: Vec<String>,
    pub active: bool,
    pub weight: f64,
    /// Suggestions shown with this version.
    pub usage_count: u64,
    /// Suggestions accepted whole, and actions whose text the author kept (never more than
    /// `usage_count`).
    pub success_count: u64,
    /// Ghost suggestions accepted in part (word or line accept).
    pub partial_count: u64,
    /// Accepted shares summed: 1 per whole accept, the share taken per partial one.
    pub success_weight: f64,
    /// `success_weight / usage_count`, 0 when unused.
    pub success_rate: f64,
    /// The author set `active`/`weight` through `setActive`; the file's values no longer apply.
    pub chosen_by_user: bool,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "name, version, variables, active, weight, usage_count, success_count, \
     success_rate, chosen_by_user, created_at, partial_count, success_weight";

struct RawTemplate {
    name: String,
    version: i64,
    variables: String,
    active: bool,
    weight: f64,
    usage_count: i64,
    success_count: i64,
    success_rate: f64,
    chosen_by_user: bool,
    created_at: String,
    partial_count: i64,
    success_weight: f64,
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawTemplate> {
    Ok(RawTemplate {
        name: row.get(0)?,
        version: row.get(1)?,
        variables: row.get(2)?,
        active: row.get(3)?,
        weight: row.get(4)?,
        usage_count: row.get(5)?,
        success_count: row.get(6)?,
        success_rate: row.get(7)?,
        chosen_by_user: row.get(8)?,
        created_at: row.get(9)?,
        partial_count: row.get(10)?,
        success_weight: row.get(11)?,
    })
}

fn into_record(raw: RawTemplate) -> StoreResult<TemplateRecord> {
    let invalid = |column, detail: String| StoreError::InvalidData {
        table: "prompt_templates",
        column,
        detail,
    };
    // The schema's CHECKs keep these non-negative; a failed conversion means a foreign writer.
    let count = |column, n: i64| u64::try_from(n).map_err(|e| invalid(column, e.to_string()));
    Ok(TemplateRecord {
        name: raw.name,
        version: u32::try_from(raw.version).map_err(|e| invalid("version", e.to_string()))?,
        variables: serde_json::from_str(&raw.variables)
            .map_err(|e| invalid("variables", e.to_string()))?,
        active: raw.active,
        weight: raw.weight,
        usage_count: count("usage_count", raw.usage_count)?,
        success_count: count("success_count", raw.success_count)?,
        partial_count: count("partial_count", raw.partial_count)?,
        success_weight: raw.success_weight,
        success_rate: raw.success_rate,
        chosen_by_user: raw.chosen_by_user,
        created_at: parse_timestamp("prompt_templates", "created_at", &raw.created_at)?,
    })
}

fn check_weight(weight: f64) -> StoreResult<()> {
    if weight.is_finite() && weight >= 0.0 {
        Ok(())
    } else {
        Err(StoreError::InvalidValue {
            field: "weight",
            detail: format!("{weight} is not a number of 0 or more"),
        })
    }
}

/// Inserts the template or refreshes its text and variables, keeping its statistics (and the
/// author's activation choice, if any). Returns the stored row.
pub fn upsert(conn: &Connection, t: &TemplateUpsert<'_>) -> StoreResult<TemplateRecord> {
    check_weight(t.weight)?;
    let variables = serde_json::to_string(t.variables).map_err(|e| StoreError::InvalidValue {
        field: "variables",
        detail: e.to_string(),
    })?;
    let sql = format!(
        "INSERT INTO prompt_templates (name, version, template, variables, active, weight)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (name, version) DO UPDATE SET
             template  = excluded.template,
             variables = excluded.variables,
             active    = CASE WHEN chosen_by_user THEN active ELSE excluded.active END,
             weight    = CASE WHEN chosen_by_user THEN weight ELSE excluded.weight END
         RETURNING {COLUMNS}"
    );
    let raw = conn.prepare_cached(&sql)?.query_row(
        params![t.name, t.version, t.template, variables, t.active, t.weight],
        from_row,
    )?;
    into_record(raw)
}

/// Every stored template version, by name then version.
pub fn list(conn: &Connection) -> StoreResult<Vec<TemplateRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM prompt_templates ORDER BY name, version");
    let mut stmt = conn.prepare_cached(&sql)?;
    let raws = stmt
        .query_map([], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(into_record).collect()
}

pub fn get(conn: &Connection, name: &str, version: u32) -> StoreResult<Option<TemplateRecord>> {
    let sql = format!("SELECT {COLUMNS} FROM prompt_templates WHERE name = ?1 AND version = ?2");
    conn.prepare_cached(&sql)?
        .query_row(params![name, version], from_row)
        .optional()?
        .map(into_record)
        .transpose()
}

/// The author's choice for one version: active or not, with an A/B weight. It outlives
/// restarts (file front matter no longer overrides it).
pub fn set_activation(
    conn: &Connection,
    name: &str,
    version: u32,
    active: bool,
    weight: f64,
) -> StoreResult<()> {
    check_weight(weight)?;
    let changed = conn.execute(
        "UPDATE prompt_templates SET active = ?3, weight = ?4, chosen_by_user = 1
         WHERE name = ?1 AND version = ?2",
        params![name, version, active, weight],
    )?;
    if changed == 0 {
        return Err(unknown(name, version));
    }
    Ok(())
}

/// Counts one suggestion shown with this version.
pub fn record_usage(conn: &Connection, name: &str, version: u32) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE prompt_templates SET
                 usage_count  = usage_count + 1,
                 success_rate = success_weight / (usage_count + 1)
             WHERE name = ?1 AND version = ?2",
        )?
        .execute(params![name, version])?;
    if changed == 0 {
        return Err(unknown(name, version));
    }
    Ok(())
}

/// Counts one accepted suggestion. Returns `false` (and counts nothing) when every counted use
/// already succeeded: a success without a use would push the rate above 1.
pub fn record_success(conn: &Connection, name: &str, version: u32) -> StoreResult<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE prompt_templates SET
                 success_count  = success_count + 1,
                 success_weight = min(success_weight + 1.0, usage_count),
                 success_rate   = min(success_weight + 1.0, usage_count) / usage_count
             WHERE name = ?1 AND version = ?2 AND success_count < usage_count",
        )?
        .execute(params![name, version])?;
    if changed == 1 {
        return Ok(true);
    }
    match get(conn, name, version)? {
        Some(_) => Ok(false),
        None => Err(unknown(name, version)),
    }
}

/// Counts to add to one version at once (counts kept while the database was busy).
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CountDelta {
    /// Suggestions shown or actions applied.
    pub uses: u64,
    /// Accepted whole (or, for an action, kept).
    pub successes: u64,
    /// Accepted in part.
    pub partials: u64,
    /// The shares accepted: 1 per success, the share per partial.
    pub weight: f64,
}

/// Adds `delta` to this version. Successes never exceed uses, nor the summed shares: returns how
/// many of `delta.successes` were counted.
pub fn add_counts(
    conn: &Connection,
    name: &str,
    version: u32,
    delta: &CountDelta,
) -> StoreResult<u64> {
    let (usage, success, weight): (i64, i64, f64) = conn
        .prepare_cached(
            "SELECT usage_count, success_count, success_weight FROM prompt_templates \
             WHERE name = ?1 AND version = ?2",
        )?
        .query_row(params![name, version], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
        .ok_or_else(|| unknown(name, version))?;
    let as_count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let usage = usage.saturating_add(as_count(delta.uses));
    let counted = as_count(delta.successes)
        .min(usage.saturating_sub(success))
        .max(0);
    let success = success + counted;
    let added = if delta.weight.is_finite() {
        delta.weight.max(0.0)
    } else {
        0.0
    };
    let weight = (weight + added).min(usage as f64);
    let rate = if usage > 0 {
        (weight / usage as f64).clamp(0.0, 1.0)
    } else {
        0.0
    };
    conn.prepare_cached(
        "UPDATE prompt_templates SET usage_count = ?3, success_count = ?4, success_rate = ?5,
             partial_count = partial_count + ?6, success_weight = ?7
         WHERE name = ?1 AND version = ?2",
    )?
    .execute(params![
        name,
        version,
        usage,
        success,
        rate,
        as_count(delta.partials),
        weight
    ])?;
    Ok(u64::try_from(counted).unwrap_or(0))
}

fn unknown(name: &str, version: u32) -> StoreError {
    StoreError::UnknownTemplate {
        name: name.to_string(),
        version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn upsert_v1(conn: &Connection, text: &str, active: bool, weight: f64) -> TemplateRecord {
        let vars = vec!["before".to_string()];
        upsert(
            conn,
            &TemplateUpsert {
                name: "inline_continuation",
                version: 1,
                template: text,
                variables: &vars,
                active,
                weight,
            },
        )
        .unwrap()
    }

    #[test]
    fn upsert_keeps_statistics_and_refreshes_text() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                upsert_v1(conn, "old {{before}}", true, 1.0);
                record_usage(conn, "inline_continuation", 1)?;
                record_usage(conn, "inline_continuation", 1)?;
                assert!(record_success(conn, "inline_continuation", 1)?);
                let again = upsert_v1(conn, "new {{before}}", true, 2.0);
                assert_eq!(again.usage_count, 2);
                assert_eq!(again.success_count, 1);
                assert_eq!(again.success_rate, 0.5);
                assert_eq!(again.weight, 2.0);
                let text: String = conn.query_row(
                    "SELECT template FROM prompt_templates WHERE name = 'inline_continuation'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(text, "new {{before}}");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn an_authors_choice_outlives_the_files_front_matter() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                upsert_v1(conn, "t {{before}}", true, 1.0);
                set_activation(conn, "inline_continuation", 1, false, 0.25)?;
                let again = upsert_v1(conn, "t {{before}}", true, 1.0);
                assert!(!again.active);
                assert_eq!(again.weight, 0.25);
                assert!(again.chosen_by_user);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn success_never_exceeds_usage() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                upsert_v1(conn, "t {{before}}", true, 1.0);
                assert!(!record_success(conn, "inline_continuation", 1)?);
                record_usage(conn, "inline_continuation", 1)?;
                assert!(record_success(conn, "inline_continuation", 1)?);
                assert!(!record_success(conn, "inline_continuation", 1)?);
                let row = get(conn, "inline_continuation", 1)?.unwrap();
                assert_eq!((row.usage_count, row.success_count), (1, 1));
                assert_eq!(row.success_rate, 1.0);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn partial_accepts_add_their_share_to_the_rate() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                upsert_v1(conn, "t {{before}}", true, 1.0);
                let shown = CountDelta {
                    uses: 4,
                    ..CountDelta::default()
                };
                add_counts(conn, "inline_continuation", 1, &shown)?;
                let whole = CountDelta {
                    successes: 1,
                    weight: 1.0,
                    ..CountDelta::default()
                };
                assert_eq!(add_counts(conn, "inline_continuation", 1, &whole)?, 1);
                let part = CountDelta {
                    partials: 1,
                    weight: 0.25,
                    ..CountDelta::default()
                };
                add_counts(conn, "inline_continuation", 1, &part)?;
                let row = get(conn, "inline_continuation", 1)?.unwrap();
                assert_eq!((row.usage_count, row.success_count), (4, 1));
                assert_eq!(row.partial_count, 1);
                assert!((row.success_weight - 1.25).abs() < 1e-9);
                assert!((row.success_rate - 1.25 / 4.0).abs() < 1e-9);
                // A whole accept through the single-row path keeps the weight in step.
                assert!(record_success(conn, "inline_continuation", 1)?);
                let row = get(conn, "inline_continuation", 1)?.unwrap();
                assert!((row.success_rate - 2.25 / 4.0).abs() < 1e-9);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn unknown_versions_and_bad_weights_are_errors() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                assert!(matches!(
                    record_usage(conn, "nope", 1),
                    Err(StoreError::UnknownTemplate { .. })
                ));
                assert!(matches!(
                    record_success(conn, "nope", 1),
                    Err(StoreError::UnknownTemplate { .. })
                ));
                upsert_v1(conn, "t", true, 1.0);
                for bad in [-1.0, f64::NAN, f64::INFINITY] {
                    assert!(matches!(
                        set_activation(conn, "inline_continuation", 1, true, bad),
                        Err(StoreError::InvalidValue {
                            field: "weight",
                            ..
                        })
                    ));
                }
                Ok(())
            })
            .unwrap();
    }
}
