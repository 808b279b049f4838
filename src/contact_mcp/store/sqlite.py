"""The SQLite backend: the store in one file (stdlib `sqlite3`), its database work done off the event loop.

It owns the file named by CONTACT_MCP_DB: `preflight` creates it (and its folder) and the schema before the server
serves, proves it can write there (unless CONTACT_MCP_READ_ONLY), and turns an unusable path into a `ConfigError`;
a file that becomes unwritable later makes writes a structured `provider_unavailable`, and closing never fails.

Off the loop, one hop per call: each call's whole transaction is one function run on a worker thread, so a write
waiting for another process's lock blocks no other client, and a call costs one thread hop, not one per statement.
Writes use the writer connection (WAL, synchronous=NORMAL, foreign keys on, busy_timeout), reads a second,
query-only connection; each connection has its own thread running its calls in order (`_Lane`), so calls never
interleave mid-transaction, and in WAL mode reads never wait for a write. Each write is one `BEGIN IMMEDIATE ...
COMMIT` transaction (rolled back on any exception), so two processes on the same file queue for the write lock
instead of losing or duplicating updates; each read is one read transaction. A cancelled caller does not abandon
its transaction: the thread finishes it (commit or rollback) before the connection's next call runs.

Short reads skip the hop: get_contact and find_contacts by an exact key (index searches, a fraction of the hop's
cost) run on the event loop's thread, on a third query-only connection that never waits for a lock (busy timeout
0). In WAL mode a read needs no lock; when it would have to wait (a file not in WAL mode while another process
writes), it goes to the reader's thread, so the loop never waits on the database. So do the short writes: a
write tool's transaction on one contact (a few indexed statements, about the hop's own cost), and the history
entry of a provider's write (one insert, a third of the hop's cost), run on the loop's thread on a fourth
connection (configured as the writer) when the write lock is free at once (busy timeout 0) and no write of ours
waits on the writer's thread (it would be overtaken), else on the writer's thread, which may wait; that
connection never checkpoints (the writer's thread does, every `CHECKPOINT_EVERY` of its commits), so no file
sync runs on the loop. merge_contacts (several contacts), import and restore always take the writer's thread.

Every exact lookup is indexed, so a call costs about the same at 1k and 100k contacts (tests/store/sqlite/).
Statements are fixed module-level strings, so sqlite3's statement cache prepares each once per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import anyio

from contact_mcp import dry_run as dry_run_guard
from contact_mcp.errors import ConfigError, ProviderUnavailable
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    Contact,
    ContactPage,
    ContactSummary,
    CreateContactInput,
    CreatedContact,
    DeleteContactInput,
    DeletedContact,
    DetachContactInput,
    DetachedContact,
    DetachedIdentity,
    DetachIdentityInput,
    DuplicatePage,
    FieldChange,
    FindContactsInput,
    FindDuplicatesInput,
    HistoryEntry,
    MergeConflict,
    MergeContactsInput,
    MergeResult,
    Outcome,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
    WriteResult,
)
from contact_mcp.settings import Settings
from contact_mcp.store import duplicates, history, merging, rules
from contact_mcp.store.migrations.sqlite import migrate, schema_version
from contact_mcp.store.records import (
    ContactRecord,
    RecordPage,
    StoredFields,
    check_record,
    contact_from,
    record_from,
    stored_fields,
)

log = logging.getLogger("contact_mcp.store.sqlite")

BUSY_TIMEOUT_MS: Final = 5_000
"""How long a call waits for another process's write to finish before answering `provider_unavailable`."""
CHECKPOINT_EVERY: Final = 300
"""History entries appended on the event loop's thread between two checkpoints (done on the writer's thread): about
SQLite's own 1,000 pages of WAL, at ~3 pages an entry."""

_T = TypeVar("_T")
_W = TypeVar("_W", bound=WriteResult)

# ---------- statements ----------

_SEQ_BY_ID: Final = "SELECT seq FROM contacts WHERE id = ?"
# A merged contact's id, user_id and username lead to its survivor (`merged_into` is always one hop).


def _live_seq(column: str) -> str:
    """SQL for the row number of the contact whose `column` is ?, or of its survivor when it was merged."""
    return (
        "SELECT coalesce(s.seq, u.seq) FROM contacts u LEFT JOIN contacts s ON s.id = u.merged_into "
        f"WHERE u.{column} = ?"
    )


_LIVE_BY_ID: Final = (
    "SELECT coalesce(s.seq, c.seq), coalesce(s.id, c.id) FROM contacts c "
    "LEFT JOIN contacts s ON s.id = c.merged_into WHERE c.id = ?"
)
_TOUCH: Final = "UPDATE contacts SET updated_at = ? WHERE seq = ?"
_CONTACT_COLUMNS: Final = (
    "id, user_id, username, username_key, name, display_name, locale, profile_picture, companies, custom_fields, "
    "roles, subscribed_to_changelog, search_text, created_at, updated_at"
)
_INSERT_CONTACT: Final = (
    f"INSERT INTO contacts ({_CONTACT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_REPLACE_CONTACT: Final = (
    "UPDATE contacts SET id = ?, user_id = ?, username = ?, username_key = ?, name = ?, display_name = ?, "
    "locale = ?, profile_picture = ?, companies = ?, custom_fields = ?, roles = ?, subscribed_to_changelog = ?, "
    "search_text = ?, created_at = ?, updated_at = ? WHERE seq = ?"
)
_INSERT_METHOD: Final = (
    "INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, verified_at, "
    "verification_source, verification_method, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_METHOD_BY_CHANNEL_VALUE: Final = (
    "SELECT seq, id, type, verified_at, verification_method FROM methods "
    "WHERE contact_seq = ? AND channel = ? AND value = ?"
)
_PRIMARY_OF_KIND: Final = "SELECT seq, value FROM methods WHERE contact_seq = ? AND kind = ? AND is_primary"
_METHOD_OF_KIND: Final = (
    "SELECT seq FROM methods WHERE contact_seq = ? AND kind = ? AND value = ? ORDER BY channel = ? DESC, seq LIMIT 1"
)
_VALUES_OF_KIND: Final = (
    f"SELECT value FROM methods WHERE contact_seq = ? AND kind = ? GROUP BY value ORDER BY min(seq) "
    f"LIMIT {rules.VALUES_IN_HINT}"
)
_SET_PRIMARY: Final = "UPDATE methods SET is_primary = ? WHERE seq = ?"
_VERIFY_ATTACHED: Final = "UPDATE methods SET verified_at = ?, verification_method = ? WHERE seq = ?"
# Only rows whose state differs are touched, so the row count says whether anything changed.
_SET_VERIFICATION: Final = (
    "UPDATE methods SET verified_at = ?1, verification_source = ?2, verification_method = ?3 "
    "WHERE contact_seq = ?4 AND kind = ?5 AND value = ?6 "
    "AND (verified_at IS NOT ?1 OR verification_source IS NOT ?2 OR verification_method IS NOT ?3)"
)
_HAS_METHOD_OF_KIND_VALUE: Final = "SELECT 1 FROM methods WHERE contact_seq = ? AND kind = ? AND value = ? LIMIT 1"
_IDENTITY_BY_KEY: Final = (
    "SELECT i.id, i.created_at, i.contact_seq, c.id FROM identities i JOIN contacts c ON c.seq = i.contact_seq "
    "WHERE i.identifier = ? AND ifnull(i.channel_type, '') = ? AND ifnull(i.channel_id, '') = ?"
)
_INSERT_IDENTITY: Final = (
    "INSERT INTO identities (id, contact_seq, channel_type, identifier, channel_id, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# Whose a username is: a merged contact's leads to its survivor (the holder itself is the second column).
_ID_BY_USERNAME: Final = "SELECT coalesce(merged_into, id), id FROM contacts WHERE username_key = ?"
_ID_BY_USER_ID: Final = "SELECT id FROM contacts WHERE user_id = ?"
# The other contacts holding a phone, oldest first (create_contact says so: families share phones).
_PHONE_HOLDERS: Final = (
    "SELECT c.id FROM methods m JOIN contacts c ON c.seq = m.contact_seq WHERE m.value = ? AND m.kind = 'phone' "
    f"GROUP BY m.contact_seq ORDER BY m.contact_seq LIMIT {rules.SHARED_PHONE_LIMIT}"
)

_INSERT_HISTORY: Final = f"INSERT INTO history ({history.INSERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
_PRUNE_HISTORY: Final = "DELETE FROM history WHERE at < ?"
_HISTORY_OF: Final = "SELECT seq, fields FROM history WHERE contact_id = ? AND (? IS NULL OR provider = ?)"
_SCRUB_HISTORY: Final = "UPDATE history SET fields = ? WHERE seq = ?"


def _primary_value(contacts: str, kind: str) -> str:
    """SQL for the value of a contact's primary method of `kind`; `contacts` names the contacts row."""
    return f"(SELECT value FROM methods WHERE contact_seq = {contacts}.seq AND kind = '{kind}' AND is_primary)"


# The match row carries everything the update path compares and the result needs, primaries included, so an
# update is one SELECT per key and at most one UPDATE inside its transaction.
_UPSERT_COLUMNS: Final = (
    "seq, id, user_id, username, name, display_name, locale, profile_picture, companies, custom_fields, roles, "
    f"subscribed_to_changelog, {_primary_value('contacts', 'email')} AS email, "
    f"{_primary_value('contacts', 'phone')} AS phone"
)
_UPSERT_BY_USER_ID: Final = f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = ({_live_seq('user_id')})"
# The oldest contact holding the email as its primary, else the oldest holding it at all.
_UPSERT_BY_EMAIL: Final = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = (SELECT contact_seq FROM methods "
    "WHERE value = ? AND kind = 'email' ORDER BY is_primary DESC, contact_seq LIMIT 1)"
)
# Whole contacts (get_contact, export), columns named as `records` names its fields.
_RECORD_COLUMNS: Final = (
    "seq, id, user_id, username, name, display_name, locale, profile_picture, companies, custom_fields, roles, "
    "subscribed_to_changelog, merged_into, created_at, updated_at"
)
_RECORD_BY_ID: Final = f"SELECT {_RECORD_COLUMNS} FROM contacts WHERE id = ?"
# A contact as a write's transaction reads it before and after its changes (`rules.snapshot`), in one statement.
_SNAPSHOT: Final = (
    f"SELECT {', '.join(rules.SNAPSHOT_COLUMNS)}, "
    "(SELECT json_group_array(json_object('id', id, 'channel', channel, 'type', type, 'value', value, "
    "'primary', is_primary, 'verified_at', verified_at, 'verification_source', verification_source, "
    "'verification_method', verification_method)) FROM methods WHERE contact_seq = contacts.seq), "
    "(SELECT json_group_array(json_object('id', id, 'channel_type', channel_type, 'identifier', identifier, "
    "'channel_id', channel_id)) FROM identities WHERE contact_seq = contacts.seq) "
    "FROM contacts WHERE seq = ?"
)
_RECORDS_AFTER: Final = f"SELECT {_RECORD_COLUMNS} FROM contacts WHERE seq > ? ORDER BY seq LIMIT ?"
# Methods and identities of a run of contacts, by row-number range (both indexed on contact_seq).
_METHODS_OF: Final = (
    'SELECT contact_seq, id, channel, type, raw_value, value, is_primary AS "primary", verified_at, '
    "verification_source, verification_method, created_at FROM methods WHERE contact_seq BETWEEN ? AND ? "
    "ORDER BY contact_seq, seq"
)
_IDENTITIES_OF: Final = (
    "SELECT contact_seq, id, channel_type, identifier, channel_id, created_at FROM identities "
    "WHERE contact_seq BETWEEN ? AND ? ORDER BY contact_seq, seq"
)
_SUMMARY_COLUMNS: Final = (
    "c.seq, c.id, coalesce(c.name, c.display_name) AS name, c.username, c.user_id, "
    f"{_primary_value('c', 'email')} AS email, {_primary_value('c', 'phone')} AS phone"
)
_FIND_IN_METHODS: Final = "c.seq IN (SELECT contact_seq FROM methods WHERE value = ? AND kind = ?)"
_DELETE_METHODS: Final = "DELETE FROM methods WHERE contact_seq = ?"
# contact-mcp import: the contacts holding a phone (oldest first; every one, since the row's name picks among them),
# and the emails and phones a contact holds.
_UPSERT_BY_PHONE: Final = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq IN (SELECT contact_seq FROM methods "
    "WHERE value = ? AND kind = 'phone') ORDER BY seq"
)
_UPSERT_BY_USERNAME: Final = f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = ({_live_seq('username_key')})"
_HELD_VALUES: Final = "SELECT kind, value FROM methods WHERE contact_seq = ? AND kind IN ('email', 'phone')"
_DELETE_IDENTITIES: Final = "DELETE FROM identities WHERE contact_seq = ?"
_SET_MERGED_INTO: Final = "UPDATE contacts SET merged_into = ? WHERE seq = ?"
_MERGED_NAMES: Final = "SELECT coalesce(name, display_name) FROM contacts WHERE merged_into = ?"
# find_duplicates reads every contact not merged away, and the emails and phones of its methods and identities.
_DUPLICATE_CONTACTS: Final = (
    "SELECT seq, id, coalesce(name, display_name), user_id, companies FROM contacts WHERE merged_into IS NULL"
)
_DUPLICATE_VALUES: Final = (
    "SELECT contact_seq, kind, value FROM methods WHERE kind IN ('email', 'phone') "
    "UNION ALL SELECT contact_seq, CASE WHEN instr(identifier, '@') THEN 'email' ELSE 'phone' END, identifier "
    "FROM identities"
)
WHOLE_TABLE_READS: Final = frozenset({"_DUPLICATE_CONTACTS", "_DUPLICATE_VALUES"})
"""Statements that read every row on purpose (find_duplicates compares the whole store, once per call)."""
# merge_contacts moves rows by their contact's row number and their own id (indexed on contact_seq).
_RELEASE: Final = {
    "user_id": "UPDATE contacts SET user_id = NULL WHERE seq = ?",
    "username": "UPDATE contacts SET username = NULL, username_key = NULL WHERE seq = ?",
}
_MOVE_METHOD: Final = "UPDATE methods SET contact_seq = ?, is_primary = ? WHERE contact_seq = ? AND id = ?"
_DROP_METHOD: Final = "DELETE FROM methods WHERE contact_seq = ? AND id = ?"
_VERIFY_METHOD: Final = (
    "UPDATE methods SET verified_at = ?, verification_source = ?, verification_method = ? "
    "WHERE contact_seq = ? AND id = ?"
)
_MOVE_IDENTITY: Final = "UPDATE identities SET contact_seq = ? WHERE contact_seq = ? AND id = ?"
_MERGED: Final = "UPDATE contacts SET merged_into = ?, updated_at = ? WHERE seq = ?"
_REPOINT: Final = "UPDATE contacts SET merged_into = ? WHERE merged_into = ?"
# Erasure: a contact, the contacts merged into it, its identities and methods.
_ERASE_TARGET: Final = "SELECT seq, merged_into FROM contacts WHERE id = ?"
_MERGED_INTO: Final = "SELECT seq, id FROM contacts WHERE merged_into = ? ORDER BY seq"
_DELETE_CONTACT: Final = "DELETE FROM contacts WHERE seq = ?"
_IDENTITIES_OF_CONTACT: Final = (
    "SELECT seq, id, identifier, channel_type, channel_id FROM identities WHERE contact_seq = ? ORDER BY seq"
)
_DELETE_IDENTITY: Final = "DELETE FROM identities WHERE seq = ?"
_METHOD_TO_DETACH: Final = (
    "SELECT seq, id, kind, is_primary FROM methods WHERE contact_seq = ? AND channel = ? AND value = ?"
)
_VALUES_ON_CHANNEL: Final = (
    f"SELECT value FROM methods WHERE contact_seq = ? AND channel = ? ORDER BY seq LIMIT {rules.VALUES_IN_HINT}"
)
_DELETE_METHOD: Final = "DELETE FROM methods WHERE seq = ?"
_OLDEST_OF_KIND: Final = "SELECT seq, value FROM methods WHERE contact_seq = ? AND kind = ? ORDER BY seq LIMIT 1"
# TRUNCATE: the WAL's frames (old page images, the erased values among them) are copied back and the file emptied.
_CHECKPOINT: Final = "PRAGMA wal_checkpoint(TRUNCATE)"


# ---------- errors ----------

_UNAVAILABLE_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_UNWRITABLE_CODES: Final = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN})


def _primary_code(exc: sqlite3.Error) -> int:
    return exc.sqlite_errorcode & 0xFF


def _is_busy(exc: sqlite3.Error) -> bool:
    return _primary_code(exc) in _UNAVAILABLE_CODES


def _waits_for_lock(exc: ProviderUnavailable) -> bool:
    """Whether `_transaction` gave up because the database was locked (what a busy timeout of 0 turns into), so the
    call may go to a lane's thread, which waits."""
    return isinstance(exc.__cause__, sqlite3.OperationalError) and _is_busy(exc.__cause__)


def _is_unwritable(exc: sqlite3.Error) -> bool:
    return _primary_code(exc) in _UNWRITABLE_CODES


def _unwritable_hint(where: str) -> str:
    return (
        f"CONTACT_MCP_DB={where} cannot be written by this process: make the file and its folder writable, "
        "or set CONTACT_MCP_READ_ONLY=1 to serve reads only"
    )


# ---------- opening the file ----------


def _prepare_folder(path: Path) -> None:
    try:
        if path.is_dir():
            raise ConfigError(
                f"CONTACT_MCP_DB={path} is a folder; set it to a file path such as {path / 'contacts.db'}"
            )
        folder = path.parent
        for ancestor in (folder, *folder.parents):
            if ancestor.exists():
                if not ancestor.is_dir():
                    raise ConfigError(f"CONTACT_MCP_DB={path} cannot be created: {ancestor} is a file, not a folder")
                break
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"CONTACT_MCP_DB={path}: cannot create its folder ({exc.strerror or exc})") from None


def _prove_writable(db: sqlite3.Connection) -> None:
    """Write (and roll back) the header's user_version: a read-only file or folder fails here, at start-up,
    not on the first write tool call."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"PRAGMA user_version = {schema_version(db)}")
    finally:
        db.execute("ROLLBACK")


def connect(
    path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, read_only: bool = False, prove_writable: bool = False
) -> sqlite3.Connection:
    """Open (creating file, folder and schema on first use) and configure a connection; `ConfigError` if unusable.
    `prove_writable` (start-up, unless read-only): write and roll back, so an unwritable file fails now."""
    path = Path(path).expanduser()
    _prepare_folder(path)
    try:
        # check_same_thread=False: opened here, then used only by its lane's thread.
        db = sqlite3.connect(path, isolation_level=None, cached_statements=256, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigError(f"CONTACT_MCP_DB={path} cannot be opened ({exc})") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        if not read_only:
            mode: str = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                log.warning(
                    "CONTACT_MCP_DB=%s: journal_mode is %s, not wal (the filesystem may not support WAL)", path, mode
                )
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        # Freed bytes (a deleted contact, a value an update replaced) are overwritten with zeros, not left in the
        # file's free space: erasure means gone from the file, not only from the tables.
        db.execute("PRAGMA secure_delete = ON")
        migrate(db, str(path))
        if prove_writable:
            _prove_writable(db)
    except sqlite3.Error as exc:
        db.close()
        if _is_busy(exc):
            raise ConfigError(
                f"CONTACT_MCP_DB={path} stayed locked by another process for {busy_timeout_ms} ms at start-up"
            ) from None
        if _is_unwritable(exc):
            raise ConfigError(_unwritable_hint(str(path))) from None
        raise ConfigError(
            f"CONTACT_MCP_DB={path} is not a usable contact database ({exc}); "
            "point CONTACT_MCP_DB at a new file or an existing contact-mcp database"
        ) from None
    except BaseException:
        db.close()
        raise
    return db


def preflight(settings: Settings) -> None:
    # Only here: opening a store for a session must not queue for the write lock behind another process.
    connect(settings.db, read_only=settings.read_only, prove_writable=not settings.read_only).close()


def open_backend(settings: Settings) -> SqliteBackend:
    return SqliteBackend.open(settings.db, read_only=settings.read_only)


# ---------- writing rows ----------


def _add_contact(
    db: sqlite3.Connection, new: rules.NewContact, now: str, contact_id: str | None = None
) -> tuple[int, str]:
    """Insert a contact; return its row number and its id (a new one unless given)."""
    contact_id = contact_id or rules.new_id()
    cursor = db.execute(_INSERT_CONTACT, (contact_id, *_contact_values(new), now, now))
    seq = cursor.lastrowid
    assert seq is not None
    return seq, contact_id


def _contact_values(new: rules.NewContact) -> tuple[object, ...]:
    """The columns from user_id to search_text, in `_CONTACT_COLUMNS` order."""
    return (
        new.user_id,
        new.username,
        new.username_key,
        new.name,
        new.display_name,
        new.locale,
        new.profile_picture,
        new.companies,
        new.custom_fields,
        new.roles,
        new.subscribed_to_changelog,
        new.search_text,
    )


def _add_method(
    db: sqlite3.Connection,
    seq: int,
    now: str,
    *,
    channel: str,
    type_: str | None,
    raw_value: str,
    value: str,
    primary: bool,
    verified_at: str | None = None,
    verification_method: str | None = None,
) -> str:
    """Insert a contact method; return its new id."""
    uid = rules.new_id()
    kind = rules.kind(channel, type_)
    row = (uid, seq, channel, type_, kind, raw_value, value, primary, verified_at, None, verification_method, now)
    db.execute(_INSERT_METHOD, row)
    return uid


def _stored(cursor: sqlite3.Cursor) -> rules.StoredContact | None:
    """The upsert candidate a `_UPSERT_COLUMNS` query found, if any."""
    return next(_stored_all(cursor), None)


def _stored_all(cursor: sqlite3.Cursor) -> Iterator[rules.StoredContact]:
    """Every candidate a `_UPSERT_COLUMNS` query found, in its order."""
    for row in _named(cursor):
        subscribed = row.pop("subscribed_to_changelog")
        yield rules.StoredContact(
            key=row.pop("seq"), subscribed_to_changelog=None if subscribed is None else bool(subscribed), **row
        )


def find_query(call: FindContactsInput, after: int) -> tuple[str, list[object]]:
    """Filters AND together, in seq order after the cursor; one row beyond the page says whether more exist.

    Exact filters drive the query through their indexes. A name search alone walks contacts in seq order and
    stops once the page is full: no B-tree index answers a substring (an FTS5 trigram index would, but it
    doubled the cost of every write that changes a name, which is the common call)."""
    where = ["c.seq > ?", "c.merged_into IS NULL"]
    params: list[object] = [after]
    if call.query is not None:
        where.append("instr(c.search_text, ?) > 0")
        params.append(call.query.casefold())
    if call.email is not None:
        where.append(_FIND_IN_METHODS)
        params += [call.email, "email"]
    if call.phone is not None:
        where.append(_FIND_IN_METHODS)
        params += [call.phone, "phone"]
    if call.username is not None:
        where.append(f"c.seq = ({_live_seq('username_key')})")
        params.append(rules.username_key(call.username))
    if call.user_id is not None:
        where.append(f"c.seq = ({_live_seq('user_id')})")
        params.append(call.user_id)
    params.append(call.limit + 1)
    sql = f"SELECT {_SUMMARY_COLUMNS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.seq LIMIT ?"
    return sql, params


# ---------- the backend ----------


def _transaction(
    db: sqlite3.Connection,
    work: Callable[[sqlite3.Connection], _T],
    begin: Literal["BEGIN IMMEDIATE", "BEGIN"] | None,
    *,
    commit: bool = True,
) -> _T:
    """One call's transaction on `db` (on the worker thread): committed (rolled back instead when not `commit`: a
    dry run), or rolled back on any exception, with the database's retryable failures mapped to
    `ProviderUnavailable`."""
    try:
        if begin is None:
            return work(db)
        db.execute(begin)
        result = work(db)
        db.execute("COMMIT" if commit else "ROLLBACK")
        return result
    except BaseException as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
            raise ProviderUnavailable(
                "the contact database is locked by another process",
                hint="Another contact-mcp is writing to the same file; retry in a moment",
                retry_after_s=1.0,
            ) from exc
        if isinstance(exc, sqlite3.OperationalError) and _is_unwritable(exc):
            raise ProviderUnavailable(
                "the contact database (CONTACT_MCP_DB) cannot be written",
                hint="The operator must make CONTACT_MCP_DB writable; reads still work",
                retryable=False,
            ) from exc
        raise


def _whole(db: sqlite3.Connection, seq: int) -> rules.Whole | None:
    row = db.execute(_SNAPSHOT, (seq,)).fetchone()
    return rules.snapshot(row) if row is not None else None


class Touched:
    """The contacts one write changes, each read whole before its first change (None: the write creates it), so
    what changed is the difference from the same contact read again at the end of the transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._before: dict[int, rules.Whole | None] = {}

    def before(self, seq: int) -> None:
        """Call before the write first changes (or deletes) contact `seq`."""
        if seq not in self._before:
            self._before[seq] = _whole(self._db, seq)

    def created(self, seq: int) -> None:
        """Call when the write has inserted contact `seq`."""
        self._before.setdefault(seq, None)

    def changes(self) -> list[FieldChange]:
        several = len(self._before) > 1
        changes: list[FieldChange] = []
        for seq, before in self._before.items():
            after = _whole(self._db, seq)
            whose = (after or before or {}).get("id") if several else None
            changes += rules.field_changes(before, after, contact_id=whose)
        return changes


_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class _Lane:
    """One connection and the one thread that uses it: calls queue up and run in order, each in one hop.

    A dedicated thread per connection costs a call a few microseconds to hand over (a queue put, a wake-up, and
    `call_soon_threadsafe` back); a thread pool behind a limiter (anyio's `to_thread`) cost ~70 µs more per call,
    ~5% of a stdio tool call's p50 on our machines. A caller cancelled while its call waits or runs does not
    withdraw it: the transaction runs to its end (commit or rollback) and its result is dropped, as with anyio's
    default. Needs the asyncio event loop (the server's)."""

    def __init__(self, db: sqlite3.Connection, name: str) -> None:
        self.db = db
        self.unfinished = 0
        """Calls handed to the thread that it has not finished (a cancelled caller's included); read and changed
        on the event loop's thread only."""
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._stopped = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def run(self, fn: Callable[[], _T]) -> _T:
        if self._stopped:
            raise sqlite3.ProgrammingError("the contact store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        self._calls.put((loop, future, fn))
        self.unfinished += 1
        return await future

    def stop(self) -> None:
        """Let the thread end once the calls queued before this one have run; later calls are refused."""
        self._stopped = True
        self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, future, fn = call
            try:
                outcome: tuple[object, BaseException | None] = (fn(), None)
                if isinstance(outcome[0], sqlite3.Cursor):
                    # Dropped on the event loop's thread, a cursor resets its statement there while this thread
                    # runs the next call on the same connection: SQLite's "bad parameter or other API misuse".
                    raise TypeError("a store call returned its cursor: return its rows or nothing")
            except BaseException as exc:  # handed to the caller, whose task re-raises it
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting any more
                loop.call_soon_threadsafe(self._settle, future, *outcome)

    def _settle(self, future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
        self.unfinished -= 1
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


def _reader(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    db.execute("PRAGMA query_only = ON")
    return db


def _appender(path: Path) -> sqlite3.Connection:
    """The connection short writes run on, on the event loop's thread: configured as the writer (durability,
    foreign keys, freed bytes zeroed), but it never waits for the write lock (busy timeout 0) and never
    checkpoints (the writer's thread does), so a write there is a few statements and a commit, no file sync."""
    db = sqlite3.connect(path, isolation_level=None, cached_statements=256, check_same_thread=False)
    db.execute("PRAGMA busy_timeout = 0")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA wal_autocheckpoint = 0")
    return db


class SqliteBackend:
    """Contacts in one SQLite file; see the module docstring for threads and transactions.

    Two lanes: writes take the writer connection, reads the reader connection, each one call at a time. In WAL
    mode a reader never waits for a writer, so a write queued behind another process's lock (up to the busy
    timeout) delays other writes only; reads go on."""

    def __init__(
        self,
        writer: sqlite3.Connection,
        reader: sqlite3.Connection,
        path: Path,
        inline: sqlite3.Connection | None = None,
        appender: sqlite3.Connection | None = None,
    ) -> None:
        self._writer = _Lane(writer, f"contact-mcp sqlite writer {path.name}")
        self._reader = _Lane(reader, f"contact-mcp sqlite reader {path.name}")
        self._inline = inline
        self._appender = appender
        self._appended = 0
        self._path = path
        self._closed = False

    @property
    def _db(self) -> sqlite3.Connection:
        """The writer connection (tests read its settings and query plans)."""
        return self._writer.db

    @classmethod
    def open(
        cls, path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, read_only: bool = False
    ) -> SqliteBackend:
        writer = connect(path, busy_timeout_ms=busy_timeout_ms, read_only=read_only)
        where = Path(path).expanduser()
        try:
            reader = _reader(where, busy_timeout_ms)
            inline = _reader(where, 0)
            appender = None if read_only else _appender(where)
        except sqlite3.Error as exc:
            writer.close()
            raise ConfigError(f"CONTACT_MCP_DB={where} cannot be opened for reading ({exc})") from None
        return cls(writer, reader, where, inline, appender)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._inline is not None:
            self._inline.close()
        if self._appender is not None:
            self._appender.close()
        await self._reader.run(self._reader.db.close)
        await self._writer.run(self._close_writer)
        self._reader.stop()
        self._writer.stop()

    def _close_writer(self) -> None:
        try:
            self._writer.db.execute("PRAGMA optimize")
        except sqlite3.Error as exc:  # a read-only or vanished file must not fail shutdown (and lose a reply)
            log.debug("PRAGMA optimize skipped on CONTACT_MCP_DB=%s: %s", self._path, exc)
        finally:
            self._writer.db.close()

    async def probe(self) -> str:
        def probe(db: sqlite3.Connection) -> str:
            (count,) = db.execute("SELECT count(*) FROM contacts").fetchone()
            (mode,) = db.execute("PRAGMA journal_mode").fetchone()
            return f"SQLite {sqlite3.sqlite_version} at {self._path}: {count} contact(s), journal_mode={mode}"

        return await self._run(probe, begin=None)

    async def ready(self) -> None:
        # An open connection keeps working on an unlinked file, so a vanished file (a detached volume, a deleted
        # path) is checked for by name: new connections and the next process would not find the data.
        if not self._path.exists():
            raise ProviderUnavailable("the contact database (CONTACT_MCP_DB) is gone", retry_after_s=5.0)
        await self._run(lambda db: db.execute("SELECT 1 FROM contacts LIMIT 1").fetchall(), begin=None)

    # ---------- one call, one hop, one transaction ----------

    async def _run(
        self, work: Callable[[sqlite3.Connection], _T], *, begin: Literal["BEGIN IMMEDIATE", "BEGIN"] | None
    ) -> _T:
        """Run `work` on a worker thread inside one transaction: `BEGIN IMMEDIATE` on the writer, else on the
        reader (`begin` None: each statement its own read transaction)."""
        lane = self._writer if begin == "BEGIN IMMEDIATE" else self._reader
        if lane is self._writer:
            dry_run_guard.refuse("a committed write to the contact store")
        return await lane.run(functools.partial(_transaction, lane.db, work, begin))

    async def _read(self, work: Callable[[sqlite3.Connection], _T], *, begin: Literal["BEGIN"] | None) -> _T:
        """A short, indexed read: answered on the event loop's own thread, without the hop to the reader's thread,
        when it can be answered at once. Its connection never waits for a lock (busy timeout 0): in WAL mode a
        reader never needs one; should it ever have to wait (a file not in WAL mode while another process writes,
        WAL recovery), the read goes to the reader's thread, which may wait, and the loop goes on."""
        if self._inline is not None:
            try:
                return _transaction(self._inline, work, begin)
            except ProviderUnavailable as exc:
                if not _waits_for_lock(exc):
                    raise
        return await self._run(work, begin=begin)

    async def _write(
        self, work: Callable[[sqlite3.Connection, Touched], _W], *, dry_run: bool, short: bool = True
    ) -> _W:
        """Every write tool's transaction: `work` says which contacts it touches (`Touched`), its result is
        given what changed, the call's history entry is appended (`history.InTransaction`), and a dry run is rolled
        back instead of committed (so it fails as the real call would, and writes nothing). A `short` one runs on
        the loop's thread when it can at once (`_on_loop`)."""
        pending = history.to_record(dry_run=dry_run)
        refused: list[str | None] = []

        def write(db: sqlite3.Connection) -> _W:
            touched = Touched(db)
            result = rules.reported(work(db, touched), touched.changes(), dry_run=dry_run)
            if pending is not None:
                refused[:] = [_append_history(db, pending.entry(result.structured()))]
            return result

        if not dry_run:
            dry_run_guard.refuse("a committed write to the contact store")
        transaction = functools.partial(_transaction, work=write, begin="BEGIN IMMEDIATE", commit=not dry_run)
        ran = await self._on_loop(transaction) if short else None
        result = ran[0] if ran is not None else await self._writer.run(functools.partial(transaction, self._writer.db))
        if pending is not None and refused:
            pending.done(refused[0])
        return result

    @staticmethod
    def _require_contact(
        db: sqlite3.Connection, contact_id: str, *, field: str = "contact_id", hint: str = rules.GET_HINT
    ) -> tuple[int, str]:
        """The contact's row number and canonical id, or `NotFound` naming `field`."""
        canonical = rules.canonical_id(contact_id)
        row = db.execute(_LIVE_BY_ID, (canonical,)).fetchone() if canonical else None
        if row is None or canonical is None:
            raise rules.contact_not_found(contact_id, field=field, hint=hint)
        seq: int = row[0]
        live: str = row[1]
        return seq, live

    # ---------- attach_contact (Feather) ----------

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        def work(db: sqlite3.Connection, touched: Touched) -> AttachedContact:
            now = rules.now()
            seq, live = self._require_contact(db, call.end_user_id, field="end_user_id", hint=rules.ATTACH_HINT)
            attach = dataclasses.replace(call, end_user_id=live)
            row = db.execute(_METHOD_BY_CHANNEL_VALUE, (seq, call.channel, call.normalized_value)).fetchone()
            if row is None:
                touched.before(seq)
                kind = rules.kind(call.channel, call.type)
                first_of_kind = db.execute(_PRIMARY_OF_KIND, (seq, kind)).fetchone() is None
                uid = _add_method(
                    db,
                    seq,
                    now,
                    channel=call.channel,
                    type_=call.type,
                    raw_value=call.raw_value,
                    value=call.normalized_value,
                    primary=first_of_kind,
                    verified_at=now,
                    verification_method=rules.ATTACH_VERIFICATION_METHOD,
                )
                db.execute(_TOUCH, (now, seq))
                return rules.attached_contact(
                    attach, uid=uid, type_=call.type, verification_method=rules.ATTACH_VERIFICATION_METHOD, created=True
                )
            method_seq, uid, type_, verified_at, method = row
            if verified_at is None:
                # Attaching says the value is verified: an unverified method (say, from upsert) is promoted.
                touched.before(seq)
                db.execute(_VERIFY_ATTACHED, (now, rules.ATTACH_VERIFICATION_METHOD, method_seq))
                db.execute(_TOUCH, (now, seq))
                method = rules.ATTACH_VERIFICATION_METHOD
            return rules.attached_contact(attach, uid=uid, type_=type_, verification_method=method, created=False)

        return await self._write(work, dry_run=call.dry_run)

    # ---------- attach_identity (Blooio) ----------

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        def work(db: sqlite3.Connection, touched: Touched) -> AttachedIdentity:
            now = rules.now()
            seq, contact_id = self._require_contact(db, call.contact_id)
            row = db.execute(_IDENTITY_BY_KEY, rules.identity_key(call)).fetchone()
            if row is None:
                touched.before(seq)
                identity_id = rules.new_id()
                db.execute(
                    _INSERT_IDENTITY, (identity_id, seq, call.channel_type, call.identifier, call.channel_id, now)
                )
                db.execute(_TOUCH, (now, seq))
                return rules.attached_identity(
                    call, contact_id=contact_id, identity_id=identity_id, created_at=now, created=True
                )
            identity_id, created_at, owner_seq, owner_id = row
            if owner_seq != seq:
                raise rules.identity_taken(call.identifier, owner_id)
            return rules.attached_identity(
                call, contact_id=contact_id, identity_id=identity_id, created_at=created_at, created=False
            )

        return await self._write(work, dry_run=call.dry_run)

    # ---------- set_verification (TetherAI) ----------

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        def work(db: sqlite3.Connection, touched: Touched) -> VerificationResult:
            seq, contact_id = self._require_contact(db, call.contact_id)
            if db.execute(_HAS_METHOD_OF_KIND_VALUE, (seq, call.type, call.value)).fetchone() is None:
                values: list[str] = [row[0] for row in db.execute(_VALUES_OF_KIND, (seq, call.type))]
                raise rules.value_not_found(call, values)
            state = rules.verification_state(call)
            touched.before(seq)
            # Every method carrying the value (the same number on sms and whatsapp, say) changes together.
            if db.execute(_SET_VERIFICATION, (*state, seq, call.type, call.value)).rowcount:
                db.execute(_TOUCH, (rules.now(), seq))
            return rules.verification_result(call, contact_id)

        return await self._write(work, dry_run=call.dry_run)

    # ---------- upsert_contact (Featurebase) ----------

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        def work(db: sqlite3.Connection, touched: Touched) -> UpsertResult:
            target, applied = self._upsert_target(db, call)
            now = rules.now()
            if target is None:
                seq, contact_id = _add_contact(db, rules.contact_from_upsert(call), now)
                touched.created(seq)
                for kind, value in (("email", call.email), ("phone", call.phone)):
                    if value is not None:
                        _add_method(db, seq, now, channel=kind, type_=kind, raw_value=value, value=value, primary=True)
                return rules.upsert_created(call, contact_id)
            changes = rules.upsert_changes(target, applied)
            if changes.changed:
                touched.before(target.key)
            if changes.email is not None:
                self._make_primary(db, target.key, "email", changes.email, now)
            if changes.phone is not None:
                self._make_primary(db, target.key, "phone", changes.phone, now)
            if changes.changed:
                columns = {**changes.columns, "updated_at": now}
                assignments = ", ".join(f"{column} = ?" for column in columns)
                db.execute(f"UPDATE contacts SET {assignments} WHERE seq = ?", (*columns.values(), target.key))
            return rules.upsert_matched(applied, target, changes)

        return await self._write(work, dry_run=call.dry_run)

    @staticmethod
    def _upsert_target(
        db: sqlite3.Connection, call: UpsertContactInput
    ) -> tuple[rules.StoredContact | None, UpsertContactInput]:
        """Read what `rules.upsert_target` needs and ask it (upsert_contact, and import's rows with email/user_id);
        with the call as it applies (a merged contact's user_id replaced by its survivor's)."""
        by_user_id = _stored(db.execute(_UPSERT_BY_USER_ID, (call.user_id,))) if call.user_id is not None else None
        if by_user_id is not None and by_user_id.user_id != call.user_id:
            # The user_id is a merged contact's: it leads to the survivor, whose own user_id stays.
            call = dataclasses.replace(call, user_id=by_user_id.user_id)
        by_email = _stored(db.execute(_UPSERT_BY_EMAIL, (call.email,))) if call.email is not None else None
        holds = (
            by_user_id is not None
            and by_email is not None
            and by_email.id != by_user_id.id
            and db.execute(_HAS_METHOD_OF_KIND_VALUE, (by_user_id.key, "email", call.email)).fetchone() is not None
        )
        return rules.upsert_target(call, by_user_id=by_user_id, by_email=by_email, user_holds_email=holds), call

    @staticmethod
    def _make_primary(db: sqlite3.Connection, seq: int, kind: Literal["email", "phone"], value: str, now: str) -> None:
        """Make `value` (not the current primary) the contact's primary of `kind`, adding it as a method if new."""
        current = db.execute(_PRIMARY_OF_KIND, (seq, kind)).fetchone()
        existing = db.execute(_METHOD_OF_KIND, (seq, kind, value, kind)).fetchone()
        if current is not None:
            db.execute(_SET_PRIMARY, (0, current[0]))
        if existing is not None:
            db.execute(_SET_PRIMARY, (1, existing[0]))
        else:
            _add_method(db, seq, now, channel=kind, type_=kind, raw_value=value, value=value, primary=True)

    # ---------- create_contact (Protocol) ----------

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        def work(db: sqlite3.Connection, touched: Touched) -> CreatedContact:
            now = rules.now()
            new = rules.contact_from_create(call)
            existing = db.execute(_ID_BY_USERNAME, (new.username_key,)).fetchone()
            if existing is not None:
                raise rules.username_taken(call.username, existing[0])
            shared_with: list[str] = [row[0] for row in db.execute(_PHONE_HOLDERS, (call.phone_number,))]
            seq, contact_id = _add_contact(db, new, now)
            touched.created(seq)
            phone = call.phone_number
            _add_method(db, seq, now, channel="phone", type_="phone", raw_value=phone, value=phone, primary=True)
            return rules.created_contact(call, contact_id=contact_id, created_at=now, shared_with=shared_with)

        return await self._write(work, dry_run=call.dry_run)

    # ---------- get_contact ----------

    async def get_contact(self, contact_id: str) -> Contact:
        canonical = rules.canonical_id(contact_id)
        if canonical is None:
            raise rules.contact_not_found(contact_id)

        def work(db: sqlite3.Connection) -> StoredFields:
            found = _stored_contacts(db, _named(db.execute(_RECORD_BY_ID, (canonical,))))
            if not found:
                raise rules.contact_not_found(contact_id)
            return found[0]

        return contact_from(await self._read(work, begin="BEGIN"))

    # ---------- find_contacts ----------

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        after = rules.decode_cursor(call.cursor) if call.cursor is not None else 0
        sql, params = find_query(call, after)

        def work(db: sqlite3.Connection) -> list[dict[str, Any]]:
            return _named(db.execute(sql, params))  # one statement: its own read transaction

        # Exact filters are index searches (short); a name search alone may walk many contacts: the reader's thread.
        exact = any(value is not None for value in (call.email, call.phone, call.username, call.user_id))
        rows = await (self._read(work, begin=None) if exact else self._run(work, begin=None))
        page = rows[: call.limit]
        return ContactPage(
            provider=rules.PROVIDER,
            contacts=[ContactSummary.model_validate(row) for row in page],
            next_cursor=rules.encode_cursor(page[-1]["seq"]) if len(rows) > call.limit else None,
        )

    # ---------- find_duplicates, merge_contacts ----------

    async def find_duplicates(self, call: FindDuplicatesInput) -> DuplicatePage:
        if call.cursor is not None:
            rules.decode_cursor(call.cursor)  # a bad cursor is refused before the read

        def work(db: sqlite3.Connection) -> tuple[list[duplicates.ContactRow], list[duplicates.ValueRow]]:
            return db.execute(_DUPLICATE_CONTACTS).fetchall(), db.execute(_DUPLICATE_VALUES).fetchall()

        contacts, values = await self._run(work, begin="BEGIN")
        return await anyio.to_thread.run_sync(duplicates.duplicate_page, contacts, values, call)

    async def merge_contacts(self, call: MergeContactsInput) -> MergeResult:
        survivor_id, duplicate_ids = merging.check_ids(call.survivor_id, call.duplicate_ids)

        def work(db: sqlite3.Connection, touched: Touched) -> MergeResult:
            survivor_seq, before = _merge_party(db, survivor_id)
            if before is None:
                raise rules.contact_not_found(survivor_id, field="survivor_id")
            if before.merged_into is not None:
                raise merging.survivor_merged(survivor_id, before.merged_into)
            now = rules.now()
            after = before
            merged: list[str] = []
            conflicts: list[MergeConflict] = []
            moved_methods = moved_identities = 0
            for duplicate_id in duplicate_ids:
                seq, duplicate = _merge_party(db, duplicate_id)
                if duplicate is None:
                    raise merging.duplicate_not_found(duplicate_id)
                if duplicate.merged_into == survivor_id:
                    continue  # merged before: merging again changes nothing
                if duplicate.merged_into is not None:
                    raise merging.duplicate_merged(duplicate_id, duplicate.merged_into)
                after, plan, found = merging.merge_into(after, duplicate)
                touched.before(survivor_seq)
                touched.before(seq)
                for column in plan.released:
                    db.execute(_RELEASE[column], (seq,))
                for fold in plan.folded:
                    if fold.verify is not None:
                        db.execute(_VERIFY_METHOD, (*fold.verify, survivor_seq, fold.into))
                    db.execute(_DROP_METHOD, (seq, fold.method_id))
                # Primaries first stop being primary on the duplicate, so no moment holds two for one kind.
                for method_id, primary in sorted(plan.moved, key=lambda move: move[1]):
                    db.execute(_MOVE_METHOD, (survivor_seq, primary, seq, method_id))
                for identity_id in plan.identities:
                    db.execute(_MOVE_IDENTITY, (survivor_seq, seq, identity_id))
                db.execute(_MERGED, (survivor_id, now, seq))
                db.execute(_REPOINT, (survivor_id, duplicate_id))
                merged.append(duplicate_id)
                moved_methods += len(plan.moved)
                moved_identities += len(plan.identities)
                conflicts += found
            columns = merging.survivor_columns(before, after)
            if merged:
                columns["updated_at"] = now
                assignments = ", ".join(f"{column} = ?" for column in columns)
                db.execute(f"UPDATE contacts SET {assignments} WHERE seq = ?", (*columns.values(), survivor_seq))
            return merging.merge_result(
                before,
                after,
                merged,
                moved_methods=moved_methods,
                moved_identities=moved_identities,
                conflicts=conflicts,
            )

        return await self._write(work, dry_run=call.dry_run, short=False)  # several contacts: the thread

    # ---------- delete_contact, detach_identity, detach_contact (erasure) ----------

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        canonical = rules.canonical_id(call.contact_id)
        if canonical is None:
            raise rules.contact_not_found(call.contact_id, hint=rules.DELETE_HINT)

        def work(db: sqlite3.Connection, touched: Touched) -> DeletedContact:
            row = db.execute(_ERASE_TARGET, (canonical,)).fetchone()
            if row is None:
                raise rules.contact_not_found(call.contact_id, hint=rules.DELETE_HINT)
            seq, merged_into = row
            doomed: list[int] = [seq]
            merged: list[str] = []
            frontier = [canonical]
            while frontier:  # contacts merged into this one are the same person (and chains of them)
                for merged_seq, merged_id in db.execute(_MERGED_INTO, (frontier.pop(),)).fetchall():
                    doomed.append(merged_seq)
                    merged.append(merged_id)
                    frontier.append(merged_id)
            for key in doomed:
                touched.before(key)
                db.execute(_DELETE_METHODS, (key,))
                db.execute(_DELETE_IDENTITIES, (key,))
                db.execute(_DELETE_CONTACT, (key,))
            # In the same transaction, so before the checkpoint: the history keeps its rows, not the values.
            for erased in (canonical, *merged):
                scrub_history_rows(db, erased, rules.PROVIDER)
            return rules.deleted_contact(canonical, merged=merged, merged_into=merged_into)

        result = await self._write(work, dry_run=call.dry_run)
        if not call.dry_run:
            await self._writer.run(self._checkpoint)
        return result

    async def _on_loop(self, transaction: Callable[[sqlite3.Connection], _T]) -> tuple[_T] | None:
        """Run a short write `transaction` on the event loop's thread, on the appender connection, if the file's
        write lock is free at once and no write of ours waits on the writer's thread (which would be overtaken):
        (its result,); else None, and nothing was written, for the writer's thread to run it, which may wait. The
        loop never waits on a lock. Every `CHECKPOINT_EVERY` such commits the writer's thread checkpoints (the
        appender never does)."""
        if self._appender is None or self._closed or self._writer.unfinished:
            return None
        try:
            result = transaction(self._appender)
        except ProviderUnavailable as exc:
            if not _waits_for_lock(exc):
                raise
            return None
        self._appended += 1
        if self._appended % CHECKPOINT_EVERY == 0:
            await self._writer.run(self._checkpoint_passive)
        return (result,)

    def _checkpoint(self) -> None:
        """After an erasure has committed: copy the WAL back into the file (whose freed pages secure_delete has
        zeroed) and truncate it, so no old page image still holds the values. A reader in another process can
        hold the WAL open; then the values stay in it until the next checkpoint (logged, not failed: the delete
        is done)."""
        db = self._writer.db
        try:
            # Builds with STAT4 keep sample index keys from ANALYZE (PRAGMA optimize), which may quote the deleted
            # values; the planner gathers them again. Without STAT4 there is no such table.
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat4'").fetchone() is not None:
                db.execute("DELETE FROM sqlite_stat4")
            busy, _, _ = db.execute(_CHECKPOINT).fetchone()
        except sqlite3.Error as exc:
            log.warning("CONTACT_MCP_DB=%s: checkpoint after a delete failed: %s", self._path, exc)
            return
        if busy:
            log.warning(
                "CONTACT_MCP_DB=%s: another connection held the WAL; erased values leave it at the next checkpoint",
                self._path,
            )

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        def work(db: sqlite3.Connection, touched: Touched) -> DetachedIdentity:
            seq, contact_id = self._require_contact(db, call.contact_id)
            held = [rules.IdentityRow(*row) for row in db.execute(_IDENTITIES_OF_CONTACT, (seq,))]
            rows = rules.identities_to_detach(call, held)
            touched.before(seq)
            for row in rows:
                db.execute(_DELETE_IDENTITY, (row.key,))
            db.execute(_TOUCH, (rules.now(), seq))
            return rules.detached_identity(call, contact_id, rows)

        return await self._write(work, dry_run=call.dry_run)

    async def detach_contact(self, call: DetachContactInput) -> DetachedContact:
        def work(db: sqlite3.Connection, touched: Touched) -> DetachedContact:
            seq, contact_id = self._require_contact(db, call.contact_id)
            row = db.execute(_METHOD_TO_DETACH, (seq, call.channel, call.normalized_value)).fetchone()
            if row is None:
                values: list[str] = [value for (value,) in db.execute(_VALUES_ON_CHANNEL, (seq, call.channel))]
                raise rules.method_not_found(call, values)
            method_seq, uid, kind, primary = row
            touched.before(seq)
            db.execute(_DELETE_METHOD, (method_seq,))
            new_primary: str | None = None
            if primary:
                heir = db.execute(_OLDEST_OF_KIND, (seq, kind)).fetchone()
                if heir is not None:
                    db.execute(_SET_PRIMARY, (1, heir[0]))
                    new_primary = heir[1]
            db.execute(_TOUCH, (rules.now(), seq))
            return rules.detached_contact(call, contact_id, uid, new_primary)

        return await self._write(work, dry_run=call.dry_run)

    # ---------- history ----------

    async def add_history(self, entries: Sequence[HistoryEntry]) -> None:
        rows = [history.entry_values(entry) for entry in entries]

        def add(db: sqlite3.Connection) -> None:
            db.executemany(_INSERT_HISTORY, rows)

        # A provider write's entry: one short insert (the hop to the writer's thread cost more than it).
        dry_run_guard.refuse("a committed write to the contact store")
        if await self._on_loop(functools.partial(_transaction, work=add, begin="BEGIN IMMEDIATE")) is None:
            await self._run(add, begin="BEGIN IMMEDIATE")

    def _checkpoint_passive(self) -> None:
        try:
            self._writer.db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # the next one will do
            log.debug("CONTACT_MCP_DB=%s: a passive checkpoint failed: %s", self._path, exc)

    async def history_page(self, query: history.HistoryQuery) -> history.HistoryPage:
        statement, params = history.select(query, "?")
        rows = await self._run(lambda db: db.execute(statement, params).fetchall(), begin="BEGIN")
        return history.page_from(rows, query)

    async def prune_history(self, before: str) -> int:
        return await self._run(lambda db: db.execute(_PRUNE_HISTORY, (before,)).rowcount, begin="BEGIN IMMEDIATE")

    async def scrub_history(self, contact_id: str, provider: str | None = None) -> int:
        return await self._run(lambda db: scrub_history_rows(db, contact_id, provider), begin="BEGIN IMMEDIATE")

    # ---------- export and restore ----------

    async def export_page(self, *, after: str | None, limit: int) -> RecordPage:
        start = rules.decode_cursor(after) if after is not None else 0
        return await self._run(lambda db: _export_page(db, start, limit), begin="BEGIN")

    async def restore_contact(self, record: ContactRecord) -> Outcome:
        checked = check_record(record)
        return await self._run(lambda db: _restore(db, checked), begin="BEGIN IMMEDIATE")

    async def import_contact(self, call: rules.ImportContactInput) -> Outcome:
        return await self._run(lambda db: self._import(db, call), begin="BEGIN IMMEDIATE")

    async def import_batch(
        self, items: Sequence[ContactRecord | rules.ImportContactInput]
    ) -> list[Outcome | rules.RowError]:
        def work(db: sqlite3.Connection) -> list[Outcome | rules.RowError]:
            calls = [item for item in items if isinstance(item, rules.ImportContactInput)]
            keys = rules.batch_keys(calls) if len(calls) == len(items) else None
            if keys is not None and _create_all(db, calls, keys):
                return ["created"] * len(calls)
            answers: list[Outcome | rules.RowError] = []
            for item in items:
                db.execute("SAVEPOINT import_row")
                try:
                    if isinstance(item, ContactRecord):
                        answers.append(_restore(db, check_record(item)))
                    else:
                        answers.append(self._import(db, item))
                except rules.ROW_ERRORS as exc:
                    db.execute("ROLLBACK TO import_row")
                    answers.append(exc)
                db.execute("RELEASE import_row")
            return answers

        return await self._run(work, begin="BEGIN IMMEDIATE")

    def _import(self, db: sqlite3.Connection, call: rules.ImportContactInput) -> Outcome:
        """One row of new data: match as `rules.import_target` says, then create or merge, in this one transaction."""
        by_keys = by_username = None
        holders: list[rules.StoredContact] = []
        if call.emails or call.user_id is not None:
            by_keys, applied = self._upsert_target(db, rules.import_upsert(call))
            call = dataclasses.replace(call, user_id=applied.user_id)
        else:
            if call.username is not None:
                by_username = _stored(db.execute(_UPSERT_BY_USERNAME, (rules.username_key(call.username),)))
                if by_username is not None and rules.username_key(by_username.username) != rules.username_key(
                    call.username
                ):  # a merged contact's username: it names the survivor, whose own username stays
                    call = dataclasses.replace(call, username=by_username.username)
            if by_username is None and call.name is not None:
                for phone in call.phones:
                    holders += _stored_all(db.execute(_UPSERT_BY_PHONE, (phone,)))
                holders.sort(key=lambda holder: holder.key)
        merged_names = {h.id: [row[0] for row in db.execute(_MERGED_NAMES, (h.id,))] for h in holders}
        target = rules.import_target(
            call, by_keys=by_keys, by_username=by_username, phone_holders=holders, merged_names=merged_names
        )
        owner = db.execute(_ID_BY_USERNAME, (rules.username_key(call.username),)).fetchone() if call.username else None
        if owner is not None and target is not None and owner[0] == target.id != owner[1]:
            call = dataclasses.replace(call, username=target.username)  # a stub's: the survivor keeps its own
        now = rules.now()
        if target is None:
            if owner is not None:
                raise rules.username_taken(str(call.username), owner[0])
            seq, _ = _add_contact(db, rules.contact_from_import(call), now)
            for kind, value, primary in rules.import_methods(call):
                _add_method(db, seq, now, channel=kind, type_=kind, raw_value=value, value=value, primary=primary)
            return "created"
        held = {(str(kind), str(value)) for kind, value in db.execute(_HELD_VALUES, (target.key,))}
        changes = rules.import_changes(
            target,
            call,
            held=held,
            username_owner=owner[0] if owner else None,
            merged_names=merged_names.get(target.id, ()),
        )
        if changes.upsert.email is not None:
            self._make_primary(db, target.key, "email", changes.upsert.email, now)
        if changes.upsert.phone is not None:
            self._make_primary(db, target.key, "phone", changes.upsert.phone, now)
        for kind, value in changes.more_methods:
            _add_method(db, target.key, now, channel=kind, type_=kind, raw_value=value, value=value, primary=False)
        if not changes.changed:
            return "unchanged"
        columns = {**changes.upsert.columns, "updated_at": now}
        assignments = ", ".join(f"{column} = ?" for column in columns)
        db.execute(f"UPDATE contacts SET {assignments} WHERE seq = ?", (*columns.values(), target.key))
        return "updated"


def _append_history(db: sqlite3.Connection, entry: HistoryEntry) -> str | None:
    """Append a write's history entry in the write's transaction, under a savepoint: a row the database refuses
    is left out (the type of its failure returned) and the write goes on, as it would without a history."""
    db.execute("SAVEPOINT history")
    try:
        db.execute(_INSERT_HISTORY, history.entry_values(entry))
    except sqlite3.Error as exc:
        db.execute("ROLLBACK TO history")
        return type(exc).__name__
    finally:
        db.execute("RELEASE history")
    return None


def scrub_history_rows(db: sqlite3.Connection, contact_id: str, provider: str | None = None) -> int:
    """Drop every value from the history rows of a contact (of `provider`, or of any), in the caller's transaction
    (a delete calls it in its own); the rows and their field names stay. Returns the rows scrubbed."""
    rows: list[tuple[int, str]] = db.execute(_HISTORY_OF, (contact_id, provider, provider)).fetchall()
    db.executemany(_SCRUB_HISTORY, [(history.scrubbed(fields), seq) for seq, fields in rows])
    return len(rows)


_KEY_LOOKUPS: Final = (
    ("user_ids", "SELECT 1 FROM contacts WHERE user_id IN ({})"),
    ("username_keys", "SELECT 1 FROM contacts WHERE username_key IN ({})"),
    ("emails", "SELECT 1 FROM methods WHERE value IN ({}) AND kind = 'email'"),
    ("matching_phones", "SELECT 1 FROM methods WHERE value IN ({}) AND kind = 'phone'"),
)
_KEYS_PER_LOOKUP: Final = 500
"""Values bound in one `_KEY_LOOKUPS` statement (SQLite allows 32,766 parameters; statements are cached by text,
so full chunks reuse one prepared statement)."""


def batch_lookups(keys: rules.BatchKeys) -> Iterator[tuple[str, list[str]]]:
    """The statements (and their values) that find a stored contact holding one of a batch's keys: each an index
    search per value (tests/store/sqlite/test_indexes.py checks their plans)."""
    for field, template in _KEY_LOOKUPS:
        values: tuple[str, ...] = getattr(keys, field)
        for start in range(0, len(values), _KEYS_PER_LOOKUP):
            chunk = list(values[start : start + _KEYS_PER_LOOKUP])
            yield template.format(", ".join("?" * len(chunk))) + " LIMIT 1", chunk


def _create_all(db: sqlite3.Connection, calls: Sequence[rules.ImportContactInput], keys: rules.BatchKeys) -> bool:
    """Create every row's contact, if no stored contact holds any of the batch's keys (then every row creates its
    contact: `rules.batch_keys`); else write nothing and say so. The write lock is held (BEGIN IMMEDIATE), so the
    answer holds until commit."""
    if any(db.execute(query, values).fetchone() is not None for query, values in batch_lookups(keys)):
        return False
    try:
        news = [rules.contact_from_import(call) for call in calls]
    except rules.ROW_ERRORS:
        return False  # the rows one by one say which
    now = rules.now()
    methods: list[tuple[object, ...]] = []
    for new, call, contact_id in zip(news, calls, rules.new_ids(len(calls)), strict=True):
        seq, _ = _add_contact(db, new, now, contact_id)
        methods += [(seq, kind, value, primary) for kind, value, primary in rules.import_methods(call)]
    db.executemany(
        _INSERT_METHOD,
        [
            (method_id, seq, kind, kind, kind, value, value, primary, None, None, None, now)
            for method_id, (seq, kind, value, primary) in zip(rules.new_ids(len(methods)), methods, strict=True)
        ],
    )
    return True


def _named(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _stored_contacts(db: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[StoredFields]:
    """Whole contacts for contact rows (`_RECORD_COLUMNS`, in seq order), their methods and identities read in one
    range query each."""
    if not rows:
        return []
    span = (rows[0]["seq"], rows[-1]["seq"])
    methods: dict[int, list[dict[str, Any]]] = {}
    for method in _named(db.execute(_METHODS_OF, span)):
        methods.setdefault(method.pop("contact_seq"), []).append(method)
    identities: dict[int, list[dict[str, Any]]] = {}
    for identity in _named(db.execute(_IDENTITIES_OF, span)):
        identities.setdefault(identity.pop("contact_seq"), []).append(identity)
    return [stored_fields(row, methods.get(row["seq"], []), identities.get(row["seq"], [])) for row in rows]


def _merge_party(db: sqlite3.Connection, contact_id: str) -> tuple[int, ContactRecord | None]:
    """A contact of a merge, whole, and its row number (the record is None when no contact has the id)."""
    found = _stored_contacts(db, _named(db.execute(_RECORD_BY_ID, (contact_id,))))
    if not found:
        return 0, None
    seq: int = db.execute(_SEQ_BY_ID, (contact_id,)).fetchone()[0]
    return seq, record_from(found[0])


def _export_page(db: sqlite3.Connection, after: int, limit: int) -> RecordPage:
    rows = _named(db.execute(_RECORDS_AFTER, (after, limit + 1)))
    page = rows[:limit]
    return RecordPage(
        records=[record_from(fields) for fields in _stored_contacts(db, page)],
        after=rules.encode_cursor(page[-1]["seq"]) if len(rows) > limit else None,
    )


def _restore(db: sqlite3.Connection, record: ContactRecord) -> Outcome:
    row = db.execute(_SEQ_BY_ID, (record.id,)).fetchone()
    seq: int | None = row[0] if row is not None else None
    if seq is not None and [
        record_from(f) for f in _stored_contacts(db, _named(db.execute(_RECORD_BY_ID, (record.id,))))
    ] == [record]:
        return "unchanged"
    if record.user_id is not None:
        owner = db.execute(_ID_BY_USER_ID, (record.user_id,)).fetchone()
        if owner is not None and owner[0] != record.id:
            raise rules.user_id_taken(record.user_id, owner[0])
    new = rules.NewContact(
        user_id=record.user_id,
        username=record.username,
        name=record.name,
        display_name=record.display_name,
        locale=record.locale,
        profile_picture=record.profile_picture,
        companies=rules.companies_json(record.companies),
        custom_fields=rules.custom_fields_json(record.custom_fields),
        roles=rules.roles_json(record.roles),
        subscribed_to_changelog=record.subscribed_to_changelog,
    )
    if record.username is not None:
        owner = db.execute(_ID_BY_USERNAME, (new.username_key,)).fetchone()
        if owner is not None and owner[1] != record.id:
            raise rules.username_taken(record.username, owner[1])
    for identity in record.identities:
        key = (identity.identifier, identity.channel_type or "", identity.channel_id or "")
        owner = db.execute(_IDENTITY_BY_KEY, key).fetchone()
        if owner is not None and owner[3] != record.id:
            raise rules.identity_taken(identity.identifier, owner[3])
    if seq is None:
        cursor = db.execute(_INSERT_CONTACT, (record.id, *_contact_values(new), record.created_at, record.updated_at))
        assert cursor.lastrowid is not None
        seq = cursor.lastrowid
        outcome: Outcome = "created"
    else:
        db.execute(_DELETE_METHODS, (seq,))
        db.execute(_DELETE_IDENTITIES, (seq,))
        db.execute(_REPLACE_CONTACT, (record.id, *_contact_values(new), record.created_at, record.updated_at, seq))
        outcome = "updated"
    if record.merged_into is not None or outcome == "updated":
        db.execute(_SET_MERGED_INTO, (record.merged_into, seq))
    for m in record.methods:
        db.execute(
            _INSERT_METHOD,
            (
                m.id, seq, m.channel, m.type, rules.kind(m.channel, m.type), m.raw_value, m.value, m.primary,
                m.verified_at, m.verification_source, m.verification_method, m.created_at,
            ),
        )  # fmt: skip
    for i in record.identities:
        db.execute(_INSERT_IDENTITY, (i.id, seq, i.channel_type, i.identifier, i.channel_id, i.created_at))
    return outcome
