//! The library's locks, and what valgrind's race detector (helgrind) is told about them
//! and about the atomics that hand data between threads.
//!
//! Without the `valgrind-annotations` feature (the default), `Mutex`, `MutexGuard` and
//! `Condvar` are parking_lot's own, re-exported, and the annotation functions are empty: the
//! shipped library pays nothing.
//!
//! With it (tests/helgrind.sh), they are wrappers that announce every acquisition and release
//! with valgrind client requests (helgrind.h's `ANNOTATE_RWLOCK_ACQUIRED` / `_RELEASED` in
//! write mode, its documented annotations for home-made locks), so that helgrind orders what
//! threads do under one lock and checks lock order. Helgrind understands pthread locks only;
//! Rust's locks are atomics and futexes, and without this every access made under a lock is
//! reported (6,000+ errors per run of test_blocking). The wrappers are over std's mutex and
//! condvar, not parking_lot's (see [`Mutex`]'s note). Outside valgrind a client request is a
//! few register rotations that change nothing, so the annotated build runs normally too.
//!
//! Atomics: helgrind counts an atomic read-modify-write instruction (`fetch_add`, `swap`,
//! `compare_exchange`, a SeqCst store) as a read, so counters written only that way are
//! never reported; a plain store (`store` with Relaxed or Release) against a load is. Our
//! atomics that are stored while another thread loads them are declared with
//! [`atomic_object`] (their bytes are not checked: every access to them is atomic), and
//! where a Release store publishes other memory to an Acquire load, [`happens_before`] /
//! [`happens_after`] mark the pair, so that memory stays checked and ordered only there.
//!
//! Must not touch: anything but the locks and the annotated addresses.

#[cfg(not(feature = "valgrind-annotations"))]
pub use parking_lot::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};

#[cfg(feature = "valgrind-annotations")]
pub use annotated::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};

/// An atomic type from std: the only things [`atomic_object`] accepts.
pub trait Atomic: sealed::Sealed {}
mod sealed {
    pub trait Sealed {
        /// The object's bytes: (address, length).
        fn span(&self) -> (usize, usize) {
            (
                self as *const Self as *const u8 as usize,
                std::mem::size_of_val(self),
            )
        }
    }
}
macro_rules! atomics {
    ($($t:ident)*) => {$(
        impl sealed::Sealed for std::sync::atomic::$t {}
        impl Atomic for std::sync::atomic::$t {}
    )*};
}
atomics!(AtomicBool AtomicI32 AtomicU32 AtomicI64 AtomicU64 AtomicUsize AtomicU8);
impl<T> sealed::Sealed for std::sync::atomic::AtomicPtr<T> {}
impl<T> Atomic for std::sync::atomic::AtomicPtr<T> {}

/// Tells the race detector that `a` is an atomic object: concurrent accesses to its bytes
/// are not races (each is one atomic instruction). Orders nothing else: memory published
/// through it needs [`happens_before`] / [`happens_after`]. Idempotent; lasts until the
/// memory is freed.
#[inline(always)]
pub fn atomic_object<A: Atomic>(a: &A) {
    atomic_objects(&[a]);
}

/// [`atomic_object`] for several at once (the fields of a struct of atomics).
#[inline(always)]
pub fn atomic_objects(list: &[&dyn Atomic]) {
    #[cfg(feature = "valgrind-annotations")]
    for a in list {
        let (addr, len) = sealed::Sealed::span(*a);
        vg::untrack(addr, len);
    }
    #[cfg(not(feature = "valgrind-annotations"))]
    let _ = list;
}

/// Marks a release point on `tag` (call just before the release store): whatever this
/// thread did so far happens before anything a thread does after [`happens_after`] on the
/// same tag.
#[inline(always)]
pub fn happens_before<T>(tag: &T) {
    #[cfg(feature = "valgrind-annotations")]
    vg::request(vg::USERSO_SEND_PRE, tag as *const T as usize, 0);
    #[cfg(not(feature = "valgrind-annotations"))]
    let _ = tag;
}

/// Marks an acquire point on `tag` (call just after the acquire load that saw the
/// release store): see [`happens_before`].
#[inline(always)]
pub fn happens_after<T>(tag: &T) {
    #[cfg(feature = "valgrind-annotations")]
    vg::request(vg::USERSO_RECV_POST, tag as *const T as usize, 0);
    #[cfg(not(feature = "valgrind-annotations"))]
    let _ = tag;
}

/// valgrind client requests (valgrind.h's magic instruction sequence, helgrind.h's codes).
#[cfg(feature = "valgrind-annotations")]
mod vg {
    #[cfg(not(target_arch = "x86_64"))]
    compile_error!("the valgrind-annotations feature has client requests for x86_64 only");

    /// helgrind.h: `VG_USERREQ_TOOL_BASE('H','G') + 256` is its first internal request; the
    /// ones below are its `Vg_TCheckClientRequest` enum, counted from there.
    const HG: usize = ((b'H' as usize) << 24 | (b'G' as usize) << 16) + 256;
    pub(super) const RWLOCK_INIT_POST: usize = HG + 14;
    pub(super) const RWLOCK_DESTROY_PRE: usize = HG + 15;
    pub(super) const RWLOCK_ACQUIRED: usize = HG + 17;
    pub(super) const RWLOCK_RELEASED: usize = HG + 18;
    pub(super) const USERSO_SEND_PRE: usize = HG + 33;
    pub(super) const USERSO_RECV_POST: usize = HG + 34;
    const ARANGE_MAKE_UNTRACKED: usize = HG + 39;

    /// One client request with two arguments. Outside valgrind the sequence does nothing:
    /// four rotations of rdi by 128 bits in all, and `xchg rbx, rbx`.
    #[inline(always)]
    pub(super) fn request(code: usize, a1: usize, a2: usize) {
        let args: [usize; 6] = [code, a1, a2, 0, 0, 0];
        let mut _result: usize = 0;
        // SAFETY: the sequence leaves every register as it found it except rdx (declared)
        // and the flags (not preserved, the default); valgrind reads `args` through rax
        // and writes only its answer into rdx. The asm may read memory (the default), so
        // `args` is in memory when it runs.
        unsafe {
            std::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") _result,
                options(nostack),
            );
        }
    }

    pub(super) fn untrack(addr: usize, len: usize) {
        request(ARANGE_MAKE_UNTRACKED, addr, len);
    }
}

#[cfg(feature = "valgrind-annotations")]
mod annotated {
    use std::fmt;
    use std::ops::{Deref, DerefMut};
    use std::time::{Duration, Instant};

    use super::vg;

    /// A mutex whose every acquisition and release helgrind is told about.
    ///
    /// Built on std's mutex, not parking_lot's: std's keeps all its state in one futex word
    /// that it touches only with atomic read-modify-write instructions (which helgrind
    /// counts as reads, so they never conflict), while parking_lot's slow paths share a
    /// global table of wait queues guarded by parking_lot's own word locks, as invisible to
    /// helgrind as the mutex itself: annotating parking_lot left 3,000+ reports inside
    /// parking_lot_core per run, which only a suppression of everything below a parking_lot
    /// frame would hide. What is locked when is the library's, the same in both builds;
    /// parking_lot's fairness and spinning are not what this run checks.
    #[derive(Default)]
    pub struct Mutex<T> {
        inner: std::sync::Mutex<T>,
    }

    /// The guard; `inner` is `None` only while [`MutexGuard::unlocked`] runs its closure or
    /// a condvar waits.
    pub struct MutexGuard<'a, T> {
        lock: &'a Mutex<T>,
        inner: Option<std::sync::MutexGuard<'a, T>>,
    }

    /// parking_lot's `WaitTimeoutResult`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct WaitTimeoutResult(bool);

    impl WaitTimeoutResult {
        pub fn timed_out(self) -> bool {
            self.0
        }
    }

    impl<T> Mutex<T> {
        pub const fn new(v: T) -> Mutex<T> {
            Mutex {
                inner: std::sync::Mutex::new(v),
            }
        }

        /// The address helgrind knows the lock by.
        fn id(&self) -> usize {
            self as *const Self as usize
        }

        fn acquired(&self) {
            vg::request(vg::RWLOCK_ACQUIRED, self.id(), 1);
        }

        fn released(&self) {
            vg::request(vg::RWLOCK_RELEASED, self.id(), 1);
        }

        /// Locks (a poisoned lock is taken as it is: parking_lot has no poisoning).
        fn raw_lock(&self) -> std::sync::MutexGuard<'_, T> {
            let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            self.acquired();
            g
        }

        pub fn lock(&self) -> MutexGuard<'_, T> {
            MutexGuard {
                lock: self,
                inner: Some(self.raw_lock()),
            }
        }

        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            let inner = match self.inner.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return None,
            };
            self.acquired();
            Some(MutexGuard {
                lock: self,
                inner: Some(inner),
            })
        }

        pub fn get_mut(&mut self) -> &mut T {
            self.inner.get_mut().unwrap_or_else(|e| e.into_inner())
        }
    }

    impl<T> Drop for Mutex<T> {
        fn drop(&mut self) {
            // The lock ends here and another may be made at this address: helgrind forgets
            // it (declared first, since destroying a lock it never saw is an error).
            vg::request(vg::RWLOCK_INIT_POST, self.id(), 0);
            vg::request(vg::RWLOCK_DESTROY_PRE, self.id(), 0);
        }
    }

    impl<T: fmt::Debug> fmt::Debug for Mutex<T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self.try_lock() {
                Some(g) => f.debug_struct("Mutex").field("data", &&*g).finish(),
                None => f.write_str("Mutex { <locked> }"),
            }
        }
    }

    impl<'a, T> MutexGuard<'a, T> {
        /// Releases the lock while `f` runs (parking_lot's `MutexGuard::unlocked`).
        pub fn unlocked<R>(s: &mut Self, f: impl FnOnce() -> R) -> R {
            s.lock.released();
            drop(s.inner.take());
            // Re-locked even if `f` panics, as parking_lot does.
            struct Relock<'g, 'a, T>(&'g mut MutexGuard<'a, T>);
            impl<T> Drop for Relock<'_, '_, T> {
                fn drop(&mut self) {
                    self.0.inner = Some(self.0.lock.raw_lock());
                }
            }
            let _relock = Relock(s);
            f()
        }

        fn take(&mut self) -> std::sync::MutexGuard<'a, T> {
            self.lock.released();
            self.inner
                .take()
                .expect("a guard holds its lock outside unlocked()")
        }

        fn put(&mut self, g: std::sync::MutexGuard<'a, T>) {
            self.lock.acquired();
            self.inner = Some(g);
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            self.inner
                .as_ref()
                .expect("a guard holds its lock outside unlocked()")
        }
    }
    impl<T> DerefMut for MutexGuard<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            self.inner
                .as_mut()
                .expect("a guard holds its lock outside unlocked()")
        }
    }
    impl<T> Drop for MutexGuard<'_, T> {
        fn drop(&mut self) {
            if self.inner.is_some() {
                // Announced before the field's own Drop unlocks.
                self.lock.released();
            }
        }
    }

    /// A condition variable (std's, for the reason given at [`Mutex`]); a wait releases and
    /// re-acquires the guard's lock, which helgrind is told. No happens-before edge from a
    /// notify is added: none exists for a wait that times out, and the re-acquired lock
    /// orders what the notifier did under it.
    #[derive(Default)]
    pub struct Condvar {
        inner: std::sync::Condvar,
    }

    impl Condvar {
        pub const fn new() -> Condvar {
            Condvar {
                inner: std::sync::Condvar::new(),
            }
        }

        pub fn notify_one(&self) -> bool {
            self.inner.notify_one();
            // std does not say whether a thread was woken; no caller asks.
            false
        }

        pub fn notify_all(&self) -> usize {
            self.inner.notify_all();
            0
        }

        pub fn wait<T>(&self, g: &mut MutexGuard<'_, T>) {
            let inner = g.take();
            let inner = self.inner.wait(inner).unwrap_or_else(|e| e.into_inner());
            g.put(inner);
        }

        pub fn wait_until<T>(&self, g: &mut MutexGuard<'_, T>, t: Instant) -> WaitTimeoutResult {
            self.wait_for(g, t.saturating_duration_since(Instant::now()))
        }

        pub fn wait_for<T>(&self, g: &mut MutexGuard<'_, T>, d: Duration) -> WaitTimeoutResult {
            let inner = g.take();
            let (inner, r) = self
                .inner
                .wait_timeout(inner, d)
                .unwrap_or_else(|e| e.into_inner());
            g.put(inner);
            WaitTimeoutResult(r.timed_out())
        }
    }

    impl fmt::Debug for Condvar {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Condvar { .. }")
        }
    }
}
