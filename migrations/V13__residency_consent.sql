-- Each project's answer to "Send to {provider} (outside the EU)?" (issue 15): asked once before a
-- failover from an EU-resident provider would send manuscript text outside the EU (euOnly off).
-- No row: not answered yet (text stays in the EU). Never any text or key.
CREATE TABLE residency_consent (
    project_id  INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
    answer      TEXT NOT NULL CHECK (answer IN ('allowed', 'keepEuOnly')),
    answered_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
