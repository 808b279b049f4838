"""`python -m bench`: run the scenarios, then write RESULTS.md and results.json.

Scenarios: `local` (1, local store tool overhead), `provider` (2, provider tool overhead), `coldstart` (3),
`scale` (4, store latency by size), `memory` (5), and for the store that outgrows one machine, on a PostgreSQL
the benchmark starts as the tests do: `postgres` (6, PostgreSQL vs SQLite store per tool), `replicas` (7, calls/s
on one and three stateless replicas, driven by wrk), `scale-postgres` (8) and `import` (9, CSV import
throughput). `--only` picks some; `--quick` uses tiny counts so the smoke test can prove the whole pipeline works
in seconds (its numbers mean nothing). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

from bench import baseline_server, postgres_store, sqlite_store
from bench.backends import store_backends
from bench.carry import carry
from bench.coldstart import cold_start, import_profile
from bench.importing import import_throughput, write_csv
from bench.loadgen import find_wrk
from bench.memory import memory_growth
from bench.overhead import OverheadCounts, local_overhead, provider_overhead, summary_line
from bench.postgres_store import bulk_contacts, copy_contacts, storage_mib
from bench.procs import Postgres, ServerSpec, Transport, baseline_spec, contact_mcp_spec, fake_featurebase, postgres
from bench.replicas import ReplicaCounts, replica_throughput
from bench.report import Results, as_json, markdown
from bench.scale import store_scale
from bench.sqlite_store import file_mib, insert_contacts
from bench.workloads import BenchError
from contact_mcp import build_server, load_settings

SCENARIOS = ("local", "provider", "coldstart", "scale", "memory", "postgres", "replicas", "scale-postgres", "import")
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Counts:
    overhead: OverheadCounts
    cold_runs: int
    cold_warm_up: bool  # one untimed launch of each server first, to warm the OS file cache
    import_runs: int
    scale_sizes: tuple[int, ...]
    scale_samples: int
    memory_checkpoints: tuple[int, ...]
    backends: OverheadCounts
    replicas: ReplicaCounts
    scale_postgres_sizes: tuple[int, ...]
    import_rows: int
    import_backends: tuple[str, ...]


FULL = Counts(
    overhead=OverheadCounts(
        warmup=200, rounds=8, sequential_calls=150, concurrent_calls=384, floor_calls=1000, pool=200
    ),
    cold_runs=21,  # single launches vary by ±100 ms on a 2-core VM; more of them steady the median
    cold_warm_up=True,
    import_runs=3,
    scale_sizes=(1_000, 10_000, 100_000),
    scale_samples=1_000,
    memory_checkpoints=(1_000, 20_000),
    backends=OverheadCounts(warmup=30, rounds=6, sequential_calls=60, concurrent_calls=0, floor_calls=0, pool=200),
    replicas=ReplicaCounts(
        workloads=(
            ("2025-11-25", "get_contact"),
            ("2025-11-25", "upsert_contact"),
            ("2026-07-28", "get_contact"),
        ),
        profiled=("2025-11-25", "upsert_contact"),
        replicas=3,
        connections=64,
        threads=16,
        pool=200,
        bodies=4096,
        warmup_s=3,
        round_s=5,
        rounds=4,
        profile_s=5,
    ),
    scale_postgres_sizes=(1_000, 10_000, 100_000),
    import_rows=100_000,
    import_backends=("SQLite", "PostgreSQL"),
)
# Each scenario still runs every transport, concurrency and server once; what costs the smoke test its seconds is
# process launches, so --quick skips the untimed warm-up launches, and the calls are as few as each path needs
# (rounds=2 keeps both orders of the ABBA alternation, concurrent_calls fills the 32 tasks once).
QUICK = Counts(
    overhead=OverheadCounts(warmup=1, rounds=2, sequential_calls=3, concurrent_calls=32, floor_calls=10, pool=3),
    cold_runs=1,
    cold_warm_up=False,
    import_runs=1,
    scale_sizes=(40, 200),
    scale_samples=20,
    backends=OverheadCounts(warmup=2, rounds=2, sequential_calls=2, concurrent_calls=0, floor_calls=0, pool=3),
    replicas=ReplicaCounts(
        workloads=(("2025-11-25", "upsert_contact"),),
        profiled=("2025-11-25", "upsert_contact"),
        replicas=3,
        connections=6,
        threads=3,
        pool=5,
        bodies=20,
        warmup_s=0,
        round_s=1,
        rounds=1,
        profile_s=1,
    ),
    scale_postgres_sizes=(40, 200),
    import_rows=300,
    import_backends=("SQLite", "PostgreSQL"),
    memory_checkpoints=(20, 60),
)


class Workspace:
    """The run's temporary folder, and the PostgreSQL server the store scenarios share (started when first asked)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stack = ExitStack()
        self._postgres: Postgres | None = None

    def postgres(self) -> Postgres:
        if self._postgres is None:
            log("  starting PostgreSQL")
            self._postgres = self._stack.enter_context(postgres())
        return self._postgres

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: check that it works, read nothing into it")
    parser.add_argument(
        "--only",
        action="append",
        choices=SCENARIOS,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(SCENARIOS)}",
    )
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="the Markdown report (bench/RESULTS.md)")
    parser.add_argument("--json", type=Path, default=None, help="raw numbers (default: results.json beside --out)")
    return parser.parse_args(argv)


async def run_scenarios(chosen: Sequence[str], counts: Counts, space: Workspace, results: Results) -> None:
    for scenario in SCENARIOS:
        if scenario in chosen:
            started = time.perf_counter()
            await SCENARIO_RUNNERS[scenario](counts, space, results)
            results.durations[scenario] = time.perf_counter() - started


async def _local(counts: Counts, space: Workspace, results: Results) -> None:
    log("1. local store tool overhead")
    results.local = await local_overhead(space.path, counts.overhead, log)
    for comparison in results.local:
        log(summary_line(comparison))


async def _provider(counts: Counts, space: Workspace, results: Results) -> None:
    log("2. provider tool overhead")
    with fake_featurebase() as fake_url:
        results.floor, results.provider = await provider_overhead(fake_url, space.path, counts.overhead, log)
    for comparison in results.provider:
        log(summary_line(comparison))


async def _coldstart(counts: Counts, space: Workspace, results: Results) -> None:
    log("3. cold start")
    ours = contact_mcp_spec({"CONTACT_MCP_DB": str(space.path / "cold.db")}, lambda: None)
    base = baseline_spec("trivial", {}, lambda: None)
    results.cold = await cold_start(ours, base, counts.cold_runs, log, warm_up=counts.cold_warm_up)
    results.imports = import_profile(ours, base, counts.import_runs)


async def _scale(counts: Counts, space: Workspace, results: Results) -> None:
    log("4. store scale")
    files = {size: str(space.path / f"scale-{size}.db") for size in counts.scale_sizes}
    results.scale = await store_scale("SQLite", files, counts.scale_samples, log, file_mib)


async def _memory(counts: Counts, space: Workspace, results: Results) -> None:
    log("5. memory")
    db = space.path / "memory.db"
    ours = contact_mcp_spec(
        {"CONTACT_MCP_DB": str(db)}, lambda: build_server(load_settings(db=str(db), log_level="WARNING"))
    )
    base = baseline_spec("trivial", {}, baseline_server.trivial_server)
    # The bare SDK runs over stdio only: it is context for our numbers, and a full run must stay under ten minutes.
    runs: list[tuple[ServerSpec, Transport, bool]] = [
        (ours, "stdio", True),
        (base, "stdio", False),
        (ours, "http", True),
    ]
    for spec, transport, is_ours in runs:
        db.unlink(missing_ok=True)
        results.memory.append(await memory_growth(spec, transport, counts.memory_checkpoints, is_ours, log))


async def _postgres(counts: Counts, space: Workspace, results: Results) -> None:
    log("6. PostgreSQL store vs SQLite store, per tool over streamable HTTP")
    pg = space.postgres()
    results.store.postgres_version = pg.version
    results.store.backends = await store_backends(pg.database(), space.path, counts.backends, log)
    for comparison in results.store.backends:
        log(summary_line(comparison))


async def _replicas(counts: Counts, space: Workspace, results: Results) -> None:
    log("7. replicas: calls/s with 64 concurrent clients")
    find_wrk()  # fail before starting anything if the load generator is missing
    pg = space.postgres()
    results.store.postgres_version = pg.version
    results.store.replicas = await replica_throughput(
        pg.database(), f"PostgreSQL {pg.version}", pg.pid, counts.replicas, space.path, log
    )


async def _scale_postgres(counts: Counts, space: Workspace, results: Results) -> None:
    log("8. store scale on PostgreSQL")
    pg = space.postgres()
    results.store.postgres_version = pg.version
    databases = {size: pg.database() for size in counts.scale_postgres_sizes}
    results.store.scale = await store_scale(
        "PostgreSQL", databases, counts.scale_samples, log, storage_mib, bulk=bulk_contacts
    )


async def _import(counts: Counts, space: Workspace, results: Results) -> None:
    log("9. import throughput")
    csv_path = write_csv(space.path / f"import-{counts.import_rows}.csv", counts.import_rows)
    for backend in counts.import_backends:
        if backend == "PostgreSQL":
            pg = space.postgres()
            results.store.postgres_version = pg.version
            dbs, write, count = (pg.database(), pg.database()), ("COPY", copy_contacts), postgres_store.count_contacts
        else:
            dbs = (str(space.path / "import.db"), str(space.path / "import-floor.db"))
            write, count = ("executemany", insert_contacts), sqlite_store.count_contacts
        try:
            results.store.importing.append(await import_throughput(backend, *dbs, csv_path, log, write, count))
        except BenchError as exc:  # reported as a missed target, with what failed; the other backend still runs
            log(f"  {backend} import failed: {exc}")
            results.store.import_failures[backend] = str(exc)


SCENARIO_RUNNERS: dict[str, Callable[[Counts, Workspace, Results], Awaitable[None]]] = {
    "local": _local,
    "provider": _provider,
    "coldstart": _coldstart,
    "scale": _scale,
    "memory": _memory,
    "postgres": _postgres,
    "replicas": _replicas,
    "scale-postgres": _scale_postgres,
    "import": _import,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen: list[str] = args.only or list(SCENARIOS)
    counts = QUICK if args.quick else FULL
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    results = Results(command=command, quick=args.quick, counts=asdict(counts))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="contact-mcp-bench-") as tmp, Workspace(Path(tmp)) as space:
        anyio.run(run_scenarios, chosen, counts, space, results)
    results.elapsed_s = time.perf_counter() - started
    out: Path = args.out
    json_path: Path = args.json or out.with_name("results.json")
    if not args.quick:  # a partial run keeps the other scenarios' last numbers, marked as such
        results.carried = carry(out, json_path, set(chosen), SCENARIOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results))
    json_path.write_text(json.dumps(as_json(results), indent=2) + "\n")
    log(f"wrote {out} and {json_path} in {results.elapsed_s:.0f} s")
    return 0
