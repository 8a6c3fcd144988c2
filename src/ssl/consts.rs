//! OpenSSL's option, mode and session-cache bits and protocol version numbers, with OpenSSL
//! 3.5's values, for the generated header. Owns nothing else. Which options change
//! behaviour is listed in README.md ("Options"): the rest are accepted and recorded
//! (`SSL_CTX_get_options` returns them), since rustls has no such knob or always behaves one
//! way.
#![deny(unsafe_code)]
// OpenSSL spells the protocol options SSL_OP_NO_TLSv1_2 and so on.
#![allow(non_upper_case_globals)]

// SSL_CTX_set_options / SSL_set_options bits (SSL_OP_NO_TICKET and
// SSL_OP_IGNORE_UNEXPECTED_EOF are in ssl::ctx, next to the code they steer).
pub const SSL_OP_EPHEMERAL_RSA: u64 = 0x0;
pub const SSL_OP_MICROSOFT_BIG_SSLV3_BUFFER: u64 = 0x0;
pub const SSL_OP_MICROSOFT_SESS_ID_BUG: u64 = 0x0;
pub const SSL_OP_MSIE_SSLV2_RSA_PADDING: u64 = 0x0;
pub const SSL_OP_NETSCAPE_CA_DN_BUG: u64 = 0x0;
pub const SSL_OP_NETSCAPE_CHALLENGE_BUG: u64 = 0x0;
pub const SSL_OP_NETSCAPE_DEMO_CIPHER_CHANGE_BUG: u64 = 0x0;
pub const SSL_OP_NETSCAPE_REUSE_CIPHER_CHANGE_BUG: u64 = 0x0;
pub const SSL_OP_NO_SSLv2: u64 = 0x0;
pub const SSL_OP_PKCS1_CHECK_1: u64 = 0x0;
pub const SSL_OP_PKCS1_CHECK_2: u64 = 0x0;
pub const SSL_OP_SINGLE_DH_USE: u64 = 0x0;
pub const SSL_OP_SINGLE_ECDH_USE: u64 = 0x0;
pub const SSL_OP_SSLEAY_080_CLIENT_DH_BUG: u64 = 0x0;
pub const SSL_OP_SSLREF2_REUSE_CERT_TYPE_BUG: u64 = 0x0;
pub const SSL_OP_TLS_BLOCK_PADDING_BUG: u64 = 0x0;
pub const SSL_OP_TLS_D5_BUG: u64 = 0x0;
pub const SSL_OP_NO_EXTENDED_MASTER_SECRET: u64 = 0x1;
pub const SSL_OP_CLEANSE_PLAINTEXT: u64 = 0x2;
pub const SSL_OP_LEGACY_SERVER_CONNECT: u64 = 0x4;
pub const SSL_OP_ENABLE_KTLS: u64 = 0x8;
pub const SSL_OP_TLSEXT_PADDING: u64 = 0x10;
pub const SSL_OP_SAFARI_ECDHE_ECDSA_BUG: u64 = 0x40;
pub const SSL_OP_ALLOW_CLIENT_RENEGOTIATION: u64 = 0x100;
pub const SSL_OP_DISABLE_TLSEXT_CA_NAMES: u64 = 0x200;
pub const SSL_OP_ALLOW_NO_DHE_KEX: u64 = 0x400;
pub const SSL_OP_DONT_INSERT_EMPTY_FRAGMENTS: u64 = 0x800;
pub const SSL_OP_NO_QUERY_MTU: u64 = 0x1000;
pub const SSL_OP_COOKIE_EXCHANGE: u64 = 0x2000;
pub const SSL_OP_CISCO_ANYCONNECT: u64 = 0x8000;
pub const SSL_OP_NO_SESSION_RESUMPTION_ON_RENEGOTIATION: u64 = 0x10000;
pub const SSL_OP_NO_COMPRESSION: u64 = 0x20000;
pub const SSL_OP_ALLOW_UNSAFE_LEGACY_RENEGOTIATION: u64 = 0x40000;
pub const SSL_OP_NO_ENCRYPT_THEN_MAC: u64 = 0x80000;
pub const SSL_OP_ENABLE_MIDDLEBOX_COMPAT: u64 = 0x100000;
pub const SSL_OP_PRIORITIZE_CHACHA: u64 = 0x200000;
pub const SSL_OP_CIPHER_SERVER_PREFERENCE: u64 = 0x400000;
pub const SSL_OP_TLS_ROLLBACK_BUG: u64 = 0x800000;
pub const SSL_OP_NO_ANTI_REPLAY: u64 = 0x1000000;
pub const SSL_OP_NO_SSLv3: u64 = 0x2000000;
pub const SSL_OP_NO_DTLSv1: u64 = 0x4000000;
pub const SSL_OP_NO_TLSv1: u64 = 0x4000000;
pub const SSL_OP_NO_DTLSv1_2: u64 = 0x8000000;
pub const SSL_OP_NO_TLSv1_2: u64 = 0x8000000;
pub const SSL_OP_NO_DTLS_MASK: u64 = 0xc000000;
pub const SSL_OP_NO_TLSv1_1: u64 = 0x10000000;
pub const SSL_OP_NO_TLSv1_3: u64 = 0x20000000;
pub const SSL_OP_NO_SSL_MASK: u64 = 0x3e000000;
pub const SSL_OP_NO_RENEGOTIATION: u64 = 0x40000000;
pub const SSL_OP_CRYPTOPRO_TLSEXT_BUG: u64 = 0x80000000;
pub const SSL_OP_ALL: u64 = 0x80000850;
pub const SSL_OP_NO_TX_CERTIFICATE_COMPRESSION: u64 = 0x100000000;
pub const SSL_OP_NO_RX_CERTIFICATE_COMPRESSION: u64 = 0x200000000;
pub const SSL_OP_ENABLE_KTLS_TX_ZEROCOPY_SENDFILE: u64 = 0x400000000;
pub const SSL_OP_PREFER_NO_DHE_KEX: u64 = 0x800000000;

// SSL_CTX_set_mode / SSL_set_mode bits.
pub const SSL_MODE_ENABLE_PARTIAL_WRITE: u64 = 0x1;
pub const SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: u64 = 0x2;
pub const SSL_MODE_AUTO_RETRY: u64 = 0x4;
pub const SSL_MODE_NO_AUTO_CHAIN: u64 = 0x8;
pub const SSL_MODE_RELEASE_BUFFERS: u64 = 0x10;
pub const SSL_MODE_SEND_CLIENTHELLO_TIME: u64 = 0x20;
pub const SSL_MODE_SEND_SERVERHELLO_TIME: u64 = 0x40;
pub const SSL_MODE_SEND_FALLBACK_SCSV: u64 = 0x80;
pub const SSL_MODE_ASYNC: u64 = 0x100;
pub const SSL_MODE_DTLS_SCTP_LABEL_LENGTH_BUG: u64 = 0x400;

// SSL_CTX_set_session_cache_mode bits beyond OFF/CLIENT/SERVER/BOTH (in ssl::ctx).
pub const SSL_SESS_CACHE_NO_AUTO_CLEAR: i64 = 0x80;
pub const SSL_SESS_CACHE_NO_INTERNAL_LOOKUP: i64 = 0x100;
pub const SSL_SESS_CACHE_NO_INTERNAL_STORE: i64 = 0x200;
pub const SSL_SESS_CACHE_NO_INTERNAL: i64 = 0x300;
pub const SSL_SESS_CACHE_UPDATE_TIME: i64 = 0x400;

// Protocol versions (TLS1_2_VERSION and TLS1_3_VERSION are in ffi::ssl).
pub const SSL3_VERSION: i32 = 0x300;
pub const TLS1_VERSION: i32 = 0x301;
pub const TLS1_1_VERSION: i32 = 0x302;
pub const TLS_MAX_VERSION: i32 = 0x304;

// The ctrls behind SSL_CTX_set_mode / SSL_set_mode and friends. osslquic's SSL_CTX_ctrl and
// SSL_ctrl do not accept them (the macros fail with an "unsupported" entry).
pub const SSL_CTRL_MODE: i32 = 33;
pub const SSL_CTRL_CLEAR_MODE: i32 = 78;
