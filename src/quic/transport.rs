//! Per-connection transport settings, and a congestion controller that lets a closing
//! connection's CONNECTION_CLOSE out.
//!
//! quinn-proto 0.11.19 gates the packet that carries CONNECTION_CLOSE by the congestion window
//! when stream data queued before the close is still pending: a connection closed while its
//! window is full (SSL_shutdown_ex with NO_STREAM_FLUSH in the middle of a bulk write) never
//! sends the close, and the peer waits for its idle timeout (quinn issue #2785, fixed upstream
//! by PR #2787, not released yet). Each connection gets its own controller factory, sharing a
//! `Closing` flag with the engine; once the engine closes the connection the window is
//! unbounded, so the close packet (the only thing a closed connection sends) goes out. Remove
//! this once quinn-proto releases the fix.
//!
//! Stream limits are lazy: quinn-proto allocates the state of every stream the peer may open
//! up front (a hash-map entry per stream id in each direction it carries), which for
//! 1000 + 1000 streams was 134 of an idle server connection's 156 KiB. A connection offers
//! `INITIAL_STREAMS` of each direction, as OpenSSL does (its `DEFAULT_INIT_CONN_MAX_STREAMS`),
//! and `grow_streams` doubles the offer, up to `MAX_STREAMS`, whenever the peer has half of
//! it open. Quinn announces each raise (MAX_STREAMS) with the next packet.
//! Must not touch: streams' data, sockets, the SSL object model.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use quinn_proto::congestion::{Controller, ControllerFactory, ControllerMetrics, CubicConfig};
use quinn_proto::{Connection, Dir, RttEstimator, TransportConfig, VarInt};

/// Streams of each direction the peer may have open at once.
pub(crate) const MAX_STREAMS: u64 = 1000;
/// What a new connection offers the peer of each direction; `grow_streams` raises it.
pub(crate) const INITIAL_STREAMS: u64 = 100;

/// Set once a connection is closed (locally or by quinn after an error).
#[derive(Clone, Default, Debug)]
pub struct Closing(Arc<AtomicBool>);

impl Closing {
    pub fn set(&self) {
        self.0.store(true, Relaxed);
    }
    pub fn is_set(&self) -> bool {
        self.0.load(Relaxed)
    }
}

/// Transport settings for one connection: OpenSSL's 30 s idle timeout, windows large enough
/// for bulk transfer (quinn allocates receive buffers as data arrives, not for the window),
/// `INITIAL_STREAMS` of each direction, and a congestion controller that follows `closing`.
pub fn config(closing: &Closing) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(30_000).into()));
    t.stream_receive_window(VarInt::from_u32(8 << 20));
    t.receive_window(VarInt::from_u32(32 << 20));
    t.send_window(32 << 20);
    t.max_concurrent_bidi_streams(VarInt::from_u64(INITIAL_STREAMS).unwrap_or(VarInt::MAX));
    t.max_concurrent_uni_streams(VarInt::from_u64(INITIAL_STREAMS).unwrap_or(VarInt::MAX));
    t.congestion_controller_factory(Arc::new(Factory {
        inner: Arc::new(CubicConfig::default()),
        closing: closing.clone(),
    }));
    t
}

/// Call when the peer has opened streams of `dir`: once it has half of what it may open at
/// once, the offer doubles (capped at `MAX_STREAMS`), so a peer working up to `MAX_STREAMS`
/// concurrent streams waits about one round trip per doubling, and an idle connection keeps
/// only the state of `INITIAL_STREAMS`. The offer is not lowered again.
pub fn grow_streams(q: &mut Connection, dir: Dir) {
    let offered = q.max_concurrent_streams(dir);
    let open = q.streams().remote_open_streams(dir);
    if offered >= MAX_STREAMS || open * 2 < offered {
        return;
    }
    let mut want = offered.max(1);
    while want < MAX_STREAMS && open * 2 >= want {
        want *= 2;
    }
    let want = want.min(MAX_STREAMS);
    q.set_max_concurrent_streams(dir, VarInt::from_u64(want).unwrap_or(VarInt::MAX));
}

/// A window no packet count can reach, and above u32::MAX so quinn also stops pacing.
const UNBOUNDED: u64 = u64::MAX / 4;

struct Factory {
    inner: Arc<CubicConfig>,
    closing: Closing,
}

impl ControllerFactory for Factory {
    fn build(self: Arc<Self>, now: Instant, current_mtu: u16) -> Box<dyn Controller> {
        Box::new(CloseAware {
            inner: self.inner.clone().build(now, current_mtu),
            closing: self.closing.clone(),
        })
    }
}

/// quinn's Cubic, whose window is unbounded once the connection is closing.
struct CloseAware {
    inner: Box<dyn Controller>,
    closing: Closing,
}

impl Controller for CloseAware {
    fn on_sent(&mut self, now: Instant, bytes: u64, last_packet_number: u64) {
        self.inner.on_sent(now, bytes, last_packet_number)
    }
    fn on_ack(
        &mut self,
        now: Instant,
        sent: Instant,
        bytes: u64,
        app_limited: bool,
        rtt: &RttEstimator,
    ) {
        self.inner.on_ack(now, sent, bytes, app_limited, rtt)
    }
    fn on_end_acks(
        &mut self,
        now: Instant,
        in_flight: u64,
        app_limited: bool,
        largest_packet_num_acked: Option<u64>,
    ) {
        self.inner
            .on_end_acks(now, in_flight, app_limited, largest_packet_num_acked)
    }
    fn on_congestion_event(
        &mut self,
        now: Instant,
        sent: Instant,
        is_persistent_congestion: bool,
        lost_bytes: u64,
    ) {
        self.inner
            .on_congestion_event(now, sent, is_persistent_congestion, lost_bytes)
    }
    fn on_mtu_update(&mut self, new_mtu: u16) {
        self.inner.on_mtu_update(new_mtu)
    }
    fn window(&self) -> u64 {
        if self.closing.is_set() {
            UNBOUNDED
        } else {
            self.inner.window()
        }
    }
    fn metrics(&self) -> ControllerMetrics {
        self.inner.metrics()
    }
    fn clone_box(&self) -> Box<dyn Controller> {
        Box::new(CloseAware {
            inner: self.inner.clone_box(),
            closing: self.closing.clone(),
        })
    }
    fn initial_window(&self) -> u64 {
        self.inner.initial_window()
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_is_cubic_until_closing() {
        let closing = Closing::default();
        let f = Arc::new(Factory {
            inner: Arc::new(CubicConfig::default()),
            closing: closing.clone(),
        });
        let c = f.build(Instant::now(), 1200);
        let cubic = Arc::new(CubicConfig::default()).build(Instant::now(), 1200);
        assert_eq!(c.window(), cubic.window());
        let copy = c.clone_box();
        closing.set();
        assert_eq!(c.window(), UNBOUNDED);
        assert_eq!(
            copy.window(),
            UNBOUNDED,
            "a path's copy follows the same flag"
        );
    }
}
