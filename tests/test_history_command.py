"""`contact-mcp history`: the history in CONTACT_MCP_DB as lines for people or JSON for programs, filtered by
contact, provider and time, run in-process through the CLI's `main`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.types import Implementation

from contact_mcp import build_server, load_settings
from contact_mcp.cli import main
from contact_mcp.history_command import since


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    return int(exit_info.value.code or 0)


def writes(db: Path) -> list[str]:
    """A few writes through a real client; the contact ids made."""

    async def run() -> list[str]:
        info = Implementation(name="cli-test\nforged line", version="1")
        async with Client(build_server(load_settings(db=str(db))), client_info=info) as client:
            ann = await client.call_tool("upsert_contact", {"email": "ann@example.com", "name": "Ann"})
            bob = await client.call_tool("create_contact", {"username": "bob", "phone_number": "+14155550132"})
            await client.call_tool("upsert_contact", {"email": "ann@example.com", "name": "Ann L"})
        assert ann.structured_content is not None and bob.structured_content is not None
        return [ann.structured_content["id"], bob.structured_content["id"]]

    return anyio.run(run)


@pytest.fixture
def ids(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    return writes(db_path)


def test_history_prints_one_line_per_write_oldest_first(ids: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["history"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert len(lines) == 3
    assert f"upsert_contact  local  {ids[0]}  created  " in lines[0]
    assert '[name - -> "Ann"; methods - -> email a***@example.com]' in lines[0]
    assert f"create_contact  local  {ids[1]}  created  " in lines[1]
    assert "methods - -> phone +1******0132]" in lines[1]
    assert lines[2].split("  ")[4:6] == ["updated", '[name "Ann" -> "Ann L"]']
    # A client's name is the client's text: it cannot start a line of its own.
    assert all(line.endswith("by cli-test\\nforged line over memory") for line in lines)
    assert err.strip() == "history: 3 write(s)"


def test_history_of_one_contact_as_json(ids: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["history", "--contact", ids[0], "--json"]) == 0
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["tool"], e["outcome"], e["contact_id"]) for e in entries] == [
        ("upsert_contact", "created", ids[0]),
        ("upsert_contact", "updated", ids[0]),
    ]
    assert entries[0]["client"] == "cli-test\nforged line"


def test_history_since_and_provider_filter(ids: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["history", "--since", "1h", "--provider", "local"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert exit_code(["history", "--since", "2999-01-01"]) == 0
    assert capsys.readouterr().out == ""
    assert exit_code(["history", "--provider", "feather"]) == 0
    assert capsys.readouterr().out == ""


def test_a_bad_since_is_a_usage_error(ids: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["history", "--since", "yesterday"]) == 2
    assert "--since" in capsys.readouterr().err


def test_since_reads_dates_instants_and_spans() -> None:
    now = datetime(2026, 5, 20, 15, 0, tzinfo=UTC)
    assert since("2026-05-20") == "2026-05-20T00:00:00.000Z"
    assert since("2026-05-20T17:04+02:00") == "2026-05-20T15:04:00.000Z"
    assert since("90m", now=now) == "2026-05-20T13:30:00.000Z"
    assert since("7d", now=now) == "2026-05-13T15:00:00.000Z"


def test_doctor_says_where_the_history_is_kept(
    db_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONTACT_MCP_DB", str(db_path))
    monkeypatch.setenv("CONTACT_MCP_HISTORY_RETENTION_DAYS", "30")
    assert exit_code(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "History of writes:\n  kept in CONTACT_MCP_DB, recorded; retention 30 days" in out


@pytest.mark.parametrize("command", [["history"], ["export"]])
def test_a_reading_command_on_a_missing_file_says_so_and_creates_nothing(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.db"
    monkeypatch.setenv("CONTACT_MCP_DB", str(missing))

    assert exit_code(command) == 2
    assert "CONTACT_MCP_DB names no database file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
