//! The C entry points of the fork and prefork process models (osslquic extensions; see
//! docs/FORK.md and `ssl::fork`).

use std::ffi::c_int;

use super::{SSL, ssl_arc, ssl_arg};
use super::{ffi_entry, mut_arg};
use crate::ssl::fork;

/// What a QUIC object's engine has seen (OSSLQUIC_get_engine_stats).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSLQUIC_ENGINE_STATS {
    /// Datagrams received.
    pub datagrams_in: u64,
    /// Of them, datagrams for connections this process does not serve.
    pub foreign_in: u64,
    /// Datagrams a fork parent forwarded to the children serving their connections.
    pub forwarded: u64,
    /// Connections accepted.
    pub accepted: u64,
    /// New connections refused (CONNECTION_REFUSED) because the accept queue was full
    /// (OSSLQUIC_set_max_pending_connections).
    pub refused: u64,
    /// Retries sent: a new client asked to prove its address, because the listener validates
    /// every address or because too many unvalidated handshakes were in progress
    /// (OSSLQUIC_set_max_unvalidated_handshakes).
    pub retries: u64,
}

/// fork(2), handing the accepted connection `conn` to the child. Returns the child's pid in
/// the parent, 0 in the child, -1 (error queued) on failure, like fork(2).
/// QUIC: in the child, `conn` is served on a UDP socket of its own and nothing else of its
/// domain is (accepting fails there); in the parent, `conn` is forgotten without a word to
/// the peer (free it) and datagrams for it that still reach the listener are forwarded to
/// the child. TLS: plain fork(2). Call it while no other thread uses the domain.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_fork_connection(conn: *mut SSL) -> c_int {
    ffi_entry!(OSSLQUIC_fork_connection, -1, {
        let s = ssl_arc(conn)?;
        fork::fork_connection(&s)
    })
}

/// Prepares a QUIC listener, or every listener of a domain, to be served by `workers`
/// processes forked after this call (each then calls OSSLQUIC_prefork_worker). No
/// connection may have been accepted yet. A TLS listener needs nothing (returns 1).
/// Returns 1, or 0 with an error queued.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_prefork(obj: *mut SSL, workers: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_prefork, {
        fork::prefork(ssl_arg(obj)?, workers)?;
        Ok(1)
    })
}

/// In worker `index` (0 to workers-1) right after fork(2): takes the worker's own sockets
/// and random state. Returns 1, or 0 with an error queued.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_prefork_worker(obj: *mut SSL, index: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_prefork_worker, {
        fork::prefork_worker(ssl_arg(obj)?, index)?;
        Ok(1)
    })
}

/// Fills `out` with what the engine behind a QUIC listener, connection, stream or domain
/// (all its listeners) has seen. Returns 1, or 0 with an error queued (a TLS object).
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_engine_stats(
    obj: *mut SSL,
    out: *mut OSSLQUIC_ENGINE_STATS,
) -> c_int {
    ffi_entry!(OSSLQUIC_get_engine_stats, {
        let o = mut_arg(out, "out")?;
        let st = fork::engine_stats(ssl_arg(obj)?)?;
        *o = OSSLQUIC_ENGINE_STATS {
            datagrams_in: st.datagrams_in,
            foreign_in: st.foreign_in,
            forwarded: st.forwarded,
            accepted: st.accepted,
            refused: st.refused,
            retries: st.retries,
        };
        Ok(1)
    })
}
