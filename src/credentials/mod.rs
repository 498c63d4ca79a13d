//! Where API keys live: the OS keychain, an encrypted file as announced fallback, and system keys
//! from the environment (DESIGN.md §6).
//!
//! Invariant: a key leaves this module only as an [`ApiKey`], whose formatting is masked.

pub mod mask;

pub use mask::{ApiKey, mask};
