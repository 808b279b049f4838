"""How tests get a real PostgreSQL: a throwaway server the suite starts itself, and a fresh schema per test.

`PostgresServer.start_new()` runs `initdb` in a temporary folder and `postgres` on a free 127.0.0.1 port (its
unix socket stays in that folder), once per test session; `stop()`/`start()` take it down and bring it back on
the same port and data (the outage test), `destroy()` stops it and removes the folder. Durability is switched
off (`fsync`, `synchronous_commit`, `full_page_writes`): the data lives for one session, and the tests measure
behaviour, not disks.

Where the binaries come from, in order: `pg_config --bindir`, `initdb` on PATH, the newest
`/usr/lib/postgresql/*/bin` (Debian and Ubuntu install there, off PATH). Nothing found is a test failure whose
message says what to install (`.ci/run` installs Debian's package before the tests, so CI always has one).
We chose not to fall back to `pgserver` (a PyPI wheel with PostgreSQL 16 inside): it exists only for CPython
3.11/3.12 on Linux x86_64 and macOS arm64, its last release is from 2024, and run as root it creates a system
user on the machine; a distribution's package is maintained, works on every Python we support, and is one
command to install. A dev dependency that covers some machines would hide a missing install on the others.

initdb refuses to run as root, and CI runs as root: as root, the server runs as the unprivileged `postgres` user
(Debian's package creates it; else `nobody`), its folder chowned to that user, started through `subprocess`'s
`user=`/`group=`. The server gets SIGINT (a fast shutdown) if the test process dies, so no server outlives a
killed session.

Isolation: each test gets its own schema (`CREATE SCHEMA`, a millisecond; a database would cost ~150 ms with its
checkpoint), named in the URL's `options=-csearch_path=...`, so the code under test sees an empty database of
its own through a plain connection URL. `CONTACT_MCP_TEST_DB=postgresql://...` points the store contract suite
at a server the user already has instead (the role needs CREATE on that database); the outage and replica tests
always use a server the suite started, since they stop it.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

import psycopg
from psycopg import sql

from tests.fakes.harness import free_port

INSTALL_HINT = (
    "the PostgreSQL tests start their own PostgreSQL server and found no PostgreSQL binaries (initdb, postgres) "
    "via pg_config, PATH or /usr/lib/postgresql/*/bin. Install PostgreSQL: Debian/Ubuntu `apt-get install "
    "postgresql`, Fedora `dnf install postgresql-server`, macOS `brew install postgresql@16`; or put its bin "
    "folder on PATH"
)
TEST_DB_ENV = "CONTACT_MCP_TEST_DB"
"""A PostgreSQL URL that the store contract suite runs against instead of the server it starts."""

_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
_START_TIMEOUT_S = 30.0
_PR_SET_PDEATHSIG = 1


DEBIAN_ROOT = Path("/usr/lib/postgresql")


def find_bindir(*, path: str | None = None, debian_root: Path = DEBIAN_ROOT) -> Path | None:
    """The folder holding `initdb` and `postgres`, or None when this machine has no PostgreSQL; `path` (default:
    the PATH variable) and `debian_root` are where to look."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config", path=path)
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    initdb = shutil.which("initdb", path=path)
    if initdb:
        candidates.append(Path(initdb).parent)

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in folder.parent.name.split(".") if part.isdigit())

    candidates += sorted(debian_root.glob("*/bin"), key=version, reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _server_user() -> pwd.struct_passwd | None:
    """Who runs the server: None (ourselves) unless we are root, whom initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root, and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL as")


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send the server SIGINT (fast shutdown) when the test process exits."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)

    return arm


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, owned by this test session."""

    def __init__(self, bindir: Path, root: Path, user: pwd.struct_passwd | None) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.user = user
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start_new(cls, *, path: str | None = None, debian_root: Path = DEBIAN_ROOT) -> PostgresServer:
        """initdb + start, with the binaries `find_bindir` finds; `RuntimeError` with `INSTALL_HINT` when
        PostgreSQL is not installed."""
        bindir = find_bindir(path=path, debian_root=debian_root)
        if bindir is None:
            raise RuntimeError(INSTALL_HINT)
        user = _server_user()
        root = Path(tempfile.mkdtemp(prefix="contact-mcp-pg-"))
        if user is not None:
            os.chown(root, user.pw_uid, user.pw_gid)
        server = cls(bindir, root, user)
        try:
            server._run(
                "initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C",
                "--no-sync", "--no-instructions",
            )  # fmt: skip
            server.start()
        except BaseException:
            server.destroy()
            raise
        return server

    @property
    def _uid(self) -> int | None:
        return None if self.user is None else self.user.pw_uid

    @property
    def _gid(self) -> int | None:
        return None if self.user is None else self.user.pw_gid

    @property
    def _groups(self) -> list[int] | None:
        return None if self.user is None else []

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            [str(self.bindir / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.root,
            check=False,
            user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the server (on the port it had before, if it ran before) and wait until it accepts connections."""
        for _attempt in range(5):
            port = self.port or free_port()
            settings = [f"--{name}={value}" for name, value in _SETTINGS.items()]
            with self.log.open("ab") as log:
                self._proc = subprocess.Popen(
                    [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(port),
                     f"--unix_socket_directories={self.root}", *settings],
                    stdout=log,
                    stderr=log,
                    stdin=subprocess.DEVNULL,
                    cwd=self.root,
                    preexec_fn=_die_with_parent(),
                    user=self._uid,
            group=self._gid,
            extra_groups=self._groups,
                )  # fmt: skip
            self.port = port
            if self._wait_ready():
                return
            if self.running:
                break
            # Another process took the free port between our check and the server's bind: try another one.
            if "could not bind" not in self._log_tail() and "already in use" not in self._log_tail():
                break
            self.port = 0
        self.stop()
        raise RuntimeError(f"PostgreSQL did not start; its log ends:\n{self._log_tail()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline and self.running:
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return True
            except psycopg.OperationalError:
                time.sleep(0.05)
        return False

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Fast shutdown: open sessions are disconnected, the data stays (the outage test starts it again)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, *, schema: str | None = None) -> str:
        """A URL for the `postgres` database as its superuser; with `schema`, one whose tables live there."""
        base = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return with_schema(base, schema) if schema else base


def with_schema(url: str, schema: str) -> str:
    """`url` with its unqualified tables in `schema` (libpq's `options`; the backend sees a plain URL)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


def schema_of(url: str) -> str:
    """The schema a `with_schema` URL names."""
    return unquote(url.rsplit("search_path", 1)[1]).lstrip("=")


def create_schema(url: str) -> str:
    """A new empty schema on the server at `url`; returns its name."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return name


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
