#!/usr/bin/env python3
"""Writes the hand-made seeds of each fuzz target into fuzz/corpus/<target>/seed-*.

Each seed is a program in the targets' input format (fuzz/src/lib.rs: an opcode byte, then
fixed-size little-endian arguments; byte strings are a length and the bytes). The QUIC and TLS
seeds drive a genuine handshake between the library's own client and server, so the fuzzer
starts from real packets (which the targets capture at run time) rather than from bytes copied
from anywhere. Run from anywhere: `python3 fuzz/gen-seeds.py`. Files the fuzzer added to the
corpora (named by their SHA-1) are left alone.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def b8(data):
    return bytes([len(data)]) + data


def b16(data):
    return u16(len(data)) + data


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# ---------------------------------------------------------------- quic_datagrams
TO_SERVER, TO_CLIENT = 1, 0


def q_pass(to, n=8):
    return bytes([0, to, n - 1])


def q_drop(to, n=1):
    return bytes([1, to, n - 1])


def q_exchange(rounds=6):
    return (q_pass(TO_SERVER) + q_pass(TO_CLIENT)) * rounds


def q_mutate(to, idx, src, edits):
    return bytes([2, to, idx, src, len(edits) - 1]) + b"".join(edits)


def e_flip(pos, bit):
    return bytes([0]) + u16(pos) + bytes([bit])


def e_set(pos, v):
    return bytes([1]) + u16(pos) + bytes([v])


def e_trunc(n):
    return bytes([2]) + u16(n)


def e_append(data):
    return bytes([3]) + u16(0) + b8(data)


def e_insert(pos, data):
    return bytes([4]) + u16(pos) + b8(data)


def e_varint(pos, v):
    return bytes([5]) + u16(pos) + u64(v)


def q_raw(to, src, data):
    return bytes([3, to, src]) + b16(data)


def q_initial(to, frames, src=0, version=0, dcid_sel=0, scid=b"\x01\x02\x03\x04",
              token=b"", pn=0, pad=True, key_cid=None, dcid=b""):
    out = bytes([4, to, src, version])
    if version == 3:
        out += struct.pack("<I", 0x1A2A3A4A)
    out += bytes([0]) if key_cid is None else bytes([1]) + b8(key_cid)
    out += bytes([dcid_sel]) + (b8(dcid) if dcid_sel == 2 else b"")
    out += b8(scid) + b8(token) + u32(pn) + bytes([1 if pad else 0]) + b16(frames)
    return out


def q_coalesce(to, a, b):
    return bytes([5, to, a, b])


def q_advance(ms):
    return bytes([6]) + u16(ms)


Q_TIMERS, Q_CONNECT, Q_ACCEPT = bytes([7]), bytes([8]), bytes([9])


def q_write(server, data, fin=False):
    return bytes([10, server]) + b16(data) + bytes([fin])


def q_read(server, n=4096):
    return bytes([11, server]) + u16(n)


def q_close(server, code=0):
    return bytes([12, server]) + u16(code)


def varint(v):
    if v < 0x40:
        return bytes([v])
    if v < 0x4000:
        return struct.pack(">H", 0x4000 | v)
    if v < 0x40000000:
        return struct.pack(">I", 0x80000000 | v)
    return struct.pack(">Q", 0xC000000000000000 | v)


def long_header(first, version, dcid, scid, rest=b""):
    return bytes([first]) + struct.pack(">I", version) + b8(dcid) + b8(scid) + rest


def quic_seeds():
    t = "quic_datagrams"
    hs = bytes([0, 1]) + q_exchange() + Q_ACCEPT + q_exchange(2)
    write(t, "handshake", hs)
    write(t, "handshake-retry", bytes([1, 1]) + q_exchange(8) + Q_ACCEPT + q_exchange(2))
    write(t, "established-streams-close",
          hs + q_write(0, b"hello server", True) + q_exchange(2) + q_read(1)
          + q_write(1, b"hello client" * 20, True) + q_exchange(2) + q_read(0)
          + q_close(0, 7) + q_exchange(2) + q_pass(TO_SERVER) + Q_TIMERS + q_exchange(1)
          + q_advance(5000) + Q_TIMERS)
    write(t, "closing-then-replays",
          hs + q_close(1, 1) + q_pass(TO_CLIENT)
          + q_mutate(TO_SERVER, 0, 0, [e_flip(40, 1)]) + q_coalesce(TO_SERVER, 2, 3)
          + q_mutate(TO_CLIENT, 1, 0, [e_set(0, 0x40)]) + Q_TIMERS + Q_TIMERS)
    # Mid-handshake: the first flights, then edited copies of them.
    mid = bytes([0, 1]) + q_pass(TO_SERVER) + q_pass(TO_CLIENT)
    write(t, "mid-handshake-edits",
          mid + q_mutate(TO_SERVER, 0, 0, [e_flip(0, 5)])
          + q_mutate(TO_SERVER, 0, 0, [e_set(5, 21)])  # DCID length 21
          + q_mutate(TO_SERVER, 0, 0, [e_trunc(30)])
          + q_mutate(TO_SERVER, 0, 3, [e_set(1, 0xFA)])  # unknown version
          + q_mutate(TO_CLIENT, 0, 0, [e_trunc(7)])
          + q_mutate(TO_CLIENT, 0, 0, [e_varint(26, 1 << 60)])
          + q_coalesce(TO_CLIENT, 0, 0) + q_exchange(4))
    write(t, "loss-and-timers",
          bytes([0, 1]) + q_drop(TO_SERVER) + Q_TIMERS + q_pass(TO_SERVER) + q_drop(TO_CLIENT, 8)
          + Q_TIMERS + q_exchange(3) + q_advance(30000) + Q_TIMERS + q_exchange(2))
    write(t, "migration-sources",
          hs + q_write(0, b"x" * 100) + q_mutate(TO_SERVER, 5, 2, [e_append(b"")])
          + q_mutate(TO_SERVER, 6, 4, [e_append(b"")]) + q_exchange(3))
    # No connection: raw datagrams to a server that has none, and to an idle client.
    cid8 = bytes(range(8))
    raws = [
        long_header(0xC0, 0x1A2A3A4A, cid8, cid8, b"\x00" * 1180),  # unknown version
        long_header(0xC0, 0x00000000, cid8, cid8, b"\x00" * 16),  # version negotiation
        long_header(0xC0, 1, bytes(21), cid8, b"\x00" * 1180),  # DCID over 20
        long_header(0xC0, 1, cid8, bytes(255), b""),  # SCID over 20, truncated
        long_header(0xC0, 1, cid8, cid8, varint((1 << 62) - 1) + b"\x00" * 1170),  # huge token
        long_header(0xD0, 1, cid8, cid8, b"\x00" * 1180),  # 0-RTT
        long_header(0xE0, 1, cid8, cid8, b"\x00" * 100),  # Handshake
        long_header(0xF0, 1, cid8, cid8, b"\x00" * 100),  # Retry
        bytes([0x40]) + cid8 + b"\x00" * 40,  # short header
        bytes([0xC0, 0, 0]),  # truncated long header
        b"",
    ]
    prog = bytes([0, 0])
    for i, r in enumerate(raws):
        prog += q_raw(TO_SERVER, i % 6, r)
    prog += Q_CONNECT + q_pass(TO_SERVER)
    for r in raws:
        prog += q_raw(TO_CLIENT, 0, r)
    write(t, "raw-no-connection", prog)
    # Forged Initials: frames the Initial space does not allow, huge varints, a bad
    # ClientHello, a server Initial aimed at the client.
    crypto_junk = bytes([0x06]) + varint(0) + varint(40) + b"\x01\x00\x00\x24" + b"\x03\x03" + bytes(34)
    frames = [
        bytes([0x01]),  # PING
        crypto_junk,
        bytes([0x08]) + varint(0) + b"data",  # STREAM in Initial
        bytes([0x02]) + varint((1 << 62) - 1) + varint(0) + varint(0) + varint(0),  # ACK
        bytes([0x1C]) + varint(0x0A) + varint(0) + varint(4) + b"oops",  # CONNECTION_CLOSE
        bytes([0x1E]),  # HANDSHAKE_DONE from a client
        bytes([0x07]) + varint(4) + b"tokn",  # NEW_TOKEN
        bytes([0x06]) + varint((1 << 62) - 1) + varint(1) + b"\x16",  # CRYPTO at huge offset
        bytes([0x18]) + varint(1) + varint(0) + bytes([21]) + bytes(21) + bytes(16),  # NEW_CID
        bytes([0x40]),  # unknown frame type
    ]
    prog = bytes([0, 0])
    for i, f in enumerate(frames):
        prog += q_initial(TO_SERVER, f, key_cid=bytes(range(8)), dcid_sel=2, dcid=bytes(range(8)),
                          pn=i)
    prog += Q_CONNECT + q_pass(TO_SERVER)
    for i, f in enumerate(frames):
        prog += q_initial(TO_SERVER, f, pn=100 + i) + q_initial(TO_CLIENT, f, dcid_sel=0, pn=i,
                                                               pad=False)
    prog += q_initial(TO_SERVER, crypto_junk, version=2) + q_initial(TO_SERVER, b"", version=3)
    prog += q_initial(TO_SERVER, b"\x01", pad=False, token=b"\x00" * 30)
    prog += q_exchange(3)
    write(t, "forged-initials", prog)


# ---------------------------------------------------------------- tls_stream
T_SERVER, T_CLIENT = 0, 1


def t_pass(to, n=0):
    return bytes([0, to]) + u16(n)


def t_exchange(rounds=4):
    return (t_pass(T_SERVER) + t_pass(T_CLIENT)) * rounds


def tls_seeds():
    t = "tls_stream"
    hs = t_exchange()
    write(t, "handshake", hs)
    write(t, "data-and-shutdown",
          hs + bytes([5, T_SERVER]) + b16(b"ping" * 50) + bytes([5, T_CLIENT]) + b16(b"pong")
          + t_exchange(2) + bytes([6, T_SERVER]) + u16(100) + bytes([7, T_CLIENT])
          + t_exchange(2) + bytes([7, T_SERVER]) + t_exchange(1) + bytes([8, T_CLIENT, 1]))
    # Edited first flights: record header, handshake type, lengths.
    for i, (pos, v, kind) in enumerate([(0, 0x17, 1), (1, 0x7F, 1), (3, 0xFF, 1), (5, 0x02, 1),
                                        (9, 0x00, 1), (20, 0xFF, 0), (60, 0, 2)]):
        write(t, "edit-client-hello-%d" % i,
              bytes([2, T_SERVER]) + u16(4096) + bytes([0]) + u16(pos) + bytes([v, kind])
              + t_exchange(2))
    write(t, "edit-server-flight",
          t_pass(T_SERVER) + bytes([2, T_CLIENT]) + u16(4096) + bytes([1]) + u16(100)
          + bytes([0x55, 0]) + u16(400) + bytes([0xAA, 0]) + t_exchange(2))
    write(t, "split-and-replay",
          t_pass(T_SERVER, 3) + t_pass(T_SERVER, 2) + t_pass(T_SERVER, 0) + t_pass(T_CLIENT, 10)
          + bytes([4, T_CLIENT]) + u16(0) + u16(50) + t_exchange(2)
          + bytes([4, T_SERVER]) + u16(0) + u16(4096) + t_exchange(1))
    # Raw records: alerts, change_cipher_spec, a TLS 1.2 ClientHello shell, oversized length,
    # SSLv2-style header, application data before the handshake.
    raws = [
        b"\x15\x03\x03\x00\x02\x02\x28",
        b"\x14\x03\x03\x00\x01\x01",
        b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03" + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00",
        b"\x16\x03\x03\xff\xff" + bytes(64),
        b"\x80\x2e\x01\x03\x01",
        b"\x17\x03\x03\x00\x10" + bytes(16),
        b"GET / HTTP/1.1\r\n\r\n",
    ]
    for i, r in enumerate(raws):
        write(t, "raw-to-server-%d" % i, bytes([1, T_SERVER]) + u16(0xFFFF) + bytes([3, T_SERVER])
              + b16(r) + t_exchange(1))
        write(t, "raw-to-client-%d" % i, t_pass(T_SERVER) + bytes([3, T_CLIENT]) + b16(r)
              + t_exchange(1))
    write(t, "late-junk", hs + bytes([3, T_CLIENT]) + b16(raws[5]) + bytes([6, T_CLIENT]) + u16(10)
          + bytes([9, T_SERVER]))


# ---------------------------------------------------------------- bio_calls
def b_ctrl(slot, pick, larg_sel=0, larg=0, null=1, pa=0, pb=0, raw=0):
    return bytes([6, slot, pick]) + u32(raw) + bytes([larg_sel]) + u64(larg) + bytes([null, pa]) + u32(pb)


def bio_seeds():
    t = "bio_calls"
    kinds = {"mem": 0, "dgram-mem": 1, "socket": 4, "s-bio": 6, "dgram-pair-unpaired": 7,
             "buffer": 8}
    for name, k in kinds.items():
        write(t, "new-" + name,
              bytes([0, 0]) + u16(1500) + bytes([k]) + bytes([4, 0]) + b16(b"hello\nworld")
              + bytes([5, 0]) + u16(64) + b"\x01" + bytes([13, 0, 0, 4]) + bytes([2, 0]))
    pair = bytes([0, 0]) + u16(4096) + bytes([2]) + u16(4096) + b"\x01"
    bpair = bytes([0, 2]) + u16(100) + bytes([3]) + u16(100) + b"\x00"
    write(t, "dgram-pair-io",
          pair + bytes([4, 0]) + b16(b"datagram") + bytes([5, 1]) + u16(2000) + b"\x00"
          + bytes([2, 0]) + bytes([4, 1]) + b16(b"to nobody") + bytes([5, 1]) + u16(10) + b"\x00")
    write(t, "bio-pair-io",
          bpair + bytes([4, 2]) + b16(b"x" * 150) + bytes([5, 3]) + u16(50) + b"\x00"
          + bytes([2, 3]) + bytes([4, 2]) + b16(b"y"))
    write(t, "mem-buf", bytes([0, 4]) + u16(0) + bytes([5]) + b8(b"line1\nline2") + b"\x00"
          + bytes([5, 4]) + u16(8) + b"\x01" + bytes([4, 4]) + b16(b"ro"))
    # Every ctrl command in the table, on a dgram pair end, with parg present.
    prog = pair
    for i in range(66):
        prog += b_ctrl(0, i, 3, 7, 1, 1, 2)
    write(t, "ctrl-all-dgram-pair", prog + b_ctrl(0, 255, raw=0x7FFFFFFF))
    prog = bytes([0, 0]) + u16(0) + bytes([0])
    for i in range(66):
        prog += b_ctrl(0, i, 1, 0, 1)
    write(t, "ctrl-all-mem", prog)
    prog = bytes([0, 0]) + u16(0) + bytes([4])
    for i in range(66):
        prog += b_ctrl(0, i, 7, 1 << 40, 0)
    write(t, "ctrl-all-socket", prog)
    prog = bpair
    for i in range(66):
        prog += b_ctrl(2, i, 4, 70000, 1, 3)
    write(t, "ctrl-all-bio-pair", prog)

    def msgs(n, length):
        out = b""
        for i in range(n):
            out += u16(length) + b8(b"m%d" % i) + bytes([1, i % 3, (i + 1) % 3])
        return out
    def mmsg(send, slot, n, stride, flags, length):
        return (bytes([9 if send else 10, slot, n, stride, 0 if flags else 1]) + u64(flags)
                + msgs(n, length) + b"\x00")
    write(t, "mmsg-dgram-pair",
          pair + mmsg(True, 0, 4, 0, 0, 100) + mmsg(False, 1, 8, 1, 0, 2000)
          + mmsg(True, 0, 2, 2, 0xFFFF, 0) + mmsg(False, 1, 0, 0, 0, 0))
    write(t, "mmsg-socket",
          bytes([0, 0]) + u16(0) + bytes([4]) + mmsg(True, 0, 2, 0, 0, 64)
          + mmsg(False, 0, 2, 0, 0, 64))
    write(t, "zero-copy",
          pair + bytes([11, 1, 0, 1]) + bytes([11, 1, 1]) + u16(1500) + bytes([11, 0, 5])
          + bytes([11, 0, 4]) + u16(0) + u16(100) + b"\x01" + b_ctrl(0, 7)
          + bytes([5, 1]) + u16(0) + b"\x00" + bytes([11, 1, 2]) + bytes([11, 1, 3, 4])
          + bytes([11, 0, 6, 0, 1, 0, 1]) + bytes([2, 1]) + bytes([2, 0]))
    write(t, "zero-copy-socket",
          bytes([0, 0]) + u16(0) + bytes([4]) + bytes([11, 0, 0, 1]) + bytes([11, 0, 1]) + u16(64)
          + bytes([11, 0, 4]) + u16(0) + u16(10) + b"\x01" + b_ctrl(0, 7)
          + bytes([11, 0, 2]) + bytes([2, 0]))
    write(t, "chain-buffer",
          bytes([0, 0]) + u16(0) + bytes([8]) + bytes([0, 1]) + u16(0) + bytes([0])
          + bytes([12, 0, 1, 1, 1]) + bytes([4, 0]) + b16(b"abc\n") + b_ctrl(0, 7)
          + bytes([5, 0]) + u16(10) + b"\x01" + bytes([2, 1]) + bytes([5, 0]) + u16(10) + b"\x00"
          + bytes([12, 0, 1, 0, 0]) + bytes([2, 0]))
    write(t, "refs-and-frees",
          pair + bytes([3, 0, 5]) + bytes([2, 0]) + bytes([4, 5]) + b16(b"still") + bytes([2, 1])
          + bytes([4, 5]) + b16(b"peer gone") + bytes([2, 5]))
    write(t, "addr-rawmake",
          bytes([13, 0, 0, 0]) + b8(bytes(4)) + bytes([0]) + u16(1) + bytes([13, 0, 1, 0])
          + b8(bytes(16)) + bytes([1]) + u16(443) + bytes([13, 0, 0, 0]) + b8(bytes(200))
          + bytes([2]) + u16(0))


# ---------------------------------------------------------------- ssl_calls
def s_events(rounds=8):
    return bytes([5, rounds - 1])


def ssl_seeds():
    t = "ssl_calls"
    for net, pair in (("pair", 1), ("sockets", 0)):
        base = bytes([0, 0, 2, pair, 1]) + bytes([1, 1, pair]) + bytes([4, 1, 1])
        hs = base + s_events() * 6 + bytes([6, 0, 2, 1]) + s_events()
        write(t, "handshake-" + net, hs)
        stream = (hs + bytes([3, 1, 3, 0, 2]) + bytes([8, 3]) + b16(b"request") + bytes([0])
                  + s_events() * 2 + bytes([7, 2, 4, 1]) + bytes([9, 4]) + u16(100) + b"\x00"
                  + bytes([8, 4]) + b16(b"response") + bytes([0]) + bytes([10, 4, 0])
                  + s_events() * 2 + bytes([9, 3]) + u16(100) + b"\x00")
        write(t, "streams-" + net, stream)
        write(t, "free-parents-first-" + net,
              stream + bytes([11, 2]) + bytes([9, 4]) + u16(10) + b"\x00" + bytes([11, 0])
              + bytes([13, 4, 0]) + bytes([11, 1]) + bytes([8, 3]) + b16(b"late") + bytes([0])
              + bytes([13, 3, 2, 1]) + s_events() + bytes([11, 3]) + bytes([11, 4]))
        write(t, "shutdown-" + net,
              stream + bytes([10, 1, 3]) + u64(42) + b"\x01\x01" + u64(0) + s_events() * 3
              + bytes([13, 2, 2, 1]) + bytes([10, 2, 2]) + bytes([13, 1, 3]))
    write(t, "wrong-kinds",
          bytes([0, 0, 0, 1, 0]) + bytes([2, 5, 3]) + bytes([1, 1, 1])
          + b"".join(bytes([4, s, w]) for s in (0, 5, 10) for w in range(5))
          + b"".join(bytes([13, s, q]) + (b"\x01" if q == 2 else b"")
                     for s in (0, 1, 5, 10) for q in range(6))
          + b"".join(bytes([14, s, q]) + [b"\x03", b"\x01" + u64(1), b"\x05\x04fuzz", b""][q]
                     for s in (0, 1, 5, 10) for q in range(4))
          + bytes([3, 5, 6, 0, 0]) + bytes([3, 5, 7, 0, 1]) + bytes([3, 0, 8, 0, 2])
          + bytes([6, 1, 9, 1]) + bytes([7, 0, 9, 1]) + bytes([11, 5]) + bytes([4, 6, 4]))
    write(t, "domain-children",
          bytes([2, 0, 2]) + bytes([3, 0, 1, 0, 0]) + bytes([3, 1, 2, 0, 1]) + bytes([11, 0])
          + bytes([4, 1, 0]) + bytes([4, 2, 4]) + bytes([11, 1]) + bytes([13, 2, 0]))
    write(t, "poll",
          bytes([0, 0, 2, 1, 1]) + bytes([1, 1, 1]) + bytes([4, 1, 1]) + s_events() * 4
          + bytes([15, 3]) + bytes([0]) + u64(0xFFFFFFFF) + bytes([1]) + u64(0x3F) + bytes([10])
          + u64(1) + bytes([0]) + bytes([15, 0, 1]))


if __name__ == "__main__":
    quic_seeds()
    tls_seeds()
    bio_seeds()
    ssl_seeds()
