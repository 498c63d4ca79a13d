-- Failover order (primary first, then by position) and per-kind options (Yandex folderId,
-- custom euResident, OpenAI organization/project) as a JSON object.
ALTER TABLE ai_providers ADD COLUMN position INTEGER NOT NULL DEFAULT 0;
ALTER TABLE ai_providers ADD COLUMN options TEXT NOT NULL DEFAULT '{}'
    CHECK (json_valid(options) AND json_type(options) = 'object');

-- Existing rows keep the order they were added in.
UPDATE ai_providers
SET position = (SELECT count(*) FROM ai_providers AS earlier
                WHERE earlier.project_id = ai_providers.project_id AND earlier.id < ai_providers.id);

CREATE INDEX ai_providers_project_position ON ai_providers (project_id, position);
