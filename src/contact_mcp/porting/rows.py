"""The rows an import file yields, and how a row of new data becomes what the store is handed (or a rejection).

A reader turns each row of a file into one of three typed rows, each carrying the line it starts on: a
`RestoreRow` (an exported contact, from JSONL), a `NewDataRow` (fields as written in a CSV row or a vCard), or a
`RejectedRow` (a row the reader could not read, with the reason). `normalise` applies the tools' normalisation
(`normalize.py`: phones E.164, emails normalised), the tools' argument limits and their rule against control
characters to a `NewDataRow`, so an import accepts exactly what `upsert_contact` would; `restorable` applies that
rule to an exported contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from contact_mcp.errors import ContactError, InvalidArgument
from contact_mcp.limits import MAX_TEXT_LENGTHS
from contact_mcp.normalize import normalize_email, normalize_phone
from contact_mcp.store.records import ContactRecord
from contact_mcp.store.rules import ImportContactInput, canonical_id, name_key, username_key
from contact_mcp.tools.arguments import check_text, has_control

Source = dict[str, str] | str
"""A row as it stood in the file, for the rejected-rows file: a CSV row's cells by column, or a vCard's text or a
JSONL line."""


MISSING_KEY_REASON: Final = (
    "the row names no contact: give an email, a user_id, a username, or a phone together with a name "
    "(a phone alone is no identity: families share one)"
)


@dataclass(frozen=True, slots=True)
class RestoreRow:
    """An exported contact, to be put back as it was."""

    line: int
    record: ContactRecord


@dataclass(frozen=True, slots=True)
class NewDataRow:
    """A contact as a CSV row or a vCard wrote it, before normalisation; preferred emails and phones first."""

    line: int
    source: Source
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    name: str | None = None
    user_id: str | None = None
    username: str | None = None
    locale: str | None = None


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row that is not imported, and why."""

    line: int
    reason: str
    source: Source
    field: str | None = None
    hint: str | None = None


Row = RestoreRow | NewDataRow | RejectedRow


@dataclass(frozen=True, slots=True)
class NormalisedRow:
    """A row of new data ready for the store."""

    line: int
    source: Source
    contact: ImportContactInput


def source_of(row: RestoreRow | NormalisedRow) -> Source:
    return row.record.model_dump_json(exclude_none=True) if isinstance(row, RestoreRow) else row.source


def rejection(line: int, source: Source, error: ContactError) -> RejectedRow:
    return RejectedRow(line=line, reason=error.message, source=source, field=error.field, hint=error.hint)


def restorable(row: RestoreRow, line: str) -> RestoreRow | RejectedRow:
    """The exported contact, or rejected for a control character in any of its text, by the tools' rule: an export
    holds none, but a file edited by hand may. `line` is the JSON the contact was read from: a control character
    in a value stands in it as itself or as an escape, so a line with neither (nearly every one) is not looked
    through field by field, which costs about twice what reading the line does."""
    if "\\" not in line and not has_control(line):
        return row
    try:
        check_text(row.record.model_dump(exclude_none=True))
    except InvalidArgument as exc:
        return rejection(row.line, line, exc)
    return row


def _text(value: str | None, *, name: str) -> str | None:
    """Blank is not given (as for the tools' optional strings); a control character or too long is the tools'
    `invalid_argument`."""
    if value is None:
        return None
    check_text({name: value})  # as given, before stripping, as the tools check their arguments
    text = value.strip()
    if not text:
        return None
    limit = MAX_TEXT_LENGTHS[name]  # the tools' own: an import stores nothing an agent could not have
    if len(text) > limit:
        raise InvalidArgument(f"{name} is {len(text)} characters; the limit is {limit}", field=name)
    return text


def _distinct(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def normalise(row: NewDataRow, *, default_region: str | None) -> NormalisedRow | RejectedRow:
    """The row normalised as the tools normalise their arguments, or rejected with the first problem found."""
    try:
        emails = _distinct(
            [normalize_email(text, field="email") for raw in row.emails if (text := _text(raw, name="email"))]
        )
        phones = _distinct(
            [
                normalize_phone(text, field="phone", default_region=default_region)
                for raw in row.phones
                if (text := _text(raw, name="phone"))
            ]
        )
        contact = ImportContactInput(
            emails=emails,
            phones=phones,
            name=_text(row.name, name="name"),
            user_id=_text(row.user_id, name="user_id"),
            username=_text(row.username, name="username"),
            locale=_text(row.locale, name="locale"),
        )
    except InvalidArgument as exc:
        return rejection(row.line, row.source, exc)
    if not (contact.emails or contact.user_id or contact.username or (contact.phones and contact.name)):
        return RejectedRow(line=row.line, reason=MISSING_KEY_REASON, source=row.source)
    return NormalisedRow(line=row.line, source=row.source, contact=contact)


class FileKeys:
    """The keys that rows of one file have already imported a contact by, so a second row for the same contact is
    rejected naming the first: the two rows would otherwise overwrite each other on every run, and importing the
    file twice would not leave it unchanged. Keys: an exported contact's id; a row's emails, user_id, username
    (ignoring case), or, for a row keyed by phone and name, each phone with the name."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, str], int] = {}

    @staticmethod
    def keys(row: RestoreRow | NormalisedRow) -> list[tuple[str, str]]:
        if isinstance(row, RestoreRow):  # as the store will hold it: an upper-case id is the same contact
            return [("id", canonical_id(row.record.id) or row.record.id)]
        contact = row.contact
        keys = [("email", email) for email in contact.emails]
        if contact.user_id is not None:
            keys.append(("user_id", contact.user_id))
        if contact.username is not None:
            keys.append(("username", username_key(contact.username) or ""))
        if not keys:
            keys = [("phone and name", f"{phone} {name_key(contact.name)}") for phone in contact.phones]
        return keys

    def earlier(self, row: RestoreRow | NormalisedRow) -> RejectedRow | None:
        """The rejection of `row` if an earlier row imported its contact by one of its keys."""
        for kind, value in self.keys(row):
            line = self._lines.get((kind, value))
            if line is not None:
                return RejectedRow(
                    line=row.line,
                    reason=f"the row names the same contact as line {line} ({kind} {value})",
                    source=source_of(row),
                    field=None if kind == "phone and name" else kind,
                    hint="Merge the two rows into one, then import the file again",
                )
        return None

    @classmethod
    def claimed(cls, row: RestoreRow | NormalisedRow) -> list[tuple[str, str]]:
        """What `row` claims: its keys and, for a row keyed otherwise, each of its phones with its name. A later row
        keyed by phone and name alone finds the contact this one imports (the store matches it so), and on every
        run the two overwrote each other; a later row with keys of its own is another contact, whatever its phone."""
        keys = cls.keys(row)
        if isinstance(row, NormalisedRow) and keys and row.contact.name is not None:
            name = name_key(row.contact.name)
            keys += [("phone and name", f"{phone} {name}") for phone in row.contact.phones]
        return keys

    def claim(self, row: RestoreRow | NormalisedRow) -> None:
        for key in self.claimed(row):
            self._lines.setdefault(key, row.line)

    def release(self, row: RestoreRow | NormalisedRow) -> None:
        """Forget the keys `row` claimed (the store refused it)."""
        for key in self.claimed(row):
            if self._lines.get(key) == row.line:
                del self._lines[key]
