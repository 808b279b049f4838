"""The benchmark cannot rot: `python -m bench --quick` runs every scenario end to end and writes its tables.

Tiny counts, output in a temporary folder (never the committed bench/RESULTS.md), and no timing assertions: these
tests check that each scenario ran and reported, not what it measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from bench.ablation import validation_off
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


def run_bench(tmp_path: Path, *args: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out), *args],
        cwd=ROOT,
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
    report, raw = run_bench(tmp_path)

    for heading in SECTIONS.values():
        assert heading in report
    assert "## Targets" in report
    assert f"| mcp | {version('mcp')} |" in report
    assert report.count("| upsert_contact | ") == 12  # 3 transports x 2 concurrencies, local and provider
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
    assert len(raw["targets"]) == 6


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
