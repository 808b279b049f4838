"""The tests' own PostgreSQL (tests/postgres_server.py): where its binaries are found, and the failure that says
what to install when a machine has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.postgres_server import INSTALL_HINT, PostgresServer, find_bindir


def fake_install(root: Path, version: str) -> Path:
    bindir = root / version / "bin"
    bindir.mkdir(parents=True)
    for program in ("initdb", "postgres"):
        (bindir / program).write_text("#!/bin/sh\n")
    return bindir


def test_the_newest_debian_install_is_found_off_path(tmp_path: Path) -> None:
    for version in ("9.6", "15", "16"):
        fake_install(tmp_path, version)
    (tmp_path / "17" / "bin").mkdir(parents=True)  # a client-only install: no server binaries

    assert find_bindir(path=str(tmp_path / "empty"), debian_root=tmp_path) == tmp_path / "16" / "bin"


def test_initdb_on_path_is_found(tmp_path: Path) -> None:
    bindir = fake_install(tmp_path / "opt", "14")
    for program in ("initdb", "postgres"):
        (bindir / program).chmod(0o755)

    assert find_bindir(path=str(bindir), debian_root=tmp_path / "none") == bindir


def test_no_postgresql_is_a_failure_saying_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as caught:
        PostgresServer.start_new(path=str(tmp_path), debian_root=tmp_path)

    assert str(caught.value) == INSTALL_HINT
    assert "apt-get install postgresql" in INSTALL_HINT
