"""The package as published: the wheel carries its licence, type marker and metadata, and the SDK is a tested range."""

from __future__ import annotations

import tomllib
import zipfile
from email.message import Message
from email.parser import Parser
from importlib.metadata import version
from pathlib import Path

import pytest
from hatchling.builders.wheel import WheelBuilder
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    (path,) = WheelBuilder(str(ROOT)).build(directory=str(out), versions=["standard"])
    return zipfile.ZipFile(path)


@pytest.fixture(scope="module")
def metadata(wheel: zipfile.ZipFile) -> Message:
    (name,) = [name for name in wheel.namelist() if name.endswith(".dist-info/METADATA")]
    return Parser().parsestr(wheel.read(name).decode())


def test_the_wheel_ships_the_licence_it_declares(wheel: zipfile.ZipFile, metadata: Message) -> None:
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    (licence,) = [name for name in wheel.namelist() if name.endswith(".dist-info/licenses/LICENSE")]
    text = wheel.read(licence).decode()
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text


def test_the_wheel_marks_the_package_as_typed(wheel: zipfile.ZipFile, metadata: Message) -> None:
    assert "contact_mcp/py.typed" in wheel.namelist()
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])


def test_the_metadata_names_authors_links_and_classifiers(metadata: Message) -> None:
    assert metadata["Author"]
    urls = metadata.get_all("Project-URL") or []
    assert urls
    assert all(url.split(", ", 1)[1].startswith("https://") for url in urls)
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3 :: Only" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)
    assert not any(c.startswith("License :: ") for c in classifiers)  # PEP 639: the expression says it, once


def test_every_python_the_classifiers_name_is_one_requires_python_admits(metadata: Message) -> None:
    admitted = Requirement(f"python{metadata['Requires-Python']}").specifier
    python = "Programming Language :: Python :: "
    named = [c.removeprefix(python) for c in metadata.get_all("Classifier") or [] if c.startswith(python + "3.")]
    assert named
    assert all(Version(minor) in admitted for minor in named)


def test_the_sdk_is_a_range_with_a_floor_and_a_ceiling_that_admits_the_installed_version() -> None:
    (mcp,) = [Requirement(dep) for dep in PYPROJECT["project"]["dependencies"] if Requirement(dep).name == "mcp"]
    operators = {spec.operator for spec in mcp.specifier}
    assert operators == {">=", "<"}, "an exact pin keeps contact-mcp from installing beside another MCP package"
    assert version("mcp") in mcp.specifier


def test_ci_tests_the_lowest_sdk_version_the_range_admits(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """.ci/run reads the floor out of pyproject.toml (so the two cannot drift) and runs the quick subset on it."""
    ci = (ROOT / ".ci" / "run").read_text()
    (line,) = [line for line in ci.splitlines() if line.startswith("LOWEST_MCP=$(python -c '")]
    code = line.removeprefix("LOWEST_MCP=$(python -c '").removesuffix("')")
    monkeypatch.chdir(ROOT)
    exec(code, {})  # the one-liner CI runs, here in-process
    floor = capsys.readouterr().out.strip()
    (mcp,) = [Requirement(dep) for dep in PYPROJECT["project"]["dependencies"] if Requirement(dep).name == "mcp"]
    assert [spec.version for spec in mcp.specifier if spec.operator == ">="] == [floor]
    assert 'pip install -q -e ".[dev]" "mcp==$LOWEST_MCP"' in ci
    assert ci.rstrip().endswith("python -m pytest -m quick -q")
