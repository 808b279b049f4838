"""What every provider fake shares: a request log, fault injection, and a real uvicorn server on 127.0.0.1.

A fake is a Starlette app (one module per provider, written from the provider's public docs) wrapped by
`FaultInjector`, which consults a queue of `Fault`s before the app sees a request. Tests push faults and read
`fake.requests` to prove exactly what the client sent (auth header, body, how many attempts).

`serve(fake)` runs it on a free loopback port in a background thread, so the same fake serves in-process async
tests and a server subprocess alike.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FaultKind = Literal["status", "slow", "malformed", "wrong_type", "truncate", "oversize"]


@dataclass
class Fault:
    """One injected misbehaviour, used for the next `times` matching requests.

    kind:
      status     answer `status` with `body` (JSON) and `headers`, without reaching the app
      slow       sleep `delay` seconds, then let the app answer
      malformed  answer 200/201 with a body that is not JSON (content type says JSON)
      wrong_type answer 200 with an HTML page
      truncate   declare a body, send half of it, then drop the connection
      oversize   answer 200 with a JSON body of `size` bytes
    """

    kind: FaultKind
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    size: int = 2_000_000
    times: int = 1
    path_contains: str | None = None


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FaultInjector:
    """ASGI middleware: log every request, then apply the first matching queued fault (if any)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.faults: list[Fault] = []
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()

    def push(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()
            self.requests.clear()

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.path_contains is None or fault.path_contains in path:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        recorded = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=body,
        )
        with self._lock:
            self.requests.append(recorded)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        fault = self._take(scope["path"])
        if fault is None:
            await self.app(scope, replay, send)
            return
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
            await self.app(scope, replay, send)
            return
        if fault.kind == "status":
            payload = json.dumps(fault.body if fault.body is not None else {}).encode()
            await _send(send, fault.status, payload, {"content-type": "application/json", **fault.headers})
            return
        if fault.kind == "malformed":
            await _send(send, 200, b'{"data": {"id": "x", "trunc', {"content-type": "application/json"})
            return
        if fault.kind == "wrong_type":
            await _send(send, 200, b"<html><body>Maintenance</body></html>", {"content-type": "text/html"})
            return
        if fault.kind == "oversize":
            filler = b'{"pad": "' + b"x" * fault.size + b'"}'
            await _send(send, 200, filler, {"content-type": "application/json"})
            return
        if fault.kind == "truncate":
            full = b'{"data": {"id": "' + b"y" * 200 + b'"}}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(full)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": full[: len(full) // 2], "more_body": True})
            # Raising after a partial body makes uvicorn close the socket: the client sees a dropped connection.
            raise ConnectionAbortedError("fault: connection dropped mid-body")
        raise AssertionError(f"unknown fault kind {fault.kind}")


async def _send(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: ASGIApp) -> Iterator[str]:
    """Run `app` under uvicorn on 127.0.0.1 in a background thread; yield its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"fake-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
