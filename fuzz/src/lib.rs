//! What the fuzz targets share: a byte reader that turns the fuzzer's input into a program of
//! operations (one opcode byte, then its arguments; an exhausted input reads as zeros, so every
//! input is a valid program), and test certificates made once per process.
//!
//! The input format is our own rather than `arbitrary`'s so that seeds can be written by hand
//! (fuzz/gen-seeds.py) and read in a hex dump: opcode, then fixed-size little-endian arguments,
//! byte strings as a length byte and the bytes.

use std::ffi::CString;
use std::sync::OnceLock;

use osslquic::ffi::ssl::{
    SSL_CTX_new, SSL_CTX_use_PrivateKey_file, SSL_CTX_use_certificate_chain_file, SSL_FILETYPE_PEM,
};
use osslquic::ffi::{SSL_CTX, SSL_METHOD};

/// A target's server and client contexts, made once per process and never freed.
pub struct CtxPair {
    pub server: *mut SSL_CTX,
    pub client: *mut SSL_CTX,
}
// SAFETY: the contexts are made once, never freed, and the library's SSL_CTX is thread-safe.
unsafe impl Send for CtxPair {}
// SAFETY: as above.
unsafe impl Sync for CtxPair {}

/// A server context of `method` with the process's test certificate chain and key.
pub fn server_ctx(method: *const SSL_METHOD) -> *mut SSL_CTX {
    let c = certs();
    let chain = CString::new(c.chain.clone()).expect("path");
    let key = CString::new(c.key.clone()).expect("path");
    let ctx = SSL_CTX_new(method);
    assert_eq!(SSL_CTX_use_certificate_chain_file(ctx, chain.as_ptr()), 1);
    assert_eq!(
        SSL_CTX_use_PrivateKey_file(ctx, key.as_ptr(), SSL_FILETYPE_PEM),
        1
    );
    ctx
}

/// Runs `op` on the input, one operation at a time, until the input is read out or `max`
/// operations ran (the loop of every call-sequence target).
pub fn run_ops(data: &[u8], max: usize, mut op: impl FnMut(&mut Reader<'_>)) {
    let mut r = Reader::new(data);
    for _ in 0..max {
        if r.is_empty() {
            break;
        }
        op(&mut r);
    }
}

/// Reads a fuzz input front to back. Past the end every read is zero (or empty).
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Reader<'a> {
        Reader { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    /// A byte string: a length byte, then up to that many bytes.
    pub fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u8());
        self.take(n)
    }

    /// A longer byte string: a 16-bit length, then up to that many bytes.
    pub fn long_bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16());
        self.take(n)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }
}

/// PEM files for a test CA and a server certificate for "localhost", written once per process
/// to a directory of its own (the library's contexts load certificates from files).
pub struct Certs {
    pub chain: String,
    pub key: String,
    pub ca: String,
}

/// The process's test certificates (made on first use).
pub fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "osslquic fuzz CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let key = rcgen::KeyPair::generate().expect("server key");
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("cert");
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");

        let dir = std::env::temp_dir().join(format!("osslquic-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("certificate directory");
        let path = |n: &str| dir.join(n).to_str().expect("UTF-8 path").to_string();
        let chain = format!("{}{}", cert.pem(), ca.pem());
        std::fs::write(path("chain.pem"), chain).expect("chain.pem");
        std::fs::write(path("key.pem"), key.serialize_pem()).expect("key.pem");
        std::fs::write(path("ca.pem"), ca.pem()).expect("ca.pem");
        Certs {
            chain: path("chain.pem"),
            key: path("key.pem"),
            ca: path("ca.pem"),
        }
    })
}

/// Removes the certificate directory once every context that needs it has loaded its files.
pub fn remove_cert_files() {
    if let Some(dir) = std::path::Path::new(&certs().chain).parent() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Lets one known upstream panic unwind instead of aborting the run (libFuzzer's panic hook
/// aborts on every panic, even one the library's FFI guard would catch):
///
/// - rustls 0.23's `CommonState::send_close_notify` sets `sent_fatal_alert`, so a malformed
///   record arriving after our close_notify (SSL_shutdown, then SSL_read) trips
///   `debug_assert!(!self.sent_fatal_alert)` in `send_fatal_alert`: rustls issue #959, open;
///   debug assertions only (release builds send the second alert). The FFI guard turns it
///   into an error from that SSL call. Input: fuzz/corpus/tls_stream/crash-alert-after-close-notify.
///
/// Every other panic still aborts.
pub fn tolerate_known_upstream_panics() {
    let abort_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let file = info.location().map(|l| l.file()).unwrap_or("");
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
            .unwrap_or("");
        if file.contains("/rustls-0.23.")
            && file.ends_with("src/common_state.rs")
            && msg == "assertion failed: !self.sent_fatal_alert"
        {
            return;
        }
        abort_hook(info);
    }));
}
