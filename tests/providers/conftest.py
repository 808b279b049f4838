"""Fixtures every provider test module shares: each fake is started once per session and reset before each test.

A module names its provider with `PROVIDER = "<name>"`; `served`, `fake` and `base_url` then serve that provider's
fake. The parametrised suites ask for `case` instead and get every provider in turn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from contact_mcp.providers.http import HttpProvider
from tests.providers.cases import CASES, ProviderCase


class _Fakes:
    """Starts a provider's fake on first use and keeps it for the session."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._served: dict[str, tuple[Any, str]] = {}

    def get(self, name: str) -> tuple[Any, str]:
        if name not in self._served:
            case = CASES[name]
            fake = case.make()
            self._served[name] = (fake, self._stack.enter_context(case.serve(fake)))
        return self._served[name]


@pytest.fixture(scope="session")
def fakes() -> Iterator[_Fakes]:
    with ExitStack() as stack:
        yield _Fakes(stack)


@pytest.fixture
def served(request: pytest.FixtureRequest, fakes: _Fakes) -> tuple[Any, str]:
    name: str = request.module.PROVIDER if hasattr(request.module, "PROVIDER") else request.getfixturevalue("case").name
    return fakes.get(name)


@pytest.fixture
def fake(served: tuple[Any, str]) -> Any:
    served[0].reset()
    return served[0]


@pytest.fixture
def base_url(served: tuple[Any, str]) -> str:
    return served[1]


@pytest.fixture(params=list(CASES.values()), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> ProviderCase:
    return request.param


@pytest.fixture
async def client(case: ProviderCase, fake: Any, base_url: str) -> AsyncIterator[HttpProvider]:
    """The provider's client on its fake, for the parametrised suites (a module may define its own)."""
    provider = case.client(base_url)
    yield provider
    await provider.aclose()
