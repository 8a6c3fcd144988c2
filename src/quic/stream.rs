//! The application's side of a connection's streams: what a program did and saw on each
//! stream it holds (FIN seen and reported, concluded, resets both ways, STOP_SENDING, bytes
//! taken from quinn for a peek), the connection's default stream, and the stream I/O the
//! object model calls (read, peek, write, conclude, reset, pending, states, readiness), all
//! on a locked `ConnState`. Errors are `StreamFault`s; `ssl/` turns them into OpenSSL's.
//! Must not touch: the SSL object model, the endpoint, BIOs.

use std::collections::HashMap;

use quinn_proto::{Dir, StreamId, VarInt};

use super::conn::{ConnState, RecvEnd, SendError};

/// Stream bytes after which a write that did not have to wait handles network events before
/// it returns, as OpenSSL's writes do after each call. A sender that never blocks would
/// otherwise read no ACKs while it writes: its congestion window stays shut and its data
/// waits in quinn's buffer (the bench's server wrote 8 MiB that way before its first ACK was
/// read). Every 64 KiB rather than every call: a program writing small records pays a
/// receive per 64 KiB, not per record (`make bench`'s bulk: 1.10x the wall throughput,
/// paired median of 20 runs, with a tick after every 256 KiB write).
pub(crate) const WRITE_TICK_BYTES: usize = 64 << 10;

/// What an application did and saw on one stream (beside quinn's own stream state).
#[derive(Default)]
pub struct AppStream {
    fin_seen: bool,
    /// A read has reported the FIN: `has_readable` stops counting it.
    fin_read: bool,
    concluded: bool,
    reset_local: Option<u64>,
    reset_remote: Option<u64>,
    stopped: Option<u64>,
    /// Bytes taken from quinn for a peek or a pending count, read before quinn's.
    peek: Vec<u8>,
}

/// The streams of one connection the application holds, by id.
pub(super) type AppStreams = HashMap<StreamId, AppStream>;

/// Why a stream call did not do what was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFault {
    /// Nothing can be done now; it may be later.
    WouldBlock,
    /// A write or reset on a stream only the peer sends on.
    RecvOnly,
    /// A read on a stream only we send on.
    SendOnly,
    /// The application reset the stream's sending part with this code.
    ResetLocally(u64),
    /// The peer reset the stream with this code.
    ResetByPeer(u64),
    /// The peer asked us to stop sending (STOP_SENDING) with this code.
    StoppedByPeer(u64),
    /// The application already concluded the stream.
    Concluded,
    /// quinn no longer has a sending part for the stream.
    StreamClosed,
    /// Every byte was read; the FIN is reported.
    Fin,
    /// The connection is lost (`ConnState::lost` says why).
    ConnLost,
    /// The default stream mode is NONE.
    NoDefaultStream,
    /// The peer allows no more streams of that direction yet.
    CountLimited,
    /// An error code does not fit in a QUIC varint.
    BadCode,
}

/// What a stream is ready for (SSL_poll's R, ER, W and EW on a stream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// Bytes or a FIN to read.
    pub readable: bool,
    /// The peer reset the stream.
    pub reset_by_peer: bool,
    /// A write would take something now.
    pub writable: bool,
    /// The peer sent STOP_SENDING.
    pub stopped_by_peer: bool,
}

/// A stream's receiving or sending part, as SSL_get_stream_read_state and
/// SSL_get_stream_write_state report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartState {
    /// The stream has no such part (a uni stream's other direction).
    WrongDir,
    Ok,
    /// Read side: every byte and the FIN read; write side: concluded.
    Finished,
    ResetLocal,
    /// Read side: the peer reset it; write side: the peer sent STOP_SENDING.
    ResetRemote,
    /// The connection is lost.
    ConnClosed,
}

impl ConnState {
    fn sends_on(&self, id: StreamId) -> bool {
        id.dir() == Dir::Bi || id.initiator() == self.side()
    }

    fn receives_on(&self, id: StreamId) -> bool {
        id.dir() == Dir::Bi || id.initiator() != self.side()
    }

    fn app(&mut self, id: StreamId) -> &mut AppStream {
        self.streams.entry(id).or_default()
    }

    /// The connection's default stream, if the application has one yet.
    pub fn default_stream(&self) -> Option<StreamId> {
        self.default_stream
    }

    /// The default stream, made on first use: the peer's first stream of direction `dir`
    /// if one is waiting (for a write, only a bidi one), else (for a write) a new local one.
    /// `dir` None: the default stream mode is NONE.
    pub fn take_default_stream(
        &mut self,
        dir: Option<Dir>,
        for_write: bool,
    ) -> Result<StreamId, StreamFault> {
        if let Some(id) = self.default_stream {
            return Ok(id);
        }
        let dir = dir.ok_or(StreamFault::NoDefaultStream)?;
        let peer_first = self.incoming.iter().position(|id| id.dir() == dir);
        let id = match peer_first {
            Some(i) if !for_write || dir == Dir::Bi => {
                self.incoming.remove(i).expect("index found")
            }
            _ if for_write => self.open_stream(dir).ok_or(StreamFault::CountLimited)?,
            _ => return Err(StreamFault::WouldBlock),
        };
        self.default_stream = Some(id);
        Ok(id)
    }

    /// The peer's next new stream, of direction `dir` if given (the others stay queued).
    pub fn accept_incoming(&mut self, dir: Option<Dir>) -> Option<StreamId> {
        let at = self
            .incoming
            .iter()
            .position(|id| dir.is_none_or(|d| id.dir() == d))?;
        self.incoming.remove(at)
    }

    /// Whether new streams of direction `dir` from the peer wait to be accepted.
    pub fn has_incoming(&self, dir: Dir) -> bool {
        self.incoming.iter().any(|id| id.dir() == dir)
    }

    /// Counts `n` stream bytes the application wrote; true when the write should handle
    /// network events before it returns (every `WRITE_TICK_BYTES`).
    pub fn count_written(&mut self, n: usize) -> bool {
        self.written_unticked += n;
        if self.written_unticked < WRITE_TICK_BYTES {
            return false;
        }
        self.written_unticked = 0;
        true
    }

    /// Writes what flow control allows now of `data` to stream `id` (nothing when `data` is
    /// empty); with `conclude`, FIN follows once all of `data` is taken.
    pub fn write_stream(
        &mut self,
        id: StreamId,
        data: &[u8],
        conclude: bool,
    ) -> Result<usize, StreamFault> {
        if !self.sends_on(id) {
            return Err(StreamFault::RecvOnly);
        }
        let st = self.app(id);
        if let Some(code) = st.reset_local {
            return Err(StreamFault::ResetLocally(code));
        }
        if st.concluded {
            return Err(StreamFault::Concluded);
        }
        let n = if data.is_empty() {
            0
        } else {
            match self.send(id, data) {
                Ok(n) => n,
                Err(SendError::Blocked) => return Err(StreamFault::WouldBlock),
                Err(SendError::Stopped(code)) => {
                    self.app(id).stopped = Some(code);
                    return Err(StreamFault::StoppedByPeer(code));
                }
                Err(SendError::Closed) => return Err(StreamFault::StreamClosed),
            }
        };
        if conclude && n == data.len() {
            self.finish(id);
            self.app(id).concluded = true;
        }
        Ok(n)
    }

    /// Moves what quinn has for stream `id` into its peek buffer (at most `max` bytes more),
    /// noting FIN and resets. Taking data may free flow-control credit worth telling the
    /// peer about: `recv` notes that the connection must be driven then.
    fn pull(&mut self, id: StreamId, max: usize) {
        let mut buf = std::mem::take(&mut self.app(id).peek);
        let (_, end, _) = self.recv(id, max, |b| buf.extend_from_slice(b));
        let st = self.app(id);
        st.peek = buf;
        st.note_end(end);
    }

    /// Reads (or with `peek`, copies without consuming) up to `out.len()` bytes of stream
    /// `id`: bytes peeked before come first, as OpenSSL serves buffered data first.
    pub fn read_stream(
        &mut self,
        id: StreamId,
        out: &mut [u8],
        peek: bool,
    ) -> Result<usize, StreamFault> {
        if !self.receives_on(id) {
            return Err(StreamFault::SendOnly);
        }
        let st = self.app(id);
        let mut n = st.peek.len().min(out.len());
        out[..n].copy_from_slice(&st.peek[..n]);
        if !peek {
            st.peek.drain(..n);
        }
        if n < out.len() && !st.fin_seen && st.reset_remote.is_none() {
            if peek {
                self.pull(id, out.len() - n);
                let buf = &self.app(id).peek;
                let m = buf.len().min(out.len());
                out[n..m].copy_from_slice(&buf[n..m]);
                n = m;
            } else {
                let dst = &mut out[n..];
                let mut at = 0;
                let (got, end, _) = self.recv(id, dst.len(), |b| {
                    dst[at..at + b.len()].copy_from_slice(b);
                    at += b.len();
                });
                n += got;
                self.app(id).note_end(end);
            }
        }
        if n > 0 {
            return Ok(n);
        }
        let st = self.app(id);
        if let Some(code) = st.reset_remote {
            return Err(StreamFault::ResetByPeer(code));
        }
        if st.fin_seen {
            if !peek {
                st.fin_read = true;
            }
            return Err(StreamFault::Fin);
        }
        if self.lost.is_some() {
            return Err(StreamFault::ConnLost);
        }
        Err(StreamFault::WouldBlock)
    }

    /// Bytes of stream `id` readable now without waiting (taken into its peek buffer).
    pub fn stream_pending(&mut self, id: StreamId) -> usize {
        self.pull(id, 1 << 20);
        self.app(id).peek.len()
    }

    /// Whether a read of stream `id` would return something now: bytes, or a FIN not yet
    /// reported.
    pub fn stream_has_readable(&mut self, id: StreamId) -> bool {
        self.pull(id, 1 << 20);
        let st = self.app(id);
        !st.peek.is_empty() || (st.fin_seen && !st.fin_read)
    }

    /// Resets stream `id`'s sending part with `code` (RESET_STREAM); what was written and
    /// not yet acknowledged is no longer flushed by a shutdown.
    pub fn reset_stream(&mut self, id: StreamId, code: u64) -> Result<(), StreamFault> {
        if !self.sends_on(id) {
            return Err(StreamFault::RecvOnly);
        }
        let v = VarInt::from_u64(code).map_err(|_| StreamFault::BadCode)?;
        let _ = self.reset(id, v);
        self.unacked_fin.remove(&id);
        self.app(id).reset_local = Some(code);
        Ok(())
    }

    /// The application lets stream `id` go (its object is freed): a send side it did not
    /// conclude or reset is reset, a receive side whose end it did not see is stopped
    /// (both with code 0, as OpenSSL does), and its state is forgotten.
    pub fn release_stream(&mut self, id: StreamId) {
        let st = self.streams.remove(&id).unwrap_or_default();
        if self.sends_on(id) && !st.concluded && st.reset_local.is_none() {
            let _ = self.reset(id, VarInt::from_u32(0));
        }
        if self.receives_on(id) && !st.fin_seen && st.reset_remote.is_none() {
            let _ = self.stop(id, VarInt::from_u32(0));
        }
    }

    /// The code of the peer's RESET_STREAM on stream `id` (read side), once a read or a
    /// pending count has seen it.
    pub fn stream_reset_code(&mut self, id: StreamId) -> Option<u64> {
        self.pull(id, 1 << 20);
        self.app(id).reset_remote
    }

    /// The code of the peer's STOP_SENDING on stream `id` (write side), if it sent one.
    pub fn stream_stop_code(&mut self, id: StreamId) -> Option<u64> {
        self.refresh_stopped(id);
        self.app(id).stopped
    }

    fn refresh_stopped(&mut self, id: StreamId) {
        if let Some(code) = self.stopped(id) {
            self.app(id).stopped = Some(code);
        }
    }

    /// SSL_get_stream_read_state's answer for stream `id`.
    pub fn read_state(&mut self, id: StreamId) -> PartState {
        if !self.receives_on(id) {
            return PartState::WrongDir;
        }
        self.pull(id, 1 << 20);
        let lost = self.lost.is_some();
        let st = self.app(id);
        if st.reset_remote.is_some() {
            PartState::ResetRemote
        } else if st.fin_seen && st.peek.is_empty() {
            PartState::Finished
        } else if lost {
            PartState::ConnClosed
        } else {
            PartState::Ok
        }
    }

    /// SSL_get_stream_write_state's answer for stream `id`.
    pub fn write_state(&mut self, id: StreamId) -> PartState {
        if !self.sends_on(id) {
            return PartState::WrongDir;
        }
        self.refresh_stopped(id);
        let lost = self.lost.is_some();
        let st = self.app(id);
        if st.reset_local.is_some() {
            PartState::ResetLocal
        } else if st.stopped.is_some() {
            PartState::ResetRemote
        } else if st.concluded {
            PartState::Finished
        } else if lost {
            PartState::ConnClosed
        } else {
            PartState::Ok
        }
    }

    /// What stream `id` is ready for now. A peer reset discards what was not read yet, even
    /// bytes already peeked. One byte is enough to know it is readable: it waits in the
    /// peek buffer for the next read.
    pub fn readiness(&mut self, id: StreamId) -> Readiness {
        let mut r = Readiness::default();
        if self.receives_on(id) {
            let st = self.app(id);
            if st.reset_remote.is_none()
                && !st.fin_seen
                && let Some(code) = self.received_reset(id)
            {
                let st = self.app(id);
                st.reset_remote = Some(code);
                st.peek.clear();
                self.touch();
            }
            let st = self.app(id);
            if st.peek.is_empty() && !st.fin_seen && st.reset_remote.is_none() {
                self.pull(id, 1);
            }
            let st = self.app(id);
            r.reset_by_peer = st.reset_remote.is_some();
            r.readable = !r.reset_by_peer && (!st.peek.is_empty() || st.fin_seen);
        }
        if self.sends_on(id) {
            self.refresh_stopped(id);
            let terminating = self.lost.is_some() || self.is_closed() || self.drained;
            let blocked = self.write_blocked.contains(&id);
            let st = self.app(id);
            r.stopped_by_peer = st.stopped.is_some();
            r.writable = !r.stopped_by_peer
                && !terminating
                && !st.concluded
                && st.reset_local.is_none()
                && !blocked;
        }
        r
    }
}

impl AppStream {
    /// Records how a read from quinn ended (FIN, reset).
    fn note_end(&mut self, end: Option<RecvEnd>) {
        match end {
            Some(RecvEnd::Fin) => self.fin_seen = true,
            Some(RecvEnd::Reset(code)) => self.reset_remote = Some(code),
            Some(RecvEnd::Blocked) | None => {}
        }
    }
}
