//! Library and reason numbers with OpenSSL 3's values, and their texts.

pub const ERR_LIB_NONE: u32 = 1;
pub const ERR_LIB_SYS: u32 = 2;
pub const ERR_LIB_PEM: u32 = 9;
pub const ERR_LIB_X509: u32 = 11;
pub const ERR_LIB_CRYPTO: u32 = 15;
pub const ERR_LIB_SSL: u32 = 20;
pub const ERR_LIB_BIO: u32 = 32;
pub const ERR_LIB_USER: u32 = 128;

/// Bit 31 marks a system error whose low bits are the errno.
pub const ERR_SYSTEM_FLAG: u32 = 0x8000_0000;
pub const ERR_RFLAGS_OFFSET: u32 = 18;
pub const ERR_RFLAG_FATAL: u32 = 0x1 << ERR_RFLAGS_OFFSET;
pub const ERR_RFLAG_COMMON: u32 = 0x2 << ERR_RFLAGS_OFFSET;
pub const ERR_R_FATAL: u32 = ERR_RFLAG_FATAL | ERR_RFLAG_COMMON;

pub const ERR_R_MALLOC_FAILURE: u32 = 256 | ERR_R_FATAL;
pub const ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED: u32 = 257 | ERR_R_FATAL;
pub const ERR_R_PASSED_NULL_PARAMETER: u32 = 258 | ERR_R_FATAL;
pub const ERR_R_INTERNAL_ERROR: u32 = 259 | ERR_R_FATAL;
pub const ERR_R_INIT_FAIL: u32 = 261 | ERR_R_FATAL;
pub const ERR_R_OPERATION_FAIL: u32 = 263 | ERR_R_FATAL;
pub const ERR_R_PASSED_INVALID_ARGUMENT: u32 = 262 | ERR_RFLAG_COMMON;
pub const ERR_R_UNSUPPORTED: u32 = 268 | ERR_RFLAG_COMMON;
/// A failure of a system library call such as getaddrinfo (OpenSSL's ERR_R_SYS_LIB).
pub const ERR_R_SYS_LIB: u32 = ERR_LIB_SYS | ERR_RFLAG_COMMON;

pub const BIO_R_ACCEPT_ERROR: u32 = 100;
pub const BIO_R_CONNECT_ERROR: u32 = 103;
pub const BIO_R_TRANSFER_ERROR: u32 = 104;
pub const BIO_R_TRANSFER_TIMEOUT: u32 = 105;
pub const BIO_R_NBIO_CONNECT_ERROR: u32 = 110;
pub const BIO_R_LOCAL_ADDR_NOT_AVAILABLE: u32 = 111;
pub const BIO_R_NON_FATAL: u32 = 112;
pub const BIO_R_NO_PORT_DEFINED: u32 = 113;
pub const BIO_R_UNABLE_TO_BIND_SOCKET: u32 = 117;
pub const BIO_R_UNABLE_TO_CREATE_SOCKET: u32 = 118;
pub const BIO_R_UNABLE_TO_LISTEN_SOCKET: u32 = 119;
pub const BIO_R_UNINITIALIZED: u32 = 120;
pub const BIO_R_UNSUPPORTED_METHOD: u32 = 121;
pub const BIO_R_UNSUPPORTED_PROTOCOL_FAMILY: u32 = 131;
pub const BIO_R_IN_USE: u32 = 123;
pub const BIO_R_BROKEN_PIPE: u32 = 124;
pub const BIO_R_INVALID_ARGUMENT: u32 = 125;
pub const BIO_R_LISTEN_V6_ONLY: u32 = 136;
pub const BIO_R_UNABLE_TO_KEEPALIVE: u32 = 137;
pub const BIO_R_UNABLE_TO_NODELAY: u32 = 138;
pub const BIO_R_UNABLE_TO_REUSEADDR: u32 = 139;
pub const BIO_R_LOOKUP_RETURNED_NOTHING: u32 = 142;
pub const BIO_R_UNAVAILABLE_IP_FAMILY: u32 = 145;
pub const BIO_R_UNSUPPORTED_IP_FAMILY: u32 = 146;
pub const BIO_R_CONNECT_TIMEOUT: u32 = 147;
pub const BIO_R_PORT_MISMATCH: u32 = 150;
pub const BIO_R_PEER_ADDR_NOT_AVAILABLE: u32 = 151;
pub const BIO_R_AMBIGUOUS_HOST_OR_SERVICE: u32 = 129;
pub const BIO_R_MALFORMED_HOST_OR_SERVICE: u32 = 130;
pub const BIO_R_NO_ACCEPT_ADDR_OR_SERVICE_SPECIFIED: u32 = 143;
pub const BIO_R_NO_HOSTNAME_OR_SERVICE_SPECIFIED: u32 = 144;

pub const SSL_R_BIO_NOT_SET: u32 = 128;

pub(crate) fn bio_reason(r: u32) -> Option<&'static str> {
    Some(match r {
        BIO_R_ACCEPT_ERROR => "accept error",
        BIO_R_CONNECT_ERROR => "connect error",
        BIO_R_TRANSFER_ERROR => "transfer error",
        BIO_R_TRANSFER_TIMEOUT => "transfer timeout",
        BIO_R_NBIO_CONNECT_ERROR => "nbio connect error",
        BIO_R_LOCAL_ADDR_NOT_AVAILABLE => "local address not available",
        BIO_R_NON_FATAL => "non-fatal (retry later)",
        BIO_R_NO_PORT_DEFINED => "no port defined",
        BIO_R_UNABLE_TO_BIND_SOCKET => "unable to bind socket",
        BIO_R_UNABLE_TO_CREATE_SOCKET => "unable to create socket",
        BIO_R_UNABLE_TO_LISTEN_SOCKET => "unable to listen on socket",
        BIO_R_UNINITIALIZED => "uninitialized",
        BIO_R_UNSUPPORTED_METHOD => "unsupported method",
        BIO_R_UNSUPPORTED_PROTOCOL_FAMILY => "unsupported protocol family",
        BIO_R_IN_USE => "in use",
        BIO_R_BROKEN_PIPE => "broken pipe",
        BIO_R_INVALID_ARGUMENT => "invalid argument",
        BIO_R_LISTEN_V6_ONLY => "listen v6 only",
        BIO_R_UNABLE_TO_KEEPALIVE => "unable to keepalive",
        BIO_R_UNABLE_TO_NODELAY => "unable to nodelay",
        BIO_R_UNABLE_TO_REUSEADDR => "unable to reuseaddr",
        BIO_R_LOOKUP_RETURNED_NOTHING => "lookup returned nothing",
        BIO_R_UNAVAILABLE_IP_FAMILY => "unavailable ip family",
        BIO_R_UNSUPPORTED_IP_FAMILY => "unsupported ip family",
        BIO_R_CONNECT_TIMEOUT => "connect timeout",
        BIO_R_PORT_MISMATCH => "port mismatch",
        BIO_R_PEER_ADDR_NOT_AVAILABLE => "peer address not available",
        BIO_R_AMBIGUOUS_HOST_OR_SERVICE => "ambiguous host or service",
        BIO_R_MALFORMED_HOST_OR_SERVICE => "malformed host or service",
        BIO_R_NO_ACCEPT_ADDR_OR_SERVICE_SPECIFIED => "no accept addr or service specified",
        BIO_R_NO_HOSTNAME_OR_SERVICE_SPECIFIED => "no hostname or service specified",
        _ => return None,
    })
}

pub(crate) fn ssl_reason(r: u32) -> Option<&'static str> {
    Some(match r {
        SSL_R_BIO_NOT_SET => "bio not set",
        134 => "certificate verify failed",
        164 => "too much early data",
        177 => "no certificate assigned",
        190 => "no private key assigned",
        199 => "peer did not return a certificate",
        207 => "protocol is shutdown",
        235 => "no application protocol",
        266 => "wrong ssl version",
        284 => "not server",
        288 => "key values mismatch",
        346 => "remote peer address not set",
        355 => "no stream",
        356 => "conn use only",
        365 => "stream finished",
        366 => "stream recv only",
        375 => "stream reset",
        379 => "stream send only",
        382 => "quic protocol error",
        384 => "bad value",
        387 => "quic network error",
        411 => "stream count limited",
        412 => "unsupported write flag",
        413 => "feature not renegotiable",
        414 => "unsupported config value",
        421 => "listener use only",
        193 => "no shared cipher",
        267 => "wrong version number",
        273 => "ssl session id context too long",
        276 => "uninitialized",
        294 => "unexpected eof while reading",
        418 => "poll request not supported",
        422 => "domain use only",
        1040 => "sslv3 alert handshake failure",
        // TLS alerts received: 1000 + the alert number (SSL_AD_REASON_OFFSET).
        1010 => "sslv3 alert unexpected message",
        1020 => "sslv3 alert bad record mac",
        1042 => "sslv3 alert bad certificate",
        1043 => "sslv3 alert unsupported certificate",
        1045 => "sslv3 alert certificate expired",
        1046 => "sslv3 alert certificate unknown",
        1047 => "sslv3 alert illegal parameter",
        1048 => "tlsv1 alert unknown ca",
        1050 => "tlsv1 alert decode error",
        1051 => "tlsv1 alert decrypt error",
        1070 => "tlsv1 alert protocol version",
        1080 => "tlsv1 alert internal error",
        1112 => "tlsv1 unrecognized name",
        1116 => "tlsv13 alert certificate required",
        1120 => "tlsv1 alert no application protocol",
        _ => return None,
    })
}
