//! BIO constants with OpenSSL's values (exported to C through the generated header).

pub const BIO_NOCLOSE: i32 = 0;
pub const BIO_CLOSE: i32 = 1;

pub const BIO_FLAGS_READ: i32 = 0x01;
pub const BIO_FLAGS_WRITE: i32 = 0x02;
pub const BIO_FLAGS_IO_SPECIAL: i32 = 0x04;
pub const BIO_FLAGS_RWS: i32 = BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL;
pub const BIO_FLAGS_SHOULD_RETRY: i32 = 0x08;
/// Set by a socket BIO's read of 0 bytes; BIO_eof reports it.
pub const BIO_FLAGS_IN_EOF: i32 = 0x800;

pub const BIO_TYPE_DESCRIPTOR: i32 = 0x0100;
pub const BIO_TYPE_FILTER: i32 = 0x0200;
pub const BIO_TYPE_SOURCE_SINK: i32 = 0x0400;
pub const BIO_TYPE_NONE: i32 = 0;
pub const BIO_TYPE_DGRAM: i32 = 21 | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
pub const BIO_TYPE_DGRAM_PAIR: i32 = 26 | BIO_TYPE_SOURCE_SINK;
pub const BIO_TYPE_DGRAM_MEM: i32 = 27 | BIO_TYPE_SOURCE_SINK;
pub const BIO_TYPE_MEM: i32 = 1 | BIO_TYPE_SOURCE_SINK;
pub const BIO_TYPE_SOCKET: i32 = 5 | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
pub const BIO_TYPE_BUFFER: i32 = 9 | BIO_TYPE_FILTER;
pub const BIO_TYPE_CONNECT: i32 = 12 | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
pub const BIO_TYPE_ACCEPT: i32 = 13 | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR;
pub const BIO_TYPE_BIO: i32 = 19 | BIO_TYPE_SOURCE_SINK;
pub const BIO_TYPE_MASK: i32 = 0xFF;
/// BIO_get_new_index hands out BIO_TYPE_START + 1 ..= BIO_TYPE_MASK.
pub const BIO_TYPE_START: i32 = 128;

pub const BIO_CTRL_RESET: i32 = 1;
pub const BIO_CTRL_EOF: i32 = 2;
pub const BIO_CTRL_INFO: i32 = 3;
pub const BIO_CTRL_GET_CLOSE: i32 = 8;
pub const BIO_CTRL_SET_CLOSE: i32 = 9;
pub const BIO_CTRL_PENDING: i32 = 10;
pub const BIO_CTRL_FLUSH: i32 = 11;
pub const BIO_CTRL_DUP: i32 = 12;
pub const BIO_CTRL_WPENDING: i32 = 13;
pub const BIO_CTRL_PUSH: i32 = 6;
pub const BIO_CTRL_POP: i32 = 7;
pub const BIO_CTRL_SET_CALLBACK: i32 = 14;
pub const BIO_CTRL_GET_CALLBACK: i32 = 15;
pub const BIO_CTRL_DGRAM_CONNECT: i32 = 31;
pub const BIO_CTRL_DGRAM_SET_CONNECTED: i32 = 32;
pub const BIO_CTRL_DGRAM_SET_RECV_TIMEOUT: i32 = 33;
pub const BIO_CTRL_DGRAM_GET_RECV_TIMEOUT: i32 = 34;
pub const BIO_CTRL_DGRAM_SET_SEND_TIMEOUT: i32 = 35;
pub const BIO_CTRL_DGRAM_GET_SEND_TIMEOUT: i32 = 36;
pub const BIO_CTRL_DGRAM_GET_RECV_TIMER_EXP: i32 = 37;
pub const BIO_CTRL_DGRAM_GET_SEND_TIMER_EXP: i32 = 38;
pub const BIO_CTRL_DGRAM_MTU_DISCOVER: i32 = 39;
pub const BIO_CTRL_DGRAM_QUERY_MTU: i32 = 40;
pub const BIO_CTRL_DGRAM_GET_MTU: i32 = 41;
pub const BIO_CTRL_DGRAM_SET_MTU: i32 = 42;
pub const BIO_CTRL_DGRAM_MTU_EXCEEDED: i32 = 43;
pub const BIO_CTRL_DGRAM_SET_PEER: i32 = 44;
pub const BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT: i32 = 45;
pub const BIO_CTRL_DGRAM_GET_PEER: i32 = 46;
pub const BIO_CTRL_DGRAM_GET_FALLBACK_MTU: i32 = 47;
pub const BIO_CTRL_DGRAM_SET_DONT_FRAG: i32 = 48;
pub const BIO_CTRL_DGRAM_GET_MTU_OVERHEAD: i32 = 49;
pub const BIO_CTRL_DGRAM_SET_PEEK_MODE: i32 = 71;
pub const BIO_CTRL_DGRAM_GET_LOCAL_ADDR_CAP: i32 = 82;
pub const BIO_CTRL_DGRAM_GET_LOCAL_ADDR_ENABLE: i32 = 83;
pub const BIO_CTRL_DGRAM_SET_LOCAL_ADDR_ENABLE: i32 = 84;
pub const BIO_CTRL_DGRAM_GET_EFFECTIVE_CAPS: i32 = 85;
pub const BIO_CTRL_DGRAM_GET_CAPS: i32 = 86;
pub const BIO_CTRL_DGRAM_SET_CAPS: i32 = 87;
pub const BIO_CTRL_DGRAM_GET_NO_TRUNC: i32 = 88;
pub const BIO_CTRL_DGRAM_SET_NO_TRUNC: i32 = 89;
pub const BIO_CTRL_GET_RPOLL_DESCRIPTOR: i32 = 91;
pub const BIO_CTRL_GET_WPOLL_DESCRIPTOR: i32 = 92;
pub const BIO_CTRL_DGRAM_DETECT_PEER_ADDR: i32 = 93;
pub const BIO_CTRL_DGRAM_SET0_LOCAL_ADDR: i32 = 94;

pub const BIO_C_SET_FD: i32 = 104;
pub const BIO_C_GET_FD: i32 = 105;
pub const BIO_C_SET_NBIO: i32 = 102;
pub const BIO_C_SET_WRITE_BUF_SIZE: i32 = 136;
pub const BIO_C_GET_WRITE_BUF_SIZE: i32 = 137;
pub const BIO_C_MAKE_BIO_PAIR: i32 = 138;
pub const BIO_C_DESTROY_BIO_PAIR: i32 = 139;
pub const BIO_C_GET_WRITE_GUARANTEE: i32 = 140;
pub const BIO_C_GET_READ_REQUEST: i32 = 141;
pub const BIO_C_SHUTDOWN_WR: i32 = 142;
pub const BIO_C_NREAD0: i32 = 143;
pub const BIO_C_SET_BUF_MEM_EOF_RETURN: i32 = 130;
pub const BIO_C_RESET_READ_REQUEST: i32 = 147;
pub const BIO_C_SET_BUFF_SIZE: i32 = 117;
pub const BIO_C_GET_BUFF_NUM_LINES: i32 = 116;

pub const BIO_DGRAM_CAP_NONE: u32 = 0;
pub const BIO_DGRAM_CAP_HANDLES_SRC_ADDR: u32 = 1 << 0;
pub const BIO_DGRAM_CAP_HANDLES_DST_ADDR: u32 = 1 << 1;
pub const BIO_DGRAM_CAP_PROVIDES_SRC_ADDR: u32 = 1 << 2;
pub const BIO_DGRAM_CAP_PROVIDES_DST_ADDR: u32 = 1 << 3;

pub const BIO_CB_RECVMMSG: i32 = 0x07;
pub const BIO_CB_SENDMMSG: i32 = 0x08;

pub const BIO_DGRAM_WRITE_DONE_OK: i32 = 1;
pub const BIO_DGRAM_WRITE_DONE_FAILED: i32 = -1;
pub const BIO_DGRAM_WRITE_DONE_FREED: i32 = -2;

pub const BIO_SOCK_REUSEADDR: i32 = 0x01;
pub const BIO_SOCK_V6_ONLY: i32 = 0x02;
pub const BIO_SOCK_KEEPALIVE: i32 = 0x04;
pub const BIO_SOCK_NONBLOCK: i32 = 0x08;
pub const BIO_SOCK_NODELAY: i32 = 0x10;
pub const BIO_SOCK_TFO: i32 = 0x20;
pub const BIO_BIND_NORMAL: i32 = 0;
pub const BIO_BIND_REUSEADDR: i32 = BIO_SOCK_REUSEADDR;

pub const BIO_LOOKUP_CLIENT: i32 = 0;
pub const BIO_LOOKUP_SERVER: i32 = 1;
pub const BIO_SOCK_INFO_ADDRESS: i32 = 0;

/// Largest batch `BIO_dgram_set_read_batch` accepts (one recvmmsg).
pub const BIO_DGRAM_MAX_READ_BATCH: usize = 64;
/// Default and minimum sizes of a datagram pair's per-direction buffer.
pub(crate) const DGRAM_PAIR_DEFAULT_MTU: usize = 1472;

// The connect and accept BIOs (bss_conn.c, bss_acpt.c).
pub const BIO_C_SET_CONNECT: i32 = 100;
pub const BIO_C_DO_STATE_MACHINE: i32 = 101;
pub const BIO_C_SET_ACCEPT: i32 = 118;
pub const BIO_C_GET_CONNECT: i32 = 123;
pub const BIO_C_GET_ACCEPT: i32 = 124;
pub const BIO_C_SET_BIND_MODE: i32 = 131;
pub const BIO_C_GET_BIND_MODE: i32 = 132;
pub const BIO_C_SET_CONNECT_MODE: i32 = 155;
pub const BIO_C_SET_SOCK_TYPE: i32 = 157;
pub const BIO_C_GET_SOCK_TYPE: i32 = 158;
pub const BIO_C_GET_DGRAM_BIO: i32 = 159;
pub const BIO_BIND_REUSEADDR_IF_UNUSED: i32 = BIO_SOCK_REUSEADDR;
/// IP families of BIO_set_conn_ip_family / BIO_set_accept_ip_family.
pub const BIO_FAMILY_IPV4: i32 = 4;
pub const BIO_FAMILY_IPV6: i32 = 6;
pub const BIO_FAMILY_IPANY: i32 = 256;
/// BIO_get_retry_reason values.
pub const BIO_RR_SSL_X509_LOOKUP: i32 = 0x01;
pub const BIO_RR_CONNECT: i32 = 0x02;
pub const BIO_RR_ACCEPT: i32 = 0x03;

// The SSL filter BIO (BIO_f_ssl).
pub const BIO_TYPE_SSL: i32 = 7 | BIO_TYPE_FILTER;
pub const BIO_C_SET_SSL: i32 = 109;
pub const BIO_C_GET_SSL: i32 = 110;
pub const BIO_C_SSL_MODE: i32 = 119;
pub const BIO_C_SET_SSL_RENEGOTIATE_BYTES: i32 = 125;
pub const BIO_C_GET_SSL_NUM_RENEGOTIATES: i32 = 126;
pub const BIO_C_SET_SSL_RENEGOTIATE_TIMEOUT: i32 = 127;
