"""The Featurebase fake as a process of its own, on a loopback socket where TCP_NODELAY takes effect.

Run from the repository root (`python -m bench.fake_featurebase [--proto-zero]`): it prints `port=N proto=P` once it
accepts connections, then serves until terminated. A process of its own keeps the fake's work off the benchmark's
GIL. The listening socket is created with `IPPROTO_TCP` on purpose: asyncio enables TCP_NODELAY only on accepted
sockets whose protocol says TCP, and without it every reply on a reused connection waits ~40 ms for a delayed ACK,
which would hide every difference between contact-mcp and the baseline.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

import uvicorn
from tests.fakes.featurebase import FeaturebaseFake


def listening_socket(proto: int = socket.IPPROTO_TCP) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _announce(server: uvicorn.Server, sock: socket.socket) -> None:
    while not server.started:
        time.sleep(0.01)
    port = sock.getsockname()[1]
    print(f"port={port} proto={sock.proto}", flush=True)


def main() -> None:
    # `--proto-zero` is the negative control: the socket asyncio cannot tell is TCP, to show what the floor catches.
    sock = listening_socket(0 if "--proto-zero" in sys.argv[1:] else socket.IPPROTO_TCP)
    fake = FeaturebaseFake()
    config = uvicorn.Config(fake.app, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    threading.Thread(target=_announce, args=(server, sock), daemon=True).start()
    server.run(sockets=[sock])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
