-- Prompt templates as loaded from the bundled and workspace files (src/prompts/). The files are
-- the source of the text; this table keeps what must survive restarts: usage and success.
CREATE TABLE prompt_templates (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL CHECK (length(name) > 0),
    version      INTEGER NOT NULL CHECK (version >= 1),
    template     TEXT NOT NULL,
    variables    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(variables) AND json_type(variables) = 'array'),
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    usage_count  INTEGER NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    success_rate REAL NOT NULL DEFAULT 0.0 CHECK (success_rate >= 0.0 AND success_rate <= 1.0),
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (name, version)
);
