//! Stream objects (SSL_new_stream, SSL_accept_stream) and the calls on a stream or a
//! connection's default stream: which stream a call addresses, the blocking and waking
//! around `quic::stream`'s I/O (read, peek, write, conclude, reset, pending, states), and
//! OpenSSL's errors for what it reports.
//! Must not touch: the stream state itself (`quic::stream`), the connection's start and
//! close (`connection`), `extern "C"`.
#![deny(unsafe_code)]

use super::*;

/// A stream object (SSL_new_stream / SSL_accept_stream); it keeps its connection alive. What
/// the application did and saw on the stream lives with the connection
/// (`quic::stream::AppStream`), under the connection's lock.
pub struct StreamObj {
    pub conn: Arc<Ssl>,
    pub id: StreamId,
}

impl Drop for StreamObj {
    /// Freeing a stream the application did not finish resets its send side and asks the
    /// peer to stop sending, as OpenSSL does.
    fn drop(&mut self) {
        let id = self.id;
        self.conn
            .with_conn("conn: drop a stream", |conn| conn.release_stream(id));
    }
}

/// OpenSSL's error for a stream call that did not do what was asked (`conn`: the locked
/// connection, which says why it was lost).
pub(super) fn stream_error(f: StreamFault, conn: &ConnState) -> Error {
    match f {
        StreamFault::WouldBlock => want_read(),
        StreamFault::RecvOnly => {
            Error::ssl(SSL_R_STREAM_RECV_ONLY).with("the stream is receive-only")
        }
        StreamFault::SendOnly => {
            Error::ssl(SSL_R_STREAM_SEND_ONLY).with("cannot read from a send-only stream")
        }
        StreamFault::ResetLocally(code) => {
            Error::ssl(SSL_R_STREAM_RESET).with(format!("stream was reset locally ({code})"))
        }
        StreamFault::ResetByPeer(code) => {
            Error::ssl(SSL_R_STREAM_RESET).with(format!("peer reset the stream ({code})"))
        }
        StreamFault::StoppedByPeer(code) => {
            Error::ssl(SSL_R_STREAM_RESET).with(format!("peer stopped the stream ({code})"))
        }
        StreamFault::Concluded => {
            Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is already concluded")
        }
        StreamFault::StreamClosed => Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is closed"),
        StreamFault::Fin => Error::fin(),
        StreamFault::ConnLost => closed_error(conn.lost.as_ref()),
        StreamFault::NoDefaultStream => Error::ssl(SSL_R_NO_STREAM)
            .with("no default stream (mode NONE): use SSL_new_stream / SSL_accept_stream"),
        StreamFault::CountLimited => Error::ssl(SSL_R_STREAM_COUNT_LIMITED)
            .with("no stream credit for the default stream yet"),
        StreamFault::BadCode => Error::ssl(SSL_R_BAD_VALUE_CODE).with("error code too large"),
    }
}

impl Ssl {
    /// The stream an I/O call addresses: a stream object's own stream, or a connection's
    /// default stream (made on first use).
    pub(super) fn target(&self, conn: &mut ConnState, for_write: bool) -> Result<StreamId> {
        self.target_as(conn, for_write, false)
    }

    /// As `target`; with `early`, for early data before the handshake is complete.
    fn target_as(&self, conn: &mut ConnState, for_write: bool, early: bool) -> Result<StreamId> {
        let allow_closed = !for_write;
        match &self.kind {
            Kind::Conn(c) => {
                self.live_or_closed(c, conn, allow_closed, early)?;
                match conn.take_default_stream(c.default_dir(), for_write) {
                    Ok(id) => {
                        // From now on the AUTO policy refuses the peer's new streams.
                        conn.reject_incoming = c.reject_incoming(true);
                        Ok(id)
                    }
                    // No stream will ever arrive on a closed connection.
                    Err(StreamFault::WouldBlock) if conn.lost.is_some() => {
                        Err(closed_error(conn.lost.as_ref()))
                    }
                    Err(f) => Err(stream_error(f, conn)),
                }
            }
            Kind::Stream(s) => {
                let c = s.conn.as_conn()?;
                s.conn.live_or_closed(c, conn, allow_closed, early)?;
                Ok(s.id)
            }
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                    .with("not supported on a listener, domain or TLS connection"))
            }
        }
    }

    /// SSL_write_ex: to the stream or the default stream. `conclude` sends FIN after the data.
    pub(super) fn stream_write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        self.stream_write_as(data, conclude, false)
    }

    /// As `stream_write`; with `early`, before the handshake is complete (in 0-RTT) once the
    /// client has begun early data (`connection::quic_write_early_data`).
    pub(super) fn stream_write_as(
        &self,
        data: &[u8],
        conclude: bool,
        early: bool,
    ) -> Result<usize> {
        let blocking = self.blocking_now();
        let mut done = 0;
        let mut tick = false;
        let r = self.op_waiting("conn: write", true, WaitsFor::Stream, |conn| {
            // Blocking writes take everything (waiting for flow-control credit); non-blocking
            // ones return what fitted.
            let id = self.target_as(conn, true, early)?;
            loop {
                let n = conn
                    .write_stream(id, &data[done..], conclude)
                    .map_err(|f| stream_error(f, conn))?;
                done += n;
                if done == data.len() || !blocking && done > 0 {
                    tick = conn.count_written(done);
                    return Ok(done);
                }
                if n == 0 {
                    return Err(Error::would_block());
                }
            }
        });
        // Another thread polling the network reads the ACKs already.
        if tick && !self.domain().is_polled() {
            self.tick_port();
        }
        r
    }

    /// SSL_read_ex (`peek` false) or SSL_peek_ex (`peek` true).
    pub(super) fn stream_read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        // Data already buffered is served before more is taken in (as OpenSSL does), which
        // keeps quinn's reassembly buffers short during bulk transfers: see `op`.
        self.op_waiting("conn: read", true, WaitsFor::Stream, |conn| {
            let id = self.target(conn, false)?;
            conn.read_stream(id, out, peek)
                .map_err(|f| stream_error(f, conn))
        })
    }

    /// SSL_pending: bytes readable now without waiting (pulled into the peek buffer).
    pub(super) fn stream_pending(&self) -> usize {
        self.with_conn("conn: pending", |conn| match self.target(conn, false) {
            Ok(id) => conn.stream_pending(id),
            Err(_) => 0,
        })
        .unwrap_or(0)
    }

    /// SSL_has_pending on a QUIC object, as OpenSSL's answers: the stream has bytes or a FIN
    /// not yet read, datagrams arrived that were not taken in yet (OpenSSL counts what its
    /// receive queue holds unprocessed; ours is the network BIO, so they are taken in now,
    /// without waiting), or the connection has ended. OpenSSL's guide server
    /// (quic-server-non-block) stops reading a request as soon as this says 0.
    pub(super) fn stream_has_pending(&self) -> bool {
        let readable = || {
            self.with_conn("conn: has_pending", |conn| match self.target(conn, false) {
                Ok(id) => conn.stream_has_readable(id),
                Err(_) => false,
            })
        };
        if readable() == Some(true) {
            return true;
        }
        self.tick_port();
        match readable() {
            Some(true) => true,
            // Gone from this process (fork): ended, as far as this object can tell.
            None => self.cell().is_some(),
            Some(false) => self
                .with_conn("conn: has_pending", |c| c.lost.is_some() || c.is_closed())
                .unwrap_or(true),
        }
    }

    /// SSL_stream_conclude. A client writing early data may conclude a stream in 0-RTT too.
    pub fn conclude(&self) -> Result<()> {
        match &self.kind {
            Kind::Tls(_) => self.write(&[], true),
            _ => self.stream_write_as(&[], true, true),
        }
        .map(|_| ())
    }

    /// SSL_stream_reset: RESET_STREAM with `code` (send side).
    pub fn reset_stream(&self, code: u64) -> Result<()> {
        self.start()?;
        self.tick_port();
        self.with_conn("conn: reset_stream", |conn| {
            let id = self.target(conn, true)?;
            conn.reset_stream(id, code)
                .map_err(|f| stream_error(f, conn))
        })
        .unwrap_or_else(|| Err(closed_error(None)))
    }

    pub(super) fn stream_obj(self: &Arc<Ssl>, id: StreamId) -> Arc<Ssl> {
        let s = StreamObj {
            conn: self.clone(),
            id,
        };
        Ssl::make(
            self.ctx.clone(),
            Kind::Stream(s),
            self.blocking.load(Relaxed),
        )
    }

    /// The stream this object addresses, without making one.
    pub(super) fn known_stream(&self) -> Option<StreamId> {
        match &self.kind {
            Kind::Stream(s) => Some(s.id),
            Kind::Conn(_) => self
                .with_conn("conn: default stream", |conn| conn.default_stream())
                .flatten(),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
        }
    }

    /// SSL_get_stream_id: the stream's id, or u64::MAX without one.
    pub fn stream_id(&self) -> u64 {
        self.known_stream().map_or(u64::MAX, u64::from)
    }

    /// SSL_get_stream_type.
    pub fn stream_type(&self) -> i32 {
        let Some(id) = self.known_stream() else {
            return match &self.kind {
                Kind::Conn(c) if c.default_dir().is_some() => SSL_STREAM_TYPE_BIDI,
                _ => SSL_STREAM_TYPE_NONE,
            };
        };
        if id.dir() == Dir::Bi {
            return SSL_STREAM_TYPE_BIDI;
        }
        if Some(id.initiator()) == self.side() {
            SSL_STREAM_TYPE_WRITE
        } else {
            SSL_STREAM_TYPE_READ
        }
    }

    pub fn is_stream_local(&self) -> bool {
        self.known_stream()
            .is_some_and(|id| Some(id.initiator()) == self.side())
    }

    /// SSL_get_stream_read_state.
    pub fn read_state(&self) -> i32 {
        let Some(id) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        self.part_state(self.with_conn("conn: read_state", |conn| conn.read_state(id)))
    }

    /// SSL_get_stream_write_state.
    pub fn write_state(&self) -> i32 {
        let Some(id) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        self.tick_started();
        self.part_state(self.with_conn("conn: write_state", |conn| conn.write_state(id)))
    }

    /// Takes in what the network has for a started connection (a peer's STOP_SENDING).
    fn tick_started(&self) {
        if self.cell().is_some() {
            self.tick_port();
        }
    }

    /// SSL_STREAM_STATE_* for a stream part's state; a connection this process no longer
    /// serves (fork) reads as closed.
    fn part_state(&self, st: Option<PartState>) -> i32 {
        match st {
            Some(PartState::WrongDir) => SSL_STREAM_STATE_WRONG_DIR,
            Some(PartState::Ok) => SSL_STREAM_STATE_OK,
            Some(PartState::Finished) => SSL_STREAM_STATE_FINISHED,
            Some(PartState::ResetLocal) => SSL_STREAM_STATE_RESET_LOCAL,
            Some(PartState::ResetRemote) => SSL_STREAM_STATE_RESET_REMOTE,
            Some(PartState::ConnClosed) | None => SSL_STREAM_STATE_CONN_CLOSED,
        }
    }

    /// The application error code of a remote reset (read) or STOP_SENDING (write).
    pub fn stream_error_code(&self, write: bool) -> Option<u64> {
        let id = self.known_stream()?;
        if write {
            self.tick_started();
        }
        self.with_conn("conn: stream_error_code", |conn| {
            if write {
                conn.stream_stop_code(id)
            } else {
                conn.stream_reset_code(id)
            }
        })
        .flatten()
    }
}
