//! Custom BIO methods (OpenSSL's BIO_meth_* API): a table of the application's C callbacks,
//! and the BIO kind that calls them. The reactor moves datagrams only through
//! `Bio::send_batch`/`recv_batch`, `effective_caps` and the poll descriptors; here those are
//! adapted to the method's sendmmsg/recvmmsg, or to one write/read per datagram when it has
//! none (unaddressed then).
//! Owns: `CustomMethod` (what BIO_meth_new returns), the per-BIO state behind
//! BIO_set_data/BIO_set_init/BIO_set_shutdown, and the calls into the callbacks.
//! Must not: hold any lock while a callback runs (callbacks call back into the same BIO:
//! BIO_get_data, BIO_set_retry_read, ...). The state here is atomics only.

use std::ffi::{CString, c_char, c_int, c_long, c_void};
use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, Ordering::Relaxed};

use super::addr::BioAddr;
use super::consts::*;
use super::msg::{BIO_ADDR, BIO_MSG, BIO_POLL_DESCRIPTOR};
use super::{BIO, Bio, RxDst, TxOutcome};
use crate::error::*;
use crate::sys::TxDesc;

pub type WriteFn = unsafe extern "C" fn(*mut BIO, *const c_char, c_int) -> c_int;
pub type WriteExFn = unsafe extern "C" fn(*mut BIO, *const c_char, usize, *mut usize) -> c_int;
pub type ReadFn = unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int;
pub type ReadExFn = unsafe extern "C" fn(*mut BIO, *mut c_char, usize, *mut usize) -> c_int;
pub type PutsFn = unsafe extern "C" fn(*mut BIO, *const c_char) -> c_int;
pub type GetsFn = unsafe extern "C" fn(*mut BIO, *mut c_char, c_int) -> c_int;
pub type CtrlFn = unsafe extern "C" fn(*mut BIO, c_int, c_long, *mut c_void) -> c_long;
pub type CreateFn = unsafe extern "C" fn(*mut BIO) -> c_int;
pub type DestroyFn = unsafe extern "C" fn(*mut BIO) -> c_int;
/// `BIO_info_cb *`: `int (*)(BIO *, int, int)`.
pub type InfoCb = unsafe extern "C" fn(*mut BIO, c_int, c_int) -> c_int;
pub type CallbackCtrlFn = unsafe extern "C" fn(*mut BIO, c_int, Option<InfoCb>) -> c_long;
pub type MmsgFn =
    unsafe extern "C" fn(*mut BIO, *mut BIO_MSG, usize, usize, u64, *mut usize) -> c_int;

/// One callback slot of a method: a C function pointer of type `F`, or none. Atomic, so a
/// method may be shared by BIOs on several threads without a lock.
pub struct Slot<F: Copy> {
    ptr: AtomicPtr<c_void>,
    _f: PhantomData<F>,
}

impl<F: Copy> Slot<F> {
    const fn new() -> Self {
        Slot {
            ptr: AtomicPtr::new(std::ptr::null_mut()),
            _f: PhantomData,
        }
    }
    pub fn get(&self) -> Option<F> {
        const { assert!(size_of::<Option<F>>() == size_of::<*mut c_void>()) };
        let p = self.ptr.load(Relaxed);
        // SAFETY: F is a C function pointer type (the aliases above), for which Option<F> has
        // the size of a pointer with NULL as None (asserted above); the slot holds NULL or a
        // value stored by set() from an Option<F>.
        unsafe { std::mem::transmute_copy::<*mut c_void, Option<F>>(&p) }
    }
    pub fn set(&self, f: Option<F>) {
        const { assert!(size_of::<Option<F>>() == size_of::<*mut c_void>()) };
        // SAFETY: as in get(): an Option of a function pointer is pointer-sized, NULL for None.
        let p = unsafe { std::mem::transmute_copy::<Option<F>, *mut c_void>(&f) };
        self.ptr.store(p, Relaxed);
    }
}

/// What BIO_meth_new returns: a type, a name, and the callbacks set so far. Callbacks set
/// after BIOs were made apply to them too, as in OpenSSL (the table is read at each call).
pub struct CustomMethod {
    pub type_id: c_int,
    pub name: CString,
    /// The int-length forms and the `_ex` forms: setting one clears the other, as OpenSSL's
    /// BIO_meth_set_write/_write_ex do; a call uses whichever is set.
    pub write: Slot<WriteFn>,
    pub write_ex: Slot<WriteExFn>,
    pub read: Slot<ReadFn>,
    pub read_ex: Slot<ReadExFn>,
    pub puts: Slot<PutsFn>,
    pub gets: Slot<GetsFn>,
    pub ctrl: Slot<CtrlFn>,
    pub create: Slot<CreateFn>,
    pub destroy: Slot<DestroyFn>,
    pub callback_ctrl: Slot<CallbackCtrlFn>,
    pub sendmmsg: Slot<MmsgFn>,
    pub recvmmsg: Slot<MmsgFn>,
}

impl CustomMethod {
    pub fn new(type_id: c_int, name: CString) -> Self {
        CustomMethod {
            type_id,
            name,
            write: Slot::new(),
            write_ex: Slot::new(),
            read: Slot::new(),
            read_ex: Slot::new(),
            puts: Slot::new(),
            gets: Slot::new(),
            ctrl: Slot::new(),
            create: Slot::new(),
            destroy: Slot::new(),
            callback_ctrl: Slot::new(),
            sendmmsg: Slot::new(),
            recvmmsg: Slot::new(),
        }
    }
    pub fn set_write(&self, f: Option<WriteFn>) {
        self.write.set(f);
        self.write_ex.set(None);
    }
    pub fn set_write_ex(&self, f: Option<WriteExFn>) {
        self.write_ex.set(f);
        self.write.set(None);
    }
    pub fn set_read(&self, f: Option<ReadFn>) {
        self.read.set(f);
        self.read_ex.set(None);
    }
    pub fn set_read_ex(&self, f: Option<ReadExFn>) {
        self.read_ex.set(f);
        self.read.set(None);
    }
    fn can_write(&self) -> bool {
        self.write.get().is_some() || self.write_ex.get().is_some()
    }
    fn can_read(&self) -> bool {
        self.read.get().is_some() || self.read_ex.get().is_some()
    }
}

/// The state of one BIO of a custom method: what BIO_set_data/init/shutdown keep.
pub struct CustomBio {
    pub method: Arc<CustomMethod>,
    data: AtomicPtr<c_void>,
    init: AtomicI32,
    shutdown: AtomicI32,
    /// `create` succeeded (or there was none): only then does the last free call `destroy`.
    created: AtomicBool,
}

fn unsupported_op(what: &str, m: &CustomMethod) -> Error {
    Error::unsupported(format!(
        "the BIO method \"{}\" has no {what} callback",
        m.name.to_string_lossy()
    ))
}

fn uninitialized() -> Error {
    Error::bio(BIO_R_UNINITIALIZED).with("the method has not called BIO_set_init(b, 1)")
}

impl CustomBio {
    pub fn new(method: Arc<CustomMethod>) -> Self {
        CustomBio {
            method,
            data: AtomicPtr::new(std::ptr::null_mut()),
            init: AtomicI32::new(0),
            // BIO_new sets shutdown to 1 (BIO_get_shutdown(3)).
            shutdown: AtomicI32::new(1),
            created: AtomicBool::new(false),
        }
    }

    pub fn data(&self) -> *mut c_void {
        self.data.load(Relaxed)
    }
    pub fn set_data(&self, p: *mut c_void) {
        self.data.store(p, Relaxed);
    }
    pub fn init(&self) -> c_int {
        self.init.load(Relaxed)
    }
    pub fn set_init(&self, v: c_int) {
        self.init.store(v, Relaxed);
    }
    pub fn shutdown(&self) -> c_int {
        self.shutdown.load(Relaxed)
    }
    pub fn set_shutdown(&self, v: c_int) {
        self.shutdown.store(v, Relaxed);
    }

    fn check_init(&self) -> Result<()> {
        if self.init() == 0 {
            return Err(uninitialized());
        }
        Ok(())
    }

    /// Called from `Bio`'s drop, with the handle of the BIO being freed.
    pub(super) fn destroy(&self, b: *mut BIO) {
        if !self.created.load(Relaxed) {
            return;
        }
        if let Some(f) = self.method.destroy.get() {
            // SAFETY: the application's destroy callback with the handle of this BIO, whose
            // state stays valid until the callback returns (Bio::drop runs before its fields
            // are dropped).
            unsafe { f(b) };
        }
    }

    // ---- the C API's calls (BIO_read, BIO_write, ...), with OpenSSL's return values: the
    // callers in ffi/ turn an Err for a missing callback into -2 and others into -1. Each is
    // unsafe because the C caller's pointers go to the callback unchanged.

    /// One read as bio_read_intern does it: `(ret, bytes)`, `ret > 0` on success with
    /// `bytes <= len`, else the callback's own failure value (and 0 bytes). The int form is
    /// used when set (BIO_read_ex on a method with only `read` works, and the reverse).
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_read(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn read(&self, b: *mut BIO, buf: *mut c_char, len: usize) -> Result<(c_int, usize)> {
        if !self.method.can_read() {
            return Err(unsupported_op("read", &self.method));
        }
        self.check_init()?;
        // SAFETY: our caller's contract.
        unsafe { self.call_read(b, buf, len) }
    }

    /// # Safety
    /// `b` is this BIO's handle and `buf` has `len` writable bytes.
    unsafe fn call_read(
        &self,
        b: *mut BIO,
        buf: *mut c_char,
        len: usize,
    ) -> Result<(c_int, usize)> {
        if let Some(f) = self.method.read.get() {
            let len = len.min(c_int::MAX as usize) as c_int;
            // SAFETY: the application's read callback with this BIO's handle and the caller's
            // buffer of `len` writable bytes (the BIO_read(3) contract passed through).
            let r = unsafe { f(b, buf, len) };
            if r <= 0 {
                return Ok((r, 0));
            }
            if r > len {
                return Err(Error::internal(format!(
                    "read callback returned {r} for a {len}-byte buffer"
                )));
            }
            return Ok((1, r as usize));
        }
        let Some(f) = self.method.read_ex.get() else {
            return Err(unsupported_op("read", &self.method));
        };
        let mut n = 0usize;
        // SAFETY: as above, with a valid out-pointer for the byte count.
        let r = unsafe { f(b, buf, len, &mut n) };
        if r <= 0 {
            return Ok((r, 0));
        }
        if n > len {
            return Err(Error::internal(format!(
                "read_ex callback reported {n} bytes for a {len}-byte buffer"
            )));
        }
        Ok((r, n))
    }

    /// One write as bio_write_intern does it: `(ret, bytes)` as for [`read`](Self::read).
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_write(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn write(
        &self,
        b: *mut BIO,
        buf: *const c_char,
        len: usize,
    ) -> Result<(c_int, usize)> {
        if !self.method.can_write() {
            return Err(unsupported_op("write", &self.method));
        }
        self.check_init()?;
        // SAFETY: our caller's contract.
        unsafe { self.call_write(b, buf, len) }
    }

    /// # Safety
    /// `b` is this BIO's handle and `buf` has `len` readable bytes.
    unsafe fn call_write(
        &self,
        b: *mut BIO,
        buf: *const c_char,
        len: usize,
    ) -> Result<(c_int, usize)> {
        if let Some(f) = self.method.write.get() {
            let len = len.min(c_int::MAX as usize) as c_int;
            // SAFETY: the application's write callback with this BIO's handle and `len`
            // readable bytes at `buf` (the BIO_write(3) contract passed through).
            let r = unsafe { f(b, buf, len) };
            return Ok(if r <= 0 { (r, 0) } else { (1, r as usize) });
        }
        let Some(f) = self.method.write_ex.get() else {
            return Err(unsupported_op("write", &self.method));
        };
        let mut n = 0usize;
        // SAFETY: as above, with a valid out-pointer for the byte count.
        let r = unsafe { f(b, buf, len, &mut n) };
        Ok(if r <= 0 { (r, 0) } else { (r, n) })
    }

    /// BIO_puts: the callback's result (bytes written, or its failure value).
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_puts(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn puts(&self, b: *mut BIO, s: *const c_char) -> Result<c_int> {
        let f = self
            .method
            .puts
            .get()
            .ok_or_else(|| unsupported_op("puts", &self.method))?;
        self.check_init()?;
        // SAFETY: the application's puts callback with this BIO and the caller's NUL-terminated
        // string (checked non-NULL by the caller).
        Ok(unsafe { f(b, s) })
    }

    /// BIO_gets: the callback's result; more bytes than `size` is an internal error, as in
    /// OpenSSL.
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_gets(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn gets(&self, b: *mut BIO, buf: *mut c_char, size: c_int) -> Result<c_int> {
        let f = self
            .method
            .gets
            .get()
            .ok_or_else(|| unsupported_op("gets", &self.method))?;
        if size < 0 {
            return Err(Error::invalid("negative size"));
        }
        self.check_init()?;
        // SAFETY: the application's gets callback with this BIO and the caller's buffer of
        // `size` writable bytes.
        let r = unsafe { f(b, buf, size) };
        if r > size {
            return Err(Error::internal(format!(
                "gets callback returned {r} for a {size}-byte buffer"
            )));
        }
        Ok(r)
    }

    /// BIO_ctrl: every command goes to the method's ctrl, unchanged.
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_ctrl(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn ctrl(
        &self,
        b: *mut BIO,
        cmd: c_int,
        larg: c_long,
        parg: *mut c_void,
    ) -> Result<c_long> {
        let f = self
            .method
            .ctrl
            .get()
            .ok_or_else(|| unsupported_op("ctrl", &self.method))?;
        // SAFETY: the application's ctrl callback with this BIO and the caller's arguments.
        Ok(unsafe { f(b, cmd, larg, parg) })
    }

    /// BIO_callback_ctrl: only BIO_CTRL_SET_CALLBACK is passed on (as OpenSSL does).
    ///
    /// # Safety
    /// `b` is this BIO's handle and `fp` the C caller's callback: it reaches the method's
    /// callback_ctrl unchanged.
    pub unsafe fn callback_ctrl(
        &self,
        b: *mut BIO,
        cmd: c_int,
        fp: Option<InfoCb>,
    ) -> Result<c_long> {
        let f = self
            .method
            .callback_ctrl
            .get()
            .ok_or_else(|| unsupported_op("callback_ctrl", &self.method))?;
        if cmd != BIO_CTRL_SET_CALLBACK {
            return Err(Error::unsupported(format!(
                "BIO_callback_ctrl takes only BIO_CTRL_SET_CALLBACK, not {cmd}"
            )));
        }
        // SAFETY: the application's callback_ctrl with this BIO and the caller's callback.
        Ok(unsafe { f(b, cmd, fp) })
    }

    /// BIO_sendmmsg: the callback's own result (it queues its errors itself).
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_sendmmsg(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn sendmmsg(
        &self,
        b: *mut BIO,
        msg: *mut BIO_MSG,
        stride: usize,
        num: usize,
        flags: u64,
        processed: *mut usize,
    ) -> Result<c_int> {
        let f = self
            .method
            .sendmmsg
            .get()
            .ok_or_else(|| unsupported_op("sendmmsg", &self.method))?;
        self.check_init()?;
        // SAFETY: the application's callback with this BIO and the caller's arguments (our
        // caller's contract).
        Ok(unsafe { f(b, msg, stride, num, flags, processed) })
    }

    /// BIO_recvmmsg: as [`sendmmsg`](Self::sendmmsg).
    ///
    /// # Safety
    /// `b` is this BIO's handle and the other pointers are the C caller's, valid as BIO_recvmmsg(3)
    /// requires: they reach the callback unchanged.
    pub unsafe fn recvmmsg(
        &self,
        b: *mut BIO,
        msg: *mut BIO_MSG,
        stride: usize,
        num: usize,
        flags: u64,
        processed: *mut usize,
    ) -> Result<c_int> {
        let f = self
            .method
            .recvmmsg
            .get()
            .ok_or_else(|| unsupported_op("recvmmsg", &self.method))?;
        self.check_init()?;
        // SAFETY: as in sendmmsg.
        Ok(unsafe { f(b, msg, stride, num, flags, processed) })
    }
}

/// Runs `create` on a new BIO (BIO_new). A method without one gets init = 1, as in OpenSSL.
pub(super) fn create(bio: &Bio) -> Result<()> {
    let c = bio.custom().expect("a custom BIO");
    match c.method.create.get() {
        None => c.set_init(1),
        Some(f) => {
            // SAFETY: the application's create callback with the handle of this new BIO,
            // which is complete and reference-counted (the callback may use any BIO call).
            if unsafe { f(bio.handle()) } == 0 {
                return Err(Error::new(ERR_LIB_BIO, ERR_R_INIT_FAIL)
                    .with("the BIO method's create callback returned 0"));
            }
        }
    }
    c.created.store(true, Relaxed);
    Ok(())
}

// ---- the library's own calls (the QUIC reactor's batches, caps, poll descriptors)
//
// Errors the callbacks queue on the thread's queue are taken off it and become the returned
// `Error` (as OpenSSL's QUIC stack does with ERR_set_mark/ERR_pop_to_mark): the reactor
// treats the outcome and the application's queue is left as it was.

/// Runs `f` with the thread's error queue set aside; returns what `f` queued.
fn errors_of<T>(f: impl FnOnce() -> T) -> (T, Vec<Entry>) {
    let mut saved = Vec::new();
    while let Some(e) = pop_front() {
        saved.push(e);
    }
    let r = f();
    let mut queued = Vec::new();
    while let Some(e) = pop_front() {
        queued.push(e);
    }
    for e in saved {
        push(e.code, e.func, e.data);
    }
    (r, queued)
}

/// BIO_err_is_non_fatal on a packed code.
fn code_is_non_fatal(code: u32) -> bool {
    if is_system(code) {
        return crate::sys::is_retry_errno(reason_of(code) as i32);
    }
    lib_of(code) == ERR_LIB_BIO && reason_of(code) == BIO_R_NON_FATAL
}

/// A would-block, in the form the batch callers recognise (the reactor keeps its output).
fn would_block(what: &str) -> Error {
    Error::bio(BIO_R_NON_FATAL).with(format!("the custom BIO's {what} would block"))
}

/// The error for a failed callback: a would-block when it set the retry flags or queued a
/// non-fatal error, else the last error it queued.
fn failure(bio: &Bio, queued: Vec<Entry>, what: &str) -> Error {
    let retry = bio.flags() & BIO_FLAGS_SHOULD_RETRY != 0;
    match queued.into_iter().last() {
        _ if retry => would_block(what),
        Some(e) if code_is_non_fatal(e.code) => would_block(what),
        Some(e) => Error {
            code: e.code,
            detail: e.data,
            quiet: false,
        },
        None => Error::bio(BIO_R_TRANSFER_ERROR).with(format!(
            "the custom BIO's {what} failed without queuing an error"
        )),
    }
}

/// Most BIO_MSGs handed to one sendmmsg/recvmmsg callback.
const CHUNK: usize = 64;

/// Sends through the method's sendmmsg (addresses passed on), or one write per datagram
/// (addresses dropped). Stops at the first datagram not taken.
pub(super) fn tx(bio: &Bio, c: &CustomBio, descs: &[TxDesc<'_>]) -> TxOutcome {
    let fail = |sent, e| TxOutcome { sent, err: Some(e) };
    if let Err(e) = c.check_init() {
        return fail(0, e);
    }
    let b = bio.handle();
    let stats = &bio.stats;
    let Some(f) = c.method.sendmmsg.get() else {
        if !c.method.can_write() {
            return fail(0, unsupported_op("write or sendmmsg", &c.method));
        }
        for (k, d) in descs.iter().enumerate() {
            bio.clear_retry();
            // SAFETY: b is this BIO's handle; d.data is a live slice.
            let (r, queued) =
                errors_of(|| unsafe { c.call_write(b, d.data.as_ptr().cast(), d.data.len()) });
            stats.send_calls.fetch_add(1, Relaxed);
            match r {
                Ok((r, _)) if r > 0 => {}
                Ok(_) => return fail(k, failure(bio, queued, "write")),
                Err(e) => return fail(k, e),
            }
            stats.sent_dgrams.fetch_add(1, Relaxed);
        }
        return TxOutcome {
            sent: descs.len(),
            err: None,
        };
    };
    let mut sent = 0;
    while sent < descs.len() {
        let n = (descs.len() - sent).min(CHUNK);
        let mut store: [MaybeUninit<BIO_MSG>; CHUNK] = [const { MaybeUninit::uninit() }; CHUNK];
        for (slot, d) in store.iter_mut().zip(&descs[sent..sent + n]) {
            // The callback only reads a send's data and addresses (BIO_sendmmsg(3)).
            slot.write(BIO_MSG {
                data: d.data.as_ptr().cast_mut().cast(),
                data_len: d.data.len(),
                peer: addr_ptr(d.dst),
                local: addr_ptr(d.src),
                flags: 0,
            });
        }
        let mut done = 0usize;
        bio.clear_retry();
        let msgs = store.as_mut_ptr().cast::<BIO_MSG>();
        // SAFETY: the application's sendmmsg with this BIO and n initialised BIO_MSGs (written
        // just above) whose pointers are the caller's live descriptors.
        let (r, queued) =
            errors_of(|| unsafe { f(b, msgs, size_of::<BIO_MSG>(), n, 0, &mut done) });
        stats.send_calls.fetch_add(1, Relaxed);
        if r <= 0 {
            return fail(sent, failure(bio, queued, "sendmmsg"));
        }
        let done = done.min(n);
        stats.sent_dgrams.fetch_add(done as u64, Relaxed);
        sent += done;
        if done < n {
            // Partial success: the rest waits, as after a would-block.
            return fail(sent, would_block("sendmmsg"));
        }
    }
    TxOutcome { sent, err: None }
}

/// A send descriptor's address as the C callback sees it (it only reads it).
fn addr_ptr(a: Option<&BioAddr>) -> *mut BIO_ADDR {
    a.map_or(std::ptr::null_mut(), |a| {
        (a as *const BioAddr).cast_mut().cast()
    })
}

/// A receive destination's address, for the C callback to fill in.
fn addr_ptr_mut(a: Option<&mut BioAddr>) -> *mut BIO_ADDR {
    a.map_or(std::ptr::null_mut(), |a| (a as *mut BioAddr).cast())
}

/// Receives through the method's recvmmsg (one call, at most 64 datagrams), or one read per
/// datagram until one fails (sources then AF_UNSPEC). Nothing at all is an error (a
/// non-fatal one when the method would block).
pub(super) fn rx(bio: &Bio, c: &CustomBio, dsts: &mut [RxDst<'_>]) -> Result<usize> {
    c.check_init()?;
    let b = bio.handle();
    let stats = &bio.stats;
    let Some(f) = c.method.recvmmsg.get() else {
        if !c.method.can_read() {
            return Err(unsupported_op("read or recvmmsg", &c.method));
        }
        let mut got = 0;
        for d in dsts.iter_mut() {
            bio.clear_retry();
            // SAFETY: b is this BIO's handle; d.buf is a live writable slice.
            let (r, queued) =
                errors_of(|| unsafe { c.call_read(b, d.buf.as_mut_ptr().cast(), d.buf.len()) });
            stats.recv_calls.fetch_add(1, Relaxed);
            match r {
                Ok((r, n)) if r > 0 => d.len = n,
                Ok(_) if got > 0 => break,
                Ok(_) => return Err(failure(bio, queued, "read")),
                Err(_) if got > 0 => break, // met again by the next call
                Err(e) => return Err(e),
            }
            for a in [d.src.as_deref_mut(), d.local.as_deref_mut()]
                .into_iter()
                .flatten()
            {
                *a = BioAddr::default();
            }
            got += 1;
        }
        stats.recv_dgrams.fetch_add(got as u64, Relaxed);
        return Ok(got);
    };
    let n = dsts.len().min(CHUNK);
    if n == 0 {
        return Ok(0);
    }
    let mut store: [MaybeUninit<BIO_MSG>; CHUNK] = [const { MaybeUninit::uninit() }; CHUNK];
    for (slot, d) in store.iter_mut().zip(dsts.iter_mut()) {
        slot.write(BIO_MSG {
            data: d.buf.as_mut_ptr().cast(),
            data_len: d.buf.len(),
            peer: addr_ptr_mut(d.src.as_deref_mut()),
            local: addr_ptr_mut(d.local.as_deref_mut()),
            flags: 0,
        });
    }
    let mut done = 0usize;
    bio.clear_retry();
    let msgs = store.as_mut_ptr().cast::<BIO_MSG>();
    // SAFETY: the application's recvmmsg with this BIO and n initialised BIO_MSGs (written just
    // above) pointing at the caller's live buffers and addresses.
    let (r, queued) = errors_of(|| unsafe { f(b, msgs, size_of::<BIO_MSG>(), n, 0, &mut done) });
    stats.recv_calls.fetch_add(1, Relaxed);
    if r <= 0 {
        return Err(failure(bio, queued, "recvmmsg"));
    }
    let done = done.min(n);
    if done == 0 {
        return Err(would_block("recvmmsg"));
    }
    for (k, d) in dsts.iter_mut().enumerate().take(done) {
        // SAFETY: entries below n were initialised above and done <= n.
        let m = unsafe { store[k].assume_init_ref() };
        d.len = m.data_len.min(d.buf.len());
    }
    stats.recv_dgrams.fetch_add(done as u64, Relaxed);
    Ok(done)
}

/// BIO_read for the library's own callers (Rust side): one datagram, would-block as a
/// non-fatal error with retry flags as the callback set them.
pub(super) fn read_one(bio: &Bio, c: &CustomBio, buf: &mut [u8]) -> Result<usize> {
    c.check_init()?;
    // SAFETY: the handle of this BIO and a buffer we hold exclusively.
    let (r, queued) =
        errors_of(|| unsafe { c.call_read(bio.handle(), buf.as_mut_ptr().cast(), buf.len()) });
    match r? {
        (r, n) if r > 0 => Ok(n),
        _ => Err(failure(bio, queued, "read")),
    }
}

/// BIO_write for the library's own callers; as [`read_one`].
pub(super) fn write_one(bio: &Bio, c: &CustomBio, buf: &[u8]) -> Result<usize> {
    c.check_init()?;
    // SAFETY: the handle of this BIO and a buffer we hold.
    let (r, queued) =
        errors_of(|| unsafe { c.call_write(bio.handle(), buf.as_ptr().cast(), buf.len()) });
    match r? {
        (r, n) if r > 0 => Ok(n),
        _ => Err(failure(bio, queued, "write")),
    }
}

/// A ctrl the library asks itself: the result, with whatever the callback queued set aside.
fn own_ctrl(
    bio: &Bio,
    c: &CustomBio,
    cmd: c_int,
    larg: c_long,
    parg: *mut c_void,
) -> (c_long, Vec<Entry>) {
    let Some(f) = c.method.ctrl.get() else {
        return (0, Vec::new());
    };
    // SAFETY: the application's ctrl callback with this BIO and a command whose argument
    // (NULL or a live object of the type the command takes) is given by our caller.
    errors_of(|| unsafe { f(bio.handle(), cmd, larg, parg) })
}

/// The caps the method's ctrl reports for BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS (0 when it has
/// no ctrl or says 0 or less), less the address caps it cannot carry: without sendmmsg no
/// destination reaches the far side, without recvmmsg no source comes back.
pub(super) fn effective_caps(bio: &Bio, c: &CustomBio) -> u32 {
    let (r, _) = own_ctrl(
        bio,
        c,
        BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS,
        0,
        std::ptr::null_mut(),
    );
    if r <= 0 {
        return 0;
    }
    let mut caps = r as u32;
    if c.method.sendmmsg.get().is_none() {
        caps &= !(BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR);
    }
    if c.method.recvmmsg.get().is_none() {
        caps &= !(BIO_DGRAM_CAP_PROVIDES_SRC_ADDR | BIO_DGRAM_CAP_PROVIDES_DST_ADDR);
    }
    caps
}

pub(super) fn local_enabled(bio: &Bio, c: &CustomBio) -> bool {
    let mut on: c_int = 0;
    let (r, _) = own_ctrl(
        bio,
        c,
        BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE,
        0,
        (&mut on as *mut c_int).cast(),
    );
    r > 0 && on != 0
}

/// The read or write poll descriptor from the method's ctrl.
pub(super) fn poll_descriptor(bio: &Bio, c: &CustomBio, cmd: c_int) -> Result<BIO_POLL_DESCRIPTOR> {
    if c.method.ctrl.get().is_none() {
        return Err(unsupported_op("ctrl", &c.method));
    }
    let mut d = BIO_POLL_DESCRIPTOR::none();
    let (r, queued) = own_ctrl(bio, c, cmd, 0, (&mut d as *mut BIO_POLL_DESCRIPTOR).cast());
    if r > 0 {
        return Ok(d);
    }
    Err(match queued.into_iter().last() {
        Some(e) => Error {
            code: e.code,
            detail: e.data,
            quiet: false,
        },
        None => Error::unsupported("the custom BIO's ctrl gives no poll descriptor"),
    })
}

#[cfg(test)]
mod tests {
    //! The batch adaptation against callbacks written in Rust: would-block and hard failures
    //! as the reactor sees them, partial batches, caps masking, and the error queue left as
    //! it was.

    use std::collections::VecDeque;

    use super::*;

    /// What the test callbacks work on (the BIO's data pointer).
    #[derive(Default)]
    struct Net {
        /// Writes taken before the next one asks for retry.
        room: usize,
        /// Fail hard (queue an error, no retry flags) instead of asking for retry.
        hard: bool,
        sent: Vec<(Vec<u8>, bool)>,
        inbox: VecDeque<Vec<u8>>,
        caps: c_long,
    }

    fn net<'a>(b: *mut BIO) -> (&'a Bio, &'a mut Net) {
        // SAFETY: the callbacks get the handle of a live Bio whose data is a Net owned by the
        // test for the BIO's lifetime, used from this thread only.
        unsafe {
            let bio = &*(b as *const Bio);
            let n = &mut *(bio.custom().expect("custom").data() as *mut Net);
            (bio, n)
        }
    }

    fn refuse(bio: &Bio, n: &Net, dir: i32) -> c_int {
        if n.hard {
            push(pack(ERR_LIB_BIO, BIO_R_BROKEN_PIPE), "test", None);
        } else {
            bio.set_flags(dir | BIO_FLAGS_SHOULD_RETRY);
        }
        -1
    }

    unsafe extern "C" fn write(b: *mut BIO, data: *const c_char, len: c_int) -> c_int {
        let (bio, n) = net(b);
        bio.clear_retry();
        if n.room == 0 {
            return refuse(bio, n, BIO_FLAGS_WRITE);
        }
        n.room -= 1;
        // SAFETY: the library passes len readable bytes.
        let d = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len as usize) };
        n.sent.push((d.to_vec(), false));
        len
    }

    unsafe extern "C" fn read(b: *mut BIO, data: *mut c_char, len: c_int) -> c_int {
        let (bio, n) = net(b);
        bio.clear_retry();
        let Some(d) = n.inbox.pop_front() else {
            return refuse(bio, n, BIO_FLAGS_READ);
        };
        let k = d.len().min(len as usize);
        // SAFETY: the library passes len writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(d.as_ptr(), data.cast::<u8>(), k) };
        k as c_int
    }

    unsafe extern "C" fn ctrl(b: *mut BIO, cmd: c_int, _l: c_long, _p: *mut c_void) -> c_long {
        let (_, n) = net(b);
        if cmd == BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS {
            n.caps
        } else {
            0
        }
    }

    unsafe extern "C" fn sendmmsg(
        b: *mut BIO,
        msg: *mut BIO_MSG,
        stride: usize,
        num: usize,
        _flags: u64,
        done: *mut usize,
    ) -> c_int {
        let (bio, n) = net(b);
        let k = num.min(n.room);
        for i in 0..k {
            // SAFETY: the library passes num BIO_MSGs spaced by stride, with readable data.
            let (m, d) = unsafe {
                let m = &*msg.cast::<u8>().add(i * stride).cast::<BIO_MSG>();
                (
                    m,
                    std::slice::from_raw_parts(m.data.cast::<u8>(), m.data_len),
                )
            };
            n.sent.push((d.to_vec(), !m.peer.is_null()));
        }
        n.room -= k;
        // SAFETY: a valid out-pointer from the library.
        unsafe { *done = k };
        if k == 0 {
            refuse(bio, n, BIO_FLAGS_WRITE);
            return 0;
        }
        1
    }

    fn method(mmsg: bool) -> Arc<CustomMethod> {
        let m = CustomMethod::new(BIO_TYPE_START + 1, c"test".into());
        m.set_write(Some(write));
        m.set_read(Some(read));
        m.ctrl.set(Some(ctrl));
        if mmsg {
            m.sendmmsg.set(Some(sendmmsg));
        }
        Arc::new(m)
    }

    fn bio_over(m: Arc<CustomMethod>, n: &mut Net) -> Arc<Bio> {
        let b = Bio::new_custom(m).expect("no create callback");
        b.custom().unwrap().set_data((n as *mut Net).cast());
        b
    }

    fn descs<'a>(data: &[&'a [u8]], dst: &'a BioAddr) -> Vec<TxDesc<'a>> {
        data.iter()
            .map(|d| TxDesc {
                data: d,
                dst: Some(dst),
                src: None,
                ecn: 0,
            })
            .collect()
    }

    fn is_would_block(e: &Option<Error>) -> bool {
        e.as_ref()
            .is_some_and(|e| e.code == pack(ERR_LIB_BIO, BIO_R_NON_FATAL))
    }

    #[test]
    fn write_fallback_stops_at_retry_and_reports_would_block() {
        clear();
        push(pack(ERR_LIB_BIO, BIO_R_IN_USE), "earlier", None);
        let mut n = Net {
            room: 2,
            ..Net::default()
        };
        let b = bio_over(method(false), &mut n);
        let dst = BioAddr::default();
        let out = b.send_batch(&descs(&[b"a", b"bb", b"ccc"], &dst));
        assert_eq!(out.sent, 2);
        assert!(is_would_block(&out.err));
        assert_eq!(
            n.sent,
            vec![(b"a".to_vec(), false), (b"bb".to_vec(), false)]
        );
        // The application's queue is as it was: the earlier entry only.
        assert_eq!(len(), 1);
        assert_eq!(peek_front().unwrap().code, pack(ERR_LIB_BIO, BIO_R_IN_USE));
        clear();
    }

    #[test]
    fn hard_write_failure_carries_the_callbacks_error_off_the_queue() {
        clear();
        let mut n = Net {
            room: 1,
            hard: true,
            ..Net::default()
        };
        let b = bio_over(method(false), &mut n);
        let out = b.send_batch(&descs(&[b"a", b"b"], &BioAddr::default()));
        assert_eq!(out.sent, 1);
        assert_eq!(
            out.err.map(|e| e.code),
            Some(pack(ERR_LIB_BIO, BIO_R_BROKEN_PIPE))
        );
        assert_eq!(len(), 0);
    }

    #[test]
    fn sendmmsg_partial_batch_is_a_would_block_and_addresses_pass() {
        clear();
        let mut n = Net {
            room: 2,
            ..Net::default()
        };
        let b = bio_over(method(true), &mut n);
        let out = b.send_batch(&descs(&[b"x", b"y", b"z"], &BioAddr::default()));
        assert_eq!(out.sent, 2);
        assert!(is_would_block(&out.err));
        assert_eq!(n.sent, vec![(b"x".to_vec(), true), (b"y".to_vec(), true)]);
        let out = b.send_batch(&descs(&[b"z"], &BioAddr::default()));
        assert_eq!(out.sent, 0);
        assert!(is_would_block(&out.err));
        assert_eq!(len(), 0);
    }

    #[test]
    fn read_fallback_receives_until_retry_then_would_block() {
        clear();
        let mut n = Net::default();
        n.inbox.extend([b"one".to_vec(), b"three".to_vec()]);
        let b = bio_over(method(false), &mut n);
        let mut bufs = [[0u8; 8]; 4];
        let mut src = [BioAddr::default(); 4];
        let mut dsts: Vec<RxDst> = bufs
            .iter_mut()
            .zip(src.iter_mut())
            .map(|(buf, s)| RxDst::new(buf, Some(s), None))
            .collect();
        assert_eq!(b.recv_batch(&mut dsts), Ok(2));
        assert_eq!((dsts[0].len, dsts[1].len), (3, 5));
        let e = b.recv_batch(&mut dsts).unwrap_err();
        assert_eq!(e.code, pack(ERR_LIB_BIO, BIO_R_NON_FATAL));
        // The retry flags the callback set stay visible on the BIO.
        assert_eq!(
            b.flags() & (BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY),
            BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY
        );
        drop(dsts);
        assert_eq!(&bufs[0][..3], b"one");
        assert_eq!(&bufs[1][..5], b"three");
        assert_eq!(len(), 0);
    }

    #[test]
    fn caps_come_from_ctrl_less_what_the_callbacks_cannot_carry() {
        let all = (BIO_DGRAM_CAP_HANDLES_SRC_ADDR
            | BIO_DGRAM_CAP_HANDLES_DST_ADDR
            | BIO_DGRAM_CAP_PROVIDES_SRC_ADDR
            | BIO_DGRAM_CAP_PROVIDES_DST_ADDR) as c_long;
        let mut n = Net {
            caps: all,
            ..Net::default()
        };
        let b = bio_over(method(false), &mut n);
        assert_eq!(b.effective_caps(), 0);
        let mut n2 = Net {
            caps: all,
            ..Net::default()
        };
        let b2 = bio_over(method(true), &mut n2);
        assert_eq!(
            b2.effective_caps(),
            BIO_DGRAM_CAP_HANDLES_SRC_ADDR | BIO_DGRAM_CAP_HANDLES_DST_ADDR
        );
        let m = CustomMethod::new(BIO_TYPE_START + 2, c"no ctrl".into());
        let b3 = Bio::new_custom(Arc::new(m)).unwrap();
        assert_eq!(b3.effective_caps(), 0);
        assert!(b3.rpoll().is_err());
    }

    #[test]
    fn slot_round_trips_a_function_pointer() {
        let s: Slot<WriteFn> = Slot::new();
        assert!(s.get().is_none());
        s.set(Some(write));
        assert!(
            s.get()
                .is_some_and(|f| std::ptr::fn_addr_eq(f, write as WriteFn))
        );
        s.set(None);
        assert!(s.get().is_none());
    }
}
