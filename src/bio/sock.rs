//! `BIO_s_socket`: a byte-stream BIO over a connected socket (TCP, or any fd read(2) and
//! write(2) accept). Owns the fd and its close flag; knows nothing of TLS.
//! Retry flags and EOF follow OpenSSL's bss_sock.c: a non-fatal errno (EAGAIN, EINTR,
//! EINPROGRESS, EALREADY, ENOTCONN, EPROTO) is a would-block, a read of 0 bytes sets
//! BIO_FLAGS_IN_EOF (which BIO_eof reports); the caller (`Bio`) turns both into flags.
#![deny(unsafe_code)]

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::Relaxed};

use super::msg::BIO_POLL_DESCRIPTOR;
use crate::error::*;
use crate::sys;

pub struct SockBio {
    /// -1 until BIO_set_fd (OpenSSL's `init == 0`).
    fd: AtomicI32,
    close: AtomicBool,
}

/// A non-fatal errno (sys::is_retry_errno, BIO_sock_should_retry's set) is a would-block.
fn io_result(r: std::io::Result<usize>) -> Result<usize> {
    r.map_err(|e| {
        let e = e.raw_os_error().unwrap_or(0);
        if sys::is_retry_errno(e) {
            Error::would_block()
        } else {
            Error::sys(e)
        }
    })
}

impl Default for SockBio {
    fn default() -> Self {
        SockBio {
            fd: AtomicI32::new(-1),
            close: AtomicBool::new(false),
        }
    }
}

impl SockBio {
    pub fn fd(&self) -> i32 {
        self.fd.load(Relaxed)
    }

    fn need_fd(&self) -> Result<i32> {
        let fd = self.fd();
        if fd < 0 {
            Err(Error::bio(BIO_R_UNINITIALIZED).with("no socket: call BIO_set_fd first"))
        } else {
            Ok(fd)
        }
    }

    /// BIO_set_fd: closes the previous fd if the close flag says so, then adopts `fd`.
    pub fn set_fd(&self, fd: i32, close: bool) -> Result<()> {
        if fd < 0 {
            return Err(Error::invalid(format!("bad file descriptor {fd}")));
        }
        self.release();
        self.close.store(close, Relaxed);
        self.fd.store(fd, Relaxed);
        Ok(())
    }

    pub fn get_close(&self) -> bool {
        self.close.load(Relaxed)
    }
    pub fn set_close(&self, c: bool) {
        self.close.store(c, Relaxed);
    }

    /// Reads what the socket has (at most `buf.len()`); Ok(0) is end of stream.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        io_result(sys::read(self.need_fd()?, buf))
    }

    /// Writes what the socket takes now. MSG_NOSIGNAL keeps a closed peer from raising
    /// SIGPIPE (OpenSSL uses write(2) and leaves that to the application); a descriptor
    /// that is not a socket gets write(2).
    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        let fd = self.need_fd()?;
        if buf.is_empty() {
            return Ok(0);
        }
        io_result(sys::write_stream(fd, buf))
    }

    /// Both poll descriptors are the fd (bss_sock.c); none before BIO_set_fd.
    pub fn poll_descriptor(&self) -> Result<BIO_POLL_DESCRIPTOR> {
        Ok(BIO_POLL_DESCRIPTOR::fd(self.need_fd()?))
    }

    /// Gives up the fd without closing it (the connect BIO closes it itself, whatever the
    /// close flag, when it moves on to the next address).
    pub(crate) fn take_fd(&self) -> i32 {
        self.fd.swap(-1, Relaxed)
    }

    fn release(&self) {
        let fd = self.fd.swap(-1, Relaxed);
        if fd >= 0 && self.close.load(Relaxed) {
            let _ = sys::close(fd);
        }
    }
}

impl Drop for SockBio {
    fn drop(&mut self) {
        self.release();
    }
}
