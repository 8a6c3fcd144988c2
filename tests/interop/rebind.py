"""A UDP relay that plays a NAT rebinding the client mid-connection (the interop runner's
rebind-port and rebind-addr cases), on loopback, standard library only.

    rebind.py --server HOST:PORT [--mode port|addr] [--after-datagrams N | --after-bytes N]
              [--times K] [--listen ADDR] [--lifetime S]

Clients send to the relay's front socket (ADDR, default 127.0.0.1, port chosen by the system:
"listening on PORT" is printed on stdout once ready). The relay sends each client datagram on
to the server from an outbound socket of its own, and sends the server's replies back to the
client from the front socket, so the client never sees a change. Once the threshold is
reached, the next client datagram and all that follow leave from a new outbound socket:
  --mode port   a new port on the listen address (the interop runner's rebind-port)
  --mode addr   a new address: 127.0.0.2, then .3 and so on (its rebind-addr)
The threshold counts from the start or from the previous rebind: --after-datagrams N client
datagrams, or --after-bytes N bytes (UDP payloads) relayed either way. --times K rebinds K
times (default 1). The old outbound socket stays open but whatever the server sends to it
from then on is dropped and counted, as a NAT that has forgotten the old mapping would.

Only the first client address is relayed (datagrams from others are counted and dropped).
Exits on SIGTERM/SIGINT or after --lifetime seconds (default 120), printing on stdout one
line per rebind as it happens ("rebind: after ...: 127.0.0.1:A -> 127.0.0.2:B") and, at the
end, one line per outbound socket:
  "rebind: path N from HOST:PORT: C datagrams (B bytes) to the server, S datagrams (B bytes)
   answered, D dropped after the rebind"
"""

import argparse
import selectors
import signal
import socket
import sys
import time


class Path:
    """One outbound socket: what went out through it and what came back."""

    def __init__(self, addr: str):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((addr, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.up = [0, 0]  # datagrams, bytes to the server
        self.down = [0, 0]  # datagrams, bytes from the server, sent on to the client
        self.dropped = 0  # datagrams from the server after this path was left
        self.retired = False

    def name(self) -> str:
        return f"{self.addr[0]}:{self.addr[1]}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="HOST:PORT of the server")
    ap.add_argument("--listen", default="127.0.0.1", help="address of the client-facing socket")
    ap.add_argument("--mode", choices=("port", "addr"), default="port")
    ap.add_argument("--after-datagrams", type=int, default=0, help="rebind after N client datagrams")
    ap.add_argument("--after-bytes", type=int, default=0, help="rebind after N bytes relayed either way")
    ap.add_argument("--times", type=int, default=1, help="rebind this many times")
    ap.add_argument("--lifetime", type=float, default=120, help="exit after this many seconds")
    args = ap.parse_args()
    if (args.after_datagrams > 0) == (args.after_bytes > 0):
        ap.error("give one of --after-datagrams and --after-bytes")
    host, _, port = args.server.rpartition(":")
    server = (host, int(port))

    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind((args.listen, 0))
    front.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, None)
    paths = [Path(args.listen)]
    sel.register(paths[0].sock, selectors.EVENT_READ, paths[0])
    print(f"listening on {front.getsockname()[1]}", flush=True)

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    client = None
    others = 0
    since = [0, 0]  # client datagrams, bytes either way since the last rebind
    deadline = time.monotonic() + args.lifetime

    def rebind() -> None:
        old = paths[-1]
        old.retired = True
        n = len(paths)
        addr = args.listen if args.mode == "port" else f"127.0.0.{n + 1}"
        new = Path(addr)
        paths.append(new)
        sel.register(new.sock, selectors.EVENT_READ, new)
        what = f"{since[0]} client datagrams" if args.after_datagrams else f"{since[1]} bytes"
        print(f"rebind: after {what}: {old.name()} -> {new.name()}", flush=True)
        since[0] = since[1] = 0

    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.2):
            sock, path = key.fileobj, key.data
            while True:
                try:
                    data, src = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                except ConnectionRefusedError:
                    continue  # an ICMP error for an earlier datagram
                if path is None:  # from a client
                    if client is None:
                        client = src
                    if src != client:
                        others += 1
                        continue
                    due = args.after_datagrams and since[0] >= args.after_datagrams
                    due = due or (args.after_bytes and since[1] >= args.after_bytes)
                    if due and len(paths) <= args.times:
                        rebind()
                    out = paths[-1]
                    since[0] += 1
                    since[1] += len(data)
                    out.up[0] += 1
                    out.up[1] += len(data)
                    try:
                        out.sock.sendto(data, server)
                    except OSError:
                        pass  # a full buffer or an ICMP error: the datagram is lost
                elif path.retired:
                    path.dropped += 1
                elif src == server and client is not None:
                    path.down[0] += 1
                    path.down[1] += len(data)
                    since[1] += len(data)
                    try:
                        front.sendto(data, client)
                    except OSError:
                        pass

    why = "signal" if stop else "lifetime over"
    print(f"rebind: exiting ({why}); " + (f"client {client[0]}:{client[1]}" if client else "no client"))
    for i, p in enumerate(paths):
        print(
            f"rebind: path {i} from {p.name()}: {p.up[0]} datagrams ({p.up[1]} bytes) to the server, "
            f"{p.down[0]} datagrams ({p.down[1]} bytes) answered, {p.dropped} dropped after the rebind"
        )
    if others:
        print(f"rebind: {others} datagrams from other clients dropped")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
