//! The C entry points of the library's own measurements (osslquic extensions): lock hold
//! times, for `make bench` (see `sync`'s module note).

use std::ffi::{c_char, c_int};

use super::{ffi_entry, slice_arg_mut};
use crate::error::{ERR_R_UNSUPPORTED, Error};

/// Writes the lock figures gathered since the start (or the last OSSLQUIC_lock_stats_reset)
/// into `buf` as text, NUL-terminated and cut to `len - 1` bytes: one line per purpose,
/// `NAME HOLD_NS WAIT_NS COUNT`, where NAME (which may contain spaces) says what the lock was
/// taken for, HOLD_NS is the time it was held, WAIT_NS the time spent waiting to get it and
/// COUNT the number of acquisitions. Returns the length of the whole text (as snprintf(3)
/// does; `buf` may be NULL when `len` is 0), or 0 with an error queued when the library was
/// built without the `lock-tracking` cargo feature (the default: figures cost time).
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_lock_stats(buf: *mut c_char, len: usize) -> usize {
    ffi_entry!(OSSLQUIC_lock_stats, {
        let text = crate::sync::lock_stats().ok_or_else(not_built)?;
        let out = slice_arg_mut(buf.cast(), len, "buf")?;
        if let Some(room) = out.len().checked_sub(1) {
            let n = text.len().min(room);
            out[..n].copy_from_slice(&text.as_bytes()[..n]);
            out[n] = 0;
        }
        Ok(text.len())
    })
}

/// Sets every lock figure to zero (the start of a measured window). Returns 1, or 0 with an
/// error queued without the `lock-tracking` feature.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_lock_stats_reset() -> c_int {
    ffi_entry!(OSSLQUIC_lock_stats_reset, {
        if !crate::sync::reset_lock_stats() {
            return Err(not_built());
        }
        Ok(1)
    })
}

fn not_built() -> Error {
    Error::ssl(ERR_R_UNSUPPORTED)
        .with("lock figures need the library built with the lock-tracking cargo feature")
}
