//! `BIO_s_bio` / `BIO_new_bio_pair`: two BIOs joined by a byte stream in each direction, as
//! OpenSSL's bss_bio.c (the network side of a TLS object driven from memory). Each half
//! writes into its own bounded buffer, which the other half reads. Partial writes; a full
//! buffer is retry-write, an empty one retry-read (and records the reader's request for
//! BIO_ctrl_get_read_request); after BIO_shutdown_wr the reader drains, then sees EOF.
//! Both halves share one mutex, so either may be used from any thread.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::sync::Mutex;

use crate::error::*;

/// OpenSSL's default write buffer (17 KiB: one TLS record and some).
pub const DEFAULT_SIZE: usize = 17 * 1024;

#[derive(Default)]
struct Dir {
    buf: VecDeque<u8>,
    size: usize,
    /// BIO_shutdown_wr by the writer.
    closed: bool,
    /// What the reader last asked for and could not get (capped at `size`).
    request: usize,
}

struct Core {
    /// dirs[i] holds what half i wrote.
    dirs: [Dir; 2],
    /// Cleared when either half is freed or BIO_destroy_bio_pair runs.
    live: bool,
}

pub struct BytePair {
    st: Mutex<Half>,
}

struct Half {
    size: usize,
    link: Option<(Arc<Mutex<Core>>, usize)>,
}

pub enum PairRead {
    Data(usize),
    Eof,
}

impl Default for BytePair {
    fn default() -> Self {
        BytePair {
            st: Mutex::new(Half {
                size: DEFAULT_SIZE,
                link: None,
            }),
        }
    }
}

fn unpaired() -> Error {
    Error::bio(BIO_R_UNINITIALIZED).with("this BIO_s_bio half is not paired")
}

impl BytePair {
    /// The live link, dropping it if the other half has gone.
    fn link(&self) -> Option<(Arc<Mutex<Core>>, usize)> {
        let mut h = self.st.lock();
        if let Some((core, _)) = &h.link
            && !core.lock().live
        {
            h.link = None;
        }
        h.link.clone()
    }

    pub fn is_paired(&self) -> bool {
        self.link().is_some()
    }

    /// BIO_set_write_buf_size: before pairing only; 0 is refused.
    pub fn set_write_buf_size(&self, n: usize) -> Result<()> {
        if self.is_paired() {
            return Err(Error::bio(BIO_R_IN_USE).with("the pair is already made"));
        }
        if n == 0 {
            return Err(Error::invalid("write buffer size must not be 0"));
        }
        self.st.lock().size = n;
        Ok(())
    }
    pub fn write_buf_size(&self) -> usize {
        self.st.lock().size
    }

    /// BIO_make_bio_pair: both halves must be unpaired and distinct.
    pub fn make_pair(a: &BytePair, b: &BytePair) -> Result<()> {
        if std::ptr::eq(a, b) {
            return Err(Error::invalid("cannot pair a BIO with itself"));
        }
        if a.is_paired() || b.is_paired() {
            return Err(Error::bio(BIO_R_IN_USE).with("a half is already paired"));
        }
        let (mut ha, mut hb) = (a.st.lock(), b.st.lock());
        let dir = |size| Dir {
            size,
            ..Dir::default()
        };
        let core = Arc::new(Mutex::new(Core {
            dirs: [dir(ha.size), dir(hb.size)],
            live: true,
        }));
        ha.link = Some((core.clone(), 0));
        hb.link = Some((core, 1));
        Ok(())
    }

    /// BIO_destroy_bio_pair (and freeing a half): both halves become unpaired.
    pub fn destroy(&self) {
        if let Some((core, _)) = self.st.lock().link.take() {
            core.lock().live = false;
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<PairRead> {
        let (core, me) = self.link().ok_or_else(unpaired)?;
        let mut c = core.lock();
        let d = &mut c.dirs[1 - me];
        d.request = 0;
        if buf.is_empty() {
            return Ok(PairRead::Data(0));
        }
        if d.buf.is_empty() {
            if d.closed {
                return Ok(PairRead::Eof);
            }
            d.request = buf.len().min(d.size);
            return Err(Error::would_block());
        }
        let n = buf.len().min(d.buf.len());
        let (x, y) = d.buf.as_slices();
        let k = n.min(x.len());
        buf[..k].copy_from_slice(&x[..k]);
        buf[k..n].copy_from_slice(&y[..n - k]);
        d.buf.drain(..n);
        Ok(PairRead::Data(n))
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        let (core, me) = self.link().ok_or_else(unpaired)?;
        let mut c = core.lock();
        let d = &mut c.dirs[me];
        d.request = 0;
        if buf.is_empty() {
            return Ok(0);
        }
        if d.closed {
            return Err(Error::bio(BIO_R_BROKEN_PIPE).with("BIO_shutdown_wr was called"));
        }
        let room = d.size - d.buf.len();
        if room == 0 {
            return Err(Error::would_block());
        }
        let n = buf.len().min(room);
        d.buf.extend(&buf[..n]);
        Ok(n)
    }

    fn with<T>(&self, none: T, f: impl FnOnce(&mut Core, usize) -> T) -> T {
        match self.link() {
            Some((core, me)) => f(&mut core.lock(), me),
            None => none,
        }
    }

    /// Bytes this half can read now (BIO_pending).
    pub fn pending(&self) -> usize {
        self.with(0, |c, me| c.dirs[1 - me].buf.len())
    }
    /// Bytes this half wrote that the other has not read (BIO_wpending).
    pub fn wpending(&self) -> usize {
        self.with(0, |c, me| c.dirs[me].buf.len())
    }
    /// Bytes a write would take now; 0 unpaired or after BIO_shutdown_wr.
    pub fn write_guarantee(&self) -> usize {
        self.with(0, |c, me| {
            let d = &c.dirs[me];
            if d.closed { 0 } else { d.size - d.buf.len() }
        })
    }
    /// What the other half last failed to read (BIO_ctrl_get_read_request).
    pub fn read_request(&self) -> usize {
        self.with(0, |c, me| c.dirs[me].request)
    }
    pub fn reset_read_request(&self) {
        self.with((), |c, me| c.dirs[me].request = 0)
    }
    pub fn shutdown_wr(&self) {
        self.with((), |c, me| c.dirs[me].closed = true)
    }
    /// BIO_eof: 1 unpaired, or when the other half shut down writing and all was read.
    pub fn eof(&self) -> bool {
        self.with(true, |c, me| {
            let d = &c.dirs[1 - me];
            d.buf.is_empty() && d.closed
        })
    }
    /// BIO_reset: drops what this half wrote and the other has not read.
    pub fn reset(&self) {
        self.with((), |c, me| c.dirs[me].buf.clear())
    }
}

impl Drop for BytePair {
    fn drop(&mut self) {
        self.destroy();
    }
}
