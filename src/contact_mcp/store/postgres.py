"""The PostgreSQL backend: the store in a database many server processes share (psycopg 3 async, psycopg_pool).

It owns the database named by CONTACT_MCP_DB (`postgresql://` or `postgres://`): `preflight` connects, brings the
schema up to date (`migrations/postgres.py`, under a transaction-scoped advisory lock) and proves it can write,
turning anything unusable into a one-line `ConfigError` naming CONTACT_MCP_DB with the password masked. Calls run
on an `AsyncConnectionPool` of up to CONTACT_MCP_DB_POOL_SIZE connections, opened on first use; statements are
never prepared server-side and no session state is kept (`prepare_threshold=None`, only transaction-scoped
locks), so PgBouncer in transaction mode can sit in between. The hottest reads (a contact by id, upsert's
candidates, a phone's holders) are server-side functions instead (`postgres_reads`), whose plans PostgreSQL keeps
per connection.

**Two concurrent upserts of one email or one user id never make two contacts**, decided by the database:
an upsert first takes a transaction-scoped advisory lock on each normalised key it matches on (`user_id:…`,
`email:…`; create_contact likewise on the case-folded username), so upserts sharing a key run one after the other
in every process and replica, and each reads what the previous one committed (READ COMMITTED: every statement sees
the latest commits). A unique constraint cannot do this job alone: an email may sit on two contacts (attach_contact
allows it), so there is no unique index on emails to `ON CONFLICT` against; and serialisable transactions would
abort most of a burst of writers on a small table (its predicate locks cover whole index pages) only to retry them.
The upsert then locks the candidate contact rows (`FOR UPDATE`, in row order) before reading them whole (the key
locks, the row locks and the read are one call of the function `upsert_candidates`, each a statement of its own),
and every other write locks its contact's row first, so merges never work on stale fields. Unique
indexes (contact id, user_id, username, a method per contact and channel, one primary per kind, identities) are
the database's last word: a write that loses a race there (`unique_violation`), a `serialization_failure` or a
`deadlock_detected` reruns the whole call's transaction (stamina, a few attempts) and never reaches the agent.

Failures: an unreachable database (no connection within CONTACT_MCP_CONNECT_TIMEOUT, a connection that broke) is a
retryable `provider_unavailable`; a pooled connection found broken (the server restarted) is discarded with every
other idle one and the call runs once more on a fresh connection, unless it broke while committing, when the
outcome is unknown and the agent is told to read before retrying. The pool reconnects in the background, so the
server recovers by itself when the database comes back (within seconds: the reconnection backoff starts over every
`_RECONNECT_WINDOW_S`). A statement the server fails on a working connection (a lock or statement timeout,
insufficient resources) is a retryable `provider_unavailable` that does not call the database unreachable; one
that would fail the same way again (a program limit) is not retryable. A read-only server or a missing privilege is a
non-retryable `provider_unavailable` (the operator's to fix). Anything else is a bug and is not relabelled.

Dead tuples, vacuum, backups and failover are the database's business (autovacuum and the operator's tooling):
a deleted contact's rows stay readable in the table's files as dead tuples until VACUUM reclaims their space, and
in the WAL and backups for as long as those are kept (README, "Erasure").
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, Literal, LiteralString, TypeVar, cast

import anyio
import psycopg
import psycopg_pool
import stamina
from psycopg import errors as pg_errors
from psycopg import pq, sql

from contact_mcp import dry_run as dry_run_guard
from contact_mcp.errors import ConfigError, ProviderUnavailable
from contact_mcp.logs import rate_limit
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
from contact_mcp.redact import database_password_forms, display_url
from contact_mcp.settings import Settings
from contact_mcp.store import duplicates, effects, history, merging, rules
from contact_mcp.store.backend import Backend
from contact_mcp.store.migrations.postgres import migrate
from contact_mcp.store.postgres_reads import (
    CONTACT_BY_ID,
    PHONE_HOLDERS,
    UPSERT_CANDIDATES,
    WHOLE_COLUMNS,
    WHOLE_CONTACT,
    lock_keys,
    primary_value,
)
from contact_mcp.store.records import (
    ContactRecord,
    RecordPage,
    StoredFields,
    check_record,
    contact_from,
    record_from,
    stored_fields,
)

log = logging.getLogger("contact_mcp.store.postgres")

_T = TypeVar("_T")
_W = TypeVar("_W", bound=WriteResult)
Conn = psycopg.AsyncConnection[tuple[Any, ...]]
Row = tuple[Any, ...]
Statement = tuple[LiteralString | bytes | sql.Composed, Sequence[object] | Mapping[str, object]]
"""A statement and its parameters, for `_script`."""

RETRY_ATTEMPTS: Final = 10
"""Runs of one call's transaction when it loses a race (unique_violation, serialization_failure, deadlock)."""
_MIN_POOL: Final = 1
"""Connections the pool keeps open when idle; it grows on demand to CONTACT_MCP_DB_POOL_SIZE."""

# ---------- statements ----------

_SEQ_BY_ID_FOR_UPDATE: Final = "SELECT seq FROM contacts WHERE id = %s FOR UPDATE"
_LOCK_BY_ID: Final = "SELECT seq, merged_into FROM contacts WHERE id = %s FOR UPDATE"
_TOUCH: Final = "UPDATE contacts SET updated_at = %s WHERE seq = %s"
_CONTACT_COLUMNS: Final = (
    "id, user_id, username, username_key, name, display_name, locale, profile_picture, companies, custom_fields, "
    "roles, subscribed_to_changelog, search_text, created_at, updated_at"
)
_INSERT_CONTACT: Final[LiteralString] = (
    f"INSERT INTO contacts ({_CONTACT_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb, %s, %s, %s, %s) RETURNING seq"
)
_REPLACE_CONTACT: Final = (
    "UPDATE contacts SET id = %s, user_id = %s, username = %s, username_key = %s, name = %s, display_name = %s, "
    "locale = %s, profile_picture = %s, companies = %s::jsonb, custom_fields = %s::jsonb, roles = %s::jsonb, "
    "subscribed_to_changelog = %s, search_text = %s, created_at = %s, updated_at = %s WHERE seq = %s"
)
_INSERT_METHOD: Final = (
    "INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, verified_at, "
    "verification_source, verification_method, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
)
_INSERT_METHOD_OF_NEW: Final = _INSERT_METHOD.replace(
    "VALUES (%s, %s,", "VALUES (%s, (SELECT seq FROM contacts WHERE id = %s),"
)
_PRIMARY_OF_KIND: Final = "SELECT seq, value FROM methods WHERE contact_seq = %s AND kind = %s AND is_primary"
_METHOD_OF_KIND: Final = (
    "SELECT seq FROM methods WHERE contact_seq = %s AND kind = %s AND value = %s "
    "ORDER BY channel = %s DESC, seq LIMIT 1"
)
_SET_PRIMARY: Final = "UPDATE methods SET is_primary = %s WHERE seq = %s"
_SET_PRIMARY_ON: Final = "UPDATE methods SET is_primary = %s WHERE contact_seq = %s AND channel = %s AND value = %s"
_VERIFY_ATTACHED: Final = (
    "UPDATE methods SET verified_at = %s, verification_method = %s "
    "WHERE contact_seq = %s AND channel = %s AND value = %s"
)
# Only rows whose state differs are touched, so the row count says whether anything changed.
_SET_VERIFICATION: Final = (
    "UPDATE methods SET verified_at = %(at)s::text, verification_source = %(source)s::text, "
    "verification_method = %(method)s::text "
    "WHERE contact_seq = %(seq)s AND kind = %(kind)s AND value = %(value)s AND ("
    "verified_at IS DISTINCT FROM %(at)s::text OR verification_source IS DISTINCT FROM %(source)s::text "
    "OR verification_method IS DISTINCT FROM %(method)s::text)"
)
# ... and the contact's updated_at moved when any did, in the same statement.
_SET_VERIFICATION_AND_TOUCH: Final[LiteralString] = (
    f"WITH changed AS ({_SET_VERIFICATION} RETURNING 1) "
    "UPDATE contacts SET updated_at = %(now)s WHERE seq = %(seq)s AND EXISTS (SELECT 1 FROM changed)"
)
_IDENTITY_BY_KEY: Final = (
    "SELECT i.id, i.created_at, i.contact_seq, c.id FROM identities i JOIN contacts c ON c.seq = i.contact_seq "
    "WHERE i.identifier = %s AND coalesce(i.channel_type, '') = %s AND coalesce(i.channel_id, '') = %s"
)
_INSERT_IDENTITY: Final = (
    "INSERT INTO identities (id, contact_seq, channel_type, identifier, channel_id, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s)"
)
# Whose a username is: a merged contact's leads to its survivor (the holder itself is the second column).
_ID_BY_USERNAME: Final = "SELECT coalesce(merged_into, id), id FROM contacts WHERE username_key = %s"
_ID_BY_USER_ID: Final = "SELECT id FROM contacts WHERE user_id = %s"
_LOCK_KEYS: Final = lock_keys("%s::bigint[]")
_LOCK_KEYS_BINARY: Final = lock_keys("%b::bigint[]")  # the same, its array sent in binary (an import batch's)

_INSERT_HISTORY: Final[LiteralString] = (
    f"INSERT INTO history ({history.INSERT_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s)"
)
_PRUNE_HISTORY: Final = "DELETE FROM history WHERE at < %s"
_HISTORY_OF: Final = (
    "SELECT seq, fields FROM history WHERE contact_id = %s AND (%s::text IS NULL OR provider = %s) FOR UPDATE"
)
_SCRUB_HISTORY: Final = "UPDATE history SET fields = %s::jsonb WHERE seq = %s"


_UPSERT_COLUMNS: Final[LiteralString] = (
    "seq, id, user_id, username, name, display_name, locale, profile_picture, companies, custom_fields, roles, "
    f"subscribed_to_changelog, {primary_value('contacts', 'email')}, {primary_value('contacts', 'phone')}"
)
_CONTACT_BY_SEQ: Final[LiteralString] = f"{WHOLE_CONTACT} WHERE c.seq = %s"
_EXPORT_PAGE: Final[LiteralString] = f"{WHOLE_CONTACT} WHERE c.seq > %s ORDER BY c.seq LIMIT %s"
_SUMMARY_COLUMNS: Final[LiteralString] = (
    "c.seq, c.id, coalesce(c.name, c.display_name), c.username, c.user_id, "
    f"{primary_value('c', 'email')}, {primary_value('c', 'phone')}"
)
_FIND_IN_METHODS: Final = "c.seq IN (SELECT contact_seq FROM methods WHERE value = %s AND kind = %s)"
_DELETE_METHODS: Final = "DELETE FROM methods WHERE contact_seq = %s"
_UPSERT_BY_PHONE: Final[LiteralString] = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq IN (SELECT contact_seq FROM methods "
    "WHERE value = %s AND kind = 'phone') ORDER BY seq FOR UPDATE"
)
_UPSERT_BY_USERNAME: Final[LiteralString] = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = (SELECT coalesce(s.seq, c.seq) FROM contacts c "
    "LEFT JOIN contacts s ON s.id = c.merged_into WHERE c.username_key = %s) FOR UPDATE"
)
_HELD_VALUES: Final = "SELECT kind, value FROM methods WHERE contact_seq = %s AND kind IN ('email', 'phone')"
_DELETE_IDENTITIES: Final = "DELETE FROM identities WHERE contact_seq = %s"
# A batch of new data (import), once its keys are locked: how many stored rows hold one of its keys
# (`rules.batch_keys`). Counted, not tested with `EXISTS`: expecting a match, the planner would scan the whole table
# for the first one (every contact, every batch), where a count probes the indexes.
_BATCH_KEYS_HELD: Final = (
    "SELECT (SELECT count(*) FROM contacts WHERE user_id = ANY(%(user_ids)b::text[])) "
    "+ (SELECT count(*) FROM contacts WHERE username_key = ANY(%(usernames)b::text[])) "
    "+ (SELECT count(*) FROM methods WHERE value = ANY(%(emails)b::text[]) AND kind = 'email') "
    "+ (SELECT count(*) FROM methods WHERE value = ANY(%(phones)b::text[]) AND kind = 'phone') AS n"
)
# ... and if none, its contacts and their methods, in the rows' order (seq order); the statement answers the count
# (0: the batch was written; else nothing was). One statement, so its one snapshot, taken after the locks, sees what
# their last holders committed. The methods find their contact's seq among the rows just inserted (a join with the
# whole table would scan it). Every array is sent in binary: dumping them as text was most of the batch's cost.
_INSERT_NEW_CONTACTS: Final = (
    f"WITH held AS ({_BATCH_KEYS_HELD}), "
    f"added AS (INSERT INTO contacts ({_CONTACT_COLUMNS}) "
    "SELECT id, user_id, username, username_key, name, display_name, locale, profile_picture, companies::jsonb, "
    "custom_fields::jsonb, roles::jsonb, subscribed::boolean, search_text, %(now)s, %(now)s "
    "FROM unnest(%(id)b::text[], %(user_id)b::text[], %(username)b::text[], %(username_key)b::text[], "
    "%(name)b::text[], %(display_name)b::text[], %(locale)b::text[], %(profile_picture)b::text[], "
    "%(companies)b::text[], %(custom_fields)b::text[], %(roles)b::text[], %(subscribed)b::text[], "
    "%(search_text)b::text[]) WITH ORDINALITY AS new (id, user_id, username, username_key, name, display_name, "
    "locale, profile_picture, companies, custom_fields, roles, subscribed, search_text, ord) "
    "WHERE (SELECT n FROM held) = 0 ORDER BY ord "
    "RETURNING seq, id), "
    "methods_added AS (INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, "
    "created_at) "
    "SELECT new.id, added.seq, new.kind, new.kind, new.kind, new.value, new.value, new.is_primary, %(now)s "
    "FROM unnest(%(method_id)b::text[], %(contact_id)b::text[], %(kind)b::text[], %(value)b::text[], "
    "%(is_primary)b::boolean[]) WITH ORDINALITY AS new (id, contact_id, kind, value, is_primary, ord) "
    "JOIN added ON added.id = new.contact_id ORDER BY new.ord) "
    "SELECT n FROM held"
)
# Erasure: a contact (locked), the contacts merged into it, its identities and methods.
_ERASE_TARGET: Final = "SELECT seq, merged_into FROM contacts WHERE id = %s FOR UPDATE"
_MERGED_INTO: Final = "SELECT seq, id FROM contacts WHERE merged_into = %s ORDER BY seq FOR UPDATE"
_DELETE_CONTACT: Final = "DELETE FROM contacts WHERE seq = %s"
_DELETE_IDENTITY_OF: Final = "DELETE FROM identities WHERE contact_seq = %s AND id = %s"
_DELETE_METHOD_ON: Final = "DELETE FROM methods WHERE contact_seq = %s AND channel = %s AND value = %s"
_JSON_COLUMNS: Final = frozenset({"companies", "custom_fields", "roles"})
_SET_MERGED_INTO: Final = "UPDATE contacts SET merged_into = %s WHERE seq = %s"
_MERGED_NAMES: Final = "SELECT coalesce(name, display_name) FROM contacts WHERE merged_into = %s"
# find_duplicates reads every contact not merged away, and the emails and phones of its methods and identities.
_DUPLICATE_CONTACTS: Final = (
    "SELECT seq, id, coalesce(name, display_name), user_id, companies FROM contacts WHERE merged_into IS NULL"
)
_DUPLICATE_VALUES: Final = (
    "SELECT contact_seq, kind, value FROM methods WHERE kind IN ('email', 'phone') "
    "UNION ALL SELECT contact_seq, CASE WHEN strpos(identifier, '@') > 0 THEN 'email' ELSE 'phone' END, identifier "
    "FROM identities"
)
# merge_contacts: the keys upserts, imports and create_contact lock on, of every contact the merge touches (the
# parties and the contacts merged into a duplicate earlier), then the parties' rows in row order.
# ... (the parties' own keys are read with them, whole)
_MERGED_KEYS: Final = "SELECT user_id, username_key FROM contacts WHERE merged_into = ANY(%s)"
_PARTIES_WHOLE: Final[LiteralString] = f"{WHOLE_CONTACT} WHERE c.id = ANY(%s)"
_LOCK_PARTIES: Final = "SELECT id FROM contacts WHERE id = ANY(%s) ORDER BY seq FOR UPDATE"
_RELEASE: Final[dict[str, LiteralString]] = {
    "user_id": "UPDATE contacts SET user_id = NULL WHERE seq = %s",
    "username": "UPDATE contacts SET username = NULL, username_key = NULL WHERE seq = %s",
}
_MOVE_METHODS: Final = (
    "UPDATE methods SET contact_seq = %s, is_primary = (id = ANY(%s::text[])) "
    "WHERE contact_seq = %s AND id = ANY(%s::text[])"
)
_DROP_METHOD: Final = "DELETE FROM methods WHERE contact_seq = %s AND id = %s"
_VERIFY_METHOD: Final = (
    "UPDATE methods SET verified_at = %s, verification_source = %s, verification_method = %s "
    "WHERE contact_seq = %s AND id = %s"
)
_MOVE_IDENTITY: Final = "UPDATE identities SET contact_seq = %s WHERE contact_seq = %s AND id = %s"
# The duplicate becomes a stub, and the contacts merged into it earlier now point at the survivor.
_MERGED: Final = (
    "UPDATE contacts SET merged_into = %(survivor)s, "
    "updated_at = CASE WHEN seq = %(seq)s THEN %(now)s ELSE updated_at END "
    "WHERE seq = %(seq)s OR merged_into = %(duplicate)s"
)


def _merge_keys(wholes: Sequence[Row], merged: Sequence[Row]) -> set[tuple[str, str]]:
    """The keys (namespace, value) every writer matching on them locks, of a merge's parties (`WHOLE_CONTACT`
    rows: user_id, username, emails and phones) and of the contacts merged into them (`_MERGED_KEYS`)."""
    keys: set[tuple[str, str]] = set()
    for user_id, username_key in [*((row[2], rules.username_key(row[3])) for row in wholes), *merged]:
        if user_id is not None:
            keys.add(("user_id", str(user_id)))
        if username_key is not None:
            keys.add(("username", str(username_key)))
    for row in wholes:
        keys.update((kind, m["value"]) for m in row[15] if (kind := effects.kind_of(m)) in ("email", "phone"))
    return keys


def lock_key(namespace: str, value: str) -> int:
    """The advisory lock (one-bigint key space) guarding one normalised key, the same in every process."""
    digest = hashlib.blake2b(f"{namespace}\x1f{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# ---------- errors ----------


def _one_line(text: str, password: tuple[str, ...]) -> str:
    """A driver's message, fit for one log or error line: whitespace collapsed, the password masked in each of its
    forms (`database_password_forms`, longest first)."""
    line = " ".join(text.split())
    for form in password:
        line = line.replace(form, "****")
    return line


# How long the pool's reconnection attempts back off (1, 2, 4 s...) before starting over from 1 s on the next
# call. psycopg_pool's default of 300 s let the gaps grow to a minute: a 70 s outage was served again 43 s after
# the database came back, while every error told the agent to retry in a few seconds.
_RECONNECT_WINDOW_S: Final = 5.0
_POOL_LOGGER: Final = "psycopg.pool"
_DRIVER_LOGGER: Final = "psycopg"
_OPERATOR_ERRORS: Final = (pg_errors.ReadOnlySqlTransaction, pg_errors.InsufficientPrivilege)
_RACES: Final = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


class _BrokenConnection(Exception):
    """A pooled connection broke before the call committed anything: running the call again is safe."""


def _retry_on(exc: Exception) -> bool:
    return isinstance(exc, (*_RACES, _BrokenConnection))


def _commit_unknown() -> ProviderUnavailable:
    return ProviderUnavailable(
        "the connection to the contact database broke while committing; the write may have been saved",
        hint="Read the contact (get_contact or find_contacts) before retrying the write",
        retry_after_s=1.0,
    )


def _unreachable(cause: str) -> ProviderUnavailable:
    return ProviderUnavailable(
        f"the contact database is unreachable ({cause})",
        hint="The server reconnects by itself; retry in a few seconds",
        retry_after_s=1.0,
    )


# SQLSTATE classes of an error that passes (the connection still works): connection exception, insufficient
# resources, operator intervention (statement and lock timeouts, a cancelled query among them), system error.
_PASSING_CLASSES: Final = ("08", "53", "57", "58")
_LOCK_NOT_AVAILABLE: Final = "55P03"


def _failed_call(exc: psycopg.OperationalError, line: str) -> ProviderUnavailable:
    """A statement failed on a connection that still works: the database is reachable, so do not say otherwise."""
    state = exc.sqlstate
    if state is None:
        return _unreachable(line)
    if state[:2] in _PASSING_CLASSES or state == _LOCK_NOT_AVAILABLE:
        return ProviderUnavailable(
            f"the contact database could not finish the call ({line})",
            hint="It is busy, short of resources or a lock was held too long; retry in a few seconds",
            retry_after_s=1.0,
        )
    # e.g. program_limit_exceeded (54000): the same call fails the same way every time.
    return ProviderUnavailable(
        f"the contact database cannot run this call ({line})",
        hint="Retrying the same call fails the same way; the operator finds the cause in the database's log",
        retryable=False,
    )


# ---------- start-up ----------


def _connect_timeout(settings: Settings) -> int:
    # libpq's connect_timeout is whole seconds, at least 2.
    return max(2, math.ceil(settings.connect_timeout_s))


def _prove_writable(conn: psycopg.Connection[tuple[Any, ...]]) -> None:
    """Write (and roll back) the schema row: a read-only server or role fails here, at start-up."""
    with conn.transaction(force_rollback=True):
        conn.execute("UPDATE contact_mcp_schema SET version = version")


def preflight(settings: Settings) -> None:
    """Connect, migrate, prove writable (unless CONTACT_MCP_READ_ONLY); a `ConfigError` for anything unusable."""
    where = display_url(settings.db)
    password = database_password_forms(settings.db)
    try:
        with psycopg.connect(
            settings.db, autocommit=True, prepare_threshold=None, connect_timeout=_connect_timeout(settings)
        ) as conn:
            migrate(conn, where)
            if not settings.read_only:
                _prove_writable(conn)
    except _OPERATOR_ERRORS as exc:
        raise ConfigError(
            f"CONTACT_MCP_DB={where} cannot be written by this role ({_one_line(str(exc), password)}); grant it "
            "CREATE and write access on the database, or set CONTACT_MCP_READ_ONLY=1 on an up-to-date database"
        ) from None
    except psycopg.OperationalError as exc:
        raise ConfigError(
            f"CONTACT_MCP_DB={where}: cannot connect to PostgreSQL ({_one_line(str(exc), password)})"
        ) from None
    except psycopg.Error as exc:
        raise ConfigError(
            f"CONTACT_MCP_DB={where} is not a usable contact database ({_one_line(str(exc), password)}); "
            "point CONTACT_MCP_DB at a new database or an existing contact-mcp database"
        ) from None


def open_backend(settings: Settings) -> Backend:
    return PostgresBackend(settings)


# ---------- reading rows ----------


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _stored(row: Sequence[Any]) -> rules.StoredContact:
    (seq, id_, user_id, username, name, display_name, locale, picture, companies, custom, roles, subscribed,
     email, phone) = row  # fmt: skip
    return rules.StoredContact(
        key=int(seq),
        id=str(id_),
        user_id=_text(user_id),
        username=_text(username),
        name=_text(name),
        display_name=_text(display_name),
        locale=_text(locale),
        profile_picture=_text(picture),
        companies=companies,
        custom_fields=custom,
        roles=roles,
        subscribed_to_changelog=subscribed,
        email=_text(email),
        phone=_text(phone),
    )


def _fields(row: Row) -> StoredFields:
    """A `WHOLE_CONTACT` row as the record's fields."""
    *columns, methods, identities = row
    return stored_fields(dict(zip(WHOLE_COLUMNS, columns, strict=True)), methods, identities)


def find_query(call: FindContactsInput, after: int) -> tuple[LiteralString, list[object]]:
    """Filters AND together, in seq order after the cursor; one row beyond the page says whether more exist.
    Exact filters drive the query through their indexes; a name search walks contacts in seq order and stops
    once the page is full (as on SQLite)."""
    where: list[LiteralString] = ["c.seq > %s", "c.merged_into IS NULL"]
    params: list[object] = [after]
    if call.query is not None:
        where.append("strpos(c.search_text, %s) > 0")
        params.append(call.query.casefold())
    if call.email is not None:
        where.append(_FIND_IN_METHODS)
        params += [call.email, "email"]
    if call.phone is not None:
        where.append(_FIND_IN_METHODS)
        params += [call.phone, "phone"]
    if call.username is not None:
        where.append(
            "c.seq = (SELECT coalesce(s.seq, u.seq) FROM contacts u LEFT JOIN contacts s ON s.id = u.merged_into "
            "WHERE u.username_key = %s)"
        )
        params.append(rules.username_key(call.username))
    if call.user_id is not None:
        where.append(
            "c.seq = (SELECT coalesce(s.seq, u.seq) FROM contacts u LEFT JOIN contacts s ON s.id = u.merged_into "
            "WHERE u.user_id = %s)"
        )
        params.append(call.user_id)
    params.append(call.limit + 1)
    query = f"SELECT {_SUMMARY_COLUMNS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.seq LIMIT %s"
    return query, params


# ---------- writing rows ----------


async def _fetchone(
    conn: Conn, query: LiteralString, params: Sequence[object] | Mapping[str, object] = ()
) -> Row | None:
    cursor = await conn.execute(query, params)
    return await cursor.fetchone()


async def _fetchall(
    conn: Conn, query: LiteralString, params: Sequence[object] | Mapping[str, object] = ()
) -> list[Row]:
    cursor = await conn.execute(query, params)
    return await cursor.fetchall()


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


async def _add_contact(conn: Conn, new: rules.NewContact, now: str) -> tuple[int, str]:
    contact_id = rules.new_id()
    row = await _fetchone(conn, _INSERT_CONTACT, (contact_id, *_contact_values(new), now, now))
    assert row is not None
    return int(row[0]), contact_id


def _defer_contact(
    touched: Touched, new: rules.NewContact, now: str, methods: Sequence[tuple[Literal["email", "phone"], str | None]]
) -> str:
    """Insert a contact and its primary methods (the values given) with the write's last round trip; its id."""
    contact_id = rules.new_id()
    touched.defer(_INSERT_CONTACT, (contact_id, *_contact_values(new), now, now))
    added = [_bare_method(now, kind, value, primary=True) for kind, value in methods if value is not None]
    for method in added:
        touched.defer(*_insert_method(contact_id, method))
    touched.created(contact_id, effects.created(contact_id, new, now, added))
    return contact_id


async def _add_method(
    conn: Conn, seq: int, now: str, kind: Literal["email", "phone"], value: str, *, primary: bool
) -> None:
    """Add an email or phone method given by its normalised value alone (as upsert's and import's fields give it)."""
    await conn.execute(*_insert_method(seq, _bare_method(now, kind, value, primary=primary)))


def _bare_method(now: str, kind: Literal["email", "phone"], value: str, *, primary: bool) -> effects.Method:
    """An email or phone method given by its normalised value alone (as upsert's and import's fields give it)."""
    return effects.method(
        id=rules.new_id(), channel=kind, type_=kind, raw_value=value, value=value, primary=primary, created_at=now
    )


def _insert_method(contact: int | str, m: effects.Method) -> Statement:
    """A new method's insert (`effects.method`), for contact `contact`: its seq, or the id of a contact inserted
    earlier in the same script (whose seq is not known yet)."""
    row = (
        m["id"], m["channel"], m["type"], effects.kind_of(m), m["raw_value"], m["value"],
        m["primary"], m["verified_at"], m["verification_source"], m["verification_method"], m["created_at"],
    )  # fmt: skip
    return (_INSERT_METHOD if isinstance(contact, int) else _INSERT_METHOD_OF_NEW), (row[0], contact, *row[1:])


async def _lock(conn: Conn, *keys: tuple[str, str | None]) -> None:
    """Take the advisory locks on the normalised keys a call matches on (None values: no lock)."""
    ids = [lock_key(namespace, value) for namespace, value in keys if value is not None]
    if ids:
        await conn.execute(_LOCK_KEYS, (ids,))


def _lock_array(*keys: tuple[str, str | None]) -> str:
    """The advisory lock keys of `keys` (those with a value) as a bigint array's literal (integers only), which the
    driver quotes as one string, three times faster than it binds a list."""
    return "{" + ",".join(str(lock_key(namespace, value)) for namespace, value in keys if value is not None) + "}"


def _lock_statement(*keys: tuple[str, str | None]) -> Statement:
    """`_lock` as a statement of a `_script`."""
    return _LOCK_KEYS, (_lock_array(*keys),)


async def _abandon(conn: Conn) -> None:
    """Roll back the transaction a failed scripted call left open (a broken connection is the pool's to drop)."""
    if conn.broken or conn.info.transaction_status == pq.TransactionStatus.IDLE:
        return
    with anyio.CancelScope(shield=True), contextlib.suppress(psycopg.Error):
        await conn.execute("ROLLBACK")


async def _script(conn: Conn, *statements: Statement) -> list[list[Row]]:
    """Several statements in one round trip, run in order; the rows each returned ([] for a statement returning
    none). On an idle connection the script opens the call's transaction: BEGIN goes first (see `_run`).

    Each statement's parameters are bound client-side by psycopg (`AsyncClientCursor.mogrify`, the driver's own
    quoting) and the script is sent with the simple query protocol, the one that takes several statements at once.
    Nothing is prepared, so PgBouncer in transaction mode is fine. Under READ COMMITTED each statement of a script
    still takes its own snapshot, so a statement after an advisory lock sees what the lock's last holder committed.
    An error stops the script there and is raised, as for one statement."""
    cursor = psycopg.AsyncClientCursor(conn)
    # (A statement without parameters or `%` is sent as it is: BEGIN, COMMIT and the savepoints, on every write.)
    parts = [
        query if not params and isinstance(query, str) and "%" not in query else cursor.mogrify(query, params)
        for query, params in statements
    ]
    opens = conn.info.transaction_status == pq.TransactionStatus.IDLE
    await cursor.execute("; ".join(["BEGIN", *parts] if opens else parts).encode())
    answers: list[list[Row]] = []
    while True:
        result = cursor.pgresult
        answers.append(
            await cursor.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []
        )
        if not cursor.nextset():
            break
    return answers[1:] if opens else answers


async def _require_contact(
    conn: Conn,
    contact_id: str,
    *,
    field: str = "contact_id",
    hint: str = rules.GET_HINT,
    touched: Touched | None = None,
    also: Sequence[Statement] = (),
) -> tuple[int, str, list[list[Row]]]:
    """The contact's row number and canonical id, its row locked for this transaction; else `NotFound`. A merged
    contact's id leads to its survivor (whose row is the one locked). The first lock is a `_script` (so it can open
    a scripted write's transaction); with `touched`, the contact is read whole in the same round trip, once locked
    (`Touched.read`), and so are the statements `also`, whose answers come third."""
    canonical = rules.canonical_id(contact_id)
    if canonical is None:
        raise rules.contact_not_found(contact_id, field=field, hint=hint)
    whole: list[Statement] = [(CONTACT_BY_ID, (canonical,))] if touched is not None else []
    rows, *read = await _script(conn, (_LOCK_BY_ID, (canonical,)), *whole, *also)
    if not rows:
        raise rules.contact_not_found(contact_id, field=field, hint=hint)
    if touched is not None:
        touched.read(read.pop(0))
    row = rows[0]
    if row[1] is not None:
        survivor = await _fetchone(conn, _LOCK_BY_ID, (str(row[1]),))
        if survivor is not None:  # else the survivor is gone and the stub answers for itself, as on SQLite
            return int(survivor[0]), str(row[1]), read
    return int(row[0]), canonical, read


async def _whole(conn: Conn, seq: int) -> StoredFields | None:
    row = await _fetchone(conn, _CONTACT_BY_SEQ, (seq,))
    return _fields(row) if row is not None else None


class Touched:
    """The contacts one write changes, each read whole before its first change (None: the write creates it), and
    what changed: the difference from each contact's after-state, derived from what the write sends
    (`store/effects.py`, `became`) or, where the write derives none, read again at the end of the transaction."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._before: dict[int | str, StoredFields | None] = {}
        self._after: dict[int | str, StoredFields | None] = {}
        self._read: dict[int, StoredFields] = {}
        self.deferred: list[Statement] = []

    def defer(
        self, query: LiteralString | bytes | sql.Composed, params: Sequence[object] | Mapping[str, object]
    ) -> None:
        """A last write whose answer the call does not need: sent with the round trip that ends the write (errors
        surface there, as the statement's own would)."""
        self.deferred.append((query, params))

    def read(self, rows: Sequence[Row]) -> None:
        """Contacts this write read whole (`WHOLE_CONTACT` rows) once their rows were locked and before changing
        anything: `whole` and `before` take them from here instead of reading them again (a round trip)."""
        for row in rows:
            self._read[int(row[0])] = _fields(row)

    async def whole(self, seq: int) -> StoredFields | None:
        """Contact `seq` as this write found it (its row locked by then), read if it was not read yet."""
        if seq not in self._read:
            found = await _whole(self._conn, seq)
            if found is None:
                return None
            self._read[seq] = found
        return self._read[seq]

    async def before(self, seq: int) -> StoredFields | None:
        """Await before the write first changes (or deletes) contact `seq`; the contact as it was."""
        if seq not in self._before:
            self._before[seq] = await self.whole(seq)
        return self._before[seq]

    def created(self, key: int | str, after: StoredFields | None = None) -> None:
        """Call when the write has inserted a contact: `key` its seq, or its id when its after-state is given."""
        self._before.setdefault(key, None)
        if after is not None:
            self._after[key] = after

    def became(self, key: int, after: StoredFields | None) -> None:
        """Contact `key` (its `before` taken) as the write leaves it (None: deleted), derived from what it sends."""
        self._after[key] = after

    def derived(self) -> list[FieldChange] | None:
        """What changed, when every contact's after-state is derived (no read needed); else None."""
        if any(key not in self._after for key in self._before):
            return None
        return self._report(self._after)

    async def changes(self, *, then: Statement | None = None) -> list[FieldChange]:
        """What changed; the deferred writes sent, and every contact whose after-state is not derived read again,
        in one round trip, `then` (a COMMIT, say) sent with them."""
        pending = [key for key in self._before if key not in self._after]
        reads: list[Statement] = [(_CONTACT_BY_SEQ, (key,)) for key in pending]
        if reads or self.deferred or then is not None:
            answers = await _script(self._conn, *self.deferred, *reads, *([then] if then is not None else []))
            answers = answers[len(self.deferred) :]
            for key, rows in zip(pending, answers, strict=False):  # (then's answer last)
                self._after[key] = _fields(rows[0]) if rows else None
        return self._report(self._after)

    def _report(self, after: Mapping[int | str, StoredFields | None]) -> list[FieldChange]:
        several = len(self._before) > 1
        changes: list[FieldChange] = []
        for key, before in self._before.items():
            now = after[key]
            whose = (now or before or {}).get("id") if several else None
            changes += rules.field_changes(before, now, contact_id=whose)
        return changes


class _CommitFailed(Exception):
    """The connection broke while a write's COMMIT was on its way: whether it was saved is unknown."""


# ---------- the backend ----------


class PostgresBackend:
    """Contacts in a PostgreSQL database; see the module docstring for locks, retries and failures."""

    def __init__(self, settings: Settings) -> None:
        # The pool warns at each failed reconnection attempt, a few a second at times while the database is down;
        # the driver at each call cancelled mid-statement (a client gone), whose connection it then closes.
        rate_limit(_POOL_LOGGER, _DRIVER_LOGGER)
        self._where = display_url(settings.db)
        self._password = database_password_forms(settings.db)
        self._pool_size = settings.db_pool_size
        self._pool = psycopg_pool.AsyncConnectionPool(
            settings.db,
            kwargs={
                "autocommit": True,  # reads are one statement; writes open their transaction explicitly
                "prepare_threshold": None,
                "connect_timeout": _connect_timeout(settings),
            },
            min_size=min(_MIN_POOL, settings.db_pool_size),
            max_size=settings.db_pool_size,
            timeout=settings.connect_timeout_s,
            reconnect_timeout=_RECONNECT_WINDOW_S,
            open=False,
            name="contact-mcp",
        )
        self._opened = False
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._opened:
            await self._pool.close()

    async def probe(self) -> str:
        async def probe(conn: Conn) -> str:
            row = await _fetchone(conn, "SELECT current_setting('server_version'), (SELECT count(*) FROM contacts)")
            assert row is not None
            return (
                f"PostgreSQL {row[0]} at {self._where}: {row[1]} contact(s), "
                f"pool of up to {self._pool_size} connection(s)"
            )

        return await self._run(probe, write=False)

    async def ready(self) -> None:
        """One cheap read: an unreachable database is the `provider_unavailable` every call would give."""

        async def ready(conn: Conn) -> None:
            await conn.execute("SELECT 1 FROM contacts LIMIT 1")

        await self._run(ready, write=False)

    # ---------- one call, one transaction, reruns for lost races ----------

    async def _write(
        self, work: Callable[[Conn, Touched], Awaitable[_W]], *, dry_run: bool, scripted: bool = False
    ) -> _W:
        """Every write tool's transaction: `work` says which contacts it touches (`Touched`), its result is
        given what changed, the call's history entry is appended (`history.InTransaction`), and a dry run is rolled
        back instead of committed (so it fails as the real call would, and writes nothing). `scripted`: see `_run`.

        When `work` derived every touched contact's after-state (`Touched.became`), what changed is known before
        its deferred writes are sent: they, the history entry and the COMMIT (a dry run's ROLLBACK) go in one round
        trip. Otherwise the contacts are read back with the deferred writes, and the entry follows with the COMMIT."""
        pending = history.to_record(dry_run=dry_run)
        refused: list[str | None] = []

        async def write(conn: Conn) -> _W:
            touched = Touched(conn)
            result = await work(conn, touched)
            commits = scripted and not dry_run  # a scripted write ends in its last round trip
            end: Literal["COMMIT", "ROLLBACK"] | None = ("COMMIT" if commits else "ROLLBACK") if scripted else None
            derived = touched.derived()
            if derived is not None:  # the changes are known: the writes, the history entry and the end in one trip
                result = rules.reported(result, derived, dry_run=dry_run)
                entry = pending.entry(result.structured()) if pending is not None else None
                refused[:] = [await _finish(conn, touched.deferred, entry, end=end)]
                return result
            if pending is None and commits:
                try:  # what changed is read back and committed in one round trip
                    changes = await touched.changes(then=("COMMIT", ()))
                except psycopg.OperationalError as exc:
                    if conn.broken:
                        raise _CommitFailed from exc
                    raise
                return rules.reported(result, changes, dry_run=dry_run)
            result = rules.reported(result, await touched.changes(), dry_run=dry_run)
            if pending is not None:  # its entry needs the changes: appended with the COMMIT, once they are read
                refused[:] = [
                    await _finish(conn, [], pending.entry(result.structured()), end="COMMIT" if commits else None)
                ]
            return result

        result = await self._run(write, write=True, dry_run=dry_run, scripted=scripted)
        if pending is not None and refused:
            pending.done(refused[0])
        return result

    async def _run(
        self, work: Callable[[Conn], Awaitable[_T]], *, write: bool, dry_run: bool = False, scripted: bool = False
    ) -> _T:
        """Run `work` on a pooled connection, inside one transaction when it writes (rolled back at its end for a
        `dry_run`); rerun it when it lost a race or its connection was found broken before committing.
        `scripted` (writes): `work`'s first statements are a `_script`, which opens the transaction itself, so
        BEGIN costs no round trip of its own."""
        if write and not dry_run:
            dry_run_guard.refuse("a committed write to the contact store")
        try:
            # The first attempt runs without stamina's bookkeeping (a few % of a replica's CPU on every call); one
            # that must be rerun enters the retry loop as its first failed attempt, so the schedule is unchanged.
            return await self._once(work, write=write, dry_run=dry_run, scripted=scripted)
        except (*_RACES, _BrokenConnection) as exc:
            failures: list[Exception] = [exc]
        reconnected = isinstance(failures[0], _BrokenConnection)
        try:
            async for attempt in stamina.retry_context(
                on=_retry_on, attempts=RETRY_ATTEMPTS, timeout=30.0, wait_initial=0.005, wait_max=0.25, wait_jitter=0.01
            ):
                with attempt:
                    if failures:
                        raise failures.pop()
                    try:
                        return await self._once(work, write=write, dry_run=dry_run, scripted=scripted)
                    except _BrokenConnection as exc:
                        if reconnected:
                            raise _unreachable(self._line(exc.__cause__)) from exc.__cause__
                        reconnected = True
                        raise
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected) as exc:
            raise ProviderUnavailable(
                "the contact database stayed too contended to finish the call",
                hint="Many writers are changing the same contacts; retry in a moment",
                retry_after_s=1.0,
            ) from exc
        raise AssertionError("unreachable: stamina returns or raises")  # pragma: no cover

    async def _once(
        self, work: Callable[[Conn], Awaitable[_T]], *, write: bool, dry_run: bool = False, scripted: bool = False
    ) -> _T:
        if not self._opened:
            self._opened = True
            await self._pool.open(wait=False)
        try:
            conn = await self._pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise _unreachable(f"no connection within {self._pool.timeout:g} s") from exc
        committing = False
        try:
            if not write:
                return await work(conn)
            if scripted:
                try:
                    result = await work(conn)
                except BaseException:
                    await _abandon(conn)
                    raise
                if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    if dry_run:
                        await conn.execute("ROLLBACK")
                    else:
                        committing = True
                        await conn.execute("COMMIT")
                return result
            async with conn.transaction(force_rollback=dry_run):
                result = await work(conn)
                committing = not dry_run  # leaving the block commits (a dry run's rolls back)
            return result
        except _CommitFailed as exc:
            await self._pool.check()
            raise _commit_unknown() from exc.__cause__
        except _RACES:
            raise  # (deadlock and serialization failures are OperationalErrors too) rerun by `_run`
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise _failed_call(exc, self._line(exc)) from exc
            # The server restarted or the network dropped: the pool's idle connections are likely broken too.
            await self._pool.check()
            if committing:
                raise _commit_unknown() from exc
            raise _BrokenConnection from exc
        except _OPERATOR_ERRORS as exc:
            raise ProviderUnavailable(
                f"the contact database refused the write ({self._line(exc)})",
                hint="The operator must give the server's role write access to CONTACT_MCP_DB; reads still work",
                retryable=False,
            ) from exc
        finally:
            # Shielded: in a cancelled scope every await re-raises, and an unreturned connection is lost to the pool.
            with anyio.CancelScope(shield=True):
                await self._pool.putconn(conn)

    def _line(self, exc: BaseException | None) -> str:
        return _one_line(str(exc), self._password) if exc is not None else "connection lost"

    # ---------- attach_contact (Feather) ----------

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        async def work(conn: Conn, touched: Touched) -> AttachedContact:
            now = rules.now()
            seq, live, _ = await _require_contact(
                conn, call.end_user_id, field="end_user_id", hint=rules.ATTACH_HINT, touched=touched
            )
            attach = dataclasses.replace(call, end_user_id=live)
            kind = rules.kind(call.channel, call.type)
            whole = await touched.before(seq)
            assert whole is not None  # its row is locked
            found = effects.method_on(whole, call.channel, call.normalized_value)
            if found is None:
                uid = rules.new_id()
                new = effects.method(
                    id=uid, channel=call.channel, type_=call.type, raw_value=call.raw_value,
                    value=call.normalized_value, primary=effects.primary_of(whole, kind) is None, created_at=now,
                    verified_at=now, verification_method=rules.ATTACH_VERIFICATION_METHOD,
                )  # fmt: skip
                touched.defer(*_insert_method(seq, new))
                touched.defer(_TOUCH, (now, seq))
                touched.became(seq, effects.touched(effects.with_method(whole, new), now))
                return rules.attached_contact(
                    attach, uid=uid, type_=call.type, verification_method=rules.ATTACH_VERIFICATION_METHOD, created=True
                )
            method = found["verification_method"]
            if found["verified_at"] is None:
                # Attaching says the value is verified: an unverified method (say, from upsert) is promoted.
                method = rules.ATTACH_VERIFICATION_METHOD
                touched.defer(_VERIFY_ATTACHED, (now, method, seq, call.channel, call.normalized_value))
                touched.defer(_TOUCH, (now, seq))
                after = effects.method_verified(
                    whole, call.channel, call.normalized_value, verified_at=now, verification_method=method
                )
                touched.became(seq, effects.touched(after, now))
            else:
                touched.became(seq, whole)
            return rules.attached_contact(
                attach, uid=found["id"], type_=found["type"], verification_method=method, created=False
            )

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- attach_identity (Blooio) ----------

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        async def work(conn: Conn, touched: Touched) -> AttachedIdentity:
            now = rules.now()
            seq, contact_id, (found,) = await _require_contact(
                conn, call.contact_id, touched=touched, also=[(_IDENTITY_BY_KEY, rules.identity_key(call))]
            )
            if not found:
                whole = await touched.before(seq)
                assert whole is not None  # its row is locked
                new = effects.identity(
                    id=rules.new_id(), channel_type=call.channel_type, identifier=call.identifier,
                    channel_id=call.channel_id, created_at=now,
                )  # fmt: skip
                touched.defer(
                    _INSERT_IDENTITY, (new["id"], seq, call.channel_type, call.identifier, call.channel_id, now)
                )
                touched.defer(_TOUCH, (now, seq))
                touched.became(seq, effects.touched(effects.with_identity(whole, new), now))
                return rules.attached_identity(
                    call, contact_id=contact_id, identity_id=new["id"], created_at=now, created=True
                )
            identity_id, created_at, owner_seq, owner_id = found[0]
            if owner_seq != seq:
                raise rules.identity_taken(call.identifier, owner_id)
            return rules.attached_identity(
                call, contact_id=contact_id, identity_id=identity_id, created_at=created_at, created=False
            )

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- set_verification (TetherAI) ----------

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        async def work(conn: Conn, touched: Touched) -> VerificationResult:
            seq, contact_id, _ = await _require_contact(conn, call.contact_id, touched=touched)
            found = await touched.whole(seq)
            assert found is not None  # its row is locked
            if not any(m["value"] == call.value and effects.kind_of(m) == call.type for m in found["methods"]):
                raise rules.value_not_found(call, effects.values_of_kind(found, call.type))
            state = rules.verification_state(call)
            whole = await touched.before(seq)
            assert whole is not None
            now = rules.now()
            verified_at, source, method = state
            params = {"at": verified_at, "source": source, "method": method, "seq": seq}
            # Every method carrying the value (the same number on sms and whatsapp, say) changes together.
            touched.defer(_SET_VERIFICATION_AND_TOUCH, {**params, "kind": call.type, "value": call.value, "now": now})
            after = effects.verification_set(whole, call.type, call.value, state)
            touched.became(seq, effects.touched(after, now) if after != whole else whole)
            return rules.verification_result(call, contact_id)

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- upsert_contact (Featurebase) ----------

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        async def work(conn: Conn, touched: Touched) -> UpsertResult:
            target, applied = await _upsert_target(conn, call, touched)
            now = rules.now()
            if target is None:
                contact_id = _defer_contact(
                    touched, rules.contact_from_upsert(call), now, (("email", call.email), ("phone", call.phone))
                )
                return rules.upsert_created(call, contact_id)
            changes = rules.upsert_changes(target, applied)
            if not changes.changed:
                return rules.upsert_matched(applied, target, changes)
            seq = target.key
            after = await touched.before(seq)
            assert after is not None  # its row is locked
            primaries: tuple[tuple[Literal["email", "phone"], str | None], ...] = (
                ("email", changes.email),
                ("phone", changes.phone),
            )
            for kind, value in primaries:
                if value is None:
                    continue
                new = _bare_method(now, kind, value, primary=True)
                after, demoted, promoted = effects.made_primary(after, kind, value, new)
                if demoted is not None:
                    touched.defer(_SET_PRIMARY_ON, (False, seq, demoted["channel"], demoted["value"]))
                if promoted is not None:
                    touched.defer(_SET_PRIMARY_ON, (True, seq, promoted["channel"], promoted["value"]))
                else:
                    touched.defer(*_insert_method(seq, new))
            columns = {**changes.columns, "updated_at": now}
            touched.defer(*_update_statement(seq, columns))
            touched.became(seq, effects.updated(after, columns))
            return rules.upsert_matched(applied, target, changes)

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- create_contact (Protocol) ----------

    async def create_contact(self, call: CreateContactInput) -> CreatedContact:
        async def work(conn: Conn, touched: Touched) -> CreatedContact:
            now = rules.now()
            new = rules.contact_from_create(call)
            _, owner, holders = await _script(
                conn,
                _lock_statement(("username", new.username_key)),
                (_ID_BY_USERNAME, (new.username_key,)),
                (PHONE_HOLDERS, (call.phone_number, rules.SHARED_PHONE_LIMIT)),
            )
            if owner:
                raise rules.username_taken(call.username, owner[0][0])
            shared_with = [str(row[0]) for row in holders]
            contact_id = _defer_contact(touched, new, now, (("phone", call.phone_number),))
            return rules.created_contact(call, contact_id=contact_id, created_at=now, shared_with=shared_with)

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- delete_contact, detach_identity, detach_contact (erasure) ----------

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        canonical = rules.canonical_id(call.contact_id)
        if canonical is None:
            raise rules.contact_not_found(call.contact_id, hint=rules.DELETE_HINT)

        async def work(conn: Conn, touched: Touched) -> DeletedContact:
            row = await _fetchone(conn, _ERASE_TARGET, (canonical,))
            if row is None:
                raise rules.contact_not_found(call.contact_id, hint=rules.DELETE_HINT)
            doomed: list[int] = [int(row[0])]
            merged: list[str] = []
            frontier = [canonical]
            while frontier:  # contacts merged into this one are the same person (and chains of them)
                for merged_seq, merged_id in await _fetchall(conn, _MERGED_INTO, (frontier.pop(),)):
                    doomed.append(int(merged_seq))
                    merged.append(str(merged_id))
                    frontier.append(str(merged_id))
            for key in doomed:
                await touched.before(key)
                await conn.execute(_DELETE_METHODS, (key,))
                await conn.execute(_DELETE_IDENTITIES, (key,))
                await conn.execute(_DELETE_CONTACT, (key,))
                touched.became(key, None)
            # In the same transaction: the history keeps its rows, not the values.
            for erased in (canonical, *merged):
                await scrub_history_rows(conn, erased, rules.PROVIDER)
            return rules.deleted_contact(canonical, merged=merged, merged_into=_text(row[1]))

        return await self._write(work, dry_run=call.dry_run)

    async def detach_identity(self, call: DetachIdentityInput) -> DetachedIdentity:
        async def work(conn: Conn, touched: Touched) -> DetachedIdentity:
            seq, contact_id, _ = await _require_contact(conn, call.contact_id, touched=touched)
            whole = await touched.whole(seq)
            assert whole is not None  # its row is locked
            held = [
                rules.IdentityRow(n, i["id"], i["identifier"], i["channel_type"], i["channel_id"])
                for n, i in enumerate(whole["identities"])
            ]
            rows = rules.identities_to_detach(call, held)
            await touched.before(seq)
            now = rules.now()
            for row in rows:
                touched.defer(_DELETE_IDENTITY_OF, (seq, row.id))
            touched.defer(_TOUCH, (now, seq))
            touched.became(seq, effects.touched(effects.without_identities(whole, {row.id for row in rows}), now))
            return rules.detached_identity(call, contact_id, rows)

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    async def detach_contact(self, call: DetachContactInput) -> DetachedContact:
        async def work(conn: Conn, touched: Touched) -> DetachedContact:
            seq, contact_id, _ = await _require_contact(conn, call.contact_id, touched=touched)
            whole = await touched.whole(seq)
            assert whole is not None  # its row is locked
            found = effects.method_on(whole, call.channel, call.normalized_value)
            if found is None:
                on_channel = [m["value"] for m in whole["methods"] if m["channel"] == call.channel]
                raise rules.method_not_found(call, on_channel[: rules.VALUES_IN_HINT])
            await touched.before(seq)
            now = rules.now()
            after, heir = effects.without_method(whole, call.channel, call.normalized_value)
            # The delete goes first: one primary per kind.
            touched.defer(_DELETE_METHOD_ON, (seq, call.channel, call.normalized_value))
            if heir is not None:
                touched.defer(_SET_PRIMARY_ON, (True, seq, heir["channel"], heir["value"]))
            touched.defer(_TOUCH, (now, seq))
            touched.became(seq, effects.touched(after, now))
            return rules.detached_contact(call, contact_id, found["id"], heir["value"] if heir is not None else None)

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- get_contact, find_contacts ----------

    async def get_contact(self, contact_id: str) -> Contact:
        canonical = rules.canonical_id(contact_id)
        if canonical is None:
            raise rules.contact_not_found(contact_id)

        async def work(conn: Conn) -> Row | None:
            return await _fetchone(conn, CONTACT_BY_ID, (canonical,))

        row = await self._run(work, write=False)
        if row is None:
            raise rules.contact_not_found(contact_id)
        return contact_from(_fields(row))

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        after = rules.decode_cursor(call.cursor) if call.cursor is not None else 0
        query, params = find_query(call, after)

        async def work(conn: Conn) -> list[Row]:
            return await _fetchall(conn, query, params)

        rows = await self._run(work, write=False)
        page = rows[: call.limit]
        return ContactPage(
            provider=rules.PROVIDER,
            contacts=[
                ContactSummary(
                    id=str(r[1]),
                    name=_text(r[2]),
                    username=_text(r[3]),
                    user_id=_text(r[4]),
                    email=_text(r[5]),
                    phone=_text(r[6]),
                )
                for r in page
            ],
            next_cursor=rules.encode_cursor(int(page[-1][0])) if len(rows) > call.limit else None,
        )

    # ---------- find_duplicates, merge_contacts ----------

    async def find_duplicates(self, call: FindDuplicatesInput) -> DuplicatePage:
        if call.cursor is not None:
            rules.decode_cursor(call.cursor)  # a bad cursor is refused before the read

        async def work(conn: Conn) -> tuple[list[Row], list[Row]]:
            return await _fetchall(conn, _DUPLICATE_CONTACTS), await _fetchall(conn, _DUPLICATE_VALUES)

        # The driver's rows are the shapes `duplicates` reads (text, bigint, decoded jsonb).
        contacts, values = await self._run(work, write=False)
        rows = cast(tuple[list[duplicates.ContactRow], list[duplicates.ValueRow]], (contacts, values))
        return await anyio.to_thread.run_sync(duplicates.duplicate_page, *rows, call)

    async def merge_contacts(self, call: MergeContactsInput) -> MergeResult:
        survivor_id, duplicate_ids = merging.check_ids(call.survivor_id, call.duplicate_ids)
        parties = [survivor_id, *duplicate_ids]

        async def work(conn: Conn, touched: Touched) -> MergeResult:
            # The keys first (read with the parties whole), as every writer matching on them takes them; then, in one
            # round trip, their locks, the parties' rows, and the parties whole and their keys again; again while a
            # write slipped a new key onto a party in between (a deadlock this could cause is rerun). The writes then
            # ride with the COMMIT (`Touched`).
            wholes, found = await _script(conn, (_PARTIES_WHOLE, (parties,)), (_MERGED_KEYS, (parties,)))
            keys = _merge_keys(wholes, found)
            locked: set[tuple[str, str]] = set()
            while True:
                _, _, wholes, found = await _script(
                    conn,
                    _lock_statement(*(keys - locked)),
                    (_LOCK_PARTIES, (parties,)),
                    (_PARTIES_WHOLE, (parties,)),
                    (_MERGED_KEYS, (parties,)),
                )
                locked |= keys
                keys = _merge_keys(wholes, found)
                if keys <= locked:
                    break
            touched.read(wholes)
            seqs = {str(row[1]): int(row[0]) for row in wholes}
            read: dict[str, tuple[int, ContactRecord | None]] = dict.fromkeys(parties, (0, None))
            for party, seq in seqs.items():
                whole = await touched.whole(seq)
                read[party] = (seq, record_from(whole) if whole is not None else None)
            survivor_seq, before = read[survivor_id]
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
                seq, duplicate = read[duplicate_id]
                if duplicate is None:
                    raise merging.duplicate_not_found(duplicate_id)
                if duplicate.merged_into == survivor_id:
                    continue  # merged before: merging again changes nothing
                if duplicate.merged_into is not None:
                    raise merging.duplicate_merged(duplicate_id, duplicate.merged_into)
                after, plan, found_conflicts = merging.merge_into(after, duplicate)
                await touched.before(survivor_seq)
                gone = await touched.before(seq)
                assert gone is not None  # read above
                touched.became(seq, effects.merged_away(gone, survivor_id, plan.released, now))
                for column in plan.released:
                    touched.defer(_RELEASE[column], (seq,))
                for fold in plan.folded:
                    if fold.verify is not None:
                        touched.defer(_VERIFY_METHOD, (*fold.verify, survivor_seq, fold.into))
                    touched.defer(_DROP_METHOD, (seq, fold.method_id))
                if plan.moved:
                    primaries = [method_id for method_id, primary in plan.moved if primary]
                    moved = [method_id for method_id, _ in plan.moved]
                    touched.defer(_MOVE_METHODS, (survivor_seq, primaries, seq, moved))
                for identity_id in plan.identities:
                    touched.defer(_MOVE_IDENTITY, (survivor_seq, seq, identity_id))
                touched.defer(_MERGED, {"survivor": survivor_id, "now": now, "seq": seq, "duplicate": duplicate_id})
                merged.append(duplicate_id)
                moved_methods += len(plan.moved)
                moved_identities += len(plan.identities)
                conflicts += found_conflicts
            columns = merging.survivor_columns(before, after)
            if merged:
                touched.defer(*_update_statement(survivor_seq, {**columns, "updated_at": now}))
            if len(merged) == 1:
                # (From several duplicates, the moved methods and identities read back in their rows' order, which
                # interleaves the duplicates': the survivor is read back then.)
                touched.became(survivor_seq, {**effects.from_record(after), "updated_at": now})
            return merging.merge_result(
                before,
                after,
                merged,
                moved_methods=moved_methods,
                moved_identities=moved_identities,
                conflicts=conflicts,
            )

        return await self._write(work, dry_run=call.dry_run, scripted=True)

    # ---------- export and restore ----------

    async def export_page(self, *, after: str | None, limit: int) -> RecordPage:
        start = rules.decode_cursor(after) if after is not None else 0

        async def work(conn: Conn) -> list[Row]:
            return await _fetchall(conn, _EXPORT_PAGE, (start, limit + 1))

        rows = await self._run(work, write=False)
        page = rows[:limit]
        return RecordPage(
            records=[record_from(_fields(row)) for row in page],
            after=rules.encode_cursor(int(page[-1][0])) if len(rows) > limit else None,
        )

    async def import_contact(self, call: rules.ImportContactInput) -> Outcome:
        async def work(conn: Conn) -> Outcome:
            return await _import(conn, call)

        return await self._run(work, write=True)

    async def import_batch(
        self, items: Sequence[ContactRecord | rules.ImportContactInput]
    ) -> list[Outcome | rules.RowError]:
        async def work(conn: Conn) -> list[Outcome | rules.RowError]:
            calls = [item for item in items if isinstance(item, rules.ImportContactInput)]
            keys = rules.batch_keys(calls) if len(calls) == len(items) else None
            if keys is not None and await _create_all(conn, calls, keys):
                return ["created"] * len(calls)
            answers: list[Outcome | rules.RowError] = []
            for item in items:
                try:
                    async with conn.transaction():  # a savepoint: a refused row is rolled back alone
                        if isinstance(item, ContactRecord):
                            answers.append(await _restore(conn, check_record(item)))
                        else:
                            answers.append(await _import(conn, item))
                except rules.ROW_ERRORS as exc:
                    answers.append(exc)
            return answers

        return await self._run(work, write=True)

    async def restore_contact(self, record: ContactRecord) -> Outcome:
        checked = check_record(record)

        async def work(conn: Conn) -> Outcome:
            return await _restore(conn, checked)

        return await self._run(work, write=True)

    # ---------- history ----------

    async def add_history(self, entries: Sequence[HistoryEntry]) -> None:
        rows = [history.entry_values(entry) for entry in entries]
        if len(rows) == 1:  # a provider's write: one statement, its own transaction, one round trip
            dry_run_guard.refuse("a committed write to the contact store")

            async def one(conn: Conn) -> None:
                await conn.execute(_INSERT_HISTORY, rows[0])

            await self._run(one, write=False)
            return

        async def work(conn: Conn) -> None:
            async with conn.cursor() as cursor:
                await cursor.executemany(_INSERT_HISTORY, rows)

        await self._run(work, write=True)

    async def history_page(self, query: history.HistoryQuery) -> history.HistoryPage:
        statement, params = history.select(query, "%s")

        async def work(conn: Conn) -> list[Row]:
            return await _fetchall(conn, statement, params)

        return history.page_from(await self._run(work, write=False), query)

    async def prune_history(self, before: str) -> int:
        async def work(conn: Conn) -> int:
            cursor = await conn.execute(_PRUNE_HISTORY, (before,))
            return cursor.rowcount

        return await self._run(work, write=True)

    async def scrub_history(self, contact_id: str, provider: str | None = None) -> int:
        async def work(conn: Conn) -> int:
            return await scrub_history_rows(conn, contact_id, provider)

        return await self._run(work, write=True)


async def _finish(
    conn: Conn,
    statements: Sequence[Statement],
    entry: HistoryEntry | None,
    *,
    end: Literal["COMMIT", "ROLLBACK"] | None,
) -> str | None:
    """A write's last statements, its history entry (when it records one) and its end (COMMIT, or ROLLBACK for a
    dry run; None: the caller's), in one round trip. The entry goes in under a savepoint: a row the database refuses
    is left out (the type of its failure returned) and the write goes on, as it would without a history. A
    connection broken on the way is `_CommitFailed` when the COMMIT was in it."""
    saved: list[Statement] = (
        [("SAVEPOINT history", ()), (_INSERT_HISTORY, history.entry_values(entry)), ("RELEASE SAVEPOINT history", ())]
        if entry is not None
        else []
    )
    ends: list[Statement] = [(end, ())] if end is not None else []
    if not (statements or saved or ends):
        return None
    try:
        await _script(conn, *statements, *saved, *ends)
    except psycopg.Error as exc:
        if conn.broken and end == "COMMIT":
            raise _CommitFailed from exc
        if conn.broken or not saved or conn.info.transaction_status != pq.TransactionStatus.INERROR:
            raise  # the write's own statements, or the COMMIT, failed
        refused = exc
    else:
        return None
    try:  # the savepoint exists only if the write's statements all ran: else one of them failed, not the entry
        await _script(conn, ("ROLLBACK TO SAVEPOINT history", ()), *ends)
    except pg_errors.InvalidSavepointSpecification:
        raise refused from None
    except psycopg.Error as exc:
        if conn.broken and end == "COMMIT":
            raise _CommitFailed from exc
        raise
    return type(refused).__name__


async def scrub_history_rows(conn: Conn, contact_id: str, provider: str | None = None) -> int:
    """Drop every value from the history rows of a contact (of `provider`, or of any), in the caller's transaction
    (a delete calls it in its own); the rows and their field names stay. Returns the rows scrubbed."""
    rows = await _fetchall(conn, _HISTORY_OF, (contact_id, provider, provider))
    if rows:
        async with conn.cursor() as cursor:
            await cursor.executemany(_SCRUB_HISTORY, [(history.scrubbed(fields), seq) for seq, fields in rows])
    return len(rows)


async def _create_all(conn: Conn, calls: Sequence[rules.ImportContactInput], keys: rules.BatchKeys) -> bool:
    """Create every row's contact at once, if no stored contact holds any of the batch's keys (then every row
    creates its contact: `rules.batch_keys`); else write nothing and say so. The batch's key locks are taken first,
    all in one statement (the locks each row would take, and its further emails), so the answer holds until commit
    and the rows imported one by one afterwards in the same transaction wait for no further lock. Two round trips
    for the whole batch: the locks, then the check and the inserts (one statement)."""
    try:
        news = [rules.contact_from_import(call) for call in calls]
    except rules.ROW_ERRORS:
        return False  # the rows one by one say which
    locks = (
        *(("user_id", user_id) for user_id in keys.user_ids),
        *(("email", email) for email in keys.emails),
        *(("username", key) for key in keys.username_keys),
        *(("phone", phone) for phone in keys.phones),
    )
    await conn.execute(_LOCK_KEYS_BINARY, ([lock_key(namespace, value) for namespace, value in locks],))
    ids = rules.new_ids(len(calls))
    columns: dict[str, list[object]] = {
        "id": list(ids), "user_id": [], "username": [], "username_key": [], "name": [], "display_name": [],
        "locale": [], "profile_picture": [], "companies": [], "custom_fields": [], "roles": [], "subscribed": [],
        "search_text": [],
    }  # fmt: skip
    for new in news:
        for column, value in zip(list(columns)[1:], _contact_values(new), strict=True):
            columns[column].append(None if value is None else str(value).lower() if isinstance(value, bool) else value)
    methods: dict[str, list[object]] = {"contact_id": [], "kind": [], "value": [], "is_primary": []}
    for contact_id, call in zip(ids, calls, strict=True):
        for kind, value, primary in rules.import_methods(call):
            for column, item in zip(methods, (contact_id, kind, value, primary), strict=True):
                methods[column].append(item)
    methods["method_id"] = list(rules.new_ids(len(methods["kind"])))
    row = await _fetchone(
        conn, _INSERT_NEW_CONTACTS, {**batch_keys_held(keys)[1], **columns, **methods, "now": rules.now()}
    )
    return row is not None and row[0] == 0


def batch_keys_held(keys: rules.BatchKeys) -> tuple[LiteralString, dict[str, list[str]]]:
    """The statement (and its parameters) counting the stored rows that hold one of a batch's keys: index probes
    only (tests/store/postgres/test_import_plan.py checks its plan). `_INSERT_NEW_CONTACTS` runs it first."""
    return _BATCH_KEYS_HELD, {
        "user_ids": list(keys.user_ids),
        "usernames": list(keys.username_keys),
        "emails": list(keys.emails),
        "phones": list(keys.matching_phones),
    }


async def _upsert_target(
    conn: Conn, call: UpsertContactInput, touched: Touched | None = None
) -> tuple[rules.StoredContact | None, UpsertContactInput]:
    """Lock the keys and the candidate rows, read them whole, and ask `rules.upsert_target` (upsert, and import rows
    with an email or user id); with the call as it applies (a merged contact's user_id replaced by its
    survivor's). With `touched`, the candidates read whole are handed to it (`Touched.read`)."""
    locks = _lock_array(("user_id", call.user_id), ("email", call.email))
    (rows,) = await _script(conn, (UPSERT_CANDIDATES, (locks, call.user_id, call.email)))
    if touched is not None:
        touched.read(rows)
    by_user_id = by_email = None
    holds = False
    # The contact with the user_id, or its survivor when it was merged (a merged contact's user_id leads there).
    holder = next((row for row in rows if call.user_id is not None and row[2] == call.user_id), None)
    if holder is not None:
        survivor = next((row for row in rows if holder[12] is not None and row[1] == holder[12]), holder)
        by_user_id = _candidate(survivor)
        holds = bool(_emails(survivor, call.email))
    # The oldest contact holding the email as its primary, else the oldest holding it at all (`upsert_candidates`):
    # that contact is among the rows read, so it is the first of them in that order.
    best: tuple[bool, int] | None = None
    for row in rows:
        held = _emails(row, call.email)
        rank = (not any(held), int(row[0]))
        if held and (best is None or rank < best):
            best, by_email = rank, _candidate(row)
    if by_user_id is not None and by_user_id.user_id != call.user_id:
        # The user_id is a merged contact's: it leads to the survivor, whose own user_id stays.
        call = dataclasses.replace(call, user_id=by_user_id.user_id)
    return rules.upsert_target(call, by_user_id=by_user_id, by_email=by_email, user_holds_email=holds), call


def _emails(row: Row, email: str | None) -> list[bool]:
    """Whether each of a `WHOLE_CONTACT` row's email methods with the value is primary (none: it lacks it)."""
    return [bool(m["primary"]) for m in row[15] if m["value"] == email and effects.kind_of(m) == "email"]


def _candidate(row: Row) -> rules.StoredContact:
    """What upsert compares of a contact read whole (`WHOLE_CONTACT`): its columns and its primary email and phone."""
    primaries = {effects.kind_of(m): m["value"] for m in row[15] if m["primary"]}
    return _stored((*row[:12], primaries.get("email"), primaries.get("phone")))


async def _import(conn: Conn, call: rules.ImportContactInput) -> Outcome:
    """One row of new data: match as `rules.import_target` says, then create or merge, in this one transaction."""
    by_keys = by_username = None
    holders: list[rules.StoredContact] = []
    username_key = rules.username_key(call.username)
    await _lock(conn, ("username", username_key), *(("phone", phone) for phone in call.phones))
    if call.emails or call.user_id is not None:
        by_keys, applied = await _upsert_target(conn, rules.import_upsert(call))
        call = dataclasses.replace(call, user_id=applied.user_id)
    else:
        if username_key is not None:
            row = await _fetchone(conn, _UPSERT_BY_USERNAME, (username_key,))
            by_username = _stored(row) if row is not None else None
            if by_username is not None and rules.username_key(by_username.username) != username_key:
                # a merged contact's username: it names the survivor, whose own username stays
                call = dataclasses.replace(call, username=by_username.username)
                username_key = rules.username_key(call.username)
        if by_username is None and call.name is not None:
            for phone in call.phones:
                holders += [_stored(row) for row in await _fetchall(conn, _UPSERT_BY_PHONE, (phone,))]
            holders.sort(key=lambda holder: holder.key)
    merged_names = {h.id: [row[0] for row in await _fetchall(conn, _MERGED_NAMES, (h.id,))] for h in holders}
    target = rules.import_target(
        call, by_keys=by_keys, by_username=by_username, phone_holders=holders, merged_names=merged_names
    )
    owner = await _fetchone(conn, _ID_BY_USERNAME, (username_key,)) if username_key is not None else None
    if owner is not None and target is not None and owner[0] == target.id != owner[1]:
        call = dataclasses.replace(call, username=target.username)  # a stub's: the survivor keeps its own
    now = rules.now()
    if target is None:
        if owner is not None:
            raise rules.username_taken(str(call.username), owner[0])
        seq, _ = await _add_contact(conn, rules.contact_from_import(call), now)
        for kind, value, primary in rules.import_methods(call):
            await _add_method(conn, seq, now, kind, value, primary=primary)
        return "created"
    held = {(str(kind), str(value)) for kind, value in await _fetchall(conn, _HELD_VALUES, (target.key,))}
    changes = rules.import_changes(
        target,
        call,
        held=held,
        username_owner=owner[0] if owner else None,
        merged_names=merged_names.get(target.id, ()),
    )
    if changes.upsert.email is not None:
        await _make_primary(conn, target.key, "email", changes.upsert.email, now)
    if changes.upsert.phone is not None:
        await _make_primary(conn, target.key, "phone", changes.upsert.phone, now)
    for kind, value in changes.more_methods:
        await _add_method(conn, target.key, now, kind, value, primary=False)
    if not changes.changed:
        return "unchanged"
    await _update_contact(conn, target.key, {**changes.upsert.columns, "updated_at": now})
    return "updated"


async def _update_contact(conn: Conn, seq: int, columns: dict[str, object]) -> None:
    await conn.execute(*_update_statement(seq, columns))


def _update_statement(seq: int, columns: dict[str, object]) -> tuple[bytes, tuple[object, ...]]:
    return _update_sql(tuple(columns)), (*columns.values(), seq)


@functools.lru_cache(maxsize=256)
def _update_sql(columns: tuple[str, ...]) -> bytes:
    """The UPDATE of these contact columns, rendered once per set of columns (writes change few sets)."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}::jsonb" if column in _JSON_COLUMNS else "{} = {}").format(
            sql.Identifier(column), sql.Placeholder()
        )
        for column in columns
    )
    return sql.SQL("UPDATE contacts SET {} WHERE seq = {}").format(assignments, sql.Placeholder()).as_bytes(None)


async def _make_primary(conn: Conn, seq: int, kind: Literal["email", "phone"], value: str, now: str) -> None:
    """Make `value` (not the current primary) the contact's primary of `kind`, adding it as a method if new."""
    current = await _fetchone(conn, _PRIMARY_OF_KIND, (seq, kind))
    existing = await _fetchone(conn, _METHOD_OF_KIND, (seq, kind, value, kind))
    if current is not None:
        await conn.execute(_SET_PRIMARY, (False, current[0]))
    if existing is not None:
        await conn.execute(_SET_PRIMARY, (True, existing[0]))
    else:
        await _add_method(conn, seq, now, kind, value, primary=True)


async def _restore(conn: Conn, record: ContactRecord) -> Outcome:
    row = await _fetchone(conn, _SEQ_BY_ID_FOR_UPDATE, (record.id,))
    seq: int | None = int(row[0]) if row is not None else None
    if seq is not None:
        current = await _fetchone(conn, _CONTACT_BY_SEQ, (seq,))
        if current is not None and record_from(_fields(current)) == record:
            return "unchanged"
    if record.user_id is not None:
        owner = await _fetchone(conn, _ID_BY_USER_ID, (record.user_id,))
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
        owner = await _fetchone(conn, _ID_BY_USERNAME, (new.username_key,))
        if owner is not None and owner[1] != record.id:
            raise rules.username_taken(record.username, owner[1])
    for identity in record.identities:
        key = (identity.identifier, identity.channel_type or "", identity.channel_id or "")
        owner = await _fetchone(conn, _IDENTITY_BY_KEY, key)
        if owner is not None and owner[3] != record.id:
            raise rules.identity_taken(identity.identifier, owner[3])
    if seq is None:
        inserted = await _fetchone(
            conn, _INSERT_CONTACT, (record.id, *_contact_values(new), record.created_at, record.updated_at)
        )
        assert inserted is not None
        seq = int(inserted[0])
        outcome: Outcome = "created"
    else:
        await conn.execute(_DELETE_METHODS, (seq,))
        await conn.execute(_DELETE_IDENTITIES, (seq,))
        await conn.execute(
            _REPLACE_CONTACT, (record.id, *_contact_values(new), record.created_at, record.updated_at, seq)
        )
        outcome = "updated"
    if record.merged_into is not None or outcome == "updated":
        await conn.execute(_SET_MERGED_INTO, (record.merged_into, seq))
    for m in record.methods:
        await conn.execute(
            _INSERT_METHOD,
            (
                m.id, seq, m.channel, m.type, rules.kind(m.channel, m.type), m.raw_value, m.value, m.primary,
                m.verified_at, m.verification_source, m.verification_method, m.created_at,
            ),
        )  # fmt: skip
    for i in record.identities:
        await conn.execute(_INSERT_IDENTITY, (i.id, seq, i.channel_type, i.identifier, i.channel_id, i.created_at))
    return outcome
