//! SSL_* and SSL_CTX_* entry points, by subject: contexts, the SSL object and its
//! handshake, I/O, QUIC streams and connections, listeners and domains, events and SSL_poll,
//! ALPN, early data. Conversion only; the objects are `crate::ssl`'s.

mod alpn;
mod ctx;
mod early;
mod events;
mod groups;
mod io;
mod listener;
mod object;
mod stream;

pub use alpn::*;
pub use ctx::*;
pub use early::*;
pub use events::*;
pub use groups::*;
pub use io::*;
pub use listener::*;
pub use object::*;
pub use stream::*;

use std::ffi::c_int;

// Constants several of these files use.

pub const SSL_FILETYPE_PEM: c_int = 1;
pub const TLS1_2_VERSION: c_int = 0x0303;
pub const TLS1_3_VERSION: c_int = 0x0304;
pub const SSL_CTRL_SET_TLSEXT_HOSTNAME: c_int = 55;
pub const SSL_CTRL_GET_TLSEXT_TICKET_KEYS: c_int = 58;
pub const SSL_CTRL_SET_TLSEXT_TICKET_KEYS: c_int = 59;
pub const SSL_CTRL_SET_MIN_PROTO_VERSION: c_int = 123;
pub const SSL_CTRL_SET_MAX_PROTO_VERSION: c_int = 124;
pub const SSL_CTRL_SET_SESS_CACHE_SIZE: c_int = 42;
pub const SSL_CTRL_SET_TLSEXT_SERVERNAME_CB: c_int = 53;
pub const SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG: c_int = 54;
pub const SSL_CTRL_GET_SESS_CACHE_SIZE: c_int = 43;
pub const SSL_CTRL_SET_SESS_CACHE_MODE: c_int = 44;
pub const SSL_CTRL_GET_SESS_CACHE_MODE: c_int = 45;
#[allow(non_upper_case_globals)]
pub const TLSEXT_NAMETYPE_host_name: c_int = 0;
