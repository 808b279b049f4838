"""The report's part for the store that outgrows one machine (issue 11): its targets and sections 6 to 9.

PostgreSQL against SQLite per tool (6), replicas (7), the PostgreSQL store's latency by size (8), import throughput
(9), and the check that moving SQLite off the event loop cost the local store at most 10% (next to section 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.importing import ImportResult
from bench.overhead import Comparison
from bench.replicas import Profile, ReplicaComparison, ReplicaResult
from bench.scale import OPERATIONS, SCALE_GROWTH, ScaleResult, scale_table
from bench.tables import Verdict, mark, round_spread, table
from contact_mcp.settings import Settings

POSTGRES_P50 = 1.5
REPLICA_SPEEDUP = 1.3
IMPORT_FLOOR = 0.5
IMPORT_ROWS = 100_000
IMPORT_SECONDS = 60.0
OFF_LOOP_COST = 1.10

BEFORE_OFF_LOOP_COMMIT = "7bea6e9"
BEFORE_OFF_LOOP: dict[tuple[str, str], float] = {
    # The local store's sequential p50 ratios (contact-mcp / bare SDK) in RESULTS.md at 7bea6e9, when the SQLite
    # store still ran on the event loop: the reference for the off-the-loop check.
    ("upsert_contact", "stdio"): 1.2307,
    ("get_contact", "stdio"): 1.0956,
    ("upsert_contact", "http"): 1.1991,
    ("get_contact", "http"): 1.1455,
}


@dataclass
class StoreResults:
    backends: list[Comparison] = field(default_factory=list[Comparison])
    postgres_version: str | None = None
    replicas: ReplicaResult | None = None
    scale: ScaleResult | None = None
    importing: list[ImportResult] = field(default_factory=list[ImportResult])
    import_failures: dict[str, str] = field(default_factory=dict[str, str])  # backend -> what failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "postgres_version": self.postgres_version,
            "backends": [c.as_dict() for c in self.backends],
            "replicas": self.replicas.as_dict() if self.replicas else None,
            "scale_postgres": self.scale.as_dict() if self.scale else None,
            "import": [result.as_dict() for result in self.importing],
            "import_failures": self.import_failures,
        }


def off_loop_rows(local: list[Comparison]) -> list[tuple[Comparison, float, float]]:
    """(comparison, ratio then, now/then) for every sequential stdio/HTTP local comparison."""
    rows: list[tuple[Comparison, float, float]] = []
    for c in local:
        before = BEFORE_OFF_LOOP.get((c.operation, c.transport))
        if c.concurrency == 1 and before is not None:
            rows.append((c, before, c.p50_ratio / before))
    return rows


def store_targets(results: StoreResults, local: list[Comparison]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    if results.backends:
        worst = max(results.backends, key=lambda c: c.p50_ratio)
        verdicts.append(
            Verdict(
                f"PostgreSQL store p50 ≤ {POSTGRES_P50}× the SQLite store's, every tool (streamable HTTP)",
                f"worst {worst.p50_ratio:.2f}× ({worst.operation})",
                all(c.p50_ratio <= POSTGRES_P50 for c in results.backends),
            )
        )
    if results.replicas is not None and results.replicas.comparisons:
        replicas = results.replicas
        worst_r = min(replicas.comparisons, key=lambda c: c.ratio)
        n = worst_r.replicas
        verdicts.append(
            Verdict(
                f"{n} replicas ≥ {REPLICA_SPEEDUP}× one replica's calls/s, 64 concurrent clients ({replicas.database})",
                f"worst {worst_r.ratio:.2f}× ({worst_r.tool}, {worst_r.era} client: "
                f"{worst_r.calls_per_s(worst_r.one):,.0f} → "
                f"{worst_r.calls_per_s(worst_r.many):,.0f} calls/s)",
                all(c.ratio >= REPLICA_SPEEDUP for c in replicas.comparisons),
            )
        )
    if results.scale is not None:
        scale = results.scale
        worst_op = max(OPERATIONS, key=scale.growth)
        verdicts.append(
            Verdict(
                f"PostgreSQL store p50 at {scale.sizes[-1]:,} contacts ≤ {SCALE_GROWTH}× its p50 at {scale.sizes[0]:,}",
                f"worst {scale.growth(worst_op):.2f}× ({worst_op})",
                all(scale.growth(op) <= SCALE_GROWTH for op in OPERATIONS),
            )
        )
    for imp in results.importing:
        verdicts.append(
            Verdict(
                f"`import` of {imp.rows:,} CSV rows ≥ {IMPORT_FLOOR}× its floor's contacts/s ({imp.backend})",
                f"{imp.ratio:.2f}× ({imp.contacts_per_s:,.0f} vs {imp.floor_per_s:,.0f} contacts/s)",
                imp.ratio >= IMPORT_FLOOR,
            )
        )
        per_100k = imp.import_s * IMPORT_ROWS / imp.rows
        verdicts.append(
            Verdict(
                f"`import` of {IMPORT_ROWS:,} CSV rows in under {IMPORT_SECONDS:.0f} s ({imp.backend})",
                f"{imp.import_s:.1f} s for {imp.rows:,} rows"
                + ("" if imp.rows == IMPORT_ROWS else f" (≈{per_100k:.1f} s per 100k)"),
                per_100k < IMPORT_SECONDS,
            )
        )
    for backend, failure in results.import_failures.items():
        verdicts.append(
            Verdict(
                f"`import` of {IMPORT_ROWS:,} CSV rows ≥ {IMPORT_FLOOR}× its floor, in under {IMPORT_SECONDS:.0f} s "
                f"({backend})",
                f"not measured: the import failed ({_first_line(failure)})",
                False,
            )
        )
    rows = off_loop_rows(local)
    if rows:
        worst_c, worst_before, worst_cost = max(rows, key=lambda r: r[2])
        verdicts.append(
            Verdict(
                f"SQLite store off the event loop: local p50 ratio (stdio, HTTP) ≤ {OFF_LOOP_COST}× its ratio at "
                f"{BEFORE_OFF_LOOP_COMMIT}",
                f"worst {worst_cost:.2f}× ({worst_c.operation}, {worst_c.transport}: {worst_before:.2f}× then, "
                f"{worst_c.p50_ratio:.2f}× now)",
                all(cost <= OFF_LOOP_COST for _, _, cost in rows),
            )
        )
    return verdicts


# ---------- sections ----------


def section_off_loop(local: list[Comparison]) -> list[str]:
    rows = off_loop_rows(local)
    if not rows:
        return []
    body = [
        [
            c.operation,
            c.transport,
            f"{before:.2f}×",
            f"{c.p50_ratio:.2f}×",
            f"{cost:.2f}×",
            f"≤ {OFF_LOOP_COST}×: {mark(cost <= OFF_LOOP_COST)}",
        ]
        for c, before, cost in rows
    ]
    return [
        "### The SQLite store off the event loop: what it cost",
        "",
        f"The same sequential comparisons as in RESULTS.md at {BEFORE_OFF_LOOP_COMMIT}, when the SQLite store "
        "still ran its queries on the event loop. Ratios, not milliseconds, are compared: each run measured "
        "its own bare SDK baseline on the machine of the day.",
        "",
        *table(
            ["tool", "transport", f"p50 ratio at {BEFORE_OFF_LOOP_COMMIT}", "p50 ratio now", "now / then", "target"],
            body,
        ),
        "",
    ]


def section_backends(results: StoreResults) -> list[str]:
    if not results.backends:
        return []
    body = [
        [
            c.operation,
            f"{c.ours.p50_ms:.3f} / {c.ours.p99_ms:.3f}",
            f"{c.baseline.p50_ms:.3f} / {c.baseline.p99_ms:.3f}",
            f"{c.p50_ratio:.2f}×",
            round_spread(c.round_p50_ratios),
            f"≤ {POSTGRES_P50}×: {mark(c.p50_ratio <= POSTGRES_P50)}",
        ]
        for c in results.backends
    ]
    return [
        "## 6. PostgreSQL store against the SQLite store",
        "",
        f"Two `contact-mcp serve --transport http` processes, one on PostgreSQL {results.postgres_version or ''} "
        "(started by the benchmark as the tests start it: a throwaway cluster with `fsync`, `synchronous_commit` "
        "and `full_page_writes` off, like SQLite's WAL with `synchronous=NORMAL` it does not wait for the disk on "
        "commit), one on a SQLite file, each seeded with the same pool of contacts; every tool called "
        "sequentially with the same arguments in the same order on both, alternating call by call, in A/B rounds. "
        "Writes change something on every call.",
        "",
        *table(
            [
                "tool",
                "PostgreSQL p50 / p99 ms",
                "SQLite p50 / p99 ms",
                "p50 ratio",
                "per round (min–max)",
                "target",
            ],
            body,
        ),
        "",
    ]


def _cpu_cells(c: ReplicaComparison, runs_one: bool) -> list[str]:
    runs = c.one if runs_one else c.many
    cpu = c.cpu_ms_per_call(runs)
    return [
        f"{cpu['replicas']:.2f}",
        f"{cpu['database']:.2f}",
        f"{cpu['wrk']:.3f}",
        f"{c.replica_cores(runs):.2f}",
        f"{100 * c.machine_busy(runs):.0f}%",
    ]


def _profile_lines(profile: Profile) -> list[str]:
    if profile.error is not None:
        return [f"Profile with {profile.replicas} replica(s): not taken: {profile.error}.", ""]
    return [
        f"**{profile.replicas} replica(s) serving {profile.tool}**: py-spy sampled the first replica for "
        f"{profile.seconds:.0f} s at {profile.rate}/s, only the thread holding the GIL: it held it "
        f"{100 * profile.gil_busy:.0f}% of the time ({profile.samples} samples).",
        "",
        *table(
            ["innermost frame in", "share of samples", "any frame below the event loop in", "share of samples"],
            [
                [f"`{leaf}`", f"{100 * share:.1f}%", f"`{inc}`", f"{100 * inc_share:.1f}%"]
                for (leaf, share), (inc, inc_share) in zip(profile.by_package, profile.inclusive, strict=False)
            ],
        ),
        "",
        "Most sampled innermost functions:",
        "",
        *table(
            ["function", "share of samples"],
            [[f"`{name}`", f"{100 * share:.1f}%"] for name, share in profile.by_function[:8]],
        ),
        "",
    ]


def section_replicas(results: StoreResults) -> list[str]:
    replicas = results.replicas
    if replicas is None:
        return []
    counts = replicas.counts
    body: list[list[str]] = []
    for c in replicas.comparisons:
        body.append(
            [
                c.tool,
                c.era,
                f"{c.calls_per_s(c.one):,.0f}",
                f"{c.p50_ms(c.one):.1f}",
                f"{c.calls_per_s(c.many):,.0f}",
                f"{c.p50_ms(c.many):.1f}",
                f"{c.ratio:.2f}×",
                round_spread(c.round_ratios),
                f"{c.ceiling:.2f}×",
                f"≥ {REPLICA_SPEEDUP}×: {mark(c.ratio >= REPLICA_SPEEDUP)}",
            ]
        )
    cpu_body = [
        [c.tool, c.era, label, *_cpu_cells(c, one)]
        for c in replicas.comparisons
        for label, one in (("1 replica", True), (f"{c.replicas} replicas", False))
    ]
    n = counts.replicas
    lines = [
        f"## 7. Replicas: calls/s with {counts.connections} concurrent clients",
        "",
        f"{n} `contact-mcp serve --transport http --stateless` processes on one {replicas.database} store, each "
        f"with the default pool of up to {Settings.model_fields['db_pool_size'].default} connections. `wrk` "
        f"keeps {counts.connections} keep-alive connections busy from {counts.threads} threads "
        "(`bench/wrk_tools_call.lua`: JSON-RPC `tools/call` posted without `initialize`, as a 2025-11-25 client, "
        "which the SDK's stateless mode answers with one SSE event, or as a 2026-07-28 client, sessionless by "
        "protocol: the `_meta` envelope and the `Mcp-Method`/`Mcp-Name` headers, answered with plain JSON; "
        f"thread i talks to replica i % {n}, as a round-robin "
        f"balancer with keep-alive would spread them), either all to the first replica or spread over the "
        f"{n}; the two set-ups alternate run by run ({counts.rounds} runs of {counts.round_s:.0f} s each after a "
        f"{counts.warmup_s:.0f} s warm-up per tool), so drift falls on both. Every answer is checked for an "
        "error. get_contact reads one of "
        f"{counts.pool} contacts; upsert_contact rewrites one of them with a new name on every call.",
        "",
        *table(
            [
                "tool",
                "client era",
                "1 replica calls/s",
                "p50 ms",
                f"{n} replicas calls/s",
                "p50 ms",
                "ratio",
                "per run pair (min–max)",
                "ceiling on this machine",
                "target",
            ],
            body,
        ),
        "",
        "### What bounds it",
        "",
        "CPU time per call, read from each party's processes around every run (`wrk`'s own cost shows the load "
        "generator is not what is measured), how many cores' worth of CPU the replicas used together, and how busy "
        "the machine's cores were. The *ceiling* in the table above is what more replicas could reach at best on "
        "this machine at one replica's CPU cost per call: all its cores busy with replicas, PostgreSQL and wrk "
        "(cores × 1000 / the three ms CPU/call), over one replica's calls/s.",
        "",
        *table(
            [
                "tool",
                "client era",
                "set-up",
                "replicas ms CPU/call",
                "PostgreSQL ms CPU/call",
                "wrk ms CPU/call",
                "replicas' cores",
                "machine's cores busy",
            ],
            cpu_body,
        ),
        "",
    ]
    for profile in replicas.profiles:
        lines += _profile_lines(profile)
    return lines


def section_scale(results: StoreResults) -> list[str]:
    scale = results.scale
    if scale is None:
        return []
    header, body = scale_table(scale)
    return [
        "## 8. Store scale on PostgreSQL",
        "",
        f"As section 4, on PostgreSQL {results.postgres_version or ''}: `LocalStore` in-process, one database "
        f"(schema) per size, filled with `COPY` in the form the store writes a new contact (111,000 upserts one by "
        f"one would take most of the run's budget; the timed lookups must find their contacts or the run fails) "
        f"({scale.populate_s:.0f} s to populate all; tables and indexes {scale.storage_mib:.1f} MiB at "
        f"{scale.sizes[-1]:,} contacts, `ANALYZE`d), each operation timed on the sizes in turn. Inserts and "
        "upserts go through the store's rules, advisory locks and all.",
        "",
        *table(header, body),
        "",
    ]


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[-1] if text.strip() else ""
    return line[:limit]


def section_import(results: StoreResults) -> list[str]:
    if not results.importing and not results.import_failures:
        return []
    rows = results.importing[0].rows if results.importing else IMPORT_ROWS
    body: list[list[str]] = []
    for imp in results.importing:
        body += [
            [imp.backend, "`contact-mcp import`", f"{imp.import_s:.1f}", f"{imp.contacts_per_s:,.0f}", "", ""],
            [
                imp.backend,
                f"floor: normalise {imp.normalise_s:.1f} s + `{imp.writer}` {imp.write_s:.1f} s",
                f"{imp.floor_s:.1f}",
                f"{imp.floor_per_s:,.0f}",
                f"{imp.ratio:.2f}×",
                f"≥ {IMPORT_FLOOR}×: {mark(imp.ratio >= IMPORT_FLOOR)}",
            ],
        ]
    return [
        "## 9. Import throughput",
        "",
        f"`python -m contact_mcp import FILE` of {rows:,} CSV rows (email, phone in `+1 415-2xx-xxxx` form, "
        "name, user_id; all new contacts) into an empty store, timed from spawn to exit. The floor reads the same "
        "file, normalises every email and phone with the same functions (`contact_mcp.normalize`) and writes the "
        "rows in one transaction with plain bulk statements (PostgreSQL: one `COPY` per table; SQLite: "
        "`executemany`) into freshly migrated tables (indexes included), with no matching and no checks. Every "
        "run's contacts are counted afterwards.",
        "",
        *table(["store", "", "seconds", "contacts/s", "import / floor", "target"], body),
        "",
        *(
            f"**{backend}: not measured.** `contact-mcp import` failed: `{_first_line(failure)}`"
            for backend, failure in results.import_failures.items()
        ),
        "",
    ]


def store_sections(results: StoreResults) -> list[str]:
    return [*section_backends(results), *section_replicas(results), *section_scale(results), *section_import(results)]
