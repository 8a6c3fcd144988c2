//! File BIOs at the C boundary: BIO_s_file, BIO_new_file and their ctrls (BIO_read_filename
//! and friends, BIO_seek, BIO_tell) and BIO_gets on them. Conversion only; the file is
//! `bio::file`'s.

use std::ffi::{c_char, c_int};

use super::BIO_METHOD;
use crate::bio::{Bio, METHOD_FILE};
use crate::error::*;
use crate::ffi::{BIO, bio_into_handle, cstr_arg, ffi_entry};

/// The file method: BIO_new(BIO_s_file()) makes a BIO with no file open yet (open one with
/// BIO_read_filename, BIO_write_filename, BIO_append_filename or BIO_rw_filename). See
/// BIO_s_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_s_file() -> *const BIO_METHOD {
    &METHOD_FILE as *const _ as *const BIO_METHOD
}

/// Opens `filename` with fopen(3)'s `mode` ("r", "w", "a", each with an optional "+" and
/// "b") and returns a file BIO that closes it when freed, or NULL with an error
/// (BIO_R_NO_SUCH_FILE for a missing file, else the system error). See BIO_new_file(3).
#[unsafe(no_mangle)]
pub extern "C" fn BIO_new_file(filename: *const c_char, mode: *const c_char) -> *mut BIO {
    ffi_entry!(BIO_new_file, {
        let path = cstr_arg(filename, "filename")?;
        let mode = cstr_arg(mode, "mode")?;
        let b = Bio::new(&METHOD_FILE);
        b.file()
            .ok_or_else(|| Error::internal("file BIO"))?
            .open(path, mode)?;
        Ok(bio_into_handle(b))
    })
}

/// BIO_gets on a file BIO: a line of at most `size - 1` bytes, NUL-terminated.
pub(super) fn file_gets(bio: &Bio, buf: *mut c_char, size: c_int) -> Result<c_int> {
    let f = bio
        .file()
        .ok_or_else(|| Error::internal("not a file BIO"))?;
    if size <= 0 {
        return Ok(0);
    }
    let buf = crate::ffi::slice_arg_mut(buf.cast(), size as usize, "buf")?;
    let n = f.gets(&mut buf[..size as usize - 1])?;
    buf[n] = 0;
    Ok(n as c_int)
}
