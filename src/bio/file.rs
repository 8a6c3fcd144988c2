//! `BIO_s_file` and `BIO_new_file`: a byte stream over a file opened by name (OpenSSL wraps a
//! stdio `FILE *`; this wraps a `std::fs::File`, unbuffered). Owns the open file, its
//! end-of-file flag and the close flag. `BIO_new_fp`/`BIO_set_fp` (a caller's `FILE *`) are
//! not provided.
#![deny(unsafe_code)]

use std::ffi::c_long;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};

use crate::sync::Mutex;

use crate::error::*;

pub const BIO_TYPE_FILE: i32 = 2 | super::consts::BIO_TYPE_SOURCE_SINK;
pub const BIO_C_SET_FILENAME: i32 = 108;
pub const BIO_C_FILE_SEEK: i32 = 128;
pub const BIO_C_FILE_TELL: i32 = 133;
pub const BIO_FP_READ: c_long = 0x02;
pub const BIO_FP_WRITE: c_long = 0x04;
pub const BIO_FP_APPEND: c_long = 0x08;
pub const BIO_FP_TEXT: c_long = 0x10;
pub const BIO_R_NO_SUCH_FILE: u32 = 128;

#[derive(Default)]
pub struct FileBio {
    st: Mutex<FileState>,
}

#[derive(Default)]
struct FileState {
    file: Option<File>,
    eof: bool,
    /// BIO_get_close; without BIO_CLOSE a file opened by name stays open after free, which
    /// here only means it is leaked (OpenSSL leaks the FILE too).
    noclose: bool,
}

/// The open options of an fopen(3) mode string ("r", "w+", "ab", ...).
fn fopen_options(mode: &str) -> Result<OpenOptions> {
    let mut o = OpenOptions::new();
    let plus = mode.contains('+');
    match mode.chars().next() {
        Some('r') => o.read(true).write(plus),
        Some('w') => o.write(true).create(true).truncate(true).read(plus),
        Some('a') => o.append(true).create(true).read(plus),
        _ => {
            return Err(Error::invalid(format!(
                "fopen mode \"{mode}\" is not r, w or a"
            )));
        }
    };
    if mode[1..]
        .chars()
        .any(|c| !matches!(c, '+' | 'b' | 't' | 'x' | 'e'))
    {
        return Err(Error::invalid(format!(
            "fopen mode \"{mode}\" not understood"
        )));
    }
    if mode.contains('x') {
        o.create_new(true);
    }
    Ok(o)
}

/// The BIO_FP_* flags of BIO_read_filename and friends as an fopen(3) mode (bss_file.c's
/// table: append wins, then read+write, write, read).
pub fn flags_mode(flags: c_long) -> Result<&'static str> {
    let rw = flags & (BIO_FP_READ | BIO_FP_WRITE);
    Ok(if flags & BIO_FP_APPEND != 0 {
        if flags & BIO_FP_READ != 0 { "a+" } else { "a" }
    } else if rw == BIO_FP_READ | BIO_FP_WRITE {
        "r+"
    } else if rw == BIO_FP_WRITE {
        "w"
    } else if rw == BIO_FP_READ {
        "r"
    } else {
        return Err(Error::bio(BIO_R_BAD_FOPEN_MODE)
            .with("BIO_C_SET_FILENAME needs BIO_FP_READ, _WRITE or _APPEND"));
    })
}

/// BIO_R_BAD_FOPEN_MODE.
const BIO_R_BAD_FOPEN_MODE: u32 = 101;

impl FileBio {
    /// Opens `path` as fopen(3) would with `mode`. A missing file is BIO_R_NO_SUCH_FILE,
    /// other failures the system error, each naming the call as OpenSSL's entry does.
    pub fn open(&self, path: &str, mode: &str) -> Result<()> {
        let f = fopen_options(mode)?.open(path).map_err(|e| {
            let what = format!("calling fopen({path}, {mode}): {e}");
            match e.raw_os_error() {
                Some(libc::ENOENT) => Error::bio(BIO_R_NO_SUCH_FILE).with(what),
                Some(n) => Error::sys(n).with(what),
                None => Error::internal(what),
            }
        })?;
        let mut st = self.st.lock();
        st.file = Some(f);
        st.eof = false;
        Ok(())
    }

    fn with_file<T>(
        &self,
        f: impl FnOnce(&mut File, &mut bool) -> std::io::Result<T>,
    ) -> Result<T> {
        let mut st = self.st.lock();
        let FileState { file, eof, .. } = &mut *st;
        let file = file
            .as_mut()
            .ok_or_else(|| Error::bio(BIO_R_NO_SUCH_FILE).with("no file is open on this BIO"))?;
        f(file, eof)
            .map_err(|e| Error::sys(e.raw_os_error().unwrap_or(libc::EIO)).with(e.to_string()))
    }

    /// Reads `buf.len()` bytes, fewer only at end of file, as fread(3) does: a short read
    /// sets end of file (BIO_eof 1), so a program reading until BIO_eof stops without a
    /// final empty read, as it does over OpenSSL's stdio file BIO.
    pub fn read(&self, buf: &mut [u8]) -> Result<usize> {
        self.with_file(|f, eof| {
            let mut n = 0;
            while n < buf.len() {
                match f.read(&mut buf[n..]) {
                    Ok(0) => {
                        *eof = true;
                        break;
                    }
                    Ok(k) => n += k,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        })
    }

    /// BIO_gets: up to `buf.len()` bytes, stopping after a newline. Reads a byte at a time,
    /// since the file is unbuffered and nothing may be read past the line.
    pub fn gets(&self, buf: &mut [u8]) -> Result<usize> {
        self.with_file(|f, eof| {
            let mut n = 0;
            while n < buf.len() {
                match f.read(&mut buf[n..n + 1]) {
                    Ok(0) => {
                        *eof = true;
                        break;
                    }
                    Ok(_) => {
                        n += 1;
                        if buf[n - 1] == b'\n' {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(n)
        })
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize> {
        self.with_file(|f, _| f.write_all(buf).map(|_| buf.len()))
    }

    pub fn flush(&self) -> Result<()> {
        self.with_file(|f, _| f.flush())
    }

    /// BIO_seek (and BIO_reset, to 0): the new offset; clears end of file.
    pub fn seek(&self, off: u64) -> Result<u64> {
        self.with_file(|f, eof| {
            *eof = false;
            f.seek(SeekFrom::Start(off))
        })
    }

    /// BIO_tell: the current offset.
    pub fn tell(&self) -> Result<u64> {
        self.with_file(|f, _| f.stream_position())
    }

    pub fn eof(&self) -> bool {
        self.st.lock().eof
    }

    pub fn get_close(&self) -> bool {
        !self.st.lock().noclose
    }
    pub fn set_close(&self, close: bool) {
        self.st.lock().noclose = !close;
    }
}

impl Drop for FileBio {
    fn drop(&mut self) {
        let st = self.st.get_mut();
        if st.noclose {
            // BIO_NOCLOSE: the descriptor stays open, as a FILE the BIO did not close would.
            if let Some(f) = st.file.take() {
                std::mem::forget(f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> String {
        let d = std::env::temp_dir().join(format!("osslquic-file-{}-{name}", std::process::id()));
        d.to_string_lossy().into_owned()
    }

    #[test]
    fn write_then_read_lines_and_eof() {
        let p = tmp("rw");
        let b = FileBio::default();
        b.open(&p, "w+").unwrap();
        assert_eq!(b.write(b"one\ntwo\n").unwrap(), 8);
        assert_eq!(b.tell().unwrap(), 8);
        b.seek(0).unwrap();
        let mut line = [0u8; 16];
        assert_eq!(b.gets(&mut line).unwrap(), 4);
        assert_eq!(&line[..4], b"one\n");
        let mut two = [0u8; 2];
        assert_eq!(b.read(&mut two).unwrap(), 2);
        assert!(!b.eof(), "a full read is not the end");
        let mut rest = [0u8; 16];
        assert_eq!(b.read(&mut rest).unwrap(), 2, "short read at the end");
        assert_eq!(&rest[..2], b"o\n");
        assert!(b.eof(), "a short read sets end of file, as fread does");
        assert_eq!(b.read(&mut rest).unwrap(), 0);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn missing_file_and_bad_modes() {
        let b = FileBio::default();
        let e = b.open(&tmp("absent"), "r").unwrap_err();
        assert_eq!(e.reason(), BIO_R_NO_SUCH_FILE);
        assert!(b.open(&tmp("x"), "q").is_err());
        assert!(b.read(&mut [0u8; 4]).is_err(), "no file open");
        assert_eq!(flags_mode(BIO_FP_READ).unwrap(), "r");
        assert_eq!(flags_mode(BIO_FP_READ | BIO_FP_WRITE).unwrap(), "r+");
        assert_eq!(flags_mode(BIO_FP_APPEND).unwrap(), "a");
        assert!(flags_mode(0).is_err());
    }
}
