//! State of the zero-copy datagram API ("Datagram BIO API revisions"): buffers supplied by
//! the application, filled in place and handed back by `BIO_read_dequeue`; datagrams queued
//! by `BIO_write_queue` and sent by `BIO_flush`. Read and write sides have separate locks so
//! one thread may read while another writes. Callbacks are never called with a lock held
//! except the allocation callback, which runs on the reading thread inside the read side.

use std::collections::VecDeque;
use std::ffi::{c_int, c_void};

use super::addr::BioAddr;

pub type ReadAllocCb = Option<unsafe extern "C" fn(len: usize, arg: *mut c_void) -> *mut c_void>;
pub type ReadFreeCb =
    Option<unsafe extern "C" fn(buf: *mut c_void, buf_len: usize, arg: *mut c_void)>;
pub type WriteDoneCb = Option<
    unsafe extern "C" fn(buf: *const c_void, buf_len: usize, status: c_int, arg: *mut c_void),
>;

/// A buffer owned by the application, lent to the BIO.
#[derive(Clone, Copy, Debug)]
pub struct RawBuf {
    pub ptr: *mut u8,
    pub cap: usize,
}

impl RawBuf {
    /// The buffer as a slice (empty when NULL or of no size).
    ///
    /// # Safety
    /// `ptr` must point at `cap` writable bytes that stay valid, and that nothing else reads
    /// or writes, for as long as the slice is used (the zero-copy read contract: the
    /// application lends the buffer until BIO_read_dequeue hands it back).
    pub unsafe fn as_mut_slice<'a>(&self) -> &'a mut [u8] {
        if self.ptr.is_null() || self.cap == 0 {
            return &mut [];
        }
        // SAFETY: per the contract above.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.cap) }
    }
}

/// A filled read buffer waiting for `BIO_read_dequeue`.
pub struct Filled {
    pub buf: RawBuf,
    pub len: usize,
    pub src: BioAddr,
    pub dst: BioAddr,
}

pub struct ReadSide {
    pub alloc: ReadAllocCb,
    pub alloc_arg: *mut c_void,
    pub free: ReadFreeCb,
    pub free_arg: *mut c_void,
    /// Buffers pushed back (or left over from a fill), used before asking `alloc`.
    pub pool: Vec<RawBuf>,
    pub ready: VecDeque<Filled>,
    pub batch: usize,
    pub last_src: BioAddr,
    pub last_dst: BioAddr,
    /// Reused per fill so the steady state does not allocate.
    pub scratch: Vec<RawBuf>,
}

// SAFETY: the raw pointers are application buffers and callback arguments that the zero-copy
// API's contract lets any thread use; access is serialised by the read-side lock.
unsafe impl Send for ReadSide {}

impl Default for ReadSide {
    fn default() -> Self {
        ReadSide {
            alloc: None,
            alloc_arg: std::ptr::null_mut(),
            free: None,
            free_arg: std::ptr::null_mut(),
            pool: Vec::new(),
            ready: VecDeque::new(),
            batch: 32,
            last_src: BioAddr::default(),
            last_dst: BioAddr::default(),
            scratch: Vec::new(),
        }
    }
}

impl ReadSide {
    /// Collects up to `want` buffers of at least `len` bytes into `scratch`: pooled ones first
    /// (any size: the application chose them), then from the allocation callback.
    pub fn gather(&mut self, want: usize, len: usize) {
        self.scratch.clear();
        while self.scratch.len() < want {
            if let Some(b) = self.pool.pop() {
                self.scratch.push(b);
                continue;
            }
            let Some(cb) = self.alloc else { break };
            // SAFETY: calling the application's allocation callback with its own argument.
            let p = unsafe { cb(len, self.alloc_arg) };
            if p.is_null() {
                break;
            }
            self.scratch.push(RawBuf {
                ptr: p.cast(),
                cap: len,
            });
        }
    }

    /// Every buffer the BIO still holds, for return through the free callback.
    pub fn drain_all(&mut self) -> Vec<RawBuf> {
        let mut v: Vec<RawBuf> = self.ready.drain(..).map(|f| f.buf).collect();
        v.append(&mut self.pool);
        v.append(&mut self.scratch);
        v
    }
}

/// One datagram queued by `BIO_write_queue`.
pub struct Queued {
    pub ptr: *const u8,
    pub len: usize,
    pub dst: Option<BioAddr>,
    pub src: Option<BioAddr>,
}

impl Queued {
    /// The queued bytes (empty when NULL or of no size).
    ///
    /// # Safety
    /// `ptr` must point at `len` readable bytes that stay valid and unchanged for as long as
    /// the slice is used (BIO_write_queue(3): until the write-done callback reports them).
    pub unsafe fn as_slice<'a>(&self) -> &'a [u8] {
        if self.ptr.is_null() || self.len == 0 {
            return &[];
        }
        // SAFETY: per the contract above.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

#[derive(Default)]
pub struct WriteSide {
    pub done: WriteDoneCb,
    pub done_arg: usize,
    pub queue: VecDeque<Queued>,
    pub next_dst: Option<BioAddr>,
    pub next_src: Option<BioAddr>,
    /// Completions collected under the lock, reported after it is released.
    pub completions: Vec<(usize, usize, c_int)>,
}

// SAFETY: as for ReadSide: application buffers lent under the API's contract, serialised by
// the write-side lock.
unsafe impl Send for WriteSide {}
