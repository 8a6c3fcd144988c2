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

    /// Writes `bufs` in order with one system call, as `write` does one buffer.
    pub fn write_vectored(&self, bufs: &[std::io::IoSlice<'_>]) -> Result<usize> {
        let fd = self.need_fd()?;
        if bufs.iter().all(|b| b.is_empty()) {
            return Ok(0);
        }
        io_result(sys::writev_stream(fd, bufs))
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

#[cfg(test)]
mod tests {
    use crate::bio::consts::{BIO_FLAGS_SHOULD_RETRY, BIO_FLAGS_WRITE};
    use crate::bio::{Bio, METHOD_MEM, METHOD_SOCKET};
    use std::io::{IoSlice, Read};
    use std::os::fd::IntoRawFd;
    use std::os::unix::net::UnixStream;

    fn socket_bio() -> (std::sync::Arc<Bio>, UnixStream) {
        let (ours, peer) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let b = Bio::new(&METHOD_SOCKET);
        b.sock().unwrap().set_fd(ours.into_raw_fd(), true).unwrap();
        (b, peer)
    }

    #[test]
    fn vectored_write_sends_the_buffers_in_order_in_one_call() {
        let (b, mut peer) = socket_bio();
        let parts: [&[u8]; 4] = [b"one ", b"", b"two ", b"three"];
        let bufs: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        assert_eq!(b.write_vectored(&bufs).unwrap(), 13);
        let mut got = [0u8; 13];
        peer.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"one two three");
        assert_eq!(b.write_vectored(&[IoSlice::new(b"")]).unwrap(), 0);
    }

    #[test]
    fn vectored_write_to_a_full_socket_is_a_retry() {
        let (b, _peer) = socket_bio();
        let chunk = vec![7u8; 1 << 16];
        let bufs = [IoSlice::new(&chunk), IoSlice::new(&chunk)];
        let mut taken = 0usize;
        let err = loop {
            match b.write_vectored(&bufs) {
                Ok(n) => {
                    assert!(n > 0 && n <= 2 << 16);
                    taken += n;
                    assert!(taken < 64 << 20, "the socket never filled");
                }
                Err(e) => break e,
            }
        };
        assert!(err.is_would_block());
        assert_eq!(
            b.flags() & (BIO_FLAGS_SHOULD_RETRY | BIO_FLAGS_WRITE),
            BIO_FLAGS_SHOULD_RETRY | BIO_FLAGS_WRITE
        );
    }

    #[test]
    fn other_bios_take_the_first_buffer_through_write() {
        let m = Bio::new(&METHOD_MEM);
        let bufs = [IoSlice::new(b""), IoSlice::new(b"ab"), IoSlice::new(b"cd")];
        assert_eq!(m.write_vectored(&bufs).unwrap(), 2);
        let mut out = [0u8; 8];
        assert_eq!(m.read(&mut out).unwrap(), 2);
        assert_eq!(&out[..2], b"ab");
    }
}
