"""Which contacts are probably one person: blocking keys, pair scores with their evidence, and groups (pure).

A backend hands `find_groups` every contact not merged away, as `Candidate`s (one read); nothing here does I/O.

**Blocking, not all pairs.** Contacts are bucketed by keys two records of one person are likely to share: a
mailbox (`mailbox`: the address as its provider delivers it), an E.164 phone, a user id ignoring case and spacing,
a company, and a non-free-mail email domain; only pairs sharing a bucket are scored. A bucket larger than
`BLOCK_LIMIT` (a corporate domain, a big company) is split by the first letters of each name word, so a pair is
still compared when one word of each name starts alike; a phone or mailbox bucket that large is a shared line or
role address (a switchboard, `info@`), and is skipped whole (said in the module's bench notes).

**Scores.** Each shared key is evidence with a weight (`WEIGHTS`); a similar name is evidence too, but a name alone
never makes a pair. Weights combine as independent evidence (1 − Π(1 − w)); names that clearly differ halve the
score, so family members sharing a phone (Jane and John Smith) and a shared family address stay apart, while a
typo ("Mitchel"), a nickname ("Bill"/"William", the `nicknames` table) or an initial ("J. Smith") does not count
against a pair. Names compare word by word with Jaro-Winkler (`rapidfuzz`): given names, then family names (also
swapped, reordered, or split/joined). Beside a shared phone, the same given name under another family name is
evidence too ("Hannah Dixon", "Hannah Bloomfield": a married name, or a wrong one typed), where family members
have other given names; a family name alone ("Matthews" beside "Hannah Matthews") is only compatible, since on a
household's phone it fits every member of the family.

**Mail providers** (`MAILBOX_RULES`): Gmail and Googlemail ignore dots in the local part and everything after `+`
(Google documents both; googlemail.com is the same service); Outlook/Hotmail/Live/MSN, iCloud (icloud.com,
me.com, mac.com) and Fastmail deliver `+tag` addresses to the base mailbox but treat dots as significant, so only
the tag goes. Yahoo's disposable addresses use `-` and name a different mailbox; other domains may give `+` any
meaning, so there a `+tag` is weaker evidence (`tagged`), never the same mailbox.

**Groups**: pairs scoring at least `min_score` join groups (union-find, strongest pairs first); a group's score is
its weakest joining pair. Groups are ordered by their oldest member, which is what the cursor carries.
"""

from __future__ import annotations

import gc
import json
import re
from collections import defaultdict
from collections.abc import Generator, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Final, cast

from nicknames import NickNamer
from rapidfuzz.distance import JaroWinkler

from contact_mcp.models import (
    DEFAULT_MIN_SCORE,
    ContactSummary,
    DuplicateEvidence,
    DuplicateGroup,
    DuplicatePage,
    EvidenceKind,
    FindDuplicatesInput,
)
from contact_mcp.store.rules import PROVIDER, JsonColumn, decode_cursor, encode_cursor

WEIGHTS: Final[dict[EvidenceKind, float]] = {
    "user_id": 0.99,
    "email": 0.9,
    "mailbox": 0.9,
    "tagged": 0.8,
    "phone": 0.5,
    "company": 0.2,
    "email_domain": 0.2,
}
"""How strongly one shared key says "one person" on its own. A phone is half: families and offices share one."""
NAME_WEIGHTS: Final = ((0.95, 0.8), (0.9, 0.75), (0.85, 0.6))
"""(name similarity at least, weight): a name's evidence, added to a shared key's."""
NAMES_DIFFER_BELOW: Final = 0.75
JOINED_AT_LEAST: Final = 0.95
"""A name split or joined differently ("Black Well", "Blackwell") counts when its letters are this alike."""
"""Given or family names less alike than this (and no nickname of each other) are two people: the score halves."""
ONE_WORD_AT_MOST: Final = 0.8
"""A one-word name matched against a longer name's family name: not a conflict, and not the whole name."""
SAME_GIVEN_NAME: Final = 0.9
"""How alike two given names must be to be the same (Jaro-Winkler; a nickname is the same given name)."""
GIVEN_NAME_WEIGHT: Final = 0.6
"""The same given name under another family name, beside a shared phone: with the phone's 0.5 it reaches the
default threshold. Family members sharing a phone have other given names; two people of one given name sharing one
phone are rarer than one person whose family name changed or was typed wrong. Beside a work domain or a company
(colleagues called John) it stays below the threshold."""
GIVEN_NAME_ONLY: Final = "given name"
"""The value of a name's evidence when only the given name is the same."""
TWO_ACCOUNTS: Final = 0.75
"""Two different user ids scale a pair's score by this: below the default threshold unless lowered."""
BLOCK_LIMIT: Final = 50
"""A bucket bigger than this is split by name prefixes (domains, companies) or skipped (a shared phone/mailbox)."""
SHARED_KEY_LIMIT: Final = 200
"""A phone or mailbox on more contacts than this is a switchboard or a role address, not a person."""

FREE_MAIL: Final = frozenset(
    {
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com",
        "mac.com", "yahoo.com", "ymail.com", "aol.com", "gmx.com", "gmx.de", "web.de", "mail.com", "proton.me",
        "protonmail.com", "fastmail.com", "fastmail.fm", "zoho.com", "yandex.com", "yandex.ru", "mail.ru",
        "qq.com", "163.com", "hotmail.co.uk", "yahoo.co.uk", "live.co.uk", "btinternet.com", "comcast.net",
    }
)  # fmt: skip
"""Domains shared by strangers: a shared free-mail domain says nothing."""

_DROP_DOTS_AND_TAGS: Final = ("gmail.com", "googlemail.com")
_DROP_TAGS: Final = (
    "outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk", "live.co.uk", "outlook.co.uk",
    "icloud.com", "me.com", "mac.com", "fastmail.com", "fastmail.fm",
)  # fmt: skip
MAILBOX_RULES: Final[dict[str, tuple[bool, bool]]] = {
    **dict.fromkeys(_DROP_DOTS_AND_TAGS, (True, True)),
    **dict.fromkeys(_DROP_TAGS, (False, True)),
}
"""domain: (dots ignored, +tags ignored), for the providers that document delivering such forms to one mailbox."""
_CANONICAL_DOMAIN: Final = {"googlemail.com": "gmail.com"}

_WORD: Final = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_NICKNAMES: Final = NickNamer()


@dataclass(frozen=True, slots=True)
class Candidate:
    """What find_duplicates reads of one contact (not merged away)."""

    key: int
    """The backend's row key (its `seq`): the order groups are listed in, and what the cursor carries."""
    id: str
    name: str | None = None
    user_id: str | None = None
    emails: tuple[str, ...] = ()
    """Normalised emails: its email methods and email identities."""
    phones: tuple[str, ...] = ()
    """E.164 phones: its phone methods and phone identities."""
    companies: tuple[str, ...] = ()
    """Company ids and names."""


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: EvidenceKind
    value: str
    """The shared key (for a name: the similarity, two decimals)."""
    ids: tuple[str, str]


@dataclass(slots=True)
class Group:
    """Contacts that are probably one person, oldest first, with the evidence that joined them."""

    ids: list[str]
    keys: list[int]
    score: float
    evidence: list[Evidence] = field(default_factory=list[Evidence])


# ---------- keys ----------


def mailbox(email: str) -> tuple[str, bool]:
    """(the mailbox an address delivers to, whether a provider rule changed it). Unknown domains keep the address."""
    local, _, domain = email.casefold().rpartition("@")
    rule = MAILBOX_RULES.get(domain)
    if rule is None or not local:
        return email.casefold(), False
    dots, tags = rule
    base = local.split("+", 1)[0] if tags else local
    if dots:
        base = base.replace(".", "")
    canonical = f"{base}@{_CANONICAL_DOMAIN.get(domain, domain)}"
    return canonical, canonical != email.casefold()


def user_id_key(user_id: str) -> str:
    return "".join(user_id.casefold().split())


def words(name: str | None) -> tuple[str, ...]:
    """A name's words, case-folded, punctuation dropped."""
    return tuple(w.casefold() for w in _WORD.findall(name or ""))


# ---------- names ----------


@cache
def _forms(word: str) -> frozenset[str]:
    """A given name with its nicknames and the names it is a nickname of."""
    return frozenset({word, *_NICKNAMES.nicknames_of(word), *_NICKNAMES.canonicals_of(word)})


def _given_similarity(a: str, b: str) -> float:
    if len(a) == 1 or len(b) == 1:  # an initial
        return 1.0 if a[0] == b[0] else 0.0
    if b in _forms(a) or a in _forms(b):
        return 1.0
    return JaroWinkler.similarity(a, b)


def name_similarity(a: str | None, b: str | None) -> float | None:
    """How alike two names are (0..1), or None when either has no name. Given names compare with nicknames and
    initials; family names with Jaro-Winkler; a one-word name is compared with the other's given name, or
    with its family name (then at most `ONE_WORD_AT_MOST`); a name split or joined differently compares as one word."""
    return _similarity(words(a), words(b))


def _similarity(wa: tuple[str, ...], wb: tuple[str, ...]) -> float | None:
    if not wa or not wb:
        return None
    if len(wa) == 1 or len(wb) == 1:
        one, other = (wa, wb) if len(wa) == 1 else (wb, wa)
        given = _given_similarity(one[0], other[0])
        if len(other) == 1:
            return given
        # "Alec" against "Alec Webb" names him; "Webb" against "Alec Webb" fits every Webb of the family, so a
        # family name alone is never more than compatible.
        family = max(JaroWinkler.similarity(one[0], w) for w in other[1:])
        return max(given, min(family, ONE_WORD_AT_MOST))
    given = _given_similarity(wa[0], wb[0])
    family = JaroWinkler.similarity(wa[-1], wb[-1])
    # A swapped order ("Smith John") is the same name; so is one split or joined ("Black Well", "Blackwell").
    swapped = min(JaroWinkler.similarity(wa[0], wb[-1]), JaroWinkler.similarity(wa[-1], wb[0]))
    # Joined, only when nearly equal: "Thom As Clarke" is Thomas Clarke, whom "Sam Clarke" is not.
    joined = JaroWinkler.similarity("".join(wa), "".join(wb)) if len(wa) != len(wb) else 0.0
    joined = joined if joined >= JOINED_AT_LEAST else 0.0
    # Any other order of the same words ("Van Wijk James"): the words compared in sorted order, each to its own.
    reordered = (
        min(JaroWinkler.similarity(x, y) for x, y in zip(sorted(wa), sorted(wb), strict=True))
        if len(wa) == len(wb) > 2
        else 0.0
    )
    return max(min(given, family), swapped, joined, reordered)


def _same_given_name(wa: tuple[str, ...], wb: tuple[str, ...]) -> bool:
    """Whether two names of two words or more, not alike as wholes, have the same given name ("Hannah Dixon" and
    "Hannah Bloomfield": a family name changed on marriage, or a wrong one typed). An initial is not enough."""
    return (
        len(wa) > 1
        and len(wb) > 1
        and len(wa[0]) > 1
        and len(wb[0]) > 1
        and _given_similarity(wa[0], wb[0]) >= SAME_GIVEN_NAME
    )


def _name_weight(similarity: float) -> float:
    return next((weight for at_least, weight in NAME_WEIGHTS if similarity >= at_least), 0.0)


# ---------- pairs ----------


Keys = dict[EvidenceKind, frozenset[str]]
"""A contact's blocking keys by kind (each key also evidence when two contacts share it)."""
PERSONAL: Final = frozenset({"user_id", "email", "mailbox", "tagged"})
"""Keys one person holds: two contacts sharing one are one person even when their names differ (a typo, a
new surname, a name field swapped or left blank); a phone, a domain or a company is shared by families and
colleagues, so with those a name that differs counts against the pair."""


def keys_of(c: Candidate) -> Keys:
    """A contact's keys: its emails; the mailboxes of its provider addresses; for other domains the address
    without its `+tag` (and with it); its non-free-mail domains; its phones; its user id; its companies."""
    emails: set[str] = set()
    boxes: set[str] = set()
    tagged: set[str] = set()
    domains: set[str] = set()
    for email in c.emails:
        address = email.casefold()
        emails.add(address)
        local, _, domain = address.rpartition("@")
        rule = MAILBOX_RULES.get(domain)
        if rule is not None:
            boxes.add(mailbox(address)[0])
        else:
            tagged.add(address)
            if "+" in local:
                tagged.add(f"{local.split('+', 1)[0]}@{domain}")
            if domain not in FREE_MAIL:
                domains.add(domain)
    keys: Keys = {}
    found: tuple[tuple[EvidenceKind, set[str]], ...] = (
        ("email", emails),
        ("mailbox", boxes),
        ("tagged", tagged),
        ("email_domain", domains),
        ("phone", set(c.phones)),
        ("user_id", {user_id_key(c.user_id)} if c.user_id is not None else set[str]()),
        ("company", {" ".join(words(company)) or company.casefold() for company in c.companies}),
    )
    for kind, values in found:
        if values:
            keys[kind] = frozenset(values)
    return keys


_NONE: Final[frozenset[str]] = frozenset()


def score_pair(
    a: Candidate, b: Candidate, known: tuple[Keys, Keys, tuple[str, ...], tuple[str, ...]] | None = None
) -> tuple[float, list[Evidence]]:
    """The chance-like score (0..1) that two contacts are one person, and the evidence for it. No shared key: 0.
    `known`: the two contacts' `keys_of` and name `words`, when the caller has them."""
    ka, kb, wa, wb = known if known is not None else (keys_of(a), keys_of(b), words(a.name), words(b.name))
    ids = (a.id, b.id)
    evidence: list[Evidence] = []
    common = ka.keys() & kb.keys()
    for kind in WEIGHTS:
        if kind not in common:
            continue
        shared = ka[kind] & kb[kind]
        if kind in ("mailbox", "tagged"):
            shared -= ka.get("email", _NONE) & kb.get("email", _NONE)
        if shared:
            evidence.append(Evidence(kind, min(shared), ids))
    if not evidence:
        return 0.0, []
    # The strongest form of a shared address counts once: same email > same mailbox > the same but for a +tag.
    kinds = {e.kind for e in evidence}
    if "email" in kinds or "mailbox" in kinds:
        evidence = [e for e in evidence if e.kind != "tagged"]
        if "email" in kinds:
            evidence = [e for e in evidence if e.kind != "mailbox"]
        kinds = {e.kind for e in evidence}
    miss = 1.0
    for e in evidence:
        miss *= 1.0 - WEIGHTS[e.kind]
    similarity = _similarity(wa, wb)
    differ = False
    if similarity is not None:
        weight = _name_weight(similarity)
        given_only = not weight and "phone" in kinds and _same_given_name(wa, wb)
        if weight:
            evidence.append(Evidence("name", f"{similarity:.2f}", ids))
            miss *= 1.0 - weight
        elif given_only:
            evidence.append(Evidence("name", GIVEN_NAME_ONLY, ids))
            miss *= 1.0 - GIVEN_NAME_WEIGHT
        differ = similarity < NAMES_DIFFER_BELOW and not given_only
    score = 1.0 - miss
    if differ and not kinds & PERSONAL:
        score *= 0.5  # a shared phone or workplace, and another name: a family member or a colleague
    if a.user_id is not None and b.user_id is not None and "user_id" not in kinds:
        score *= TWO_ACCOUNTS  # two user ids: two accounts of one product, which may well be two people
    return round(score, 3), evidence


def _prefixes(c: Candidate) -> set[str]:
    return {w[:2] for w in words(c.name) if len(w) > 1} or {""}


def candidate_pairs(candidates: Sequence[Candidate], keys: Sequence[Keys] | None = None) -> set[tuple[int, int]]:
    """Index pairs (i < j) sharing a blocking key (`keys`: each candidate's `keys_of`, when the caller has them)."""
    keys = keys if keys is not None else [keys_of(c) for c in candidates]
    buckets: dict[tuple[str, str], list[int]] = defaultdict(list)
    for index, held in enumerate(keys):
        for kind, values in held.items():
            for value in values:
                buckets[(kind, value)].append(index)
    pairs: set[tuple[int, int]] = set()
    for (kind, _), members in buckets.items():
        if len(members) < 2:
            continue
        if len(members) > BLOCK_LIMIT:
            if kind not in ("company", "email_domain"):
                if len(members) > SHARED_KEY_LIMIT:
                    continue
                _all_pairs(members, pairs)
                continue
            split: dict[str, list[int]] = defaultdict(list)
            for index in members:
                for prefix in _prefixes(candidates[index]):
                    split[prefix].append(index)
            for sub in split.values():
                if 1 < len(sub) <= BLOCK_LIMIT * 4:
                    _all_pairs(sub, pairs)
            continue
        _all_pairs(members, pairs)
    return pairs


def _all_pairs(members: list[int], pairs: set[tuple[int, int]]) -> None:
    for x, i in enumerate(members):
        for j in members[x + 1 :]:
            pairs.add((i, j) if i < j else (j, i))


# ---------- groups ----------


@contextmanager
def _cyclic_gc_paused() -> Generator[None]:
    """Grouping builds a few small objects per contact and per pair, hundreds of thousands at 100k contacts, and
    the cyclic collector would traverse them again and again (it doubled the time); none of them form cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def find_groups(candidates: Iterable[Candidate], *, min_score: float = DEFAULT_MIN_SCORE) -> list[Group]:
    """Every group of two or more contacts joined by pairs scoring at least `min_score`, oldest member first."""
    with _cyclic_gc_paused():
        return _groups(candidates, min_score)


def _groups(candidates: Iterable[Candidate], min_score: float) -> list[Group]:
    people = sorted(candidates, key=lambda c: c.key)
    keys = [keys_of(c) for c in people]
    names = [words(c.name) for c in people]
    scored: list[tuple[float, int, int, list[Evidence]]] = []
    for i, j in candidate_pairs(people, keys):
        score, evidence = score_pair(people[i], people[j], (keys[i], keys[j], names[i], names[j]))
        if score >= min_score:
            scored.append((score, i, j, evidence))
    scored.sort(key=lambda pair: (-pair[0], pair[1], pair[2]))
    parent = list(range(len(people)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    joined: dict[int, tuple[float, list[Evidence]]] = {}
    for score, i, j, evidence in scored:
        ri, rj = root(i), root(j)
        if ri == rj:
            continue
        low, high = sorted((ri, rj))
        parent[high] = low
        score_low, evidence_low = joined.pop(low, (1.0, []))
        score_high, evidence_high = joined.pop(high, (1.0, []))
        joined[low] = (min(score_low, score_high, score), [*evidence_low, *evidence_high, *evidence])
    members: dict[int, list[int]] = defaultdict(list)
    for index in range(len(people)):
        members[root(index)].append(index)
    groups = [
        Group(
            ids=[people[i].id for i in found],
            keys=[people[i].key for i in found],
            score=joined[r][0],
            evidence=joined[r][1],
        )
        for r, found in members.items()
        if len(found) > 1
    ]
    groups.sort(key=lambda g: g.keys[0])
    return groups


# ---------- from a backend's rows, to a page ----------


ContactRow = tuple[int, str, str | None, str | None, JsonColumn]
"""What a backend reads of each contact not merged away: seq, id, name (else display name), user_id, companies."""
ValueRow = tuple[int, str, str]
"""An email or phone of a contact, from its methods and identities alike: seq, "email" | "phone", value."""


def candidates_from(contacts: Iterable[ContactRow], values: Iterable[ValueRow]) -> list[Candidate]:
    """Candidates from a backend's rows: contacts as (seq, id, name or display name, user_id, companies) and
    values as (seq, kind "email" | "phone", value), from methods and identities alike."""
    emails: dict[int, list[str]] = defaultdict(list)
    phones: dict[int, list[str]] = defaultdict(list)
    for seq, kind, value in values:
        held = emails[seq] if kind == "email" else phones[seq]
        if value not in held:
            held.append(value)
    found: list[Candidate] = []
    for seq, id_, name, user_id, companies in contacts:
        if not companies or companies == "[]":
            listed: object = []
        else:
            listed = json.loads(companies) if isinstance(companies, str) else companies
        names = tuple(
            str(c.get(part))
            for c in cast(list[dict[str, object]], listed if isinstance(listed, list) else [])
            for part in ("id", "name")
            if c.get(part)
        )
        found.append(
            Candidate(
                key=seq,
                id=id_,
                name=name,
                user_id=user_id,
                emails=tuple(emails.get(seq, ())),
                phones=tuple(phones.get(seq, ())),
                companies=names,
            )
        )
    return found


def duplicate_page(
    contacts: Sequence[ContactRow], values: Sequence[ValueRow], call: FindDuplicatesInput
) -> DuplicatePage:
    """The page of groups after the call's cursor (a group's oldest member's row key), from a backend's rows.
    Seconds of CPU at 100k contacts: a backend runs it on a worker thread, never on the event loop."""
    after = decode_cursor(call.cursor) if call.cursor is not None else 0
    with _cyclic_gc_paused():
        candidates = candidates_from(contacts, values)
        found = _groups(candidates, call.min_score)
    by_key = {c.key: c for c in candidates}
    groups = [g for g in found if g.keys[0] > after]
    page = groups[: call.limit]
    return DuplicatePage(
        provider=PROVIDER,
        groups=[
            DuplicateGroup(
                score=g.score,
                contacts=[_summary(by_key[key]) for key in g.keys],
                evidence=[DuplicateEvidence(kind=e.kind, value=e.value, ids=list(e.ids)) for e in g.evidence],
            )
            for g in page
        ],
        next_cursor=encode_cursor(page[-1].keys[0]) if len(groups) > call.limit else None,
    )


def _summary(c: Candidate) -> ContactSummary:
    return ContactSummary(
        id=c.id,
        name=c.name,
        user_id=c.user_id,
        email=c.emails[0] if c.emails else None,
        phone=c.phones[0] if c.phones else None,
    )
