"""SQLite only: every exact lookup the store makes is answered by an index, so its latency does not grow with the store.

Timing is not asserted (machines vary); SQLite's own query plan is. A plan step that SCANs a table or an index
reads every row; SEARCH reads the rows a key selects (unless the key is "IS NULL"). The only scan allowed is the
name search (`query`), which no B-tree index can answer and which stops once a page is full.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contact_mcp.models import FindContactsInput
from contact_mcp.store import sqlite
from contact_mcp.store.sqlite import SqliteBackend, find_query

pytestmark = pytest.mark.anyio

STATEMENTS = {
    name: sql
    for name, sql in vars(sqlite).items()
    if name.startswith("_")
    and isinstance(sql, str)
    and sql.lstrip().startswith(("SELECT", "UPDATE", "DELETE"))
    and name not in sqlite.WHOLE_TABLE_READS
}
EXACT_FILTERS = ("email", "phone", "username", "user_id")


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteBackend]:
    opened = SqliteBackend.open(db_path)
    yield opened
    await opened.aclose()


def plan(store: SqliteBackend, sql: str, params: list[object]) -> list[str]:
    return [str(row[3]) for row in store._db.execute("EXPLAIN QUERY PLAN " + sql, params)]


def full_reads(sql: str, steps: list[str]) -> list[str]:
    """Plan steps that read a whole table or index: SCANs, and SEARCHes keyed on a column only tested IS NULL
    (every contact without a user_id, say), which the planner may pick when it has no statistics."""
    nullable = re.findall(r"(\w+) IS NULL", sql)
    return [
        step
        for step in steps
        if step.startswith("SCAN") or any(f"({col}=?" in step or f"AND {col}=?" in step for col in nullable)
    ]


def test_the_store_has_lookup_statements_to_check() -> None:
    assert len(STATEMENTS) >= 20


def test_only_find_duplicates_reads_whole_tables() -> None:
    assert {"_DUPLICATE_CONTACTS", "_DUPLICATE_VALUES"} == sqlite.WHOLE_TABLE_READS


@pytest.mark.parametrize("name", sorted(STATEMENTS))
async def test_statement_uses_an_index(store: SqliteBackend, name: str) -> None:
    sql = STATEMENTS[name]
    params: list[object] = [None] * (6 if "?6" in sql else sql.count("?"))

    steps = plan(store, sql, params)

    assert steps
    assert full_reads(sql, steps) == [], steps


@pytest.mark.parametrize(
    "filters",
    [
        combo
        for size in (1, 2)
        for combo in itertools.combinations((*EXACT_FILTERS, "query"), size)
        if combo != ("query",)
    ],
    ids=lambda combo: "+".join(combo),
)
async def test_find_with_an_exact_filter_uses_an_index(store: SqliteBackend, filters: tuple[str, ...]) -> None:
    given = {name: "x" if name in filters else None for name in (*EXACT_FILTERS, "query")}
    call = FindContactsInput(
        email=given["email"],
        phone=given["phone"],
        username=given["username"],
        user_id=given["user_id"],
        query=given["query"],
    )
    sql, params = find_query(call, 0)

    steps = plan(store, sql, params)

    assert full_reads(sql, steps) == [], steps


async def test_listing_reads_in_seq_order_without_sorting(store: SqliteBackend) -> None:
    sql, params = find_query(FindContactsInput(), 0)

    steps = plan(store, sql, params)

    assert steps[0] == "SEARCH c USING INTEGER PRIMARY KEY (rowid>?)"
    assert not [step for step in steps if "TEMP B-TREE" in step], steps
