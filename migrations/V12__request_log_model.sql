-- The request log gains the model a request went to (statistics per model; never text). Its
-- provider_name keeps referring to provider_kinds (V10), so a kind added later is one row there.
-- The column goes before the others for readers of the table, hence the copy (V10's rebuild
-- procedure: store::migrate runs this with foreign keys off and the check below rolls back).
CREATE TABLE request_log_v12 (
    id            INTEGER PRIMARY KEY,
    provider_id   INTEGER REFERENCES ai_providers (id) ON DELETE SET NULL,
    provider_name TEXT NOT NULL REFERENCES provider_kinds (name) ON DELETE RESTRICT,
    model         TEXT CHECK (model IS NULL OR length(model) BETWEEN 1 AND 200),
    action        TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    outcome       TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 32),
    input_tokens  INTEGER CHECK (input_tokens IS NULL OR input_tokens >= 0),
    output_tokens INTEGER CHECK (output_tokens IS NULL OR output_tokens >= 0),
    latency_ms    INTEGER NOT NULL CHECK (latency_ms >= 0),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

INSERT INTO request_log_v12 (id, provider_id, provider_name, model, action, outcome,
                             input_tokens, output_tokens, latency_ms, created_at)
SELECT id, provider_id, provider_name, NULL, action, outcome,
       input_tokens, output_tokens, latency_ms, created_at
FROM request_log;

DROP TABLE request_log;
ALTER TABLE request_log_v12 RENAME TO request_log;

CREATE INDEX request_log_created ON request_log (created_at);
CREATE INDEX request_log_provider_created ON request_log (provider_id, created_at);

CREATE TEMP TABLE v12_foreign_keys_hold (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO v12_foreign_keys_hold SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE v12_foreign_keys_hold;
