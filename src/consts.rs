//! OpenSSL's option, mode and session-cache bits and protocol version numbers, with OpenSSL
//! 3.5's values, for the generated header. Owns nothing else. Which options change
//! behaviour is listed in README.md ("Options"): the rest are accepted and recorded
//! (`SSL_CTX_get_options` returns them), since rustls has no such knob or always behaves one
//! way.
#![deny(unsafe_code)]
// OpenSSL spells the protocol options SSL_OP_NO_TLSv1_2 and so on.
#![allow(non_upper_case_globals)]

use crate::error::ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED;

// SSL_get_error's answers.
pub const SSL_ERROR_NONE: i32 = 0;
pub const SSL_ERROR_SSL: i32 = 1;
pub const SSL_ERROR_WANT_READ: i32 = 2;
pub const SSL_ERROR_WANT_WRITE: i32 = 3;
pub const SSL_ERROR_SYSCALL: i32 = 5;
pub const SSL_ERROR_ZERO_RETURN: i32 = 6;
pub const SSL_ERROR_WANT_CONNECT: i32 = 7;
pub const SSL_ERROR_WANT_ACCEPT: i32 = 8;

// SSL_R_* reason codes (ERR_LIB_SSL), for TLS and QUIC alike (SSL_R_BIO_NOT_SET is in
// error::codes, with its text).
pub const SSL_R_INVALID_KEY_UPDATE_TYPE: u32 = 120;
pub const SSL_R_STILL_IN_INIT: u32 = 121;
pub const SSL_R_TOO_MANY_KEY_UPDATES: u32 = 132;
/// More early data than the session allows (a client's SSL_write_early_data).
pub const SSL_R_TOO_MUCH_EARLY_DATA: u32 = 164;
pub const SSL_R_CERTIFICATE_VERIFY_FAILED: u32 = 134;
pub const SSL_R_NO_CERTIFICATE_ASSIGNED: u32 = 177;
pub const SSL_R_NO_CIPHER_MATCH: u32 = 185;
pub const SSL_R_NO_PRIVATE_KEY_ASSIGNED: u32 = 190;
/// A server's reason when a required client certificate did not come.
pub const SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE: u32 = 199;
pub const SSL_R_PROTOCOL_IS_SHUTDOWN: u32 = 207;
pub const SSL_R_WRONG_SSL_VERSION: u32 = 266;
pub const SSL_R_BAD_LENGTH: u32 = 271;
/// A group list element that is empty (SSL_CTX_set1_groups_list "X25519::P-256").
pub const SSL_R_UNSUPPORTED_CONFIG_VALUE: u32 = 414;
pub const SSL_R_SSL_SESSION_ID_CONTEXT_TOO_LONG: u32 = 273;
pub const SSL_R_UNINITIALIZED: u32 = 276;
pub const SSL_R_NOT_SERVER: u32 = 284;
pub const SSL_R_KEY_VALUES_MISMATCH: u32 = 288;
pub const SSL_R_UNEXPECTED_EOF_WHILE_READING: u32 = 294;
pub const SSL_R_INVALID_TICKET_KEYS_LENGTH: u32 = 325;
pub const SSL_R_REMOTE_PEER_ADDRESS_NOT_SET: u32 = 346;
pub const SSL_R_NO_STREAM: u32 = 355;
pub const SSL_R_CONN_USE_ONLY: u32 = 356;
pub const SSL_R_STREAM_FINISHED: u32 = 365;
pub const SSL_R_STREAM_RECV_ONLY: u32 = 366;
pub const SSL_R_STREAM_RESET: u32 = 375;
pub const SSL_R_STREAM_SEND_ONLY: u32 = 379;
pub const SSL_R_QUIC_PROTOCOL_ERROR: u32 = 382;
pub const SSL_R_BAD_VALUE: u32 = 384;
pub const SSL_R_QUIC_NETWORK_ERROR: u32 = 387;
pub const SSL_R_STREAM_COUNT_LIMITED: u32 = 411;
pub const SSL_R_FEATURE_NOT_RENEGOTIABLE: u32 = 413;
pub const SSL_R_LISTENER_USE_ONLY: u32 = 421;
pub const SSL_R_DOMAIN_USE_ONLY: u32 = 422;
pub const SSL_R_TLS_HANDSHAKE_FAILURE: u32 = 1040;
/// A client's reason for the server's unknown_ca alert (1000 + 48).
pub const SSL_R_TLSV1_ALERT_UNKNOWN_CA: u32 = 1048;
/// A client's reason for the server's certificate_required alert (1000 + 116).
pub const SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED: u32 = 1116;
pub const SSL_R_SHOULD_NOT_HAVE_BEEN_CALLED: u32 = ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED;

// SSL_CTX_set_options / SSL_set_options bits.
pub const SSL_OP_IGNORE_UNEXPECTED_EOF: u64 = 1 << 7;
pub const SSL_OP_NO_TICKET: u64 = 1 << 14;
/// SSL_key_update's types (SSL_get_key_update_type reports NONE: nothing pending).
pub const SSL_KEY_UPDATE_NONE: i32 = -1;
pub const SSL_KEY_UPDATE_NOT_REQUESTED: i32 = 0;
pub const SSL_KEY_UPDATE_REQUESTED: i32 = 1;
/// SSL_read_early_data's results (SSL_read_early_data(3)).
pub const SSL_READ_EARLY_DATA_ERROR: i32 = 0;
pub const SSL_READ_EARLY_DATA_SUCCESS: i32 = 1;
pub const SSL_READ_EARLY_DATA_FINISH: i32 = 2;
/// SSL_get_early_data_status's answers.
pub const SSL_EARLY_DATA_NOT_SENT: i32 = 0;
pub const SSL_EARLY_DATA_REJECTED: i32 = 1;
pub const SSL_EARLY_DATA_ACCEPTED: i32 = 2;
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

// SSL_CTX_set_session_cache_mode bits.
pub const SSL_SESS_CACHE_OFF: i64 = 0;
pub const SSL_SESS_CACHE_CLIENT: i64 = 1;
pub const SSL_SESS_CACHE_SERVER: i64 = 2;
pub const SSL_SESS_CACHE_BOTH: i64 = 3;
pub const SSL_SESSION_CACHE_MAX_SIZE_DEFAULT: i64 = 1024 * 20;
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

// QUIC: default stream modes, stream types and states, incoming stream policies,
// SSL_shutdown_ex and SSL_get_conn_close_info flags, SSL_new_domain flags.
pub const SSL_DEFAULT_STREAM_MODE_NONE: u32 = 0;
pub const SSL_DEFAULT_STREAM_MODE_AUTO_BIDI: u32 = 1;
pub const SSL_DEFAULT_STREAM_MODE_AUTO_UNI: u32 = 2;
pub const SSL_STREAM_TYPE_NONE: i32 = 0;
pub const SSL_STREAM_TYPE_READ: i32 = 1;
pub const SSL_STREAM_TYPE_WRITE: i32 = 2;
pub const SSL_STREAM_TYPE_BIDI: i32 = 3;
pub const SSL_STREAM_STATE_NONE: i32 = 0;
pub const SSL_STREAM_STATE_OK: i32 = 1;
pub const SSL_STREAM_STATE_WRONG_DIR: i32 = 2;
pub const SSL_STREAM_STATE_FINISHED: i32 = 3;
pub const SSL_STREAM_STATE_RESET_LOCAL: i32 = 4;
pub const SSL_STREAM_STATE_RESET_REMOTE: i32 = 5;
pub const SSL_STREAM_STATE_CONN_CLOSED: i32 = 6;
pub const SSL_INCOMING_STREAM_POLICY_AUTO: i32 = 0;
pub const SSL_INCOMING_STREAM_POLICY_ACCEPT: i32 = 1;
pub const SSL_INCOMING_STREAM_POLICY_REJECT: i32 = 2;
pub const SSL_SHUTDOWN_FLAG_RAPID: u64 = 1;
pub const SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH: u64 = 2;
pub const SSL_SHUTDOWN_FLAG_NO_BLOCK: u64 = 4;
pub const SSL_SHUTDOWN_FLAG_WAIT_PEER: u64 = 8;
pub const SSL_CONN_CLOSE_FLAG_LOCAL: u32 = 1;
pub const SSL_CONN_CLOSE_FLAG_TRANSPORT: u32 = 2;
pub const SSL_DOMAIN_FLAG_SINGLE_THREAD: u64 = 1;
pub const SSL_DOMAIN_FLAG_MULTI_THREAD: u64 = 2;
pub const SSL_DOMAIN_FLAG_THREAD_ASSISTED: u64 = 4;
pub const SSL_DOMAIN_FLAG_BLOCKING: u64 = 8;
pub const SSL_DOMAIN_FLAG_LEGACY_BLOCKING: u64 = 16;

// Verification: SSL_CTX_set_verify modes (SSL_VERIFY_CLIENT_ONCE is accepted and changes
// nothing, see `ssl::clientauth::ClientVerifier`) and X509_V_* results.
pub const SSL_VERIFY_NONE: i32 = 0;
pub const SSL_VERIFY_PEER: i32 = 1;
pub const SSL_VERIFY_FAIL_IF_NO_PEER_CERT: i32 = 2;
pub const SSL_VERIFY_CLIENT_ONCE: i32 = 4;
pub const X509_V_OK: i64 = 0;
pub const X509_V_ERR_UNSPECIFIED: i64 = 1;
pub const X509_V_ERR_CERT_HAS_EXPIRED: i64 = 10;
pub const X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i64 = 18;
pub const X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i64 = 20;
pub const X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i64 = 21;
pub const X509_V_ERR_CERT_REJECTED: i64 = 28;
pub const X509_V_ERR_HOSTNAME_MISMATCH: i64 = 62;

// The answers of the server-name and ALPN selection callbacks.
pub const SSL_TLSEXT_ERR_OK: i32 = 0;
/// Treated as SSL_TLSEXT_ERR_NOACK (no protocol).
pub const SSL_TLSEXT_ERR_ALERT_WARNING: i32 = 1;
pub const SSL_TLSEXT_ERR_ALERT_FATAL: i32 = 2;
pub const SSL_TLSEXT_ERR_NOACK: i32 = 3;
