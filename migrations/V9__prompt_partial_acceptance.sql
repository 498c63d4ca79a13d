-- Acceptance with a share: ghost text accepted word by word counts as a partial accept with the
-- share of the suggestion taken (src/assist/acceptance.rs). success_weight is the sum of the shares
-- (a full accept weighs 1); success_rate becomes success_weight / usage_count.
ALTER TABLE prompt_templates ADD COLUMN partial_count INTEGER NOT NULL DEFAULT 0 CHECK (partial_count >= 0);
ALTER TABLE prompt_templates ADD COLUMN success_weight REAL NOT NULL DEFAULT 0.0 CHECK (success_weight >= 0.0);

UPDATE prompt_templates SET success_weight = success_count;
