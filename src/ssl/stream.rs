//! Stream objects (SSL_new_stream, SSL_accept_stream) and the stream I/O of a connection's
//! default stream: `StreamState`, read/peek/write/pull, pending, conclude, reset, and the
//! stream's type and states.
//! Must not touch: the connection's start and close (`connection`), `extern "C"`.
#![deny(unsafe_code)]

use super::*;

/// What an application did and saw on one stream (beside quinn's own stream state).
#[derive(Default)]
pub struct StreamState {
    pub(super) fin_seen: AtomicBool,
    /// A read has reported the FIN (SSL_ERROR_ZERO_RETURN): SSL_has_pending stops counting it.
    pub(super) fin_read: AtomicBool,
    pub(super) concluded: AtomicBool,
    pub(super) reset_local: Mutex<Option<u64>>,
    pub(super) reset_remote: Mutex<Option<u64>>,
    pub(super) stopped: Mutex<Option<u64>>,
    /// Bytes taken from quinn for SSL_peek/SSL_pending, read before quinn's.
    pub(super) peek: Mutex<Vec<u8>>,
}

/// A stream object (SSL_new_stream / SSL_accept_stream); it keeps its connection alive.
pub struct StreamObj {
    pub conn: Arc<Ssl>,
    pub id: StreamId,
    pub(super) st: StreamState,
}

impl Drop for StreamObj {
    /// Freeing a stream the application did not finish resets its send side and asks the
    /// peer to stop sending, as OpenSSL does.
    fn drop(&mut self) {
        let id = self.id;
        let reset = !*self.st.concluded.get_mut() && self.st.reset_local.get_mut().is_none();
        let stop = !*self.st.fin_seen.get_mut() && self.st.reset_remote.get_mut().is_none();
        self.conn.with_conn("conn: drop a stream", |conn| {
            let side = conn.side();
            let sends = id.dir() == Dir::Bi || id.initiator() == side;
            let recvs = id.dir() == Dir::Bi || id.initiator() != side;
            if sends && reset {
                let _ = conn.reset(id, VarInt::from_u32(0));
            }
            if recvs && stop {
                let _ = conn.stop(id, VarInt::from_u32(0));
            }
        });
    }
}

impl Ssl {
    /// The connection, its handle, the stream and its state that an I/O call addresses: a
    /// stream object's own stream, or a connection's default stream.
    pub(super) fn target(
        &self,
        conn: &mut ConnState,
        for_write: bool,
    ) -> Result<(StreamId, &StreamState)> {
        let allow_closed = !for_write;
        match &self.kind {
            Kind::Conn(c) => {
                self.live_or_closed(c, conn, allow_closed)?;
                let id = match self.default_stream(c, conn, for_write) {
                    Ok(id) => id,
                    // No stream will ever arrive on a closed connection.
                    Err(e) if e.is_would_block() => match conn.lost.as_ref() {
                        Some(lost) => return Err(closed_error(Some(lost))),
                        None => return Err(e),
                    },
                    Err(e) => return Err(e),
                };
                Ok((id, &c.default_st))
            }
            Kind::Stream(s) => {
                let c = s.conn.as_conn()?;
                s.conn.live_or_closed(c, conn, allow_closed)?;
                Ok((s.id, &s.st))
            }
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => {
                Err(Error::ssl(SSL_R_CONN_USE_ONLY)
                    .with("not supported on a listener, domain or TLS connection"))
            }
        }
    }

    /// SSL_write_ex: to the stream or the default stream. `conclude` sends FIN after the data.
    pub(super) fn stream_write(&self, data: &[u8], conclude: bool) -> Result<usize> {
        let blocking = self.blocking_now();
        let mut done = 0;
        self.op("conn: write", true, |conn| {
            // Blocking writes take everything (waiting for flow-control credit); non-blocking
            // ones return what fitted.
            loop {
                let n = self.write_locked(conn, &data[done..], conclude)?;
                done += n;
                if done == data.len() || !blocking && done > 0 {
                    return Ok(done);
                }
                if n == 0 {
                    return Err(Error::would_block());
                }
            }
        })
    }

    pub(super) fn write_locked(
        &self,
        conn: &mut ConnState,
        data: &[u8],
        conclude: bool,
    ) -> Result<usize> {
        let (id, st) = self.target(conn, true)?;
        if id.dir() == Dir::Uni && id.initiator() != conn.side() {
            return Err(
                Error::ssl(SSL_R_STREAM_RECV_ONLY).with("cannot write to a receive-only stream")
            );
        }
        if let Some(code) = *st.reset_local.lock() {
            return Err(
                Error::ssl(SSL_R_STREAM_RESET).with(format!("stream was reset locally ({code})"))
            );
        }
        if st.concluded.load(Relaxed) {
            return Err(Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is already concluded"));
        }
        let n = if data.is_empty() {
            0
        } else {
            match conn.send(id, data) {
                Ok(n) => n,
                Err(SendError::Blocked) => return Err(Error::would_block()),
                Err(SendError::Stopped(code)) => {
                    *st.stopped.lock() = Some(code);
                    return Err(Error::ssl(SSL_R_STREAM_RESET)
                        .with(format!("peer stopped the stream ({code})")));
                }
                Err(SendError::Closed) => {
                    return Err(Error::ssl(SSL_R_STREAM_FINISHED).with("the stream is closed"));
                }
            }
        };
        if conclude && n == data.len() {
            conn.finish(id);
            st.concluded.store(true, Relaxed);
        }
        Ok(n)
    }

    /// Moves what quinn has for the stream into its peek buffer (at most `max` bytes more),
    /// noting FIN and resets.
    pub(super) fn pull(conn: &mut ConnState, id: StreamId, st: &StreamState, max: usize) {
        let mut buf = st.peek.lock();
        // Taking data may free flow-control credit worth telling the peer about: `recv`
        // notes that the connection must be driven then.
        let (_, end, _) = conn.recv(id, max, |b| buf.extend_from_slice(b));
        Self::note_end(st, end);
    }

    /// Records how a stream read ended (FIN, reset) in the object's stream state.
    pub(super) fn note_end(st: &StreamState, end: Option<RecvEnd>) {
        match end {
            Some(RecvEnd::Fin) => st.fin_seen.store(true, Relaxed),
            Some(RecvEnd::Reset(code)) => *st.reset_remote.lock() = Some(code),
            Some(RecvEnd::Blocked) | None => {}
        }
    }

    /// SSL_read_ex (`peek` false) or SSL_peek_ex (`peek` true).
    pub(super) fn stream_read(&self, out: &mut [u8], peek: bool) -> Result<usize> {
        // Data already buffered is served before more is taken in (as OpenSSL does), which
        // keeps quinn's reassembly buffers short during bulk transfers: see `op`.
        self.op("conn: read", true, |conn| self.read_locked(conn, out, peek))
    }

    pub(super) fn read_locked(
        &self,
        conn: &mut ConnState,
        out: &mut [u8],
        peek: bool,
    ) -> Result<usize> {
        let (id, st) = self.target(conn, false)?;
        if id.dir() == Dir::Uni && id.initiator() == conn.side() {
            return Err(
                Error::ssl(SSL_R_STREAM_SEND_ONLY).with("cannot read from a send-only stream")
            );
        }
        let mut n = 0;
        {
            let mut buf = st.peek.lock();
            if !buf.is_empty() {
                n = buf.len().min(out.len());
                out[..n].copy_from_slice(&buf[..n]);
                if !peek {
                    buf.drain(..n);
                }
            }
        }
        if n < out.len() && !st.fin_seen.load(Relaxed) && st.reset_remote.lock().is_none() {
            if peek {
                Self::pull(conn, id, st, out.len() - n);
                let buf = st.peek.lock();
                let m = buf.len().min(out.len());
                out[n..m].copy_from_slice(&buf[n..m]);
                n = m;
            } else {
                let want = out.len() - n;
                let dst = &mut out[n..];
                let mut at = 0;
                let (got, end, _) = conn.recv(id, want, |b| {
                    dst[at..at + b.len()].copy_from_slice(b);
                    at += b.len();
                });
                n += got;
                Self::note_end(st, end);
            }
        }
        if n > 0 {
            return Ok(n);
        }
        if let Some(code) = *st.reset_remote.lock() {
            return Err(
                Error::ssl(SSL_R_STREAM_RESET).with(format!("peer reset the stream ({code})"))
            );
        }
        if st.fin_seen.load(Relaxed) {
            if !peek {
                st.fin_read.store(true, Relaxed);
            }
            return Err(Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("FIN"));
        }
        if let Some(lost) = conn.lost.as_ref() {
            return Err(closed_error(Some(lost)));
        }
        Err(want_read())
    }

    /// SSL_pending: bytes readable now without waiting (pulled into the peek buffer).
    pub(super) fn stream_pending(&self) -> usize {
        self.with_conn("conn: pending", |conn| match self.target(conn, false) {
            Ok((id, st)) => {
                Self::pull(conn, id, st, 1 << 20);
                st.peek.lock().len()
            }
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
                Ok((id, st)) => {
                    Self::pull(conn, id, st, 1 << 20);
                    !st.peek.lock().is_empty()
                        || (st.fin_seen.load(Relaxed) && !st.fin_read.load(Relaxed))
                }
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

    /// SSL_stream_conclude.
    pub fn conclude(&self) -> Result<()> {
        self.write(&[], true).map(|_| ())
    }

    /// SSL_stream_reset: RESET_STREAM with `code` (send side).
    pub fn reset_stream(&self, code: u64) -> Result<()> {
        self.start()?;
        self.tick_port();
        self.with_conn("conn: reset_stream", |conn| {
            let (id, st) = self.target(conn, true)?;
            if id.dir() == Dir::Uni && id.initiator() != conn.side() {
                return Err(
                    Error::ssl(SSL_R_STREAM_RECV_ONLY).with("cannot reset a receive-only stream")
                );
            }
            let vcode = VarInt::from_u64(code)
                .map_err(|_| Error::ssl(SSL_R_BAD_VALUE_CODE).with("error code too large"))?;
            let _ = conn.reset(id, vcode);
            conn.unacked_fin.remove(&id);
            *st.reset_local.lock() = Some(code);
            Ok(())
        })
        .unwrap_or_else(|| Err(closed_error(None)))
    }

    pub(super) fn stream_obj(self: &Arc<Ssl>, id: StreamId) -> Arc<Ssl> {
        let s = StreamObj {
            conn: self.clone(),
            id,
            st: StreamState::default(),
        };
        Ssl::make(
            self.ctx.clone(),
            Kind::Stream(s),
            self.blocking.load(Relaxed),
        )
    }

    /// The stream this object addresses without creating one: (handle, id) if known.
    pub(super) fn known_stream(&self) -> Option<(StreamId, &StreamState)> {
        match &self.kind {
            Kind::Stream(s) => Some((s.id, &s.st)),
            Kind::Conn(c) => (*c.default_stream.lock()).map(|id| (id, &c.default_st)),
            Kind::Listener(_) | Kind::Domain(_) | Kind::Tls(_) | Kind::TlsListener(_) => None,
        }
    }

    /// SSL_get_stream_id: the stream's id, or u64::MAX without one.
    pub fn stream_id(&self) -> u64 {
        self.known_stream()
            .map_or(u64::MAX, |(id, _)| u64::from(id))
    }

    /// SSL_get_stream_type.
    pub fn stream_type(&self) -> i32 {
        let Some((id, _)) = self.known_stream() else {
            return match &self.kind {
                Kind::Conn(c) if c.default_mode.load(Relaxed) != SSL_DEFAULT_STREAM_MODE_NONE => {
                    SSL_STREAM_TYPE_BIDI
                }
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
            .is_some_and(|(id, _)| Some(id.initiator()) == self.side())
    }

    /// SSL_get_stream_read_state.
    pub fn read_state(&self) -> i32 {
        let Some((id, st)) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        if id.dir() == Dir::Uni && Some(id.initiator()) == self.side() {
            return SSL_STREAM_STATE_WRONG_DIR;
        }
        let _ = self.pending();
        if st.reset_remote.lock().is_some() {
            SSL_STREAM_STATE_RESET_REMOTE
        } else if st.fin_seen.load(Relaxed) && st.peek.lock().is_empty() {
            SSL_STREAM_STATE_FINISHED
        } else if self.conn_lost() {
            SSL_STREAM_STATE_CONN_CLOSED
        } else {
            SSL_STREAM_STATE_OK
        }
    }

    /// SSL_get_stream_write_state.
    pub fn write_state(&self) -> i32 {
        let Some((id, st)) = self.known_stream() else {
            return SSL_STREAM_STATE_NONE;
        };
        if id.dir() == Dir::Uni && Some(id.initiator()) != self.side() {
            return SSL_STREAM_STATE_WRONG_DIR;
        }
        self.refresh_stopped(id, st);
        if st.reset_local.lock().is_some() {
            SSL_STREAM_STATE_RESET_LOCAL
        } else if st.stopped.lock().is_some() {
            SSL_STREAM_STATE_RESET_REMOTE
        } else if st.concluded.load(Relaxed) {
            SSL_STREAM_STATE_FINISHED
        } else if self.conn_lost() {
            SSL_STREAM_STATE_CONN_CLOSED
        } else {
            SSL_STREAM_STATE_OK
        }
    }

    pub(super) fn refresh_stopped(&self, id: StreamId, st: &StreamState) {
        if self.cell().is_none() {
            return;
        }
        self.tick_port();
        if let Some(Some(code)) = self.with_conn("conn: refresh_stopped", |conn| conn.stopped(id)) {
            *st.stopped.lock() = Some(code);
        }
    }

    /// The application error code of a remote reset (read) or STOP_SENDING (write).
    pub fn stream_error_code(&self, write: bool) -> Option<u64> {
        let (id, st) = self.known_stream()?;
        if write {
            self.refresh_stopped(id, st);
            *st.stopped.lock()
        } else {
            let _ = self.pending();
            *st.reset_remote.lock()
        }
    }
}
