//! Open documents: ropey text, incremental sync, and UTF-8/16/32 position encodings.
