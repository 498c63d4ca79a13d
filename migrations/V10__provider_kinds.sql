-- One row per provider kind (issue 16 item 5), referenced by foreign key from every table that
-- names a kind, instead of four CHECK lists that each had to be rebuilt to add one. A new kind is
-- one INSERT here (a migration) plus the `ProviderKind` enum; a store test checks they agree.
--
-- This migration adds `openrouter` and rebuilds ai_providers, saved_authentications, request_log
-- and credential_journal without their CHECK lists (SQLite's 12-step table rebuild: ids, data,
-- indexes and triggers are kept). store::migrate runs migrations with foreign keys off and checks
-- them (PRAGMA foreign_key_check) before committing, as the procedure requires: dropping a parent
-- table with foreign keys on would set request_log.provider_id and ai_providers.session_id to NULL.
CREATE TABLE provider_kinds (
    name TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 32)
) WITHOUT ROWID;

INSERT INTO provider_kinds (name) VALUES
    ('openai'), ('claude'), ('gemini'), ('deepseek'), ('yandex'), ('scaleway'), ('openrouter'),
    ('custom');

-- saved_authentications ---------------------------------------------------------------------
CREATE TABLE new_saved_authentications (
    id            INTEGER PRIMARY KEY,
    provider_name TEXT NOT NULL REFERENCES provider_kinds (name) ON DELETE RESTRICT,
    auth_type     TEXT NOT NULL CHECK (auth_type IN ('api_key', 'oauth')),
    -- 3 to 50 characters, each one of A-Z a-z 0-9 _ - (GLOB is case-sensitive and byte-wise, so
    -- any other character, including non-ASCII, matches the negated class).
    name          TEXT NOT NULL
                  CHECK (length(name) BETWEEN 3 AND 50 AND name NOT GLOB '*[^A-Za-z0-9_-]*'),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at  TEXT,
    UNIQUE (provider_name, auth_type, name)
);
INSERT INTO new_saved_authentications (id, provider_name, auth_type, name, created_at, last_used_at)
SELECT id, provider_name, auth_type, name, created_at, last_used_at FROM saved_authentications;
DROP TABLE saved_authentications;
ALTER TABLE new_saved_authentications RENAME TO saved_authentications;

-- ai_providers ------------------------------------------------------------------------------
CREATE TABLE new_ai_providers (
    id            INTEGER PRIMARY KEY,
    -- RESTRICT: a project's providers own keychain entries, so they are removed one by one
    -- (key first) by the credentials layer, never swept away by a cascade.
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    provider_name TEXT NOT NULL REFERENCES provider_kinds (name) ON DELETE RESTRICT,
    display_name  TEXT NOT NULL CHECK (length(display_name) > 0),
    -- NULL: the catalogue's default endpoint, so a vendor's URL change reaches existing rows.
    api_endpoint  TEXT CHECK (api_endpoint IS NULL OR length(api_endpoint) > 0),
    model_name    TEXT NOT NULL CHECK (length(model_name) > 0),
    is_primary    INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at  TEXT,
    session_id    INTEGER REFERENCES saved_authentications (id) ON DELETE SET NULL,
    position      INTEGER NOT NULL DEFAULT 0,
    options       TEXT NOT NULL DEFAULT '{}'
                  CHECK (json_valid(options) AND json_type(options) = 'object'),
    -- A custom (OpenAI-compatible) provider has no default endpoint.
    CHECK (provider_name <> 'custom' OR api_endpoint IS NOT NULL),
    UNIQUE (project_id, provider_name)
);
INSERT INTO new_ai_providers (id, project_id, provider_name, display_name, api_endpoint,
                              model_name, is_primary, is_active, created_at, updated_at,
                              last_used_at, session_id, position, options)
SELECT id, project_id, provider_name, display_name, api_endpoint, model_name, is_primary,
       is_active, created_at, updated_at, last_used_at, session_id, position, options
FROM ai_providers;
DROP TABLE ai_providers;
ALTER TABLE new_ai_providers RENAME TO ai_providers;

CREATE INDEX ai_providers_project_primary ON ai_providers (project_id, is_primary);
CREATE INDEX ai_providers_project_position ON ai_providers (project_id, position);

-- One primary per project: marking a row primary un-primaries the others of its project.
CREATE TRIGGER ai_providers_one_primary_on_insert
AFTER INSERT ON ai_providers
WHEN NEW.is_primary = 1
BEGIN
    UPDATE ai_providers SET is_primary = 0
    WHERE project_id = NEW.project_id AND id <> NEW.id AND is_primary = 1;
END;

CREATE TRIGGER ai_providers_one_primary_on_update
AFTER UPDATE OF is_primary ON ai_providers
WHEN NEW.is_primary = 1
BEGIN
    UPDATE ai_providers SET is_primary = 0
    WHERE project_id = NEW.project_id AND id <> NEW.id AND is_primary = 1;
END;

-- The first provider of a project is its primary, so a configured project always has one.
CREATE TRIGGER ai_providers_first_is_primary
AFTER INSERT ON ai_providers
WHEN NEW.is_primary = 0
     AND NOT EXISTS (SELECT 1 FROM ai_providers
                     WHERE project_id = NEW.project_id AND id <> NEW.id AND is_primary = 1)
BEGIN
    UPDATE ai_providers SET is_primary = 1 WHERE id = NEW.id;
END;

-- request_log -------------------------------------------------------------------------------
CREATE TABLE new_request_log (
    id            INTEGER PRIMARY KEY,
    -- SET NULL keeps the statistics of a removed provider; provider_name still says what it was.
    provider_id   INTEGER REFERENCES ai_providers (id) ON DELETE SET NULL,
    provider_name TEXT NOT NULL REFERENCES provider_kinds (name) ON DELETE RESTRICT,
    action        TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 64),
    -- 'ok' or an error kind of the provider taxonomy (invalidKey, timeout, ...).
    outcome       TEXT NOT NULL CHECK (length(outcome) BETWEEN 1 AND 32),
    input_tokens  INTEGER CHECK (input_tokens IS NULL OR input_tokens >= 0),
    output_tokens INTEGER CHECK (output_tokens IS NULL OR output_tokens >= 0),
    latency_ms    INTEGER NOT NULL CHECK (latency_ms >= 0),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
INSERT INTO new_request_log (id, provider_id, provider_name, action, outcome, input_tokens,
                             output_tokens, latency_ms, created_at)
SELECT id, provider_id, provider_name, action, outcome, input_tokens, output_tokens, latency_ms,
       created_at
FROM request_log;
DROP TABLE request_log;
ALTER TABLE new_request_log RENAME TO request_log;

CREATE INDEX request_log_created ON request_log (created_at);
CREATE INDEX request_log_provider_created ON request_log (provider_id, created_at);

-- credential_journal ------------------------------------------------------------------------
CREATE TABLE new_credential_journal (
    id            INTEGER PRIMARY KEY,
    operation     TEXT NOT NULL
                  CHECK (operation IN ('add_provider', 'rotate_key', 'remove_provider',
                                       'add_session', 'remove_session')),
    -- The credential store account, e.g. project_3_openai (derived from the columns below;
    -- kept for people reading the table).
    account       TEXT NOT NULL CHECK (length(account) > 0),
    provider_name TEXT NOT NULL REFERENCES provider_kinds (name) ON DELETE RESTRICT,
    -- A project key: the project (not a foreign key: the record must outlive whatever it names).
    project_id    INTEGER,
    -- A named session's key: its auth type and name.
    auth_type     TEXT CHECK (auth_type IS NULL OR auth_type IN ('api_key', 'oauth')),
    session_name  TEXT,
    -- What to call the provider or session in a message once the row may be gone.
    display_name  TEXT NOT NULL CHECK (length(display_name) > 0),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((project_id IS NOT NULL AND auth_type IS NULL AND session_name IS NULL)
        OR (project_id IS NULL AND auth_type IS NOT NULL AND session_name IS NOT NULL))
);
INSERT INTO new_credential_journal (id, operation, account, provider_name, project_id, auth_type,
                                    session_name, display_name, created_at)
SELECT id, operation, account, provider_name, project_id, auth_type, session_name, display_name,
       created_at
FROM credential_journal;
DROP TABLE credential_journal;
ALTER TABLE new_credential_journal RENAME TO credential_journal;

-- Step 10 of the rebuild: the foreign keys must still hold. A violation fails this CHECK, which
-- rolls the whole migration back.
CREATE TEMP TABLE v10_foreign_keys_hold (violations INTEGER NOT NULL CHECK (violations = 0));
INSERT INTO v10_foreign_keys_hold SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE v10_foreign_keys_hold;
