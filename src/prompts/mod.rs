//! Prompt templates: front-matter loader, registry in SQLite, rendering and A/B selection.
