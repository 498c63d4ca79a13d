-- A/B weights and an exact success count (success_rate alone loses precision over time).
ALTER TABLE prompt_templates ADD COLUMN weight REAL NOT NULL DEFAULT 1.0 CHECK (weight >= 0.0);
ALTER TABLE prompt_templates ADD COLUMN success_count INTEGER NOT NULL DEFAULT 0 CHECK (success_count >= 0);
-- 1 once the author chose `active`/`weight` through storyteller.prompts.setActive: from then on
-- the choice outlives restarts instead of being reset by the file's front matter.
ALTER TABLE prompt_templates ADD COLUMN chosen_by_user INTEGER NOT NULL DEFAULT 0 CHECK (chosen_by_user IN (0, 1));

UPDATE prompt_templates SET success_count = CAST(round(success_rate * usage_count) AS INTEGER);
