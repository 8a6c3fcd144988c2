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
//! Hold times: every acquisition that matters for contention names its purpose
//! ([`LockFor::lock_for`], or a [`Held`] kept beside a guard), and with the `lock-tracking`
//! feature each purpose's acquisitions, time spent waiting for the lock and time holding it
//! are added up ([`lock_stats`]); `make bench` prints them as shares of the server's CPU time
//! (quinn's `lock_tracking` feature is the model). Without the feature a [`Held`] is empty
//! and naming costs nothing.
//!
//! Must not touch: anything but the locks and the annotated addresses.

#[cfg(not(feature = "valgrind-annotations"))]
pub use parking_lot::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};

#[cfg(feature = "valgrind-annotations")]
pub use annotated::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};

pub use tracking::{Asked, Held, LockFor, Tracked, lock_stats, reset_lock_stats};

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

/// Named acquisitions and their hold times (see the module note).
mod tracking {
    use super::{Mutex, MutexGuard};
    use std::ops::{Deref, DerefMut};

    /// One named hold of a lock: started when the lock is taken, paused while a condition
    /// wait or an `unlocked` section gives the lock up, ended (and counted) on drop.
    #[must_use]
    pub struct Held {
        #[cfg(feature = "lock-tracking")]
        slot: &'static imp::Slot,
        #[cfg(feature = "lock-tracking")]
        since: Option<std::time::Instant>,
    }

    impl Held {
        /// Starts a hold for `purpose`; `asked` is when the caller started waiting for the
        /// lock (the time until now is counted as waiting).
        #[inline(always)]
        pub fn begin(purpose: &'static str, asked: Asked) -> Held {
            #[cfg(feature = "lock-tracking")]
            {
                let slot = imp::slot(purpose);
                let now = std::time::Instant::now();
                slot.acquired(now.saturating_duration_since(asked.at));
                Held {
                    slot,
                    since: Some(now),
                }
            }
            #[cfg(not(feature = "lock-tracking"))]
            {
                let _ = (purpose, asked);
                Held {}
            }
        }

        /// The lock is given up for a while: the time so far is counted.
        #[inline(always)]
        pub fn pause(&mut self) {
            #[cfg(feature = "lock-tracking")]
            if let Some(t) = self.since.take() {
                self.slot.held(t.elapsed());
            }
        }

        /// The lock is held again.
        #[inline(always)]
        pub fn resume(&mut self) {
            #[cfg(feature = "lock-tracking")]
            if self.since.is_none() {
                self.since = Some(std::time::Instant::now());
            }
        }

        /// From now on the hold counts for `purpose` (a call that goes on to do other work
        /// under the same acquisition, such as handling network events); returns the
        /// purpose it counted for ("" without the feature), to go back to.
        #[inline(always)]
        pub fn relabel(&mut self, purpose: &'static str) -> &'static str {
            #[cfg(feature = "lock-tracking")]
            {
                let resume = self.since.is_some();
                self.pause();
                let was = self.slot.name().unwrap_or("");
                self.slot = imp::slot(purpose);
                if resume {
                    self.resume();
                }
                was
            }
            #[cfg(not(feature = "lock-tracking"))]
            {
                let _ = purpose;
                ""
            }
        }
    }

    impl Drop for Held {
        #[inline(always)]
        fn drop(&mut self) {
            self.pause();
        }
    }

    /// When a caller started asking for a lock (nothing without the feature).
    #[derive(Clone, Copy)]
    pub struct Asked {
        #[cfg(feature = "lock-tracking")]
        at: std::time::Instant,
    }

    impl Asked {
        #[inline(always)]
        pub fn now() -> Asked {
            Asked {
                #[cfg(feature = "lock-tracking")]
                at: std::time::Instant::now(),
            }
        }
    }

    /// A guard with its named hold.
    pub struct Tracked<'a, T> {
        // Declared first: the lock is released after the hold is counted.
        held: Held,
        guard: MutexGuard<'a, T>,
    }

    impl<'a, T> Tracked<'a, T> {
        /// The guard itself, for condition waits (pause the hold around them).
        pub fn parts(&mut self) -> (&mut MutexGuard<'a, T>, &mut Held) {
            (&mut self.guard, &mut self.held)
        }
    }

    impl<T> Deref for Tracked<'_, T> {
        type Target = T;
        fn deref(&self) -> &T {
            &self.guard
        }
    }
    impl<T> DerefMut for Tracked<'_, T> {
        fn deref_mut(&mut self) -> &mut T {
            &mut self.guard
        }
    }

    /// Purpose-named acquisition of [`Mutex`].
    pub trait LockFor<T> {
        fn lock_for(&self, purpose: &'static str) -> Tracked<'_, T>;
    }

    impl<T> LockFor<T> for Mutex<T> {
        #[inline(always)]
        fn lock_for(&self, purpose: &'static str) -> Tracked<'_, T> {
            let asked = Asked::now();
            let guard = self.lock();
            Tracked {
                held: Held::begin(purpose, asked),
                guard,
            }
        }
    }

    /// One line per purpose seen so far: `name hold_ns wait_ns count`, in order of first
    /// use; `None` without the `lock-tracking` feature.
    pub fn lock_stats() -> Option<String> {
        #[cfg(feature = "lock-tracking")]
        return Some(imp::report());
        #[cfg(not(feature = "lock-tracking"))]
        None
    }

    /// Sets every purpose's figures to zero (the start of a measured window); false without
    /// the feature.
    pub fn reset_lock_stats() -> bool {
        #[cfg(feature = "lock-tracking")]
        imp::reset();
        cfg!(feature = "lock-tracking")
    }

    #[cfg(feature = "lock-tracking")]
    mod imp {
        use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
        use std::time::Duration;

        /// A purpose's figures. Purposes are few and `&'static`: slots are claimed once
        /// and never given back.
        pub struct Slot {
            name: AtomicUsize,
            len: AtomicUsize,
            hold_ns: AtomicU64,
            wait_ns: AtomicU64,
            count: AtomicU64,
        }

        impl Slot {
            pub fn acquired(&self, waited: Duration) {
                self.count.fetch_add(1, Relaxed);
                self.wait_ns.fetch_add(waited.as_nanos() as u64, Relaxed);
            }
            pub fn held(&self, d: Duration) {
                self.hold_ns.fetch_add(d.as_nanos() as u64, Relaxed);
            }
            pub fn name(&self) -> Option<&'static str> {
                let p = self.name.load(Acquire);
                if p == 0 {
                    return None;
                }
                let len = self.len.load(Relaxed);
                // SAFETY: `name` and `len` were stored from one `&'static str` (len first,
                // published by the Release store of `name`), and such a string lives for
                // ever.
                Some(unsafe {
                    std::str::from_utf8_unchecked(std::slice::from_raw_parts(p as *const u8, len))
                })
            }
        }

        const SLOTS: usize = 64;
        #[allow(clippy::declare_interior_mutable_const)]
        const EMPTY: Slot = Slot {
            name: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            hold_ns: AtomicU64::new(0),
            wait_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        };
        static TABLE: [Slot; SLOTS] = [EMPTY; SLOTS];
        static CLAIM: std::sync::Mutex<()> = std::sync::Mutex::new(());

        /// The slot of `purpose` (by address first, then by text: one purpose named in two
        /// places is one slot). Past 63 purposes, everything else shares the last.
        pub fn slot(purpose: &'static str) -> &'static Slot {
            // By address first (one comparison per slot on the path every acquisition takes),
            // by text only for a purpose seen under another address.
            let find = || {
                let at = purpose.as_ptr() as usize;
                TABLE
                    .iter()
                    .find(|s| s.name.load(Acquire) == at && s.len.load(Relaxed) == purpose.len())
                    .or_else(|| TABLE.iter().find(|s| s.name() == Some(purpose)))
            };
            if let Some(s) = find() {
                return s;
            }
            let _claim = CLAIM.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(s) = find() {
                return s;
            }
            let last = &TABLE[SLOTS - 1];
            let (s, purpose) = match TABLE.iter().find(|s| s.name.load(Relaxed) == 0) {
                Some(s) if !std::ptr::eq(s, last) => (s, purpose),
                _ => (last, "(others)"),
            };
            if s.name.load(Relaxed) == 0 {
                s.len.store(purpose.len(), Relaxed);
                s.name.store(purpose.as_ptr() as usize, Release);
            }
            s
        }

        pub fn report() -> String {
            let mut out = String::new();
            for s in &TABLE {
                let Some(name) = s.name() else { break };
                out.push_str(&format!(
                    "{name} {} {} {}\n",
                    s.hold_ns.load(Relaxed),
                    s.wait_ns.load(Relaxed),
                    s.count.load(Relaxed)
                ));
            }
            out
        }

        pub fn reset() {
            for s in &TABLE {
                s.hold_ns.store(0, Relaxed);
                s.wait_ns.store(0, Relaxed);
                s.count.store(0, Relaxed);
            }
        }
    }

    #[cfg(all(test, feature = "lock-tracking"))]
    mod tests {
        use super::*;

        #[test]
        fn holds_are_counted_per_purpose_and_pauses_are_not() {
            let m = Mutex::new(0u32);
            {
                let mut g = m.lock_for("test:a");
                *g += 1;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let hold_of = |n: &str| -> (u64, u64) {
                let r = lock_stats().unwrap();
                let l = r.lines().find(|l| l.starts_with(&format!("{n} "))).unwrap();
                let f: Vec<u64> = l.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
                (f[0], f[2])
            };
            {
                let mut g = m.lock_for("test:b");
                let (_, held) = g.parts();
                std::thread::sleep(std::time::Duration::from_millis(2));
                held.pause();
                let paused = hold_of("test:b");
                std::thread::sleep(std::time::Duration::from_millis(5));
                // Nothing is added while the hold is paused.
                assert_eq!(hold_of("test:b"), paused);
                held.resume();
            }
            let (a_hold, a_count) = hold_of("test:a");
            let (b_hold, b_count) = hold_of("test:b");
            assert_eq!((a_count, b_count), (1, 1));
            assert!(a_hold >= 5_000_000);
            assert!(b_hold >= 2_000_000);
        }
    }
}
