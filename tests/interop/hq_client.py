"""An hq-interop client on aioquic: fetches each path on its own stream, all at once.

    hq_client.py [--ca FILE] [--name NAME] [--repeat N] [--parallel P] [--timeout S] [--zero-rtt] host port path...

Each request is "GET /path\\r\\n" plus FIN on a new bidirectional stream; the body is read
until FIN. A path "/N" (N decimal) must answer exactly N bytes, byte i being i % 251 (the
pattern of c-demos/quic-server.c). Prints one summary line; exits 0 only if every request
succeeded within the time limit.
"""

import argparse
import asyncio
import sys
import time

from aioquic import tls
from aioquic.asyncio import QuicConnectionProtocol, connect
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, DatagramFrameReceived, StreamDataReceived, StreamReset

from hq_server import KeyUpdateLogger

PERIOD = 251


def pattern(offset: int, length: int) -> bytes:
    """length bytes of the i % 251 pattern, starting at byte offset."""
    block = bytes(range(PERIOD))
    start = offset % PERIOD
    reps = (start + length) // PERIOD + 1
    return (block * reps)[start : start + length]


class Fetch:
    def __init__(self, path: str):
        self.path = path
        self.expect = int(path[1:]) if path[1:].isdigit() else None
        self.got = 0
        self.error = None
        self.done = asyncio.get_running_loop().create_future()

    def data(self, chunk: bytes, fin: bool) -> None:
        if self.done.done():
            return
        if self.expect is not None:
            if self.got + len(chunk) > self.expect:
                self.fail(f"more than the {self.expect} bytes expected")
                return
            if chunk != pattern(self.got, len(chunk)):
                bad = next(i for i, (a, b) in enumerate(zip(chunk, pattern(self.got, len(chunk)))) if a != b)
                self.fail(f"byte {self.got + bad} differs from the pattern")
                return
        self.got += len(chunk)
        if fin:
            if self.expect is not None and self.got != self.expect:
                self.fail(f"{self.got} bytes, expected {self.expect}")
            else:
                self.done.set_result(True)

    def fail(self, why: str) -> None:
        if not self.done.done():
            self.error = why
            self.done.set_result(False)


class HqClient(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fetches = {}
        self.echoes = {}  # datagram payload -> times it came back
        self.echoed = asyncio.Event()
        self.want_echoes = 0

    def fetch(self, path: str) -> Fetch:
        sid = self._quic.get_next_available_stream_id()
        f = Fetch(path)
        self.fetches[sid] = f
        self._quic.send_stream_data(sid, f"GET {path}\r\n".encode(), end_stream=True)
        self.transmit()
        return f

    def quic_event_received(self, event) -> None:
        if isinstance(event, DatagramFrameReceived):
            self.echoes[event.data] = self.echoes.get(event.data, 0) + 1
            if len(self.echoes) >= self.want_echoes:
                self.echoed.set()
        elif isinstance(event, StreamDataReceived) and event.stream_id in self.fetches:
            self.fetches[event.stream_id].data(event.data, event.end_stream)
        elif isinstance(event, StreamReset) and event.stream_id in self.fetches:
            self.fetches[event.stream_id].fail(f"stream reset by the server (code {event.error_code})")
        elif isinstance(event, ConnectionTerminated):
            for f in self.fetches.values():
                f.fail(f"connection closed: code {event.error_code} {event.reason_phrase!r}")


async def zero_rtt(args) -> int:
    """The interop runner's zerortt case: the paths once over a first connection, whose
    session ticket is kept, then again over a second one that resumes it and sends every
    request in 0-RTT, before the handshake completes."""
    tickets = []
    got_ticket = asyncio.Event()

    def keep(ticket):
        tickets.append(ticket)
        got_ticket.set()

    def config(ticket=None):
        cfg = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name=args.name)
        cfg.load_verify_locations(args.ca)
        cfg.session_ticket = ticket
        return cfg

    async def fetch_all(client):
        fetches = [client.fetch(p) for p in args.paths]
        await asyncio.wait_for(asyncio.gather(*(f.done for f in fetches)), args.timeout)
        return fetches

    async with connect(args.host, args.port, configuration=config(), create_protocol=HqClient,
                       session_ticket_handler=keep) as client:
        first = await fetch_all(client)
        try:
            await asyncio.wait_for(got_ticket.wait(), args.timeout)
        except (asyncio.TimeoutError, TimeoutError):
            pass
        client.close()
        await client.wait_closed()
    if not tickets or tickets[-1].max_early_data_size is None:
        print("hq_client: zerortt: the server sent no ticket allowing early data")
        return 1
    async with connect(args.host, args.port, configuration=config(tickets[-1]), create_protocol=HqClient,
                       wait_connected=False) as client:
        early = client._quic._cryptos[tls.Epoch.ZERO_RTT].send.is_valid()
        second = await fetch_all(client)
        tls_ctx = client._quic.tls
        accepted, resumed = tls_ctx.early_data_accepted, tls_ctx.session_resumed
        client.close()
        await client.wait_closed()
    bad = [f for f in first + second if f.error]
    for f in bad:
        print(f"hq_client: {f.path}: {f.error}", file=sys.stderr)
    print(
        f"hq_client: zerortt: {len(first)} + {len(second)} requests ok; second connection: 0-RTT keys {early}, "
        f"resumed {resumed}, early data accepted {accepted}"
    )
    return 0 if not bad and early and accepted and resumed else 1


async def run(args) -> int:
    if args.zero_rtt:
        return await zero_rtt(args)
    cfg = QuicConfiguration(is_client=True, alpn_protocols=["hq-interop"], server_name=args.name)
    cfg.load_verify_locations(args.ca)
    if args.key_update:
        cfg.quic_logger = KeyUpdateLogger()
    if args.datagrams:
        cfg.max_datagram_frame_size = 65536
    # Large bodies: let the server send without waiting for window updates too often.
    cfg.max_data = 64 << 20
    cfg.max_stream_data = 16 << 20
    paths = args.paths * args.repeat
    t0 = time.monotonic()
    async with connect(args.host, args.port, configuration=cfg, create_protocol=HqClient) as client:
        t_hs = time.monotonic() - t0
        if args.datagrams:
            # Datagram i: 4-byte index then (i % 1000) + 1 bytes of value i % 251; every one
            # must come back from the echoing server, unaltered.
            sent = [i.to_bytes(4, "big") + bytes([i % 251]) * (i % 1000 + 1) for i in range(args.datagrams)]
            client.want_echoes = len(sent)
            for d in sent:
                client._quic.send_datagram_frame(d)
            client.transmit()
            try:
                await asyncio.wait_for(client.echoed.wait(), args.timeout)
            except (asyncio.TimeoutError, TimeoutError):
                pass
            missing = [d for d in sent if d not in client.echoes]
            extra = [d for d in client.echoes if d not in set(sent)]
            if missing or extra:
                print(f"hq_client: datagrams: {len(missing)} of {len(sent)} did not come back, {len(extra)} unknown")
                return 1
            print(f"hq_client: {len(sent)} datagrams sent, all came back intact")
        if args.key_update:
            # The next 1-RTT packet goes out under new keys; the server must follow.
            client._quic.request_key_update()
            client.transmit()
        alpn = client._quic.tls.alpn_negotiated
        if args.parallel:
            # At most `parallel` streams open at once: a new one as soon as one finishes.
            sem = asyncio.Semaphore(args.parallel)
            fetches = []

            async def one(path):
                async with sem:
                    f = client.fetch(path)
                    fetches.append(f)
                    await f.done

            await asyncio.gather(*(one(p) for p in paths))
        else:
            fetches = [client.fetch(p) for p in paths]
            await asyncio.gather(*(f.done for f in fetches))
        t = time.monotonic() - t0
        bad = [f for f in fetches if f.error]
        for f in bad:
            print(f"hq_client: {f.path}: {f.error}", file=sys.stderr)
        total = sum(f.got for f in fetches)
        client.close()
        await client.wait_closed()
    if bad:
        print(f"hq_client: {len(bad)} of {len(fetches)} requests failed")
        return 1
    print(
        f"hq_client: {len(fetches)} requests ok, {args.parallel or len(fetches)} streams at once, {total} bytes in {t:.3f} s "
        f"(handshake {t_hs:.3f} s), {total / t / 1e6:.2f} MB/s, ALPN {alpn}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ca", default="build/certs/ca.pem")
    ap.add_argument("--name", default="localhost", help="server name to verify and send as SNI")
    ap.add_argument("--repeat", type=int, default=1, help="fetch every path this many times")
    ap.add_argument("--parallel", type=int, default=0, help="at most this many streams at once (0: all)")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--key-update", action="store_true", help="update the keys once connected")
    ap.add_argument("--datagrams", type=int, default=0, help="send this many datagrams, expect them echoed")
    ap.add_argument("--zero-rtt", action="store_true", help="fetch, then fetch again in 0-RTT on a resumed connection")
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    try:
        return asyncio.run(asyncio.wait_for(run(args), args.timeout))
    except (asyncio.TimeoutError, TimeoutError):
        print(f"hq_client: time limit ({args.timeout:.0f} s) reached", file=sys.stderr)
        return 1
    except ConnectionError as e:
        print(f"hq_client: connection failed: {e!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
