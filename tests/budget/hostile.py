"""A hostile QUIC client for the per-connection memory budget (issue 14, deliverable 3).

    hostile.py HOST PORT ALPN SCENARIO

It completes a real handshake with aioquic, then writes its own 1-RTT packets (aioquic's
keys, packet numbers taken from aioquic's counter so the two never collide) carrying the
frames a scenario needs, and has the server acknowledge every one of them before it goes
on: after each burst it sends an aioquic PING, waits for that PING's acknowledgement, and
resends what the server's ACK frames did not cover. So when it prints `done` the server has
processed every frame below, and the peak it holds can be measured.

Scenarios:
  hello    one stream, five bytes: a connection's ordinary cost (and the warm-up).
  streams  opens every stream the server allows (bidi and uni, following MAX_STREAMS if the
           server raises it) and fills them, round robin, up to the flow-control limits
           (the smaller of each stream's window and its share of the connection's window),
           each frame padded so that its packet is 2.5 times its data (see below).
  gaps     opens every stream it may, then sends each stream 1-byte STREAM frames, one per
           datagram, at offsets spread over the stream's share of the connection window in
           descending order (offset 0 never sent, so nothing is readable), as many per stream
           as quinn-proto keeps as separate chunks without closing the connection (2,048).
           Each datagram coalesces a junk Handshake packet in front of the 1-RTT packet,
           filling the datagram to 1,472 bytes: undecryptable (the server has dropped its
           Handshake keys), but it shares the datagram's buffer with the 1-RTT packet.
  junk     floods PING, PADDING-only packets, duplicates of STREAM data already received,
           packets skipping packet numbers (ACK ranges for the server to track) and repeats
           of one packet (duplicate packet numbers).

Each scenario ends with CONNECTION_CLOSE. Every wait is bounded (DEADLINE); exit 0 and a
`done ...` line on success, non-zero with a reason otherwise.
"""

import os
import select
import socket
import ssl
import sys
import time

from aioquic.quic import events
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.packet import pull_ack_frame
from aioquic.tls import Epoch

DEADLINE = 120.0  # seconds for the whole run
BURST = 256  # datagrams between acknowledged PINGs
MAX_DATAGRAM = 1472
MAX_CHUNKS = 2048  # quinn-proto 0.11.19 assembler: COMPACT_THRESHOLD (2 * MAX_CHUNKS)


def varint(n):
    if n < 1 << 6:
        return bytes([n])
    if n < 1 << 14:
        return (n | 0x4000).to_bytes(2, "big")
    if n < 1 << 30:
        return (n | 0x80000000).to_bytes(4, "big")
    return (n | 0xC000000000000000).to_bytes(8, "big")


def stream_frame(sid, offset, data, fin=False):
    return (
        bytes([0x08 | 0x04 | 0x02 | (1 if fin else 0)])
        + varint(sid)
        + varint(offset)
        + varint(len(data))
        + data
    )


class Conn(QuicConnection):
    """aioquic's client, recording the ranges the server's 1-RTT ACK frames cover."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.acked = []  # (start, stop) ranges, newest last

    def _handle_ack_frame(self, context, frame_type, buf):
        if context.epoch == Epoch.ONE_RTT:
            pos = buf.tell()
            ranges, _ = pull_ack_frame(buf)
            buf.seek(pos)
            self.acked.extend((r.start, r.stop) for r in ranges)
        super()._handle_ack_frame(context, frame_type, buf)


class Peer:
    def __init__(self, host, port, alpn):
        self.start = time.monotonic()
        self.addr = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.connect(self.addr)
        self.sock.setblocking(False)
        cfg = QuicConfiguration(is_client=True, alpn_protocols=[alpn])
        cfg.verify_mode = ssl.CERT_NONE
        cfg.server_name = "localhost"
        self.q = Conn(configuration=cfg)
        self.unacked = {}  # packet number -> payload, for our own packets
        self.ping_uid = 0
        self.pings_acked = set()
        self.closed = None
        self.sent = 0

    def check_deadline(self, what):
        if time.monotonic() - self.start > DEADLINE:
            fail(f"deadline passed while {what}")

    def flush(self):
        for data, _ in self.q.datagrams_to_send(now=time.monotonic()):
            self.sock.send(data)

    def pump(self, wait):
        """Sends aioquic's datagrams, waits up to `wait` s for input, feeds it all."""
        self.flush()
        timer = self.q.get_timer()
        now = time.monotonic()
        if timer is not None:
            wait = max(0.0, min(wait, timer - now))
        r, _, _ = select.select([self.sock], [], [], wait)
        if r:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                self.q.receive_datagram(data, self.addr, now=time.monotonic())
        timer = self.q.get_timer()
        if timer is not None and timer <= time.monotonic():
            self.q.handle_timer(now=time.monotonic())
        ev = self.q.next_event()
        while ev is not None:
            if isinstance(ev, events.PingAcknowledged):
                self.pings_acked.add(ev.uid)
            elif isinstance(ev, events.ConnectionTerminated):
                self.closed = ev
            ev = self.q.next_event()
        self.flush()
        if self.closed is not None:
            fail(
                f"connection closed by the server: error 0x{self.closed.error_code:x} "
                f"{self.closed.reason_phrase!r}"
            )

    def handshake(self):
        self.q.connect(self.addr, now=time.monotonic())
        while self.q._cryptos[Epoch.ONE_RTT].send.aead is None or not self.q._handshake_complete:
            self.check_deadline("handshaking")
            self.pump(0.05)
        # Settle: the server's HANDSHAKE_DONE and first ACKs.
        self.sync()

    # -- our own 1-RTT packets --------------------------------------------------------------

    def packet(self, payload, pn=None):
        """A protected 1-RTT packet carrying `payload`; a fresh packet number unless given."""
        if pn is None:
            pn = self.q._packet_number
            self.q._packet_number += 1
        crypto = self.q._cryptos[Epoch.ONE_RTT].send
        header = bytes([0x40 | (crypto.key_phase << 2) | 0x03]) + self.q._peer_cid.cid
        header += (pn & 0xFFFFFFFF).to_bytes(4, "big")
        # Header protection samples 16 bytes from 4 past the packet number's start.
        if len(payload) < 4:
            payload = payload + bytes(4 - len(payload))
        return pn, crypto.encrypt_packet(header, payload, pn)

    def send(self, payload, prefix=b"", track=True):
        pn, pkt = self.packet(payload)
        if track:
            self.unacked[pn] = (payload, prefix)
        self.sock.send(prefix + pkt)
        self.sent += 1
        if len(self.unacked) >= BURST:
            self.sync()
        return pn

    def sync(self):
        """Returns once the server has acknowledged every packet we wrote (resending lost
        ones), and a PING sent after them."""
        while True:
            self.ping_uid += 1
            uid = self.ping_uid
            self.q.send_ping(uid)
            while uid not in self.pings_acked:
                self.check_deadline("waiting for an acknowledgement")
                self.pump(0.05)
            self.settle_acks()
            if not self.unacked:
                return
            lost = list(self.unacked.items())
            self.unacked.clear()
            for _, (payload, prefix) in lost:
                pn, pkt = self.packet(payload)
                self.unacked[pn] = (payload, prefix)
                self.sock.send(prefix + pkt)

    def settle_acks(self):
        ranges = self.q.acked
        self.q.acked = []
        if not ranges or not self.unacked:
            return
        for pn in list(self.unacked):
            for start, stop in ranges:
                if start <= pn < stop:
                    del self.unacked[pn]
                    break

    def limits(self):
        q = self.q
        return {
            "bidi": q._remote_max_streams_bidi,
            "uni": q._remote_max_streams_uni,
            "data": q._remote_max_data,
            "bidi_window": q._remote_max_stream_data_bidi_remote,
            "uni_window": q._remote_max_stream_data_uni,
        }

    def open_all_streams(self):
        """Opens every stream the server allows, following its MAX_STREAMS raises, each with
        one byte at offset 1 (offset 0 missing: nothing readable); returns (id, kind)."""
        opened = {"bidi": 0, "uni": 0}
        sids = []
        while True:
            lim = self.limits()
            grew = False
            for kind, base in (("bidi", 0), ("uni", 2)):
                while opened[kind] < lim[kind]:
                    sid = opened[kind] * 4 + base
                    opened[kind] += 1
                    sids.append((sid, kind))
                    self.send(stream_frame(sid, 1, b"o"))
                    grew = True
            self.sync()
            if not grew:
                return sids

    def close(self):
        self.q.close(error_code=0, reason_phrase="budget done")
        self.flush()


def fail(msg):
    print(f"hostile: {msg}", flush=True)
    sys.exit(1)


def share(peer, sids, kind):
    lim = peer.limits()
    window = lim["bidi_window"] if kind == "bidi" else lim["uni_window"]
    return min(window, lim["data"] // len(sids))


def scenario_streams(peer):
    sids = peer.open_all_streams()
    # Each datagram carries one frame of `chunk` bytes and PADDING up to MAX_DATAGRAM: quinn
    # counts the packet's payload as the frame's allocation and compacts a stream only once
    # that exceeds 2.5 times its data, so this is the most it keeps per byte of window.
    payload = MAX_DATAGRAM - (1 + len(peer.q._peer_cid.cid) + 4 + 16)
    chunk = payload * 2 // 5 - 16
    offsets = {sid: 0 for sid, _ in sids}
    quota = {sid: share(peer, sids, kind) for sid, kind in sids}
    total = 0
    busy = True
    while busy:
        busy = False
        for sid, _ in sids:
            left = quota[sid] - offsets[sid]
            if left <= 0:
                continue
            n = min(chunk, left)
            frame = stream_frame(sid, offsets[sid], os.urandom(n))
            peer.send(frame + bytes(payload - len(frame)))
            offsets[sid] += n
            total += n
            busy = True
        peer.check_deadline("filling streams")
    peer.sync()
    lim = peer.limits()
    print(
        f"done streams: {lim['bidi']}+{lim['uni']} streams, {total} bytes in "
        f"{chunk}-byte frames padded to {MAX_DATAGRAM}-byte datagrams "
        f"(connection window {lim['data']}), {peer.sent} packets",
        flush=True,
    )


def junk_handshake_packet(peer, size):
    """A long-header Handshake packet to the server's connection ID, `size` bytes, that the
    server cannot decrypt (random body)."""
    dcid = peer.q._peer_cid.cid
    scid = peer.q.host_cid
    head = bytes([0xE0 | 0x03]) + (1).to_bytes(4, "big")
    head += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    body_len = size - len(head) - 2
    return head + (body_len | 0x4000).to_bytes(2, "big") + os.urandom(body_len)


def scenario_gaps(peer):
    sids = peer.open_all_streams()
    frames = 0
    # One 1-RTT packet: header 1 + CID + 4, payload, 16 tag.
    small = 1 + len(peer.q._peer_cid.cid) + 4 + 16 + 12
    junk = junk_handshake_packet(peer, MAX_DATAGRAM - small)
    for sid, kind in sids:
        span = share(peer, sids, kind)
        per = min(MAX_CHUNKS - 1, span // 2)  # the opening byte at offset 1 is one chunk
        step = max(2, (span - 2) // per)
        # Descending: each frame lands before everything already buffered.
        for k in range(per, 0, -1):
            off = 1 + k * step
            if off >= span:
                continue
            peer.send(stream_frame(sid, off, b"g"), prefix=junk)
            frames += 1
        peer.check_deadline("sending gapped frames")
    peer.sync()
    lim = peer.limits()
    print(
        f"done gaps: {lim['bidi']}+{lim['uni']} streams, {frames} gapped 1-byte frames, "
        f"{peer.sent} packets",
        flush=True,
    )


def scenario_junk(peer):
    # Some stream data first, to duplicate.
    sid = 0
    data = os.urandom(1000)
    peer.send(stream_frame(sid, 0, data))
    peer.sync()
    rounds = 20000
    for i in range(rounds):
        kind = i % 5
        if kind == 0:
            peer.send(b"\x01")  # PING
        elif kind == 1:
            peer.send(b"\x00" * 1100, track=False)  # PADDING only: not ack-eliciting
        elif kind == 2:
            peer.send(stream_frame(sid, 0, data))  # a duplicate of received data
        elif kind == 3:
            peer.q._packet_number += 3  # a packet-number gap: one more ACK range
            peer.send(b"\x01")
        else:
            pn, pkt = peer.packet(b"\x01")  # the same packet three times
            for _ in range(3):
                peer.sock.send(pkt)
            peer.sent += 3
        peer.check_deadline("sending junk")
    peer.sync()
    print(f"done junk: {peer.sent} packets", flush=True)


def scenario_hello(peer):
    peer.send(stream_frame(0, 0, b"hello"))
    peer.sync()
    print("done hello", flush=True)


def main():
    if len(sys.argv) != 5:
        fail("usage: hostile.py HOST PORT ALPN hello|streams|gaps|junk")
    host, port, alpn, scenario = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    run = {"hello": scenario_hello, "streams": scenario_streams, "gaps": scenario_gaps, "junk": scenario_junk}.get(scenario)
    if run is None:
        fail(f"unknown scenario {scenario}")
    peer = Peer(host, port, alpn)
    peer.handshake()
    print(f"handshake done; limits {peer.limits()}", flush=True)
    run(peer)
    peer.close()


if __name__ == "__main__":
    main()
