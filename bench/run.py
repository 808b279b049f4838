"""`python -m bench`: run the scenarios, then write RESULTS.md and results.json.

Scenarios: `local` (1, local store tool overhead), `provider` (2, provider tool overhead), `coldstart` (3),
`scale` (4, store latency by size) and `memory` (5). `--only` picks some; `--quick` uses tiny counts so the smoke
test can prove the whole pipeline works in seconds (its numbers mean nothing). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import anyio

from bench import baseline_server
from bench.coldstart import cold_start, import_profile
from bench.memory import memory_growth
from bench.overhead import OverheadCounts, local_overhead, provider_overhead, summary_line
from bench.procs import ServerSpec, Transport, baseline_spec, contact_mcp_spec, fake_featurebase
from bench.report import Results, as_json, markdown
from bench.scale import store_scale
from contact_mcp import build_server, load_settings

SCENARIOS = ("local", "provider", "coldstart", "scale", "memory")
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
    memory_checkpoints=(20, 60),
)


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


async def run_scenarios(chosen: Sequence[str], counts: Counts, workdir: Path, results: Results) -> None:
    for scenario in SCENARIOS:
        if scenario in chosen:
            started = time.perf_counter()
            await SCENARIO_RUNNERS[scenario](counts, workdir, results)
            results.durations[scenario] = time.perf_counter() - started


async def _local(counts: Counts, workdir: Path, results: Results) -> None:
    log("1. local store tool overhead")
    results.local = await local_overhead(workdir, counts.overhead, log)
    for comparison in results.local:
        log(summary_line(comparison))


async def _provider(counts: Counts, workdir: Path, results: Results) -> None:
    log("2. provider tool overhead")
    with fake_featurebase() as fake_url:
        results.floor, results.provider = await provider_overhead(fake_url, counts.overhead, log)
    for comparison in results.provider:
        log(summary_line(comparison))


async def _coldstart(counts: Counts, workdir: Path, results: Results) -> None:
    log("3. cold start")
    ours = contact_mcp_spec({"CONTACT_MCP_DB": str(workdir / "cold.db")}, lambda: None)
    base = baseline_spec("trivial", {}, lambda: None)
    results.cold = await cold_start(ours, base, counts.cold_runs, log, warm_up=counts.cold_warm_up)
    results.imports = import_profile(ours, base, counts.import_runs)


async def _scale(counts: Counts, workdir: Path, results: Results) -> None:
    log("4. store scale")
    results.scale = await store_scale(workdir / "scale.db", counts.scale_sizes, counts.scale_samples, log)


async def _memory(counts: Counts, workdir: Path, results: Results) -> None:
    log("5. memory")
    db = workdir / "memory.db"
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


SCENARIO_RUNNERS: dict[str, Callable[[Counts, Path, Results], Awaitable[None]]] = {
    "local": _local,
    "provider": _provider,
    "coldstart": _coldstart,
    "scale": _scale,
    "memory": _memory,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    chosen: list[str] = args.only or list(SCENARIOS)
    counts = QUICK if args.quick else FULL
    command = shlex.join(["python", "-m", "bench", *(sys.argv[1:] if argv is None else argv)])
    results = Results(command=command, quick=args.quick, counts=asdict(counts))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="contact-mcp-bench-") as tmp:
        anyio.run(run_scenarios, chosen, counts, Path(tmp), results)
    results.elapsed_s = time.perf_counter() - started
    out: Path = args.out
    json_path: Path = args.json or out.with_name("results.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results))
    json_path.write_text(json.dumps(as_json(results), indent=2) + "\n")
    log(f"wrote {out} and {json_path} in {results.elapsed_s:.0f} s")
    return 0
