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
//! Limits are what a hostile peer may make a connection hold (docs/ARCHITECTURE.md, "Bounds
//! on what peers can make a server hold", has the budget and its formula): `MAX_STREAMS` of
//! each direction open at once (OpenSSL's own `DEFAULT_INIT_CONN_MAX_STREAMS`; quinn raises
//! the limit again as streams end), because quinn-proto lets each receiving stream hold up to
//! 2,048 separately buffered chunks (about 270 KiB of bookkeeping and pinned packets when a
//! peer sends 1-byte frames with gaps); and a `RECEIVE_WINDOW` of 16 MiB for the connection's
//! stream data, which quinn may hold at up to 2.5 times its size (it tolerates buffers up to
//! 1.5 times the data before it compacts them).
//! Must not touch: streams' data, sockets, the SSL object model.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Instant;

use quinn_proto::congestion::{
    BbrConfig, Controller, ControllerFactory, ControllerMetrics, CubicConfig, NewRenoConfig,
};
use quinn_proto::{ConnectionId, QlogStream, RttEstimator, TransportConfig, VarInt};

/// Streams of each direction the peer may have open at once.
pub(crate) const MAX_STREAMS: u32 = 100;
/// Connection-level receive window: stream data of all streams received and not yet read.
pub(crate) const RECEIVE_WINDOW: u32 = 16 << 20;
/// One stream's receive window (half the connection's, so one stream can use it well).
pub(crate) const STREAM_RECEIVE_WINDOW: u32 = 8 << 20;
/// What the application may have written and not yet had acknowledged, across its streams.
pub(crate) const SEND_WINDOW: u64 = 16 << 20;

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

/// The congestion controllers a context can choose (OSSLQUIC_CTX_set_congestion_control):
/// quinn-proto's three.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Congestion {
    #[default]
    Cubic,
    NewReno,
    Bbr,
}

impl Congestion {
    /// By name, as the C API takes it ("cubic", "newreno", "bbr"; any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "cubic" => Some(Self::Cubic),
            "newreno" | "reno" => Some(Self::NewReno),
            "bbr" => Some(Self::Bbr),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Cubic => "cubic",
            Self::NewReno => "newreno",
            Self::Bbr => "bbr",
        }
    }

    fn factory(self) -> Arc<dyn ControllerFactory + Send + Sync> {
        match self {
            Self::Cubic => Arc::new(CubicConfig::default()),
            Self::NewReno => Arc::new(NewRenoConfig::default()),
            Self::Bbr => Arc::new(BbrConfig::default()),
        }
    }
}

/// What a context asks of its QUIC connections' transport (the engine applies it to the
/// connections it makes or accepts from then on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub congestion: Congestion,
    /// RFC 9221 datagrams: at most this many received and unread (the oldest are dropped
    /// beyond); 0: datagrams off (the transport parameter is not sent, and the peer's
    /// DATAGRAM frames are a protocol violation).
    pub datagram_queue: usize,
}

/// The most a peer's datagrams may occupy in quinn before the connection takes them into
/// its own queue (each arrival is taken at once): one burst of a datagram-heavy flight.
const DATAGRAM_RECEIVE_BUFFER: usize = 1 << 20;

/// A qlog trace for the connection whose first destination ID is `odcid`, when `QLOGDIR`
/// names a directory (OpenSSL's variable): `QLOGDIR/<odcid in hex>_<client|server>.sqlog`,
/// JSON-SEQ as qvis reads it. None when it is unset or the file cannot be made.
pub fn qlog(odcid: &ConnectionId, server: bool) -> Option<QlogStream> {
    use std::fmt::Write;
    let dir = std::env::var_os("QLOGDIR")?;
    let mut name = String::with_capacity(2 * odcid.len() + 12);
    for b in odcid.iter() {
        let _ = write!(name, "{b:02x}");
    }
    let role = if server { "server" } else { "client" };
    name.push_str(if server {
        "_server.sqlog"
    } else {
        "_client.sqlog"
    });
    let file = std::fs::File::create(std::path::Path::new(&dir).join(name)).ok()?;
    let mut q = quinn_proto::QlogConfig::default();
    // Unbuffered: each event is in the file once written (a crash or a connection that
    // lingers does not hold back its tail).
    q.writer(Box::new(file))
        .title(Some(format!("osslquic {role}")));
    q.into_stream()
}

/// Transport settings for one connection: OpenSSL's 30 s idle timeout, windows large enough
/// for bulk transfer (quinn allocates receive buffers as data arrives, not for the window),
/// `MAX_STREAMS` of each direction, datagrams if the options accept them, their congestion
/// controller wrapped to follow `closing`, and the qlog trace if any.
pub fn config(closing: &Closing, opts: Options, qlog: Option<QlogStream>) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.max_idle_timeout(Some(VarInt::from_u32(30_000).into()));
    t.stream_receive_window(VarInt::from_u32(STREAM_RECEIVE_WINDOW));
    t.receive_window(VarInt::from_u32(RECEIVE_WINDOW));
    t.send_window(SEND_WINDOW);
    t.max_concurrent_bidi_streams(VarInt::from_u32(MAX_STREAMS));
    t.max_concurrent_uni_streams(VarInt::from_u32(MAX_STREAMS));
    t.datagram_receive_buffer_size((opts.datagram_queue > 0).then_some(DATAGRAM_RECEIVE_BUFFER));
    t.congestion_controller_factory(Arc::new(Factory {
        inner: opts.congestion.factory(),
        closing: closing.clone(),
    }));
    t.qlog_stream(qlog);
    t
}

/// A window no packet count can reach, and above u32::MAX so quinn also stops pacing.
const UNBOUNDED: u64 = u64::MAX / 4;

struct Factory {
    inner: Arc<dyn ControllerFactory + Send + Sync>,
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

/// quinn's controller, whose window is unbounded once the connection is closing.
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
