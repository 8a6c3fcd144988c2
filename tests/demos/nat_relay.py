"""A UDP relay on 127.0.0.1 that rebinds like a NAT, for the NAT rebinding test.

    nat_relay.py --target PORT [--switch-after N] [--lifetime S]

Listens on an ephemeral port (printed as "listening on PORT", flushed) for one client.
Datagrams from the client go to 127.0.0.1:TARGET from an upstream socket; the server's
answers on that socket go back to the client. After the client's N-th datagram (default 50)
the relay switches to a new upstream socket, so the server sees the client's datagrams come
from a new source port mid-connection; answers still arriving on the old socket are dropped,
as a NAT that has forgotten the old mapping would. Ends on SIGTERM/SIGINT or after S seconds
(default 120) and prints one line of counts; exits 1 if the switch never happened.
"""

import argparse
import selectors
import signal
import socket
import sys
import time


def upstream_socket() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--switch-after", type=int, default=50)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()
    target = ("127.0.0.1", args.target)

    front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    front.bind(("127.0.0.1", 0))
    front.setblocking(False)
    up = upstream_socket()
    old = None
    sel = selectors.DefaultSelector()
    sel.register(front, selectors.EVENT_READ, "front")
    sel.register(up, selectors.EVENT_READ, "up")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    client = None
    from_client = to_client = after_switch = replies_new = dropped_old = 0
    old_port = up.getsockname()[1]
    new_port = None
    print(f"listening on {front.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + args.lifetime
    while not stop and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=min(1.0, max(0.0, deadline - time.monotonic()))):
            sock = key.fileobj
            while True:
                try:
                    data, addr = sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                if key.data == "front":
                    client = addr
                    from_client += 1
                    if from_client == args.switch_after + 1:
                        # The rebinding: from now on the client's datagrams leave from a new port.
                        old = up
                        sel.modify(old, selectors.EVENT_READ, "old")
                        up = upstream_socket()
                        new_port = up.getsockname()[1]
                        sel.register(up, selectors.EVENT_READ, "up")
                    if new_port is not None:
                        after_switch += 1
                    try:
                        up.sendto(data, target)
                    except OSError:
                        pass
                elif key.data == "up":
                    if client is not None:
                        if new_port is not None:
                            replies_new += 1
                        try:
                            front.sendto(data, client)
                            to_client += 1
                        except OSError:
                            pass
                else:
                    dropped_old += 1
    print(
        f"relay: {from_client} datagrams from the client, {to_client} to it; switched from port {old_port} "
        f"to {new_port} after {args.switch_after}; {after_switch} sent and {replies_new} answers received "
        f"on the new port; {dropped_old} dropped on the old one",
        flush=True,
    )
    return 0 if new_port is not None else 1


if __name__ == "__main__":
    sys.exit(main())
