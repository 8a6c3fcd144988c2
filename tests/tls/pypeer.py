"""Python peers for tests/tls/run.sh (the standard library's ssl module only).

  pypeer.py client PORT N [--tls12] [--alpn P,..]   request N bytes, check them and the
                                                    close_notify; prints "OK <version> alpn=<p> bytes=N"
  pypeer.py server PORTFILE [--tls12] [--alpn P,..] [--count K]
                                                    serves K requests "GET /N" like tls_peer
  pypeer.py sink PORTFILE [--tls12]                 one connection: "PUT /N" and N bytes of the
                                                    pattern, checked to the close_notify, answered;
                                                    prints "received N bytes (pattern), close_notify"
  pypeer.py midrecord-client PORT                   handshake, then half of the request's record, close
  pypeer.py midresponse-client PORT                 asks for 50 MB, reads 64 KB, resets the connection
  pypeer.py midrecord-server PORTFILE               handshake, then half of a record of data, close
  pypeer.py garbage PORT SEED [--header]            random bytes instead of a ClientHello
  pypeer.py slowloris PORT HOLD                     one byte of a ClientHello, then nothing for up
                                                    to HOLD s; says whether the server closed first
Servers write their port to PORTFILE once listening. Every socket has a timeout.
"""
import os
import random
import socket
import ssl
import struct
import sys
import time

CERTS = os.environ.get("OSSLQUIC_CERTS", "build/certs")
PATTERN = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


def opt(args, name, default=None):
    if name in args:
        return args[args.index(name) + 1]
    return default


def client_ctx(args):
    ctx = ssl.create_default_context(cafile=f"{CERTS}/ca.pem")
    if "--tls12" in args:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if opt(args, "--alpn"):
        ctx.set_alpn_protocols(opt(args, "--alpn").split(","))
    return ctx


def server_ctx(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(f"{CERTS}/chain.pem", f"{CERTS}/key.pem")
    if "--tls12" in args:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if opt(args, "--alpn"):
        ctx.set_alpn_protocols(opt(args, "--alpn").split(","))
    return ctx


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=20)


def listen(portfile):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    ls.settimeout(30)
    with open(portfile + ".tmp", "w") as f:
        f.write(str(ls.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)
    return ls


def client(port, n, args):
    with connect(port) as raw:
        # suppress_ragged_eofs=False: an EOF without close_notify is an error, not b"".
        s = client_ctx(args).wrap_socket(raw, server_hostname="localhost",
                                         suppress_ragged_eofs=False)
        s.sendall(b"GET /%d\r\n" % n)
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break  # close_notify
            got += b
        if len(got) != n or bytes(got) != pattern(n):
            print(f"FAILED: got {len(got)} bytes, expected {n} (or pattern differs)")
            return 1
        version, alpn = s.version(), s.selected_alpn_protocol() or "-"
        s.unwrap()  # our close_notify back
        print(f"OK {version} alpn={alpn} bytes={n}")
    return 0


def server(portfile, args):
    ctx = server_ctx(args)
    ls = listen(portfile)
    for _ in range(int(opt(args, "--count", "1"))):
        raw, _ = ls.accept()
        raw.settimeout(20)
        try:
            s = ctx.wrap_socket(raw, server_side=True, suppress_ragged_eofs=False)
        except ssl.SSLError as e:
            print(f"handshake failed: {e}", flush=True)
            raw.close()
            continue
        req = b""
        while b"\n" not in req:
            b = s.recv(1024)
            if not b:
                break
            req += b
        n = int(req.split()[1][1:])
        s.sendall(pattern(n))
        version, alpn = s.version(), s.selected_alpn_protocol() or "-"
        s.unwrap()  # sends close_notify, waits for the client's
        print(f"served {n} bytes ({version}, alpn={alpn})", flush=True)
        raw.close()
    return 0


def sink(portfile, args):
    ls = listen(portfile)
    raw, _ = ls.accept()
    raw.settimeout(20)
    with server_ctx(args).wrap_socket(raw, server_side=True, suppress_ragged_eofs=False) as s:
        buf = b""
        while b"\n" not in buf:
            b = s.recv(1024)
            if not b:
                print(f"FAILED: the stream ended inside the request line: {buf[:40]!r}")
                return 1
            buf += b
        line, buf = buf.split(b"\n", 1)
        n = int(line.split()[1][1:])
        got = bytearray(buf)
        while True:
            b = s.recv(1 << 20)
            if not b:
                break  # close_notify (an EOF without one raises: suppress_ragged_eofs=False)
            got += b
            if len(got) > n:
                print(f"FAILED: more than the {n} bytes announced")
                return 1
        if len(got) != n or bytes(got) != pattern(n):
            print(f"FAILED: got {len(got)} bytes, expected {n} (or the pattern differs)")
            return 1
        s.unwrap()  # our close_notify back
    print(f"received {n} bytes (pattern), close_notify", flush=True)
    return 0


def memory_handshake(sock, obj, inc, out):
    """Drives an SSLObject over a socket until its handshake is done."""
    while True:
        try:
            obj.do_handshake()
            sock.sendall(out.read())
            return
        except ssl.SSLWantReadError:
            sock.sendall(out.read())
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("peer closed during the handshake")
            inc.write(data)


def midrecord_client(port):
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx([]).wrap_bio(inc, out, server_hostname="localhost")
    with connect(port) as sock:
        memory_handshake(sock, obj, inc, out)
        obj.write(b"GET /1000\r\n")
        rec = out.read()
        sock.sendall(rec[: len(rec) // 2])
        # FIN, not RST: drain what the server sent (TLS 1.3 tickets) until it closes.
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
        print(f"sent {len(rec) // 2} of the request record's {len(rec)} bytes, closed")
    return 0


def midresponse_client(port):
    with connect(port) as raw:
        s = client_ctx([]).wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"GET /50000000\r\n")
        got = 0
        while got < 65536:
            got += len(s.recv(65536))
        # RST instead of FIN: the server's next writes fail with ECONNRESET/EPIPE.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        print(f"read {got} bytes, resetting")
    return 0


def midrecord_server(portfile):
    ls = listen(portfile)
    sock, _ = ls.accept()
    sock.settimeout(20)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = server_ctx([]).wrap_bio(inc, out, server_side=True)
    memory_handshake(sock, obj, inc, out)
    req = b""
    while b"\n" not in req:
        try:
            req += obj.read(1024)
        except ssl.SSLWantReadError:
            inc.write(sock.recv(65536))
    obj.write(pattern(1000))
    rec = out.read()
    sock.sendall(rec[: len(rec) // 2])
    print(f"sent {len(rec) // 2} of a {len(rec)}-byte record, closing", flush=True)
    sock.close()
    return 0


def garbage(port, seed, args):
    rnd = random.Random(seed)
    body = bytes(rnd.getrandbits(8) for _ in range(512))
    if "--header" in args:  # a handshake record header, then garbage
        body = b"\x16\x03\x01\x02\x00" + body
    with connect(port) as s:
        s.settimeout(10)
        s.sendall(body)
        reply = b""
        try:
            while True:
                b = s.recv(4096)
                if not b:
                    break
                reply += b
        except ConnectionResetError:
            pass
        print(f"server replied {reply[:7].hex() or 'nothing'} and closed")
    return 0


def slowloris(port, hold):
    with connect(port) as s:
        s.sendall(b"\x16")  # the first byte of a handshake record
        print("connected, first byte sent", flush=True)
        s.settimeout(0.2)
        end = time.monotonic() + hold
        while time.monotonic() < end:
            try:
                if not s.recv(4096):
                    print("closed by server")
                    return 0
            except socket.timeout:
                continue
            except ConnectionResetError:
                print("closed by server (reset)")
                return 0
        print(f"still open after {hold} s, closing")
    return 0


def main(argv):
    mode, args = argv[1], argv[2:]
    if mode == "client":
        return client(int(args[0]), int(args[1]), args)
    if mode == "server":
        return server(args[0], args)
    if mode == "sink":
        return sink(args[0], args)
    if mode == "midrecord-client":
        return midrecord_client(int(args[0]))
    if mode == "midresponse-client":
        return midresponse_client(int(args[0]))
    if mode == "midrecord-server":
        return midrecord_server(args[0])
    if mode == "garbage":
        return garbage(int(args[0]), int(args[1]), args)
    if mode == "slowloris":
        return slowloris(int(args[0]), float(args[1]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ssl.SSLError, ValueError) as e:
        print(f"FAILED: {type(e).__name__}: {e}")
        sys.exit(1)
