-- The configured AI providers of each project (DESIGN.md §4). Keys never live here: they are in
-- the OS keychain (or the encrypted fallback file), found by project id and provider name.
CREATE TABLE ai_providers (
    id            INTEGER PRIMARY KEY,
    -- RESTRICT: a project's providers own keychain entries, so they are removed one by one
    -- (key first) by the credentials layer, never swept away by a cascade.
    project_id    INTEGER NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    provider_name TEXT NOT NULL
                  CHECK (provider_name IN ('openai', 'claude', 'gemini', 'deepseek', 'yandex', 'scaleway', 'custom')),
    display_name  TEXT NOT NULL CHECK (length(display_name) > 0),
    -- NULL: the catalogue's default endpoint, so a vendor's URL change reaches existing rows.
    api_endpoint  TEXT CHECK (api_endpoint IS NULL OR length(api_endpoint) > 0),
    model_name    TEXT NOT NULL CHECK (length(model_name) > 0),
    is_primary    INTEGER NOT NULL DEFAULT 0 CHECK (is_primary IN (0, 1)),
    is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_used_at  TEXT,
    -- A custom (OpenAI-compatible) provider has no default endpoint.
    CHECK (provider_name <> 'custom' OR api_endpoint IS NOT NULL),
    UNIQUE (project_id, provider_name)
);

CREATE INDEX ai_providers_project_primary ON ai_providers (project_id, is_primary);

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
-- (Removing the primary leaves none on purpose: the editor asks the author which one is next.)
CREATE TRIGGER ai_providers_first_is_primary
AFTER INSERT ON ai_providers
WHEN NEW.is_primary = 0
     AND NOT EXISTS (SELECT 1 FROM ai_providers
                     WHERE project_id = NEW.project_id AND id <> NEW.id AND is_primary = 1)
BEGIN
    UPDATE ai_providers SET is_primary = 1 WHERE id = NEW.id;
END;
