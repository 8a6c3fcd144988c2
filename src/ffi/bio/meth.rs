//! BIO methods: the built-in BIO_s_*/BIO_f_* and the application's (BIO_meth_*), and the
//! registry that tells a `BIO_METHOD *` of ours from anything else.

use std::collections::BTreeSet;
use std::ffi::{CString, c_char, c_int, c_long, c_void};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use super::BIO_METHOD;
use crate::bio::acpt::METHOD_ACCEPT;
use crate::bio::conn::METHOD_CONNECT;
use crate::bio::consts::*;
use crate::bio::custom::{CustomMethod, ReadExFn, WriteExFn};
use crate::bio::filter::METHOD_SSL;
use crate::bio::msg::BIO_MSG;
use crate::bio::{
    BioMethod, METHOD_BIO, METHOD_BUFFER, METHOD_DGRAM, METHOD_DGRAM_MEM, METHOD_DGRAM_PAIR,
    METHOD_MEM, METHOD_SOCKET,
};
use crate::error::*;
use crate::ffi::{BIO, bio_arg, ffi_entry, put};

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

pub(super) enum MethodRef {
    Builtin(&'static BioMethod),
    Custom(Arc<CustomMethod>),
}

pub(super) fn method_arg(m: *const BIO_METHOD) -> Result<MethodRef> {
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
pub(super) fn custom_method_arg(m: *const BIO_METHOD) -> Result<Arc<CustomMethod>> {
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
