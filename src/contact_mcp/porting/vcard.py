"""vCard 3.0 and 4.0 (`.vcf`, what phones and Apple/Google Contacts export) read into rows of new data.

The file is split into cards here, line by line, so each card carries the line its `BEGIN:VCARD` stands on and one
bad card is one rejected row rather than a failed file; `vobject` parses each card (unfolding continuation lines,
parameters, the structured `N`). Taken from a card: the name (`FN`, else `N` as "given additional family"), every
`EMAIL` and every `TEL` (a vCard 4 `tel:` URI is read as its number), preferred ones first (`TYPE=pref` or a bare
`PREF` in 3.0, `PREF=n` in 4.0). Everything else on a card (addresses, notes, photos, `UID`) is not part of a contact
here and is left out. A quoted-printable value in a 3.0 card (as Android phones write them) is read, its soft line
breaks joined; a vCard 2.1 card is rejected with the reason, not misread.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any, Final

from contact_mcp.porting.rows import NewDataRow, RejectedRow, Row

SUPPORTED_VERSIONS: Final = frozenset({"3.0", "4.0"})
_READ: Final = frozenset({"BEGIN", "END", "VERSION", "FN", "N", "EMAIL", "TEL"})
"""The properties a contact is taken from; vobject is shown only these, so a malformed photo or address (which an
import does not keep) never costs a contact, and a card's large embedded photo is never decoded."""
_NOT_PREFERRED: Final = 101  # beyond vCard 4's PREF range (1-100)


def _vobject() -> Any:
    # vobject ships no type information: held as Any in this one module, and imported only when a .vcf is read.
    return importlib.import_module("vobject")


def read_vcards(lines: Iterable[str]) -> Iterator[Row]:
    """Each card of a vCard file as a row, numbered by its BEGIN line; text outside cards is rejected."""
    for piece in _pieces(lines):
        yield piece if isinstance(piece, RejectedRow) else card_row(*piece)


def count_vcards(lines: Iterable[str]) -> int:
    """How many rows `read_vcards` yields, without parsing a card (the progress bar's total)."""
    return sum(1 for _ in _pieces(lines))


def _pieces(lines: Iterable[str]) -> Iterator[RejectedRow | tuple[int, str]]:
    """The file split into whole cards (their BEGIN line, their text) and what cannot be one, rejected."""
    card: list[str] = []
    start = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        marker = line.strip().upper()
        if marker == "BEGIN:VCARD":
            if card:
                yield RejectedRow(line=start, reason="vCard has no END:VCARD", source="\n".join(card))
            card, start = [line], number
        elif card:
            card.append(line)
            if marker == "END:VCARD":
                yield start, "\n".join(card)
                card = []
        elif marker:
            yield RejectedRow(line=number, reason="text outside any BEGIN:VCARD ... END:VCARD", source=line)
    if card:
        yield RejectedRow(line=start, reason="vCard has no END:VCARD (the file ends inside it)", source="\n".join(card))


def card_row(line: int, text: str) -> Row:
    """One card's contact, or why it cannot be read."""
    vobject = _vobject()
    try:
        card: Any = vobject.readOne(_only_read(text) + "\n", validate=False)
    except Exception as exc:  # vobject raises ParseError and assorted others for malformed cards
        return RejectedRow(line=line, reason=f"not a readable vCard: {exc}", source=text)
    children: list[Any] = list(card.getChildren())
    versions = [str(child.value).strip() for child in children if child.name == "VERSION"]
    version = versions[0] if versions else None
    if version not in SUPPORTED_VERSIONS:
        return RejectedRow(
            line=line,
            reason=f"vCard version {version or '(none)'} is not supported",
            source=text,
            hint="Export the contacts as vCard 3.0 or 4.0",
        )
    return NewDataRow(
        line=line,
        source=text,
        name=_name(children),
        emails=_preferred_first(child for child in children if child.name == "EMAIL"),
        phones=tuple(_tel(value) for value in _preferred_first(child for child in children if child.name == "TEL")),
    )


def _only_read(text: str) -> str:
    """The card's lines of the properties in `_READ` (a property is its line and the folded lines after it, and
    the lines a quoted-printable value continues onto after a soft line break, joined back to it)."""
    kept: list[str] = []
    keep = quoted_printable = soft_break = False
    for line in text.split("\n"):
        if soft_break:  # `FN;ENCODING=QUOTED-PRINTABLE:Anna M=C3=BC=`, then `ller`: one value, however it goes on
            if keep:
                kept[-1] = kept[-1][:-1] + line
        elif line[:1] not in (" ", "\t"):
            head = line.split(":", 1)[0]
            name = head.split(";", 1)[0]
            keep = name.rsplit(".", 1)[-1].strip().upper() in _READ  # `item1.EMAIL`: Apple's property groups
            quoted_printable = "QUOTED-PRINTABLE" in head.upper()
            if keep:
                kept.append(line)
        elif keep:
            kept.append(line)
        soft_break = quoted_printable and line.endswith("=")
    return "\n".join(kept)


def _name(children: list[Any]) -> str | None:
    for child in children:
        if child.name == "FN" and str(child.value).strip():
            return str(child.value).strip()
    for child in children:
        if child.name == "N":
            n = child.value
            parts = [_joined(getattr(n, attr, "")) for attr in ("prefix", "given", "additional", "family", "suffix")]
            name = " ".join(part for part in parts if part)
            if name:
                return name
    return None


def _joined(value: Any) -> str:
    """A component of `N`: vobject gives a string, or a list when the component has several values."""
    if isinstance(value, list):
        return " ".join(str(item).strip() for item in value if str(item).strip())  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
    return str(value).strip()


def _preferred_first(properties: Iterable[Any]) -> tuple[str, ...]:
    ranked: list[tuple[int, int, str]] = []
    for order, prop in enumerate(properties):
        value = str(prop.value).strip()
        if value:
            ranked.append((_preference(prop), order, value))
    return tuple(value for _, _, value in sorted(ranked))


def _preference(prop: Any) -> int:
    """vCard 4: PREF=1 (most) to 100; vCard 3: TYPE=pref, or a bare PREF (`TEL;HOME;PREF:`, as older exporters
    write it). Unmarked values keep their order, after marked ones."""
    params: dict[str, list[str]] = prop.params
    if any(str(bare).strip().upper() == "PREF" for bare in prop.singletonparams):
        return 1
    for raw in params.get("PREF", []):
        if raw.strip().isdigit():
            return int(raw.strip())
    types = {part.strip().lower() for raw in params.get("TYPE", []) for part in raw.split(",")}
    return 1 if "pref" in types else _NOT_PREFERRED


def _tel(value: str) -> str:
    """A vCard 4 `tel:` URI is its number (an extension or other URI parameter is dropped)."""
    if value.lower().startswith("tel:"):
        return value[4:].split(";", 1)[0]
    return value
