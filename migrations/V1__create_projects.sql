-- A project is a workspace root. Documents outside every root belong to the `default` project,
-- the one row whose root_path is NULL.
CREATE TABLE projects (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL CHECK (length(name) > 0),
    root_path  TEXT UNIQUE CHECK (root_path IS NULL OR length(root_path) > 0),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- At most one default project: every NULL root_path indexes to the same key.
CREATE UNIQUE INDEX projects_single_default ON projects ((root_path IS NULL)) WHERE root_path IS NULL;

INSERT INTO projects (name, root_path) VALUES ('default', NULL);
