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
from tests.postgres_server import TEST_DB_ENV, PostgresServer, create_schema, drop_schema, with_schema

# Prefixes of the environment variables our settings read; cleared for every test so the developer's shell
# cannot leak in.
_OUR_PREFIXES = ("CONTACT_MCP_", "FEATHER_", "TETHERAI_", "BLOOIO_", "FEATUREBASE_", "PROTOCOL_")
# Read before `_clean_env` clears it: the user's own PostgreSQL for the store contract suite (tests/postgres_server.py).
_USER_TEST_DB = os.environ.get(TEST_DB_ENV, "").strip() or None


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_OUR_PREFIXES):
            monkeypatch.delenv(name)
    # The default CONTACT_MCP_DB lives under XDG_DATA_HOME: a server on provider APIs alone still opens it for the
    # history of writes, and no test may write into the developer's home.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg")))


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


# ---------- PostgreSQL (tests/postgres_server.py) ----------


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server this test session started (once), stopped and removed at the end."""
    try:
        server = PostgresServer.start_new()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def postgres_base_url(request: pytest.FixtureRequest) -> str:
    """The PostgreSQL the store contract suite runs on: CONTACT_MCP_TEST_DB's server when set, else the one the
    suite started (started only when a test needs it)."""
    if _USER_TEST_DB is not None:
        return _USER_TEST_DB
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.url()


@pytest.fixture
def postgres_url(postgres_base_url: str) -> Iterator[str]:
    """A URL whose database is empty and this test's own (a fresh schema) on `postgres_base_url`'s server."""
    schema = create_schema(postgres_base_url)
    try:
        yield with_schema(postgres_base_url, schema)
    finally:
        drop_schema(postgres_base_url, schema)


@pytest.fixture
def started_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """Like `postgres_url`, but always on the server the suite started (tests that stop it or spread it over
    server processes)."""
    schema = create_schema(postgres_server.url())
    try:
        yield postgres_server.url(schema=schema)
    finally:
        if not postgres_server.running:
            postgres_server.start()
        drop_schema(postgres_server.url(), schema)


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


# Tests on PostgreSQL need the server process the session starts (tests/postgres_server.py): slow by that alone.
_POSTGRES_FIXTURES = frozenset({"postgres_server", "postgres_base_url", "postgres_url", "started_postgres_url"})


def _needs_postgres(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    params: dict[str, object] = callspec.params if callspec is not None else {}
    return params.get("store_backend") == "postgres" or not _POSTGRES_FIXTURES.isdisjoint(
        getattr(item, "fixturenames", ())
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _needs_postgres(item):
            item.add_marker(pytest.mark.slow)
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
