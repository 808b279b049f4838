"""Scenario 7: calls/s with 64 concurrent clients on one and on three stateless replicas sharing one database.

Three `contact-mcp serve --transport http --stateless` processes run on one store (PostgreSQL in the full run) for
the whole scenario. For each workload (a tool, called as a 2025-era or a 2026-07-28 client), `wrk`
(`bench.loadgen`) keeps 64 keep-alive connections busy, sent either all to the first replica or spread over the
three (thread i to replica i % 3); the two set-ups alternate run by run (ABBA), so machine drift falls on both.
Idle replicas cost nothing, so "one replica" is the first of the three alone.

Around every run the CPU time of each party is read (the replicas, PostgreSQL's processes, wrk, the whole machine),
so the report can say what bounds the throughput; then `py-spy` samples one replica under each set-up to show
where its time goes. It samples only the thread holding the GIL (`--gil`), so its share of the wall time is how
busy the interpreter was; work that releases the GIL (socket I/O, psycopg's C parts, the kernel) is in the CPU
times but not in the samples.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psutil
from mcp import Client

from bench.loadgen import Era, WrkRun, bodies_file, run_wrk
from bench.procs import ROOT, contact_mcp_spec, http_replicas
from bench.stats import median, ratio
from bench.workloads import BenchError, seed_contacts, tool_args

PYSPY_INSTALL_HINT = "py-spy is not installed (`pip install py-spy`, in the dev extra)"


@dataclass(frozen=True)
class ReplicaCounts:
    workloads: tuple[tuple[Era, str], ...]  # (protocol era of the requests, tool)
    profiled: tuple[Era, str]
    replicas: int
    connections: int
    threads: int  # wrk threads; thread i talks to replica i % replicas, so each gets its share of connections
    pool: int
    bodies: int
    warmup_s: float
    round_s: float
    rounds: int
    profile_s: float


@dataclass(frozen=True)
class CpuShare:
    """CPU seconds each party spent during one run, and the run's wall time."""

    wall_s: float
    replicas_s: float
    database_s: float
    wrk_s: float
    machine_busy_s: float  # every process on the machine, user + system (+ irq)
    cores: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "wall_s": self.wall_s,
            "replicas_s": self.replicas_s,
            "database_s": self.database_s,
            "wrk_s": self.wrk_s,
            "machine_busy_s": self.machine_busy_s,
            "cores": self.cores,
        }


@dataclass(frozen=True)
class ReplicaRun:
    wrk: WrkRun
    cpu: CpuShare

    def as_dict(self) -> dict[str, Any]:
        return {"wrk": self.wrk.as_dict(), "cpu": self.cpu.as_dict()}


@dataclass
class ReplicaComparison:
    tool: str
    era: Era
    replicas: int
    one: list[ReplicaRun] = field(default_factory=list["ReplicaRun"])
    many: list[ReplicaRun] = field(default_factory=list["ReplicaRun"])

    @staticmethod
    def calls_per_s(runs: list[ReplicaRun]) -> float:
        return sum(r.wrk.requests for r in runs) / sum(r.wrk.seconds for r in runs)

    @property
    def ratio(self) -> float:
        return ratio(self.calls_per_s(self.many), self.calls_per_s(self.one))

    @property
    def round_ratios(self) -> list[float]:
        return [ratio(m.wrk.calls_per_s, o.wrk.calls_per_s) for o, m in zip(self.one, self.many, strict=True)]

    @staticmethod
    def p50_ms(runs: list[ReplicaRun]) -> float:
        return median([r.wrk.p50_ms for r in runs])

    @staticmethod
    def cpu_ms_per_call(runs: list[ReplicaRun]) -> dict[str, float]:
        calls = sum(r.wrk.requests for r in runs)
        return {
            "replicas": 1000 * sum(r.cpu.replicas_s for r in runs) / calls,
            "database": 1000 * sum(r.cpu.database_s for r in runs) / calls,
            "wrk": 1000 * sum(r.cpu.wrk_s for r in runs) / calls,
        }

    @staticmethod
    def replica_cores(runs: list[ReplicaRun]) -> float:
        """Cores the replicas kept busy together (1.0: one core's worth)."""
        return sum(r.cpu.replicas_s for r in runs) / sum(r.cpu.wall_s for r in runs)

    @property
    def ceiling(self) -> float:
        """The most any number of replicas could reach over one on this machine, at one replica's CPU cost per
        call: every core busy with replicas, database and load generator, over one replica's calls/s."""
        cost_ms = sum(self.cpu_ms_per_call(self.one).values())
        cores = self.one[0].cpu.cores if self.one else 1
        return ratio(1000 * cores / cost_ms, self.calls_per_s(self.one)) if cost_ms else 0.0

    @staticmethod
    def machine_busy(runs: list[ReplicaRun]) -> float:
        """Share of all cores busy during the runs (0..1)."""
        return sum(r.cpu.machine_busy_s for r in runs) / sum(r.cpu.wall_s * r.cpu.cores for r in runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "era": self.era,
            "replicas": self.replicas,
            "one": [r.as_dict() for r in self.one],
            "many": [r.as_dict() for r in self.many],
            "calls_per_s_one": self.calls_per_s(self.one),
            "calls_per_s_many": self.calls_per_s(self.many),
            "ratio": self.ratio,
            "round_ratios": self.round_ratios,
            "cpu_ms_per_call_one": self.cpu_ms_per_call(self.one),
            "cpu_ms_per_call_many": self.cpu_ms_per_call(self.many),
            "replica_cores_one": self.replica_cores(self.one),
            "replica_cores_many": self.replica_cores(self.many),
            "ceiling": self.ceiling,
            "machine_busy_one": self.machine_busy(self.one),
            "machine_busy_many": self.machine_busy(self.many),
        }


@dataclass(frozen=True)
class Profile:
    """py-spy's samples of one replica while `replicas` replicas served `tool` (only the GIL holder's stacks)."""

    tool: str
    replicas: int
    seconds: float
    rate: int
    samples: int
    by_package: list[tuple[str, float]]  # share of samples whose innermost frame is in that package
    by_function: list[tuple[str, float]]  # innermost frames, the most sampled first
    inclusive: list[tuple[str, float]]  # share of samples with a frame in that package below the event loop
    error: str | None = None

    @property
    def gil_busy(self) -> float:
        """Share of the wall time some thread of the replica held the GIL (ran Python)."""
        expected = self.seconds * self.rate
        return self.samples / expected if expected else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "replicas": self.replicas,
            "seconds": self.seconds,
            "rate": self.rate,
            "samples": self.samples,
            "gil_busy": self.gil_busy,
            "by_package": self.by_package,
            "by_function": self.by_function,
            "inclusive": self.inclusive,
            "error": self.error,
        }


@dataclass
class ReplicaResult:
    database: str  # "PostgreSQL 15.x" or "SQLite"
    counts: ReplicaCounts
    comparisons: list[ReplicaComparison]
    profiles: list[Profile]

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "comparisons": [c.as_dict() for c in self.comparisons],
            "profiles": [p.as_dict() for p in self.profiles],
        }


def _cpu_s(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def _family_cpu_s(pid: int | None) -> float:
    """CPU seconds of a process, its live children and the children it has reaped (PostgreSQL's postmaster: its
    backends come and go as pools reconnect, and a backend that exits takes its CPU time to the postmaster's
    `cutime`); 0 for None."""
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        live = [child.pid for child in root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    return times.user + times.system + times.children_user + times.children_system + _cpu_s(live)


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _measured_run(replica_pids: Sequence[int], database_pid: int | None, run: Callable[[], WrkRun]) -> ReplicaRun:
    replicas_before, database_before = _cpu_s(replica_pids), _family_cpu_s(database_pid)
    machine_before, started = _machine_busy_s(), time.perf_counter()
    wrk = run()
    wall = time.perf_counter() - started
    cpu = CpuShare(
        wall_s=wall,
        replicas_s=_cpu_s(replica_pids) - replicas_before,
        database_s=_family_cpu_s(database_pid) - database_before,
        wrk_s=wrk.cpu_s,
        machine_busy_s=_machine_busy_s() - machine_before,
        cores=psutil.cpu_count() or 1,
    )
    return ReplicaRun(wrk, cpu)


async def replica_throughput(
    db: str,
    database: str,
    database_pid: int | None,
    counts: ReplicaCounts,
    workdir: Path,
    log: Callable[[str], None],
) -> ReplicaResult:
    """`db` is the CONTACT_MCP_DB every replica shares; `database_pid` its server's process (None for SQLite)."""
    env = {"CONTACT_MCP_DB": db, "CONTACT_MCP_PROVIDERS": "local"}
    # Stateless: 2025-era requests need it to be answered without a session; 2026-07-28 ones never have one.
    spec = contact_mcp_spec(env, lambda: None, ("--stateless",))
    comparisons: list[ReplicaComparison] = []
    profiles: list[Profile] = []
    with http_replicas(spec, counts.replicas) as replicas:
        ports = [port for port, _ in replicas]
        pids = [pid for _, pid in replicas]
        async with Client(f"http://127.0.0.1:{ports[0]}/mcp") as client:
            ids = await seed_contacts(client, counts.pool)

        def wrk_on(targets: Sequence[int], era: Era, tool: str, bodies: Path, seconds: float) -> WrkRun:
            return run_wrk(
                targets,
                tool,
                bodies,
                era,
                connections=counts.connections,
                threads=counts.threads,
                duration_s=seconds,
            )

        for era, tool in counts.workloads:
            bodies = bodies_file(workdir, tool, tool_args(tool, ids), counts.bodies, era)
            comparison = ReplicaComparison(tool, era, counts.replicas)
            if counts.warmup_s > 0:
                log(f"  {tool} ({era}): warm-up on {len(ports)} replicas")
                wrk_on(ports, era, tool, bodies, counts.warmup_s)
            for round_no in range(counts.rounds):
                order = [1, counts.replicas] if round_no % 2 == 0 else [counts.replicas, 1]
                for n in order:
                    load = partial(wrk_on, ports[:n], era, tool, bodies, counts.round_s)
                    run = _measured_run(pids, database_pid, load)
                    (comparison.one if n == 1 else comparison.many).append(run)
                    log(f"    {n} replica(s): {run.wrk.calls_per_s:,.0f} calls/s, p50 {run.wrk.p50_ms:.1f} ms")
            comparisons.append(comparison)
            log(
                f"  {tool} ({era}): {comparison.calls_per_s(comparison.one):,.0f} → "
                f"{comparison.calls_per_s(comparison.many):,.0f} calls/s (×{comparison.ratio:.2f})"
            )
        if counts.profile_s > 0:
            era, tool = counts.profiled
            bodies = bodies_file(workdir, tool, tool_args(tool, ids), counts.bodies, era)
            for n in (1, counts.replicas):
                load = partial(wrk_on, ports[:n], era, tool, bodies, counts.profile_s + 1)
                profiles.append(_profiled(pids[0], tool, n, counts.profile_s, workdir, load))
    return ReplicaResult(database, counts, comparisons, profiles)


# ---------- the profile ----------

PROFILE_RATE = 200
# Where the event loop hands control to a callback or a task: asyncio's `Handle._run`; under uvloop the loop is C
# code, so a task's frames sit right on `Runner.run`, which asyncio.run (and uvicorn) start the loop from.
_LOOP_CALLBACKS = ("Handle._run (", "Runner.run (")
_TOP = 12


def _profiled(pid: int, tool: str, replicas: int, seconds: float, workdir: Path, load: Callable[[], WrkRun]) -> Profile:
    """py-spy on replica `pid` for `seconds` while `load()` runs wrk (which lasts a little longer)."""
    pyspy = shutil.which("py-spy")
    if pyspy is None:
        return Profile(tool, replicas, seconds, PROFILE_RATE, 0, [], [], [], PYSPY_INSTALL_HINT)
    out = workdir / f"pyspy-{replicas}.txt"
    argv = [
        pyspy,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(PROFILE_RATE),
        "--gil",
        "--nonblocking",
        "--full-filenames",
        "--format",
        "raw",
        "--output",
        str(out),
    ]
    sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        load()
    finally:
        _, stderr = sampler.communicate(timeout=seconds + 60)
    if sampler.returncode != 0 or not out.exists():
        return Profile(tool, replicas, seconds, PROFILE_RATE, 0, [], [], [], f"py-spy failed: {stderr.strip()[-300:]}")
    return summarize_profile(out.read_text(), tool, replicas, seconds)


def _module_path(location: str) -> str:
    """A frame's file as its module path: `uvicorn/server.py`, `contact_mcp/store/postgres.py`, `runpy`."""
    location = location.removeprefix("<frozen ").removesuffix(">")
    location = re.split(r"/lib/python3\.\d+/(?:site-packages/)?|/site-packages/", location)[-1]
    return location.removeprefix(f"{ROOT}/").removeprefix("src/")  # an editable install: src/contact_mcp


def short_frame(frame: str) -> str:
    """`func (/full/path/site-packages/pkg/mod.py:12)` → `func (pkg/mod.py:12)`."""
    function, _, rest = frame.rpartition(" (")
    location, _, line = rest.rstrip(")").rpartition(":")
    return f"{function} ({_module_path(location)}:{line})"


def frame_package(frame: str) -> str:
    """`func (path:line)` → the top-level package of the frame's module: `mcp`, `contact_mcp`, `asyncio (stdlib)`.

    Frames name their file by its full path (`--full-filenames`) or as `<frozen runpy>`.
    """
    location = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    name = _module_path(location).lstrip("/").split("/", 1)[0].removesuffix(".py") or "?"
    return f"{name} (stdlib)" if name in sys.stdlib_module_names else name


def summarize_profile(raw: str, tool: str, replicas: int, seconds: float) -> Profile:
    """py-spy's raw (collapsed) stacks → shares by innermost package and function, and inclusive by package."""
    leaf_packages: Counter[str] = Counter()
    leaf_functions: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if "(" in frame]
        if not frames:
            continue
        total += count
        leaf = frames[-1]
        leaf_packages[frame_package(leaf)] += count
        leaf_functions[short_frame(leaf)] += count
        # Below the event loop's callback runner: the process's start-up frames (our CLI, uvicorn's run) are in
        # every stack and would say nothing.
        below = max((k + 1 for k, frame in enumerate(frames) if frame.startswith(_LOOP_CALLBACKS)), default=len(frames))
        for package in {frame_package(frame) for frame in frames[below:]}:
            inclusive[package] += count
    if total == 0:
        raise BenchError("py-spy recorded no samples")

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, n / total) for name, n in counter.most_common(_TOP)]

    return Profile(
        tool=tool,
        replicas=replicas,
        seconds=seconds,
        rate=PROFILE_RATE,
        samples=total,
        by_package=shares(leaf_packages),
        by_function=shares(leaf_functions),
        inclusive=shares(inclusive),
    )
