"""The load generator for the replica benchmark: Debian's `wrk`, with a Lua script posting JSON-RPC `tools/call`.

A Python MCP client spends about as much CPU per call as the server answering it, so on a 2-core machine it would
measure itself. `wrk` (C, epoll) with `wrk_tools_call.lua` costs a few percent of that: it sends prepared requests
and only scans each answer for an error. Its own CPU time is measured with every run (`WrkRun.cpu_s`), so the
report can show it stayed cheap.

What a server accepts without `initialize` (read off the SDK's `streamable_http_manager.py` and checked with curl):

- **2025 era** (`MCP-Protocol-Version: 2025-11-25`) on a *stateless* server (`serve --transport http
  --stateless`, the SDK's `stateless_http`): a bare JSON-RPC request; `Accept` must list both
  `application/json` and `text/event-stream`, and the answer is one SSE `message` event. A stateful server
  answers 400 "Missing session ID".
- **2026-07-28 era**: sessionless on any server; the body's `params._meta` carries the protocol version and the
  client capabilities, and the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` headers must repeat the
  version, method and tool name. The answer is plain JSON.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from bench.workloads import ArgsFn, BenchError

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk_tools_call.lua"
WRK_INSTALL_HINT = (
    "the replica benchmark drives the servers with wrk, which is not installed: on Debian or Ubuntu run "
    "`apt-get install -y wrk` (as root), on macOS `brew install wrk`"
)
Era = Literal["2025-11-25", "2026-07-28"]
ERAS: tuple[Era, ...] = ("2025-11-25", "2026-07-28")
_MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}


def find_wrk() -> str:
    """The path of `wrk`, or a `BenchError` saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise BenchError(WRK_INSTALL_HINT)
    return found


def request_body(tool: str, arguments: dict[str, Any], request_id: int, era: Era) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if era == "2026-07-28":
        params["_meta"] = _MODERN_META
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def request_headers(tool: str, era: Era) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": era,
    }
    if era == "2026-07-28":
        headers |= {"Mcp-Method": "tools/call", "Mcp-Name": tool}
    return headers


def write_bodies(path: Path, tool: str, args: ArgsFn, count: int, era: Era) -> Path:
    """`count` request bodies for `tool`, call 0 to count-1, one a line (wrk cycles through them)."""
    lines = (json.dumps(request_body(tool, args(i), i + 1, era), separators=(",", ":")) for i in range(count))
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class WrkRun:
    """One wrk run: how many calls answered in how long, their latency, and what wrk itself cost."""

    replicas: int
    connections: int
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    cpu_s: float  # wrk's own user + system CPU time

    @property
    def calls_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_call(self) -> float:
        return 1000 * self.cpu_s / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "calls_per_s": self.calls_per_s, "cpu_ms_per_call": self.cpu_ms_per_call}


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_wrk(
    ports: Sequence[int],
    tool: str,
    bodies: Path,
    era: Era,
    *,
    connections: int,
    threads: int,
    duration_s: float,
) -> WrkRun:
    """`connections` keep-alive connections from `threads` wrk threads for `duration_s`, spread over `ports`.

    Any failed call (HTTP status, JSON-RPC error, tool error, socket error) is a `BenchError`: an error path is not
    the path being measured.
    """
    wrk = find_wrk()
    env = {
        **os.environ,
        "BENCH_WRK_PORTS": ",".join(str(port) for port in ports),
        "BENCH_WRK_BODIES": str(bodies),
        "BENCH_WRK_HEADERS": "\n".join(f"{name}: {value}" for name, value in request_headers(tool, era).items()),
    }
    argv = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={max(1, round(duration_s))}s",
        "--timeout=30s",
        f"--script={LUA_SCRIPT}",
        f"http://127.0.0.1:{ports[0]}/mcp",
    ]
    cpu_before = _children_cpu_s()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    cpu_s = _children_cpu_s() - cpu_before
    match = re.search(r"^BENCH_WRK (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()[-500:]} {done.stdout[-500:]}")
    totals: dict[str, Any] = json.loads(match.group(1))
    failed = {key: totals[key] for key in ("connect", "read", "write", "status", "timeout", "tool_errors")}
    if any(failed.values()):
        sample = re.search(r"^BENCH_WRK_ERROR (.*)$", done.stdout, re.MULTILINE)
        raise BenchError(
            f"{tool} calls failed under wrk: {failed}; first: {sample.group(1) if sample else '(no body)'}"
        )
    return WrkRun(
        replicas=len(ports),
        connections=connections,
        requests=int(totals["requests"]),
        seconds=totals["duration_us"] / 1e6,
        p50_ms=totals["p50_us"] / 1000,
        p99_ms=totals["p99_us"] / 1000,
        mean_ms=totals["mean_us"] / 1000,
        cpu_s=cpu_s,
    )


def bodies_file(directory: Path, tool: str, args: ArgsFn, count: int, era: Era) -> Path:
    handle, name = tempfile.mkstemp(prefix=f"wrk-{tool}-", suffix=".jsonl", dir=directory)
    os.close(handle)
    return write_bodies(Path(name), tool, args, count, era)
