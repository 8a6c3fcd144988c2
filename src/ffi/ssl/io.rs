//! SSL I/O: read, peek, write (and conclude), pending, SSL_get_error, shutdown.

use std::ffi::{c_char, c_int, c_void};

use crate::error::*;
use crate::ffi::{SSL, cstr_arg, ffi_entry, guard_with, put, slice_arg, slice_arg_mut, ssl_arg};
use crate::ssl::*;

pub const SSL_WRITE_FLAG_CONCLUDE: u64 = 1;

/// Reads from the default stream: 1 with `*readbytes` > 0; 0 with SSL_get_error telling
/// WANT_READ, ZERO_RETURN (FIN) or SSL. See SSL_read_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read_ex(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_read_ex, { read_into(ssl, buf, num, readbytes, false) })
}

fn read_into(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
    peek: bool,
) -> Result<c_int> {
    read_with(ssl, buf, num, readbytes, |s, out| s.read(out, peek))
}

/// The body of an `_ex` read: `op` fills `buf` (`num` bytes) and says how many it read, which
/// go to `*readbytes`; WANT_READ when it would block. Returns 1.
pub(super) fn read_with(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
    op: impl FnOnce(&Ssl, &mut [u8]) -> Result<usize>,
) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    let out = slice_arg_mut(buf, num, "buf")?;
    let n = s.note(op(s, out), SSL_ERROR_WANT_READ)?;
    put(readbytes, n);
    Ok(1)
}

/// The body of an `_ex` write: `op` takes from `buf` (`num` bytes) and says how many it took,
/// which go to `*written`; WANT_WRITE when it would block. Returns 1.
pub(super) fn write_with(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
    op: impl FnOnce(&Ssl, &[u8]) -> Result<usize>,
) -> Result<c_int> {
    let s = ssl_arg(ssl)?;
    let data = slice_arg(buf, num, "buf")?;
    let n = s.note(op(s, data), SSL_ERROR_WANT_WRITE)?;
    put(written, n);
    Ok(1)
}

/// The int-length forms (SSL_read, SSL_write, SSL_peek) over their `_ex` forms: the byte
/// count, or -1.
fn int_io(
    func: &'static str,
    ssl: *const SSL,
    num: c_int,
    ex: impl FnOnce(usize, &mut usize) -> c_int,
) -> c_int {
    if num < 0 {
        return guard_with(func, -1, || Err(Error::invalid("negative length")));
    }
    let mut n = 0usize;
    match ex(num as usize, &mut n) {
        1 => n as c_int,
        _ => io_failure(ssl),
    }
}

/// What SSL_read/SSL_peek/SSL_write return on failure, as OpenSSL's do: a QUIC object 0 for
/// every failure (its _ex call's result; SSL_get_error tells which), a TLS connection 0 at
/// the peer's close_notify and -1 otherwise. Programs written for QUIC end on `<= 0` and
/// pass the value on as a length (OpenSSL's ddd-06-mem-uv does), so -1 is not harmless.
fn io_failure(ssl: *const SSL) -> c_int {
    match ssl_arg(ssl) {
        Ok(s) if !s.is_tls() => 0,
        Ok(s) if s.last_error() == SSL_ERROR_ZERO_RETURN => 0,
        _ => -1,
    }
}

/// As SSL_read_ex, returning the byte count or <= 0. See SSL_read(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_read(ssl: *mut SSL, buf: *mut c_void, num: c_int) -> c_int {
    int_io("SSL_read", ssl, num, |len, n| {
        guard_with("SSL_read", 0, || read_into(ssl, buf, len, n, false))
    })
}

/// Writes to the default stream (created on first write): 1 with `*written`, or 0 with
/// SSL_get_error. See SSL_write_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_ex(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(SSL_write_ex, { write_from(ssl, buf, num, 0, written) })
}

/// SSL_write_ex with flags: SSL_WRITE_FLAG_CONCLUDE sends FIN after the data.
/// See SSL_write_ex2(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write_ex2(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    flags: u64,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(SSL_write_ex2, { write_from(ssl, buf, num, flags, written) })
}

fn write_from(
    ssl: *mut SSL,
    buf: *const c_void,
    num: usize,
    flags: u64,
    written: *mut usize,
) -> Result<c_int> {
    ssl_arg(ssl)?;
    if flags & !SSL_WRITE_FLAG_CONCLUDE != 0 {
        return Err(Error::ssl(412).with("unsupported write flag"));
    }
    write_with(ssl, buf, num, written, |s, data| {
        s.write(data, flags & SSL_WRITE_FLAG_CONCLUDE != 0)
    })
}

/// As SSL_write_ex, returning the byte count or <= 0. See SSL_write(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_write(ssl: *mut SSL, buf: *const c_void, num: c_int) -> c_int {
    int_io("SSL_write", ssl, num, |len, n| {
        guard_with("SSL_write", 0, || write_from(ssl, buf, len, 0, n))
    })
}

/// Sends FIN on the default stream after its buffered data. See SSL_stream_conclude(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_stream_conclude(ssl: *mut SSL, _flags: u64) -> c_int {
    ffi_entry!(SSL_stream_conclude, {
        let s = ssl_arg(ssl)?;
        s.note(s.conclude(), SSL_ERROR_WANT_WRITE)?;
        Ok(1)
    })
}

/// What the last call on `ssl` meant when it returned `ret`: SSL_ERROR_NONE, WANT_READ,
/// WANT_WRITE, ZERO_RETURN, SSL or SYSCALL. See SSL_get_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get_error(ssl: *const SSL, ret: c_int) -> c_int {
    guard_with("SSL_get_error", SSL_ERROR_SSL, || {
        let s = ssl_arg(ssl)?;
        Ok(if ret > 0 {
            SSL_ERROR_NONE
        } else {
            s.last_error()
        })
    })
}

/// Shuts the connection down: concludes the default stream, waits until its data is
/// acknowledged, sends CONNECTION_CLOSE and waits out the closing period. Returns 0 while in
/// progress, 1 when done (call again until 1; a blocking connection waits). See SSL_shutdown(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_shutdown(ssl: *mut SSL) -> c_int {
    guard_with("SSL_shutdown", -1, || {
        let s = ssl_arg(ssl)?;
        // A would-block (TLS: close_notify not yet flushed, or the peer's not yet read) is
        // SSL_get_error's WANT_READ/WANT_WRITE, as in OpenSSL.
        Ok(s.note(s.shutdown(0, b"", 0), SSL_ERROR_WANT_READ)? as c_int)
    })
}

/// Arguments of SSL_shutdown_ex.
#[repr(C)]
pub struct SSL_SHUTDOWN_EX_ARGS {
    pub quic_error_code: u64,
    pub quic_reason: *const c_char,
}

/// SSL_shutdown with an application error code and reason, and SSL_SHUTDOWN_FLAG_RAPID (done
/// once CONNECTION_CLOSE is sent), _NO_STREAM_FLUSH (do not wait for stream data to be
/// acknowledged), _NO_BLOCK, _WAIT_PEER (wait for the peer to close first, closing nothing
/// itself). See SSL_shutdown_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_shutdown_ex(
    ssl: *mut SSL,
    flags: u64,
    args: *const SSL_SHUTDOWN_EX_ARGS,
    _args_len: usize,
) -> c_int {
    guard_with("SSL_shutdown_ex", -1, || {
        let s = ssl_arg(ssl)?;
        // SAFETY: args is NULL or points at a caller-owned SSL_SHUTDOWN_EX_ARGS.
        let (code, reason) = match unsafe { args.as_ref() } {
            Some(a) if !a.quic_reason.is_null() => (
                a.quic_error_code,
                cstr_arg(a.quic_reason, "quic_reason")?.as_bytes(),
            ),
            Some(a) => (a.quic_error_code, &b""[..]),
            None => (0, &b""[..]),
        };
        Ok(s.note(s.shutdown(code, reason, flags), SSL_ERROR_WANT_READ)? as c_int)
    })
}

/// As SSL_read_ex, without consuming. See SSL_peek_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_peek_ex(
    ssl: *mut SSL,
    buf: *mut c_void,
    num: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(SSL_peek_ex, { read_into(ssl, buf, num, readbytes, true) })
}

/// As SSL_peek_ex, returning the byte count or <= 0. See SSL_peek(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_peek(ssl: *mut SSL, buf: *mut c_void, num: c_int) -> c_int {
    int_io("SSL_peek", ssl, num, |len, n| {
        guard_with("SSL_peek", 0, || read_into(ssl, buf, len, n, true))
    })
}

/// Bytes readable at once from the stream (or default stream). See SSL_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_pending(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_pending, {
        Ok(ssl_arg(ssl)?.pending().min(c_int::MAX as usize) as c_int)
    })
}

/// 1 if data is waiting to be read: on TLS, if SSL_pending would be positive; on QUIC, as
/// OpenSSL's: stream bytes, an unread FIN, datagrams not yet taken in, or an ended
/// connection. See SSL_has_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_has_pending(ssl: *const SSL) -> c_int {
    ffi_entry!(SSL_has_pending, {
        Ok(ssl_arg(ssl)?.has_pending() as c_int)
    })
}

/// Enables RFC 9221 datagrams on the QUIC connections made from `ctx` from now on (clients,
/// and connections of listeners created afterwards): the transport parameter is sent, and at
/// most `max_queued` received datagrams wait unread (the oldest are dropped beyond, counted
/// in OSSLQUIC_CONN_STATS). 0 turns them off (the default). Returns 1, or 0 with an error
/// queued (NULL). An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_CTX_set_datagrams(
    ctx: *mut crate::ffi::SSL_CTX,
    max_queued: usize,
) -> c_int {
    ffi_entry!(OSSLQUIC_CTX_set_datagrams, {
        crate::ffi::ctx_arg(ctx)?.set_datagrams(max_queued);
        Ok(1)
    })
}

/// Sends `len` bytes as one unreliable datagram (RFC 9221) on the connection of `ssl` (a
/// connection or one of its streams): queued whole, or not at all. Returns 1 with *written =
/// len, or 0: SSL_get_error says SSL_ERROR_WANT_WRITE while the handshake runs or the send
/// buffer is full (a blocking object waits instead; OSSLQUIC_POLL_EVENT_DW says when one of
/// the largest size fits), else an error is queued: the peer takes no datagrams or datagrams
/// are not enabled ("unsupported"), larger than OSSLQUIC_get_max_datagram_size ("bad
/// length"), the connection ended. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_write_datagram(
    ssl: *mut SSL,
    buf: *const c_void,
    len: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(OSSLQUIC_write_datagram, {
        write_with(ssl, buf, len, written, |s, data| {
            s.write_datagram(data).map(|()| data.len())
        })
    })
}

/// Reads the oldest received datagram into `buf`. Returns 1 with *readbytes its length, or 0:
/// SSL_get_error says SSL_ERROR_WANT_READ when none is queued (a blocking object waits;
/// OSSLQUIC_POLL_EVENT_DR says when one is), else an error is queued: the datagram is longer
/// than `len` ("bad length"; it stays queued), the connection ended. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_read_datagram(
    ssl: *mut SSL,
    buf: *mut c_void,
    len: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(OSSLQUIC_read_datagram, {
        read_with(ssl, buf, len, readbytes, |s, out| s.read_datagram(out))
    })
}

/// The largest datagram the peer of `ssl`'s connection takes now (its transport parameter,
/// bounded by the path's MTU); 0 before the handshake, when the peer takes none or datagrams
/// are not enabled. 0 with an error queued for a non-QUIC object. An osslquic extension.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_get_max_datagram_size(ssl: *mut SSL) -> usize {
    ffi_entry!(OSSLQUIC_get_max_datagram_size, {
        ssl_arg(ssl)?.max_datagram_size()
    })
}
