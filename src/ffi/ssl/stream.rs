//! QUIC streams and connection state: opening and accepting streams, their policies, ids,
//! states and reset codes; a connection's close information.

use std::ffi::{c_char, c_int};

use crate::error::*;
use crate::ffi::{SSL, ffi_entry, guard_with, mut_arg, ssl_arc, ssl_arg, ssl_handle};
use crate::ssl::*;

/// Per-connection work the domain has done so far (drives and timer expiries): lets tests
/// show that idle connections cost nothing.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_SSL_get_conn_ticks(ssl: *mut SSL) -> u64 {
    ffi_entry!(OSSLQUIC_SSL_get_conn_ticks, {
        Ok(ssl_arg(ssl)?.conn_ticks())
    })
}

pub const SSL_STREAM_FLAG_UNI: u64 = 1;

pub const SSL_STREAM_FLAG_NO_BLOCK: u64 = 2;

pub const SSL_STREAM_FLAG_ADVANCE: u64 = 4;

pub const SSL_ACCEPT_STREAM_NO_BLOCK: u64 = 1;

/// Only a unidirectional stream (OpenSSL 3.6).
pub const SSL_ACCEPT_STREAM_UNI: u64 = 2;

/// Only a bidirectional stream (OpenSSL 3.6).
pub const SSL_ACCEPT_STREAM_BIDI: u64 = 4;

/// Opens a new local stream (SSL_STREAM_FLAG_UNI for unidirectional). A blocking connection
/// waits for stream credit unless SSL_STREAM_FLAG_NO_BLOCK is given; otherwise NULL with
/// STREAM_COUNT_LIMITED when the peer allows no more streams yet. See SSL_new_stream(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_new_stream(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_new_stream, {
        let c = ssl_arc(ssl)?;
        let r = c.new_stream(
            flags & SSL_STREAM_FLAG_UNI != 0,
            flags & SSL_STREAM_FLAG_NO_BLOCK != 0,
        );
        Ok(ssl_handle(c.note(r, SSL_ERROR_WANT_WRITE)?))
    })
}

/// The next stream the peer opened; with SSL_ACCEPT_STREAM_UNI or _BIDI (not both) the next
/// of that direction, the others staying queued. A blocking connection waits for one unless
/// SSL_ACCEPT_STREAM_NO_BLOCK is given; otherwise NULL when none is waiting.
/// See SSL_accept_stream(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_accept_stream(ssl: *mut SSL, flags: u64) -> *mut SSL {
    ffi_entry!(SSL_accept_stream, {
        let c = ssl_arc(ssl)?;
        let dir = match flags & (SSL_ACCEPT_STREAM_UNI | SSL_ACCEPT_STREAM_BIDI) {
            SSL_ACCEPT_STREAM_UNI => Some(quinn_proto::Dir::Uni),
            SSL_ACCEPT_STREAM_BIDI => Some(quinn_proto::Dir::Bi),
            _ => None,
        };
        let r = c.accept_stream(flags & SSL_ACCEPT_STREAM_NO_BLOCK != 0, dir);
        Ok(ssl_handle(c.note(r, SSL_ERROR_WANT_READ)?))
    })
}

/// Streams waiting for SSL_accept_stream. See SSL_get_accept_stream_queue_len(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_accept_stream_queue_len(ssl: *mut SSL) -> usize {
    ffi_entry!(SSL_get_accept_stream_queue_len, {
        ssl_arg(ssl)?.accept_stream_queue_len()
    })
}

/// SSL_DEFAULT_STREAM_MODE_NONE, _AUTO_BIDI (default) or _AUTO_UNI; only before the default
/// stream exists. See SSL_set_default_stream_mode(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_default_stream_mode(ssl: *mut SSL, mode: u32) -> c_int {
    ffi_entry!(SSL_set_default_stream_mode, {
        ssl_arg(ssl)?.set_default_stream_mode(mode)?;
        Ok(1)
    })
}

/// SSL_INCOMING_STREAM_POLICY_AUTO (the default: accept while the connection has no default
/// stream or its default stream mode is NONE, refuse once it has one), _ACCEPT, or _REJECT.
/// Refused peer streams are stopped and reset with `aec`. See SSL_set_incoming_stream_policy(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_set_incoming_stream_policy(ssl: *mut SSL, policy: c_int, aec: u64) -> c_int {
    ffi_entry!(SSL_set_incoming_stream_policy, {
        ssl_arg(ssl)?.set_incoming_stream_policy(policy, aec)?;
        Ok(1)
    })
}

/// Arguments of SSL_stream_reset.
#[repr(C)]
pub struct SSL_STREAM_RESET_ARGS {
    pub quic_error_code: u64,
}

/// Resets the send side of a stream (code 0 when `args` is NULL). See SSL_stream_reset(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_stream_reset(
    ssl: *mut SSL,
    args: *const SSL_STREAM_RESET_ARGS,
    _args_len: usize,
) -> c_int {
    ffi_entry!(SSL_stream_reset, {
        let s = ssl_arg(ssl)?;
        // SAFETY: args is NULL or a caller-owned SSL_STREAM_RESET_ARGS.
        let code = unsafe { args.as_ref() }.map_or(0, |a| a.quic_error_code);
        s.reset_stream(code)?;
        Ok(1)
    })
}

/// The stream id, or UINT64_MAX without a stream. See SSL_get_stream_id(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_id(ssl: *mut SSL) -> u64 {
    guard_with("SSL_get_stream_id", u64::MAX, || {
        Ok(ssl_arg(ssl)?.stream_id())
    })
}

/// SSL_STREAM_TYPE_NONE, _READ, _WRITE or _BIDI. See SSL_get_stream_type(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_type(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_type, { Ok(ssl_arg(ssl)?.stream_type()) })
}

/// 1 if this side opened the stream. See SSL_is_stream_local(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_is_stream_local(ssl: *mut SSL) -> c_int {
    guard_with("SSL_is_stream_local", -1, || {
        Ok(ssl_arg(ssl)?.is_stream_local() as c_int)
    })
}

/// SSL_STREAM_STATE_* of the receiving part. See SSL_get_stream_read_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_read_state(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_read_state, {
        Ok(ssl_arg(ssl)?.read_state())
    })
}

/// SSL_STREAM_STATE_* of the sending part. See SSL_get_stream_write_state(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_write_state(ssl: *mut SSL) -> c_int {
    ffi_entry!(SSL_get_stream_write_state, {
        Ok(ssl_arg(ssl)?.write_state())
    })
}

fn stream_code(ssl: *mut SSL, code: *mut u64, write: bool) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    let out = mut_arg(code, "app_error_code")?;
    Ok(match s.stream_error_code(write) {
        Some(c) => {
            *out = c;
            1
        }
        None if s.close_info().is_some() => -1,
        None => 0,
    })
}

/// 1 with the peer's RESET_STREAM code, 0 if not reset, -1 if the connection is closed.
/// See SSL_get_stream_read_error_code(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_read_error_code(ssl: *mut SSL, app_error_code: *mut u64) -> c_int {
    guard_with("SSL_get_stream_read_error_code", -1, || {
        stream_code(ssl, app_error_code, false)
    })
}

/// 1 with the peer's STOP_SENDING code, 0 if not stopped, -1 if the connection is closed.
/// See SSL_get_stream_write_error_code(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_stream_write_error_code(
    ssl: *mut SSL,
    app_error_code: *mut u64,
) -> c_int {
    guard_with("SSL_get_stream_write_error_code", -1, || {
        stream_code(ssl, app_error_code, true)
    })
}

/// Why a connection closed (see SSL_get_conn_close_info(3)).
#[repr(C)]
pub struct SSL_CONN_CLOSE_INFO {
    pub error_code: u64,
    pub frame_type: u64,
    pub reason: *const c_char,
    pub reason_len: usize,
    pub flags: u32,
}

/// Fills `info` once the connection is closing or closed; 0 while it is open. The reason
/// string lives as long as the connection. See SSL_get_conn_close_info(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_conn_close_info(
    ssl: *mut SSL,
    info: *mut SSL_CONN_CLOSE_INFO,
    info_len: usize,
) -> c_int {
    ffi_entry!(SSL_get_conn_close_info, {
        let s = ssl_arg(ssl)?;
        let out = mut_arg(info, "info")?;
        if info_len < size_of::<SSL_CONN_CLOSE_INFO>() {
            return Err(Error::invalid(
                "info_len is smaller than SSL_CONN_CLOSE_INFO",
            ));
        }
        let Some((code, ft, reason, local, transport)) = s.close_info() else {
            return Err(Error::would_block());
        };
        let c = match &s.kind {
            Kind::Conn(c) => c,
            Kind::Stream(st) => st.conn.as_conn()?,
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                return Err(Error::ssl(SSL_R_CONN_USE_ONLY));
            }
        };
        let cs = c.close_reason.get_or_init(|| {
            std::ffi::CString::new(
                reason
                    .iter()
                    .copied()
                    .filter(|&b| b != 0)
                    .collect::<Vec<u8>>(),
            )
            .unwrap_or_default()
        });
        *out = SSL_CONN_CLOSE_INFO {
            error_code: code,
            frame_type: ft,
            reason: cs.as_ptr(),
            reason_len: cs.as_bytes().len(),
            flags: (if local { SSL_CONN_CLOSE_FLAG_LOCAL } else { 0 })
                | (if transport {
                    SSL_CONN_CLOSE_FLAG_TRANSPORT
                } else {
                    0
                }),
        };
        Ok(1)
    })
}
