//! The library's global allocator: the system allocator, with a 64-byte tail on every
//! allocation of 2 KiB or more on x86-64 glibc, and byte accounting a test can switch on.
//!
//! Why: glibc 2.36 (Debian 12's) copies 2 KiB and more with `rep movsb`, which AMD Zen 3 and 4
//! run about 30 times slower when the destination is 1 to 31 bytes past the source modulo
//! 4096 (glibc bug 30994). glibc puts chunks back to back, 16 bytes apart, and `Vec`s grow to
//! powers of two, so a buffer that follows a 32 KiB `Vec` starts 16 bytes past it modulo a
//! page: rustls decrypts a record in its 32 KiB input buffer (payload 5 bytes in) and copies
//! the plaintext into a new `Vec` placed just after, 11 bytes past the source modulo a page.
//! On this project's AMD EPYC test machine that was every record of a bulk transfer, and TLS
//! bulk ran at 0.5-0.7x OpenSSL's rate. The tail moves the next chunk 80 bytes past a page
//! multiple instead: a copy from the first block is slow only from 49 to 79 bytes into a page
//! of it, away from the start, where buffers are read from.
//! The cost is 64 bytes per allocation of 2 KiB or more (at most 3%).
//!
//! Accounting (`set_accounting`, `live`, `peak`): the bytes Rust code holds, as asked for
//! (before the tail), for tests that bound what a peer can make the library hold
//! (tests/budget.rs). A Rust program has one global allocator, so a test cannot bring its own
//! beside this one. Off, it costs one relaxed load per call.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// Allocations of at least this many bytes get the tail (glibc's smallest `rep movsb` size).
const LARGE: usize = 2048;
/// The tail: a cache line, so that two large chunks are never 16 or 32 bytes apart modulo a
/// page when their sizes are page multiples.
const TAIL: usize = 64;

/// The size asked of the system for `size` bytes; None on overflow.
pub(crate) fn padded(size: usize) -> Option<usize> {
    if cfg!(all(target_arch = "x86_64", target_env = "gnu")) && size >= LARGE {
        size.checked_add(TAIL)
    } else {
        Some(size)
    }
}

static ACCOUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// Starts (or stops) counting the bytes allocated and freed. Blocks allocated before it
/// started count negative when freed: `live` is meant for differences.
pub fn set_accounting(on: bool) {
    ACCOUNTING.store(on, Relaxed);
}

/// Bytes allocated minus bytes freed while accounting was on.
pub fn live() -> isize {
    LIVE.load(Relaxed)
}

/// The highest `live` since the last `reset_peak`.
pub fn peak() -> isize {
    PEAK.load(Relaxed)
}

/// Starts a new high-water mark at the current `live`.
pub fn reset_peak() {
    PEAK.store(LIVE.load(Relaxed), Relaxed);
}

fn account(delta: isize) {
    if ACCOUNTING.load(Relaxed) {
        let now = LIVE.fetch_add(delta, Relaxed) + delta;
        PEAK.fetch_max(now, Relaxed);
    }
}

fn padded_layout(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(padded(layout.size())?, layout.align()).ok()
}

/// A new block for `layout` from `get` (given the padded layout), counted.
fn alloc_with(layout: Layout, get: impl FnOnce(Layout) -> *mut u8) -> *mut u8 {
    let Some(l) = padded_layout(layout) else {
        return std::ptr::null_mut();
    };
    let p = get(l);
    if !p.is_null() {
        account(layout.size() as isize);
    }
    p
}

pub struct TailAlloc;

// SAFETY: every call forwards to `System` with a layout of the same alignment and a size at
// least the caller's, and every block is given back to `System` with the layout it was
// allocated with (the padding is a function of the caller's size, which Rust passes back
// unchanged to dealloc and realloc).
unsafe impl GlobalAlloc for TailAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: a valid layout of non-zero size (at least the caller's).
        alloc_with(layout, |l| unsafe { System.alloc(l) })
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in alloc.
        alloc_with(layout, |l| unsafe { System.alloc_zeroed(l) })
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // The caller's layout was valid when allocated, so its padded form was too.
        if let Some(l) = padded_layout(layout) {
            // SAFETY: ptr came from System with exactly this layout.
            unsafe { System.dealloc(ptr, l) };
            account(-(layout.size() as isize));
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(l), Some(n)) = (padded_layout(layout), padded(new_size)) else {
            return std::ptr::null_mut();
        };
        if Layout::from_size_align(n, l.align()).is_err() {
            return std::ptr::null_mut();
        }
        // SAFETY: ptr came from System with layout `l`; the new size, padded, is non-zero
        // and, with the alignment, a valid layout (checked above).
        let p = unsafe { System.realloc(ptr, l, n) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    fn padding() {
        assert_eq!(padded(0), Some(0));
        assert_eq!(padded(LARGE - 1), Some(LARGE - 1));
        assert_eq!(padded(LARGE), Some(LARGE + TAIL));
        assert_eq!(padded(32768), Some(32768 + TAIL));
        assert_eq!(padded(usize::MAX), None);
    }

    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    /// The stride glibc gives a block: where the next chunk's memory would start if it came
    /// right after this one (the chunk header is 8 bytes beyond the usable size).
    fn stride(p: *mut u8) -> usize {
        // SAFETY: p is a live block from malloc (via System, through the global allocator).
        unsafe { libc::malloc_usable_size(p.cast()) + 8 }
    }

    /// The property the tail exists for, on the real allocator: a block of a page-multiple
    /// size (a `Vec` grown by doubling) is not followed 1 to 31 bytes past a page multiple
    /// plus its start, nor is the payload of a TLS record 5 bytes into it (rustls's input
    /// buffer and the plaintext `Vec` made right after it). Without the tail the stride is
    /// 16 modulo 4096 and this fails.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    fn page_multiple_blocks_do_not_alias_the_next() {
        for size in [4096usize, 8192, 16384, 32768, 65536] {
            let mut v: Vec<u8> = Vec::with_capacity(size);
            let s = stride(v.as_mut_ptr());
            for offset in 0..16 {
                let distance = (s - offset) % 4096;
                assert!(
                    !(1..=31).contains(&distance),
                    "size {size}: next block {distance} bytes past a source {offset} bytes in"
                );
            }
        }
    }

    #[test]
    fn large_blocks_keep_their_bytes_through_realloc() {
        let mut v: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        v.shrink_to_fit();
        v.reserve_exact(100_000);
        assert!(v.iter().enumerate().all(|(i, b)| *b == i as u8));
        v.truncate(100);
        v.shrink_to_fit();
        assert!(v.iter().enumerate().all(|(i, b)| *b == i as u8));
    }
}
