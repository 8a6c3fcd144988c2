//! Early data (TLS 1.3 early data, QUIC 0-RTT): SSL_write_early_data, SSL_read_early_data,
//! SSL_get_early_data_status and the early-data limits. Conversion only.

use std::ffi::{c_int, c_void};

use crate::ffi::{SSL, SSL_CTX, ctx_arg, ffi_entry, put, slice_arg, slice_arg_mut, ssl_arg};
use crate::ssl::*;

/// SSL_read_early_data's answers.
pub const SSL_READ_EARLY_DATA_ERROR: c_int = 0;
pub const SSL_READ_EARLY_DATA_SUCCESS: c_int = 1;
pub const SSL_READ_EARLY_DATA_FINISH: c_int = 2;

/// A client writes `num` bytes as early data, before the handshake completes (starting it
/// if needed): 1 with `*written`, or 0 with SSL_get_error. On QUIC, the connection's default
/// stream or the stream object's. See SSL_write_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_early_data(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(SSL_write_early_data, {
        let s = ssl_arg(ssl)?;
        let data = slice_arg(buf, num, "buf")?;
        let n = s.note(s.write_early_data(data), SSL_ERROR_WANT_WRITE)?;
        put(written, n);
        Ok(1)
    })
}

/// A server reads early data: SSL_READ_EARLY_DATA_SUCCESS with `*readbytes`,
/// SSL_READ_EARLY_DATA_FINISH when there is no more, SSL_READ_EARLY_DATA_ERROR with
/// SSL_get_error. On a QUIC connection, early data arrives on its streams and is read with
/// SSL_read: this answers FINISH. See SSL_read_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read_early_data(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_read_early_data, {
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

/// SSL_EARLY_DATA_NOT_SENT, _REJECTED or _ACCEPTED. See SSL_get_early_data_status(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_early_data_status(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_get_early_data_status, {
        Ok(ssl_arg(ssl as *mut SSL)?.early_data_status())
    })
}

/// What a server allows a resumed client to send early, announced in its tickets (0: no
/// early data, the default). QUIC takes any non-zero value as "allowed" (RFC 9001 §4.6.1).
/// A server allowing early data issues single-use tickets. See SSL_CTX_set_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_set_max_early_data(ctx: *mut SSL_CTX, max_early_data: u32) -> c_int {
    ffi_entry!(SSL_CTX_set_max_early_data, {
        ctx_arg(ctx)?.set_max_early_data(max_early_data);
        Ok(1)
    })
}

/// See SSL_CTX_get_max_early_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_CTX_get_max_early_data(ctx: *const SSL_CTX) -> u32 {
    ffi_entry!(SSL_CTX_get_max_early_data, {
        Ok(ctx_arg(ctx)?.max_early_data())
    })
}
