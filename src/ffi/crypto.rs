//! The few libcrypto calls the programs we serve make: memory we hand out, library init.

use std::ffi::{c_char, c_int, c_void};

/// Allocates `num` bytes with the C allocator (free with OPENSSL_free). `file`/`line` are
/// ignored. Returns NULL on failure. See OPENSSL_malloc(3); this is CRYPTO_malloc.
#[unsafe(no_mangle)]
pub extern "C" fn CRYPTO_malloc(num: usize, _file: *const c_char, _line: c_int) -> *mut c_void {
    malloc(num)
}

/// Allocates `num` zeroed bytes. See OPENSSL_zalloc(3); this is CRYPTO_zalloc.
#[unsafe(no_mangle)]
pub extern "C" fn CRYPTO_zalloc(num: usize, _file: *const c_char, _line: c_int) -> *mut c_void {
    // SAFETY: calloc has no preconditions.
    unsafe { libc::calloc(1, num.max(1)) }
}

/// Frees memory from CRYPTO_malloc or returned by this library (strings, buffers). NULL is a
/// no-op. See OPENSSL_free(3); this is CRYPTO_free.
#[unsafe(no_mangle)]
pub extern "C" fn CRYPTO_free(p: *mut c_void, _file: *const c_char, _line: c_int) {
    // SAFETY: `p` is NULL or came from the C allocator (every pointer we hand out does).
    unsafe { libc::free(p) }
}

/// Duplicates a C string with the C allocator. See OPENSSL_strdup(3).
#[unsafe(no_mangle)]
pub extern "C" fn CRYPTO_strdup(
    s: *const c_char,
    _file: *const c_char,
    _line: c_int,
) -> *mut c_char {
    if s.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: non-NULL NUL-terminated string from the caller.
    unsafe { libc::strdup(s) }
}

/// Library initialisation: nothing to do, always succeeds. See OPENSSL_init_ssl(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_init_ssl(_opts: u64, _settings: *const c_void) -> c_int {
    1
}

/// Library initialisation: nothing to do, always succeeds. See OPENSSL_init_crypto(3).
#[unsafe(no_mangle)]
pub extern "C" fn OPENSSL_init_crypto(_opts: u64, _settings: *const c_void) -> c_int {
    1
}

/// Copies a Rust string into memory the caller frees with OPENSSL_free.
pub(crate) fn c_string(s: &str) -> *mut c_char {
    let p = malloc(s.len() + 1).cast::<u8>();
    if !p.is_null() {
        // SAFETY: `p` has s.len() + 1 writable bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
            *p.add(s.len()) = 0;
        }
    }
    p.cast()
}

/// Resizes memory from CRYPTO_malloc (NULL: allocates; `num` 0: frees and returns NULL, as
/// OpenSSL's). Returns NULL on failure, leaving `p` allocated. See OPENSSL_realloc(3).
#[unsafe(no_mangle)]
pub extern "C" fn CRYPTO_realloc(
    p: *mut c_void,
    num: usize,
    _file: *const c_char,
    _line: c_int,
) -> *mut c_void {
    if num == 0 && !p.is_null() {
        // SAFETY: `p` came from the C allocator (every pointer we hand out does).
        unsafe { libc::free(p) };
        return std::ptr::null_mut();
    }
    // SAFETY: `p` is NULL or came from the C allocator; realloc has no other precondition.
    unsafe { libc::realloc(p, num.max(1)) }
}

/// What CRYPTO_malloc hands out: `num` bytes (at least 1) from the C allocator, or NULL.
pub(crate) fn malloc(num: usize) -> *mut c_void {
    // SAFETY: malloc has no preconditions.
    unsafe { libc::malloc(num.max(1)) }
}
