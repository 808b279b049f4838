"""The one logging set-up every entry point uses: a record is one line whatever its values hold, tracebacks are
indented under it, and a rate-limited logger says how much it dropped."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from contact_mcp.cli import main
from contact_mcp.logs import (
    TALKATIVE_LOGGERS,
    EscapingFormatter,
    RateLimit,
    WithoutQueryString,
    configure_logging,
    escape_controls,
)

FORGED = "2026-12-03 10:00:00,000 WARNING contact_mcp: admin login"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("a\nb", "a\\nb"),
        ("a\r\nb", "a\\r\\nb"),
        ("tab\there", "tab\\there"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00", "nul\\x00"),
        ("nel\x85", "nel\\x85"),
        ("ls\u2028ps\u2029", "ls\\u2028ps\\u2029"),
        ("plain text, ünïcödé", "plain text, ünïcödé"),
    ],
    ids=["newline", "crlf", "tab", "escape", "nul", "nel", "unicode-separators", "plain"],
)
def test_control_characters_are_escaped(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


_PROBE = f"""
import logging, sys
from contact_mcp.cli import main
import contact_mcp.logs as logs
logs.configure_logging("INFO")
log = logging.getLogger("contact_mcp.probe")
log.info("contact %s not found", "abc\\n{FORGED}")
try:
    raise ValueError("boom\\n{FORGED}")
except ValueError:
    log.exception("failed on %r", "x")
"""


@pytest.mark.slow
def test_a_value_cannot_start_a_log_line_of_its_own() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert not any(line.startswith(FORGED) for line in lines)
    assert any(line.endswith(f"contact abc\\n{FORGED} not found") for line in lines)
    records = [line for line in lines if not line.startswith(" ")]
    assert len(records) == 2  # the info line and the exception's first line; the traceback is indented under it
    assert any(line.strip().startswith("ValueError: boom") for line in lines)


def test_the_cli_logs_through_the_same_formatter(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["manifest", "--check", "--dir", str(tmp_path)])
    assert [type(h.formatter) for h in logging.getLogger().handlers] == [EscapingFormatter]


def _host_warning(host: str) -> logging.LogRecord:
    # The SDK formats the value into the message itself, so every record's text differs.
    return logging.LogRecord("mcp.x", logging.WARNING, __file__, 1, f"Invalid Host header: {host}", None, None)


def test_a_rate_limited_logger_lets_a_burst_through_then_counts_what_it_dropped() -> None:
    limit = RateLimit(burst=2, per_s=0.05)
    verdicts = [limit.filter(_host_warning(f"evil{n}.example")) for n in range(5)]
    assert verdicts == [True, True, False, False, False]
    time.sleep(0.06)
    after = _host_warning("late.example")
    assert limit.filter(after) is True
    assert "3 more like this" in after.getMessage()


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_replaces_any_earlier_handler() -> None:
    logging.basicConfig()
    configure_logging("DEBUG")
    configure_logging("INFO")
    root = logging.getLogger()
    assert len(root.handlers) == 1
    assert root.level == logging.INFO


def test_a_rate_limit_without_tracebacks_keeps_the_exception_on_the_line() -> None:
    try:
        raise ValueError("bad 100% body")
    except ValueError:
        record = logging.LogRecord("mcp.x", logging.ERROR, __file__, 1, "Failed %s", ("parse",), sys.exc_info())
    assert RateLimit(tracebacks=False).filter(record) is True
    assert record.exc_info is None
    assert record.getMessage() == "Failed parse: ValueError('bad 100% body')"


def test_an_access_line_loses_its_query_string_where_a_client_may_put_a_token() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/mcp?access_token=S3cr3t", "1.1", 401), None,
    )  # fmt: skip
    assert WithoutQueryString().filter(record)
    assert record.getMessage() == '127.0.0.1:5000 - "POST /mcp?… HTTP/1.1" 401'


def test_configure_logging_filters_uvicorns_access_log_and_holds_sse_chunks_at_warning() -> None:
    configure_logging("DEBUG")
    try:
        assert any(isinstance(f, WithoutQueryString) for f in logging.getLogger("uvicorn.access").filters)
        assert "sse_starlette.sse" in TALKATIVE_LOGGERS  # it logs every SSE chunk, bodies and names in them, at DEBUG
        assert logging.getLogger("sse_starlette.sse").level == logging.WARNING
    finally:
        configure_logging("WARNING")


def test_retries_scheduled_during_an_outage_are_a_few_lines_not_one_each(capsys: pytest.CaptureFixture[str]) -> None:
    retries = logging.getLogger("stamina")
    for earlier in [f for f in retries.filters if isinstance(f, RateLimit)]:  # one an earlier test may have used up
        retries.removeFilter(earlier)
    configure_logging("WARNING")
    for _ in range(50):  # stamina's own record for each retry it schedules
        retries.warning("stamina.retry_scheduled")
    lines = [line for line in capsys.readouterr().err.splitlines() if "stamina.retry_scheduled" in line]
    assert 1 <= len(lines) <= 5
