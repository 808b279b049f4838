"""An import's rows made ready for the store, in order: in this process, or for a large file in a worker process.

Normalising (email-validator, phonenumbers) is most of what an import does, and it holds the GIL: in this process
it can only take turns with the store's own thread. For a large file a worker process normalises chunk after
chunk, a few chunks ahead of the rows being written, so on a machine with two cores the two overlap. The rows come
back in file order and are the same rows either way (`normalised`); only the time differs. A small file is
normalised here: starting the worker costs about a second (importing its libraries), and while it starts the first
rows of a large file are normalised here too (and written meanwhile), rather than waited for. The worker ignores
SIGINT: Ctrl-C is the importing process's to handle (it stops and says how far it got), and the worker ends with it,
as it does when that process is killed.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Final

import anyio.lowlevel

from contact_mcp.porting.rows import NewDataRow, NormalisedRow, RejectedRow, RestoreRow, Row, normalise
from contact_mcp.store.rules import ImportContactInput

Ready = RestoreRow | NormalisedRow

WORKER_FROM_ROWS: Final = 5_000
"""Files of at least this many rows of new data are normalised in a worker process."""
CHUNK_ROWS: Final = 500
"""Rows handed to the worker at a time."""
CHUNKS_AHEAD: Final = 4
"""Chunks the worker may be ahead of the rows taken."""
HEAD_START_ROWS: Final = 50_000
"""At most this many rows are normalised here while the worker process starts (a bound, should it never answer)."""
YIELD_ROWS: Final = 8
"""Rows normalised here between two turns of the event loop: the batch being written meanwhile (a database round
trip, the store thread's answer) moves on at each turn."""


def normalised(row: Row, *, default_region: str | None) -> RejectedRow | Ready:
    """The row ready for the store, or rejected before it: unreadable or not normalisable."""
    if isinstance(row, RejectedRow | RestoreRow):
        return row
    return normalise(row, default_region=default_region)


def _normalise_chunk(rows: list[Row], default_region: str | None) -> list[RejectedRow | Ready | ImportContactInput]:
    """In the worker: `normalised` of each row, a row ready for the store sent back as its contact alone (the
    importing process has its line and source: sending them back was half the pickling)."""
    answers: list[RejectedRow | Ready | ImportContactInput] = []
    for row in rows:
        item = normalised(row, default_region=default_region)
        answers.append(item.contact if isinstance(item, NormalisedRow) else item)
    return answers


def _received(rows: list[Row], answers: list[RejectedRow | Ready | ImportContactInput]) -> list[RejectedRow | Ready]:
    """A chunk's rows as `normalised` gives them, from the worker's answers (`_normalise_chunk`)."""
    items: list[RejectedRow | Ready] = []
    for row, answer in zip(rows, answers, strict=True):
        if isinstance(answer, ImportContactInput):
            assert isinstance(row, NewDataRow)  # only a row of new data is normalised into a contact
            items.append(NormalisedRow(line=row.line, source=row.source, contact=answer))
        else:
            items.append(answer)
    return items


def _worker_started(parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    # The worker holds both ends of its task queue's pipe (the pool's queue is pickled whole into it), so a killed
    # importing process never gives it end-of-file: it waited for work for good, and kept multiprocessing's
    # resource tracker alive with it. Reparented means the importing process is gone.
    while os.getppid() == parent:
        time.sleep(_PARENT_WATCH_S)
    os._exit(1)


_PARENT_WATCH_S: Final = 0.5


async def normalised_rows(
    rows: Iterable[Row], *, default_region: str | None, in_worker: bool
) -> AsyncGenerator[RejectedRow | Ready, None]:
    """`normalised` of every row, in order; in a worker process when `in_worker`. Close it (`aclosing`) when
    stopping early: that stops the worker."""
    source = iter(rows)
    if not in_worker:
        for count, row in enumerate(source, 1):
            yield normalised(row, default_region=default_region)
            if count % YIELD_ROWS == 0:
                await anyio.lowlevel.checkpoint()
        return
    pool = ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_started,
        initargs=(os.getpid(),),
    )
    ahead: deque[tuple[list[Row], asyncio.Future[list[RejectedRow | Ready | ImportContactInput]]]] = deque()
    try:
        started = pool.submit(_normalise_chunk, [], default_region)  # done once the worker is up
        # Until it is, the first rows are normalised here (and written meanwhile) rather than waited for.
        for count, row in enumerate(itertools.islice(source, HEAD_START_ROWS), 1):
            yield normalised(row, default_region=default_region)
            if count % YIELD_ROWS == 0:
                await anyio.lowlevel.checkpoint()
                if started.done():
                    break
        chunks = iter(lambda: list(itertools.islice(source, CHUNK_ROWS)), [])
        for chunk in chunks:
            ahead.append((chunk, asyncio.wrap_future(pool.submit(_normalise_chunk, chunk, default_region))))
            if len(ahead) >= CHUNKS_AHEAD:
                sent, answers = ahead.popleft()
                for item in _received(sent, await answers):
                    yield item
        while ahead:
            sent, answers = ahead.popleft()
            for item in _received(sent, await answers):
                yield item
    finally:
        for _, future in ahead:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)
