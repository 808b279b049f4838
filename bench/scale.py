"""Scenario 4: how the local store's latency grows with its size (1k, 10k, 100k contacts).

One SQLite file per size, each grown through `LocalStore.upsert_contact` (in-process: this measures the store, not
the transport). Then every operation is timed on all the files in turn, one call on each before the next call on
any, so a machine that speeds up or slows down during the run affects every size alike. Inserting adds new contacts
(up to half the size again, at most `samples`); the other operations use keys drawn uniformly from each file's
first `size` contacts, so a larger store is not helped by a hot cache of a few rows: upsert of an existing contact
(matched by user_id, with a changed name, so it writes), find by email, find by phone, and get by id.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stats import Summary, ratio, summarize
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
    sizes: tuple[int, ...]
    rows: list[ScaleRow]
    populate_s: float
    file_mib: float

    def p50(self, size: int, operation: str) -> float:
        return next(r.latency.p50_ms for r in self.rows if r.size == size and r.operation == operation)

    def growth(self, operation: str) -> float:
        """p50 at the largest size over p50 at the smallest."""
        return ratio(self.p50(self.sizes[-1], operation), self.p50(self.sizes[0], operation))

    def as_dict(self) -> dict[str, Any]:
        return {
            "sizes": list(self.sizes),
            "rows": [row.as_dict() for row in self.rows],
            "populate_s": self.populate_s,
            "file_mib": self.file_mib,
            "growth_p50": {op: self.growth(op) for op in OPERATIONS},
        }


def contact(i: int, *, name: str | None = None) -> UpsertContactInput:
    return UpsertContactInput(
        email=f"person{i}@example.com",
        user_id=f"user-{i}",
        name=name or f"Person {i}",
        phone=f"+1415{i:07d}",
    )


async def _timed(call: Callable[[], Awaitable[object]]) -> int:
    started = time.perf_counter_ns()
    await call()
    return time.perf_counter_ns() - started


Call = Callable[[], Awaitable[object]]


async def store_scale(
    db: Path, sizes: tuple[int, ...], samples: int, log: Callable[[str], None], seed: int = 7
) -> ScaleResult:
    """`db` names the first file; the others sit beside it, suffixed with their size."""
    rng = random.Random(seed)
    stores: dict[int, LocalStore] = {}
    ids: dict[int, list[str]] = {}
    files = {size: db.with_name(f"{db.stem}-{size}{db.suffix}") for size in sizes}
    started = time.perf_counter()
    try:
        for size in sizes:
            stores[size] = LocalStore.open(files[size])
            ids[size] = [(await stores[size].upsert_contact(contact(i))).id for i in range(size)]
            log(f"  {size} contacts stored")
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
    return ScaleResult(sizes, rows, populate_s, _mib(files[sizes[-1]]))


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20


async def _check_found(store: LocalStore, ids: list[str]) -> None:
    """The timed lookups must have found their contact, or the benchmark measured misses."""
    last = len(ids) - 1
    page = await store.find_contacts(FindContactsInput(phone=f"+1415{last:07d}"))
    if [c.id for c in page.contacts] != [ids[last]]:
        raise RuntimeError("find by phone did not find the contact it was timed on")
    page = await store.find_contacts(FindContactsInput(email=f"person{last}@example.com"))
    if [c.id for c in page.contacts] != [ids[last]]:
        raise RuntimeError("find by email did not find the contact it was timed on")
