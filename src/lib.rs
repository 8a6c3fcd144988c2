//! osslquic: OpenSSL 3.5's API for datagram BIOs, QUIC and TLS, for C programs, on rustls and
//! quinn-proto. See docs/ARCHITECTURE.md for the layers and who may touch what.

// C names (BIO_MSG, BIO_ADDR, ...) are kept as OpenSSL spells them.
#![allow(non_camel_case_types)]

pub mod alloc;
#[global_allocator]
static ALLOC: alloc::TailAlloc = alloc::TailAlloc;

pub mod bio;
pub mod consts;
pub mod error;
pub mod ffi;
pub mod quic;
pub mod ssl;
pub mod sync;
pub mod sys;
pub mod tls;
pub mod x509;
