"""The bodies of `contact-mcp export` and `contact-mcp import`: open the store `CONTACT_MCP_DB` names, run, report.

Exit codes (README's "Exit codes of import/export" say them to users): 0 done; 1 import finished with rejected rows,
or stopped by a database failure, or export's reader left (a closed pipe); 2 configuration, an unreadable or refused
file, or an output path that cannot be written (`ConfigError`, reported by the CLI); 130 interrupted (the CLI).
Export writes JSONL to stdout unless given a file, and its one line of news to stderr, so stdout stays pipeable.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

import anyio

from contact_mcp.errors import ConfigError, ContactError
from contact_mcp.porting.readers import Format, ImportFileError
from contact_mcp.porting.report import Summary
from contact_mcp.porting.run import (
    Progress,
    default_rejected_path,
    export_contacts,
    export_target,
    export_to_file,
    import_file,
    read_through,
    report,
    stopped,
)
from contact_mcp.settings import Settings
from contact_mcp.store import LocalStore, backend_name


def _open_store(settings: Settings) -> LocalStore:
    LocalStore.preflight(settings)
    return LocalStore.from_settings(settings)


def _writable(path: Path, what: str, *, option: str, replaced: bool, settings: Settings) -> None:
    """Refuse a path `what` cannot be written to before the store is opened or a row read: found on writing, it was
    a traceback after a whole export, or in the middle of an import whose earlier rows were already in the store.
    `replaced`: the file is written beside it and renamed over it, so only its directory's permission counts."""
    if _is_store_file(path, settings):
        problem = "it is the contact database's own file (CONTACT_MCP_DB), which writing it would destroy"
    elif path.is_dir():
        problem = "it is a directory"
    elif not path.parent.is_dir():
        problem = f"there is no directory {path.parent}"
    elif not _may_write(path, replaced=replaced):
        problem = "permission denied"
    else:
        return
    raise ConfigError(f"cannot write {what} to {path}: {problem}; name another file with {option}")


def _may_write(path: Path, *, replaced: bool) -> bool:
    if path.exists() and not path.is_file():  # a device or a pipe: written where it is
        return os.access(path, os.W_OK)
    if not os.access(path.parent, os.W_OK | os.X_OK):  # a new file, or the one written beside and renamed
        return False
    return replaced or not path.exists() or os.access(path, os.W_OK)


def _is_store_file(path: Path, settings: Settings) -> bool:
    """Whether `path` is the SQLite store's file or one of its journals, by any spelling or link (existing or not)."""
    if backend_name(settings.db) != "sqlite":
        return False
    db = Path(settings.db).expanduser()
    target = path.expanduser().resolve()
    for store_file in (db, *(db.with_name(db.name + suffix) for suffix in ("-wal", "-shm", "-journal"))):
        if target == store_file.resolve() or (target.exists() and store_file.exists() and target.samefile(store_file)):
            return True
    return False


def export_command(settings: Settings, out: Path | None) -> int:
    if out is not None:
        _writable(out, "the export", option="--out", replaced=export_target(out) is not None, settings=settings)
    return anyio.run(_export, settings, out)


async def _export(settings: Settings, out: Path | None) -> int:
    store = _open_store(settings)
    try:
        if out is None:
            count = await export_contacts(store, sys.stdout)
            sys.stdout.flush()
        else:
            count = await export_to_file(store, out)
    except BrokenPipeError:  # `contact-mcp export | head`: the reader left, as a pipe's reader may
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so closing stdout at exit cannot fail
        return 1
    except ContactError as exc:  # the database failed part-way (it was a traceback)
        kept = "stdout holds the contacts exported before it" if out is None else f"{out} was not written"
        then = (
            "Run the export again"
            if exc.retryable
            else f"{(exc.hint or 'That must be fixed').rstrip('.')}, then export"
        )
        print(f"contact-mcp: export stopped: {exc.message}; {kept}. {then}.", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    print(f"export: {count} contact(s){f' to {out}' if out else ''}", file=sys.stderr)
    return 0


def import_command(settings: Settings, path: Path, *, fmt: Format | None, rejected: Path | None) -> int:
    # Every check here comes before the store is opened (and, on first use, created) and before a row is read.
    if settings.read_only:
        raise ConfigError("CONTACT_MCP_READ_ONLY is set, and an import writes to the store; unset it for this command")
    if not path.is_file():
        problem = "no such file"
        if path.is_dir():
            problem = "it is a directory"
        elif path.exists():  # a pipe, a device, /dev/stdin
            problem = "it is not a regular file, and an import reads its file twice (once to count it); save it first"
        raise ImportFileError(f"cannot read {path}: {problem}")
    rejected_path = rejected if rejected is not None else default_rejected_path(path)
    if rejected_path.exists() and rejected_path.samefile(path):  # the same file by another spelling or a link too
        raise ConfigError(
            f"the rejected rows would go to {rejected_path}, which is the file being imported ({path}): writing "
            "them would overwrite it; name another file with --rejected"
        )
    # Even with no --rejected: the file is written only if a row is rejected, but that is known only once rows are in
    # the store, and a read-only directory beside FILE is better said at once than at the first rejected row.
    _writable(rejected_path, "rejected rows", option="--rejected", replaced=False, settings=settings)
    return anyio.run(partial(_import, settings, path, fmt=fmt, rejected_path=rejected_path))


async def _import(settings: Settings, path: Path, *, fmt: Format | None, rejected_path: Path) -> int:
    done = Progress(Summary())
    try:
        # The file is read through first: a file refused as a whole leaves no new database file (nor, on
        # PostgreSQL, a new schema) behind, and an existing one untouched.
        with read_through(path, fmt) as source:
            store = _open_store(settings)
            try:
                await import_file(
                    store, source, rejected_path=rejected_path, default_region=settings.default_region, done=done
                )
            finally:
                await store.aclose()
    except ContactError as exc:
        print(f"contact-mcp: {stopped(done, exc)}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, anyio.get_cancelled_exc_class()) as exc:  # Ctrl-C arrives as a cancellation
        print(f"contact-mcp: {stopped(done, exc)}", file=sys.stderr)
        raise
    report(done, rejected_path)
    return 1 if done.summary.rejected else 0
