"""What the benchmarks ask the tools: the arguments of call number i, for each of contact-mcp's tools on the store.

Every generator is deterministic in `i`, so two servers given the same calls in the same order do the same work
(the PostgreSQL and SQLite stores in `bench.backends`, contact-mcp and a baseline in `bench.overhead`), and every
call succeeds: writes change something on every call (an error or a no-op is not the path being measured). The
calls work on a pool of contacts seeded first (`seed_contacts`); the load generator's request bodies
(`bench.loadgen`) are written from the same generators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mcp import Client

ArgsFn = Callable[[int], dict[str, Any]]

TOOLS = (
    "get_contact",
    "find_contacts",
    "find_duplicates",
    "upsert_contact",
    "set_verification",
    "attach_contact",
    "detach_contact",
    "attach_identity",
    "detach_identity",
    "create_contact",
    "merge_contacts",
    "delete_contact",
)
"""Reads first: the writes that add methods and identities would otherwise change what the reads return. Each
detach undoes the attach of the same call number; merge and delete use up contacts of their own (`seed_spares`)."""
SPARES = frozenset({"merge_contacts", "delete_contact"})
"""Tools whose every call uses up a contact: merged away, or deleted."""


class BenchError(RuntimeError):
    pass


def person(i: int, pool: int) -> dict[str, Any]:
    """A realistic upsert: the same contact again (from a pool) with a changed name, so each call writes."""
    who = i % pool
    return {
        "user_id": f"bench-{who}",
        "email": f"bench.user{who}@example.com",
        "name": f"Bench User {i}",
        "phone": f"+1415555{who:04d}",
    }


def upserts(pool: int) -> ArgsFn:
    return lambda i: person(i, pool)


def gets(ids: list[str]) -> ArgsFn:
    return lambda i: {"contact_id": ids[i % len(ids)]}


def tool_args(tool: str, ids: list[str], spares: list[str] | None = None) -> ArgsFn:
    """Arguments for call i of `tool` on the pool whose contacts have `ids` (seeded by `seed_contacts`); merge and
    delete take contact i of `spares` (`seed_spares`, as many as the calls)."""
    pool = len(ids)

    def who(i: int) -> int:
        return i % pool

    generators: dict[str, ArgsFn] = {
        "get_contact": gets(ids),
        "find_contacts": lambda i: {"email": f"bench.user{who(i)}@example.com"},
        "upsert_contact": upserts(pool),
        # Verified, then cleared on the next pass over the pool: every call changes the method's state. Clearing
        # cannot be undone, and the bench's client cannot ask a user: it confirms (the default configuration's cost,
        # a read of the contact to describe the call, is measured with it).
        "set_verification": lambda i: {
            "contact_id": ids[who(i)],
            "type": "email",
            "value": f"bench.user{who(i)}@example.com",
            "verified": (i // pool) % 2 == 0,
            "confirm": True,
        },
        "attach_contact": lambda i: {
            "end_user_id": ids[who(i)],
            "channel": "email",
            "value": f"bench.extra{i}@example.com",
        },
        "attach_identity": lambda i: {"contact_id": ids[who(i)], "identifier": f"+1628{2_000_000 + i:07d}"},
        "create_contact": lambda i: {"username": f"bench_new_{i}", "phone_number": f"+1650{2_000_000 + i:07d}"},
        "find_duplicates": lambda i: {},
        "detach_contact": lambda i: {
            "contact_id": ids[who(i)],
            "channel": "email",
            "value": f"bench.extra{i}@example.com",
        },
        "detach_identity": lambda i: {"contact_id": ids[who(i)], "identifier": f"+1628{2_000_000 + i:07d}"},
        # Both cannot be undone and always ask; the bench's client cannot be asked, so it confirms.
        "merge_contacts": lambda i: {"survivor_id": ids[who(i)], "duplicate_ids": [spare(i)], "confirm": True},
        "delete_contact": lambda i: {"contact_id": spare(i), "confirm": True},
    }

    def spare(i: int) -> str:
        if spares is None or i >= len(spares):
            raise BenchError(f"{tool} call {i} has no spare contact left (seed_spares seeded {len(spares or [])})")
        return spares[i]

    return generators[tool]


async def seed_contacts(client: Client, pool: int) -> list[str]:
    """Store the pool's contacts through the tool; their ids, in pool order."""
    ids: list[str] = []
    for i in range(pool):
        result = await client.call_tool("upsert_contact", person(i, pool))
        if result.is_error or not isinstance(result.structured_content, dict):
            raise BenchError(f"seeding the store failed: {result.content}")
        ids.append(str(result.structured_content["id"]))
    return ids


async def seed_spares(client: Client, count: int, tag: str) -> list[str]:
    """`count` contacts for calls that use one up (merge, delete), unlike the pool's: their ids, in order."""
    ids: list[str] = []
    for i in range(count):
        who = {"email": f"spare.{tag}{i}@example.com", "name": f"Spare {tag} {i}", "phone": f"+1212555{i % 10_000:04d}"}
        result = await client.call_tool("upsert_contact", who)
        if result.is_error or not isinstance(result.structured_content, dict):
            raise BenchError(f"seeding spare contacts failed: {result.content}")
        ids.append(str(result.structured_content["id"]))
    return ids
