//! BIO I/O: BIO_read/BIO_write (and _ex), BIO_puts, BIO_gets, BIO_sendmmsg, BIO_recvmmsg.

use std::ffi::{c_char, c_int, c_void};

use super::custom_ret;
use crate::bio::consts::*;
use crate::bio::msg::{BIO_MSG, MsgArray};
use crate::error::*;
use crate::ffi::{BIO, bio_arg, ffi_entry, mut_arg, put};

/// Reads one datagram (truncating on a socket, or per no_trunc on a pair). Returns the byte
/// count, or -1 with retry flags (nothing waiting) or an error. On a custom BIO, the method's
/// read (or read_ex) result; -2 if it has neither. See BIO_read(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_read(b: *mut BIO, data: *mut c_void, dlen: c_int) -> c_int {
    ffi_entry!(BIO_read, -1, {
        let bio = bio_arg(b)?;
        if dlen < 0 {
            return Err(Error::invalid("negative length"));
        }
        let buf = crate::ffi::slice_arg_mut(data, dlen as usize, "data")?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle and buf the caller's checked buffer.
            let r = unsafe { c.read(b, buf.as_mut_ptr().cast(), buf.len()) };
            return Ok(custom_ret(
                r.map(|(r, n)| if r > 0 { n as c_int } else { r }),
                "BIO_read",
            ));
        }
        match bio.read(buf) {
            Ok(n) => Ok(n as c_int),
            // An empty mem BIO returns its BIO_set_mem_eof_return value (-1 unless set).
            Err(e) if e.is_would_block() && bio.mem().is_some() => {
                Ok(bio.mem().map_or(-1, |m| m.eof_return()))
            }
            Err(e) => Err(e),
        }
    })
}

/// Writes one datagram. Returns the byte count, 0 for a zero-length write, -1 on failure or
/// would-block (retry flags set). On a custom BIO, the method's write (or write_ex) result;
/// -2 if it has neither; 0 without a call for `dlen <= 0`, as OpenSSL. See BIO_write(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_write(b: *mut BIO, data: *const c_void, dlen: c_int) -> c_int {
    ffi_entry!(BIO_write, -1, {
        let bio = bio_arg(b)?;
        if let Some(c) = bio.custom() {
            if dlen <= 0 {
                return Ok(0);
            }
            let buf = crate::ffi::slice_arg(data, dlen as usize, "data")?;
            // SAFETY: b is this BIO's handle and buf the caller's checked buffer.
            let r = unsafe { c.write(b, buf.as_ptr().cast(), buf.len()) };
            return Ok(custom_ret(
                r.map(|(r, n)| if r > 0 { n as c_int } else { r }),
                "BIO_write",
            ));
        }
        if dlen < 0 {
            return Err(Error::invalid("negative length"));
        }
        let buf = crate::ffi::slice_arg(data, dlen as usize, "data")?;
        Ok(bio.write(buf)? as c_int)
    })
}

/// As BIO_read; returns 1 with `*readbytes` set, or 0. A custom method's read_ex (or read)
/// runs. See BIO_read_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_read_ex(
    b: *mut BIO,
    data: *mut c_void,
    dlen: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(BIO_read_ex, {
        let bio = bio_arg(b)?;
        mut_arg(readbytes, "readbytes")?;
        if dlen == 0 {
            return Ok(1);
        }
        let buf = crate::ffi::slice_arg_mut(data, dlen, "data")?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle and buf the caller's checked buffer.
            let (r, n) = unsafe { c.read(b, buf.as_mut_ptr().cast(), buf.len()) }?;
            put(readbytes, n);
            return Ok((r > 0) as c_int);
        }
        let n = bio.read(buf)?;
        put(readbytes, n);
        Ok((n > 0) as c_int)
    })
}

/// As BIO_write; returns 1 with `*written` set, or 0. A custom method's write_ex (or write)
/// runs. See BIO_write_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_write_ex(
    b: *mut BIO,
    data: *const c_void,
    dlen: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(BIO_write_ex, {
        let bio = bio_arg(b)?;
        mut_arg(written, "written")?;
        if dlen == 0 {
            return Ok(1);
        }
        let buf = crate::ffi::slice_arg(data, dlen, "data")?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle and buf the caller's checked buffer.
            let (r, n) = unsafe { c.write(b, buf.as_ptr().cast(), buf.len()) }?;
            put(written, n);
            return Ok((r > 0) as c_int);
        }
        let n = bio.write(buf)?;
        put(written, n);
        Ok((n > 0) as c_int)
    })
}

/// Sends a batch of datagrams. Returns 1 with `*msgs_processed` = datagrams sent (maybe fewer
/// than asked), or 0 with an error queued (`*msgs_processed` = 0). On a custom BIO, the
/// method's sendmmsg with the caller's arguments and its result (0 and an unsupported-method
/// error if it has none). See BIO_sendmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sendmmsg(
    b: *mut BIO,
    msg: *mut BIO_MSG,
    stride: usize,
    num_msg: usize,
    flags: u64,
    msgs_processed: *mut usize,
) -> c_int {
    put(msgs_processed, 0);
    ffi_entry!(BIO_sendmmsg, {
        let bio = bio_arg(b)?;
        mut_arg(msgs_processed, "msgs_processed")?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle, msgs_processed was checked, and the array is the
            // caller's, passed on as BIO_sendmmsg(3) describes it.
            return unsafe { c.sendmmsg(b, msg, stride, num_msg, flags, msgs_processed) };
        }
        // SAFETY: the caller passes num_msg BIO_MSGs spaced by stride (BIO_sendmmsg(3)).
        let msgs = unsafe { MsgArray::new(msg, stride, num_msg)? };
        let n = bio.sendmmsg(&msgs, flags)?;
        put(msgs_processed, n);
        Ok(1)
    })
}

/// Receives a batch of datagrams; as BIO_sendmmsg. An empty non-blocking source returns 0
/// with a non-fatal error (BIO_err_is_non_fatal). On a custom BIO, the method's recvmmsg, as
/// for BIO_sendmmsg. See BIO_recvmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_recvmmsg(
    b: *mut BIO,
    msg: *mut BIO_MSG,
    stride: usize,
    num_msg: usize,
    flags: u64,
    msgs_processed: *mut usize,
) -> c_int {
    put(msgs_processed, 0);
    ffi_entry!(BIO_recvmmsg, {
        let bio = bio_arg(b)?;
        mut_arg(msgs_processed, "msgs_processed")?;
        if let Some(c) = bio.custom() {
            // SAFETY: as in BIO_sendmmsg.
            return unsafe { c.recvmmsg(b, msg, stride, num_msg, flags, msgs_processed) };
        }
        // SAFETY: as for BIO_sendmmsg.
        let msgs = unsafe { MsgArray::new(msg, stride, num_msg)? };
        let n = bio.recvmmsg(&msgs, flags)?;
        put(msgs_processed, n);
        Ok(1)
    })
}

/// Writes a NUL-terminated string: a custom method's puts callback (-2 and an error if it
/// has none), or one datagram on a datagram socket; -2 on a pair. -1 for NULL arguments.
/// See BIO_puts(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_puts(bp: *mut BIO, buf: *const c_char) -> c_int {
    ffi_entry!(BIO_puts, -1, {
        let bio = bio_arg(bp)?;
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        if let Some(c) = bio.custom() {
            // SAFETY: bp is this BIO's handle and buf the caller's non-NULL string.
            return Ok(custom_ret(unsafe { c.puts(bp, buf) }, "BIO_puts"));
        }
        if bio.dgram().is_err() && !bio.is_stream() {
            return Ok(custom_ret(
                Err(Error::unsupported(format!(
                    "BIO_puts is not supported on a {} BIO",
                    bio.name()
                ))),
                "BIO_puts",
            ));
        }
        // SAFETY: non-NULL, and the caller passes a NUL-terminated string (BIO_puts(3)).
        let s = unsafe { std::ffi::CStr::from_ptr(buf) };
        Ok(bio.write(s.to_bytes())? as c_int)
    })
}

/// Reads a line of at most `size - 1` bytes (with its newline) and NUL-terminates it: from a
/// memory BIO, through a BIO_f_buffer (from the BIO after it, a byte at a time), or through a
/// custom method's gets callback; -2 (and an error) on other BIOs (the datagram BIOs, an SSL
/// BIO, a custom method without gets). See BIO_gets(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_gets(bp: *mut BIO, buf: *mut c_char, size: c_int) -> c_int {
    ffi_entry!(BIO_gets, -1, {
        let bio = bio_arg(bp)?;
        if bio.file().is_some() {
            return super::file::file_gets(bio, buf, size);
        }
        if let Some(m) = bio.mem() {
            if size < 0 {
                return Err(Error::invalid("negative size"));
            }
            if size == 0 {
                return Ok(0);
            }
            let buf = crate::ffi::slice_arg_mut(buf.cast(), size as usize, "buf")?;
            let n = m.gets(&mut buf[..size as usize - 1]);
            buf[n] = 0;
            bio.clear_retry();
            return Ok(n as c_int);
        }
        if bio.type_id() == BIO_TYPE_BUFFER {
            if size <= 0 {
                return Ok(0);
            }
            let buf = crate::ffi::slice_arg_mut(buf.cast(), size as usize, "buf")?;
            let n = bio.gets_through(&mut buf[..size as usize - 1])?;
            buf[n] = 0;
            return Ok(n as c_int);
        }
        let Some(c) = bio.custom() else {
            return Ok(custom_ret(
                Err(Error::unsupported(format!(
                    "BIO_gets is not supported on a {} BIO",
                    bio.name()
                ))),
                "BIO_gets",
            ));
        };
        if buf.is_null() && size > 0 {
            return Err(Error::null("buf"));
        }
        // SAFETY: bp is this BIO's handle and buf the caller's buffer of `size` bytes.
        Ok(custom_ret(unsafe { c.gets(bp, buf, size) }, "BIO_gets"))
    })
}
