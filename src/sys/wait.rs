//! Waiting: poll(2) and the eventfd used to wake a polling thread.

use std::io;

/// A non-blocking, close-on-exec eventfd.
pub fn eventfd() -> io::Result<i32> {
    // SAFETY: no pointers involved.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd)
    }
}

pub fn eventfd_signal(fd: i32) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; EAGAIN (counter full) still leaves it readable.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}

pub fn eventfd_drain(fd: i32) {
    let mut v: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN when already zero is fine.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// One descriptor to wait on: `fd`, the events wanted, and (out) the events seen.
#[derive(Clone, Copy, Debug)]
pub struct PollFd {
    pub fd: i32,
    pub read: bool,
    pub write: bool,
    pub ready: bool,
}

/// Waits until one of `fds` is ready or `timeout` passes (None: forever). EINTR counts as a
/// (spurious) return; callers re-check their conditions anyway.
pub fn poll(fds: &mut [PollFd], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|f| libc::pollfd {
            fd: f.fd,
            events: (if f.read { libc::POLLIN } else { 0 })
                | (if f.write { libc::POLLOUT } else { 0 }),
            revents: 0,
        })
        .collect();
    let ms = match timeout {
        None => -1,
        // Round up so a wait never ends just before its deadline (which would spin).
        Some(d) => d.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32,
    };
    // SAFETY: `p` is a live array of `p.len()` pollfd structures.
    let r = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EINTR) {
            return Ok(0);
        }
        return Err(e);
    }
    for (f, q) in fds.iter_mut().zip(&p) {
        f.ready = q.revents != 0;
    }
    Ok(r as usize)
}

/// poll(2) one descriptor for writability without waiting (a non-blocking connect's
/// completion): Ok(true) when writable or in error (SO_ERROR then tells which).
pub fn writable_now(fd: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd, zero timeout.
    let r = unsafe { libc::poll(&mut p, 1, 0) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EINTR) {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(r > 0 && p.revents != 0)
}
