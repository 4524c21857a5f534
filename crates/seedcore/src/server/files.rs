//! The process's open-file limit, which bounds its connections: every connection is a file
//! descriptor, beside the database's and the runtime's own.
//!
//! The soft limit is raised to the hard limit at start (as far as the system lets a process
//! go by itself); if that still leaves too few for the connection cap, a warning says so, and
//! the accept loop rides out the errors when files run out.

/// Descriptors kept aside for everything but client connections (database pool, SQLite's
/// files, the runtime, logs).
const RESERVED: u64 = 128;

/// Raises the soft open-file limit and warns when it cannot hold `max_connections`.
pub(super) fn raise_limit(max_connections: u32) {
    let wanted = u64::from(max_connections) + RESERVED;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(limit) if limit < wanted => tracing::warn!(
            open_file_limit = limit,
            max_connections,
            "the open-file limit allows fewer connections than SEEDCORE_MAX_CONNECTIONS; \
             beyond about {} connections new ones wait until others close (raise the limit \
             with `ulimit -n` or systemd's LimitNOFILE)",
            limit.saturating_sub(RESERVED)
        ),
        Ok(_) => {}
        Err(err) => tracing::warn!(error = %err, "cannot read or raise the open-file limit"),
    }
}
