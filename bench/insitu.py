"""Where a call's time goes inside the server process: per-function p50s measured in place, over stdio.

A tight loop flatters code: in a server process that sleeps between requests, caches are cold and a function that
takes 25 µs under `timeit` takes four times that. So this wraps the functions that make up a tool call with timers
inside real stdio server processes (contact-mcp and the bare SDK baselines), drives them with the benchmark's
calls, and prints each function's p50 next to the client-side p50. It answers "which of our functions should get
faster" when a target in RESULTS.md is missed.

`python -m bench.insitu [--calls N] [--in-flight K]`; the servers are `python -m bench.insitu --serve KIND`.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import functools
import gc
import json
import os
import runpy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from bench.procs import BASELINE_FILE, ROOT, fake_featurebase
from bench.stats import percentile
from bench.workloads import ArgsFn, person

_samples: dict[str, list[int]] = collections.defaultdict(list)
_SKIP = 100  # warm-up calls left out of each function's p50
_gc = {"ns": 0, "started": 0, "calls": 0}
GC_LABEL = "garbage collection, mean per tool call"


def _count_gc(phase: str, info: dict[str, Any]) -> None:
    """A collection can land in any call, so GC is reported as its mean share of a call, not as a p50."""
    if phase == "start":
        _gc["started"] = time.perf_counter_ns()
    else:
        _gc["ns"] += time.perf_counter_ns() - _gc["started"]


def _timed(owner: Any, name: str, label: str) -> None:
    original = getattr(owner, name)

    if _is_async(original):

        @functools.wraps(original)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return await original(*args, **kwargs)
            finally:
                _samples[label].append(time.perf_counter_ns() - started)

        setattr(owner, name, timed_async)
    else:

        @functools.wraps(original)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter_ns()
            try:
                return original(*args, **kwargs)
            finally:
                _samples[label].append(time.perf_counter_ns() - started)

        setattr(owner, name, timed_sync)


def _timed_call_tool(owner: Any) -> None:
    """`MCPServer.call_tool`, labelled by tool: argument validation, the tool, and converting its result."""
    original = owner.call_tool

    @functools.wraps(original)
    async def timed(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter_ns()
        _gc["calls"] += 1
        try:
            return await original(self, name, *args, **kwargs)
        finally:
            _samples[f"MCPServer.call_tool({name}): arguments + tool + result"].append(time.perf_counter_ns() - started)

    owner.call_tool = timed


def _is_async(fn: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(fn)


def _dump(path: str) -> None:
    p50 = {label: percentile(sorted(s[min(_SKIP, len(s) // 5) :]), 0.5) / 1e3 for label, s in _samples.items() if s}
    if _gc["calls"]:
        p50[GC_LABEL] = _gc["ns"] / _gc["calls"] / 1e3
    Path(path).write_text(json.dumps(p50))


def serve(kind: str) -> None:
    """Run one server over stdio with timers in place; write the p50s (µs) to $INSITU_OUT at exit."""
    atexit.register(_dump, os.environ["INSITU_OUT"])
    gc.callbacks.append(_count_gc)
    from mcp.server.mcpserver import MCPServer

    _timed_call_tool(MCPServer)
    if kind in ("trivial", "provider"):
        import httpx2

        _timed(httpx2.AsyncClient, "post", "httpx2 AsyncClient.post (one HTTP exchange)")
        sys.argv = [str(BASELINE_FILE), "--kind", kind, "--transport", "stdio"]
        runpy.run_path(str(BASELINE_FILE), run_name="__main__")
        return
    from contact_mcp.providers.http import HttpProvider
    from contact_mcp.store import LocalStore
    from contact_mcp.tools import reads, table, writes

    for name in ("normalize_email", "normalize_phone", "normalize_uuid", "success"):
        _timed(writes, name, f"tools.{name}")
    for module, name in ((writes, "upsert_contact"), (reads, "get_contact")):
        _timed(LocalStore, name, f"LocalStore.{name}")
        _timed(module, name, f"tools.{name} (the whole tool body)")
    _timed(HttpProvider, "request", "HttpProvider.request (retry loop + exchange)")
    _timed(HttpProvider, "_send_once", "HttpProvider._send_once (one HTTP exchange)")
    # The tool table holds the functions themselves; point it at the timed ones before the server is built.
    for spec in table.TOOLS:
        module = reads if spec.fn.__module__ == reads.__name__ else writes
        object.__setattr__(spec, "fn", getattr(module, spec.fn.__name__))
    from contact_mcp.cli import main

    main(["serve"])


# ---------- the driver ----------


def _params(kind: str, env: dict[str, str], out: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "bench.insitu", "--serve", kind],
        env={**env, "INSITU_OUT": str(out), "CONTACT_MCP_LOG_LEVEL": "WARNING"},
        cwd=str(ROOT),
    )


Call = tuple[str, Client, str, ArgsFn]


async def _batch(call: Call, numbers: range, in_flight: int, keep: list[int] | None) -> None:
    """Calls number `numbers`, `in_flight` at a time; each call's latency (ns) goes to `keep` unless it is None."""
    label, client, tool, args = call
    pending = iter(numbers)

    async def worker() -> None:
        for i in pending:
            started = time.perf_counter_ns()
            result = await client.call_tool(tool, args(i))
            elapsed = time.perf_counter_ns() - started
            if result.is_error:
                raise RuntimeError(f"{label}: {result.content}")
            if keep is not None:
                keep.append(elapsed)

    async with anyio.create_task_group() as group:
        for _ in range(in_flight):
            group.start_soon(worker)


async def _drive(calls: list[Call], n: int, in_flight: int) -> dict[str, float]:
    """Interleaved rounds of each call, `in_flight` at a time on one session; the client-side p50 of each, in µs.
    The first round warms up and is not kept."""
    seen: dict[str, list[int]] = {label: [] for label, *_ in calls}
    rounds = 6
    per_round = n // rounds
    for round_no in range(rounds):
        for call in calls:
            numbers = range(round_no * n, round_no * n + per_round)
            await _batch(call, numbers, in_flight, seen[call[0]] if round_no else None)
    return {label: percentile(sorted(s), 0.5) / 1e3 for label, s in seen.items()}


async def local(n: int, in_flight: int, tmp: Path) -> dict[str, dict[str, float]]:
    ours_out, base_out = tmp / "ours.json", tmp / "trivial.json"
    ours_env = {"CONTACT_MCP_DB": str(tmp / "insitu.db")}
    async with (
        Client(_params("ours", ours_env, ours_out)) as ours,
        Client(_params("trivial", {}, base_out)) as base,
    ):
        ids = []
        for i in range(200):
            result = await ours.call_tool("upsert_contact", person(i, 200))
            ids.append(str((result.structured_content or {})["id"]))
        upsert = functools.partial(person, pool=200)

        def get(i: int) -> dict[str, Any]:
            return {"contact_id": ids[i % len(ids)]}

        client = await _drive(
            [
                ("client: contact-mcp upsert_contact", ours, "upsert_contact", upsert),
                ("client: bare SDK ping (upsert arguments)", base, "ping", upsert),
                ("client: contact-mcp get_contact", ours, "get_contact", get),
                ("client: bare SDK ping (get arguments)", base, "ping", get),
            ],
            n,
            in_flight,
        )
    return {"client": client, "contact-mcp": _read(ours_out), "bare SDK": _read(base_out)}


async def provider(n: int, in_flight: int, tmp: Path) -> dict[str, dict[str, float]]:
    from tests.fakes.featurebase import API_KEY

    ours_out, base_out = tmp / "ours-fb.json", tmp / "provider.json"
    with fake_featurebase() as url:
        ours_env = {
            "CONTACT_MCP_PROVIDERS": "featurebase",
            "FEATUREBASE_API_KEY": API_KEY,
            "FEATUREBASE_BASE_URL": url,
            "CONTACT_MCP_DB": str(tmp / "provider-history.db"),  # never the user's default store
        }
        base_env = {"BENCH_FAKE_URL": url, "BENCH_FAKE_KEY": API_KEY}
        async with (
            Client(_params("ours-fb", ours_env, ours_out)) as ours,
            Client(_params("provider", base_env, base_out)) as base,
        ):
            upsert = functools.partial(person, pool=64)
            client = await _drive(
                [
                    ("client: contact-mcp upsert_contact (Featurebase)", ours, "upsert_contact", upsert),
                    ("client: bare SDK upsert_contact (same POST)", base, "upsert_contact", upsert),
                ],
                n,
                in_flight,
            )
    return {"client": client, "contact-mcp": _read(ours_out), "bare SDK": _read(base_out)}


def _read(path: Path) -> dict[str, float]:
    deadline = time.monotonic() + 10
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the server writes its numbers as it exits
    return json.loads(path.read_text()) if path.exists() else {}


def _print(title: str, table: dict[str, dict[str, float]]) -> None:
    print(f"\n### {title}\n\n| where | µs (p50 unless it says mean) |\n|---|---|")
    for side, rows in table.items():
        for label, value in rows.items():
            print(f"| {label if side == 'client' else f'{side} — {label}'} | {value:,.0f} |")


async def _main(n: int, in_flight: int) -> None:
    calls = "one call at a time" if in_flight == 1 else f"{in_flight} calls in flight"
    with tempfile.TemporaryDirectory(prefix="contact-mcp-insitu-") as tmp:
        _print(f"Local store tools over stdio, {calls}", await local(n, in_flight, Path(tmp)))
        _print(f"Provider tool (Featurebase fake) over stdio, {calls}", await provider(n, in_flight, Path(tmp)))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.insitu", description=__doc__)
    parser.add_argument("--calls", type=int, default=1500, help="calls per kind of call (default 1500)")
    parser.add_argument("--in-flight", type=int, default=1, help="calls in flight on one session (default 1)")
    parser.add_argument("--serve", choices=("ours", "ours-fb", "trivial", "provider"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
    else:
        anyio.run(_main, args.calls, args.in_flight)


if __name__ == "__main__":
    main()
