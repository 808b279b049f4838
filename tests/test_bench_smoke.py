"""The benchmark cannot rot: `python -m bench --quick` runs every scenario end to end and writes its tables.

The store scenarios (6-9) start PostgreSQL as the store tests do and drive replicas with wrk; without wrk the run
fails saying how to install it.

Tiny counts, output in a temporary folder (never the committed bench/RESULTS.md), and no timing assertions: these
tests check that each scenario ran and reported, not what it measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from bench.ablation import validation_off
from bench.carry import carry, splice
from bench.loadgen import request_body, request_headers, write_bodies
from bench.replicas import summarize_profile
from bench.run import SCENARIOS
from bench.workloads import TOOLS
from mcp import Client

from contact_mcp import build_server, load_settings

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = {
    "local": "## 1. Local store tool overhead",
    "provider": "## 2. Provider tool overhead",
    "coldstart": "## 3. Cold start",
    "scale": "## 4. Store scale",
    "memory": "## 5. Memory",
}
CLASSIC = ("local", "provider", "coldstart", "scale", "memory")
STORE_SECTIONS = {
    "postgres": "## 6. PostgreSQL store against the SQLite store",
    "replicas": "## 7. Replicas: calls/s with",
    "scale-postgres": "## 8. Store scale on PostgreSQL",
    "import": "## 9. Import throughput",
}


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        # Where the default store would be: a benchmark must never write there (see the classic run's test).
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path / "user-data")},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out.read_text(), json.loads((tmp_path / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_run_writes_every_scenario_table_and_the_raw_numbers(tmp_path: Path) -> None:
    report, raw = run_bench(tmp_path, *(arg for scenario in CLASSIC for arg in ("--only", scenario)))

    for heading in SECTIONS.values():
        assert heading in report
    assert "## Targets" in report
    assert f"| mcp | {version('mcp')} |" in report
    # 3 transports x 2 concurrencies, local and provider; and stdio and HTTP in the off-the-event-loop check
    assert report.count("| upsert_contact | ") == 14
    transports = {row["transport"] for row in raw["local"]} | {row["transport"] for row in raw["provider"]}
    assert transports == {"memory", "stdio", "http"}
    assert {row["concurrency"] for row in raw["local"]} == {1, 32}
    assert {row["operation"] for row in raw["local"]} == {"upsert_contact", "get_contact"}
    assert all(row["ours"]["calls"] > 0 and row["baseline"]["calls"] > 0 for row in raw["local"] + raw["provider"])
    assert raw["floor"]["calls"] > 0
    assert raw["cold_start"]["ours_ms"] and raw["cold_start"]["baseline_ms"]
    assert any(entry["module"].startswith("contact_mcp.") for entry in raw["imports"]["top"])
    assert len(raw["scale"]["rows"]) == 2 * 5  # two sizes in --quick, five operations each
    assert {(row["server"], row["transport"]) for row in raw["memory"]} == {
        ("contact-mcp", "stdio"),
        ("contact-mcp", "http"),
        ("bare SDK (trivial)", "stdio"),
    }
    assert len(raw["targets"]) == 7  # the six, and what moving SQLite off the event loop cost
    assert not (tmp_path / "user-data").exists()  # the provider servers' history went to the run's own files
    assert "### The SQLite store off the event loop: what it cost" in report
    assert {(row["operation"], row["transport"]) for row in raw["local"] if row["concurrency"] == 1} >= {
        ("upsert_contact", "stdio"),
        ("get_contact", "http"),
    }


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_quick_run_of_the_store_scenarios_on_postgresql(tmp_path: Path) -> None:
    report, raw = run_bench(tmp_path, *(arg for scenario in STORE_SECTIONS for arg in ("--only", scenario)))

    for heading in STORE_SECTIONS.values():
        assert heading in report
    assert raw["postgres_version"]
    assert [row["operation"] for row in raw["backends"]] == list(TOOLS)
    assert all(row["ours"]["calls"] > 0 and row["baseline"]["calls"] > 0 for row in raw["backends"])
    [replicas] = raw["replicas"]["comparisons"]
    assert replicas["replicas"] == 3 and replicas["era"] == "2025-11-25"
    assert [run["wrk"]["replicas"] for run in replicas["one"] + replicas["many"]] == [1, 3]
    assert all(
        run["wrk"]["requests"] > 0 and run["cpu"]["replicas_s"] > 0 for run in replicas["one"] + replicas["many"]
    )
    assert [(p["replicas"], p["error"]) for p in raw["replicas"]["profiles"]] == [(1, None), (3, None)]
    assert all(p["samples"] > 0 and p["by_package"] for p in raw["replicas"]["profiles"])
    assert len(raw["scale_postgres"]["rows"]) == 2 * 5
    assert ("SQLite", "executemany") in [(row["backend"], row["writer"]) for row in raw["import"]]
    assert all(row["stored"] == row["rows"] > 0 for row in raw["import"])
    # Every store is measured, or its failure is reported (a missed target naming what failed), never dropped.
    assert {row["backend"] for row in raw["import"]} | set(raw["import_failures"]) == {"SQLite", "PostgreSQL"}
    assert "PostgreSQL" not in raw["import_failures"] or "PostgreSQL: not measured" in report
    firsts = [target["target"].split(" ")[0] for target in raw["targets"]]
    assert firsts[:3] == ["PostgreSQL", "3", "PostgreSQL"]
    assert firsts[3:] == ["`import`"] * (2 * len(raw["import"]) + len(raw["import_failures"]))


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_only_runs_the_chosen_scenario(tmp_path: Path) -> None:
    report, raw = run_bench(tmp_path, "--only", "scale")

    assert SECTIONS["scale"] in report
    assert [heading for key, heading in SECTIONS.items() if key != "scale" and heading in report] == []
    assert raw["local"] == [] and raw["provider"] == [] and raw["memory"] == []
    assert [target["target"] for target in raw["targets"]] == [
        "Store p50 at 200 contacts ≤ 2.0× its p50 at 40",
    ]


def run_diagnostic(module: str, *args: str) -> str:
    """`python -m bench.<module> ...` from the repository root; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=55, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_insitu_profile_reports_our_functions_next_to_the_baseline() -> None:
    stdout = run_diagnostic("bench.insitu", "--calls", "30", "--in-flight", "4")

    for row in (
        "| client: contact-mcp upsert_contact |",
        "| contact-mcp — LocalStore.upsert_contact |",
        "| contact-mcp — HttpProvider._send_once (one HTTP exchange) |",
        "| bare SDK — httpx2 AsyncClient.post (one HTTP exchange) |",
        "| contact-mcp — garbage collection, mean per tool call |",
        "| bare SDK — garbage collection, mean per tool call |",
    ):
        assert row in stdout
    assert "4 calls in flight" in stdout


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_ablation_compares_contact_mcp_with_and_without_validation() -> None:
    stdout = run_diagnostic("bench.ablation", "--calls", "10", "--rounds", "2")

    rows = [line for line in stdout.splitlines() if line.startswith(("| local store", "| Feat"))]
    assert [row.split(" | ")[1:3] for row in rows] == [
        ["1", "as shipped"],
        ["1", "validation off"],
        ["1", "validation and SQLite write off"],
        ["1", "as shipped"],
        ["1", "validation off"],
        ["32", "as shipped"],
        ["32", "validation off"],
    ]


@pytest.mark.anyio
async def test_validation_off_reaches_the_running_tools_and_is_undone(tmp_path: Path) -> None:
    server = build_server(load_settings(db=str(tmp_path / "ablation.db"), providers=("local",)))
    async with Client(server) as client:
        with validation_off():
            accepted = await client.call_tool("upsert_contact", {"email": "not an email", "phone": "12"})
        rejected = await client.call_tool("upsert_contact", {"email": "still not an email"})

    assert not accepted.is_error
    assert rejected.is_error


def test_profile_summary_shares_samples_by_innermost_package() -> None:
    loop = "Handle._run (/usr/lib/python3.11/asyncio/events.py:80)"
    raw = (
        f"{loop};call (/v/lib/python3.11/site-packages/mcp/server.py:3) 3\n"
        f"{loop};upsert ({ROOT}/src/contact_mcp/store/postgres.py:9) 1\n"
    )

    profile = summarize_profile(raw, "upsert_contact", 3, seconds=1.0)

    assert profile.samples == 4
    assert profile.by_package == [("mcp", 0.75), ("contact_mcp", 0.25)]
    assert dict(profile.inclusive) == {"mcp": 0.75, "contact_mcp": 0.25}  # below the event loop's Handle._run
    assert profile.by_function[0] == ("call (mcp/server.py:3)", 0.75)
    assert profile.gil_busy == 4 / (1.0 * profile.rate)


def test_profile_summary_finds_the_event_loop_under_uvloop() -> None:
    """uvloop's loop is C code: a task's frames sit on asyncio's `Runner.run`, with no `Handle._run` between."""
    start = (
        "<module> (/v/lib/python3.11/site-packages/contact_mcp/cli.py:1);"
        "Runner.run (/usr/lib/python3.11/asyncio/runners.py:118)"
    )
    raw = (
        f"{start};call (/v/lib/python3.11/site-packages/mcp/server.py:3);dump (/v/lib/python3.11/json/encoder.py:5) 2\n"
        f"{start} 2\n"  # the loop itself, waiting
    )

    profile = summarize_profile(raw, "get_contact", 1, seconds=1.0)

    assert dict(profile.inclusive) == {"mcp": 0.5, "json (stdlib)": 0.5}
    assert dict(profile.by_package) == {"json (stdlib)": 0.5, "asyncio (stdlib)": 0.5}


def test_load_generator_bodies_speak_each_protocol_era(tmp_path: Path) -> None:
    path = write_bodies(tmp_path / "bodies.jsonl", "get_contact", lambda i: {"contact_id": f"c{i}"}, 3, "2026-07-28")

    bodies = [json.loads(line) for line in path.read_text().splitlines()]
    assert [body["params"]["arguments"]["contact_id"] for body in bodies] == ["c0", "c1", "c2"]
    assert {body["method"] for body in bodies} == {"tools/call"}
    assert bodies[0]["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert request_headers("get_contact", "2026-07-28")["Mcp-Name"] == "get_contact"
    legacy = request_body("get_contact", {}, 1, "2025-11-25")
    assert "_meta" not in legacy["params"]
    assert "Mcp-Name" not in request_headers("get_contact", "2025-11-25")


def test_a_partial_run_carries_the_other_sections_marked_with_their_run() -> None:
    committed_md, committed_json = ROOT / "bench" / "RESULTS.md", ROOT / "bench" / "results.json"
    old = json.loads(committed_json.read_text())

    carried = carry(committed_md, committed_json, {"scale"}, SCENARIOS)

    assert carried is not None and carried.commit == old["commit"]
    assert {1, 2, 3, 5} <= set(carried.sections)
    note = "*Not measured in this run: carried from the run at"
    assert all(text.count(note) == 1 for text in carried.sections.values())
    assert not any(t["target"].startswith("Store p50 at") for t in carried.targets)
    assert any(t["target"].startswith("Cold start") for t in carried.targets)
    assert "scale" not in carried.raw and carried.raw["memory"] == old["memory"]
    fresh = "# report\n\n## Targets\n\n## 4. Store scale\n\nnew numbers\n"
    spliced = splice(fresh, carried)
    headings = [line for line in spliced.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Targets"
    assert [h.split(".")[0] for h in headings[1:6]] == ["## 1", "## 2", "## 3", "## 4", "## 5"]
    assert "new numbers" in spliced
