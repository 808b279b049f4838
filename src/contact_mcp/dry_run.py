"""The dry-run guard: while a call runs as a dry run, nothing may write, whoever serves it.

Each operation makes its own dry run (the store rolls its transaction back, a provider sends only reads); this is
the net under them, so an operation added later that forgets `dry_run` fails instead of writing. The dispatch step
marks a call with `dry_run: true` (`marked`); the HTTP client refuses any request but a read, and the store
backends refuse to commit, while the mark is set (`refuse`). A refusal is a bug in the operation, so it is raised
as `DryRunWrite`, never relabelled as an agent's error. Imports nothing of ours.
"""

from __future__ import annotations

from collections.abc import Generator
from contextlib import contextmanager
from contextvars import ContextVar

_MARKED: ContextVar[bool] = ContextVar("contact_mcp_dry_run", default=False)


class DryRunWrite(RuntimeError):
    """Something tried to write during a dry run (a bug: the operation ignores `dry_run`)."""


@contextmanager
def marked(dry_run: bool) -> Generator[None]:
    """Run the body as a dry run when `dry_run` (else as it is)."""
    token = _MARKED.set(dry_run or _MARKED.get())
    try:
        yield
    finally:
        _MARKED.reset(token)


def active() -> bool:
    return _MARKED.get()


def refuse(what: str) -> None:
    """Raise `DryRunWrite` when a dry run is under way; `what` names the write that was about to happen."""
    if _MARKED.get():
        raise DryRunWrite(f"{what} during a dry run")
