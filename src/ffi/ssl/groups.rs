//! Key-exchange groups at the C boundary: the group ctrls of SSL_CTX_ctrl and SSL_ctrl
//! (SSL_CTX_set1_groups_list, SSL_set1_groups, SSL_get_negotiated_group: macros in OpenSSL's
//! ssl.h), SSL_group_to_name, SSL_get0_group_name, and the NIDs they use. Conversion only;
//! names, lists and NIDs are `ssl::groups`'.

use std::ffi::{c_char, c_int, c_long, c_void};

use crate::error::*;
use crate::ffi::{SSL, cstr_arg, ffi_entry, guard_with, ssl_arg};
use crate::ssl::groups::{self, Groups};

pub const SSL_CTRL_SET_GROUPS: c_int = 91;
pub const SSL_CTRL_SET_GROUPS_LIST: c_int = 92;
pub const SSL_CTRL_GET_NEGOTIATED_GROUP: c_int = 134;
/// Ored with a TLS group id that has no NID (X25519MLKEM768: 0x10011ec).
#[allow(non_upper_case_globals)]
pub const TLSEXT_nid_unknown: c_int = 0x100_0000;
// The NIDs of the groups osslquic's provider has or OpenSSL's lists name (obj_mac.h).
#[allow(non_upper_case_globals)]
pub const NID_undef: c_int = 0;
#[allow(non_upper_case_globals)]
pub const NID_X9_62_prime256v1: c_int = 415;
#[allow(non_upper_case_globals)]
pub const NID_secp384r1: c_int = 715;
#[allow(non_upper_case_globals)]
pub const NID_secp521r1: c_int = 716;
pub const NID_X25519: c_int = 1034;
pub const NID_X448: c_int = 1035;
#[allow(non_upper_case_globals)]
pub const NID_ffdhe2048: c_int = 1126;
#[allow(non_upper_case_globals)]
pub const NID_ffdhe3072: c_int = 1127;

/// The group list of a SET_GROUPS (NIDs: `larg` of them at `parg`) or SET_GROUPS_LIST (a
/// string at `parg`) ctrl; None for other commands.
pub(super) fn groups_ctrl(cmd: c_int, larg: c_long, parg: *mut c_void) -> Option<Result<Groups>> {
    match cmd {
        SSL_CTRL_SET_GROUPS_LIST => {
            Some(cstr_arg(parg as *const c_char, "list").and_then(groups::parse_list))
        }
        SSL_CTRL_SET_GROUPS => Some(nids_arg(larg, parg).and_then(|n| groups::from_nids(&n))),
        _ => None,
    }
}

fn nids_arg(n: c_long, p: *mut c_void) -> Result<Vec<i32>> {
    if n <= 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::null("glist"));
    }
    let n = usize::try_from(n).map_err(|_| Error::invalid("group count too large"))?;
    if n > 1 << 16 {
        return Err(Error::invalid("group count too large"));
    }
    // SAFETY: non-NULL, and the caller passes `n` ints (SSL_CTX_set1_groups(3) contract).
    Ok(unsafe { std::slice::from_raw_parts(p as *const c_int, n) }.to_vec())
}

/// SSL_get_negotiated_group's answer: the NID of the group the handshake used, or
/// TLSEXT_nid_unknown | its TLS id for a group without one (X25519MLKEM768), NID_undef (0)
/// before the key exchange.
pub(super) fn negotiated_nid(s: &crate::ssl::Ssl) -> c_long {
    groups::nid_of(s.negotiated_group()) as c_long
}

/// The TLS name of group `id` (a NID, or TLSEXT_nid_unknown | TLS id as
/// SSL_get_negotiated_group returns): "X25519MLKEM768", "x25519", "secp256r1"..., as
/// OpenSSL 3.5 names them; NULL if unknown (no error queued, as OpenSSL), or with an error
/// for a NULL `ssl`. Static: never freed. See SSL_group_to_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_group_to_name(ssl: *mut SSL, id: c_int) -> *const c_char {
    guard_with("SSL_group_to_name", std::ptr::null(), || {
        ssl_arg(ssl)?;
        Ok(groups::name_of_nid(id).map_or(std::ptr::null(), |n| n.as_ptr()))
    })
}

/// The TLS name of the group the connection's handshake used (as SSL_group_to_name names
/// it), or NULL before the key exchange. Static: never freed. See SSL_get0_group_name(3).
#[unsafe(no_mangle)]
pub extern "C" fn SSL_get0_group_name(ssl: *mut SSL) -> *const c_char {
    ffi_entry!(SSL_get0_group_name, {
        let g = ssl_arg(ssl)?.negotiated_group();
        Ok(g.and_then(|g| groups::name_of(u16::from(g)))
            .map_or(std::ptr::null(), |n| n.as_ptr()))
    })
}
