"""Scenario 3: cold start, and what our start-up imports.

Cold start is what a stdio host pays on every launch: from spawning the process to the answer of the first
`tools/list`. contact-mcp (`python -m contact_mcp serve`) and the bare SDK server (`bench/baseline_server.py`) are
launched alternately, from compiled bytecode: contact-mcp's package is compiled first (an untimed launch alone
would not write it under PYTHONDONTWRITEBYTECODE, and a source tree changed since its last import would be
recompiled on every launch), then each server is launched once untimed to warm the OS file cache. The bare SDK
server is a script, which Python compiles on every launch, as it does for anyone who runs an SDK server that way;
it is 130 lines. The verdict is the median of the back-to-back launch pairs' ratios. The import profile runs the
same commands under `python -X importtime` with stdin at EOF (each server starts, reads EOF and exits) and keeps the
median of a few runs per module.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp import Client

import contact_mcp
from bench.procs import ROOT, ServerSpec, clean_env, stdio_params
from bench.stats import median, ratio


@dataclass(frozen=True)
class ColdStart:
    ours_ms: list[float]
    baseline_ms: list[float]
    python_ms: list[float]  # `python -c pass`: the interpreter's own share

    @property
    def ours_median(self) -> float:
        return median(self.ours_ms)

    @property
    def baseline_median(self) -> float:
        return median(self.baseline_ms)

    @property
    def pair_ratios(self) -> list[float]:
        """Each launch of ours over the baseline's launch next to it (they alternate, ABBA...)."""
        return [ratio(ours, base) for ours, base in zip(self.ours_ms, self.baseline_ms, strict=True)]

    @property
    def ratio(self) -> float:
        """The median pair ratio: the two launches of a pair run back to back, so a slow spell of the machine, which
        moves single launches by ±100 ms here, lands on both; a ratio of the two medians does not cancel it."""
        return median(self.pair_ratios)

    @property
    def ratio_of_medians(self) -> float:
        return ratio(self.ours_median, self.baseline_median)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ours_ms": self.ours_ms,
            "baseline_ms": self.baseline_ms,
            "python_ms": self.python_ms,
            "ours_median_ms": self.ours_median,
            "baseline_median_ms": self.baseline_median,
            "pair_ratios": self.pair_ratios,
            "ratio": self.ratio,
            "ratio_of_medians": self.ratio_of_medians,
        }


async def spawn_to_tools_list(spec: ServerSpec) -> float:
    """Milliseconds from spawning `spec` over stdio to the answer of its first tools/list."""
    started = time.perf_counter()
    async with Client(stdio_params(spec)) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - started
    if not tools.tools:
        raise RuntimeError(f"{spec.label} listed no tools")
    return elapsed * 1000


def _python_pass_ms() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (time.perf_counter() - started) * 1000


def compile_package() -> None:
    """Write contact-mcp's bytecode caches, whatever PYTHONDONTWRITEBYTECODE says: an install does the same."""
    if not compileall.compile_dir(Path(contact_mcp.__file__).parent, quiet=1):
        raise RuntimeError("compiling contact_mcp failed")


async def cold_start(
    ours: ServerSpec, baseline: ServerSpec, runs: int, log: Callable[[str], None], *, warm_up: bool = True
) -> ColdStart:
    compile_package()
    for spec in (ours, baseline) if warm_up else ():
        await spawn_to_tools_list(spec)  # untimed: warms the OS file cache
    ours_ms: list[float] = []
    baseline_ms: list[float] = []
    python_ms: list[float] = []
    for run in range(runs):
        order = [(ours, ours_ms), (baseline, baseline_ms)]
        if run % 2:
            order.reverse()
        for spec, sink in order:
            sink.append(await spawn_to_tools_list(spec))
        python_ms.append(_python_pass_ms())
    result = ColdStart(ours_ms, baseline_ms, python_ms)
    log(f"  cold start: ours {result.ours_median:.0f} ms, baseline {result.baseline_median:.0f} ms")
    return result


# ---------- python -X importtime ----------


@dataclass(frozen=True)
class ImportEntry:
    module: str
    depth: int
    self_ms: float
    cumulative_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "depth": self.depth,
            "self_ms": self.self_ms,
            "cumulative_ms": self.cumulative_ms,
        }


def parse_importtime(stderr: str) -> list[ImportEntry]:
    entries: list[ImportEntry] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        entries.append(ImportEntry(name.strip(), depth, int(self_us) / 1000, int(cumulative_us) / 1000))
    return entries


def _importtime(argv: list[str], env: dict[str, str]) -> list[ImportEntry]:
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=ROOT,
        env=clean_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    entries = parse_importtime(done.stderr)
    if not entries:
        raise RuntimeError(f"no import profile from {argv}: {done.stderr[-500:]}")
    return entries


def median_profile(argv: list[str], env: dict[str, str], runs: int) -> list[ImportEntry]:
    """Median self and cumulative time per entry over `runs` runs, in the first run's import order.

    An entry is (module, depth): a module can be listed twice, when importing it first imports its parent package.
    """
    profiles = [_importtime(argv, env) for _ in range(runs)]
    by_entry: dict[tuple[str, int], list[ImportEntry]] = {}
    for profile in profiles:
        for entry in profile:
            by_entry.setdefault((entry.module, entry.depth), []).append(entry)
    return [
        ImportEntry(
            entry.module,
            entry.depth,
            median([e.self_ms for e in by_entry[entry.module, entry.depth]]),
            median([e.cumulative_ms for e in by_entry[entry.module, entry.depth]]),
        )
        for entry in profiles[0]
    ]


@dataclass(frozen=True)
class ImportProfile:
    command: str
    top: list[ImportEntry]  # by cumulative time
    extra_packages: list[tuple[str, int, float]]  # (top-level package, modules, self ms) the baseline never imports
    ours_total_ms: float
    baseline_total_ms: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "top": [entry.as_dict() for entry in self.top],
            "extra_packages": [{"package": p, "modules": n, "self_ms": ms} for p, n, ms in self.extra_packages],
            "ours_total_ms": self.ours_total_ms,
            "baseline_total_ms": self.baseline_total_ms,
        }


def import_profile(ours: ServerSpec, baseline: ServerSpec, runs: int, top: int = 20) -> ImportProfile:
    ours_argv = ours.argv("stdio", 0)
    ours_entries = median_profile(ours_argv, dict(ours.env), runs)
    base_entries = median_profile(baseline.argv("stdio", 0), dict(baseline.env), runs)
    seen_by_baseline = {entry.module for entry in base_entries}
    extra: dict[str, tuple[int, float]] = {}
    for entry in ours_entries:
        if entry.module in seen_by_baseline:
            continue
        package = entry.module.split(".", 1)[0]
        count, total = extra.get(package, (0, 0.0))
        extra[package] = (count + 1, total + entry.self_ms)
    by_cumulative = sorted(ours_entries, key=lambda e: e.cumulative_ms, reverse=True)
    unique = list({entry.module: entry for entry in reversed(by_cumulative)}.values())[::-1]
    return ImportProfile(
        command="python -X importtime " + " ".join(ours_argv[1:]) + " < /dev/null",
        top=unique[:top],
        extra_packages=sorted(((p, n, ms) for p, (n, ms) in extra.items()), key=lambda x: x[2], reverse=True),
        ours_total_ms=sum(entry.self_ms for entry in ours_entries),
        baseline_total_ms=sum(entry.self_ms for entry in base_entries),
    )
