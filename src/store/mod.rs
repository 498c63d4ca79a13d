//! SQLite state: opening, migrations (`migrations/`), and one repository module per table group.
