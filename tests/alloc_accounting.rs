//! The global allocator's accounting (`osslquic::alloc`), which tests/budget.rs relies on.
//! Its own test binary: the counters are process-wide, and other tests freeing what they
//! allocated before accounting started would move them.

use osslquic::alloc;

#[test]
fn accounting_counts_what_was_asked_for() {
    alloc::set_accounting(true);
    alloc::reset_peak();
    let before = alloc::live();
    let v: Vec<u8> = Vec::with_capacity(10 << 20);
    assert_eq!(alloc::live() - before, 10 << 20);
    assert_eq!(alloc::peak() - before, 10 << 20);
    let mut w: Vec<u8> = Vec::with_capacity(3000);
    w.reserve_exact(7000);
    assert_eq!(alloc::live() - before, (10 << 20) + 7000);
    drop(v);
    drop(w);
    assert_eq!(alloc::live(), before);
    assert_eq!(alloc::peak() - before, (10 << 20) + 7000);
    alloc::set_accounting(false);
    let x: Vec<u8> = Vec::with_capacity(1 << 20);
    assert_eq!(alloc::live(), before);
    drop(x);
}
