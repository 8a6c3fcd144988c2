//! The libcrypto calls a session-ticket key callback makes (SSL_CTX_set_tlsext_ticket_key_evp_cb,
//! issue 15), and RAND_bytes, which it uses for its IV.
//!
//! A ticket key callback is given a cipher context and a MAC context and initialises them
//! with its key: `EVP_EncryptInit_ex`/`EVP_DecryptInit_ex` (AES-128-CBC or AES-256-CBC) and
//! `EVP_MAC_CTX_set_params` (HMAC: the "key" and a SHA-256 "digest"). These contexts exist
//! only for the call: they record the keys, from which `ssl::tickets` makes its AEAD key (the
//! tickets are osslquic's own format, not CBC + HMAC). Contexts of any other origin do not
//! exist here: osslquic exports no EVP_CIPHER_CTX_new and no other cipher or MAC call.

use std::ffi::{CStr, c_char, c_int, c_uint, c_void};

use crate::error::{Error, Result};
use crate::ffi::{ffi_entry, mut_arg, slice_arg, slice_arg_mut};

/// The opaque C type behind `EVP_CIPHER *`: a cipher a ticket key callback may name.
#[allow(non_camel_case_types)]
pub struct evp_cipher_st {
    key_len: usize,
}
pub type EVP_CIPHER = evp_cipher_st;

static AES_128_CBC: EVP_CIPHER = evp_cipher_st { key_len: 16 };
static AES_256_CBC: EVP_CIPHER = evp_cipher_st { key_len: 32 };

/// The IV length of both ciphers: the size of the IV buffer a ticket key callback is given.
pub const EVP_MAX_IV_LENGTH: usize = 16;
/// The longest key a cipher takes (OpenSSL's bound; ours take 16 or 32 bytes).
pub const EVP_MAX_KEY_LENGTH: usize = 64;

/// The opaque C type behind `EVP_CIPHER_CTX *`: the cipher context a ticket key callback is
/// given, recording the key it is initialised with.
#[allow(non_camel_case_types)]
#[derive(Default)]
pub struct evp_cipher_ctx_st {
    cipher_key_len: Option<usize>,
    pub(crate) key: Option<Vec<u8>>,
}
pub type EVP_CIPHER_CTX = evp_cipher_ctx_st;

/// The opaque C type behind `EVP_MAC_CTX *`: the HMAC context a ticket key callback is given,
/// recording its key.
#[allow(non_camel_case_types)]
#[derive(Default)]
pub struct evp_mac_ctx_st {
    pub(crate) key: Option<Vec<u8>>,
}
pub type EVP_MAC_CTX = evp_mac_ctx_st;

/// The opaque C type behind `ENGINE *` (always NULL here).
#[allow(non_camel_case_types)]
pub struct engine_st {
    _opaque: [u8; 0],
}
pub type ENGINE = engine_st;

/// One parameter of an OSSL_PARAM array, laid out as OpenSSL's (an array ends with a NULL
/// `key`).
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct ossl_param_st {
    pub key: *const c_char,
    pub data_type: c_uint,
    pub data: *mut c_void,
    pub data_size: usize,
    pub return_size: usize,
}
pub type OSSL_PARAM = ossl_param_st;

pub const OSSL_PARAM_UTF8_STRING: c_uint = 4;
pub const OSSL_PARAM_OCTET_STRING: c_uint = 5;
/// `return_size` of a parameter nothing has written to (OpenSSL's OSSL_PARAM_UNMODIFIED).
const UNMODIFIED: usize = usize::MAX;

/// AES-128 in CBC mode, as a ticket key callback names it. See EVP_aes_128_cbc(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_aes_128_cbc() -> *const EVP_CIPHER {
    &AES_128_CBC
}

/// AES-256 in CBC mode, as a ticket key callback names it. See EVP_aes_256_cbc(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_aes_256_cbc() -> *const EVP_CIPHER {
    &AES_256_CBC
}

/// Records `key` (and the cipher, if given) in a ticket callback's cipher context. A NULL
/// cipher keeps the one set before; a NULL key sets the cipher only.
fn cipher_init(
    ctx: *mut EVP_CIPHER_CTX,
    cipher: *const EVP_CIPHER,
    key: *const u8,
) -> Result<c_int> {
    let ctx = mut_arg(ctx, "ctx")?;
    // SAFETY: NULL or one of our two static ciphers (no other EVP_CIPHER exists).
    if let Some(c) = unsafe { cipher.as_ref() } {
        ctx.cipher_key_len = Some(c.key_len);
    }
    let Some(len) = ctx.cipher_key_len else {
        return Err(Error::invalid(
            "no cipher: name EVP_aes_256_cbc() or EVP_aes_128_cbc()",
        ));
    };
    if !key.is_null() {
        ctx.key = Some(slice_arg(key.cast(), len, "key")?.to_vec());
    }
    Ok(1)
}

/// In a ticket key callback: the cipher and key of a new ticket. The IV and engine are not
/// used (osslquic's tickets carry their own nonce). See EVP_EncryptInit_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_EncryptInit_ex(
    ctx: *mut EVP_CIPHER_CTX,
    cipher: *const EVP_CIPHER,
    engine: *mut ENGINE,
    key: *const u8,
    iv: *const u8,
) -> c_int {
    let _ = (engine, iv);
    ffi_entry!(EVP_EncryptInit_ex, { cipher_init(ctx, cipher, key) })
}

/// In a ticket key callback: the cipher and key of the ticket presented. See
/// EVP_DecryptInit_ex(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_DecryptInit_ex(
    ctx: *mut EVP_CIPHER_CTX,
    cipher: *const EVP_CIPHER,
    engine: *mut ENGINE,
    key: *const u8,
    iv: *const u8,
) -> c_int {
    let _ = (engine, iv);
    ffi_entry!(EVP_DecryptInit_ex, { cipher_init(ctx, cipher, key) })
}

/// As EVP_EncryptInit_ex, OpenSSL 3's form (parameters ignored). See EVP_EncryptInit_ex2(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_EncryptInit_ex2(
    ctx: *mut EVP_CIPHER_CTX,
    cipher: *const EVP_CIPHER,
    key: *const u8,
    iv: *const u8,
    params: *const OSSL_PARAM,
) -> c_int {
    let _ = (iv, params);
    ffi_entry!(EVP_EncryptInit_ex2, { cipher_init(ctx, cipher, key) })
}

/// As EVP_DecryptInit_ex, OpenSSL 3's form (parameters ignored). See EVP_DecryptInit_ex2(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_DecryptInit_ex2(
    ctx: *mut EVP_CIPHER_CTX,
    cipher: *const EVP_CIPHER,
    key: *const u8,
    iv: *const u8,
    params: *const OSSL_PARAM,
) -> c_int {
    let _ = (iv, params);
    ffi_entry!(EVP_DecryptInit_ex2, { cipher_init(ctx, cipher, key) })
}

/// The IV length of a ticket callback's cipher context: 16. See EVP_CIPHER_CTX_get_iv_length(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_CIPHER_CTX_get_iv_length(ctx: *const EVP_CIPHER_CTX) -> c_int {
    ffi_entry!(EVP_CIPHER_CTX_get_iv_length, -1, {
        crate::ffi::ref_arg(ctx, "ctx")?;
        Ok(EVP_MAX_IV_LENGTH as c_int)
    })
}

/// In a ticket key callback: the HMAC's parameters. "key" (an octet string) is recorded;
/// "digest" must name SHA-256 (the only digest OpenSSL's tickets use); others are ignored,
/// as OpenSSL's HMAC ignores parameters it does not know. See EVP_MAC_CTX_set_params(3).
#[unsafe(no_mangle)]
pub extern "C" fn EVP_MAC_CTX_set_params(
    ctx: *mut EVP_MAC_CTX,
    params: *const OSSL_PARAM,
) -> c_int {
    ffi_entry!(EVP_MAC_CTX_set_params, {
        let ctx = mut_arg(ctx, "ctx")?;
        let mut p = params;
        // A NULL array sets nothing, as in OpenSSL. At most 64 entries are read: an array
        // without its end marker is refused rather than read past.
        for _ in 0..64 {
            // SAFETY: the caller passes an array ending with a NULL key (checked non-NULL).
            let Some(param) = (unsafe { p.as_ref() }) else {
                return Ok(1);
            };
            if param.key.is_null() {
                return Ok(1);
            }
            // SAFETY: a parameter's key is a NUL-terminated name.
            let name = unsafe { CStr::from_ptr(param.key) }.to_bytes();
            match name {
                b"key" => {
                    if param.data_type != OSSL_PARAM_OCTET_STRING {
                        return Err(Error::invalid("the MAC key is an octet string"));
                    }
                    ctx.key = Some(slice_arg(param.data, param.data_size, "key")?.to_vec());
                }
                b"digest" => {
                    let d = slice_arg(param.data, param.data_size, "digest")?;
                    let d = d.split(|&b| b == 0).next().unwrap_or_default();
                    if !matches!(
                        d.to_ascii_uppercase().as_slice(),
                        b"SHA256" | b"SHA2-256" | b"SHA-256"
                    ) {
                        return Err(Error::unsupported(format!(
                            "ticket HMAC digest {}: only SHA-256",
                            String::from_utf8_lossy(d)
                        )));
                    }
                }
                _ => {}
            }
            // SAFETY: within the caller's array (not past its end marker, seen above).
            p = unsafe { p.add(1) };
        }
        Err(Error::invalid(
            "an OSSL_PARAM array of more than 64 entries or without its end",
        ))
    })
}

/// A parameter holding an octet string. See OSSL_PARAM_construct_octet_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_PARAM_construct_octet_string(
    key: *const c_char,
    buf: *mut c_void,
    bsize: usize,
) -> OSSL_PARAM {
    ossl_param_st {
        key,
        data_type: OSSL_PARAM_OCTET_STRING,
        data: buf,
        data_size: bsize,
        return_size: UNMODIFIED,
    }
}

/// A parameter holding a UTF-8 string; `bsize` 0 means the string's length. See
/// OSSL_PARAM_construct_utf8_string(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_PARAM_construct_utf8_string(
    key: *const c_char,
    buf: *mut c_char,
    bsize: usize,
) -> OSSL_PARAM {
    let size = if bsize == 0 && !buf.is_null() {
        // SAFETY: with bsize 0 the caller passes a NUL-terminated string.
        unsafe { libc::strlen(buf) }
    } else {
        bsize
    };
    ossl_param_st {
        key,
        data_type: OSSL_PARAM_UTF8_STRING,
        data: buf.cast(),
        data_size: size,
        return_size: UNMODIFIED,
    }
}

/// The end marker of a parameter array. See OSSL_PARAM_construct_end(3).
#[unsafe(no_mangle)]
pub extern "C" fn OSSL_PARAM_construct_end() -> OSSL_PARAM {
    ossl_param_st {
        key: std::ptr::null(),
        data_type: 0,
        data: std::ptr::null_mut(),
        data_size: 0,
        return_size: 0,
    }
}

/// `num` random bytes from the operating system. Returns 1, or 0 with an error queued (a
/// negative `num`, NULL `buf`). See RAND_bytes(3).
#[unsafe(no_mangle)]
pub extern "C" fn RAND_bytes(buf: *mut u8, num: c_int) -> c_int {
    ffi_entry!(RAND_bytes, { rand_bytes(buf, num) })
}

/// As RAND_bytes (one generator serves both). See RAND_priv_bytes(3).
#[unsafe(no_mangle)]
pub extern "C" fn RAND_priv_bytes(buf: *mut u8, num: c_int) -> c_int {
    ffi_entry!(RAND_priv_bytes, { rand_bytes(buf, num) })
}

fn rand_bytes(buf: *mut u8, num: c_int) -> Result<c_int> {
    use aws_lc_rs::rand::SecureRandom;
    let n = usize::try_from(num).map_err(|_| Error::invalid("a negative byte count"))?;
    let out = slice_arg_mut(buf.cast(), n, "buf")?;
    aws_lc_rs::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::internal("the system's random generator failed"))?;
    Ok(1)
}
