"""Scenarios 1 and 2: per-call overhead of contact-mcp's tools against a bare SDK server, transport by transport.

Both servers are connected at once; each comparison warms both up, then runs A/B rounds (the order flips every
round, ABBA..., so drift and machine noise land on both sides alike). A round is `n` calls per side: one at a
time, alternating call by call between the sides, or a batch from `concurrency` tasks sharing the one client
session, one side's batch after the other's. Every call's result is checked: an error result stops the run,
because an error path is not the path being measured.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client
from tests.fakes.featurebase import API_KEY

from bench import baseline_server
from bench.procs import TRANSPORTS, Transport, baseline_spec, connect, contact_mcp_spec, fake_featurebase
from bench.stats import Summary, median, ratio, summarize
from bench.workloads import ArgsFn, BenchError, gets, seed_contacts, upserts
from contact_mcp import build_server, load_settings

CONCURRENCY = (1, 32)


@dataclass(frozen=True)
class OverheadCounts:
    warmup: int
    rounds: int
    sequential_calls: int  # per side per round
    concurrent_calls: int
    floor_calls: int
    pool: int  # distinct contacts the local upserts cycle through (and get_contact reads)


@dataclass
class Workload:
    """One side of a comparison: a client, the tool it calls and the arguments of call number i."""

    client: Client
    tool: str
    args: ArgsFn
    calls: itertools.count[int] = field(default_factory=itertools.count)


@dataclass
class Comparison:
    scenario: str
    operation: str
    transport: Transport
    concurrency: int
    ours: Summary
    baseline: Summary
    round_p50_ratios: list[float]
    round_throughput_ratios: list[float]

    @property
    def p50_ratio(self) -> float:
        return ratio(self.ours.p50_ms, self.baseline.p50_ms)

    @property
    def p99_ratio(self) -> float:
        return ratio(self.ours.p99_ms, self.baseline.p99_ms)

    @property
    def throughput_ratio(self) -> float:
        return ratio(self.ours.calls_per_s, self.baseline.calls_per_s)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "operation": self.operation,
            "transport": self.transport,
            "concurrency": self.concurrency,
            "ours": self.ours.as_dict(),
            "baseline": self.baseline.as_dict(),
            "p50_ratio": self.p50_ratio,
            "p99_ratio": self.p99_ratio,
            "throughput_ratio": self.throughput_ratio,
            "round_p50_ratios": self.round_p50_ratios,
            "round_throughput_ratios": self.round_throughput_ratios,
        }


async def run_calls(work: Workload, n: int, concurrency: int) -> tuple[list[int], float]:
    """`n` calls from `concurrency` tasks on one session; (latency of each call in ns, wall seconds)."""
    samples: list[int] = []
    remaining = iter(range(n))

    async def worker() -> None:
        for _ in remaining:
            args = work.args(next(work.calls))
            started = time.perf_counter_ns()
            result = await work.client.call_tool(work.tool, args)
            samples.append(time.perf_counter_ns() - started)
            if result.is_error:
                text = " ".join(getattr(block, "text", "") for block in result.content)
                raise BenchError(f"{work.tool} failed during the benchmark: {text[:300]}")

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for _ in range(min(concurrency, n)):
            tasks.start_soon(worker)
    return samples, time.perf_counter() - started


async def run_alternating(sides: dict[str, Workload], n: int) -> dict[str, tuple[list[int], float]]:
    """`n` sequential calls per side, one side's call then the other's; per side (latencies in ns, seconds spent
    in its calls)."""
    got: dict[str, list[int]] = {side: [] for side in sides}
    for _ in range(n):
        for side, work in sides.items():
            samples, _ = await run_calls(work, 1, 1)
            got[side] += samples
    return {side: (samples, sum(samples) / 1e9) for side, samples in got.items()}


async def compare(
    scenario: str,
    operation: str,
    transport: Transport,
    ours: Workload,
    base: Workload,
    concurrency: int,
    counts: OverheadCounts,
) -> Comparison:
    n = counts.sequential_calls if concurrency == 1 else counts.concurrent_calls
    for work in (ours, base):
        await run_calls(work, counts.warmup, concurrency)
    samples: dict[str, list[int]] = {"ours": [], "base": []}
    wall = {"ours": 0.0, "base": 0.0}
    round_ratios: list[float] = []
    round_throughputs: list[float] = []
    for round_no in range(counts.rounds):
        order = [("ours", ours), ("base", base)]
        if round_no % 2:
            order.reverse()
        per_round: dict[str, Summary] = {}
        if concurrency == 1:
            # One call each in turn: drift in the machine's speed, even within a round, hits both sides alike.
            got_both = await run_alternating(dict(order), n)
        else:
            got_both = {side: await run_calls(work, n, concurrency) for side, work in order}
        for side, (got, seconds) in got_both.items():
            samples[side] += got
            wall[side] += seconds
            per_round[side] = summarize(got, seconds)
        round_ratios.append(ratio(per_round["ours"].p50_ms, per_round["base"].p50_ms))
        round_throughputs.append(ratio(per_round["ours"].calls_per_s, per_round["base"].calls_per_s))
    return Comparison(
        scenario=scenario,
        operation=operation,
        transport=transport,
        concurrency=concurrency,
        ours=summarize(samples["ours"], wall["ours"]),
        baseline=summarize(samples["base"], wall["base"]),
        round_p50_ratios=round_ratios,
        round_throughput_ratios=round_throughputs,
    )


# ---------- scenario 1: the local store ----------


async def local_overhead(workdir: Path, counts: OverheadCounts, log: Callable[[str], None]) -> list[Comparison]:
    results: list[Comparison] = []
    pool = counts.pool
    for transport in TRANSPORTS:
        db = workdir / f"overhead-{transport}.db"
        ours_spec = contact_mcp_spec(
            {"CONTACT_MCP_DB": str(db), "CONTACT_MCP_PROVIDERS": "local"},
            lambda db=db: build_server(load_settings(db=str(db), providers=("local",), log_level="WARNING")),
        )
        base_spec = baseline_spec("trivial", {}, baseline_server.trivial_server)
        async with connect(ours_spec, transport) as ours, connect(base_spec, transport) as base:
            ids = await seed_contacts(ours.client, pool)
            for operation, args in (("upsert_contact", upserts(pool)), ("get_contact", gets(ids))):
                for concurrency in CONCURRENCY:
                    log(f"  local {operation} over {transport}, concurrency {concurrency}")
                    comparison = await compare(
                        "local",
                        operation,
                        transport,
                        Workload(ours.client, operation, args),
                        Workload(base.client, "ping", args),
                        concurrency,
                        counts,
                    )
                    results.append(comparison)
    return results


# ---------- scenario 2: a provider tool ----------


FLOOR_LIMIT_MS = 1.0
STALL_MS = 20.0  # a reply held back by a delayed ACK costs ~40 ms


@dataclass(frozen=True)
class Floor:
    """The bare round trip to the fake. `ok` under 1 ms; `slow` above it (a slow or busy machine: both sides pay the
    same round trip, so ratios still hold, only diluted); `stalled` at delayed-ACK scale, where no ratio means a
    thing."""

    p50_ms: float
    p99_ms: float
    calls: int
    control_p50_ms: float | None = None  # the same POST to a fake whose socket is not IPPROTO_TCP

    @property
    def state(self) -> Literal["ok", "slow", "stalled"]:
        if self.p50_ms < FLOOR_LIMIT_MS:
            return "ok"
        return "slow" if self.p50_ms < STALL_MS else "stalled"

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "calls": self.calls,
            "state": self.state,
            "control_p50_ms": self.control_p50_ms,
        }


async def http_floor(fake_url: str, calls: int) -> Floor:
    """A bare httpx2 POST to the fake on one reused connection: the provider round trip no server can beat."""
    headers = {"Authorization": f"Bearer {API_KEY}", "Featurebase-Version": baseline_server.FEATUREBASE_VERSION}
    samples: list[int] = []
    async with httpx2.AsyncClient(base_url=fake_url, headers=headers) as http:
        for i in range(calls + 20):
            started = time.perf_counter_ns()
            response = await http.post("/v2/contacts", json={"userId": f"floor-{i % 16}", "name": f"Floor {i}"})
            elapsed = time.perf_counter_ns() - started
            response.raise_for_status()
            if i >= 20:
                samples.append(elapsed)
    summary = summarize(samples, 1.0)
    return Floor(p50_ms=summary.p50_ms, p99_ms=summary.p99_ms, calls=len(samples))


async def checked_floor(fake_url: str, calls: int, control_calls: int) -> Floor:
    """The floor, and the negative control that shows the check would catch a delayed-ACK stall."""
    floor = await http_floor(fake_url, calls)
    with fake_featurebase(nodelay=False) as control_url:
        control = await http_floor(control_url, control_calls)
    return replace(floor, control_p50_ms=control.p50_ms)


async def provider_overhead(
    fake_url: str, workdir: Path, counts: OverheadCounts, log: Callable[[str], None]
) -> tuple[Floor, list[Comparison]]:
    floor = await checked_floor(fake_url, counts.floor_calls, control_calls=min(counts.floor_calls, 40))
    log(
        f"  floor: bare httpx2 POST to the fake p50 {floor.p50_ms:.3f} ms, p99 {floor.p99_ms:.3f} ms "
        f"(control without IPPROTO_TCP: p50 {floor.control_p50_ms or 0:.1f} ms)"
    )
    if floor.state != "ok":
        log(
            f"  WARNING: the loopback floor is {floor.p50_ms:.1f} ms (should be well under {FLOOR_LIMIT_MS:g} ms): "
            + ("a slow or busy machine" if floor.state == "slow" else "a delayed-ACK stall: provider ratios untrusted")
        )
    # The history of the provider's writes goes to a file of the run's own, never the user's default store.
    history_db = str(workdir / "provider-history.db")
    env = {
        "CONTACT_MCP_PROVIDERS": "featurebase",
        "FEATUREBASE_API_KEY": API_KEY,
        "FEATUREBASE_BASE_URL": fake_url,
        "CONTACT_MCP_DB": history_db,
    }
    ours_spec = contact_mcp_spec(
        env,
        lambda: build_server(
            load_settings(
                providers=("featurebase",),
                featurebase_api_key=API_KEY,
                featurebase_base_url=fake_url,
                db=history_db,
                log_level="WARNING",
            )
        ),
    )
    base_spec = baseline_spec(
        "provider",
        {"BENCH_FAKE_URL": fake_url, "BENCH_FAKE_KEY": API_KEY},
        lambda: baseline_server.provider_server(fake_url, API_KEY),
    )
    results: list[Comparison] = []
    args = upserts(64)  # a small pool keeps the fake's state (and so its work) constant
    for transport in TRANSPORTS:
        async with connect(ours_spec, transport) as ours, connect(base_spec, transport) as base:
            for concurrency in CONCURRENCY:
                log(f"  provider upsert_contact over {transport}, concurrency {concurrency}")
                comparison = await compare(
                    "provider",
                    "upsert_contact",
                    transport,
                    Workload(ours.client, "upsert_contact", args),
                    Workload(base.client, "upsert_contact", args),
                    concurrency,
                    counts,
                )
                results.append(comparison)
    return floor, results


def summary_line(c: Comparison) -> str:
    return (
        f"    ours p50 {c.ours.p50_ms:.3f} ms, {c.ours.calls_per_s:.0f}/s | baseline p50 {c.baseline.p50_ms:.3f} ms, "
        f"{c.baseline.calls_per_s:.0f}/s | p50 x{c.p50_ratio:.2f} (rounds {median(c.round_p50_ratios):.2f}), "
        f"throughput x{c.throughput_ratio:.2f}"
    )
