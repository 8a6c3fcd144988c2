//! The SSL object as the engine of a `BIO_f_ssl` filter BIO (see `bio::filter`): the BIO's
//! read, write and handshake are this object's SSL_read_ex, SSL_write_ex and
//! SSL_do_handshake (so SSL_get_error on it tells the same story), and the BIO's retry
//! flags follow SSL_get_error as bio_ssl.c maps it.
#![deny(unsafe_code)]

use std::sync::Arc;

use super::*;
use crate::bio::consts::{BIO_RR_ACCEPT, BIO_RR_CONNECT};
use crate::bio::filter::{StreamFilter, Want};

impl StreamFilter for Ssl {
    fn filter_read(&self, buf: &mut [u8]) -> Result<usize> {
        match self.note(self.read(buf, false), SSL_ERROR_WANT_READ) {
            // The peer's close_notify (QUIC: FIN) reads as end of stream.
            Err(_) if self.last_error() == SSL_ERROR_ZERO_RETURN => Ok(0),
            r => r,
        }
    }

    fn filter_write(&self, buf: &[u8]) -> Result<usize> {
        self.note(self.write(buf, false), SSL_ERROR_WANT_WRITE)
    }

    fn filter_handshake(&self) -> Result<()> {
        self.note(self.do_handshake(), SSL_ERROR_WANT_READ)
    }

    fn filter_want(&self) -> Want {
        match self.last_error() {
            SSL_ERROR_WANT_WRITE => Want::Write,
            SSL_ERROR_WANT_CONNECT => Want::Special(BIO_RR_CONNECT),
            SSL_ERROR_WANT_ACCEPT => Want::Special(BIO_RR_ACCEPT),
            _ => Want::Read,
        }
    }

    fn filter_shutdown(&self) {
        // A QUIC connection does not wait out its closing period here (its free closes it).
        let _ = self.shutdown(0, b"", SSL_SHUTDOWN_FLAG_NO_BLOCK);
    }

    fn filter_pending(&self) -> usize {
        self.pending()
    }

    fn filter_in_init(&self) -> bool {
        match &self.kind {
            Kind::Tls(t) => t.tls.is_handshaking(),
            _ => false,
        }
    }

    fn filter_set_client(&self, client: bool) {
        self.set_tls_role(!client, false);
    }

    fn filter_bios(&self) -> (Option<Arc<Bio>>, Option<Arc<Bio>>) {
        (self.rbio(), self.wbio())
    }

    fn filter_set_bios(&self, bio: Option<Arc<Bio>>) {
        self.set_bios(bio.clone(), bio);
    }
}
