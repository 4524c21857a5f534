//! The `seedcore` binary: parses the command line and hands over to [`seedcore::cli`].
//!
//! On Linux with glibc (feature `jemalloc`, on by default) it allocates through jemalloc:
//! under load glibc's allocator was about a sixth of `serve`'s CPU (its consolidation and
//! arena locks), and jemalloc's thread caches answer most requests' allocations without a
//! lock. Its settings keep an idle process small: two arenas (jemalloc's default is four per
//! core, each keeping pages of its own; the thread caches spare most allocations an arena's
//! lock), freed pages handed back within a second by a background thread, and none kept as
//! lazily freed ("muzzy") pages. What startup freed is handed back at once
//! (`allocator::release_free_memory`).

use std::process::ExitCode;

use clap::Parser;

#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads this string (its `malloc_conf`) before `main`; `_RJEM_MALLOC_CONF` in the
/// environment still overrides it.
#[cfg(all(feature = "jemalloc", target_os = "linux", target_env = "gnu"))]
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &u8 =
    &b"narenas:2,background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0];

fn main() -> ExitCode {
    let cli = seedcore::cli::Cli::parse();
    seedcore::cli::run(cli)
}
