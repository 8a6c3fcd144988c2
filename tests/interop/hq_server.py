"""An hq-interop server on aioquic, answering like c-demos/quic-server.c.

    hq_server.py --cert FILE --key FILE [--host 127.0.0.1] [--port 0] [--retry] [--lifetime S]

Prints "listening on PORT" once ready. On each client bidirectional stream it reads
"GET /path\\r\\n" (a bare "\\n" or FIN also ends the line) and answers: for "/N" (N decimal),
N bytes with byte i = i % 251; otherwise a short text line; then FIN. "PUT /N\\r\\n" is an
upload instead: N bytes of that pattern follow, checked up to the client's FIN, not answered
("stream S: PUT /N: N bytes (pattern), FIN" or "stream S: PUT /N: FAILED: why"). Logs one
line per connection and per stream to stderr. With --log-paths each answer's line names the
client's address and the connection ID it sends to, and each change of the client's address
that aioquic follows is logged ("conn C: peer address A -> B", then "conn C: peer address B
validated" once the new path is). Exits by itself after --lifetime seconds (default 120) and
on SIGTERM/SIGINT.
"""

import argparse
import asyncio
import signal
import sys

from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.logger import QuicLogger, QuicLoggerTrace
from aioquic.quic.events import ConnectionTerminated, DatagramFrameReceived, HandshakeCompleted, StreamDataReceived

PERIOD = 251
MAX_N = 1 << 32


def pattern(offset: int, length: int) -> bytes:
    """length bytes of the i % 251 pattern, starting at byte offset."""
    start = offset % PERIOD
    return (bytes(range(PERIOD)) * ((start + length) // PERIOD + 1))[start : start + length]


def body_for(path: str) -> bytes:
    if path[1:].isdigit() and int(path[1:]) <= MAX_N:
        n = int(path[1:])
        return (bytes(range(PERIOD)) * (n // PERIOD + 1))[:n]
    return f"aioquic hq_server: you asked for {path}\n".encode()


class HqServer(QuicConnectionProtocol):
    seq = 0
    log_paths = False
    echo_datagrams = False
    zero_rtt = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        HqServer.seq += 1
        self.id = HqServer.seq
        self.requests = {}
        self.answered = set()
        self.puts = {}  # stream -> [bytes announced, bytes received, outcome logged]

    def path_note(self) -> str:
        """With --log-paths: the client's address and the connection ID it sends to."""
        if not HqServer.log_paths:
            return ""
        host, port = self._quic._network_paths[0].addr[:2]
        return f" (peer {host}:{port}, cid {self._quic.host_cid.hex()})"

    def log(self, msg: str) -> None:
        print(f"conn {self.id}: {msg}", file=sys.stderr, flush=True)

    def datagram_received(self, data, addr) -> None:
        """With --log-paths, also logs each change of the client's address as aioquic follows
        it ("peer address A -> B"), and its validation ("peer address B validated")."""
        if not HqServer.log_paths:
            super().datagram_received(data, addr)
            return
        before = self.active_path()
        super().datagram_received(data, addr)
        after = self.active_path()
        if before is None or after is None:  # the handshake's first datagram, or closed
            return
        if after[0] != before[0]:
            self.log(f"peer address {before[0]} -> {after[0]}")
        if after[1] and (after[0] != before[0] or not before[1]):
            self.log(f"peer address {after[0]} validated")

    def active_path(self):
        """The address the connection sends to ("host:port") and whether it is validated."""
        paths = self._quic._network_paths
        if not paths:
            return None
        host, port = paths[0].addr[:2]
        return (f"{host}:{port}", paths[0].is_validated)

    def quic_event_received(self, event) -> None:
        if isinstance(event, DatagramFrameReceived) and HqServer.echo_datagrams:
            self.dgrams = getattr(self, "dgrams", 0) + 1
            self._quic.send_datagram_frame(event.data)
            self.transmit()
        elif isinstance(event, HandshakeCompleted):
            extra = ""
            if HqServer.zero_rtt:
                extra = f", resumed {event.session_resumed}, early data accepted {event.early_data_accepted}"
            self.log(f"handshake done, ALPN {event.alpn_protocol}{extra}")
        elif isinstance(event, StreamDataReceived):
            sid = event.stream_id
            if sid in self.puts:
                self.upload(sid, event.data, event.end_stream)
                return
            if sid in self.answered:
                return
            buf = self.requests.get(sid, b"") + event.data
            self.requests[sid] = buf
            if b"\n" not in buf and not event.end_stream and len(buf) < 4096:
                return
            self.answered.add(sid)
            line = buf.split(b"\n", 1)[0].rstrip(b"\r").decode("latin-1")
            if line.startswith("PUT /") and line[5:].isdigit():
                self.puts[sid] = [int(line[5:]), 0, False]
                self.upload(sid, buf.split(b"\n", 1)[1] if b"\n" in buf else b"", event.end_stream)
            elif not line.startswith("GET /"):
                self.log(f"stream {sid}: not an hq-interop request ({buf[:12].hex(' ')})")
                self._quic.send_stream_data(sid, b"", end_stream=True)
            else:
                body = body_for(line[4:])
                self._quic.send_stream_data(sid, body, end_stream=True)
                self.log(f"stream {sid}: {line} -> {len(body)} bytes{self.path_note()}")
            self.transmit()
        elif isinstance(event, ConnectionTerminated):
            for sid, (n, got, logged) in self.puts.items():
                if not logged:
                    self.log(f"stream {sid}: PUT /{n}: FAILED: the connection closed after {got} bytes")
            if HqServer.echo_datagrams:
                self.log(f"{getattr(self, 'dgrams', 0)} datagrams echoed")
            self.log(f"closed (code {event.error_code} {event.reason_phrase!r})")

    def upload(self, sid: int, data: bytes, fin: bool) -> None:
        put = self.puts[sid]
        n, got, logged = put
        if logged:
            return
        why = None
        if got + len(data) > n:
            why = f"more than the {n} bytes announced"
        elif data != pattern(got, len(data)):
            why = f"a byte in {got}..{got + len(data)} differs from the pattern"
        elif fin and got + len(data) != n:
            why = f"FIN after {got + len(data)} bytes"
        put[1] = got + len(data)
        if why:
            put[2] = True
            self.log(f"stream {sid}: PUT /{n}: FAILED: {why}")
        elif fin:
            put[2] = True
            self.log(f"stream {sid}: PUT /{n}: {n} bytes (pattern), FIN")


class KeyUpdateTrace(QuicLoggerTrace):
    """Prints "key updated: KIND (TRIGGER)" for each 1-RTT key phase change aioquic makes."""

    def log_event(self, *, category: str, event: str, data: dict) -> None:
        if event == "key_updated" and data.get("trigger") in ("remote_update", "local_update"):
            print(f"key updated: {data.get('key_type')} ({data['trigger']})", file=sys.stderr, flush=True)


class KeyUpdateLogger(QuicLogger):
    def start_trace(self, is_client: bool, odcid: bytes) -> QuicLoggerTrace:
        return KeyUpdateTrace(is_client=is_client, odcid=odcid)

    def end_trace(self, trace: QuicLoggerTrace) -> None:
        pass


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--retry", action="store_true", help="validate addresses with Retry")
    ap.add_argument("--lifetime", type=float, default=120, help="exit after this many seconds")
    ap.add_argument("--log-key-updates", action="store_true", help="log each key phase change")
    ap.add_argument(
        "--log-paths", action="store_true", help="log the client's path with each answer, and each change of it"
    )
    ap.add_argument("--datagram-echo", action="store_true", help="take RFC 9221 datagrams, send each back")
    ap.add_argument("--zero-rtt", action="store_true", help="issue session tickets and accept 0-RTT")
    args = ap.parse_args()
    HqServer.zero_rtt = args.zero_rtt
    HqServer.log_paths = args.log_paths
    HqServer.echo_datagrams = args.datagram_echo

    cfg = QuicConfiguration(is_client=False, alpn_protocols=["hq-interop"])
    if args.log_key_updates:
        cfg.quic_logger = KeyUpdateLogger()
    if args.datagram_echo:
        cfg.max_datagram_frame_size = 65536
    cfg.load_cert_chain(args.cert, args.key)
    cfg.max_data = 64 << 20
    cfg.max_stream_data = 16 << 20
    tickets = {}  # single use: a ticket is taken when it resumes a session
    store = {}
    if args.zero_rtt:
        store = dict(session_ticket_handler=lambda t: tickets.__setitem__(t.ticket, t), session_ticket_fetcher=lambda k: tickets.pop(k, None))
    server = await serve(args.host, args.port, configuration=cfg, create_protocol=HqServer, retry=args.retry, **store)
    port = server._transport.get_extra_info("sockname")[1]
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.lifetime)
    except (asyncio.TimeoutError, TimeoutError):
        print("hq_server: lifetime over, exiting", file=sys.stderr)
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
