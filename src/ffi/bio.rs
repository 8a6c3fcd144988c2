//! BIO_* entry points: methods (built-in and BIO_meth_*), lifecycle, I/O, BIO_ctrl dispatch,
//! batches, zero-copy API.

use std::collections::BTreeSet;
use std::ffi::{CString, c_char, c_int, c_long, c_uint, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use super::{
    BIO, bio_arc, bio_arg, bio_into_handle, bio_release, ffi_entry, guard_with, mut_arg, opt_cstr,
    put, ref_arg,
};
use crate::bio::acpt::{METHOD_ACCEPT, Name};
use crate::bio::addr::BioAddr;
use crate::bio::bpair::BytePair;
use crate::bio::conn::METHOD_CONNECT;
use crate::bio::consts::*;
use crate::bio::custom::{CustomMethod, ReadExFn, WriteExFn};
use crate::bio::filter::METHOD_SSL;
use crate::bio::msg::{BIO_ADDR, BIO_MSG, BIO_POLL_DESCRIPTOR, MsgArray};
use crate::bio::pair::PairEnd;
use crate::bio::zc::{RawBuf, ReadAllocCb, ReadFreeCb, WriteDoneCb};
use crate::bio::{
    Bio, BioMethod, METHOD_BIO, METHOD_BUFFER, METHOD_DGRAM, METHOD_DGRAM_MEM, METHOD_DGRAM_PAIR,
    METHOD_MEM, METHOD_SOCKET,
};
use crate::error::*;

/// The opaque C type behind `BIO_METHOD *`.
#[allow(non_camel_case_types)]
pub struct bio_method_st {
    _opaque: [u8; 0],
}
pub type BIO_METHOD = bio_method_st;

fn method_handle(m: &'static BioMethod) -> *const BIO_METHOD {
    m as *const BioMethod as *const BIO_METHOD
}

/// The methods BIO_meth_new made and BIO_meth_free has not freed, by handle address: a
/// `BIO_METHOD *` of ours is either one of the static built-ins or in here (anything else is
/// refused instead of being dereferenced). Each handle owns one reference of an
/// `Arc<CustomMethod>`; every BIO of the method holds another, so BIO_meth_free while BIOs
/// live is safe.
static CUSTOM_METHODS: std::sync::Mutex<BTreeSet<usize>> = std::sync::Mutex::new(BTreeSet::new());

fn custom_methods() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    // Nothing panics while holding it; a poisoned set is still consistent.
    CUSTOM_METHODS.lock().unwrap_or_else(|e| e.into_inner())
}

enum MethodRef {
    Builtin(&'static BioMethod),
    Custom(Arc<CustomMethod>),
}

fn method_arg(m: *const BIO_METHOD) -> Result<MethodRef> {
    if m.is_null() {
        return Err(Error::null("type"));
    }
    if let Some(b) = [
        &METHOD_DGRAM,
        &METHOD_DGRAM_PAIR,
        &METHOD_DGRAM_MEM,
        &METHOD_SOCKET,
        &METHOD_MEM,
        &METHOD_BIO,
        &METHOD_BUFFER,
        &METHOD_CONNECT,
        &METHOD_ACCEPT,
        &crate::bio::METHOD_FILE,
        &METHOD_SSL,
    ]
    .into_iter()
    .find(|k| std::ptr::eq(*k as *const BioMethod as *const BIO_METHOD, m))
    {
        return Ok(MethodRef::Builtin(b));
    }
    let set = custom_methods();
    if !set.contains(&(m as usize)) {
        return Err(Error::unsupported(
            "BIO_METHOD is not one this library provides or BIO_meth_new made",
        ));
    }
    let p = m as *const CustomMethod;
    // SAFETY: registered handles come from Arc::into_raw and stay live while registered (the
    // set's lock is held, so BIO_meth_free cannot release it meanwhile).
    Ok(MethodRef::Custom(unsafe {
        Arc::increment_strong_count(p);
        Arc::from_raw(p)
    }))
}

/// A method made by BIO_meth_new, for its setters and getters.
fn custom_method_arg(m: *const BIO_METHOD) -> Result<Arc<CustomMethod>> {
    if m.is_null() {
        return Err(Error::null("biom"));
    }
    match method_arg(m)? {
        MethodRef::Custom(c) => Ok(c),
        MethodRef::Builtin(b) => Err(Error::unsupported(format!(
            "the {} method is built in: BIO_meth_* applies to methods made by BIO_meth_new",
            b.name
        ))),
    }
}

/// OpenSSL's failure values for a custom BIO's I/O: -2 when the method lacks the callback
/// (BIO_R_UNSUPPORTED_METHOD), -1 otherwise; the error is queued under `func`.
fn custom_ret<T: From<i8>>(r: Result<T>, func: &'static str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            let v = if e.code == pack(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD) {
                -2
            } else {
                -1
            };
            e.queue(func);
            T::from(v)
        }
    }
}

fn opt_addr(p: *const BIO_ADDR) -> Option<BioAddr> {
    // SAFETY: a non-NULL BIO_ADDR pointer from C points at a BioAddr made by BIO_ADDR_new.
    unsafe { (p as *const BioAddr).as_ref() }.copied()
}

/// The datagram socket BIO method. See BIO_s_datagram(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_datagram() -> *const BIO_METHOD {
    method_handle(&METHOD_DGRAM)
}

/// The in-memory datagram pair method. See BIO_s_dgram_pair(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_dgram_pair() -> *const BIO_METHOD {
    method_handle(&METHOD_DGRAM_PAIR)
}

/// The single in-memory datagram queue method. See BIO_s_dgram_mem(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_dgram_mem() -> *const BIO_METHOD {
    method_handle(&METHOD_DGRAM_MEM)
}

/// The stream socket BIO method (TCP). See BIO_s_socket(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_socket() -> *const BIO_METHOD {
    method_handle(&METHOD_SOCKET)
}

/// The memory buffer method. See BIO_s_mem(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_mem() -> *const BIO_METHOD {
    method_handle(&METHOD_MEM)
}

/// The byte-stream BIO pair method (one half). See BIO_s_bio(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_bio() -> *const BIO_METHOD {
    method_handle(&METHOD_BIO)
}

/// The buffering filter. Here it buffers nothing: reads, writes and ctrls pass straight to
/// the next BIO of the chain (BIO_flush is then always complete); BIO_gets reads a line from
/// the next BIO. See BIO_f_buffer(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_f_buffer() -> *const BIO_METHOD {
    method_handle(&METHOD_BUFFER)
}

/// The SSL filter method: reads and writes go through the SSL attached with BIO_set_ssl,
/// which does its network I/O through its own BIOs (chained after this one). See
/// BIO_f_ssl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_f_ssl() -> *const BIO_METHOD {
    method_handle(&METHOD_SSL)
}

/// The connect BIO method: resolves a host and service, connects a TCP socket of its own,
/// then reads and writes it. See BIO_s_connect(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_connect() -> *const BIO_METHOD {
    method_handle(&METHOD_CONNECT)
}

/// The accept BIO method: binds and listens, then accepts connections as socket BIOs
/// chained after it. See BIO_s_accept(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_accept() -> *const BIO_METHOD {
    method_handle(&METHOD_ACCEPT)
}

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

/// BIO_ctrl with a `char **` out-argument: the pointer it stored, or NULL when the ctrl
/// returned <= 0 (BIO_get_conn_hostname, BIO_get_accept_port, ...). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ptr_ctrl(bp: *mut BIO, cmd: c_int, larg: c_long) -> *mut c_void {
    let mut p: *mut c_char = std::ptr::null_mut();
    if BIO_ctrl(bp, cmd, larg, (&mut p as *mut *mut c_char).cast()) <= 0 {
        return std::ptr::null_mut();
    }
    p.cast()
}

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
            super::slice_arg(buf, len as usize, "buf")?
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

/// How many bytes the other half of a BIO pair last failed to read (capped at the buffer
/// size), 0 once anything was written or read since. See BIO_ctrl_get_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_read_request(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_read_request, {
        Ok(BIO_ctrl(b, BIO_C_GET_READ_REQUEST, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Clears the read request BIO_ctrl_get_read_request reports. Returns 1, or 0 on a BIO that
/// is not a BIO pair half. See BIO_ctrl_reset_read_request(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_reset_read_request(b: *mut BIO) -> c_int {
    ffi_entry!(BIO_ctrl_reset_read_request, {
        Ok((BIO_ctrl(b, BIO_C_RESET_READ_REQUEST, 0, std::ptr::null_mut()) != 0) as c_int)
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
        match append.is_null() {
            true => {
                let mut last = head.clone();
                while let Some(n) = last.next_bio() {
                    last = n;
                }
                last.pop_next();
            }
            false => Bio::push(&head, &bio_arc(append)?),
        }
        // SSL BIOs of the chain take what now follows them as their SSL's network BIO
        // (BIO_CTRL_PUSH, bio_ssl.c).
        let mut cur = Some(head.clone());
        while let Some(x) = cur {
            if x.filter().is_some() {
                super::sslbio::pushed(&x);
            }
            cur = x.next_bio().filter(|n| !Arc::ptr_eq(n, &head));
        }
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
        if bio.filter().is_some() {
            // A popped SSL BIO's SSL lets go of its network BIOs (bio_ssl.c).
            super::sslbio::popped(bio);
        }
        Ok(bio
            .pop()
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
        let mut cur = Some(bio_arc(b)?);
        while let Some(bio) = cur {
            let t = bio.type_id();
            let hit = if r#type & BIO_TYPE_MASK != 0 {
                t == r#type
            } else {
                t & r#type != 0
            };
            if hit {
                return Ok(Arc::as_ptr(&bio) as *mut BIO);
            }
            cur = bio.next_bio();
        }
        Ok(std::ptr::null_mut())
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
    BIO_free(a);
}

/// Adds a reference. Returns 1, or 0 for NULL. See BIO_up_ref(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_up_ref(a: *mut BIO) -> c_int {
    ffi_entry!(BIO_up_ref, {
        std::mem::forget(bio_arc(a)?);
        Ok(1)
    })
}

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
        let buf = super::slice_arg_mut(data, dlen as usize, "data")?;
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
            let buf = super::slice_arg(data, dlen as usize, "data")?;
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
        let buf = super::slice_arg(data, dlen as usize, "data")?;
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
        let buf = super::slice_arg_mut(data, dlen, "data")?;
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
        let buf = super::slice_arg(data, dlen, "data")?;
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

/// Bytes of the next datagram waiting to be read (0 if none). See BIO_ctrl_pending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_pending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_pending, {
        Ok(BIO_ctrl(b, BIO_CTRL_PENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Bytes written but not yet sent (always 0 here: writes leave at once). See BIO_ctrl_wpending(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_wpending(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_wpending, {
        Ok(BIO_ctrl(b, BIO_CTRL_WPENDING, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// Largest datagram a pair half can accept now (0 if under the MTU). See
/// BIO_ctrl_get_write_guarantee(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl_get_write_guarantee(b: *mut BIO) -> usize {
    ffi_entry!(BIO_ctrl_get_write_guarantee, {
        Ok(BIO_ctrl(b, BIO_C_GET_WRITE_GUARANTEE, 0, std::ptr::null_mut()).max(0) as usize)
    })
}

/// BIO_ctrl with an int argument passed by address. See BIO_int_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_int_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, iarg: c_int) -> c_long {
    let mut i = iarg;
    BIO_ctrl(b, cmd, larg, (&mut i as *mut c_int).cast())
}

/// The control call behind most BIO macros. Unknown or unsupported commands return 0 with an
/// error queued. On a custom BIO every command goes to the method's ctrl and its result is
/// returned as is (-2 and an error if it has none). See BIO_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_ctrl(b: *mut BIO, cmd: c_int, larg: c_long, parg: *mut c_void) -> c_long {
    // OpenSSL returns -1 for a NULL BIO, and for BIO_get_fd without a descriptor.
    let fail = if cmd == BIO_C_GET_FD || b.is_null() {
        -1
    } else {
        0
    };
    guard_with("BIO_ctrl", fail, || {
        let bio = bio_arg(b)?;
        if let Some(c) = bio.custom() {
            // SAFETY: b is this BIO's handle; cmd, larg and parg are the caller's, for the
            // method's ctrl to interpret (BIO_ctrl(3)).
            return Ok(custom_ret(
                unsafe { c.ctrl(b, cmd, larg, parg) },
                "BIO_ctrl",
            ));
        }
        ctrl(bio, cmd, larg, parg)
    })
}

fn ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let unsupported = || {
        Err(Error::unsupported(format!(
            "BIO_ctrl {cmd} is not supported on a {} BIO",
            bio.name()
        )))
    };
    if bio.filter().is_some() {
        return super::sslbio::filter_ctrl(bio, cmd, larg, parg);
    }
    if bio.conn().is_some() {
        // Stream or datagram mode: the connect BIO's own commands first.
        return conn_ctrl(bio, cmd, larg, parg);
    }
    if bio.is_stream() {
        return stream_ctrl(bio, cmd, larg, parg);
    }
    match cmd {
        BIO_CTRL_FLUSH => return Ok(bio.flush()? as c_long),
        BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
            let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
            *out = if cmd == BIO_CTRL_GET_RPOLL_DESCRIPTOR {
                bio.rpoll()?
            } else {
                bio.wpoll()?
            };
            return Ok(1);
        }
        BIO_CTRL_WPENDING => return Ok(bio.queued_writes() as c_long),
        _ => {}
    }
    if let Ok(d) = bio.dgram() {
        return dgram_ctrl(bio, d, cmd, larg, parg);
    }
    let p = bio.pair()?;
    Ok(match cmd {
        BIO_CTRL_PENDING => p.pending() as c_long,
        BIO_CTRL_EOF => p.eof() as c_long,
        BIO_CTRL_RESET => {
            p.reset();
            1
        }
        BIO_CTRL_GET_CLOSE | BIO_CTRL_SET_CLOSE => 1,
        BIO_C_SET_WRITE_BUF_SIZE => {
            if larg < 0 {
                return Err(Error::invalid("negative buffer size"));
            }
            p.set_write_buf_size(larg as usize)?;
            1
        }
        BIO_C_GET_WRITE_BUF_SIZE => p.write_buf_size() as c_long,
        BIO_C_GET_WRITE_GUARANTEE => p.write_guarantee() as c_long,
        BIO_C_MAKE_BIO_PAIR => {
            let other = bio_arg(parg as *mut BIO)?;
            PairEnd::make_pair(p, other.pair()?)?;
            1
        }
        BIO_C_DESTROY_BIO_PAIR => {
            p.destroy_pair();
            1
        }
        BIO_CTRL_DGRAM_GET_MTU => p.mtu() as c_long,
        BIO_CTRL_DGRAM_SET_MTU => {
            if larg <= 0 {
                return Err(Error::invalid("MTU must be positive"));
            }
            p.set_mtu(larg as usize)?;
            1
        }
        BIO_CTRL_DGRAM_GET_CAPS => p.caps() as c_long,
        BIO_CTRL_DGRAM_SET_CAPS => {
            p.set_caps(larg as u32);
            1
        }
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS => p.effective_caps() as c_long,
        BIO_CTRL_DGRAM_GET_NO_TRUNC => p.no_trunc() as c_long,
        BIO_CTRL_DGRAM_SET_NO_TRUNC => {
            p.set_no_trunc(larg != 0);
            1
        }
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP => p.local_addr_cap() as c_long,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE => {
            *mut_arg(parg as *mut c_int, "parg")? = p.local_enabled() as c_int;
            1
        }
        BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE => {
            p.set_local_addr_enable(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_SET0_LOCAL_ADDR => {
            let a = parg as *mut BIO_ADDR;
            p.set_default_src(opt_addr(a));
            // Ownership passes to us (BIO_dgram_set0_local_addr): the copy is kept, free it.
            super::addr::BIO_ADDR_free(a);
            1
        }
        BIO_CTRL_DGRAM_DETECT_PEER_ADDR | BIO_CTRL_DGRAM_GET_PEER => 0,
        _ => return unsupported(),
    })
}

/// BIO_ctrl on the byte-stream kinds, with OpenSSL's results (bss_sock.c, bss_mem.c,
/// bss_bio.c): commands a kind does not know return 0 with nothing queued, as there.
fn stream_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let poll_out = |d: Result<BIO_POLL_DESCRIPTOR>| -> Result<c_long> {
        let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
        *out = d?;
        Ok(1)
    };
    if bio.file().is_some() {
        return super::file::file_ctrl(bio, cmd, larg, parg);
    }
    if bio.conn().is_some() {
        return conn_ctrl(bio, cmd, larg, parg);
    }
    if bio.acceptor().is_some() {
        return acpt_ctrl(bio, cmd, larg, parg);
    }
    if let Some(s) = bio.sock() {
        return Ok(match cmd {
            BIO_C_SET_FD => {
                let fd = *ref_arg(parg as *const c_int, "fd")?;
                s.set_fd(fd, larg != 0)?;
                bio.clear_flags(!0);
                1
            }
            BIO_C_GET_FD => {
                let fd = s.fd();
                if fd >= 0 {
                    put(parg as *mut c_int, fd);
                }
                fd as c_long
            }
            BIO_CTRL_GET_CLOSE => s.get_close() as c_long,
            BIO_CTRL_SET_CLOSE => {
                s.set_close(larg != 0);
                1
            }
            BIO_CTRL_DUP | BIO_CTRL_FLUSH => 1,
            BIO_CTRL_EOF => (bio.flags() & BIO_FLAGS_IN_EOF != 0) as c_long,
            BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
                return poll_out(bio.rpoll());
            }
            // OpenSSL's socket BIO has no BIO_C_SET_NBIO: BIO_set_nbio returns 0 and leaves
            // the fd as it is (use BIO_socket_nbio on the fd).
            _ => 0,
        });
    }
    if let Some(m) = bio.mem() {
        return Ok(match cmd {
            BIO_CTRL_RESET => {
                m.reset();
                1
            }
            BIO_CTRL_EOF => (m.pending() == 0) as c_long,
            BIO_C_SET_BUF_MEM_EOF_RETURN => {
                m.set_eof_return(larg as c_int);
                1
            }
            BIO_CTRL_INFO => {
                let (p, n) = m.data();
                put(parg as *mut *const u8, p);
                n as c_long
            }
            BIO_CTRL_GET_CLOSE => m.get_close() as c_long,
            BIO_CTRL_SET_CLOSE => {
                m.set_close(larg != 0);
                1
            }
            BIO_CTRL_PENDING => m.pending() as c_long,
            BIO_CTRL_WPENDING => 0,
            BIO_CTRL_DUP | BIO_CTRL_FLUSH => 1,
            _ => 0,
        });
    }
    if let Some(p) = bio.byte_pair() {
        return Ok(match cmd {
            BIO_C_SET_WRITE_BUF_SIZE => {
                if larg < 0 {
                    return Err(Error::invalid("negative buffer size"));
                }
                p.set_write_buf_size(larg as usize)?;
                1
            }
            BIO_C_GET_WRITE_BUF_SIZE => p.write_buf_size() as c_long,
            BIO_C_MAKE_BIO_PAIR => {
                let other = bio_arg(parg as *mut BIO)?;
                let o = other.byte_pair().ok_or_else(|| {
                    Error::invalid(format!(
                        "cannot pair a BIO pair half with a {} BIO",
                        other.name()
                    ))
                })?;
                BytePair::make_pair(p, o)?;
                1
            }
            BIO_C_DESTROY_BIO_PAIR => {
                p.destroy();
                1
            }
            BIO_C_GET_WRITE_GUARANTEE => p.write_guarantee() as c_long,
            BIO_C_GET_READ_REQUEST => p.read_request() as c_long,
            BIO_C_RESET_READ_REQUEST => {
                p.reset_read_request();
                1
            }
            BIO_C_SHUTDOWN_WR => {
                p.shutdown_wr();
                1
            }
            // bss_bio.c clears this half's buffer and returns 0.
            BIO_CTRL_RESET => {
                p.reset();
                0
            }
            BIO_CTRL_GET_CLOSE | BIO_CTRL_SET_CLOSE => 1,
            BIO_CTRL_PENDING => p.pending() as c_long,
            BIO_CTRL_WPENDING => p.wpending() as c_long,
            BIO_CTRL_FLUSH => 1,
            BIO_CTRL_EOF => p.eof() as c_long,
            _ => 0,
        });
    }
    // BIO_f_buffer: nothing is buffered here, so its own sizes are accepted and ignored;
    // everything else is the next BIO's answer (0 without one).
    match cmd {
        BIO_C_SET_BUFF_SIZE | BIO_CTRL_PUSH | BIO_CTRL_POP => return Ok(1),
        BIO_C_GET_BUFF_NUM_LINES => return Ok(0),
        _ => {}
    }
    match bio.next_bio() {
        Some(n) => {
            let r = BIO_ctrl(n.handle(), cmd, larg, parg);
            bio.clear_retry();
            bio.set_flags(n.flags() & (BIO_FLAGS_RWS | BIO_FLAGS_SHOULD_RETRY));
            Ok(r)
        }
        None => Ok(0),
    }
}

/// A state machine's outcome as BIO_do_connect/BIO_do_accept return it: the failure's value
/// (0 or -1, as OpenSSL's step) with the error queued.
fn step_result(r: std::result::Result<i32, (i32, Error)>) -> c_long {
    match r {
        Ok(v) => v as c_long,
        Err((v, e)) => {
            e.queue("BIO_do_handshake");
            v as c_long
        }
    }
}

/// A C string argument of a BIO_C_SET_CONNECT/BIO_C_SET_ACCEPT ctrl.
fn ctrl_str<'a>(parg: *mut c_void) -> Result<&'a str> {
    super::cstr_arg(parg as *const c_char, "parg")
}

/// BIO_ctrl on a connect BIO, following bss_conn.c `conn_ctrl` (unknown commands: 0).
fn conn_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let c = bio.conn().expect("connect kind");
    Ok(match cmd {
        BIO_CTRL_RESET => {
            c.reset(bio);
            0
        }
        BIO_C_DO_STATE_MACHINE => step_result(c.state(bio)),
        // bss_conn.c answers only with a non-NULL out-pointer (so BIO_get_conn_ip_family
        // and BIO_get_conn_mode, which pass NULL, return 0 there).
        BIO_C_GET_CONNECT if parg.is_null() => 0,
        BIO_C_GET_CONNECT => match larg {
            0..=2 => {
                let p = match larg {
                    0 => c.hostname_ptr(),
                    1 => c.port_ptr(),
                    _ => c.address_ptr().cast(),
                };
                put(parg as *mut *const c_char, p);
                1
            }
            3 => c.family() as c_long,
            4 => c.mode() as c_long,
            _ => 0,
        },
        BIO_C_SET_CONNECT if parg.is_null() => 1,
        BIO_C_SET_CONNECT => match larg {
            0 => {
                c.set_hostname(ctrl_str(parg)?)?;
                1
            }
            1 => {
                c.set_port(ctrl_str(parg)?)?;
                1
            }
            2 => {
                c.set_address(ref_arg(parg as *const BioAddr, "addr")?)?;
                1
            }
            3 => {
                c.set_family(*ref_arg(parg as *const c_int, "family")?);
                1
            }
            _ => 0,
        },
        BIO_C_SET_SOCK_TYPE => {
            c.set_sock_type(larg as c_int)?;
            1
        }
        BIO_C_GET_SOCK_TYPE => c.sock_type() as c_long,
        BIO_C_GET_DGRAM_BIO => {
            return Err(Error::unsupported(
                "BIO_get0_dgram_bio: a datagram connect BIO here is itself the datagram BIO",
            ));
        }
        BIO_C_SET_NBIO => {
            c.set_nbio(larg != 0);
            1
        }
        BIO_C_SET_CONNECT_MODE => {
            c.set_mode(larg as c_int);
            1
        }
        BIO_C_GET_FD => {
            if !c.init() {
                return Ok(-1);
            }
            put(parg as *mut c_int, c.fd());
            c.fd() as c_long
        }
        BIO_CTRL_GET_CLOSE => c.io().get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            c.io().set_close(larg != 0);
            1
        }
        BIO_CTRL_PENDING | BIO_CTRL_WPENDING => 0,
        BIO_CTRL_FLUSH | BIO_CTRL_DUP => 1,
        BIO_CTRL_EOF => (bio.flags() & BIO_FLAGS_IN_EOF != 0) as c_long,
        BIO_CTRL_GET_RPOLL_DESCRIPTOR | BIO_CTRL_GET_WPOLL_DESCRIPTOR => {
            let out = mut_arg(parg as *mut BIO_POLL_DESCRIPTOR, "desc")?;
            match bio.rpoll() {
                Ok(d) => {
                    *out = d;
                    1
                }
                Err(_) => 0,
            }
        }
        // Datagram mode, connected: the datagram socket's commands (peer, MTU, caps...).
        _ => match c.dgram_if_connected() {
            Some(d) => return dgram_ctrl(bio, d, cmd, larg, parg),
            None => 0,
        },
    })
}

/// BIO_ctrl on a datagram socket: a `BIO_s_datagram`, or a connect BIO in datagram mode once
/// connected.
fn dgram_ctrl(
    bio: &Bio,
    d: &crate::bio::dgram::DgramSock,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> Result<c_long> {
    let unsupported = || {
        Err(Error::unsupported(format!(
            "BIO_ctrl {cmd} is not supported on a {} BIO",
            bio.name()
        )))
    };
    let out_addr = |a: Option<BioAddr>| -> Result<c_long> {
        let out = mut_arg(parg as *mut BioAddr, "parg")?;
        match a {
            Some(a) => {
                *out = a;
                Ok(a.sockaddr_len().max(1) as c_long)
            }
            None => Ok(0),
        }
    };
    let int_out = |v: c_int| {
        put(parg as *mut c_int, v);
    };
    Ok(match cmd {
        BIO_C_SET_FD => {
            let fd = *ref_arg(parg as *const c_int, "fd")?;
            d.set_fd(fd, larg != 0)?;
            1
        }
        BIO_C_GET_FD => {
            let fd = d.fd();
            int_out(fd);
            fd as c_long
        }
        BIO_CTRL_GET_CLOSE => d.get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            d.set_close(larg != 0);
            1
        }
        BIO_C_SET_NBIO => {
            d.set_nbio(larg != 0)?;
            1
        }
        BIO_CTRL_PENDING => d.pending() as c_long,
        BIO_CTRL_EOF | BIO_CTRL_INFO | BIO_CTRL_RESET => 0,
        BIO_CTRL_DGRAM_CONNECT | BIO_CTRL_DGRAM_SET_PEER => {
            d.set_peer(opt_addr(parg as *const BIO_ADDR));
            1
        }
        BIO_CTRL_DGRAM_SET_CONNECTED => {
            d.set_connected(opt_addr(parg as *const BIO_ADDR));
            1
        }
        BIO_CTRL_DGRAM_GET_PEER => {
            // As OpenSSL: the (possibly cleared) peer is always copied out.
            let a = d.peer();
            mut_arg(parg as *mut BioAddr, "parg")?.clear();
            out_addr(a)?
        }
        BIO_CTRL_DGRAM_DETECT_PEER_ADDR => out_addr(d.detect_peer())?,
        BIO_CTRL_DGRAM_GET_MTU => d.mtu() as c_long,
        BIO_CTRL_DGRAM_SET_MTU => {
            if larg < 0 {
                return Err(Error::invalid("negative MTU"));
            }
            d.set_mtu(larg as usize);
            larg
        }
        BIO_CTRL_DGRAM_QUERY_MTU => d.query_mtu() as c_long,
        BIO_CTRL_DGRAM_MTU_EXCEEDED => d.mtu_exceeded() as c_long,
        BIO_CTRL_DGRAM_GET_FALLBACK_MTU => d.fallback_mtu() as c_long,
        BIO_CTRL_DGRAM_GET_MTU_OVERHEAD => d.mtu_overhead() as c_long,
        BIO_CTRL_DGRAM_SET_DONT_FRAG => {
            d.set_dont_frag(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_MTU_DISCOVER => {
            d.set_dont_frag(true)?;
            1
        }
        BIO_CTRL_DGRAM_SET_RECV_TIMEOUT | BIO_CTRL_DGRAM_SET_SEND_TIMEOUT => {
            let tv = *ref_arg(parg as *const libc::timeval, "parg")?;
            d.set_timeout(cmd == BIO_CTRL_DGRAM_SET_SEND_TIMEOUT, tv)?;
            1
        }
        BIO_CTRL_DGRAM_GET_RECV_TIMEOUT | BIO_CTRL_DGRAM_GET_SEND_TIMEOUT => {
            let out = mut_arg(parg as *mut libc::timeval, "parg")?;
            *out = d.get_timeout(cmd == BIO_CTRL_DGRAM_GET_SEND_TIMEOUT)?;
            size_of::<libc::timeval>() as c_long
        }
        BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP | BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP => 0,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP => d.local_addr_cap() as c_long,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE => {
            *mut_arg(parg as *mut c_int, "parg")? = d.local_enabled() as c_int;
            1
        }
        BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE => {
            d.set_local_addr_enable(larg != 0)?;
            1
        }
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS | BIO_CTRL_DGRAM_GET_CAPS => {
            (BIO_DGRAM_CAP_HANDLES_SRC_ADDR
                | BIO_DGRAM_CAP_HANDLES_DST_ADDR
                | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
                | BIO_DGRAM_CAP_PROVIDES_DST_ADDR) as c_long
        }
        BIO_CTRL_DGRAM_GET_NO_TRUNC => 0,
        _ => return unsupported(),
    })
}

/// BIO_ctrl on an accept BIO, following bss_acpt.c `acpt_ctrl` (unknown commands: 0).
fn acpt_ctrl(bio: &Bio, cmd: c_int, larg: c_long, parg: *mut c_void) -> Result<c_long> {
    let a = bio.acceptor().expect("accept kind");
    Ok(match cmd {
        BIO_CTRL_RESET => {
            a.reset(bio);
            0
        }
        BIO_C_DO_STATE_MACHINE => step_result(a.state(bio)),
        BIO_C_SET_ACCEPT if parg.is_null() => {
            match larg {
                2 => a.set_nbio_accept(false),
                5 => a.set_tfo(false),
                _ => {}
            }
            1
        }
        BIO_C_SET_ACCEPT => match larg {
            0 => {
                a.set_name(ctrl_str(parg)?)?;
                1
            }
            1 => {
                a.set_port(ctrl_str(parg)?)?;
                1
            }
            2 => {
                a.set_nbio_accept(true);
                1
            }
            3 => {
                return Err(Error::unsupported(
                    "BIO_set_accept_bios is not supported: push a filter on each accepted BIO",
                ));
            }
            4 => {
                a.set_family(*ref_arg(parg as *const c_int, "family")?);
                1
            }
            5 => {
                a.set_tfo(true);
                1
            }
            _ => 1,
        },
        BIO_C_SET_NBIO => {
            a.set_nbio(larg != 0);
            1
        }
        BIO_C_SET_FD => {
            let fd = *ref_arg(parg as *const c_int, "fd")?;
            a.set_fd(fd, larg != 0);
            1
        }
        BIO_C_GET_FD => {
            if !a.init() {
                return Ok(-1);
            }
            put(parg as *mut c_int, a.fd());
            a.fd() as c_long
        }
        BIO_C_GET_ACCEPT if !a.init() => -1,
        BIO_C_GET_ACCEPT => match larg {
            0..=3 if !parg.is_null() => {
                let which = [
                    Name::AcceptHost,
                    Name::AcceptPort,
                    Name::PeerHost,
                    Name::PeerPort,
                ][larg as usize];
                put(parg as *mut *const c_char, a.name_ptr(which));
                1
            }
            4 => a.family() as c_long,
            _ => -1,
        },
        BIO_CTRL_GET_CLOSE => a.get_close() as c_long,
        BIO_CTRL_SET_CLOSE => {
            a.set_close(larg != 0);
            1
        }
        BIO_CTRL_PENDING | BIO_CTRL_WPENDING => 0,
        BIO_CTRL_FLUSH | BIO_CTRL_DUP => 1,
        BIO_C_SET_BIND_MODE => {
            a.set_bind_mode(larg as c_int);
            1
        }
        BIO_C_GET_BIND_MODE => a.bind_mode() as c_long,
        BIO_CTRL_EOF => match bio.next_bio() {
            Some(n) => BIO_ctrl(n.handle(), cmd, larg, parg),
            None => 0,
        },
        _ => 0,
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

/// What to poll to learn the BIO is readable. Returns 1, or 0 when it has none. On a custom
/// BIO, the method's ctrl (BIO_CTRL_GET_RPOLL_DESCRIPTOR) answers. See
/// BIO_get_rpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_rpoll_descriptor(b: *mut BIO, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(BIO_get_rpoll_descriptor, {
        let bio = bio_arg(b)?;
        let out = mut_arg(desc, "desc")?;
        if let Some(c) = bio.custom() {
            let out = (out as *mut BIO_POLL_DESCRIPTOR).cast();
            // SAFETY: b is this BIO's handle; the command takes a BIO_POLL_DESCRIPTOR *, checked.
            let r = unsafe { c.ctrl(b, BIO_CTRL_GET_RPOLL_DESCRIPTOR, 0, out) };
            return Ok(custom_ret(r, "BIO_get_rpoll_descriptor") as c_int);
        }
        *out = bio.rpoll()?;
        Ok(1)
    })
}

/// What to poll to learn the BIO is writable. Returns 1, or 0 when it has none. On a custom
/// BIO, the method's ctrl (BIO_CTRL_GET_WPOLL_DESCRIPTOR) answers. See
/// BIO_get_wpoll_descriptor(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_wpoll_descriptor(b: *mut BIO, desc: *mut BIO_POLL_DESCRIPTOR) -> c_int {
    ffi_entry!(BIO_get_wpoll_descriptor, {
        let bio = bio_arg(b)?;
        let out = mut_arg(desc, "desc")?;
        if let Some(c) = bio.custom() {
            let out = (out as *mut BIO_POLL_DESCRIPTOR).cast();
            // SAFETY: b is this BIO's handle; the command takes a BIO_POLL_DESCRIPTOR *, checked.
            let r = unsafe { c.ctrl(b, BIO_CTRL_GET_WPOLL_DESCRIPTOR, 0, out) };
            return Ok(custom_ret(r, "BIO_get_wpoll_descriptor") as c_int);
        }
        *out = bio.wpoll()?;
        Ok(1)
    })
}

/// Whether a packed error code means "try again later" (a non-fatal errno or
/// BIO_R_NON_FATAL). See BIO_err_is_non_fatal(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_err_is_non_fatal(errcode: c_uint) -> c_int {
    if is_system(errcode) {
        return BIO_sock_non_fatal_error(reason_of(errcode) as c_int);
    }
    (lib_of(errcode) == ERR_LIB_BIO && reason_of(errcode) == BIO_R_NON_FATAL) as c_int
}

/// Whether an errno from a socket call is transient. See BIO_sock_non_fatal_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_non_fatal_error(error: c_int) -> c_int {
    matches!(
        error,
        libc::EAGAIN
            | libc::EINTR
            | libc::EINPROGRESS
            | libc::EALREADY
            | libc::ENOTCONN
            | libc::EPROTO
    ) as c_int
}

/// As BIO_sock_non_fatal_error, for datagram sockets. See BIO_dgram_non_fatal_error(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_non_fatal_error(error: c_int) -> c_int {
    BIO_sock_non_fatal_error(error)
}

/// Whether a socket call's result `i` (with errno) means retry. See BIO_sock_should_retry(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_sock_should_retry(i: c_int) -> c_int {
    if i == 0 || i == -1 {
        BIO_sock_non_fatal_error(crate::sys::errno())
    } else {
        0
    }
}

// ---- custom methods (BIO_meth_*) and the state their callbacks use

static NEXT_INDEX: AtomicI32 = AtomicI32::new(BIO_TYPE_START);

/// A fresh BIO type index for a custom method, BIO_TYPE_START + 1 up to BIO_TYPE_MASK (255);
/// -1 (with an error) once all are taken. Thread-safe. See BIO_get_new_index(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_new_index() -> c_int {
    ffi_entry!(BIO_get_new_index, -1, {
        match NEXT_INDEX.fetch_update(Relaxed, Relaxed, |v| (v < BIO_TYPE_MASK).then_some(v + 1)) {
            Ok(prev) => Ok(prev + 1),
            Err(_) => Err(Error::unsupported(
                "all BIO type indexes (129..=255) are taken",
            )),
        }
    })
}

/// A new, empty BIO method of type `type` (usually `BIO_get_new_index() | BIO_TYPE_...`)
/// named `name` (copied). Free it with BIO_meth_free; BIOs made from it keep it alive.
/// Returns NULL (with an error) for a NULL name. See BIO_meth_new(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_new(r#type: c_int, name: *const c_char) -> *mut BIO_METHOD {
    ffi_entry!(BIO_meth_new, {
        if name.is_null() {
            return Err(Error::null("name"));
        }
        // SAFETY: non-NULL, and the caller passes a NUL-terminated string (C API contract).
        let name = CString::from(unsafe { std::ffi::CStr::from_ptr(name) });
        let p = Arc::into_raw(Arc::new(CustomMethod::new(r#type, name)));
        custom_methods().insert(p as usize);
        Ok(p as *mut BIO_METHOD)
    })
}

/// Frees a method made by BIO_meth_new. BIOs still using it keep working (they hold their
/// own reference). NULL is a no-op. See BIO_meth_free(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_free(biom: *mut BIO_METHOD) {
    if biom.is_null() {
        return;
    }
    ffi_entry!(BIO_meth_free, {
        if !custom_methods().remove(&(biom as usize)) {
            return Err(Error::invalid(
                "not a method made by BIO_meth_new (or already freed)",
            ));
        }
        // SAFETY: the handle was registered by BIO_meth_new from Arc::into_raw, and removing
        // it from the set above gives its reference to us, once.
        drop(unsafe { Arc::from_raw(biom as *const CustomMethod) });
        Ok(())
    })
}

/// Sets the write callback in its int-length form (clears a write_ex callback); NULL removes
/// it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_write(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_write(
    biom: *mut BIO_METHOD,
    write: Option<unsafe extern "C" fn(*mut BIO, *const c_char, c_int) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_write, {
        let m = custom_method_arg(biom)?;
        m.set_write(write);
        Ok(1)
    })
}

/// The method's write callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_write(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_write(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *const c_char, c_int) -> c_int> {
    ffi_entry!(BIO_meth_get_write, None, {
        Ok(custom_method_arg(biom)?.write.get())
    })
}

/// Sets the write_ex callback (clears a write callback); NULL removes it. Returns 1, or 0 for a
/// NULL or foreign method.
/// See BIO_meth_set_write_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_write_ex(
    biom: *mut BIO_METHOD,
    write_ex: Option<unsafe extern "C" fn(*mut BIO, *const c_char, usize, *mut usize) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_write_ex, {
        let m = custom_method_arg(biom)?;
        m.set_write_ex(write_ex);
        Ok(1)
    })
}

/// The method's write_ex callback, or NULL (also for a NULL or foreign method, with an error).
/// With only a write callback set, a converter that calls it (OpenSSL's
/// bwrite_conv).
/// See BIO_meth_get_write_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_write_ex(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *const c_char, usize, *mut usize) -> c_int> {
    ffi_entry!(BIO_meth_get_write_ex, None, {
        let m = custom_method_arg(biom)?;
        // As OpenSSL: a method with only the int-length form reports a converter.
        Ok(m.write_ex
            .get()
            .or_else(|| m.write.get().map(|_| bwrite_conv as WriteExFn)))
    })
}

/// Sets the read callback in its int-length form (clears a read_ex callback); NULL removes it.
/// Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_read(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_read(
    biom: *mut BIO_METHOD,
    read: Option<unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_read, {
        let m = custom_method_arg(biom)?;
        m.set_read(read);
        Ok(1)
    })
}

/// The method's read callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_read(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_read(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int> {
    ffi_entry!(BIO_meth_get_read, None, {
        Ok(custom_method_arg(biom)?.read.get())
    })
}

/// Sets the read_ex callback (clears a read callback); NULL removes it. Returns 1, or 0 for a
/// NULL or foreign method.
/// See BIO_meth_set_read_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_read_ex(
    biom: *mut BIO_METHOD,
    read_ex: Option<unsafe extern "C" fn(*mut BIO, *mut c_char, usize, *mut usize) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_read_ex, {
        let m = custom_method_arg(biom)?;
        m.set_read_ex(read_ex);
        Ok(1)
    })
}

/// The method's read_ex callback, or NULL (also for a NULL or foreign method, with an error).
/// With only a read callback set, a converter that calls it (OpenSSL's
/// bread_conv).
/// See BIO_meth_get_read_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_read_ex(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *mut c_char, usize, *mut usize) -> c_int> {
    ffi_entry!(BIO_meth_get_read_ex, None, {
        let m = custom_method_arg(biom)?;
        // As OpenSSL: a method with only the int-length form reports a converter.
        Ok(m.read_ex
            .get()
            .or_else(|| m.read.get().map(|_| bread_conv as ReadExFn)))
    })
}

/// Sets the puts callback; NULL removes it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_puts(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_puts(
    biom: *mut BIO_METHOD,
    puts: Option<unsafe extern "C" fn(*mut BIO, *const c_char) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_puts, {
        let m = custom_method_arg(biom)?;
        m.puts.set(puts);
        Ok(1)
    })
}

/// The method's puts callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_puts(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_puts(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *const c_char) -> c_int> {
    ffi_entry!(BIO_meth_get_puts, None, {
        Ok(custom_method_arg(biom)?.puts.get())
    })
}

/// Sets the gets callback; NULL removes it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_gets(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_gets(
    biom: *mut BIO_METHOD,
    gets: Option<unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_gets, {
        let m = custom_method_arg(biom)?;
        m.gets.set(gets);
        Ok(1)
    })
}

/// The method's gets callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_gets(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_gets(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int> {
    ffi_entry!(BIO_meth_get_gets, None, {
        Ok(custom_method_arg(biom)?.gets.get())
    })
}

/// Sets the ctrl callback, which every BIO_ctrl on the method's BIOs reaches; NULL removes it.
/// Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_ctrl(
    biom: *mut BIO_METHOD,
    ctrl: Option<unsafe extern "C" fn(*mut BIO, c_int, c_long, *mut c_void) -> c_long>,
) -> c_int {
    ffi_entry!(BIO_meth_set_ctrl, {
        let m = custom_method_arg(biom)?;
        m.ctrl.set(ctrl);
        Ok(1)
    })
}

/// The method's ctrl callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_ctrl(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, c_int, c_long, *mut c_void) -> c_long> {
    ffi_entry!(BIO_meth_get_ctrl, None, {
        Ok(custom_method_arg(biom)?.ctrl.get())
    })
}

/// Sets the create callback, run by BIO_new (0 makes BIO_new fail); NULL removes it. Returns 1,
/// or 0 for a NULL or foreign method.
/// See BIO_meth_set_create(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_create(
    biom: *mut BIO_METHOD,
    create: Option<unsafe extern "C" fn(*mut BIO) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_create, {
        let m = custom_method_arg(biom)?;
        m.create.set(create);
        Ok(1)
    })
}

/// The method's create callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_create(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_create(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO) -> c_int> {
    ffi_entry!(BIO_meth_get_create, None, {
        Ok(custom_method_arg(biom)?.create.get())
    })
}

/// Sets the destroy callback, run by the BIO_free that drops the last reference; NULL removes
/// it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_destroy(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_destroy(
    biom: *mut BIO_METHOD,
    destroy: Option<unsafe extern "C" fn(*mut BIO) -> c_int>,
) -> c_int {
    ffi_entry!(BIO_meth_set_destroy, {
        let m = custom_method_arg(biom)?;
        m.destroy.set(destroy);
        Ok(1)
    })
}

/// The method's destroy callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_destroy(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_destroy(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO) -> c_int> {
    ffi_entry!(BIO_meth_get_destroy, None, {
        Ok(custom_method_arg(biom)?.destroy.get())
    })
}

/// Sets the callback_ctrl callback (BIO_callback_ctrl); NULL removes it. Returns 1, or 0 for a
/// NULL or foreign method.
/// See BIO_meth_set_callback_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_callback_ctrl(
    biom: *mut BIO_METHOD,
    callback_ctrl: Option<
        unsafe extern "C" fn(
            *mut BIO,
            c_int,
            Option<unsafe extern "C" fn(*mut BIO, c_int, c_int) -> c_int>,
        ) -> c_long,
    >,
) -> c_int {
    ffi_entry!(BIO_meth_set_callback_ctrl, {
        let m = custom_method_arg(biom)?;
        m.callback_ctrl.set(callback_ctrl);
        Ok(1)
    })
}

/// The method's callback_ctrl callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_callback_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_callback_ctrl(
    biom: *const BIO_METHOD,
) -> Option<
    unsafe extern "C" fn(
        *mut BIO,
        c_int,
        Option<unsafe extern "C" fn(*mut BIO, c_int, c_int) -> c_int>,
    ) -> c_long,
> {
    ffi_entry!(BIO_meth_get_callback_ctrl, None, {
        Ok(custom_method_arg(biom)?.callback_ctrl.get())
    })
}

/// Sets the sendmmsg callback (BIO_sendmmsg; the QUIC reactor sends through it, with
/// destination addresses); NULL removes it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_sendmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_sendmmsg(
    biom: *mut BIO_METHOD,
    sendmmsg: Option<
        unsafe extern "C" fn(*mut BIO, *mut BIO_MSG, usize, usize, u64, *mut usize) -> c_int,
    >,
) -> c_int {
    ffi_entry!(BIO_meth_set_sendmmsg, {
        let m = custom_method_arg(biom)?;
        m.sendmmsg.set(sendmmsg);
        Ok(1)
    })
}

/// The method's sendmmsg callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_sendmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_sendmmsg(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *mut BIO_MSG, usize, usize, u64, *mut usize) -> c_int> {
    ffi_entry!(BIO_meth_get_sendmmsg, None, {
        Ok(custom_method_arg(biom)?.sendmmsg.get())
    })
}

/// Sets the recvmmsg callback (BIO_recvmmsg; the QUIC reactor receives through it, with source
/// addresses); NULL removes it. Returns 1, or 0 for a NULL or foreign method.
/// See BIO_meth_set_recvmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_set_recvmmsg(
    biom: *mut BIO_METHOD,
    recvmmsg: Option<
        unsafe extern "C" fn(*mut BIO, *mut BIO_MSG, usize, usize, u64, *mut usize) -> c_int,
    >,
) -> c_int {
    ffi_entry!(BIO_meth_set_recvmmsg, {
        let m = custom_method_arg(biom)?;
        m.recvmmsg.set(recvmmsg);
        Ok(1)
    })
}

/// The method's recvmmsg callback, or NULL (also for a NULL or foreign method, with an error).
/// See BIO_meth_get_recvmmsg(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_meth_get_recvmmsg(
    biom: *const BIO_METHOD,
) -> Option<unsafe extern "C" fn(*mut BIO, *mut BIO_MSG, usize, usize, u64, *mut usize) -> c_int> {
    ffi_entry!(BIO_meth_get_recvmmsg, None, {
        Ok(custom_method_arg(biom)?.recvmmsg.get())
    })
}

/// What BIO_meth_get_write_ex reports for a method with only a write callback: calls the
/// int-length write of the given BIO's method, as OpenSSL's bwrite_conv does.
unsafe extern "C" fn bwrite_conv(
    b: *mut BIO,
    data: *const c_char,
    len: usize,
    written: *mut usize,
) -> c_int {
    put(written, 0);
    ffi_entry!(BIO_write_ex, {
        let c = bio_arg(b)?.as_custom()?;
        let f = c.method.write.get();
        let f = f.ok_or_else(|| Error::unsupported("the BIO's method has no write callback"))?;
        let len = len.min(c_int::MAX as usize) as c_int;
        // SAFETY: the method's write callback with the caller's BIO and buffer.
        let r = unsafe { f(b, data, len) };
        if r <= 0 {
            return Ok(r);
        }
        put(written, r as usize);
        Ok(1)
    })
}

/// As bwrite_conv, for read (OpenSSL's bread_conv).
unsafe extern "C" fn bread_conv(
    b: *mut BIO,
    data: *mut c_char,
    len: usize,
    readbytes: *mut usize,
) -> c_int {
    put(readbytes, 0);
    ffi_entry!(BIO_read_ex, {
        let c = bio_arg(b)?.as_custom()?;
        let f = c.method.read.get();
        let f = f.ok_or_else(|| Error::unsupported("the BIO's method has no read callback"))?;
        let len = len.min(c_int::MAX as usize) as c_int;
        // SAFETY: the method's read callback with the caller's BIO and buffer.
        let r = unsafe { f(b, data, len) };
        if r <= 0 {
            return Ok(r);
        }
        put(readbytes, r as usize);
        Ok(1)
    })
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
                ctrl(
                    bio,
                    BIO_CTRL_SET_CLOSE,
                    shut as c_long,
                    std::ptr::null_mut(),
                )?;
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
            None => Ok(ctrl(bio, BIO_CTRL_GET_CLOSE, 0, std::ptr::null_mut())? as c_int),
        }
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
            let buf = super::slice_arg_mut(buf.cast(), size as usize, "buf")?;
            let n = m.gets(&mut buf[..size as usize - 1]);
            buf[n] = 0;
            bio.clear_retry();
            return Ok(n as c_int);
        }
        if bio.type_id() == BIO_TYPE_BUFFER {
            if size <= 0 {
                return Ok(0);
            }
            let buf = super::slice_arg_mut(buf.cast(), size as usize, "buf")?;
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

/// Passes a callback to a custom method's callback_ctrl; only BIO_CTRL_SET_CALLBACK is
/// accepted. -2 (and an error) otherwise, for the built-in BIOs and for NULL.
/// See BIO_callback_ctrl(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_callback_ctrl(
    b: *mut BIO,
    cmd: c_int,
    fp: Option<unsafe extern "C" fn(*mut BIO, c_int, c_int) -> c_int>,
) -> c_long {
    ffi_entry!(BIO_callback_ctrl, -2, {
        let bio = bio_arg(b)?;
        let r = match bio.custom() {
            // SAFETY: b is this BIO's handle; fp is the caller's callback, passed on.
            Some(c) => unsafe { c.callback_ctrl(b, cmd, fp) },
            None => Err(Error::unsupported(format!(
                "BIO_callback_ctrl is not supported on a {} BIO",
                bio.name()
            ))),
        };
        Ok(custom_ret(r, "BIO_callback_ctrl"))
    })
}

// ---- the zero-copy API ("Datagram BIO API revisions")

/// Sets the callback that supplies read buffers: `cb(len, arg)` returns a buffer of at least
/// `len` bytes, or NULL. Turns GRO off on a socket (buffers are datagram-sized). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_callback(
    b: *mut BIO,
    cb: ReadAllocCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_read_callback, {
        bio_arg(b)?.set_read_callback(cb, arg)?;
        Ok(1)
    })
}

/// Sets the callback that takes back read buffers the BIO still holds when it is freed.
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_free_callback(
    b: *mut BIO,
    cb: ReadFreeCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_read_free_callback, {
        bio_arg(b)?.set_read_free_callback(cb, arg);
        Ok(1)
    })
}

/// Hands the next received datagram's buffer to the caller (who then owns it). Returns 1; 0
/// with retry-read set when nothing is waiting, or 0 with an error.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_read_dequeue(
    b: *mut BIO,
    buf: *mut *mut c_void,
    buf_len: *mut usize,
) -> c_int {
    put(buf, std::ptr::null_mut());
    put(buf_len, 0);
    ffi_entry!(BIO_read_dequeue, {
        let bio = bio_arg(b)?;
        let out = mut_arg(buf, "buf")?;
        let out_len = mut_arg(buf_len, "buf_len")?;
        let (raw, len) = bio.read_dequeue()?;
        *out = raw.ptr.cast();
        *out_len = len;
        Ok(1)
    })
}

/// Gives a buffer to the BIO for future reads (used before the allocation callback).
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_push_read_buffer(
    b: *mut BIO,
    buf: *mut c_void,
    buf_len: usize,
) -> c_int {
    ffi_entry!(BIO_dgram_push_read_buffer, {
        let bio = bio_arg(b)?;
        if buf.is_null() {
            return Err(Error::null("buf"));
        }
        if buf_len == 0 {
            return Err(Error::invalid("buffer length must be positive"));
        }
        bio.push_read_buffer(RawBuf {
            ptr: buf.cast(),
            cap: buf_len,
        });
        Ok(1)
    })
}

/// How many buffers one refill offers to the kernel (1..=64, default 32). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_read_batch(b: *mut BIO, n: usize) -> c_int {
    ffi_entry!(BIO_dgram_set_read_batch, {
        bio_arg(b)?.set_read_batch(n)?;
        Ok(1)
    })
}

/// Sets the callback told when a queued datagram is done: BIO_DGRAM_WRITE_DONE_OK, _FAILED
/// or _FREED. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_dgram_set_write_done_callback(
    b: *mut BIO,
    cb: WriteDoneCb,
    arg: *mut c_void,
) -> c_int {
    ffi_entry!(BIO_dgram_set_write_done_callback, {
        bio_arg(b)?.set_write_done_callback(cb, arg);
        Ok(1)
    })
}

/// Queues one datagram without sending it; `buf` must stay valid until its write-done
/// callback. BIO_flush sends the queue. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_write_queue(b: *mut BIO, buf: *const c_void, buf_len: usize) -> c_int {
    ffi_entry!(BIO_write_queue, {
        let bio = bio_arg(b)?;
        if buf.is_null() && buf_len > 0 {
            return Err(Error::null("buf"));
        }
        bio.write_queue(buf.cast(), buf_len)?;
        Ok(1)
    })
}

/// Destination of the datagrams queued from now on (NULL: the BIO's peer). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_outgoing_dgram_dest(b: *mut BIO, addr: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_set_outgoing_dgram_dest, {
        bio_arg(b)?.set_outgoing_dest(opt_addr(addr));
        Ok(1)
    })
}

/// Source of the datagrams queued from now on (NULL: the kernel's choice). Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_set_outgoing_dgram_origin(b: *mut BIO, addr: *const BIO_ADDR) -> c_int {
    ffi_entry!(BIO_set_outgoing_dgram_origin, {
        bio_arg(b)?.set_outgoing_origin(opt_addr(addr));
        Ok(1)
    })
}

/// Source address of the datagram last dequeued. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_incoming_dgram_origin(b: *mut BIO, addr: *mut BIO_ADDR) -> c_int {
    ffi_entry!(BIO_get_incoming_dgram_origin, {
        let bio = bio_arg(b)?;
        *mut_arg(addr as *mut BioAddr, "addr")? = bio.incoming_origin();
        Ok(1)
    })
}

/// Destination (local) address of the datagram last dequeued (AF_UNSPEC if unknown).
/// Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn BIO_get_incoming_dgram_dest(b: *mut BIO, addr: *mut BIO_ADDR) -> c_int {
    ffi_entry!(BIO_get_incoming_dgram_dest, {
        let bio = bio_arg(b)?;
        *mut_arg(addr as *mut BioAddr, "addr")? = bio.incoming_dest();
        Ok(1)
    })
}

// ---- osslquic extensions

/// Makes this pair half's read side pollable: BIO_get_rpoll_descriptor then returns an
/// eventfd that is readable while a datagram may be waiting. A busy reader costs the writer
/// no syscall. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_dgram_pair_set_pollable(b: *mut BIO) -> c_int {
    ffi_entry!(OSSLQUIC_dgram_pair_set_pollable, {
        bio_arg(b)?.pair()?.enable_pollable()?;
        Ok(1)
    })
}

/// Counters of one BIO: syscalls, datagrams, GSO sends, GRO-coalesced datagrams received,
/// CPU copies of payloads and wake-ups signalled toward its reader.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct OSSLQUIC_BIO_STATS {
    pub send_calls: u64,
    pub sent_dgrams: u64,
    pub gso_sends: u64,
    pub recv_calls: u64,
    pub recv_dgrams: u64,
    pub gro_dgrams: u64,
    pub copies: u64,
    pub wakeups: u64,
}

/// Fills `out` with the BIO's counters. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_get_stats(b: *mut BIO, out: *mut OSSLQUIC_BIO_STATS) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_get_stats, {
        let bio = bio_arg(b)?;
        let o = mut_arg(out, "out")?;
        let s = &bio.stats;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        *o = OSSLQUIC_BIO_STATS {
            send_calls: g(&s.send_calls),
            sent_dgrams: g(&s.sent_dgrams),
            gso_sends: g(&s.gso_sends),
            recv_calls: g(&s.recv_calls),
            recv_dgrams: g(&s.recv_dgrams),
            gro_dgrams: g(&s.gro_dgrams),
            copies: g(&s.copies),
            wakeups: bio.wakeups(),
        };
        Ok(1)
    })
}

/// Turns GSO (send) and GRO (receive) on or off for a datagram socket BIO, where the kernel
/// has them; for measuring the fallbacks. Returns 1.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_set_offload(b: *mut BIO, gso: c_int, gro: c_int) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_set_offload, {
        bio_arg(b)?.dgram()?.set_offload(gso != 0, gro != 0);
        Ok(1)
    })
}

/// Reports which offloads a datagram socket BIO uses: bit 0 GSO, bit 1 GRO.
#[unsafe(no_mangle)]
pub extern "C" fn OSSLQUIC_BIO_dgram_get_offload(b: *mut BIO) -> c_int {
    ffi_entry!(OSSLQUIC_BIO_dgram_get_offload, {
        let (gso, gro) = bio_arg(b)?.dgram()?.offload();
        Ok(gso as c_int | (gro as c_int) << 1)
    })
}
