-- Named auth sessions (DESIGN.md §6): several credentials per (provider, auth_type), each with a
-- name. The secret itself lives in the keychain under `session_{provider}_{auth_type}_{name}`.
CREATE TABLE saved_authentications (
    id            INTEGER PRIMARY KEY,
    provider_name TEXT NOT NULL
                  CHECK (provider_name IN ('openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'custom')),
    auth_type     TEXT NOT NULL CHECK (auth_type IN ('api_key', 'oauth')),
    -- 3 to 50 characters, each one of A-Z a-z 0-9 _ - (GLOB is case-sensitive and byte-wise, so
    -- any other character, including non-ASCII, matches the negated class).
    name          TEXT NOT NULL
                  CHECK (length(name) BETWEEN 3 AND 50 AND name NOT GLOB '*[^A-Za-z0-9_-]*'),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at  TEXT,
    UNIQUE (provider_name, auth_type, name)
);

-- A provider may use a named session instead of its own project key.
ALTER TABLE ai_providers ADD COLUMN session_id INTEGER
    REFERENCES saved_authentications (id) ON DELETE SET NULL;

-- Backfill: every provider configured before sessions existed gets `default_{provider}_api_key`
-- and points at it. Copying the key into the session's keychain account is the credentials
-- layer's job, not SQL's.
INSERT INTO saved_authentications (provider_name, auth_type, name)
SELECT DISTINCT provider_name, 'api_key', 'default_' || provider_name || '_api_key'
FROM ai_providers;

UPDATE ai_providers
SET session_id = (SELECT s.id FROM saved_authentications AS s
                  WHERE s.provider_name = ai_providers.provider_name
                    AND s.auth_type = 'api_key'
                    AND s.name = 'default_' || ai_providers.provider_name || '_api_key');
