-- One row per provider request, for statistics: which provider, which action, how it ended,
-- tokens and latency. Never prompt or manuscript text, never a key.
CREATE TABLE request_log (
    id            INTEGER PRIMARY KEY,
    -- SET NULL keeps the statistics of a removed provider; provider_name still says what it was.
    provider_id   INTEGER REFERENCES ai_providers (id) ON DELETE SET NULL,
    provider_name TEXT NOT NULL
                  CHECK (provider_name IN ('openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'custom')),
    action        TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    -- 'ok' or an error kind of the provider taxonomy (invalidKey, timeout, ...).
    outcome       TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 32),
    input_tokens  INTEGER CHECK (input_tokens IS NULL OR input_tokens >= 0),
    output_tokens INTEGER CHECK (output_tokens IS NULL OR output_tokens >= 0),
    latency_ms    INTEGER NOT NULL CHECK (latency_ms >= 0),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE INDEX request_log_created ON request_log (created_at);
CREATE INDEX request_log_provider_created ON request_log (provider_id, created_at);
