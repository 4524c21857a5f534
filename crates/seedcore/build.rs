//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! migrations folders at compile time, and cargo does not otherwise know they are inputs.
//!
//! Links the `seedcore` binary with packed relative relocations (DT_RELR) on Linux/glibc:
//! the dynamic loader reads every relocation of a position-independent executable at
//! start, and in the classic format those are 24 bytes each, about 1.4 MiB of the file that
//! then stays resident; packed, they take a few kilobytes. The executable stays
//! position-independent (ASLR unchanged); it needs glibc 2.36 or newer to run.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
