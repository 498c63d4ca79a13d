//! The request log (`request_log`): one row per provider request — which provider, which action,
//! how it ended, tokens and latency — for statistics and `doctor`.
//!
//! It must never hold text: no prompt, no manuscript, no vendor message. The action is a short
//! identifier checked on the way in, the outcome an error kind.

use std::time::Duration;

use rusqlite::{Connection, Row, params};

use super::providers::ProviderId;
use super::{StoreError, StoreResult, Timestamp, parse_timestamp};
use crate::providers::{ErrorKind, ProviderKind};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Failed(ErrorKind),
    /// Written by a newer version with an error kind this one does not know.
    Unrecognised,
}

/// Every error kind, for reading outcomes back. The exhaustive match below fails to compile when
/// a kind is added, so this list cannot silently fall behind.
const ERROR_KINDS: [ErrorKind; 10] = [
    ErrorKind::InvalidKey,
    ErrorKind::QuotaExhausted,
    ErrorKind::RateLimited,
    ErrorKind::Unavailable,
    ErrorKind::Network,
    ErrorKind::Timeout,
    ErrorKind::ModelNotFound,
    ErrorKind::BadRequest,
    ErrorKind::Cancelled,
    ErrorKind::Protocol,
];

const fn _every_kind_is_listed(kind: ErrorKind) {
    match kind {
        ErrorKind::InvalidKey
        | ErrorKind::QuotaExhausted
        | ErrorKind::RateLimited
        | ErrorKind::Unavailable
        | ErrorKind::Network
        | ErrorKind::Timeout
        | ErrorKind::ModelNotFound
        | ErrorKind::BadRequest
        | ErrorKind::Cancelled
        | ErrorKind::Protocol => {}
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed(kind) => kind.as_str(),
            Outcome::Unrecognised => "unrecognised",
        }
    }

    fn parse(text: &str) -> Outcome {
        if text == "ok" {
            return Outcome::Ok;
        }
        ERROR_KINDS
            .into_iter()
            .find(|k| k.as_str() == text)
            .map_or(Outcome::Unrecognised, Outcome::Failed)
    }
}

/// An action identifier (`inline`, `continue_scene`, …): 1–64 characters of `A-Z a-z 0-9 _ . -`,
/// so that no sentence of a manuscript can end up in the log by mistake.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ActionName(String);

impl ActionName {
    pub fn new(name: impl Into<String>) -> StoreResult<ActionName> {
        let name = name.into();
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if valid {
            Ok(ActionName(name))
        } else {
            Err(StoreError::InvalidValue {
                field: "action",
                detail: "an action name is 1-64 characters of letters, digits, `_`, `.`, `-`"
                    .into(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One finished request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub provider_id: Option<ProviderId>,
    pub kind: ProviderKind,
    /// The model the request asked for (an identifier, checked like a stored model name).
    pub model: Option<String>,
    pub action: ActionName,
    pub outcome: Outcome,
    pub input_tokens: Option<u32>,
    pub output_tokens: Option<u32>,
    pub latency: Duration,
}

/// A logged request, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    pub record: RequestRecord,
    pub at: Timestamp,
}

/// Totals for one provider over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderStats {
    /// `None` for requests of providers removed since.
    pub provider_id: Option<ProviderId>,
    pub kind: ProviderKind,
    pub requests: u64,
    pub succeeded: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub mean_latency_ms: f64,
}

fn sql_time(t: Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Appends one request to the log.
pub fn record(conn: &Connection, r: &RequestRecord) -> StoreResult<()> {
    let latency_ms = i64::try_from(r.latency.as_millis()).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO request_log (provider_id, provider_name, model, action, outcome,
             input_tokens, output_tokens, latency_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.provider_id.map(|p| p.0),
        r.kind.as_str(),
        r.model.as_deref().filter(|m| model_is_identifier(m)),
        r.action.as_str(),
        r.outcome.as_str(),
        r.input_tokens,
        r.output_tokens,
        latency_ms,
    ])?;
    Ok(())
}

/// A model id as vendors spell them (`gpt-4o`, `qwen2.5:7b`, `yandexgpt-lite/latest`): anything
/// else (a sentence pasted into the wrong field) is logged as no model rather than as text.
fn model_is_identifier(model: &str) -> bool {
    (1..=200).contains(&model.len())
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | ':' | '/' | '@'))
}

/// Appends `records` in one transaction and moves each provider's `last_used_at` forward to
/// now (the writer batches, so "now" is within a batch interval of the request).
pub fn record_batch(conn: &mut Connection, records: &[RequestRecord]) -> StoreResult<()> {
    let tx = conn.transaction()?;
    for r in records {
        record(&tx, r)?;
    }
    let mut touched: Vec<i64> = records
        .iter()
        .filter_map(|r| r.provider_id.map(|p| p.0))
        .collect();
    touched.sort_unstable();
    touched.dedup();
    for id in touched {
        // A provider removed since the request is simply not there any more.
        tx.prepare_cached(
            "UPDATE ai_providers SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE id = ?1",
        )?
        .execute([id])?;
    }
    tx.commit()?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<LoggedRaw> {
    Ok(LoggedRaw {
        provider_id: row.get(0)?,
        kind: row.get(1)?,
        model: row.get(2)?,
        action: row.get(3)?,
        outcome: row.get(4)?,
        input_tokens: row.get(5)?,
        output_tokens: row.get(6)?,
        latency_ms: row.get(7)?,
        at: row.get(8)?,
    })
}

struct LoggedRaw {
    provider_id: Option<i64>,
    kind: String,
    model: Option<String>,
    action: String,
    outcome: String,
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    latency_ms: i64,
    at: String,
}

fn parse_kind(text: &str) -> StoreResult<ProviderKind> {
    text.parse().map_err(
        |e: crate::providers::catalog::UnknownKind| StoreError::InvalidData {
            table: "request_log",
            column: "provider_name",
            detail: e.0,
        },
    )
}

/// The latest `limit` requests, newest first.
pub fn recent(conn: &Connection, limit: u32) -> StoreResult<Vec<LoggedRequest>> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider_id, provider_name, model, action, outcome, input_tokens,
                output_tokens, latency_ms, created_at
         FROM request_log ORDER BY id DESC LIMIT ?1",
    )?;
    let raws = stmt
        .query_map([limit], from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter()
        .map(|raw| {
            Ok(LoggedRequest {
                record: RequestRecord {
                    provider_id: raw.provider_id.map(ProviderId),
                    kind: parse_kind(&raw.kind)?,
                    model: raw.model,
                    action: ActionName::new(raw.action)?,
                    outcome: Outcome::parse(&raw.outcome),
                    input_tokens: raw.input_tokens,
                    output_tokens: raw.output_tokens,
                    latency: Duration::from_millis(u64::try_from(raw.latency_ms).unwrap_or(0)),
                },
                at: parse_timestamp("request_log", "created_at", &raw.at)?,
            })
        })
        .collect()
}

/// Per-provider totals of the requests logged at or after `since`.
pub fn summary(conn: &Connection, since: Timestamp) -> StoreResult<Vec<ProviderStats>> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider_id, provider_name, count(*), sum(outcome = 'ok'),
                coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), avg(latency_ms)
         FROM request_log WHERE created_at >= ?1
         GROUP BY provider_id, provider_name
         ORDER BY provider_name, provider_id",
    )?;
    let rows = stmt
        .query_map([sql_time(since)], |row| {
            Ok((
                row.get::<_, Option<i64>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, f64>(6)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, kind, requests, ok, input, output, latency)| {
            let count = |n: i64| u64::try_from(n).unwrap_or(0);
            Ok(ProviderStats {
                provider_id: id.map(ProviderId),
                kind: parse_kind(&kind)?,
                requests: count(requests),
                succeeded: count(ok),
                input_tokens: count(input),
                output_tokens: count(output),
                mean_latency_ms: latency,
            })
        })
        .collect()
}

/// Statistics of one provider over a period, for `provider stats` and `providers.list`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyStats {
    /// `None` for requests of providers removed since.
    pub provider_id: Option<i64>,
    pub provider: ProviderKind,
    pub requests: u64,
    pub ok: u64,
    /// Failed requests by error kind (`timeout`, `rateLimited`, …), in name order.
    pub errors: std::collections::BTreeMap<String, u64>,
    /// Of the successful requests; `None` when there is none.
    pub median_latency_ms: Option<u64>,
    pub p95_latency_ms: Option<u64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The value at quantile `q` (0..=1) of sorted `values`, by the nearest-rank method.
pub fn quantile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Per-provider statistics of the requests logged at or after `since`: counts by outcome,
/// median and 95th percentile latency of the successful ones, tokens. Ordered by provider id
/// (removed providers last).
pub fn latency_stats(conn: &Connection, since: Timestamp) -> StoreResult<Vec<LatencyStats>> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider_id, provider_name, outcome, latency_ms,
                coalesce(input_tokens, 0), coalesce(output_tokens, 0)
         FROM request_log WHERE created_at >= ?1",
    )?;
    let rows = stmt
        .query_map([sql_time(since)], |row| {
            Ok((
                row.get::<_, Option<i64>>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    let mut groups: std::collections::BTreeMap<(bool, i64, String), (LatencyStats, Vec<u64>)> =
        std::collections::BTreeMap::new();
    for (id, kind, outcome, latency, input, output) in rows {
        let key = (id.is_none(), id.unwrap_or(0), kind.clone());
        let (stats, latencies) = match groups.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => e.insert((
                LatencyStats {
                    provider_id: id,
                    provider: parse_kind(&kind)?,
                    requests: 0,
                    ok: 0,
                    errors: std::collections::BTreeMap::new(),
                    median_latency_ms: None,
                    p95_latency_ms: None,
                    input_tokens: 0,
                    output_tokens: 0,
                },
                Vec::new(),
            )),
        };
        stats.requests += 1;
        stats.input_tokens += count(input);
        stats.output_tokens += count(output);
        if outcome == "ok" {
            stats.ok += 1;
            latencies.push(count(latency));
        } else {
            *stats.errors.entry(outcome).or_insert(0) += 1;
        }
    }
    Ok(groups
        .into_values()
        .map(|(mut stats, mut latencies)| {
            latencies.sort_unstable();
            stats.median_latency_ms = quantile(&latencies, 0.5);
            stats.p95_latency_ms = quantile(&latencies, 0.95);
            stats
        })
        .collect())
}

/// Keeps the log within `max_age` and `max_rows` (the newest rows stay); returns how many rows
/// went.
pub fn prune(
    conn: &Connection,
    now: Timestamp,
    max_age: Duration,
    max_rows: u64,
) -> StoreResult<u64> {
    let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
    let by_age = match now.checked_sub_signed(age) {
        Some(cutoff) => prune_before(conn, cutoff)?,
        None => 0,
    };
    let by_size = conn.execute(
        "DELETE FROM request_log WHERE id <= (
             SELECT id FROM request_log ORDER BY id DESC LIMIT 1 OFFSET ?1)",
        [i64::try_from(max_rows).unwrap_or(i64::MAX)],
    )?;
    Ok(by_age + by_size as u64)
}

/// Deletes the requests logged before `cutoff`; returns how many.
pub fn prune_before(conn: &Connection, cutoff: Timestamp) -> StoreResult<u64> {
    let deleted = conn.execute(
        "DELETE FROM request_log WHERE created_at < ?1",
        [sql_time(cutoff)],
    )?;
    Ok(deleted as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::projects;
    use crate::store::providers::{self, NewProvider};

    fn request(provider: Option<ProviderId>, outcome: Outcome, latency_ms: u64) -> RequestRecord {
        RequestRecord {
            provider_id: provider,
            kind: ProviderKind::Claude,
            model: Some("claude-sonnet-4-5".into()),
            action: ActionName::new("continue_scene").unwrap(),
            outcome,
            input_tokens: Some(120),
            output_tokens: Some(40),
            latency: Duration::from_millis(latency_ms),
        }
    }

    #[test]
    fn outcomes_round_trip_through_their_names() {
        for kind in ERROR_KINDS {
            assert_eq!(
                Outcome::parse(Outcome::Failed(kind).as_str()),
                Outcome::Failed(kind)
            );
        }
        assert_eq!(Outcome::parse("ok"), Outcome::Ok);
        assert_eq!(Outcome::parse("solarFlare"), Outcome::Unrecognised);
    }

    #[test]
    fn action_names_cannot_carry_prose() {
        assert!(ActionName::new("inline").is_ok());
        assert!(ActionName::new("rewrite_selection.vivid").is_ok());
        assert!(ActionName::new("She opened the door").is_err());
        assert!(ActionName::new("").is_err());
        assert!(ActionName::new("x".repeat(65)).is_err());
    }

    #[test]
    fn summary_totals_per_provider_and_survives_provider_removal() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let project = projects::default_project(conn)?.id;
                let claude =
                    providers::insert(conn, &NewProvider::new(project, ProviderKind::Claude))?.id;
                record(conn, &request(Some(claude), Outcome::Ok, 100))?;
                record(conn, &request(Some(claude), Outcome::Ok, 300))?;
                record(
                    conn,
                    &request(Some(claude), Outcome::Failed(ErrorKind::Timeout), 200),
                )?;
                let since = chrono::Utc::now() - chrono::Duration::hours(1);
                let stats = summary(conn, since)?;
                assert_eq!(stats.len(), 1);
                assert_eq!(stats[0].requests, 3);
                assert_eq!(stats[0].succeeded, 2);
                assert_eq!(stats[0].input_tokens, 360);
                assert_eq!(stats[0].mean_latency_ms, 200.0);

                providers::delete(conn, claude)?;
                let logged = recent(conn, 10)?;
                assert_eq!(logged.len(), 3);
                assert!(logged.iter().all(|r| r.record.provider_id.is_none()));
                assert_eq!(
                    logged[0].record.outcome,
                    Outcome::Failed(ErrorKind::Timeout)
                );

                let future = chrono::Utc::now() + chrono::Duration::hours(1);
                assert!(summary(conn, future)?.is_empty());
                assert_eq!(prune_before(conn, future)?, 3);
                assert!(recent(conn, 10)?.is_empty());
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values: Vec<u64> = (1..=20).collect();
        assert_eq!(quantile(&values, 0.5), Some(10));
        assert_eq!(quantile(&values, 0.95), Some(19));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn stats_count_outcomes_and_take_latency_of_successes_only() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let project = projects::default_project(conn)?.id;
                let claude =
                    providers::insert(conn, &NewProvider::new(project, ProviderKind::Claude))?.id;
                let mut batch = vec![
                    request(Some(claude), Outcome::Ok, 100),
                    request(Some(claude), Outcome::Ok, 300),
                    request(Some(claude), Outcome::Failed(ErrorKind::Timeout), 9000),
                    request(None, Outcome::Ok, 50),
                ];
                batch[1].model = Some("She said: hello there".into());
                record_batch(conn, &batch)?;
                let stats = latency_stats(conn, chrono::Utc::now() - chrono::Duration::hours(1))?;
                assert_eq!(stats.len(), 2);
                assert_eq!(stats[0].provider_id, Some(claude.0));
                assert_eq!(stats[0].requests, 3);
                assert_eq!(stats[0].ok, 2);
                assert_eq!(stats[0].errors.get("timeout"), Some(&1));
                assert_eq!(stats[0].median_latency_ms, Some(100));
                assert_eq!(stats[0].p95_latency_ms, Some(300));
                assert_eq!(stats[1].provider_id, None, "removed providers come last");
                assert!(providers::get(conn, claude)?.last_used_at.is_some());
                // A model that is not an identifier is not written as text.
                let models: Vec<Option<String>> = recent(conn, 10)?
                    .into_iter()
                    .map(|r| r.record.model)
                    .collect();
                assert!(models.contains(&None));
                assert!(!models.iter().flatten().any(|m| m.contains(' ')));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn prune_keeps_the_newest_rows_within_age_and_size() {
        let store = Store::open_in_memory().unwrap();
        store
            .blocking(|conn| {
                let batch: Vec<RequestRecord> =
                    (0..10).map(|n| request(None, Outcome::Ok, n)).collect();
                record_batch(conn, &batch)?;
                conn.execute(
                    "UPDATE request_log SET created_at = '2020-01-01T00:00:00.000Z' WHERE id <= 2",
                    [],
                )?;
                let now = chrono::Utc::now();
                let day = Duration::from_secs(24 * 60 * 60);
                assert_eq!(prune(conn, now, 90 * day, 5)?, 5, "2 by age, 3 by size");
                let left: Vec<u128> = recent(conn, 100)?
                    .into_iter()
                    .map(|r| r.record.latency.as_millis())
                    .collect();
                assert_eq!(left, vec![9, 8, 7, 6, 5]);
                assert_eq!(prune(conn, now, 90 * day, 5)?, 0);
                Ok(())
            })
            .unwrap();
    }
}
