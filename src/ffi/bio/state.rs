//! BIO flags and state: retry flags and reasons, type and name, the non-fatal error
//! predicates, and a custom BIO's data, init and shutdown fields.

use std::ffi::{c_char, c_int, c_long, c_uint, c_void};

use crate::bio::consts::*;
use crate::error::*;
use crate::ffi::{BIO, bio_arg, ffi_entry, guard_with};

/// Why the last I/O wants a retry of a special kind: BIO_RR_CONNECT (a connect BIO's
/// connect in progress), BIO_RR_ACCEPT (an accept BIO with nothing to accept), or 0
/// (also for NULL). See BIO_get_retry_reason(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_retry_reason(bio: *mut BIO) -> c_int {
    if bio.is_null() {
        return 0;
    }
    ffi_entry!(BIO_get_retry_reason, { Ok(bio_arg(bio)?.retry_reason()) })
}

/// Sets the retry reason (for BIO implementations). NULL is a no-op.
/// See BIO_set_retry_reason(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_retry_reason(bio: *mut BIO, reason: c_int) {
    if bio.is_null() {
        return;
    }
    guard_with("BIO_set_retry_reason", (), || {
        bio_arg(bio)?.set_retry_reason(reason);
        Ok(())
    })
}

/// Tests flag bits (BIO_should_retry etc. are macros over this). See BIO_test_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_test_flags(b: *const BIO, flags: c_int) -> c_int {
    ffi_entry!(BIO_test_flags, {
        Ok(bio_arg(b as *mut BIO)?.flags() & flags)
    })
}

/// Sets flag bits. NULL is a no-op. See BIO_set_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_flags(b: *mut BIO, flags: c_int) {
    ffi_entry!(BIO_set_flags, {
        bio_arg(b)?.set_flags(flags);
        Ok(())
    })
}

/// Clears flag bits. NULL is a no-op. See BIO_clear_flags(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_clear_flags(b: *mut BIO, flags: c_int) {
    ffi_entry!(BIO_clear_flags, {
        bio_arg(b)?.clear_flags(flags);
        Ok(())
    })
}

/// The BIO's type id (BIO_TYPE_*), or 0 for NULL. See BIO_method_type(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_method_type(b: *const BIO) -> c_int {
    ffi_entry!(BIO_method_type, { Ok(bio_arg(b as *mut BIO)?.type_id()) })
}

/// The BIO's method name (static string, or the name given to BIO_meth_new, valid while the
/// BIO lives), or NULL. See BIO_method_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_method_name(b: *const BIO) -> *const c_char {
    ffi_entry!(BIO_method_name, {
        let bio = bio_arg(b as *mut BIO)?;
        if let Some(c) = bio.custom() {
            return Ok(c.method.name.as_ptr());
        }
        Ok(match bio.type_id() {
            BIO_TYPE_DGRAM => c"datagram socket".as_ptr(),
            BIO_TYPE_DGRAM_PAIR => c"BIO dgram pair".as_ptr(),
            BIO_TYPE_SOCKET => c"socket".as_ptr(),
            BIO_TYPE_MEM => c"memory buffer".as_ptr(),
            BIO_TYPE_BIO => c"BIO pair".as_ptr(),
            BIO_TYPE_BUFFER => c"buffer".as_ptr(),
            BIO_TYPE_SSL => c"ssl".as_ptr(),
            BIO_TYPE_CONNECT => c"socket connect".as_ptr(),
            BIO_TYPE_ACCEPT => c"socket accept".as_ptr(),
            _ => c"BIO dgram mem".as_ptr(),
        })
    })
}

/// Whether a packed error code means "try again later" (a non-fatal errno or
/// BIO_R_NON_FATAL). See BIO_err_is_non_fatal(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_err_is_non_fatal(errcode: c_uint) -> c_int {
    if is_system(errcode) {
        return non_fatal_errno(reason_of(errcode) as c_int) as c_int;
    }
    (lib_of(errcode) == ERR_LIB_BIO && reason_of(errcode) == BIO_R_NON_FATAL) as c_int
}

/// Whether an errno from a socket call is transient. See BIO_sock_non_fatal_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_non_fatal_error(error: c_int) -> c_int {
    non_fatal_errno(error) as c_int
}

/// As BIO_sock_non_fatal_error, for datagram sockets. See BIO_dgram_non_fatal_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_non_fatal_error(error: c_int) -> c_int {
    non_fatal_errno(error) as c_int
}

/// Whether a socket call's result `i` (with errno) means retry. See BIO_sock_should_retry(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_should_retry(i: c_int) -> c_int {
    if i == 0 || i == -1 {
        non_fatal_errno(crate::sys::errno()) as c_int
    } else {
        0
    }
}

/// Stores the method's private pointer in a custom BIO. Fails (error queued) on a built-in
/// BIO or NULL. See BIO_set_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_data(a: *mut BIO, ptr: *mut c_void) {
    ffi_entry!(BIO_set_data, {
        bio_arg(a)?.as_custom()?.set_data(ptr);
        Ok(())
    })
}

/// The pointer BIO_set_data stored (NULL until then, and for a built-in BIO or NULL, with an
/// error). See BIO_get_data(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_data(a: *mut BIO) -> *mut c_void {
    ffi_entry!(BIO_get_data, { Ok(bio_arg(a)?.as_custom()?.data()) })
}

/// Marks a custom BIO initialised (non-zero) or not: its read, write, puts, gets, sendmmsg and
/// recvmmsg fail with BIO_R_UNINITIALIZED until it is. A method without a create callback
/// starts initialised. Fails (error queued) on a built-in BIO. See BIO_set_init(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_init(a: *mut BIO, init: c_int) {
    ffi_entry!(BIO_set_init, {
        bio_arg(a)?.as_custom()?.set_init(init);
        Ok(())
    })
}

/// The value BIO_set_init stored; 1 for a built-in BIO, 0 for NULL. See BIO_get_init(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_init(a: *mut BIO) -> c_int {
    ffi_entry!(BIO_get_init, {
        Ok(bio_arg(a)?.custom().map_or(1, |c| c.init()))
    })
}

/// Sets a custom BIO's shutdown flag (whether its destroy should release what it wraps);
/// on a built-in BIO, its close flag (BIO_set_close). See BIO_set_shutdown(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_shutdown(a: *mut BIO, shut: c_int) {
    ffi_entry!(BIO_set_shutdown, {
        let bio = bio_arg(a)?;
        match bio.custom() {
            Some(c) => c.set_shutdown(shut),
            None => {
                super::ctrl::ctrl(a, BIO_CTRL_SET_CLOSE, shut as c_long, std::ptr::null_mut())?;
            }
        }
        Ok(())
    })
}

/// A custom BIO's shutdown flag (1 after BIO_new); a built-in BIO's close flag. 0 for NULL.
/// See BIO_get_shutdown(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_shutdown(a: *mut BIO) -> c_int {
    ffi_entry!(BIO_get_shutdown, {
        let bio = bio_arg(a)?;
        match bio.custom() {
            Some(c) => Ok(c.shutdown()),
            None => Ok(super::ctrl::ctrl(a, BIO_CTRL_GET_CLOSE, 0, std::ptr::null_mut())? as c_int),
        }
    })
}

/// The errnos BIO_sock_non_fatal_error calls transient.
fn non_fatal_errno(error: c_int) -> bool {
    crate::sys::is_retry_errno(error)
}
