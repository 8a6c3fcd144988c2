//! BIO lifecycle and chains: BIO_new and the BIO_new_* constructors, BIO_free(_all),
//! BIO_up_ref, BIO_push, BIO_pop, BIO_next, BIO_find_type.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use super::BIO_METHOD;
use super::meth::{MethodRef, method_arg};
use crate::bio::acpt::METHOD_ACCEPT;
use crate::bio::bpair::BytePair;
use crate::bio::conn::METHOD_CONNECT;
use crate::bio::consts::*;
use crate::bio::pair::PairEnd;
use crate::bio::{Bio, METHOD_BIO, METHOD_DGRAM, METHOD_DGRAM_PAIR, METHOD_SOCKET};
use crate::error::*;
use crate::ffi::{
    BIO, bio_arc, bio_arg, bio_into_handle, bio_release, ffi_entry, guard_with, mut_arg, opt_cstr,
    put,
};

/// A connect BIO for `host_port` (`host:port`, `[v6]:port` or a host alone; NULL leaves
/// both unset, as OpenSSL). Nothing is resolved or connected before BIO_do_connect or the
/// first read/write. NULL and BIO_R_AMBIGUOUS/MALFORMED_HOST_OR_SERVICE for a string
/// BIO_parse_hostserv refuses. See BIO_new_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_connect(host_port: *const c_char) -> *mut BIO {
    ffi_entry!(BIO_new_connect, {
        let b = Bio::new(&METHOD_CONNECT);
        if let Some(s) = opt_cstr(host_port, "host_port")? {
            b.conn().expect("connect kind").set_hostname(s)?;
        }
        Ok(bio_into_handle(b))
    })
}

/// An accept BIO for `host_port` (`[host:]port`; `*` or an empty host means any address,
/// port 0 an ephemeral one). NULL leaves both unset, as OpenSSL. Nothing is bound before
/// the first BIO_do_accept. NULL and an error for a string BIO_parse_hostserv refuses.
/// See BIO_new_accept(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_accept(host_port: *const c_char) -> *mut BIO {
    ffi_entry!(BIO_new_accept, {
        let b = Bio::new(&METHOD_ACCEPT);
        if let Some(s) = opt_cstr(host_port, "host_port")? {
            b.acceptor().expect("accept kind").set_name(s)?;
        }
        Ok(bio_into_handle(b))
    })
}

/// A socket BIO over the connected stream socket `fd`; BIO_CLOSE closes it on free.
/// NULL and an error for a negative fd. See BIO_new_socket(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_socket(sock: c_int, close_flag: c_int) -> *mut BIO {
    ffi_entry!(BIO_new_socket, {
        let b = Bio::new(&METHOD_SOCKET);
        b.sock()
            .expect("socket kind")
            .set_fd(sock, close_flag != 0)?;
        Ok(bio_into_handle(b))
    })
}

/// A read-only memory BIO holding `len` bytes of `buf` (`len` -1: a NUL-terminated string).
/// The bytes are copied, so `buf` need not outlive the BIO (OpenSSL keeps the pointer).
/// Reads of the drained BIO return 0 (end of data); writes fail. See BIO_new_mem_buf(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_mem_buf(buf: *const c_void, len: c_int) -> *mut BIO {
    ffi_entry!(BIO_new_mem_buf, {
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        let bytes = if len < 0 {
            // SAFETY: non-NULL, and with len < 0 the caller passes a NUL-terminated string.
            unsafe { std::ffi::CStr::from_ptr(buf.cast()) }.to_bytes()
        } else {
            crate::ffi::slice_arg(buf, len as usize, "buf")?
        };
        Ok(bio_into_handle(Bio::new_mem_buf(bytes)))
    })
}

/// Creates two joined BIO_s_bio halves; 0 for the default 17 KiB write buffer. Returns 1
/// and sets both out-pointers, or 0 (both NULL). See BIO_new_bio_pair(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_bio_pair(
    bio1: *mut *mut BIO,
    writebuf1: usize,
    bio2: *mut *mut BIO,
    writebuf2: usize,
) -> c_int {
    put(bio1, std::ptr::null_mut());
    put(bio2, std::ptr::null_mut());
    ffi_entry!(BIO_new_bio_pair, {
        let o1 = mut_arg(bio1, "bio1")?;
        let o2 = mut_arg(bio2, "bio2")?;
        let a = Bio::new(&METHOD_BIO);
        let b = Bio::new(&METHOD_BIO);
        let (pa, pb) = (a.byte_pair().expect("pair"), b.byte_pair().expect("pair"));
        if writebuf1 != 0 {
            pa.set_write_buf_size(writebuf1)?;
        }
        if writebuf2 != 0 {
            pb.set_write_buf_size(writebuf2)?;
        }
        BytePair::make_pair(pa, pb)?;
        *o1 = bio_into_handle(a);
        *o2 = bio_into_handle(b);
        Ok(1)
    })
}

/// Appends `append` (with whatever follows it) to the end of `b`'s chain and returns `b`;
/// with `b` NULL, returns `append`. References are unchanged: a chain does not own its BIOs
/// (BIO_free_all frees them). See BIO_push(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_push(b: *mut BIO, append: *mut BIO) -> *mut BIO {
    if b.is_null() {
        return append;
    }
    ffi_entry!(BIO_push, {
        let head = bio_arc(b)?;
        let append = (!append.is_null()).then(|| bio_arc(append)).transpose()?;
        Bio::push_chain(&head, append.as_ref())?;
        if let Some(c) = head.custom() {
            // SAFETY: b is this BIO's handle; BIO_CTRL_PUSH is informational (BIO_push(3)).
            let _ = unsafe { c.ctrl(b, BIO_CTRL_PUSH, 0, std::ptr::null_mut()) };
        }
        Ok(b)
    })
}

/// Takes `b` out of its chain (its neighbours are joined) and returns the BIO that followed
/// it, or NULL. References are unchanged. See BIO_pop(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_pop(b: *mut BIO) -> *mut BIO {
    if b.is_null() {
        return std::ptr::null_mut();
    }
    ffi_entry!(BIO_pop, {
        let bio = bio_arg(b)?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle; BIO_CTRL_POP is informational (BIO_pop(3)).
            let _ = unsafe { c.ctrl(b, BIO_CTRL_POP, 0, b.cast()) };
        }
        Ok(bio
            .pop_chain()
            .map_or(std::ptr::null_mut(), |n| Arc::as_ptr(&n) as *mut BIO))
    })
}

/// The BIO after `b` in its chain, or NULL (also for NULL). See BIO_next(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_next(b: *mut BIO) -> *mut BIO {
    if b.is_null() {
        return std::ptr::null_mut();
    }
    ffi_entry!(BIO_next, {
        Ok(bio_arg(b)?
            .next_bio()
            .map_or(std::ptr::null_mut(), |n| Arc::as_ptr(&n) as *mut BIO))
    })
}

/// The first BIO of `b`'s chain (from `b` on) of type `type`: an exact type when it has a
/// number in its low byte, else any BIO with all of its class bits. NULL if none.
/// See BIO_find_type(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_find_type(b: *mut BIO, r#type: c_int) -> *mut BIO {
    if b.is_null() {
        return std::ptr::null_mut();
    }
    ffi_entry!(BIO_find_type, {
        Ok(Bio::find_type(&bio_arc(b)?, r#type)
            .map_or(std::ptr::null_mut(), |x| Arc::as_ptr(&x) as *mut BIO))
    })
}

/// Creates a BIO of the given method with one reference. For a BIO_meth_new method, its
/// `create` callback runs; if that returns 0, BIO_new returns NULL (ERR_R_INIT_FAIL queued)
/// and `destroy` is not called. NULL and an error on failure. See BIO_new(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new(r#type: *const BIO_METHOD) -> *mut BIO {
    ffi_entry!(BIO_new, {
        Ok(bio_into_handle(match method_arg(r#type)? {
            MethodRef::Builtin(m) => Bio::new(m),
            MethodRef::Custom(m) => Bio::new_custom(m)?,
        }))
    })
}

/// A datagram socket BIO over `fd`; `close_flag` BIO_CLOSE closes the fd on free.
/// See BIO_new_dgram(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_dgram(fd: c_int, close_flag: c_int) -> *mut BIO {
    ffi_entry!(BIO_new_dgram, {
        let b = Bio::new(&METHOD_DGRAM);
        b.dgram()?.set_fd(fd, close_flag != 0)?;
        Ok(bio_into_handle(b))
    })
}

/// Creates two linked datagram pair halves; 0 for a default buffer size. Returns 1 and sets
/// both out-pointers, or 0 (out-pointers set to NULL). See BIO_new_bio_dgram_pair(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_bio_dgram_pair(
    bio1: *mut *mut BIO,
    writebuf1: usize,
    bio2: *mut *mut BIO,
    writebuf2: usize,
) -> c_int {
    put(bio1, std::ptr::null_mut());
    put(bio2, std::ptr::null_mut());
    ffi_entry!(BIO_new_bio_dgram_pair, {
        let o1 = mut_arg(bio1, "bio1")?;
        let o2 = mut_arg(bio2, "bio2")?;
        let a = Bio::new(&METHOD_DGRAM_PAIR);
        let b = Bio::new(&METHOD_DGRAM_PAIR);
        a.pair()?.set_write_buf_size(writebuf1)?;
        b.pair()?.set_write_buf_size(writebuf2)?;
        PairEnd::make_pair(a.pair()?, b.pair()?)?;
        *o1 = bio_into_handle(a);
        *o2 = bio_into_handle(b);
        Ok(1)
    })
}

/// Drops one reference; the BIO is destroyed with the last. Returns 1, or 0 for NULL.
/// See BIO_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_free(a: *mut BIO) -> c_int {
    if a.is_null() {
        return 0;
    }
    guard_with("BIO_free", 0, || {
        bio_release(a);
        Ok(1)
    })
}

/// Frees `a` and the BIOs after it in its chain, stopping after the first that had other
/// references (as OpenSSL). NULL is a no-op. See BIO_free_all(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_free_all(a: *mut BIO) {
    if a.is_null() {
        return;
    }
    guard_with("BIO_free_all", (), || {
        let mut cur = a;
        loop {
            let arc = bio_arc(cur)?;
            let refs = Arc::strong_count(&arc) - 1;
            let next = arc.next_bio().map(|n| Arc::as_ptr(&n) as *mut BIO);
            drop(arc);
            bio_release(cur);
            match next {
                Some(n) if refs <= 1 => cur = n,
                _ => return Ok(()),
            }
        }
    })
}

/// BIO_free without a result. See BIO_vfree(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_vfree(a: *mut BIO) {
    if a.is_null() {
        return;
    }
    guard_with("BIO_vfree", (), || {
        bio_release(a);
        Ok(())
    })
}

/// Adds a reference. Returns 1, or 0 for NULL. See BIO_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_up_ref(a: *mut BIO) -> c_int {
    ffi_entry!(BIO_up_ref, {
        std::mem::forget(bio_arc(a)?);
        Ok(1)
    })
}
