//! What the process asks of the C allocator (glibc's malloc, the Rust global allocator here).
//!
//! Startup allocates and frees more than serving keeps: migrations, the OpenAPI document and
//! the router are built once, and what is dropped afterwards stays resident in the heap's
//! free lists, because glibc only gives back memory at the very top of its heap by itself.
//! [`release_free_memory`] hands those free pages back to the kernel, once, after startup.
//!
//! Invariants: nothing here changes what is allocated or when; on other C libraries (musl,
//! macOS) it does nothing.

/// Returns the heap's free pages to the kernel (glibc `malloc_trim(0)`); live allocations
/// are untouched, so this is safe at any time, and only worth its few milliseconds when a
/// phase that freed much has just ended.
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
}
