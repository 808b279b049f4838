"""The processes a benchmark talks to: which command serves which server, how it is started, found and stopped.

A `ServerSpec` says how to run one server (contact-mcp or a baseline) in-process, over stdio and over streamable
HTTP; `connect()` opens one MCP `Client` to it on a transport and knows the server's process id, so the memory
scenario can read its RSS. The Featurebase fake runs as its own process (`fake_featurebase()`); PostgreSQL is the
one the tests start (`tests/postgres_server.py`: a throwaway cluster, durability off), an empty schema per store.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil
from mcp import Client, StdioServerParameters
from tests.postgres_server import PostgresServer, create_schema, with_schema

ROOT = Path(__file__).resolve().parents[1]
BASELINE_FILE = ROOT / "bench" / "baseline_server.py"

Transport = Literal["memory", "stdio", "http"]
TRANSPORTS: tuple[Transport, ...] = ("memory", "stdio", "http")

# Variables contact-mcp reads; never inherited from the shell that runs the benchmark.
_OUR_ENV_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_", "BENCH_")


@dataclass
class ServerSpec:
    """One server under test: how to build it in-process and which command serves it over stdio or HTTP."""

    label: str
    build: Callable[[], Any]
    argv: Callable[[Literal["stdio", "http"], int], list[str]]
    env: Mapping[str, str] = field(default_factory=dict[str, str])

    def marker(self) -> str:
        """A string only this server's command line contains (to find its process)."""
        return " ".join(self.argv("stdio", 0)[1:3])


def contact_mcp_spec(env: Mapping[str, str], build: Callable[[], Any], http_args: tuple[str, ...] = ()) -> ServerSpec:
    """`http_args` are extra `serve` flags over HTTP (`--stateless` for the replicas)."""

    def argv(transport: Literal["stdio", "http"], port: int) -> list[str]:
        args = [sys.executable, "-m", "contact_mcp", "serve", "--transport", transport]
        return [*args, "--port", str(port), *http_args] if transport == "http" else args

    return ServerSpec("contact-mcp", build, argv, {"CONTACT_MCP_LOG_LEVEL": "WARNING", **env})


def baseline_spec(kind: Literal["trivial", "provider"], env: Mapping[str, str], build: Callable[[], Any]) -> ServerSpec:
    def argv(transport: Literal["stdio", "http"], port: int) -> list[str]:
        args = [sys.executable, str(BASELINE_FILE), "--kind", kind, "--transport", transport]
        return [*args, "--port", str(port)] if transport == "http" else args

    return ServerSpec(f"bare SDK ({kind})", build, argv, dict(env))


@dataclass
class Connection:
    client: Client
    pid: int | None  # None in-process


def clean_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OUR_ENV_PREFIXES)}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"server did not listen on {port} within {timeout_s} s")


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def http_process(spec: ServerSpec) -> Iterator[tuple[str, int]]:
    """Serve `spec` over streamable HTTP on a free loopback port; yield its MCP URL and process id."""
    with http_replicas(spec, 1) as [(port, pid)]:
        yield f"http://127.0.0.1:{port}/mcp", pid


@contextmanager
def http_replicas(spec: ServerSpec, count: int) -> Iterator[list[tuple[int, int]]]:
    """`count` processes serving `spec` over streamable HTTP, started together; yield each one's (port, pid)."""
    procs: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(count):
            port = free_port()
            argv = spec.argv("http", port)
            procs.append((port, subprocess.Popen(argv, cwd=ROOT, env=clean_env(spec.env), stdin=subprocess.DEVNULL)))
        for port, proc in procs:
            _wait_for_port(port, proc)
        yield [(port, proc.pid) for port, proc in procs]
    finally:
        for _, proc in procs:
            stop(proc)


def stdio_params(spec: ServerSpec) -> StdioServerParameters:
    argv = spec.argv("stdio", 0)
    return StdioServerParameters(command=argv[0], args=argv[1:], env=dict(spec.env), cwd=str(ROOT))


def _stdio_child(marker: str) -> int | None:
    newest: psutil.Process | None = None
    for child in psutil.Process().children():
        try:
            if marker in " ".join(child.cmdline()) and (newest is None or child.create_time() >= newest.create_time()):
                newest = child
        except psutil.Error:
            continue
    return newest.pid if newest is not None else None


@asynccontextmanager
async def connect(spec: ServerSpec, transport: Transport) -> AsyncIterator[Connection]:
    """One MCP client session to `spec` over `transport` (the server process is started and stopped with it)."""
    if transport == "memory":
        async with Client(spec.build()) as client:
            yield Connection(client, None)
    elif transport == "stdio":
        async with Client(stdio_params(spec)) as client:
            yield Connection(client, _stdio_child(spec.marker()))
    else:
        with http_process(spec) as (url, pid):
            async with Client(url) as client:
                yield Connection(client, pid)


@contextmanager
def fake_featurebase(*, nodelay: bool = True) -> Iterator[str]:
    """The Featurebase fake in its own process; yields its base URL.

    `nodelay=False` is the negative control: a listening socket without IPPROTO_TCP, where TCP_NODELAY never
    takes effect.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_featurebase", *([] if nodelay else ["--proto-zero"])],
        cwd=ROOT,
        env=clean_env({}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"port=(\d+) proto=(\d+)", line)
        if match is None:
            raise RuntimeError(f"the Featurebase fake did not start (said {line!r})")
        if nodelay and int(match.group(2)) != socket.IPPROTO_TCP:
            raise RuntimeError("the fake's listening socket is not IPPROTO_TCP: TCP_NODELAY would not take effect")
        yield f"http://127.0.0.1:{match.group(1)}"
    finally:
        stop(proc)


def memory_of(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) of a process in MiB; the peak is the kernel's high-water mark (VmHWM)."""
    rss = psutil.Process(pid).memory_info().rss / 2**20
    peak = rss
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return rss, peak


@dataclass(frozen=True)
class Postgres:
    """A throwaway PostgreSQL server: `database()` gives the URL of a new empty database (a schema) on it."""

    server: PostgresServer

    @property
    def pid(self) -> int:
        """The postmaster's process id (its backends are its children)."""
        return int((self.server.data / "postmaster.pid").read_text().split()[0])

    @property
    def version(self) -> str:
        return (self.server.data / "PG_VERSION").read_text().strip()

    def database(self) -> str:
        base = self.server.url()
        return with_schema(base, create_schema(base))


@contextmanager
def postgres() -> Iterator[Postgres]:
    """Start PostgreSQL as the test suite does (`RuntimeError` saying what to install when there is none)."""
    server = PostgresServer.start_new()
    try:
        yield Postgres(server)
    finally:
        server.destroy()
