//! The raw OS calls, in one place, by subject: `udp` (batched datagram I/O with GSO/GRO and
//! control messages), `sock` (sockets, options, connect/accept), `wait` (poll, eventfd),
//! `fork` (prefork sockets and channels, fork(2)), `addr` (`BioAddr`, the sockaddr value,
//! getaddrinfo/getnameinfo).
//! Owns: every `libc` call. Must not know about BIOs or SSL. Everything is re-exported here,
//! so callers write `sys::poll`, `sys::send_batch`.

use std::io;

mod addr;
mod fork;
mod sock;
mod udp;
mod wait;

pub use addr::*;
pub use fork::*;
pub use sock::*;
pub use udp::*;
pub use wait::*;

pub fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
