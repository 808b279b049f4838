"""The quick subset (`-m quick`) holds: a test that starts a process without `@pytest.mark.slow` fails, saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()
SPAWNS = """import subprocess, sys


{mark}def test_spawns():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


@pytest.mark.slow  # the inner runs start a process, which this file's own hook would see
@pytest.mark.parametrize(
    ("mark", "outcome"),
    [
        pytest.param("", {"failed": 1}, id="unmarked-fails"),
        pytest.param("@pytest.mark.slow\n", {"passed": 1}, id="slow-passes"),
    ],
)
def test_a_quick_test_that_starts_a_process_fails(
    pytester: pytest.Pytester, mark: str, outcome: dict[str, int]
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner="import pytest\n" + SPAWNS.format(mark=mark))
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(**outcome)
    if "failed" in outcome:
        result.stdout.fnmatch_lines(["*test_spawns started a process (subprocess.Popen*mark it @pytest.mark.slow*"])


def test_quick_is_every_test_not_marked_slow(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner="import pytest\n\ndef test_a(): pass\n\n@pytest.mark.slow\ndef test_b(): pass\n")
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:cacheprovider", "-m", "quick", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["*test_a PASSED*"])
