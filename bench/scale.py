"""Scenarios 4 and 8: how the store's latency grows with its size (1k, 10k, 100k contacts), SQLite and PostgreSQL.

One database per size (a SQLite file; a PostgreSQL schema), each grown through `LocalStore.upsert_contact`
(in-process: this measures the store, not the transport), or by a `bulk` writer that stores the same contacts in the
form the store writes them (PostgreSQL: `COPY`, because 111,000 upserts one by one would take most of the run's time
budget; the final check proves the store finds what was written). Then every operation is timed on all the stores in
turn, one call on each before the next call on any, so a machine that speeds up or slows down during the run affects
every size alike. Inserting adds new contacts (up to half the size again, at most `samples`); the other operations
use keys drawn uniformly from each store's first `size` contacts, so a larger store is not helped by a hot cache of
a few rows: upsert of an existing contact (matched by user_id, with a changed name, so it writes), find by email,
find by phone, and get by id.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bench.importing import ContactRow
from bench.stats import Summary, ratio, summarize
from bench.tables import mark
from contact_mcp.models import FindContactsInput, UpsertContactInput
from contact_mcp.store import LocalStore

OPERATIONS = ("insert (new contact)", "upsert (existing)", "find by email", "find by phone", "get")


@dataclass(frozen=True)
class ScaleRow:
    size: int
    operation: str
    latency: Summary

    def as_dict(self) -> dict[str, Any]:
        return {"size": self.size, "operation": self.operation, **self.latency.as_dict()}


@dataclass(frozen=True)
class ScaleResult:
    backend: str
    sizes: tuple[int, ...]
    rows: list[ScaleRow]
    populate_s: float
    storage_mib: float  # the largest store: its file, or its tables and indexes

    def p50(self, size: int, operation: str) -> float:
        return next(r.latency.p50_ms for r in self.rows if r.size == size and r.operation == operation)

    def growth(self, operation: str) -> float:
        """p50 at the largest size over p50 at the smallest."""
        return ratio(self.p50(self.sizes[-1], operation), self.p50(self.sizes[0], operation))

    def as_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "sizes": list(self.sizes),
            "rows": [row.as_dict() for row in self.rows],
            "populate_s": self.populate_s,
            "storage_mib": self.storage_mib,
            "growth_p50": {op: self.growth(op) for op in OPERATIONS},
        }


BulkWriter = Callable[[str, list[ContactRow]], Awaitable[list[str]]]
"""Writes the rows into the empty store at a location; their ids in order."""


def contact_row(i: int) -> ContactRow:
    return (f"person{i}@example.com", f"+1415{i:07d}", f"Person {i}", f"user-{i}")


def contact(i: int, *, name: str | None = None) -> UpsertContactInput:
    email, phone, default_name, user_id = contact_row(i)
    return UpsertContactInput(email=email, user_id=user_id, name=name or default_name, phone=phone)


async def _timed(call: Callable[[], Awaitable[object]]) -> int:
    started = time.perf_counter_ns()
    await call()
    return time.perf_counter_ns() - started


Call = Callable[[], Awaitable[object]]


async def _populate(store: LocalStore, size: int) -> list[str]:
    return [str((await store.upsert_contact(contact(i))).id) for i in range(size)]


async def store_scale(
    backend: str,
    locations: dict[int, str],
    samples: int,
    log: Callable[[str], None],
    storage_mib: Callable[[str], float],
    *,
    bulk: BulkWriter | None = None,
    seed: int = 7,
) -> ScaleResult:
    """`locations` maps each size to its empty database (a `CONTACT_MCP_DB` value); `storage_mib` measures one."""
    rng = random.Random(seed)
    sizes = tuple(sorted(locations))
    stores: dict[int, LocalStore] = {}
    ids: dict[int, list[str]] = {}
    started = time.perf_counter()
    try:
        for size in sizes:
            if bulk is not None:
                ids[size] = await bulk(locations[size], [contact_row(i) for i in range(size)])
                stores[size] = LocalStore.open(locations[size])
            else:
                stores[size] = LocalStore.open(locations[size])
                ids[size] = await _populate(stores[size], size)
            log(f"  {size} contacts stored ({time.perf_counter() - started:.0f} s)")
        populate_s = time.perf_counter() - started
        timed: dict[tuple[int, str], list[int]] = {(size, op): [] for size in sizes for op in OPERATIONS}
        keys = {size: [rng.randrange(size) for _ in range(samples)] for size in sizes}

        def calls(size: int, k: int) -> dict[str, Call]:
            store, key = stores[size], keys[size][k]
            return {
                OPERATIONS[1]: lambda: store.upsert_contact(contact(key, name=f"Renamed {k}")),
                OPERATIONS[2]: lambda: store.find_contacts(FindContactsInput(email=f"person{key}@example.com")),
                OPERATIONS[3]: lambda: store.find_contacts(FindContactsInput(phone=f"+1415{key:07d}")),
                OPERATIONS[4]: lambda: store.get_contact(ids[size][key]),
            }

        def insert(size: int, k: int) -> Call:
            store, new = stores[size], size + k
            return lambda: store.upsert_contact(contact(new))

        for k in range(samples):
            for size in sizes:
                if k < min(samples, size // 2):
                    timed[size, OPERATIONS[0]].append(await _timed(insert(size, k)))
        for operation in OPERATIONS[1:]:
            for k in range(samples):
                for size in sizes:
                    timed[size, operation].append(await _timed(calls(size, k)[operation]))
        rows = [ScaleRow(size, op, summarize(ns, sum(ns) / 1e9)) for (size, op), ns in timed.items()]
        for size in sizes:
            log(
                f"  {size} contacts: "
                + ", ".join(f"{r.operation} {r.latency.p50_ms:.3f} ms" for r in rows if r.size == size)
            )
        for size in sizes:
            await _check_found(stores[size], ids[size])
    finally:
        for store in stores.values():
            await store.aclose()
    return ScaleResult(backend, sizes, rows, populate_s, storage_mib(locations[sizes[-1]]))


async def _check_found(store: LocalStore, ids: list[str]) -> None:
    """The timed lookups must have found their contact, or the benchmark measured misses."""
    last = len(ids) - 1
    page = await store.find_contacts(FindContactsInput(phone=f"+1415{last:07d}"))
    if [c.id for c in page.contacts] != [ids[last]]:
        raise RuntimeError("find by phone did not find the contact it was timed on")
    page = await store.find_contacts(FindContactsInput(email=f"person{last}@example.com"))
    if [c.id for c in page.contacts] != [ids[last]]:
        raise RuntimeError("find by email did not find the contact it was timed on")


SCALE_GROWTH = 2.0
"""The target: an operation's p50 at the largest size is at most this many times its p50 at the smallest."""


def scale_table(scale: ScaleResult) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a scale run's report table, whichever store it measured."""
    header = ["operation", *[f"{size:,}: p50 / p99 ms" for size in scale.sizes], "p50 growth", "target"]
    body: list[list[str]] = []
    for op in OPERATIONS:
        cells = [
            f"{row.latency.p50_ms:.3f} / {row.latency.p99_ms:.3f}"
            for size in scale.sizes
            for row in scale.rows
            if row.size == size and row.operation == op
        ]
        growth = scale.growth(op)
        body.append([op, *cells, f"{growth:.2f}×", f"≤ {SCALE_GROWTH}×: {mark(growth <= SCALE_GROWTH)}"])
    return header, body
