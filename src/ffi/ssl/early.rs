//! TLS 1.3 early data (0-RTT): SSL_write_early_data, SSL_read_early_data,
//! SSL_get_early_data_status and the max_early_data settings of contexts and connections.
//! TLS connections only for now; on QUIC objects the calls fail ("QUIC early data: not yet").

use std::ffi::{c_int, c_void};

use crate::ffi::{SSL, SSL_CTX, ctx_arg, ffi_entry, put, slice_arg_mut, ssl_arg};
use crate::ssl::*;

/// Sends `buf` as early data on a TLS 1.3 client: the first call starts the handshake (it
/// must be the connection's first I/O call) with a session that allows early data
/// (SSL_set_session, or one in the context's cache), later calls add data until the
/// handshake goes on (SSL_connect, SSL_do_handshake, SSL_write). Returns 1 with `*written`
/// = `num`, or 0: SSL_get_error says WANT_WRITE (retry the same call) or SSL (a server, the
/// handshake already started, no such session: ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED; more than
/// the session allows: SSL_R_TOO_MUCH_EARLY_DATA, fatal). Whether the server took it:
/// SSL_get_early_data_status after the handshake; if REJECTED, send it again (OpenSSL's
/// rule). A server, after SSL_read_early_data, writes to the client before its Finished.
/// See SSL_write_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_early_data(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(SSL_write_early_data, {
        super::io::write_with(ssl, buf, num, written, |s, data| s.write_early_data(data))
    })
}

/// Reads early data on a TLS server; it must be the connection's first I/O call. Returns
/// SSL_READ_EARLY_DATA_SUCCESS with `*readbytes` > 0; SSL_READ_EARLY_DATA_FINISH when there
/// is no (more) early data (none sent, refused, or all read): then SSL_accept completes the
/// handshake; SSL_READ_EARLY_DATA_ERROR with SSL_get_error (WANT_READ: call again; SSL: a
/// client, after other I/O, or after FINISH: ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED). The
/// context (or SSL_set_max_early_data) decides whether early data is accepted at all.
/// See SSL_read_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read_early_data(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_read_early_data, SSL_READ_EARLY_DATA_ERROR, {
        let s = ssl_arg(ssl)?;
        let out = slice_arg_mut(buf, num, "buf")?;
        match s.note(s.read_early_data(out), SSL_ERROR_WANT_READ)? {
            Some(n) => {
                put(readbytes, n);
                Ok(SSL_READ_EARLY_DATA_SUCCESS)
            }
            None => Ok(SSL_READ_EARLY_DATA_FINISH),
        }
    })
}

/// SSL_EARLY_DATA_ACCEPTED, SSL_EARLY_DATA_REJECTED (offered, not accepted) or
/// SSL_EARLY_DATA_NOT_SENT, on either end; final once the handshake is done. 0 (NOT_SENT)
/// with an error for NULL. See SSL_get_early_data_status(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_early_data_status(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_get_early_data_status, {
        ssl_arg(ssl)?.early_data_status()
    })
}

/// The early data a server accepts and announces in the tickets it issues (0, the default:
/// none). Nonzero makes a TLS server issue single-use (stateful) tickets: a ticket carries
/// early data once (OpenSSL's anti-replay; SSL_OP_NO_ANTI_REPLAY cannot turn it off), and
/// shared ticket keys (SSL_CTX_set_tlsext_ticket_keys, a fleet secret) do not apply while it
/// is on. Takes effect for handshakes that start afterwards. Returns 1, or 0 with an error
/// for NULL. See SSL_CTX_set_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_max_early_data(ctx: *mut SSL_CTX, max_early_data: u32) -> c_int {
    ffi_entry!(SSL_CTX_set_max_early_data, {
        ctx_arg(ctx)?.set_max_early_data(max_early_data);
        Ok(1)
    })
}

/// The context's max_early_data (0 with an error for NULL). See
/// SSL_CTX_get_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_max_early_data(ctx: *const SSL_CTX) -> u32 {
    ffi_entry!(SSL_CTX_get_max_early_data, {
        Ok(ctx_arg(ctx)?.max_early_data())
    })
}

/// A TLS server connection's own max_early_data, over its context's (set before its
/// handshake starts). Returns 1, or 0 with an error (NULL; a QUIC object: not yet). See
/// SSL_set_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_max_early_data(ssl: *mut SSL, max_early_data: u32) -> c_int {
    ffi_entry!(SSL_set_max_early_data, {
        ssl_arg(ssl)?.set_max_early_data(max_early_data, false)?;
        Ok(1)
    })
}

/// The connection's max_early_data: its own, else its context's (0 with an error for NULL).
/// See SSL_get_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_max_early_data(ssl: *const SSL) -> u32 {
    ffi_entry!(SSL_get_max_early_data, {
        Ok(ssl_arg(ssl)?.max_early_data(false))
    })
}

/// The most early data a TLS server takes in (default 16384). rustls has one limit for what
/// tickets advertise and what is taken: a server uses the smaller of max_early_data and this
/// for both (our client refuses to write more: SSL_R_TOO_MUCH_EARLY_DATA). QUIC's early data is
/// bounded by flow control. Returns 1, or 0 with an error for NULL. See
/// SSL_CTX_set_recv_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_recv_max_early_data(
    ctx: *mut SSL_CTX,
    recv_max_early_data: u32,
) -> c_int {
    ffi_entry!(SSL_CTX_set_recv_max_early_data, {
        ctx_arg(ctx)?.set_recv_max_early_data(recv_max_early_data);
        Ok(1)
    })
}

/// The context's recv_max_early_data (0 with an error for NULL). See
/// SSL_CTX_get_recv_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_recv_max_early_data(ctx: *const SSL_CTX) -> u32 {
    ffi_entry!(SSL_CTX_get_recv_max_early_data, {
        Ok(ctx_arg(ctx)?.recv_max_early_data())
    })
}

/// A TLS connection's own recv_max_early_data (as the context's; set before the handshake).
/// Returns 1, or 0 with an error (NULL; a QUIC object: not yet). See
/// SSL_set_recv_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_recv_max_early_data(ssl: *mut SSL, recv_max_early_data: u32) -> c_int {
    ffi_entry!(SSL_set_recv_max_early_data, {
        ssl_arg(ssl)?.set_max_early_data(recv_max_early_data, true)?;
        Ok(1)
    })
}

/// The connection's recv_max_early_data: its own, else its context's (0 with an error for
/// NULL). See SSL_get_recv_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_recv_max_early_data(ssl: *const SSL) -> u32 {
    ffi_entry!(SSL_get_recv_max_early_data, {
        Ok(ssl_arg(ssl)?.max_early_data(true))
    })
}
