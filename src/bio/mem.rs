//! `BIO_s_mem` and `BIO_new_mem_buf`: a growable byte buffer read from the front, as
//! OpenSSL's bss_mem.c. Owns the bytes, the read offset, the read-only flag and the value
//! a read of an empty buffer returns (`BIO_set_mem_eof_return`: -1 by default, which is a
//! would-block with retry-read; 0 for BIO_new_mem_buf, which is end of data).

use crate::sync::Mutex;

use crate::error::*;

/// BIO_R_WRITE_TO_READ_ONLY_BIO.
const BIO_R_WRITE_TO_READ_ONLY_BIO: u32 = 126;

pub struct MemBio {
    st: Mutex<MemState>,
}

struct MemState {
    data: Vec<u8>,
    /// Bytes before `off` have been read (a read-only BIO rewinds to 0 on BIO_reset).
    off: usize,
    rdonly: bool,
    eof_return: i32,
    close: bool,
}

/// What a read found.
pub enum MemRead {
    Data(usize),
    /// Empty: the BIO_set_mem_eof_return value (0 is end of data, anything else a retry).
    Empty(i32),
}

impl Default for MemBio {
    fn default() -> Self {
        Self::new()
    }
}

impl MemBio {
    pub fn new() -> Self {
        MemBio {
            st: Mutex::new(MemState {
                data: Vec::new(),
                off: 0,
                rdonly: false,
                eof_return: -1,
                close: true,
            }),
        }
    }

    /// BIO_new_mem_buf: read-only data (copied here; OpenSSL keeps the caller's pointer),
    /// empty reads return 0.
    pub fn read_only(bytes: &[u8]) -> Self {
        let m = Self::new();
        {
            let mut st = m.st.lock();
            st.data = bytes.to_vec();
            st.rdonly = true;
            st.eof_return = 0;
        }
        m
    }

    pub fn read(&self, buf: &mut [u8]) -> MemRead {
        let mut st = self.st.lock();
        let avail = st.data.len() - st.off;
        if avail == 0 {
            return if buf.is_empty() {
                MemRead::Data(0)
            } else {
                MemRead::Empty(st.eof_return)
            };
        }
        let n = avail.min(buf.len());
        let off = st.off;
        buf[..n].copy_from_slice(&st.data[off..off + n]);
        st.off += n;
        if !st.rdonly && st.off == st.data.len() {
            st.data.clear();
            st.off = 0;
        }
        MemRead::Data(n)
    }

    /// BIO_gets: up to `cap` bytes, stopping after the first newline; 0 when empty (no retry).
    pub fn gets(&self, buf: &mut [u8]) -> usize {
        let n = {
            let st = self.st.lock();
            let avail = &st.data[st.off..];
            let j = avail.len().min(buf.len());
            avail[..j]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(j, |i| i + 1)
        };
        if n == 0 {
            return 0;
        }
        match self.read(&mut buf[..n]) {
            MemRead::Data(n) => n,
            MemRead::Empty(_) => 0,
        }
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        let mut st = self.st.lock();
        if st.rdonly {
            return Err(
                Error::bio(BIO_R_WRITE_TO_READ_ONLY_BIO).with("a BIO_new_mem_buf BIO is read-only")
            );
        }
        if st.off > 0 {
            // Move the unread bytes to the front, as OpenSSL's mem_buf_sync does on write.
            let off = st.off;
            st.data.drain(..off);
            st.off = 0;
        }
        st.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    /// Bytes left to read (BIO_pending, BIO_get_mem_data's result).
    pub fn pending(&self) -> usize {
        let st = self.st.lock();
        st.data.len() - st.off
    }

    /// BIO_get_mem_data: the unread bytes (valid until the next write, reset or free).
    pub fn data(&self) -> (*const u8, usize) {
        let st = self.st.lock();
        // SAFETY: off <= data.len(), so the pointer stays within (or one past) the vector.
        (
            unsafe { st.data.as_ptr().add(st.off) },
            st.data.len() - st.off,
        )
    }

    /// BIO_reset: a read-only BIO rewinds to its start, a writable one is emptied.
    pub fn reset(&self) {
        let mut st = self.st.lock();
        st.off = 0;
        if !st.rdonly {
            st.data.clear();
        }
    }

    pub fn eof_return(&self) -> i32 {
        self.st.lock().eof_return
    }
    pub fn set_eof_return(&self, v: i32) {
        self.st.lock().eof_return = v;
    }

    pub fn get_close(&self) -> bool {
        self.st.lock().close
    }
    pub fn set_close(&self, c: bool) {
        self.st.lock().close = c;
    }
}
