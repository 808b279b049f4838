"""Scenario 4: how the local store's latency grows with its size (1k, 10k, 100k contacts).

One SQLite file is grown from size to size through `LocalStore.upsert_contact` (in-process: this measures the store,
not the transport). Inserting is timed while growing: the last inserts before each size is reached. At each size
every operation is timed on keys drawn uniformly from all stored contacts, so a larger store is not helped by a hot
cache of a few rows: upsert of an existing contact (matched by user_id, with a changed name, so it writes), find by
email, find by phone, and get by id.
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
from contact_mcp.providers.local import LocalStore

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


async def _sample(samples: int, make: Callable[[int], Callable[[], Awaitable[object]]]) -> Summary:
    got = [await _timed(make(k)) for k in range(samples)]
    return summarize(got, sum(got) / 1e9)


async def store_scale(
    db: Path, sizes: tuple[int, ...], samples: int, log: Callable[[str], None], seed: int = 7
) -> ScaleResult:
    rng = random.Random(seed)
    store = LocalStore.open(db)
    ids: list[str] = []
    rows: list[ScaleRow] = []
    populate_s = 0.0
    try:
        for size in sizes:
            window = min(samples, size // 2)
            insert_ns: list[int] = []
            started = time.perf_counter()
            for i in range(len(ids), size):
                t0 = time.perf_counter_ns()
                result = await store.upsert_contact(contact(i))
                if i >= size - window:
                    insert_ns.append(time.perf_counter_ns() - t0)
                ids.append(result.id)
            populate_s += time.perf_counter() - started
            rows.append(ScaleRow(size, OPERATIONS[0], summarize(insert_ns, sum(insert_ns) / 1e9)))
            keys = [rng.randrange(size) for _ in range(samples)]
            bump = size  # a fresh name each time, so every upsert really updates

            def upsert(k: int, keys: list[int] = keys, bump: int = bump) -> Callable[[], Awaitable[object]]:
                return lambda: store.upsert_contact(contact(keys[k], name=f"Renamed {bump + k}"))

            def by_email(k: int, keys: list[int] = keys) -> Callable[[], Awaitable[object]]:
                return lambda: store.find_contacts(FindContactsInput(email=f"person{keys[k]}@example.com"))

            def by_phone(k: int, keys: list[int] = keys) -> Callable[[], Awaitable[object]]:
                return lambda: store.find_contacts(FindContactsInput(phone=f"+1415{keys[k]:07d}"))

            def get(k: int, keys: list[int] = keys) -> Callable[[], Awaitable[object]]:
                return lambda: store.get_contact(ids[keys[k]])

            for operation, make in zip(OPERATIONS[1:], (upsert, by_email, by_phone, get), strict=True):
                rows.append(ScaleRow(size, operation, await _sample(samples, make)))
            log(
                f"  {size} contacts: "
                + ", ".join(f"{r.operation} {r.latency.p50_ms:.3f} ms" for r in rows if r.size == size)
            )
        await _check_found(store, ids)
    finally:
        await store.aclose()
    return ScaleResult(sizes, rows, populate_s, _mib(db))


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
