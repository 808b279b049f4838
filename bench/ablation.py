"""What the in-memory misses are made of: contact-mcp against the bare SDK, with and without its validation.

In-memory, client and server share one thread, so every microsecond of the tool is on the critical path and the
ratios are at their highest. This runs the in-memory comparisons of scenarios 1 and 2 twice in turn: once as
shipped, once with `normalize_email` and `normalize_phone` (email-validator and phonenumbers) replaced by the
identity. The benchmark's values are already canonical, so the calls do the same work otherwise. For the local
store a third run also skips the SQLite write (`LocalStore.upsert_contact` answers from the call alone): what is
left then is the SDK's handling of our signature and result, and our own thin code around the calls.

Diagnostic only: it changes what the tools do, so it never runs as part of `python -m bench` or RESULTS.md.
`python -m bench.ablation [--calls N] [--rounds R]`.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import anyio
from mcp import Client
from tests.fakes.featurebase import API_KEY

import contact_mcp.tools.writes as tools
from bench import baseline_server
from bench.overhead import OverheadCounts, Workload, compare
from bench.procs import fake_featurebase
from bench.stats import median
from bench.workloads import person, upserts
from contact_mcp import build_server, load_settings
from contact_mcp.models import UpsertContactInput, UpsertResult
from contact_mcp.store import LocalStore

POOL = 64


@contextmanager
def validation_off() -> Iterator[None]:
    """The tools look these names up at call time, so swapping the module attributes reaches every server."""
    email, phone = tools.normalize_email, tools.normalize_phone

    def same_email(raw: str, *, field: str) -> str:
        return raw

    def same_phone(raw: str, *, field: str, default_region: str | None = None) -> str:
        return raw

    tools.normalize_email, tools.normalize_phone = same_email, same_phone
    try:
        yield
    finally:
        tools.normalize_email, tools.normalize_phone = email, phone


Ratios = tuple[list[float], list[float]]  # per-round p50 ratios, per-round throughput ratios


@contextmanager
def store_off() -> Iterator[None]:
    """`upsert_contact` on the local store answers what it was asked, without touching SQLite."""
    original = LocalStore.upsert_contact

    async def answer(self: LocalStore, call: UpsertContactInput) -> UpsertResult:
        return UpsertResult(
            provider="local", outcome="updated", id=_SOME_ID, user_id=call.user_id, email=call.email, name=call.name
        )

    LocalStore.upsert_contact = answer
    try:
        yield
    finally:
        LocalStore.upsert_contact = original


_SOME_ID = "00000000-0000-4000-8000-000000000000"
SETTINGS: dict[str, Callable[[], AbstractContextManager[None]]] = {
    "as shipped": nullcontext,
    "validation off": validation_off,
}


@contextmanager
def _both_off() -> Iterator[None]:
    with validation_off(), store_off():
        yield


async def _pair(
    scenario: str,
    ours: Client,
    base: Client,
    base_tool: str,
    concurrency: int,
    counts: OverheadCounts,
    settings: dict[str, Callable[[], AbstractContextManager[None]]],
) -> dict[str, Ratios]:
    """Each setting twice, in turn (ABCABC), each against the same baseline."""
    got: dict[str, Ratios] = {label: ([], []) for label in settings}
    for label in [*settings, *settings]:
        with settings[label]():
            comparison = await compare(
                scenario,
                "upsert_contact",
                "memory",
                Workload(ours, "upsert_contact", upserts(POOL)),
                Workload(base, base_tool, upserts(POOL)),
                concurrency,
                counts,
            )
        got[label][0].extend(comparison.round_p50_ratios)
        got[label][1].extend(comparison.round_throughput_ratios)
    return got


async def run(counts: OverheadCounts) -> list[tuple[str, int, str, Ratios]]:
    rows: list[tuple[str, int, str, Ratios]] = []
    with tempfile.TemporaryDirectory(prefix="contact-mcp-ablation-") as tmp:
        db = str(Path(tmp) / "ablation.db")
        local = build_server(load_settings(db=db, providers=("local",), log_level="WARNING"))
        async with Client(local) as ours, Client(baseline_server.trivial_server()) as base:
            for i in range(POOL):
                await ours.call_tool("upsert_contact", person(i, POOL))
            local_settings = {**SETTINGS, "validation and SQLite write off": _both_off}
            for label, ratios in (await _pair("local", ours, base, "ping", 1, counts, local_settings)).items():
                rows.append(("local store upsert_contact", 1, label, ratios))
    with fake_featurebase() as url, tempfile.TemporaryDirectory(prefix="contact-mcp-ablation-") as tmp:
        settings = load_settings(
            providers=("featurebase",),
            featurebase_api_key=API_KEY,
            featurebase_base_url=url,
            db=str(Path(tmp) / "provider-history.db"),  # the writes' history: never the user's default store
            log_level="WARNING",
        )
        provider = build_server(settings)
        async with Client(provider) as ours, Client(baseline_server.provider_server(url, API_KEY)) as base:
            for concurrency in (1, 32):
                pair = await _pair("provider", ours, base, "upsert_contact", concurrency, counts, SETTINGS)
                for label, ratios in pair.items():
                    rows.append(("Featurebase upsert_contact", concurrency, label, ratios))
    return rows


def _spread(values: list[float]) -> str:
    return f"{median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"


def _print(rows: list[tuple[str, int, str, Ratios]]) -> None:
    print("Median of the per-round ratios contact-mcp / bare SDK (range). Latency is judged with 1 call in flight,")
    print("throughput with 32.\n")
    print("| tool, in-memory | calls in flight | contact-mcp | p50 ratio | throughput ratio |")
    print("|---|---|---|---|---|")
    for tool, concurrency, label, (p50s, throughputs) in rows:
        print(f"| {tool} | {concurrency} | {label} | {_spread(p50s)} | {_spread(throughputs)} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__)
    parser.add_argument("--calls", type=int, default=150, help="sequential calls per side per round (default 150)")
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds per comparison (default 4)")
    args = parser.parse_args()
    counts = OverheadCounts(
        warmup=max(10, args.calls // 2),
        rounds=args.rounds,
        sequential_calls=args.calls,
        concurrent_calls=args.calls * 2,
        floor_calls=0,
        pool=POOL,
    )
    _print(anyio.run(run, counts))


if __name__ == "__main__":
    main()
