//! ERR_*: the calling thread's error queue, as OpenSSL 3 presents it.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_ulong, c_void};

use crate::error::{self, Entry};

/// Removes the oldest error from this thread's queue and returns its packed code (0 if empty).
/// See ERR_get_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_get_error() -> c_ulong {
    error::pop_front().map_or(0, |e| e.code as c_ulong)
}

/// Returns the oldest error's code without removing it (0 if empty). See ERR_peek_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_peek_error() -> c_ulong {
    error::peek_front().map_or(0, |e| e.code as c_ulong)
}

/// Returns the newest error's code without removing it (0 if empty). See ERR_peek_last_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_peek_last_error() -> c_ulong {
    error::peek_back().map_or(0, |e| e.code as c_ulong)
}

/// Empties this thread's error queue. See ERR_clear_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_clear_error() {
    error::clear();
}

/// Formats `e` as `error:XXXXXXXX:library:function:reason` into `buf` (at most `len` bytes,
/// always NUL-terminated when `len > 0`). NULL `buf` does nothing. See ERR_error_string_n(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_error_string_n(e: c_ulong, buf: *mut c_char, len: usize) {
    if buf.is_null() || len == 0 {
        return;
    }
    let s = format_code(e as u32, "");
    copy_cstr(&s, buf, len);
}

thread_local! {
    static STRING_BUF: RefCell<[c_char; 256]> = const { RefCell::new([0; 256]) };
}

/// Formats `e` into `buf`, which must hold 256 bytes; with NULL `buf`, into a per-thread buffer
/// that the next call overwrites. Returns the buffer. See ERR_error_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_error_string(e: c_ulong, buf: *mut c_char) -> *mut c_char {
    if !buf.is_null() {
        copy_cstr(&format_code(e as u32, ""), buf, 256);
        return buf;
    }
    STRING_BUF.with(|b| {
        let p = b.borrow_mut().as_mut_ptr();
        copy_cstr(&format_code(e as u32, ""), p, 256);
        p
    })
}

thread_local! {
    static REASON_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The reason text of `e`, or NULL for a code with no text. The string stays valid until this
/// thread's next call. See ERR_reason_error_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_reason_error_string(e: c_ulong) -> *const c_char {
    match error::reason_text(e as u32) {
        Some(t) => REASON_BUF.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            b.extend_from_slice(t.as_bytes());
            b.push(0);
            b.as_ptr().cast()
        }),
        None => std::ptr::null(),
    }
}

/// The library name of `e` (static string). See ERR_lib_error_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_lib_error_string(e: c_ulong) -> *const c_char {
    let name = match error::lib_of(e as u32) {
        error::ERR_LIB_SYS => c"system library",
        error::ERR_LIB_BIO => c"BIO routines",
        error::ERR_LIB_SSL => c"SSL routines",
        error::ERR_LIB_CRYPTO => c"common libcrypto routines",
        error::ERR_LIB_X509 => c"X509 routines",
        error::ERR_LIB_PEM => c"PEM routines",
        _ => return std::ptr::null(),
    };
    name.as_ptr()
}

/// The callback type of ERR_print_errors_cb: one call per line, non-positive return stops.
pub type ErrPrintCb =
    Option<unsafe extern "C" fn(str: *const c_char, len: usize, u: *mut c_void) -> c_int>;

/// Hands each queued error, oldest first, to `cb` as one formatted line and empties the
/// queue. NULL `cb` just empties it. See ERR_print_errors_cb(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_print_errors_cb(cb: ErrPrintCb, u: *mut c_void) {
    while let Some(e) = error::pop_front() {
        let Some(cb) = cb else { continue };
        let mut line = print_line(&e).into_bytes();
        let len = line.len();
        line.push(0);
        // SAFETY: `line` is NUL-terminated and lives across the call; `u` is the caller's.
        if unsafe { cb(line.as_ptr().cast(), len, u) } <= 0 {
            break;
        }
    }
}

/// Writes each queued error, oldest first, as one line to `fp` and empties the queue.
/// NULL `fp` just empties it. See ERR_print_errors_fp(3).
#[unsafe(no_mangle)]
pub extern "C" fn ERR_print_errors_fp(fp: *mut libc::FILE) {
    while let Some(e) = error::pop_front() {
        if fp.is_null() {
            continue;
        }
        let line = print_line(&e);
        // SAFETY: `fp` is a FILE* the caller opened; the slice is valid for its length.
        unsafe {
            libc::fwrite(line.as_ptr().cast(), 1, line.len(), fp);
        }
    }
    if !fp.is_null() {
        // SAFETY: as above.
        unsafe { libc::fflush(fp) };
    }
}

fn format_code(code: u32, func: &str) -> String {
    format!(
        "error:{code:08X}:{}:{func}:{}",
        error::lib_name(error::lib_of(code)),
        error::reason_string(code)
    )
}

/// `thread-id:error:code:library:function:reason:detail\n`, OpenSSL 3's layout minus file/line.
fn print_line(e: &Entry) -> String {
    // SAFETY: pthread_self has no preconditions.
    let tid = unsafe { libc::pthread_self() } as u64;
    format!(
        "{tid:X}:{}:{}\n",
        format_code(e.code, e.func),
        e.data.as_deref().unwrap_or("")
    )
}

fn copy_cstr(s: &str, buf: *mut c_char, len: usize) {
    let n = s.len().min(len - 1);
    // SAFETY: the caller gave `len` writable bytes at `buf`; we write n + 1 <= len of them.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
}
