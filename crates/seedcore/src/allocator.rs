//! What the process asks of its allocators: jemalloc (the binary's global allocator on Linux
//! with glibc, feature `jemalloc`) and glibc's malloc (the C code's, and Rust's elsewhere).
//!
//! Startup allocates and frees more than serving keeps: migrations, the OpenAPI document and
//! the router are built once, and what is dropped afterwards stays resident in the free
//! pages of the allocator until it decays (jemalloc, after about a second) or for good
//! (glibc gives back memory only at the very top of its heap by itself).
//! [`release_free_memory`] hands those free pages back to the kernel, once, after startup.
//! [`log_settings`] says which of jemalloc's settings are in force: jemalloc ignores a
//! configuration it cannot find without a word, so only what it reports back is evidence.
//!
//! Invariants: nothing here changes what is allocated or when; live allocations are never
//! touched; on other platforms it does nothing.

/// Returns the allocators' free pages to the kernel; safe at any time, and only worth its few
/// milliseconds when a phase that freed much has just ended.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim takes no pointer, only walks glibc's own free lists under its
        // locks, and may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
    #[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
    purge_jemalloc();
}

/// Logs (DEBUG, target `seedcore::allocator`) the settings jemalloc runs with, as it reports
/// them; nothing where jemalloc is not the allocator.
pub(crate) fn log_settings() {
    #[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
    tracing::debug!(
        narenas = read_option::<u32>(c"opt.narenas"),
        background_thread = read_option::<bool>(c"opt.background_thread"),
        dirty_decay_ms = read_option::<isize>(c"opt.dirty_decay_ms"),
        muzzy_decay_ms = read_option::<isize>(c"opt.muzzy_decay_ms"),
        "jemalloc settings"
    );
}

/// One of jemalloc's read-only `opt.*` values; `None` when jemalloc does not know the name or
/// its size is not `T`'s.
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
fn read_option<T: Copy + Default>(name: &std::ffi::CStr) -> Option<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>();
    // SAFETY: jemalloc writes at most `len` bytes to `value`, which is `len` bytes long and
    // lives across the call, and sets `len` to what it wrote; no new value is given.
    let failed = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            (&raw mut value).cast(),
            &raw mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (failed == 0 && len == std::mem::size_of::<T>()).then_some(value)
}

/// jemalloc's `arena.<MALLCTL_ARENAS_ALL>.purge`: every arena's unused dirty pages, at once.
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
fn purge_jemalloc() {
    /// jemalloc's index meaning "every arena" in `arena.<i>.*` names.
    const ALL_ARENAS: &std::ffi::CStr = c"arena.4096.purge";
    // SAFETY: a write-only control with no old or new value: every pointer is null and the
    // length zero, as jemalloc's manual documents for `arena.<i>.purge`.
    let failed = unsafe {
        tikv_jemalloc_sys::mallctl(
            ALL_ARENAS.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if failed != 0 {
        tracing::debug!(code = failed, "jemalloc did not purge its arenas");
    }
}
