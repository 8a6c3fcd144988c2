//! One QUIC connection's state: quinn-proto's `Connection` and what the application's
//! objects need beside it (streams the peer opened, flush and credit bookkeeping, the close
//! reason), with the stream I/O the object model calls. The engine owns these and drives
//! them; `ssl/` reads and writes streams only through the methods here.
//! Must not touch: BIOs, sockets, the SSL object model, the endpoint.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use quinn_proto::{
    Connection, ConnectionError, ConnectionHandle, Dir, ReadError, Side, StreamId, VarInt,
    WriteError,
};

use super::transport::Closing;

/// Per-connection state beside quinn's `Connection`.
pub struct ConnState {
    pub(super) q: Connection,
    /// quinn's handle, valid until the connection has drained.
    pub handle: ConnectionHandle,
    /// quinn has forgotten the connection; kept only for the application's queries.
    pub drained: bool,
    /// An application object (SSL *) refers to this connection.
    pub held: bool,
    pub(super) queued: bool,
    pub(super) timer: Option<Instant>,
    pub connected: bool,
    pub lost: Option<ConnectionError>,
    /// Streams the peer opened that the application has not taken yet.
    pub incoming: VecDeque<StreamId>,
    /// Streams whose data (and FIN) the peer has fully acknowledged.
    pub acked: std::collections::HashSet<StreamId>,
    /// Concluded streams whose data the peer has not all acknowledged yet (what
    /// SSL_shutdown flushes); a stream leaves when acknowledged, stopped or reset.
    pub unacked_fin: std::collections::HashSet<StreamId>,
    /// Incoming stream policy REJECT: new peer streams are stopped and reset with this code.
    pub reject_incoming: Option<u64>,
    /// Streams whose last write was refused for want of flow-control credit, until quinn
    /// says they are writable again (for SSL_POLL_EVENT_W).
    pub write_blocked: std::collections::HashSet<StreamId>,
    /// Opening a stream of this direction (bidi, uni) failed for want of stream credit,
    /// until quinn says more is available (for SSL_POLL_EVENT_OSB/OSU).
    pub open_blocked: [bool; 2],
    /// Bumped whenever this connection's state may have changed (driven, marked): lets
    /// SSL_poll reuse what it computed for an object whose connection did not change.
    pub epoch: Arc<AtomicU64>,
    /// Shared with the connection's congestion controller (see `transport`).
    pub(super) closing: Closing,
    /// Server, ClientHello still incomplete: when to nudge the client next (see `NUDGE_FIRST`),
    /// and how many nudges were sent.
    pub(super) nudge: Option<Instant>,
    pub(super) nudges: u32,
}

/// How a stream read ended, when it did not just run out of room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvEnd {
    /// Nothing more for now.
    Blocked,
    /// The peer's FIN: every byte has been read.
    Fin,
    /// The peer reset the stream with this code.
    Reset(u64),
}

/// Why a stream write took nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No flow-control credit now (the stream is noted as write-blocked until quinn says
    /// it is writable).
    Blocked,
    /// The peer sent STOP_SENDING with this code.
    Stopped(u64),
    /// The stream is finished or reset, or unknown.
    Closed,
}

impl ConnState {
    /// Reads up to `max` bytes of stream `id` in order, handing each chunk to `sink`.
    /// Returns the bytes read, how the read ended (`None`: `max` reached) and whether the
    /// read freed flow-control credit worth telling the peer about.
    pub fn recv(
        &mut self,
        id: StreamId,
        max: usize,
        mut sink: impl FnMut(&[u8]),
    ) -> (usize, Option<RecvEnd>, bool) {
        let mut rs = self.q.recv_stream(id);
        let Ok(mut chunks) = rs.read(true) else {
            return (0, Some(RecvEnd::Blocked), false);
        };
        let (mut n, mut end) = (0, None);
        while n < max {
            match chunks.next(max - n) {
                Ok(Some(ch)) => {
                    sink(&ch.bytes);
                    n += ch.bytes.len();
                }
                Ok(None) => {
                    end = Some(RecvEnd::Fin);
                    break;
                }
                Err(ReadError::Blocked) => {
                    end = Some(RecvEnd::Blocked);
                    break;
                }
                Err(ReadError::Reset(code)) => {
                    end = Some(RecvEnd::Reset(code.into_inner()));
                    break;
                }
            }
        }
        let transmit = chunks.finalize().should_transmit();
        (n, end, transmit)
    }

    /// Writes as much of `data` as flow control allows now to stream `id`.
    pub fn send(&mut self, id: StreamId, data: &[u8]) -> Result<usize, SendError> {
        match self.q.send_stream(id).write(data) {
            Ok(n) => Ok(n),
            Err(WriteError::Blocked) => {
                self.write_blocked.insert(id);
                Err(SendError::Blocked)
            }
            Err(WriteError::Stopped(code)) => Err(SendError::Stopped(code.into_inner())),
            Err(WriteError::ClosedStream) => Err(SendError::Closed),
        }
    }

    /// Concludes stream `id` (FIN after what was written); the flush bookkeeping notes it
    /// until the peer acknowledges everything. False if the stream cannot be finished.
    pub fn finish(&mut self, id: StreamId) -> bool {
        let ok = self.q.send_stream(id).finish().is_ok();
        if ok {
            self.unacked_fin.insert(id);
        }
        ok
    }

    /// Whether concluded streams still wait for the peer to acknowledge all their data
    /// (streams the peer stopped no longer count): what SSL_shutdown flushes.
    pub fn unflushed(&mut self) -> bool {
        let q = &mut self.q;
        self.unacked_fin
            .retain(|&id| !matches!(q.send_stream(id).stopped(), Ok(Some(_))));
        !self.unacked_fin.is_empty()
    }

    /// Resets the sending part of stream `id` with `code` (RESET_STREAM). False if the
    /// stream has no sending part left to reset.
    pub fn reset(&mut self, id: StreamId, code: VarInt) -> bool {
        self.q.send_stream(id).reset(code).is_ok()
    }

    /// Asks the peer to stop sending on stream `id` (STOP_SENDING with `code`). False if
    /// the stream has no receiving part left.
    pub fn stop(&mut self, id: StreamId, code: VarInt) -> bool {
        self.q.recv_stream(id).stop(code).is_ok()
    }

    /// How many streams of direction `dir` the peer may have open at once (our offer).
    pub fn stream_offer(&self, dir: Dir) -> u64 {
        self.q.max_concurrent_streams(dir)
    }

    /// How many streams of direction `dir` the peer has open now.
    pub fn peer_open_streams(&mut self, dir: Dir) -> u64 {
        self.q.streams().remote_open_streams(dir)
    }

    /// quinn's figures for the connection (packets, losses, the path).
    pub fn stats(&self) -> quinn_proto::ConnectionStats {
        self.q.stats()
    }

    /// The code of the peer's STOP_SENDING on stream `id`, if it sent one.
    pub fn stopped(&mut self, id: StreamId) -> Option<u64> {
        match self.q.send_stream(id).stopped() {
            Ok(Some(code)) => Some(code.into_inner()),
            _ => None,
        }
    }

    /// The code of the peer's RESET_STREAM on stream `id`, if it sent one.
    pub fn received_reset(&mut self, id: StreamId) -> Option<u64> {
        match self.q.recv_stream(id).received_reset() {
            Ok(Some(code)) => Some(code.into_inner()),
            _ => None,
        }
    }

    pub fn is_handshaking(&self) -> bool {
        self.q.is_handshaking()
    }

    /// quinn has closed the connection (locally, by the peer, or lost).
    pub fn is_closed(&self) -> bool {
        self.q.is_closed()
    }

    pub fn side(&self) -> Side {
        self.q.side()
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.q.remote_address()
    }

    /// The TLS session (for the peer's identity and what the handshake recorded).
    pub fn crypto_session(&self) -> &dyn quinn_proto::crypto::Session {
        self.q.crypto_session()
    }

    /// Closes the connection with an application error code; CONNECTION_CLOSE goes out with
    /// the next transmit even if the congestion window is full.
    pub fn close(&mut self, now: Instant, code: VarInt, reason: bytes::Bytes) {
        self.closing.set();
        self.q.close(now, code, reason);
    }
}

/// First wait before a server connection whose ClientHello is still incomplete nudges its
/// client (a PING in the Initial space), doubled for each of up to `NUDGE_MAX` nudges.
///
/// After a Retry, a client whose ClientHello spans several datagrams resends only what its
/// first datagram carried (RFC 9000 lets it keep the rest in flight): OpenSSL 3.5 does so. The
/// rest is declared lost by the client's time threshold, at least 1 ms (RFC 9002's
/// granularity) after it was sent, and our immediate acknowledgement arrives sooner than that
/// on a fast path. A client that runs its timers only when a datagram arrives (OpenSSL's
/// `ddd-05-mem-nonblocking` waits 2 s on its socket) then never resends it, and the server,
/// having sent nothing ack-eliciting, has no probe timer either: both wait. The nudge is that
/// datagram; it is sent only while the ClientHello is incomplete.
const NUDGE_FIRST: Duration = Duration::from_millis(2);
const NUDGE_MAX: u32 = 5;

/// Arms or disarms a server connection's nudge (see `NUDGE_FIRST`).
pub(super) fn update_nudge(c: &mut ConnState, now: Instant) {
    let waiting = !c.connected
        && c.lost.is_none()
        && !c.q.is_closed()
        && c.q.crypto_session().handshake_data().is_none();
    if !waiting {
        c.nudge = None;
    } else if c.nudge.is_none() && c.nudges < NUDGE_MAX {
        c.nudge = Some(now + NUDGE_FIRST * (1 << c.nudges));
    }
}
