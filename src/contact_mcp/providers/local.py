"""The embedded SQLite contact store (`local`, the default provider): the database file, its schema, all seven tools.

It owns the file named by CONTACT_MCP_DB: `preflight` creates it (and its folder) and the schema before the server
serves, and turns an unusable path into a `ConfigError`. A contact has one UUID4 id and carries contact *methods*
(emails, phones, handles; Feather/TetherAI style, with verification) and messaging *identities* (Blooio style), so
every tool works on the same contacts. Concurrency: each store holds one connection (stdlib `sqlite3`, WAL,
synchronous=NORMAL, foreign keys on, busy_timeout) and uses it synchronously inside the async methods with no
`await` inside a transaction, so concurrent tool calls on one event loop never interleave mid-transaction; each
call is one transaction (writes `BEGIN IMMEDIATE ... COMMIT`, rolled back on any exception), so two processes on the
same file queue for the write lock (waiting up to busy_timeout) instead of losing or duplicating updates. Every
exact lookup is indexed, so a call costs about the same at 1k and 100k contacts.
"""

from __future__ import annotations

import base64
import binascii
import logging
import sqlite3
import uuid
from collections.abc import Generator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from pydantic import TypeAdapter

from contact_mcp.errors import ConfigError, Conflict, InvalidArgument, NotFound, ProviderUnavailable
from contact_mcp.models import (
    AttachContactInput,
    AttachedContact,
    AttachedIdentity,
    AttachIdentityInput,
    Company,
    Contact,
    ContactMethod,
    ContactPage,
    ContactSummary,
    CreateContactInput,
    CreatedContact,
    CustomValue,
    FindContactsInput,
    Identity,
    MethodType,
    Operation,
    Outcome,
    SetVerificationInput,
    UpsertContactInput,
    UpsertResult,
    VerificationResult,
)
from contact_mcp.normalize import normalize_uuid
from contact_mcp.providers.base import Provider
from contact_mcp.settings import Settings

if TYPE_CHECKING:
    import httpx2

log = logging.getLogger("contact_mcp.local")

BUSY_TIMEOUT_MS: Final = 5_000
"""How long a call waits for another process's write to finish before answering `provider_unavailable`."""

_PHONE_TYPES: Final = frozenset({"phone", "sms", "voice", "whatsapp"})
_ATTACH_HINT: Final = "Create the contact with upsert_contact or create_contact, or find its id with find_contacts"
_GET_HINT: Final = "Find the contact's id with find_contacts"
_CURSOR_HINT: Final = "Pass next_cursor from the previous find_contacts result unchanged, or omit cursor"
_FIELD_SEPARATOR: Final = "\x1f"  # keeps a name search from matching across the end of one field into the next

_COMPANIES: Final = TypeAdapter(list[Company])
_CUSTOM_FIELDS: Final = TypeAdapter(dict[str, CustomValue])
_ROLES: Final = TypeAdapter(list[str])

# ---------- schema ----------
# `seq` (the rowid) is the pagination order and the join key; `id` is the public UUID. A method's `kind` groups
# the types one primary is chosen among: "email", "phone" (phone/sms/voice/whatsapp), else the channel itself.
# `search_text` holds name, display name and username case-folded, for the substring search.

_SCHEMA_V1: Final = (
    """CREATE TABLE contacts (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        user_id TEXT,
        username TEXT,
        username_key TEXT,
        name TEXT,
        display_name TEXT,
        locale TEXT,
        profile_picture TEXT,
        companies TEXT NOT NULL DEFAULT '[]',
        custom_fields TEXT NOT NULL DEFAULT '{}',
        roles TEXT NOT NULL DEFAULT '[]',
        subscribed_to_changelog INTEGER,
        search_text TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX contacts_id ON contacts(id)",
    "CREATE UNIQUE INDEX contacts_user_id ON contacts(user_id)",
    "CREATE UNIQUE INDEX contacts_username ON contacts(username_key)",
    """CREATE TABLE methods (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE,
        channel TEXT NOT NULL,
        type TEXT,
        kind TEXT NOT NULL,
        raw_value TEXT NOT NULL,
        value TEXT NOT NULL,
        is_primary INTEGER NOT NULL DEFAULT 0,
        verified_at TEXT,
        verification_source TEXT,
        verification_method TEXT,
        created_at TEXT NOT NULL
    )""",
    "CREATE UNIQUE INDEX methods_channel_value ON methods(contact_seq, channel, value)",
    "CREATE UNIQUE INDEX methods_primary ON methods(contact_seq, kind) WHERE is_primary",
    "CREATE INDEX methods_value ON methods(value, kind, contact_seq)",
    """CREATE TABLE identities (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL,
        contact_seq INTEGER NOT NULL REFERENCES contacts(seq) ON DELETE CASCADE,
        channel_type TEXT,
        identifier TEXT NOT NULL,
        channel_id TEXT,
        created_at TEXT NOT NULL
    )""",
    # UNIQUE treats NULLs as distinct; ifnull() makes "no channel type" one value, so it cannot be attached twice.
    "CREATE UNIQUE INDEX identities_key ON identities(identifier, ifnull(channel_type, ''), ifnull(channel_id, ''))",
    "CREATE INDEX identities_contact ON identities(contact_seq)",
)
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (_SCHEMA_V1,)
SCHEMA_VERSION: Final = len(_MIGRATIONS)

# ---------- statements (fixed strings, so sqlite3's statement cache prepares each once per connection) ----------

_SEQ_BY_ID: Final = "SELECT seq FROM contacts WHERE id = ?"
_TOUCH: Final = "UPDATE contacts SET updated_at = ? WHERE seq = ?"
_INSERT_CONTACT: Final = (
    "INSERT INTO contacts (id, user_id, username, username_key, name, display_name, locale, profile_picture, "
    "companies, custom_fields, roles, subscribed_to_changelog, search_text, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_METHOD: Final = (
    "INSERT INTO methods (id, contact_seq, channel, type, kind, raw_value, value, is_primary, verified_at, "
    "verification_method, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
    "SELECT value FROM methods WHERE contact_seq = ? AND kind = ? GROUP BY value ORDER BY min(seq) LIMIT 10"
)
_SET_PRIMARY: Final = "UPDATE methods SET is_primary = ? WHERE seq = ?"
_VERIFY_ATTACHED: Final = "UPDATE methods SET verified_at = ?, verification_method = 'api' WHERE seq = ?"
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
_ID_BY_USERNAME: Final = "SELECT id FROM contacts WHERE username_key = ?"


def _primary_value(contacts: str, kind: str) -> str:
    """SQL for the value of a contact's primary method of `kind`; `contacts` names the contacts row."""
    return f"(SELECT value FROM methods WHERE contact_seq = {contacts}.seq AND kind = '{kind}' AND is_primary)"


# The match row carries everything the update path compares and the summary needs, primaries included, so an
# update is one SELECT and at most one UPDATE inside its transaction.
_UPSERT_COLUMNS: Final = (
    "seq, id, user_id, username, name, display_name, locale, profile_picture, companies, custom_fields, roles, "
    f"subscribed_to_changelog, {_primary_value('contacts', 'email')}, {_primary_value('contacts', 'phone')}"
)
_UPSERT_BY_USER_ID: Final = f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE user_id = ?"
# The oldest contact holding the email as its primary, else the oldest holding it at all. CROSS JOIN keeps the
# email index as the outer loop: without statistics the planner would walk every contact lacking a user_id.
_UPSERT_BY_EMAIL_ANY: Final = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = (SELECT contact_seq FROM methods "
    "WHERE value = ? AND kind = 'email' ORDER BY is_primary DESC, contact_seq LIMIT 1)"
)
_UPSERT_BY_EMAIL_NO_USER: Final = (
    f"SELECT {_UPSERT_COLUMNS} FROM contacts WHERE seq = (SELECT m.contact_seq FROM methods m "
    "CROSS JOIN contacts c ON c.seq = m.contact_seq WHERE m.value = ? AND m.kind = 'email' AND c.user_id IS NULL "
    "ORDER BY m.is_primary DESC, m.contact_seq LIMIT 1)"
)
_CONTACT_BY_ID: Final = (
    "SELECT seq, id, user_id, username, name, display_name, locale, profile_picture, companies, custom_fields, "
    "roles, subscribed_to_changelog, created_at, updated_at FROM contacts WHERE id = ?"
)
_METHODS_OF: Final = (
    "SELECT id, channel, type, raw_value, value, is_primary, verified_at, verification_source, verification_method "
    "FROM methods WHERE contact_seq = ? ORDER BY seq"
)
_IDENTITIES_OF: Final = (
    "SELECT id, channel_type, identifier, channel_id, created_at FROM identities WHERE contact_seq = ? ORDER BY seq"
)
_SUMMARY_COLUMNS: Final = (
    "c.seq, c.id, coalesce(c.name, c.display_name), c.username, c.user_id, "
    f"{_primary_value('c', 'email')}, {_primary_value('c', 'phone')}"
)
_FIND_IN_METHODS: Final = "c.seq IN (SELECT contact_seq FROM methods WHERE value = ? AND kind = ?)"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_id() -> str:
    return str(uuid.uuid4())


def _kind(channel: str, type_: str | None) -> str:
    if type_ == "email":
        return "email"
    if type_ in _PHONE_TYPES:
        return "phone"
    return channel


def _search_text(*fields: str | None) -> str:
    return _FIELD_SEPARATOR.join(field.casefold() for field in fields if field)


def _canonical_id(raw: str) -> str | None:
    """Contact ids are UUIDs; anything else names no contact."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(str(seq).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.isdigit() or len(raw) > 19:
        raise InvalidArgument("cursor is not a cursor this server issued", field="cursor", hint=_CURSOR_HINT)
    return int(raw)


def _is_busy(exc: sqlite3.Error) -> bool:
    return exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _verification_message(
    type_: MethodType, verified: bool
) -> Literal[
    "Phone number verified", "Phone number verification cleared", "Email verified", "Email verification cleared"
]:
    if type_ == "phone":
        return "Phone number verified" if verified else "Phone number verification cleared"
    return "Email verified" if verified else "Email verification cleared"


def _add_contact(
    db: sqlite3.Connection,
    now: str,
    *,
    user_id: str | None = None,
    username: str | None = None,
    name: str | None = None,
    display_name: str | None = None,
    locale: str | None = None,
    profile_picture: str | None = None,
    companies: str = "[]",
    custom_fields: str = "{}",
    roles: str = "[]",
    subscribed_to_changelog: bool | None = None,
) -> tuple[int, str]:
    """Insert a contact; return its row number and its new id."""
    contact_id = _new_id()
    cursor = db.execute(
        _INSERT_CONTACT,
        (
            contact_id,
            user_id,
            username,
            username.casefold() if username is not None else None,
            name,
            display_name,
            locale,
            profile_picture,
            companies,
            custom_fields,
            roles,
            subscribed_to_changelog,
            _search_text(name, display_name, username),
            now,
            now,
        ),
    )
    seq = cursor.lastrowid
    assert seq is not None
    return seq, contact_id


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


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
    uid = _new_id()
    kind = _kind(channel, type_)
    row = (uid, seq, channel, type_, kind, raw_value, value, primary, verified_at, verification_method, now)
    db.execute(_INSERT_METHOD, row)
    return uid


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


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise ConfigError(
            f"CONTACT_MCP_DB={path} has schema version {version}, newer than this contact-mcp understands "
            f"({SCHEMA_VERSION}); upgrade contact-mcp or point CONTACT_MCP_DB at another file"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open (creating file, folder and schema on first use) and configure a connection; `ConfigError` if unusable."""
    path = path.expanduser()
    _prepare_folder(path)
    try:
        db = sqlite3.connect(path, isolation_level=None, cached_statements=256)
    except sqlite3.Error as exc:
        raise ConfigError(f"CONTACT_MCP_DB={path} cannot be opened ({exc})") from None
    try:
        db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        mode: str = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            log.warning(
                "CONTACT_MCP_DB=%s: journal_mode is %s, not wal (the filesystem may not support WAL)", path, mode
            )
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        _migrate(db, path)
    except sqlite3.Error as exc:
        db.close()
        if _is_busy(exc):
            raise ConfigError(
                f"CONTACT_MCP_DB={path} stayed locked by another process for {busy_timeout_ms} ms at start-up"
            ) from None
        raise ConfigError(
            f"CONTACT_MCP_DB={path} is not a usable contact database ({exc}); "
            "point CONTACT_MCP_DB at a new file or an existing contact-mcp database"
        ) from None
    except BaseException:
        db.close()
        raise
    return db


# ---------- the store ----------


class LocalStore(Provider):
    """Contacts in one SQLite file; every operation, no network."""

    name = "local"
    display_name = "local"
    operations = frozenset(Operation)

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self._db = db
        self._path = path
        self._closed = False

    @classmethod
    def open(cls, path: Path | str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> LocalStore:
        return cls(_connect(Path(path), busy_timeout_ms), Path(path))

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        _connect(settings.db, BUSY_TIMEOUT_MS).close()

    @classmethod
    def from_settings(cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None) -> LocalStore:
        return cls.open(settings.db)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._db.execute("PRAGMA optimize")
        finally:
            self._db.close()

    async def probe(self) -> str:
        (count,) = self._db.execute("SELECT count(*) FROM contacts").fetchone()
        (mode,) = self._db.execute("PRAGMA journal_mode").fetchone()
        return f"SQLite {sqlite3.sqlite_version} at {self._path}: {count} contact(s), journal_mode={mode}"

    async def ready(self) -> None:
        # The open connection keeps working on an unlinked file, so a vanished file (a detached volume, a deleted
        # path) is checked for by name: new connections and the next process would not find the data.
        if not self._path.exists():
            raise ProviderUnavailable(f"the contact database {self._path} is gone", retry_after_s=5.0)
        self._db.execute("SELECT 1 FROM contacts LIMIT 1").fetchall()

    # ---------- transactions ----------

    @contextmanager
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Generator[sqlite3.Connection]:
        db = self._db
        try:
            db.execute(begin)
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError) and _is_busy(exc):
                raise ProviderUnavailable(
                    "the contact database is locked by another process",
                    hint="Another contact-mcp is writing to the same file; retry in a moment",
                    retry_after_s=1.0,
                ) from exc
            raise

    def _require_contact(self, db: sqlite3.Connection, contact_id: str, *, field: str, hint: str) -> tuple[int, str]:
        """The contact's row number and canonical id, or `NotFound` naming `field`."""
        canonical = _canonical_id(contact_id)
        row = db.execute(_SEQ_BY_ID, (canonical,)).fetchone() if canonical else None
        if row is None or canonical is None:
            noun = "end user" if field == "end_user_id" else "contact"
            raise NotFound(f"no {noun} with id {contact_id}", field=field, hint=hint)
        seq: int = row[0]
        return seq, canonical

    # ---------- attach_contact (Feather) ----------

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        now = _now()
        with self._transaction() as db:
            seq, _ = self._require_contact(db, call.end_user_id, field="end_user_id", hint=_ATTACH_HINT)
            row = db.execute(_METHOD_BY_CHANNEL_VALUE, (seq, call.channel, call.normalized_value)).fetchone()
            if row is None:
                type_, method, created = call.type, "api", True
                first_of_kind = db.execute(_PRIMARY_OF_KIND, (seq, _kind(call.channel, call.type))).fetchone() is None
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
                    verification_method=method,
                )
                db.execute(_TOUCH, (now, seq))
            else:
                method_seq, uid, type_, verified_at, method = row
                created = False
                if verified_at is None:
                    # Attaching says the value is verified: an unverified method (say, from upsert) is promoted.
                    db.execute(_VERIFY_ATTACHED, (now, method_seq))
                    db.execute(_TOUCH, (now, seq))
                    method = "api"
        return AttachedContact(
            provider=self.name,
            created=created,
            end_user_id=call.end_user_id,
            uid=uid,
            channel=call.channel,
            type=type_,
            normalized_value=call.normalized_value,
            verification_method=method,
        )

    # ---------- attach_identity (Blooio) ----------

    async def attach_identity(self, call: AttachIdentityInput) -> AttachedIdentity:
        now = _now()
        with self._transaction() as db:
            seq, contact_id = self._require_contact(db, call.contact_id, field="contact_id", hint=_GET_HINT)
            key = (call.identifier, call.channel_type or "", call.channel_id or "")
            row = db.execute(_IDENTITY_BY_KEY, key).fetchone()
            if row is None:
                identity_id, created_at, created = _new_id(), now, True
                db.execute(
                    _INSERT_IDENTITY, (identity_id, seq, call.channel_type, call.identifier, call.channel_id, now)
                )
                db.execute(_TOUCH, (now, seq))
            else:
                identity_id, created_at, owner_seq, owner_id = row
                if owner_seq != seq:
                    raise Conflict(
                        f"identity {call.identifier} is already attached to contact {owner_id}",
                        field="identifier",
                        existing_id=owner_id,
                        hint="An identity belongs to one contact: use that contact, or attach a different identifier",
                    )
                created = False
        return AttachedIdentity(
            provider=self.name,
            created=created,
            id=identity_id,
            contact_id=contact_id,
            channel_type=call.channel_type,
            identifier=call.identifier,
            channel_id=call.channel_id,
            created_at=created_at,
        )

    # ---------- set_verification (TetherAI) ----------

    async def set_verification(self, call: SetVerificationInput) -> VerificationResult:
        now = _now()
        with self._transaction() as db:
            seq, contact_id = self._require_contact(db, call.contact_id, field="contact_id", hint=_GET_HINT)
            if db.execute(_HAS_METHOD_OF_KIND_VALUE, (seq, call.type, call.value)).fetchone() is None:
                raise self._value_not_found(db, seq, call)
            state = (call.verified_at, call.verification_source, "manual") if call.verified else (None, None, None)
            # Every method carrying the value (the same number on sms and whatsapp, say) changes together.
            if db.execute(_SET_VERIFICATION, (*state, seq, call.type, call.value)).rowcount:
                db.execute(_TOUCH, (now, seq))
        return VerificationResult(
            provider=self.name,
            message=_verification_message(call.type, call.verified),
            contact_id=contact_id,
            type=call.type,
            value=call.value,
            verified=call.verified,
            verified_at=state[0],
            verified_by=None,
            verification_source=state[1],
        )

    def _value_not_found(self, db: sqlite3.Connection, seq: int, call: SetVerificationInput) -> NotFound:
        noun, plural = (
            ("phone number", "phone numbers") if call.type == "phone" else ("email address", "email addresses")
        )
        values: list[str] = [row[0] for row in db.execute(_VALUES_OF_KIND, (seq, call.type))]
        if values:
            hint = (
                f"The contact's {plural}: {', '.join(values)}. Pass one of these as value, "
                f"or add the {noun} first with upsert_contact or attach_contact"
            )
        else:
            hint = f"The contact has no {noun}; add one first with upsert_contact ({call.type}=...) or attach_contact"
        return NotFound(f"the contact has no {noun} {call.value}", field="value", hint=hint)

    # ---------- upsert_contact (Featurebase) ----------

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        now = _now()
        with self._transaction() as db:
            row = self._upsert_match(db, call)
            if row is None:
                contact_id = self._upsert_insert(db, call, now)
                return UpsertResult(
                    provider=self.name,
                    outcome="created",
                    id=contact_id,
                    user_id=call.user_id,
                    email=call.email,
                    name=call.name,
                    phone=call.phone,
                )
            outcome: Outcome = "updated" if self._upsert_update(db, row, call, now) else "unchanged"
        _, contact_id, user_id, _, name, display_name, *_, email, phone = row
        name = call.name if call.name is not None else name
        return UpsertResult(
            provider=self.name,
            outcome=outcome,
            id=str(contact_id),
            user_id=_text_or_none(call.user_id if call.user_id is not None else user_id),
            email=_text_or_none(call.email if call.email is not None else email),
            name=_text_or_none(name if name is not None else display_name),
            phone=_text_or_none(call.phone if call.phone is not None else phone),
        )

    def _upsert_match(self, db: sqlite3.Connection, call: UpsertContactInput) -> tuple[object, ...] | None:
        """userId first; then the email, but never onto a contact that belongs to another userId."""
        if call.user_id is not None:
            row = db.execute(_UPSERT_BY_USER_ID, (call.user_id,)).fetchone()
            if row is not None:
                return row
        if call.email is not None:
            sql = _UPSERT_BY_EMAIL_ANY if call.user_id is None else _UPSERT_BY_EMAIL_NO_USER
            return db.execute(sql, (call.email,)).fetchone()
        return None

    def _upsert_insert(self, db: sqlite3.Connection, call: UpsertContactInput, now: str) -> str:
        seq, contact_id = _add_contact(
            db,
            now,
            user_id=call.user_id,
            name=call.name,
            locale=call.locale,
            profile_picture=call.profile_picture,
            companies=_COMPANIES.dump_json(list(call.companies or ()), exclude_none=True).decode(),
            custom_fields=_CUSTOM_FIELDS.dump_json(call.custom_fields or {}).decode(),
            roles=_ROLES.dump_json(list(call.roles or ())).decode(),
            subscribed_to_changelog=call.subscribed_to_changelog,
        )
        for kind, value in (("email", call.email), ("phone", call.phone)):
            if value is not None:
                _add_method(db, seq, now, channel=kind, type_=kind, raw_value=value, value=value, primary=True)
        return contact_id

    def _upsert_update(self, db: sqlite3.Connection, row: Sequence[object], call: UpsertContactInput, now: str) -> bool:
        """Apply what differs; return whether anything did. Nothing is written when nothing differs."""
        (seq, _, user_id, username, name, display_name, locale, picture, companies, custom, roles, subscribed,
         email, phone) = row  # fmt: skip
        changes: dict[str, object] = {}
        if call.user_id is not None and call.user_id != user_id:
            changes["user_id"] = call.user_id
        if call.name is not None and call.name != name:
            changes["name"] = call.name
            changes["search_text"] = _search_text(call.name, str(display_name or ""), str(username or ""))
        if call.locale is not None and call.locale != locale:
            changes["locale"] = call.locale
        if call.profile_picture is not None and call.profile_picture != picture:
            changes["profile_picture"] = call.profile_picture
        if call.companies is not None:
            text = _COMPANIES.dump_json(list(call.companies), exclude_none=True).decode()
            if text != companies:
                changes["companies"] = text
        if call.custom_fields is not None:
            merged = {**_CUSTOM_FIELDS.validate_json(str(custom)), **call.custom_fields}
            text = _CUSTOM_FIELDS.dump_json(merged).decode()
            if text != custom:
                changes["custom_fields"] = text
        if call.roles is not None:
            text = _ROLES.dump_json(list(call.roles)).decode()
            if text != roles:
                changes["roles"] = text
        if call.subscribed_to_changelog is not None and (
            subscribed is None or bool(subscribed) != call.subscribed_to_changelog
        ):
            changes["subscribed_to_changelog"] = call.subscribed_to_changelog
        assert isinstance(seq, int)
        primaries_changed = False
        if call.email is not None and call.email != email:
            self._make_primary(db, seq, "email", call.email, now)
            primaries_changed = True
        if call.phone is not None and call.phone != phone:
            self._make_primary(db, seq, "phone", call.phone, now)
            primaries_changed = True
        if not (changes or primaries_changed):
            return False
        changes["updated_at"] = now
        assignments = ", ".join(f"{column} = ?" for column in changes)
        db.execute(f"UPDATE contacts SET {assignments} WHERE seq = ?", (*changes.values(), seq))
        return True

    def _make_primary(
        self, db: sqlite3.Connection, seq: int, kind: Literal["email", "phone"], value: str, now: str
    ) -> None:
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
        now = _now()
        display_name = call.display_name or call.username
        phone = call.phone_number
        with self._transaction() as db:
            existing = db.execute(_ID_BY_USERNAME, (call.username.casefold(),)).fetchone()
            if existing is not None:
                raise Conflict(
                    f"username {call.username!r} is taken by contact {existing[0]}",
                    field="username",
                    existing_id=existing[0],
                    hint="Usernames are unique, ignoring case: read that contact with get_contact, or choose another",
                )
            seq, contact_id = _add_contact(
                db, now, username=call.username, display_name=display_name, profile_picture=call.avatar_url
            )
            _add_method(db, seq, now, channel="phone", type_="phone", raw_value=phone, value=phone, primary=True)
        return CreatedContact(
            provider=self.name,
            id=contact_id,
            username=call.username,
            phone_number=phone,
            display_name=display_name,
            avatar_url=call.avatar_url,
            created_at=now,
        )

    # ---------- get_contact ----------

    async def get_contact(self, contact_id: str) -> Contact:
        canonical = _canonical_id(normalize_uuid(contact_id, field="contact_id"))
        with self._transaction("BEGIN") as db:
            row = db.execute(_CONTACT_BY_ID, (canonical,)).fetchone() if canonical else None
            if row is None:
                raise NotFound(f"no contact with id {contact_id}", field="contact_id", hint=_GET_HINT)
            methods = db.execute(_METHODS_OF, (row[0],)).fetchall()
            identities = db.execute(_IDENTITIES_OF, (row[0],)).fetchall()
        (_, id_, user_id, username, name, display_name, locale, picture, companies, custom, roles, subscribed,
         created_at, updated_at) = row  # fmt: skip
        return Contact(
            provider=self.name,
            id=id_,
            user_id=user_id,
            username=username,
            name=name,
            display_name=display_name,
            locale=locale,
            profile_picture=picture,
            companies=_COMPANIES.validate_json(companies),
            custom_fields=_CUSTOM_FIELDS.validate_json(custom),
            roles=_ROLES.validate_json(roles),
            subscribed_to_changelog=None if subscribed is None else bool(subscribed),
            created_at=created_at,
            updated_at=updated_at,
            methods=[
                ContactMethod(
                    id=m[0],
                    channel=m[1],
                    type=m[2],
                    raw_value=m[3],
                    value=m[4],
                    primary=bool(m[5]),
                    verified=m[6] is not None,
                    verified_at=m[6],
                    verification_source=m[7],
                    verification_method=m[8],
                )
                for m in methods
            ],
            identities=[
                Identity(id=i[0], channel_type=i[1], identifier=i[2], channel_id=i[3], created_at=i[4])
                for i in identities
            ],
        )

    # ---------- find_contacts ----------

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        after = _decode_cursor(call.cursor) if call.cursor is not None else 0
        sql, params = self._find_query(call, after)
        rows = self._db.execute(sql, params).fetchall()  # one statement: its own read transaction
        page = rows[: call.limit]
        return ContactPage(
            provider=self.name,
            contacts=[
                ContactSummary(id=r[1], name=r[2], username=r[3], user_id=r[4], email=r[5], phone=r[6]) for r in page
            ],
            next_cursor=_encode_cursor(page[-1][0]) if len(rows) > call.limit else None,
        )

    def _find_query(self, call: FindContactsInput, after: int) -> tuple[str, list[object]]:
        """Filters AND together, in seq order after the cursor; one row beyond the page says whether more exist.

        Exact filters drive the query through their indexes. A name search alone walks contacts in seq order and
        stops once the page is full: no B-tree index answers a substring (an FTS5 trigram index would, but it
        doubled the cost of every write that changes a name, which is the common call)."""
        where = ["c.seq > ?"]
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
            where.append("c.username_key = ?")
            params.append(call.username.casefold())
        if call.user_id is not None:
            where.append("c.user_id = ?")
            params.append(call.user_id)
        params.append(call.limit + 1)
        sql = f"SELECT {_SUMMARY_COLUMNS} FROM contacts c WHERE {' AND '.join(where)} ORDER BY c.seq LIMIT ?"
        return sql, params
