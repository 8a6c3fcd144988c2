//! BIO_* entry points, by subject: methods (built-in and BIO_meth_*), lifecycle and chains,
//! I/O, flags and state, BIO_ctrl, the datagram-only calls. Conversion only; the BIOs are
//! `crate::bio`'s.

mod ctrl;
mod dgram;
mod file;
mod io;
mod life;
mod meth;
mod state;

pub use ctrl::*;
pub use dgram::*;
pub use file::*;
pub use io::*;
pub use life::*;
pub use meth::*;
pub use state::*;

use crate::bio::addr::BioAddr;
use crate::bio::msg::BIO_ADDR;
use crate::error::*;

/// The opaque C type behind `BIO_METHOD *`.
#[allow(non_camel_case_types)]
pub struct bio_method_st {
    _opaque: [u8; 0],
}
pub type BIO_METHOD = bio_method_st;

/// OpenSSL's failure values for a custom BIO's I/O: -2 when the method lacks the callback
/// (BIO_R_UNSUPPORTED_METHOD), -1 otherwise; the error is queued under `func`.
pub(super) fn custom_ret<T: From<i8>>(r: Result<T>, func: &'static str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            let v = if e.code == pack(ERR_LIB_BIO, BIO_R_UNSUPPORTED_METHOD) {
                -2
            } else {
                -1
            };
            e.queue(func);
            T::from(v)
        }
    }
}

pub(super) fn opt_addr(p: *const BIO_ADDR) -> Option<BioAddr> {
    // SAFETY: a non-NULL BIO_ADDR pointer from C points at a BioAddr made by BIO_ADDR_new.
    unsafe { (p as *const BioAddr).as_ref() }.copied()
}
