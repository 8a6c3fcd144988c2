//! A single-producer/single-consumer byte ring of datagram records, in the style of
//! OpenPerf's socket channels: producer and consumer indexes on their own cache lines, each
//! side caching the other's index, no shared lock on the data path.
//!
//! Each side also has its own mutex. In correct use (one writer, one reader) it is never
//! contended; it is there so that a misbehaving program calling one side from two threads
//! gets serialised access instead of undefined behaviour.
//!
//! Record: `len: u32, src_len: u8, dst_len: u8, 2 pad bytes, src, dst, payload`, padded to 8.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::sync::{Mutex, atomic_object, happens_after, happens_before};

use super::addr::BioAddr;

const HDR: usize = 8;
/// Worst-case record overhead: header plus two IPv6 addresses, padded.
pub(crate) const MAX_OVERHEAD: usize = HDR + 2 * 28 + 8;

#[repr(align(64))]
struct Padded<T>(T);

/// The ring's bytes. Held as a raw allocation so that the producer and the consumer, who
/// touch disjoint regions at the same time, never hold overlapping references to it.
struct Store {
    buf: *mut u8,
    mask: usize,
    /// Logical capacity in bytes (the requested write buffer size).
    limit: usize,
}

impl Store {
    fn new(phys: usize, limit: usize) -> Store {
        let buf = Box::into_raw(vec![0u8; phys].into_boxed_slice()) as *mut u8;
        Store {
            buf,
            mask: phys - 1,
            limit,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: `buf` came from Box::into_raw of a boxed slice of mask + 1 bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.buf, self.mask + 1)) });
    }
}

/// Wakes an idle consumer through an eventfd; a busy consumer costs no syscall.
pub struct Waker {
    pub fd: i32,
    idle: AtomicBool,
}

impl Waker {
    pub fn new() -> std::io::Result<Waker> {
        // A reader that has not read yet is idle: the first datagram must wake it.
        Ok(Waker {
            fd: crate::sys::eventfd()?,
            idle: AtomicBool::new(true),
        })
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        let _ = crate::sys::close(self.fd);
    }
}

pub struct Ring {
    head: Padded<AtomicUsize>,
    tail: Padded<AtomicUsize>,
    prod: Padded<Mutex<usize>>, // producer's cached tail
    cons: Padded<Mutex<usize>>, // consumer's cached head
    store: UnsafeCell<Store>,
    waker: std::sync::OnceLock<Waker>,
    wakeups: AtomicUsize,
}

// SAFETY: the byte store is only written by the producer in [head, tail+limit) and only read
// by the consumer in [tail, head); head/tail hand regions over with Release/Acquire. The
// store itself is replaced only in grow(), which holds both side locks.
unsafe impl Sync for Ring {}
// SAFETY: as above; nothing in the ring is tied to a thread.
unsafe impl Send for Ring {}

/// A popped record's addresses and length.
pub struct Popped {
    /// Full datagram length (may exceed what was copied out).
    pub len: usize,
    pub copied: usize,
    pub src: BioAddr,
    pub dst: BioAddr,
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Ring {
    pub fn new(limit: usize) -> Ring {
        let phys = limit.next_power_of_two().max(64);
        Ring {
            head: Padded(AtomicUsize::new(0)),
            tail: Padded(AtomicUsize::new(0)),
            prod: Padded(Mutex::new(0)),
            cons: Padded(Mutex::new(0)),
            store: UnsafeCell::new(Store::new(phys, limit)),
            waker: std::sync::OnceLock::new(),
            wakeups: AtomicUsize::new(0),
        }
    }

    /// Record size for a datagram of `len` bytes with the given address encodings.
    pub fn record_len(len: usize, src: usize, dst: usize) -> usize {
        align8(HDR + src + dst + len)
    }

    pub fn capacity(&self) -> usize {
        let _p = self.prod.0.lock();
        // SAFETY: limit changes only in grow() under both locks; we hold the producer lock.
        unsafe { (*self.store.get()).limit }
    }

    /// Bytes in use (racy snapshot; exact when called by either side).
    pub fn used(&self) -> usize {
        self.declare();
        let t = self.tail.0.load(Ordering::Acquire);
        let h = self.head.0.load(Ordering::Acquire);
        h.wrapping_sub(t)
    }

    pub fn free_space(&self) -> usize {
        self.capacity().saturating_sub(self.used())
    }

    /// Makes the consumer side pollable: returns the eventfd that is readable while a record
    /// may be waiting.
    pub fn enable_waker(&self) -> std::io::Result<i32> {
        if let Some(w) = self.waker.get() {
            return Ok(w.fd);
        }
        let w = Waker::new()?;
        let _ = self.waker.set(w);
        let w = self.waker.get().expect("waker just set");
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.used() > 0 && w.idle.swap(false, Ordering::SeqCst) {
            crate::sys::eventfd_signal(w.fd);
        }
        Ok(w.fd)
    }

    pub fn waker_fd(&self) -> Option<i32> {
        self.waker.get().map(|w| w.fd)
    }

    /// Wake-up syscalls the producer has made (for tests and benches).
    pub fn wakeups(&self) -> usize {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Appends one record built from `parts` (concatenated). All or nothing: false if full.
    /// `grow` lets an unsized ring enlarge instead of failing.
    pub fn push(&self, parts: &[&[u8]], src: &BioAddr, dst: &BioAddr, grow: bool) -> bool {
        self.producer().push(parts, src, dst, grow)
    }

    /// Takes the producer side for a batch: records become visible to the reader once, when
    /// the batch ends (one store of `head`, one cache-line transfer, at most one wake-up).
    pub fn producer(&self) -> Producer<'_> {
        let cached_tail = self.prod.0.lock();
        self.declare();
        let head = self.head.0.load(Ordering::Relaxed);
        Producer {
            ring: self,
            cached_tail,
            head,
            published: head,
        }
    }

    /// Takes the consumer side for a batch: space is handed back once, when the batch ends.
    pub fn consumer(&self) -> Consumer<'_> {
        let cached_head = self.cons.0.lock();
        self.declare();
        let tail = self.tail.0.load(Ordering::Relaxed);
        Consumer {
            ring: self,
            cached_head,
            tail,
            published: tail,
        }
    }

    /// Length of the next record's payload, if any.
    pub fn peek_len(&self) -> Option<usize> {
        self.consumer().peek_len()
    }

    /// Copies the next record's payload into `out` (truncating) and removes it; with
    /// `keep_if_short`, a record longer than `out` stays queued and `copied` is 0.
    pub fn pop(&self, out: &mut [u8], keep_if_short: bool) -> Option<Popped> {
        self.consumer().pop(out, keep_if_short)
    }

    /// Empties the ring (BIO_reset on the writing half).
    pub fn clear(&self) {
        let _p = self.prod.0.lock();
        let mut c = self.cons.0.lock();
        self.declare();
        let h = self.head.0.load(Ordering::Acquire);
        self.tail.0.store(h, Ordering::Release);
        *c = h;
    }

    /// Tells a race detector (the valgrind-annotations feature; nothing otherwise) that the
    /// indexes are atomic objects, read by both sides. The bytes they hand over are ordered
    /// by `happens_before` at each Release store and `happens_after` at the Acquire load
    /// that sees it.
    fn declare(&self) {
        atomic_object(&self.head.0);
        atomic_object(&self.tail.0);
    }

    /// Consumer found the ring empty: arm the waker (drain it first so it is not left readable,
    /// then publish idleness; the producer's next push signals).
    fn note_empty(&self) {
        if let Some(w) = self.waker.get()
            && !w.idle.load(Ordering::Relaxed)
        {
            crate::sys::eventfd_drain(w.fd);
            w.idle.store(true, Ordering::SeqCst);
            std::sync::atomic::fence(Ordering::SeqCst);
            if self.head.0.load(Ordering::Acquire) != self.tail.0.load(Ordering::Acquire)
                && w.idle.swap(false, Ordering::SeqCst)
            {
                // Raced with a push that did not see us idle: stay readable.
                crate::sys::eventfd_signal(w.fd);
            }
        }
    }

    fn grow_locked(&self, at_least: usize) {
        // SAFETY: called with both side locks held: no other access to the store.
        let st = unsafe { &mut *self.store.get() };
        let new_limit = (st.limit * 2).max(at_least);
        let phys = new_limit.next_power_of_two();
        let nb = Store::new(phys, new_limit);
        let t = self.tail.0.load(Ordering::Relaxed);
        let h = self.head.0.load(Ordering::Relaxed);
        let mut p = t;
        while p != h {
            // SAFETY: both offsets are masked into their buffers; no one else touches them.
            unsafe { *nb.buf.add(p & nb.mask) = *st.buf.add(p & st.mask) };
            p = p.wrapping_add(1);
        }
        *st = nb;
    }

    /// A pointer to `len` bytes at logical position `pos` if they do not wrap. The caller
    /// must own that region (producer: beyond head; consumer: before head) and hold its lock.
    fn contiguous(&self, pos: usize, len: usize) -> Option<*mut u8> {
        // SAFETY: the store is stable while either side lock is held (grow() takes both).
        let st = unsafe { &*self.store.get() };
        let off = pos & st.mask;
        (off + len <= st.mask + 1).then(|| {
            // SAFETY: off + len is within the buffer.
            unsafe { st.buf.add(off) }
        })
    }

    fn write_at(&self, pos: usize, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // SAFETY: the producer owns [head, tail + limit); callers write only inside the record
        // they are building, and the store is stable while the producer lock is held.
        unsafe {
            let st = &*self.store.get();
            let cap = st.mask + 1;
            let off = pos & st.mask;
            let first = data.len().min(cap - off);
            let base = st.buf;
            std::ptr::copy_nonoverlapping(data.as_ptr(), base.add(off), first);
            std::ptr::copy_nonoverlapping(data.as_ptr().add(first), base, data.len() - first);
        }
    }

    fn read_at(&self, pos: usize, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        // SAFETY: the consumer owns [tail, head), published by the producer's Release store;
        // the store is stable while the consumer lock is held.
        unsafe {
            let st = &*self.store.get();
            let cap = st.mask + 1;
            let off = pos & st.mask;
            let first = out.len().min(cap - off);
            let base = st.buf as *const u8;
            std::ptr::copy_nonoverlapping(base.add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(base, out.as_mut_ptr().add(first), out.len() - first);
        }
    }
}

/// The producer side of a ring, held for one batch (see [`Ring::producer`]).
pub struct Producer<'a> {
    ring: &'a Ring,
    cached_tail: crate::sync::MutexGuard<'a, usize>,
    head: usize,
    published: usize,
}

impl Producer<'_> {
    /// The logical capacity (the producer lock is held, so it is stable).
    pub fn capacity(&self) -> usize {
        // SAFETY: limit changes only in grow() under both locks; we hold the producer lock.
        unsafe { (*self.ring.store.get()).limit }
    }

    /// Writes one record; all or nothing. Not visible to the reader until the batch ends.
    pub fn push(&mut self, parts: &[&[u8]], src: &BioAddr, dst: &BioAddr, grow: bool) -> bool {
        let r = self.ring;
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > u32::MAX as usize {
            return false;
        }
        let (s, d) = (src.encode(), dst.encode());
        let need = Ring::record_len(len, s.len(), d.len());
        // SAFETY: the producer lock is held, so grow() cannot replace the store under us.
        let limit = unsafe { (*r.store.get()).limit };
        if self.head.wrapping_sub(*self.cached_tail) + need > limit {
            *self.cached_tail = r.tail.0.load(Ordering::Acquire);
            happens_after(&r.tail.0);
            if self.head.wrapping_sub(*self.cached_tail) + need > limit {
                if !grow {
                    return false;
                }
                // Publish what this batch wrote so far, then grow under both locks.
                self.publish();
                let mut cached_head = r.cons.0.lock();
                *self.cached_tail = r.tail.0.load(Ordering::Acquire);
                happens_after(&r.tail.0);
                r.grow_locked(self.head.wrapping_sub(*self.cached_tail) + need);
                *cached_head = self.head;
            }
        }
        let mut hdr = [0u8; HDR];
        hdr[..4].copy_from_slice(&(len as u32).to_ne_bytes());
        hdr[4] = s.len() as u8;
        hdr[5] = d.len() as u8;
        if let Some(dst) = r.contiguous(self.head, HDR + s.len() + d.len() + len) {
            // Fast path: the record does not wrap, so it is written front to back at once.
            let mut at = 0;
            for piece in [&hdr[..], s, d].into_iter().chain(parts.iter().copied()) {
                // SAFETY: `dst` has room for the whole record (checked by contiguous()), and
                // the producer owns that region until it publishes.
                unsafe { std::ptr::copy_nonoverlapping(piece.as_ptr(), dst.add(at), piece.len()) };
                at += piece.len();
            }
            self.head = self.head.wrapping_add(need);
            return true;
        }
        let mut pos = self.head;
        r.write_at(pos, &hdr);
        pos += HDR;
        r.write_at(pos, s);
        pos += s.len();
        r.write_at(pos, d);
        pos += d.len();
        for p in parts {
            r.write_at(pos, p);
            pos += p.len();
        }
        self.head = self.head.wrapping_add(need);
        true
    }

    fn publish(&mut self) {
        if self.head == self.published {
            return;
        }
        let r = self.ring;
        happens_before(&r.head.0);
        r.head.0.store(self.head, Ordering::Release);
        self.published = self.head;
        if let Some(w) = r.waker.get() {
            std::sync::atomic::fence(Ordering::SeqCst);
            if w.idle.load(Ordering::Relaxed) && w.idle.swap(false, Ordering::SeqCst) {
                r.wakeups.fetch_add(1, Ordering::Relaxed);
                crate::sys::eventfd_signal(w.fd);
            }
        }
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        self.publish();
    }
}

/// The consumer side of a ring, held for one batch (see [`Ring::consumer`]).
pub struct Consumer<'a> {
    ring: &'a Ring,
    cached_head: crate::sync::MutexGuard<'a, usize>,
    tail: usize,
    published: usize,
}

impl Consumer<'_> {
    /// Whether a record is waiting (refreshing the cached head only when needed).
    fn has_record(&mut self) -> bool {
        if self.tail == *self.cached_head {
            *self.cached_head = self.ring.head.0.load(Ordering::Acquire);
            happens_after(&self.ring.head.0);
        }
        self.tail != *self.cached_head
    }

    pub fn peek_len(&mut self) -> Option<usize> {
        if !self.has_record() {
            return None;
        }
        let mut hdr = [0u8; HDR];
        self.ring.read_at(self.tail, &mut hdr);
        Some(u32::from_ne_bytes(hdr[..4].try_into().expect("4 bytes")) as usize)
    }

    /// Copies the next record out (see [`Ring::pop`]).
    pub fn pop(&mut self, out: &mut [u8], keep_if_short: bool) -> Option<Popped> {
        let (mut src, mut dst) = (BioAddr::default(), BioAddr::default());
        let (len, copied) = self.pop_into(out, keep_if_short, Some(&mut src), Some(&mut dst))?;
        Some(Popped {
            len,
            copied,
            src,
            dst,
        })
    }

    /// As [`pop`](Self::pop), writing the addresses only where asked (the batch path: most
    /// callers want none, and decoding costs more than the header read).
    /// Returns (datagram length, bytes copied).
    pub fn pop_into(
        &mut self,
        out: &mut [u8],
        keep_if_short: bool,
        src: Option<&mut BioAddr>,
        dst: Option<&mut BioAddr>,
    ) -> Option<(usize, usize)> {
        let r = self.ring;
        if !self.has_record() {
            return None;
        }
        let tail = self.tail;
        let mut hdr = [0u8; HDR];
        r.read_at(tail, &mut hdr);
        let len = u32::from_ne_bytes(hdr[..4].try_into().expect("4 bytes")) as usize;
        let (sl, dl) = (hdr[4] as usize, hdr[5] as usize);
        if keep_if_short && len > out.len() {
            return Some((len, 0));
        }
        if src.is_some() || dst.is_some() {
            let mut abuf = [0u8; 2 * super::addr::MAX_ENCODED];
            r.read_at(tail + HDR, &mut abuf[..sl + dl]);
            if let Some(a) = src {
                *a = BioAddr::decode(&abuf[..sl]);
            }
            if let Some(a) = dst {
                *a = BioAddr::decode(&abuf[sl..sl + dl]);
            }
        }
        let copied = len.min(out.len());
        let at = tail + HDR + sl + dl;
        match r.contiguous(at, copied) {
            // SAFETY: the consumer owns [tail, head) and the payload does not wrap.
            Some(src) => unsafe { std::ptr::copy_nonoverlapping(src, out.as_mut_ptr(), copied) },
            None => r.read_at(at, &mut out[..copied]),
        }
        self.tail = tail.wrapping_add(Ring::record_len(len, sl, dl));
        Some((len, copied))
    }
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        let r = self.ring;
        let drained = !self.has_record();
        if self.tail != self.published {
            happens_before(&r.tail.0);
            r.tail.0.store(self.tail, Ordering::Release);
        }
        // Level semantics for a pollable reader: an empty ring must leave the eventfd quiet.
        // This costs a syscall only when the reader has caught up with the writer.
        if drained && r.waker.get().is_some() {
            r.note_empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_and_wrap() {
        let r = Ring::new(256);
        let a = BioAddr::default();
        let mut out = [0u8; 64];
        for round in 0..100u8 {
            let data = [round; 40];
            assert!(r.push(&[&data], &a, &a, false));
            let p = r.pop(&mut out, false).unwrap();
            assert_eq!((p.len, p.copied), (40, 40));
            assert_eq!(&out[..40], &data);
        }
        assert!(r.pop(&mut out, false).is_none());
    }

    #[test]
    fn full_is_all_or_nothing() {
        let r = Ring::new(128);
        let a = BioAddr::default();
        assert!(r.push(&[&[1u8; 100]], &a, &a, false));
        assert!(!r.push(&[&[2u8; 100]], &a, &a, false));
        assert_eq!(r.peek_len(), Some(100));
    }

    #[test]
    fn grows_when_allowed() {
        let r = Ring::new(64);
        let a = BioAddr::default();
        for i in 0..50u8 {
            assert!(r.push(&[&[i; 30]], &a, &a, true));
        }
        let mut out = [0u8; 30];
        for i in 0..50u8 {
            r.pop(&mut out, false).unwrap();
            assert_eq!(out, [i; 30]);
        }
    }

    #[test]
    fn spsc_threads_keep_order() {
        let r = std::sync::Arc::new(Ring::new(4096));
        let a = BioAddr::default();
        let w = {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut i = 0u32;
                while i < 100_000 {
                    if r.push(&[&i.to_ne_bytes()], &a, &a, false) {
                        i += 1;
                    } else {
                        std::thread::yield_now();
                    }
                }
            })
        };
        let mut next = 0u32;
        let mut out = [0u8; 4];
        while next < 100_000 {
            if r.pop(&mut out, false).is_some() {
                assert_eq!(u32::from_ne_bytes(out), next);
                next += 1;
            } else {
                std::thread::yield_now();
            }
        }
        w.join().unwrap();
    }
}
