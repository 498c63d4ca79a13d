//! Debug-build failpoints for the crash-safety tests: with `STORYTELLER_FAILPOINT=add:after_key_stored`
//! the process stops at that step of `add` — it says so on stderr and waits there to be killed
//! (SIGKILL from the test), so the test can prove the next start repairs what it left.
//!
//! Points: provider and session changes (`add:…`, `update:…`, `remove:…`, `session_add:…`,
//! `session_remove:…`, see `admin`), the schema migration (`migrate:after_first_migration`,
//! `migrate:before_commit`, see `store`) and prompt loading (`prompts:before_commit`, every template
//! written, nothing committed).
//!
//! Release builds compile every failpoint to nothing: the variable is never read.

/// The environment variable naming the failpoint to stop at.
pub const VARIABLE: &str = "STORYTELLER_FAILPOINT";

/// What the process prints (on stderr) when it reaches the named failpoint.
pub const REACHED: &str = "storyteller failpoint reached:";

/// Stops here when `STORYTELLER_FAILPOINT` names this point (debug builds only).
#[cfg(debug_assertions)]
pub fn reached(name: &str) {
    if std::env::var(VARIABLE).as_deref() != Ok(name) {
        return;
    }
    eprintln!("{REACHED} {name}");
    // Wait to be killed; should the test forget us, end like a crash rather than go on.
    std::thread::sleep(std::time::Duration::from_secs(60));
    std::process::abort();
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn reached(_name: &str) {}

/// Whether `STORYTELLER_FAILPOINT` names a point starting with `prefix` (debug builds only), for
/// failpoints that need set-up to be watched for (the migration's SQLite trace).
#[cfg(debug_assertions)]
pub fn armed(prefix: &str) -> bool {
    std::env::var(VARIABLE).is_ok_and(|name| name.starts_with(prefix))
}

#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn armed(_prefix: &str) -> bool {
    false
}
