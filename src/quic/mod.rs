//! QUIC on quinn-proto: the sans-I/O engine and the reactor (port) that feeds it.
#![deny(unsafe_code)]

pub mod coalesce;
pub mod conn;
pub mod engine;
pub mod lb;
pub mod port;
pub mod retry;
pub mod stream;
pub mod tokens;
pub mod transport;
pub mod zerortt;
