//! Debug-build failpoints for the crash-safety tests: with `STORYTELLER_FAILPOINT=add:after_key_stored`
//! the process stops at that step of `add` — it says so on stderr and waits there to be killed
//! (SIGKILL from the test), so the test can prove the next start repairs what it left.
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
