"""The report: the machine, the versions, every scenario's table with its targets, as Markdown and as JSON.

`Results` collects what the scenarios measured (any of them may be absent with `--only`); `targets()` turns it into
PASS/MISS verdicts against the issue's targets; `markdown()` writes RESULTS.md and `as_json()` the raw numbers.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import psutil

from bench.carry import Carried, splice
from bench.coldstart import ColdStart, ImportProfile
from bench.duplicates import marked_section_from_file as duplicates_section
from bench.memory import MemoryRow
from bench.overhead import FLOOR_LIMIT_MS, Comparison, Floor
from bench.procs import ROOT
from bench.report_store import StoreResults, section_off_loop, store_sections, store_targets
from bench.scale import OPERATIONS, SCALE_GROWTH, ScaleResult, scale_table
from bench.stats import median
from bench.tables import Verdict, mark, round_spread, table

PACKAGES = ("contact-mcp", "mcp", "mcp-types", "httpx2", "pydantic", "pydantic-core", "uvicorn", "starlette", "anyio")

LOCAL_P50 = 1.3
PROVIDER_P50 = 1.15
PROVIDER_THROUGHPUT = 0.9
COLD_START = 1.1
MEMORY_GROWTH = 1.1


@dataclass
class Results:
    command: str
    quick: bool
    counts: dict[str, Any] = field(default_factory=dict[str, Any])
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    elapsed_s: float = 0.0
    durations: dict[str, float] = field(default_factory=dict[str, float])
    local: list[Comparison] = field(default_factory=list[Comparison])
    floor: Floor | None = None
    provider: list[Comparison] = field(default_factory=list[Comparison])
    cold: ColdStart | None = None
    imports: ImportProfile | None = None
    scale: ScaleResult | None = None
    memory: list[MemoryRow] = field(default_factory=list[MemoryRow])
    store: StoreResults = field(default_factory=StoreResults)
    carried: Carried | None = None  # what a partial run keeps from the report it replaces

    @property
    def floor_trusted(self) -> bool:
        return self.floor is not None and self.floor.state != "stalled"


# ---------- machine and versions ----------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }


def versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for package in PACKAGES:
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)


def commit() -> str:
    try:
        head = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" (src/ has uncommitted changes)" if dirty.stdout.strip() else "")


# ---------- targets ----------


def _worst(rows: list[Comparison], key: str, lowest: bool = False) -> Comparison:
    values = sorted(rows, key=lambda c: float(getattr(c, key)))
    return values[0] if lowest else values[-1]


def _where(c: Comparison) -> str:
    return f"{c.operation}, {c.transport}, {'sequential' if c.concurrency == 1 else f'{c.concurrency} concurrent'}"


def targets(results: Results) -> list[Verdict]:
    verdicts: list[Verdict] = []
    sequential = [c for c in results.local if c.concurrency == 1]
    if sequential:
        worst = _worst(sequential, "p50_ratio")
        verdicts.append(
            Verdict(
                f"Local store tool p50 ≤ {LOCAL_P50}× the bare SDK trivial tool, every transport",
                f"worst {worst.p50_ratio:.2f}× ({_where(worst)})",
                all(c.p50_ratio <= LOCAL_P50 for c in sequential),
            )
        )
    trusted = True if results.floor_trusted else None
    sequential = [c for c in results.provider if c.concurrency == 1]
    if sequential:
        worst = _worst(sequential, "p50_ratio")
        verdicts.append(
            Verdict(
                f"Provider tool p50 ≤ {PROVIDER_P50}× the bare SDK tool doing the same HTTP call",
                f"worst {worst.p50_ratio:.2f}× ({_where(worst)})",
                all(c.p50_ratio <= PROVIDER_P50 for c in sequential) and trusted,
            )
        )
    concurrent = [c for c in results.provider if c.concurrency > 1]
    if concurrent:
        worst = _worst(concurrent, "throughput_ratio", lowest=True)
        verdicts.append(
            Verdict(
                f"Provider tool throughput, 32 concurrent calls ≥ {PROVIDER_THROUGHPUT}× the bare SDK tool",
                f"worst {worst.throughput_ratio:.2f}× ({_where(worst)})",
                all(c.throughput_ratio >= PROVIDER_THROUGHPUT for c in concurrent) and trusted,
            )
        )
    if results.cold is not None:
        cold = results.cold
        verdicts.append(
            Verdict(
                f"Cold start (spawn to first tools/list, stdio) ≤ {COLD_START}× the bare SDK server",
                f"{cold.ratio:.2f}×, median of launch pairs (medians {cold.ours_median:.0f} ms vs "
                f"{cold.baseline_median:.0f} ms)",
                cold.ratio <= COLD_START,
            )
        )
    if results.scale is not None:
        scale = results.scale
        worst_op = max(OPERATIONS, key=scale.growth)
        verdicts.append(
            Verdict(
                f"Store p50 at {scale.sizes[-1]:,} contacts ≤ {SCALE_GROWTH}× its p50 at {scale.sizes[0]:,}",
                f"worst {scale.growth(worst_op):.2f}× ({worst_op})",
                all(scale.growth(op) <= SCALE_GROWTH for op in OPERATIONS),
            )
        )
    ours = [row for row in results.memory if row.server == "contact-mcp"]
    if ours:
        worst_row = max(ours, key=lambda r: r.peak_growth)
        first, last = worst_row.checkpoints[0], worst_row.checkpoints[-1]
        verdicts.append(
            Verdict(
                f"Peak RSS after {last:,} calls ≤ {MEMORY_GROWTH}× after {first:,} calls",
                f"worst {worst_row.peak_growth:.3f}× ({worst_row.transport}: "
                f"{worst_row.peak_mib[0]:.1f} → {worst_row.peak_mib[-1]:.1f} MiB)",
                all(row.peak_growth <= MEMORY_GROWTH for row in ours),
            )
        )
    return verdicts + store_targets(results.store, results.local)


# ---------- Markdown ----------


def _comparison_table(
    rows: list[Comparison], p50_target: float, throughput_target: float | None, trusted: bool
) -> list[str]:
    header = [
        "tool",
        "transport",
        "calls in flight",
        "contact-mcp p50 / p99 ms",
        "contact-mcp calls/s",
        "bare SDK p50 / p99 ms",
        "bare SDK calls/s",
        "p50 ratio",
        "throughput ratio",
        "judged ratio, per round (min–max)",
        "target",
    ]
    body: list[list[str]] = []
    for c in rows:
        if c.concurrency == 1:
            ok: bool | None = c.p50_ratio <= p50_target
            verdict = f"p50 ≤ {p50_target}×: {mark(ok if trusted else None)}"
        elif throughput_target is not None:
            ok = c.throughput_ratio >= throughput_target
            verdict = f"calls/s ≥ {throughput_target}×: {mark(ok if trusted else None)}"
        else:
            verdict = "(informational)"
        body.append(
            [
                c.operation,
                c.transport,
                str(c.concurrency),
                f"{c.ours.p50_ms:.3f} / {c.ours.p99_ms:.3f}",
                f"{c.ours.calls_per_s:,.0f}",
                f"{c.baseline.p50_ms:.3f} / {c.baseline.p99_ms:.3f}",
                f"{c.baseline.calls_per_s:,.0f}",
                f"{c.p50_ratio:.2f}×",
                f"{c.throughput_ratio:.2f}×",
                round_spread(c.round_p50_ratios if c.concurrency == 1 else c.round_throughput_ratios),
                verdict,
            ]
        )
    return table(header, body)


def _section_local(results: Results) -> list[str]:
    if not results.local:
        return []
    return [
        "## 1. Local store tool overhead",
        "",
        f"contact-mcp's `upsert_contact` (an existing contact from a pool of {results.counts['overhead']['pool']}, "
        "with a changed name, so every call "
        "writes) and `get_contact` on the embedded SQLite store, against the bare SDK server's trivial `ping` tool "
        "called with the same arguments. p50/p99 are per-call latencies seen by the client; calls/s is calls over "
        "the time spent in them (wall time of the batch with 32 in flight). With 32 calls in flight latency is "
        "mostly queueing, so the throughput ratio is the number to read there.",
        "",
        *_comparison_table(results.local, LOCAL_P50, None, True),
        "",
    ]


def _section_provider(results: Results) -> list[str]:
    if not results.provider and results.floor is None:
        return []
    lines = ["## 2. Provider tool overhead (Featurebase fake on loopback)", ""]
    if results.floor is not None:
        floor = results.floor
        state = {
            "ok": "OK",
            "slow": f"**above {FLOOR_LIMIT_MS:g} ms**: no delayed-ACK stall (that costs ~40 ms), but a slow or busy "
            "machine; both sides pay the same round trip, so the ratios hold but are diluted by it",
            "stalled": "**STALLED: a delayed-ACK stall; the provider ratios below mean nothing**",
        }[floor.state]
        lines += [
            f"Floor check: a bare httpx2 `POST /v2/contacts` to the fake on one reused connection takes "
            f"p50 {floor.p50_ms:.3f} ms, p99 {floor.p99_ms:.3f} ms over {floor.calls} calls "
            f"(should be well under {FLOOR_LIMIT_MS:g} ms): {state}. The fake runs in its own process on a listening "
            "socket created with `IPPROTO_TCP`, so asyncio enables TCP_NODELAY on its connections (without it, "
            "every reply on a reused connection waits ~40 ms for a delayed ACK and every ratio reads 1.00)."
            + (
                f" Negative control, the same POST to the fake on a socket created without `IPPROTO_TCP`: "
                f"p50 {floor.control_p50_ms:.1f} ms."
                if floor.control_p50_ms is not None
                else ""
            ),
            "",
        ]
    if results.provider:
        lines += [
            "contact-mcp with `CONTACT_MCP_PROVIDERS=featurebase` against a bare SDK tool that sends the same "
            "`POST /v2/contacts` with one shared `httpx2.AsyncClient` opened in its lifespan. Both upsert the same "
            "64 contacts in the same order, so the fake does the same work for each.",
            "",
            *_comparison_table(results.provider, PROVIDER_P50, PROVIDER_THROUGHPUT, results.floor_trusted),
            "",
        ]
    return lines


def _section_cold(results: Results) -> list[str]:
    lines: list[str] = []
    cold = results.cold
    if cold is not None:
        lines += [
            "## 3. Cold start",
            "",
            f"Spawn to the answer of the first `tools/list` over stdio, {len(cold.ours_ms)} launches each, "
            "alternating, from compiled bytecode (contact-mcp's package is compiled first: a launch does not write "
            "bytecode under PYTHONDONTWRITEBYTECODE) and after one untimed launch each (files cached).",
            "",
            *table(
                ["server", "median ms", "min ms", "max ms"],
                [
                    ["contact-mcp (`python -m contact_mcp serve`)", *_spread(cold.ours_ms)],
                    ["bare SDK (`python bench/baseline_server.py`)", *_spread(cold.baseline_ms)],
                    ["`python -c pass` (the interpreter alone)", *_spread(cold.python_ms)],
                ],
            ),
            "",
            f"Ratio: **{cold.ratio:.2f}×**, the median of the {len(cold.pair_ratios)} back-to-back launch pairs' "
            f"ratios (pairs {min(cold.pair_ratios):.2f}–{max(cold.pair_ratios):.2f}×; the ratio of the two medians "
            f"is {cold.ratio_of_medians:.2f}×). Target ≤ {COLD_START}×: {mark(cold.ratio <= COLD_START)}.",
            "",
        ]
    profile = results.imports
    if profile is not None:
        if cold is None:
            lines += ["## 3. Cold start", ""]
        lines += [
            f"Import profile: `{profile.command}` (median per module of the runs). Total self time of all imports: "
            f"contact-mcp {profile.ours_total_ms:.0f} ms, bare SDK server {profile.baseline_total_ms:.0f} ms.",
            "",
            "Top entries by cumulative time (indent = nesting):",
            "",
            *table(
                ["module", "self ms", "cumulative ms"],
                [
                    [("&nbsp;&nbsp;" * e.depth) + f"`{e.module}`", f"{e.self_ms:.1f}", f"{e.cumulative_ms:.1f}"]
                    for e in profile.top
                ],
            ),
            "",
            "Imported by contact-mcp at start-up but never by the bare SDK server (self time, by top-level package):",
            "",
            *table(
                ["package", "modules", "self ms"],
                [[f"`{p}`", str(n), f"{ms:.1f}"] for p, n, ms in profile.extra_packages[:20]],
            ),
            "",
        ]
    return lines


def _spread(values: list[float]) -> list[str]:
    return [f"{median(values):.0f}", f"{min(values):.0f}", f"{max(values):.0f}"]


def _section_scale(results: Results) -> list[str]:
    scale = results.scale
    if scale is None:
        return []
    header, body = scale_table(scale)
    return [
        "## 4. Store scale",
        "",
        f"`LocalStore` in-process (no transport), one file per size filled through `upsert_contact` "
        f"({scale.populate_s:.0f} s to populate all; {scale.storage_mib:.1f} MiB at {scale.sizes[-1]:,} contacts). "
        "Each operation is timed on the files in turn, one call on each, so drift in the machine's speed falls on "
        "every size alike. Inserts add new contacts (up to half the size again); the other operations use keys "
        "drawn uniformly from each file's contacts.",
        "",
        *table(header, body),
        "",
    ]


def _section_memory(results: Results) -> list[str]:
    if not results.memory:
        return []
    first, last = results.memory[0].checkpoints[0], results.memory[0].checkpoints[-1]
    body = [
        [
            row.server,
            row.transport,
            f"{row.rss_mib[0]:.1f} / {row.peak_mib[0]:.1f}",
            f"{row.rss_mib[-1]:.1f} / {row.peak_mib[-1]:.1f}",
            f"{row.peak_growth:.3f}×",
            f"≤ {MEMORY_GROWTH}×: {mark(row.peak_growth <= MEMORY_GROWTH)}" if row.server == "contact-mcp" else "",
        ]
        for row in results.memory
    ]
    return [
        "## 5. Memory",
        "",
        "The server process's RSS / peak RSS (VmHWM), in MiB, after each number of tool calls (32 in flight on one "
        "session; contact-mcp alternates an upsert that creates a new contact with a get, the bare SDK server "
        "answers the same calls with `ping`).",
        "",
        *table(
            ["server", "transport", f"after {first:,} calls", f"after {last:,} calls", "peak growth", "target"], body
        ),
        "",
    ]


def markdown(results: Results) -> str:
    verdicts = targets(results)
    lines = [
        "# contact-mcp benchmarks: our cost next to the bare MCP SDK",
        "",
        f"Produced by `{results.command}` on {results.started:%Y-%m-%d %H:%M} UTC at commit {commit()}, "
        f"in {results.elapsed_s / 60:.1f} minutes"
        + (" (" + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in results.durations.items()) + ")")
        + ". Raw numbers: [results.json](results.json).",
        "",
    ]
    if results.quick:
        lines += ["**`--quick` run: tiny counts, for checking that the benchmark works. Do not read the numbers.**", ""]
    lines += [
        "## Targets",
        "",
        *table(
            ["target", "measured", "verdict"],
            [[v.target, v.measured, mark(v.ok)] for v in verdicts]
            + [
                [t["target"], t["measured"], "**MISS**" if t["verdict"] == "MISS" else t["verdict"]]
                for t in (results.carried.targets if results.carried else [])
            ],
        ),
        "",
        "Where a target is missed, [FINDINGS.md](FINDINGS.md) says what costs the time and what would fix it; "
        "`python -m bench.insitu` measures each of our functions inside the running server processes.",
        "",
        "## Machine and versions",
        "",
        *table(["", ""], [[key, value] for key, value in {**machine(), **versions()}.items()]),
        "",
        "## How it is measured",
        "",
        "* Client and servers share this machine's cores. Every comparison runs contact-mcp and its baseline in the "
        "same run, connected at the same time, warmed up, then in A/B rounds (the order flips each round), so "
        "noise falls on both sides. Within a round, sequential calls alternate one by one (one contact-mcp call, "
        "one baseline call); with 32 in flight each side runs its batch in turn.",
        "* Transports: in-memory `mcp.Client(server)` in the benchmark process; stdio (`mcp.Client` spawns the "
        'server); streamable HTTP to a uvicorn process on 127.0.0.1 (`mcp.Client(url)`, default `mode="auto"`, '
        "one POST per call). Both servers log at WARNING and run uvicorn with the same settings. HTTP security: "
        "both apps have DNS-rebinding protection on with the same loopback Host/Origin allowlist (contact-mcp's "
        "default on 127.0.0.1); no bearer token on either.",
        '* "calls in flight" 1 = sequential; 32 = 32 tasks sharing one client session. Latency targets are '
        "judged on sequential calls, the throughput target on 32 in flight.",
        "* Percentiles are nearest-rank over all rounds' samples. The verdict uses the ratio over all rounds; "
        "the per-round column shows the same ratio (p50 when 1 call is in flight, calls/s with 32) for each A/B "
        "round alone, so the spread is the noise of this run.",
        f"* Counts: `{json.dumps(results.counts, separators=(',', ':'))}` (per side; `rounds` × `sequential_calls` "
        "or `concurrent_calls` samples after `warmup` calls).",
        "",
        *_section_local(results),
        *section_off_loop(results.local),
        *_section_provider(results),
        *_section_cold(results),
        *_section_scale(results),
        *_section_memory(results),
        *store_sections(results.store),
        *duplicates_section(),
    ]
    text = "\n".join(lines).rstrip() + "\n"
    return splice(text, results.carried) if results.carried else text


def as_json(results: Results) -> dict[str, Any]:
    fresh = _fresh_json(results)
    carried = results.carried
    if carried is None:
        return fresh
    raw = {key: value for key, value in carried.raw.items() if not fresh.get(key)}
    return {**fresh, **raw, "targets": fresh["targets"] + carried.targets, "carried": carried.label}


def _fresh_json(results: Results) -> dict[str, Any]:
    return {
        "command": results.command,
        "quick": results.quick,
        "counts": results.counts,
        "started": results.started.isoformat(),
        "elapsed_s": results.elapsed_s,
        "durations_s": results.durations,
        "commit": commit(),
        "machine": machine(),
        "versions": versions(),
        "targets": [v.as_dict() for v in targets(results)],
        "local": [c.as_dict() for c in results.local],
        "floor": results.floor.as_dict() if results.floor else None,
        "provider": [c.as_dict() for c in results.provider],
        "cold_start": results.cold.as_dict() if results.cold else None,
        "imports": results.imports.as_dict() if results.imports else None,
        "scale": results.scale.as_dict() if results.scale else None,
        "memory": [row.as_dict() for row in results.memory],
        **results.store.as_dict(),
    }
