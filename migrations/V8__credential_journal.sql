-- Intent journal of credential changes, for crash safety (src/admin/journal.rs).
--
-- The keychain cannot list its entries, so an orphan key (stored, but its row never committed)
-- could never be found afterwards. Before a provider or session operation stores or deletes a
-- key, it records here which account it is about to touch; the row change that makes the key
-- wanted or unwanted deletes the record in the same transaction. A record left behind by a crash
-- names an account whose key may not match the rows; the next start resolves it: a row that owns
-- the account keeps the key, no owner means the key is deleted.
--
-- Never a key here: only the account name and what owns it.
CREATE TABLE credential_journal (
    id            INTEGER PRIMARY KEY,
    operation     TEXT NOT NULL
                  CHECK (operation IN ('add_provider', 'rotate_key', 'remove_provider',
                                       'add_session', 'remove_session')),
    -- The credential store account, e.g. project_3_openai (derived from the columns below;
    -- kept for people reading the table).
    account       TEXT NOT NULL CHECK (length(account) > 0),
    provider_name TEXT NOT NULL
                  CHECK (provider_name IN ('openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'custom')),
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
