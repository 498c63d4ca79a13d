//! How the long-running server's heap gives memory back.
//!
//! glibc's allocator raises its mmap threshold every time a large block is freed, up to 32 MB:
//! after the first `didOpen` of a 1 MB manuscript (its JSON message, the decoded text), later
//! blocks of that size come from the heap, where freed memory stays with the process. And each
//! thread that allocates (the blocking pool's SQLite and file work) may get an arena of its own.
//! A fixed threshold sends every large block (messages, whole texts) to its own mapping, returned
//! to the system when freed; two arenas are plenty for one runtime thread and a small pool.
//! Measured with 20 open 1 MB manuscripts: 1.5 MB less resident (benches/startup.rs).

/// Blocks of this size and larger get their own mapping.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
/// Heap arenas shared by all threads.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: libc::c_int = 2;

/// Applies the settings above; call once, before the runtime starts its threads. Elsewhere than
/// glibc it does nothing.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets parameters of glibc's allocator, takes plain integers and is
    // safe to call at any time; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}
