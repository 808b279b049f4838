"""Fixtures shared by the whole suite: settings on a temporary database, an in-memory MCP client; and the quick
subset (`-m quick`: every test not marked `slow`, where a test that starts a process is marked `slow`)."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import stamina
from mcp import Client
from stamina.instrumentation import RetryDetails, get_on_retry_hooks, set_on_retry_hooks

from contact_mcp import Settings, build_server, load_settings

# Prefixes of the environment variables our settings read; cleared for every test so the developer's shell
# cannot leak in.
_OUR_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _no_retry_sleep() -> Iterator[None]:
    """Retries still happen (attempt counts are real), but stamina never sleeps between them."""
    with stamina.set_testing(True, attempts=10, cap=True):
        yield


@pytest.fixture
def retry_waits() -> Iterator[list[float]]:
    """Real backoff (stamina's testing mode off, where every wait — even a Retry-After one — is zero), with each
    scheduled wait recorded through stamina's instrumentation."""
    waits: list[float] = []

    def record(details: RetryDetails) -> None:
        waits.append(details.wait_for)

    hooks = get_on_retry_hooks()
    set_on_retry_hooks([record])
    try:
        with stamina.set_testing(False):
            yield waits
    finally:
        set_on_retry_hooks(hooks)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "contacts.db"


@pytest.fixture
def settings(db_path: Path) -> Settings:
    return load_settings(db=str(db_path))


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings), raise_exceptions=True) as c:
        yield c


# ---------- the quick subset ----------
# `slow` is declared by hand on each test that starts a process (a server over stdio or HTTP, the CLI, the benchmark,
# a database server); every other test is `quick`. Process launches are what cost the suite its time, so an audit
# hook holds the line: a quick test (or a fixture it sets up) that starts a process fails, saying to mark it slow.

_PROCESS_EVENTS = frozenset({"subprocess.Popen", "os.posix_spawn", "os.fork", "os.forkpty", "os.system", "os.exec"})
_launched: list[str] = []
_watching: list[bool] = [False]


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _watching[0] and event in _PROCESS_EVENTS:
        _launched.append(f"{event} {str(args[:2])[:200]}")


sys.addaudithook(_audit)  # audit hooks cannot be removed; `_watching` switches this one off between tests


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.quick)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    _launched.clear()
    _watching[0] = item.get_closest_marker("quick") is not None
    try:
        return (yield)
    finally:
        _watching[0] = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if _launched and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} started a process ({_launched[0]}) but is in the quick subset: "
            "mark it @pytest.mark.slow (README, Development)"
        )
        _launched.clear()
    return report


# ---------- figures ----------
# A test that measures something worth seeing on every run (e.g. the tools/list token count) records it with
# `record_property("figure", text)`; the summary prints them, since tests in xdist workers cannot print themselves.


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if isinstance(report, pytest.TestReport) and report.when == "call"
        for name, value in report.user_properties
        if name == "figure"
    ]
    if figures:
        terminalreporter.section("figures")
        for figure in figures:
            terminalreporter.line(figure)
