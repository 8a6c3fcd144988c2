//! The QUIC connection object (SSL_new on a client context, or accepted from a listener):
//! `ConnObj`, what the application set before it started and saw since (default stream, stream
//! policy, close, ALPN, verification); start, handshake, shutdown, close info, peer address,
//! new and accepted streams.
//! Must not touch: stream I/O (`stream`), the TLS objects (`tls_conn`), `extern "C"`.
#![deny(unsafe_code)]

use super::*;

pub struct ConnObj {
    pub(super) domain: Arc<Domain>,
    pub(super) port: PortId,
    /// The engine's connection, once it exists (started, accepted or peeled).
    pub(super) cell: std::sync::OnceLock<Arc<ConnCell>>,
    pub(super) pre: Mutex<Pre>,
    pub(super) listener: Option<Arc<Ssl>>,
    /// SSL_listen_ex moved a listener's incoming connection into this object (made by
    /// SSL_new): from then on its domain, port and listener are these.
    pub(super) peeled: std::sync::OnceLock<Peeled>,
    pub(super) verify: Arc<VerifyResult>,
    /// SSL_DEFAULT_STREAM_MODE_*: the default stream's direction, set before it exists (the
    /// stream itself is the connection's, `ConnState::default_stream`).
    pub(super) default_mode: AtomicU32,
    /// SSL_INCOMING_STREAM_POLICY_* and its application error code.
    pub(super) policy: Mutex<(i32, u64)>,
    pub(super) alpn: std::sync::OnceLock<Vec<u8>>,
    pub(super) closing: AtomicBool,
    /// A background thread serves this connection's domain (thread-assisted mode).
    pub(super) assisted: AtomicBool,
    pub(super) close_code: AtomicU64,
    pub close_reason: std::sync::OnceLock<std::ffi::CString>,
}

/// Where a peeled connection (SSL_listen_ex) lives, and its client-certificate outcome
/// (the TLS session began before the object was chosen).
pub(super) struct Peeled {
    pub(super) domain: Arc<Domain>,
    pub(super) port: PortId,
    pub(super) listener: Arc<Ssl>,
    pub(super) verify: Option<Arc<VerifyResult>>,
}

/// (code, frame type, reason, closed locally, transport-level) for SSL_get_conn_close_info.
fn close_details(e: &quinn_proto::ConnectionError, local: bool) -> (u64, u64, Vec<u8>, bool, bool) {
    use quinn_proto::ConnectionError as E;
    match e {
        E::ApplicationClosed(a) => (
            a.error_code.into_inner(),
            0,
            a.reason.to_vec(),
            local,
            false,
        ),
        E::ConnectionClosed(c) => {
            // quinn does not expose the frame type's number: reported as 0.
            (u64::from(c.error_code), 0, c.reason.to_vec(), local, true)
        }
        E::TransportError(t) => (
            u64::from(t.code),
            0,
            t.reason.clone().into_bytes(),
            true,
            true,
        ),
        E::TimedOut => (u64::MAX, 0, b"idle timeout".to_vec(), true, true),
        E::Reset => (0, 0, b"stateless reset".to_vec(), false, true),
        E::LocallyClosed => (0, 0, Vec::new(), true, false),
        E::VersionMismatch => (0, 0, b"version mismatch".to_vec(), false, true),
        E::CidsExhausted => (0, 0, b"connection IDs exhausted".to_vec(), true, true),
    }
}

pub(super) fn closed_error(e: Option<&quinn_proto::ConnectionError>) -> Error {
    match e {
        Some(quinn_proto::ConnectionError::ApplicationClosed(a)) => {
            Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with(format!(
                "peer closed the connection (code {})",
                a.error_code
            ))
        }
        Some(quinn_proto::ConnectionError::TimedOut) => {
            Error::ssl(SSL_R_QUIC_NETWORK_ERROR).with("idle timeout")
        }
        Some(e) => Error::ssl(SSL_R_QUIC_PROTOCOL_ERROR).with(e.to_string()),
        None => Error::ssl(SSL_R_PROTOCOL_IS_SHUTDOWN).with("connection is closed"),
    }
}

impl ConnObj {
    /// The code new peer streams are refused with, if they are: always under REJECT; under
    /// AUTO once the connection has a default stream (`has_default`: an application using
    /// one is not prepared for others), unless the default stream mode is NONE.
    pub(super) fn reject_incoming(&self, has_default: bool) -> Option<u64> {
        let (policy, aec) = *self.policy.lock();
        let refuse = match policy {
            SSL_INCOMING_STREAM_POLICY_REJECT => true,
            SSL_INCOMING_STREAM_POLICY_AUTO => self.default_dir().is_some() && has_default,
            _ => false,
        };
        refuse.then_some(aec)
    }

    /// The default stream's direction under the default stream mode (None: mode NONE).
    pub(super) fn default_dir(&self) -> Option<Dir> {
        match self.default_mode.load(Relaxed) {
            SSL_DEFAULT_STREAM_MODE_AUTO_BIDI => Some(Dir::Bi),
            SSL_DEFAULT_STREAM_MODE_AUTO_UNI => Some(Dir::Uni),
            _ => None,
        }
    }

    /// The domain serving this connection.
    pub fn domain(&self) -> &Arc<Domain> {
        self.peeled.get().map_or(&self.domain, |p| &p.domain)
    }
    /// Its port in that domain.
    pub fn port(&self) -> PortId {
        self.peeled.get().map_or(self.port, |p| p.port)
    }
    /// The listener that accepted it (a server connection), else None.
    pub fn listener(&self) -> Option<&Arc<Ssl>> {
        self.peeled
            .get()
            .map(|p| &p.listener)
            .or(self.listener.as_ref())
    }
    /// Its verification state (SSL_get_verify_result, the verify callback's).
    pub fn verify(&self) -> &Arc<VerifyResult> {
        self.peeled
            .get()
            .and_then(|p| p.verify.as_ref())
            .unwrap_or(&self.verify)
    }

    pub(super) fn new(domain: Arc<Domain>, port: PortId, listener: Option<Arc<Ssl>>) -> ConnObj {
        ConnObj {
            domain,
            port,
            cell: std::sync::OnceLock::new(),
            pre: Mutex::new(Pre::default()),
            listener,
            peeled: std::sync::OnceLock::new(),
            verify: Arc::new(VerifyResult::default()),
            default_mode: AtomicU32::new(SSL_DEFAULT_STREAM_MODE_AUTO_BIDI),
            policy: Mutex::new((SSL_INCOMING_STREAM_POLICY_AUTO, 0)),
            alpn: std::sync::OnceLock::new(),
            closing: AtomicBool::new(false),
            assisted: AtomicBool::new(false),
            close_code: AtomicU64::new(0),
            close_reason: std::sync::OnceLock::new(),
        }
    }
}

impl Drop for ConnObj {
    /// Freeing a live connection closes it (the peer is told at once rather than by timeout);
    /// the engine then forgets it once quinn has.
    fn drop(&mut self) {
        // A peeled connection (SSL_listen_ex) lives in its listener's domain, not its own.
        let (domain, port) = (self.domain().clone(), self.port());
        if *self.assisted.get_mut() {
            domain.stop_assist();
        }
        if let Some(cell) = self.cell.get() {
            {
                let mut c = cell.lock("conn: drop");
                if !c.gone && !c.broken && !c.is_closed() {
                    c.close(Instant::now(), VarInt::from_u32(0), bytes::Bytes::new());
                    c.take_dirty();
                    cell.drive(&mut c, Instant::now());
                }
            }
            let mut g = domain.lock("domain: drop");
            let p = g.port(port);
            p.engine.serve(Instant::now(), cell);
            p.engine.release(cell.id);
        }
    }
}

impl Ssl {
    pub fn set_initial_peer(&self, a: SocketAddr) -> Result<()> {
        self.as_conn()?.pre.lock().peer = Some(a);
        Ok(())
    }

    /// A QUIC connection's handshake facts: (ALPN, resumed, complete).
    pub(super) fn quic_handshake(&self) -> Option<(Option<Vec<u8>>, bool, bool)> {
        self.as_conn().ok()?;
        self.with_conn("conn: quic_handshake", |conn| {
            let session = conn.crypto_session();
            let data = session.handshake_data()?;
            let hd = data.downcast::<session::QuicHandshake>().ok()?;
            Some((hd.protocol.clone(), hd.resumed, !session.is_handshaking()))
        })?
    }

    /// The key-exchange group of a QUIC connection's handshake, from the ServerHello its TLS
    /// session read (client) or wrote (server): quinn does not show rustls's.
    pub(super) fn quic_group(&self) -> Option<rustls::NamedGroup> {
        self.as_conn().ok()?;
        self.with_conn("conn: quic_group", |conn| {
            let data = conn.crypto_session().handshake_data()?;
            data.downcast::<session::QuicHandshake>().ok()?.group
        })?
    }

    /// Starts the client connection if it has not started (with the domain locked);
    /// returns its cell.
    pub(super) fn started(&self, c: &ConnObj, p: &mut PortGuard<'_>) -> Result<Arc<ConnCell>> {
        if let Some(cell) = c.cell.get() {
            return Ok(cell.clone());
        }
        if p.rbio.is_none() || p.wbio.is_none() {
            return Err(Error::ssl(SSL_R_BIO_NOT_SET)
                .with("set a network BIO (SSL_set_fd/SSL_set_bio) first"));
        }
        let pre = c.pre.lock();
        let peer = match pre.peer {
            Some(a) => a,
            None if !p.write_addressed() => UNADDRESSED_PEER,
            None if pre.outgoing => {
                return Err(Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET).with(
                    "a connection from SSL_new_from_listener needs SSL_set1_initial_peer_addr",
                ));
            }
            None => p
                .wbio
                .as_ref()
                .and_then(|b| b.dgram().ok().and_then(|d| d.detect_peer()))
                .and_then(|a| a.to_socket_addr())
                .ok_or_else(|| {
                    Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET)
                        .with("call SSL_set1_initial_peer_addr or use a connected socket")
                })?,
        };
        let name = pre
            .sni
            .clone()
            .or_else(|| pre.host.clone())
            .unwrap_or_else(|| "localhost".into());
        let alpn = pre.alpn.clone();
        let groups = pre.groups.clone();
        drop(pre);
        if alpn
            .as_ref()
            .map_or(self.ctx.alpn().is_empty(), |a| a.is_empty())
        {
            return Err(Error::ssl(235).with("QUIC requires ALPN: call SSL_set_alpn_protos"));
        }
        // Connections of a listener (SSL_new_from_listener) do not resume. A resuming client
        // offers early data whenever its session allows it, so that streams can be opened
        // (SSL_new_stream) and written (SSL_write_early_data) before the handshake; nothing
        // goes in 0-RTT unless the application writes early data.
        let store = c.listener.is_none().then(|| self.store(&self.ctx, true));
        let early = store.is_some();
        let cfg = self.ctx.client_config_for(
            alpn,
            c.verify.clone(),
            self as *const Ssl as usize,
            store,
            early,
            groups.as_ref(),
        )?;
        // The connection's own context chooses its controller and datagrams, not the port's
        // (a listener's, for SSL_new_from_listener).
        let h = p
            .engine
            .connect_with(
                Instant::now(),
                cfg,
                peer,
                &name,
                self.ctx.transport_options(),
            )
            .map_err(|e| {
                Error::ssl(SSL_R_QUIC_PROTOCOL_ERROR).with(format!("cannot connect: {e}"))
            })?;
        let cell = p
            .engine
            .cell(h)
            .ok_or_else(|| Error::internal("a new connection is not in its engine"))?;
        let _ = c.cell.set(cell.clone());
        p.tick(Instant::now());
        if self.domain().flags & SSL_DOMAIN_FLAG_THREAD_ASSISTED != 0 && c.listener().is_none() {
            self.domain().start_assist()?;
            c.assisted.store(true, Relaxed);
        }
        Ok(cell)
    }

    /// SSL_connect / SSL_do_handshake / SSL_accept: Ok once the handshake is complete.
    pub(super) fn conn_handshake(&self) -> Result<()> {
        self.as_conn()?;
        self.op("conn: do_handshake", true, |conn| {
            if let Some(e) = &conn.lost {
                return Err(closed_error(Some(e)));
            }
            if conn.connected || !conn.is_handshaking() {
                return Ok(());
            }
            Err(want_read())
        })
    }

    pub(super) fn live(&self, c: &ConnObj, conn: &mut ConnState) -> Result<()> {
        self.live_or_closed(c, conn, false, false)
    }

    /// As `live`; with `allow_closed`, a closed connection still answers, so that data it
    /// received before closing can be read (OpenSSL returns buffered data and FIN first).
    /// With `early`, a client that writes early data (SSL_write_early_data) may go on before
    /// the handshake is complete.
    pub(super) fn live_or_closed(
        &self,
        c: &ConnObj,
        conn: &mut ConnState,
        allow_closed: bool,
        early: bool,
    ) -> Result<()> {
        conn.reject_incoming = c.reject_incoming(conn.default_stream().is_some());
        if let Some(e) = &conn.lost {
            if allow_closed && conn.connected {
                return Ok(());
            }
            return Err(closed_error(Some(e)));
        }
        if !conn.connected && conn.is_handshaking() && !(early && conn.zero_rtt.pending()) {
            return Err(want_read());
        }
        Ok(())
    }

    /// SSL_shutdown(_ex): conclude the default stream, wait for every concluded stream's data
    /// to be acknowledged (unless NO_STREAM_FLUSH), send CONNECTION_CLOSE, then wait out the
    /// closing period (unless RAPID). As in SSL_shutdown_ex(3), RAPID skips only the
    /// terminating period: stream data written before the call is still delivered. WAIT_PEER
    /// (unless a local close has begun) first waits for the peer to close the connection, or
    /// for it to end otherwise, and closes nothing itself. Ok(true) when done, Ok(false) while
    /// in progress; a blocking object waits (unless NO_BLOCK).
    pub(super) fn conn_shutdown(&self, code: u64, reason: &[u8], flags: u64) -> Result<bool> {
        let c = self.as_conn()?;
        let rapid = flags & SSL_SHUTDOWN_FLAG_RAPID != 0;
        let flush = flags & SSL_SHUTDOWN_FLAG_NO_STREAM_FLUSH == 0;
        let wait_peer = flags & SSL_SHUTDOWN_FLAG_WAIT_PEER != 0;
        // Not started, or no longer served by this process (fork): nothing to close.
        if self.with_conn("conn: shutdown", |_| ()).is_none() {
            return Ok(true);
        }
        let r = self.op(
            "conn: shutdown",
            flags & SSL_SHUTDOWN_FLAG_NO_BLOCK == 0,
            |conn| {
                if conn.drained {
                    return Ok(());
                }
                let open = !c.closing.load(Relaxed) && conn.lost.is_none() && !conn.is_closed();
                if open && wait_peer {
                    return Err(want_read());
                }
                if open {
                    if let Some(id) = conn.default_stream() {
                        conn.finish(id);
                    }
                    // Concluded streams whose data the peer has not acknowledged yet: come back
                    // later (OpenSSL flushes streams first).
                    if flush && conn.unflushed() {
                        conn.touch();
                        return Err(want_read());
                    }
                    c.closing.store(true, Relaxed);
                    c.close_code.store(code, Relaxed);
                    let code = VarInt::from_u64(code).unwrap_or(VarInt::from_u32(0));
                    conn.close(Instant::now(), code, bytes::Bytes::copy_from_slice(reason));
                }
                if rapid {
                    return Ok(());
                }
                // Closing (or draining after the peer closed): done once quinn has forgotten it.
                Err(want_read())
            },
        );
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_would_block() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// SSL_key_update on a QUIC connection or stream: once the handshake is confirmed, quinn
    /// moves to the next key phase (the peer follows).
    pub(super) fn quic_key_update(&self) -> Result<()> {
        let done = self.with_conn("conn: key_update", |conn| {
            if !conn.connected || conn.lost.is_some() {
                return false;
            }
            conn.key_update();
            true
        });
        match done {
            Some(true) => Ok(()),
            _ => Err(Error::ssl(SSL_R_TOO_MANY_KEY_UPDATES)
                .with("a key update comes after the handshake, on a live connection")),
        }
    }

    /// OSSLQUIC_get_conn_stats: quinn's figures for the connection (its current path), its
    /// datagram counts and its ECN figures.
    pub fn conn_stats(
        &self,
    ) -> Result<(
        quinn_proto::ConnectionStats,
        crate::quic::conn::DatagramStats,
        crate::quic::conn::EcnStats,
    )> {
        self.conn_obj().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("statistics are a connection's or a stream's")
        })?;
        self.with_conn("conn: stats", |conn| {
            (conn.stats(), conn.dgram_stats, conn.ecn_stats)
        })
        .ok_or_else(|| Error::ssl(SSL_R_STILL_IN_INIT).with("the connection has not started"))
    }

    /// SSL_write_early_data on a QUIC client connection (its default stream) or one of its
    /// streams: starts the connection if it has not started and writes `data` in 0-RTT
    /// while the handshake runs. Needs a session from a server that
    /// allows early data (SSL_set_session, or the context's cache); without one, or on a
    /// server, or once the handshake is complete without early data, fails as OpenSSL's TLS
    /// does (should not have been called). Data written early is kept until the server
    /// answers: if it rejects the early data, the same streams carry the same bytes again
    /// (`quic::zerortt`), so nothing written is lost. Once the handshake completes during a
    /// blocking write, the rest goes as ordinary data.
    pub(super) fn quic_write_early_data(&self, data: &[u8]) -> Result<usize> {
        let c = self.conn_obj().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("early data is written on a connection or stream")
        })?;
        let misuse =
            |why: &str| Error::ssl(ERR_R_SHOULD_NOT_HAVE_BEEN_CALLED).with(why.to_string());
        if c.listener().is_some() {
            return Err(misuse(
                "a connection made from a listener is a server's or does not resume: no early data",
            ));
        }
        self.start()?;
        self.with_conn("conn: write_early_data", |conn| {
            if conn.side() == Side::Server {
                return Err(misuse("a server does not write early data"));
            }
            if !conn.zero_rtt.is_off() {
                return Ok(());
            }
            if conn.can_write_early() {
                conn.zero_rtt.start();
                return Ok(());
            }
            Err(misuse(if conn.connected || !conn.is_handshaking() {
                "the handshake is complete: early data comes before it"
            } else {
                "no session allowing early data: resume one (SSL_set_session) from a server that allows it (SSL_CTX_set_max_early_data)"
            }))
        })
        .unwrap_or_else(|| Err(closed_error(None)))?;
        self.stream_write_as(data, false, true)
    }

    /// SSL_get_early_data_status of a QUIC connection or stream (NOT_SENT before it starts).
    pub(super) fn quic_early_data_status(&self) -> i32 {
        self.with_conn("conn: early_data_status", |conn| conn.early_data_status())
            .unwrap_or(crate::quic::zerortt::SSL_EARLY_DATA_NOT_SENT)
    }

    /// OSSLQUIC_write_datagram: one RFC 9221 datagram, queued whole or not at all. Waits
    /// (blocking mode) or says WANT_WRITE for the handshake and for send-buffer room.
    pub fn write_datagram(&self, data: &[u8]) -> Result<()> {
        use crate::quic::conn::DatagramError as D;
        self.datagram_conn()?;
        self.op("conn: write_datagram", true, |conn| {
            if let Some(e) = &conn.lost {
                return Err(closed_error(Some(e)));
            }
            if !conn.connected {
                return Err(want_read());
            }
            match conn.send_datagram(data) {
                Ok(()) => Ok(()),
                Err(D::Blocked) => Err(want_read()),
                Err(D::Unsupported) => Err(Error::unsupported(
                    "datagrams: the peer does not take them, or OSSLQUIC_CTX_set_datagrams was not called",
                )),
                Err(D::TooLarge { max }) => Err(Error::ssl(SSL_R_BAD_LENGTH).with(format!(
                    "a datagram of {} bytes; the peer takes at most {max}",
                    data.len()
                ))),
            }
        })
    }

    /// OSSLQUIC_read_datagram: the oldest datagram received and unread, into `out`; one
    /// longer than `out` stays queued and the call fails saying its size. Waits (blocking
    /// mode) or says WANT_READ when none is queued.
    pub fn read_datagram(&self, out: &mut [u8]) -> Result<usize> {
        self.datagram_conn()?;
        self.op("conn: read_datagram", true, |conn| {
            match conn.read_datagram(out.len()) {
                Some(Ok(d)) => {
                    out[..d.len()].copy_from_slice(&d);
                    Ok(d.len())
                }
                Some(Err(len)) => Err(Error::ssl(SSL_R_BAD_LENGTH).with(format!(
                    "the next datagram has {len} bytes, the buffer {}",
                    out.len()
                ))),
                None if conn.lost.is_some() || conn.is_closed() => {
                    Err(closed_error(conn.lost.as_ref()))
                }
                None => Err(want_read()),
            }
        })
    }

    /// OSSLQUIC_get_max_datagram_size: what the peer takes now (0: nothing, or not yet).
    pub fn max_datagram_size(&self) -> Result<usize> {
        self.datagram_conn()?;
        Ok(self
            .with_conn("conn: max_datagram_size", |conn| conn.max_datagram_size())
            .flatten()
            .unwrap_or(0))
    }

    fn datagram_conn(&self) -> Result<()> {
        self.conn_obj().map(|_| ()).ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("datagrams are a connection's (or its streams')")
        })
    }

    /// SSL_get_conn_close_info: (code, frame type, reason, local, transport) once closed.
    pub fn close_info(&self) -> Option<(u64, u64, Vec<u8>, bool, bool)> {
        let c = self.conn_obj()?;
        self.cell()?;
        let lost = self.conn_record("conn: close_info", |conn| conn.lost.clone());
        let local = c.closing.load(Relaxed);
        match lost {
            None | Some(None) if local => {
                Some((c.close_code.load(Relaxed), 0, Vec::new(), true, false))
            }
            Some(Some(e)) => Some(close_details(&e, local)),
            _ => None,
        }
    }

    /// The negotiated ALPN protocol of a QUIC connection, kept with the object so C can hold
    /// a pointer to it.
    pub(super) fn conn_alpn_selected_ref(&self) -> Option<&[u8]> {
        let c = self.as_conn().ok()?;
        if c.alpn.get().is_none() {
            let _ = c.alpn.set(self.alpn_selected()?);
        }
        c.alpn.get().map(|v| v.as_slice())
    }

    /// The negotiated ALPN protocol, if any.
    pub fn alpn_selected(&self) -> Option<Vec<u8>> {
        self.quic_handshake()?.0
    }

    /// SSL_get_peer_addr (OpenSSL 4.0) on a QUIC connection or stream: where quinn last heard
    /// from the peer, or the initial peer address before the connection started.
    pub(super) fn conn_peer_addr(&self) -> Result<SocketAddr> {
        let c = self.conn_obj().ok_or_else(|| {
            Error::ssl(SSL_R_CONN_USE_ONLY).with("only a connection or stream has a peer")
        })?;
        if let Some(a) = self.with_conn("conn: peer_addr", |conn| conn.remote_address()) {
            return Ok(a);
        }
        c.pre.lock().peer.ok_or_else(|| {
            Error::ssl(SSL_R_REMOTE_PEER_ADDRESS_NOT_SET).with("the connection has not started")
        })
    }

    /// SSL_new_stream: a new local stream on this connection.
    /// In blocking mode (and without `no_block`) waits for the handshake and for stream
    /// credit; otherwise fails with STREAM_COUNT_LIMITED when the peer allows no more.
    pub fn new_stream(self: &Arc<Ssl>, uni: bool, no_block: bool) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let mut limited = false;
        let r = self.op("conn: new_stream", !no_block, |conn| {
            // A client that may write early data opens streams in 0-RTT (kept in its early
            // log, to be opened again if the server rejects the early data).
            if conn.can_write_early() {
                conn.zero_rtt.start();
            }
            self.live_or_closed(c, conn, false, true)?;
            limited = false;
            conn.open_stream(if uni { Dir::Uni } else { Dir::Bi })
                .ok_or_else(|| {
                    limited = true;
                    want_read()
                })
        });
        match r {
            Ok(id) => Ok(self.stream_obj(id)),
            Err(e) if e.is_would_block() && limited => {
                Err(Error::ssl(SSL_R_STREAM_COUNT_LIMITED)
                    .with("the peer allows no more streams yet"))
            }
            Err(e) => Err(e),
        }
    }

    /// SSL_accept_stream: the next stream the peer opened; in blocking mode (and without
    /// `no_block`) waits for one.
    /// SSL_accept_stream: the peer's next stream, of direction `dir` if given (OpenSSL 3.6's
    /// SSL_ACCEPT_STREAM_UNI/_BIDI: the first queued stream of that kind; others stay queued).
    pub fn accept_stream(self: &Arc<Ssl>, no_block: bool, dir: Option<Dir>) -> Result<Arc<Ssl>> {
        let c = self.as_conn()?;
        let id = self.op_waiting(
            "conn: accept_stream",
            !no_block,
            WaitsFor::Incoming,
            |conn| {
                self.live(c, conn)?;
                conn.accept_incoming(dir).ok_or_else(want_read)
            },
        )?;
        Ok(self.stream_obj(id))
    }

    pub fn accept_stream_queue_len(&self) -> Result<usize> {
        let c = self.as_conn()?;
        self.start()?;
        self.tick_port();
        self.with_conn("conn: accept_stream_queue_len", |conn| {
            self.live(c, conn)?;
            Ok(conn.incoming.len())
        })
        .unwrap_or_else(|| Err(closed_error(None)))
    }

    pub fn set_default_stream_mode(&self, mode: u32) -> Result<()> {
        let c = self.as_conn()?;
        if mode > SSL_DEFAULT_STREAM_MODE_AUTO_UNI {
            return Err(Error::invalid(format!(
                "unknown default stream mode {mode}"
            )));
        }
        if self
            .with_conn("conn: default stream", |conn| conn.default_stream())
            .flatten()
            .is_some()
        {
            return Err(Error::ssl(SSL_R_FEATURE_NOT_RENEGOTIABLE)
                .with("the default stream already exists"));
        }
        c.default_mode.store(mode, Relaxed);
        self.bump_epoch();
        Ok(())
    }

    pub fn set_incoming_stream_policy(&self, policy: i32, aec: u64) -> Result<()> {
        let c = self.as_conn()?;
        if !matches!(
            policy,
            SSL_INCOMING_STREAM_POLICY_AUTO
                | SSL_INCOMING_STREAM_POLICY_ACCEPT
                | SSL_INCOMING_STREAM_POLICY_REJECT
        ) {
            return Err(Error::invalid(format!(
                "unknown incoming stream policy {policy}"
            )));
        }
        *c.policy.lock() = (policy, aec);
        Ok(())
    }

    pub(super) fn side(&self) -> Option<Side> {
        self.with_conn("conn: side", |conn| conn.side())
    }
}
