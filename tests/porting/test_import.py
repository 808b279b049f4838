"""Importing files into the store: new data from CSV and vCard, the summary, the rejected-rows file, importing
twice, and an import interrupted between rows that a second run finishes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import anyio
import pytest

from contact_mcp import Settings
from contact_mcp.errors import ProviderUnavailable
from contact_mcp.models import Outcome
from contact_mcp.porting import normalising
from contact_mcp.porting.readers import Format, read_rows
from contact_mcp.porting.report import RejectedFile, Summary
from contact_mcp.porting.rows import Row
from contact_mcp.porting.run import Progress, import_file, import_rows, read_through, stopped
from contact_mcp.store import ContactRecord, LocalStore
from contact_mcp.store.rules import ImportContactInput, RowError
from tests.porting.test_readers import APPLE, GOOGLE, V4

pytestmark = pytest.mark.anyio

CSV = (
    "email,phone,name,user_id,username\n"
    "ann@example.com,+14155550100,Ann,u-ann,\n"
    ",+14155550101,Mom,,\n"
    ",+14155550101,Dad,,\n"
    "not-an-email,,Nobody,,\n"
    ",+14155550102,,,\n"
    ",,Carol,,carol\n"
    "bob@example.com,+1 415 555 0103,Bob,u-ann,\n"
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[LocalStore]:
    opened = LocalStore.open(tmp_path / "contacts.db")
    yield opened
    await opened.aclose()


async def _records(store: LocalStore) -> list[ContactRecord]:
    return [record async for batch in store.iter_records() for record in batch]


def _shape(records: list[ContactRecord]) -> list[tuple[object, ...]]:
    """What a contact of new data is, without its generated ids and timestamps."""
    return [
        (
            r.name,
            r.user_id,
            r.username,
            sorted((m.channel, m.value, m.primary, m.verified_at) for m in r.methods),
        )
        for r in records
    ]


async def _import(store: LocalStore, path: Path, rejected: Path | None = None) -> Summary:
    done = Progress(Summary())
    with read_through(path, None) as source:
        await import_file(
            store, source, rejected_path=rejected or path.with_suffix(".rejected"), default_region="US", done=done
        )
    return done.summary


async def test_csv_rows_become_contacts_and_bad_rows_go_to_the_rejected_file_with_line_and_reason(
    store: LocalStore, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(CSV)
    rejected = tmp_path / "out" / "rejected.jsonl"
    rejected.parent.mkdir()  # the command refuses a directory that does not exist, before the import begins

    summary = await _import(store, path, rejected)

    assert (summary.created, summary.updated, summary.unchanged, summary.rejected) == (4, 0, 0, 3)
    assert _shape(await _records(store)) == [
        ("Ann", "u-ann", None, [("email", "ann@example.com", True, None), ("phone", "+14155550100", True, None)]),
        ("Mom", None, None, [("phone", "+14155550101", True, None)]),
        ("Dad", None, None, [("phone", "+14155550101", True, None)]),
        ("Carol", None, "carol", []),
    ]
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert [(e["line"], e.get("field")) for e in entries] == [(5, "email"), (6, None), (8, "user_id")]
    assert "not a valid email address" in entries[0]["reason"]
    assert "a phone alone is no identity" in entries[1]["reason"]
    # Bob's row would update Ann (user_id u-ann), then Ann's row would undo it on every run: refused, naming line 2.
    assert "same contact as line 2 (user_id u-ann)" in entries[2]["reason"]
    assert entries[0]["row"] == {"email": "not-an-email", "phone": "", "name": "Nobody", "user_id": "", "username": ""}


async def test_vcard_contacts_from_apple_google_and_vcard4(store: LocalStore, tmp_path: Path) -> None:
    path = tmp_path / "contacts.vcf"
    path.write_text(APPLE + GOOGLE + V4, newline="")

    summary = await _import(store, path)

    assert (summary.created, summary.rejected) == (3, 0)
    assert _shape(await _records(store)) == [
        (
            "Johnny Appleseed",
            None,
            None,
            [
                ("email", "j.apple@example.org", False, None),
                ("email", "johnny@example.com", True, None),
                ("phone", "+14155550123", True, None),  # (415) 555-0123 read in CONTACT_MCP_DEFAULT_REGION=US
                ("phone", "+14155550124", False, None),
            ],
        ),
        ("Mom", None, None, [("phone", "+14155550199", True, None)]),
        (
            "Dr. Jane Q. Doe",
            None,
            None,
            [
                ("email", "jane@example.com", True, None),
                ("phone", "+442079460000", False, None),
                ("phone", "+442079460958", True, None),
            ],
        ),
    ]


async def test_importing_twice_changes_nothing(store: LocalStore, tmp_path: Path) -> None:
    csv_path, vcf_path = tmp_path / "people.csv", tmp_path / "contacts.vcf"
    csv_path.write_text(CSV)
    vcf_path.write_text(APPLE + GOOGLE + V4, newline="")
    await _import(store, csv_path)
    await _import(store, vcf_path)
    before = await _records(store)

    again_csv = await _import(store, csv_path)
    again_vcf = await _import(store, vcf_path)

    assert (again_csv.created, again_csv.updated, again_csv.unchanged, again_csv.rejected) == (0, 0, 4, 3)
    assert (again_vcf.created, again_vcf.updated, again_vcf.unchanged, again_vcf.rejected) == (0, 0, 3, 0)
    assert await _records(store) == before


class PowerCut(Exception):
    pass


def _cut_after(rows: Iterator[Row], count: int) -> Iterator[Row]:
    for _ in range(count):
        yield next(rows)
    raise PowerCut


async def test_an_import_interrupted_between_rows_leaves_whole_contacts_and_running_it_again_finishes(
    store: LocalStore, tmp_path: Path
) -> None:
    path = tmp_path / "contacts.vcf"
    path.write_text(APPLE + GOOGLE + V4, newline="")
    done = Progress(Summary())

    with pytest.raises(PowerCut):
        await import_rows(
            store,
            _cut_after(read_rows(path, "vcf"), 3),  # the third card is read, then the power goes
            default_region="US",
            rejected=RejectedFile(tmp_path / "rejected"),
            done=done,
            batch_rows=2,
        )

    assert (done.line, done.summary.created) == (13, 2)  # the first batch, committed: Johnny's and Mom's cards
    johnny, mom = await _records(store)
    assert (len(johnny.methods), len(mom.methods)) == (4, 1)  # each whole
    again = await _import(store, path)
    assert (again.created, again.unchanged) == (1, 2)
    clean = LocalStore.open(tmp_path / "clean.db")
    try:
        await _import(clean, path)
        assert _shape(await _records(store)) == _shape(await _records(clean))
    finally:
        await clean.aclose()


async def test_restoring_a_row_whose_user_id_belongs_to_another_contact_is_rejected(
    store: LocalStore, tmp_path: Path, settings: Settings
) -> None:
    await _import(store, _write(tmp_path / "a.csv", "email,user_id\nann@example.com,u1\n"))
    (ann,) = await _records(store)
    other = ann.model_copy(update={"id": "0b7ad0c6-2f43-4c43-9d1e-5a4d0f1c9b7e", "methods": []})
    path = _write(tmp_path / "export.jsonl", other.model_dump_json() + "\n")

    summary = await _import(store, path, tmp_path / "rejected.jsonl")

    assert (summary.created, summary.rejected) == (0, 1)
    (entry,) = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert entry["line"] == 1
    assert entry["field"] == "user_id"
    assert [r.id for r in await _records(store)] == [ann.id]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("head_start", [0, 3], ids=["all-in-worker", "first-rows-here"])
@pytest.mark.parametrize("fmt", ["csv", "vcf"])
async def test_rows_normalised_in_a_worker_process_import_as_rows_normalised_here(
    store: LocalStore, tmp_path: Path, fmt: Format, head_start: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker takes about a second to start: a small file would be normalised here before it is up. Bound the
    # head start, so the worker normalises every row, or every row after the first three.
    monkeypatch.setattr(normalising, "HEAD_START_ROWS", head_start)
    path = _write(tmp_path / f"contacts.{fmt}", CSV if fmt == "csv" else APPLE + GOOGLE + V4)
    clean = LocalStore.open(tmp_path / "clean.db")
    summaries: list[Summary] = []
    try:
        for target, in_worker in ((store, True), (clean, False)):
            done = Progress(Summary())
            rejected = RejectedFile(tmp_path / f"rejected-{in_worker}")
            await import_rows(
                target,
                read_rows(path, fmt),
                default_region="US",
                rejected=rejected,
                done=done,
                batch_rows=2,
                in_worker=in_worker,
            )
            rejected.close()
            summaries.append(done.summary)
        assert _shape(await _records(store)) == _shape(await _records(clean))
    finally:
        await clean.aclose()

    assert summaries[0] == summaries[1]
    assert summaries[0].created > 0
    assert (summaries[0].rejected > 0) == (fmt == "csv")
    written = [tmp_path / f"rejected-{in_worker}" for in_worker in (True, False)]
    assert [path.read_text() if path.exists() else None for path in written] == [
        path.read_text() if path.exists() else None for path in reversed(written)
    ]


async def test_text_with_a_control_character_is_rejected_by_the_tools_rule_and_tab_and_newline_are_text(
    store: LocalStore, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "people.csv",
        "email,name,username\n"
        "ann@example.com,Ann\x00,\n"
        'bob@example.com,"\x1b[31mBob",\n'
        "cy@example.com,Cy,cy\x07\n"
        "dee\x7f@example.com,Dee,\n"
        'eve@example.com,"Eve\r\nSmith",\n'
        'fay@example.com,"Fay\tof\nthe hills",\n',
    )

    summary = await _import(store, path, tmp_path / "rejected.jsonl")

    assert (summary.created, summary.rejected) == (1, 5)
    assert [r.name for r in await _records(store)] == ["Fay\tof\nthe hills"]
    entries = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(e["line"], e["field"], e["reason"]) for e in entries] == [
        (2, "name", "name contains the control character U+0000"),
        (3, "name", "name contains the control character U+001B"),
        (4, "username", "username contains the control character U+0007"),
        (5, "email", "email contains the control character U+007F"),
        (6, "name", "name contains the control character U+000D"),  # the tools take tab and newline, not CR
    ]
    assert {e["hint"] for e in entries} == {
        "Remove control characters; text may hold tab and newline but no other control character"
    }
    assert entries[1]["row"] == {"email": "bob@example.com", "name": "\x1b[31mBob", "username": ""}


async def test_restoring_a_contact_with_a_control_character_in_its_text_is_rejected(
    store: LocalStore, tmp_path: Path
) -> None:
    await _import(store, _write(tmp_path / "a.csv", "email,name\nann@example.com,Ann\n"))
    (ann,) = await _records(store)
    bell = ann.model_copy(update={"name": "Ann\x07"})
    escaped = ann.model_copy(update={"custom_fields": {"note": "\x1b[2J"}})
    path = _write(tmp_path / "export.jsonl", bell.model_dump_json() + "\n" + escaped.model_dump_json() + "\n")

    summary = await _import(store, path, tmp_path / "rejected.jsonl")

    assert (summary.unchanged, summary.updated, summary.rejected) == (0, 0, 2)
    entries = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(e["line"], e["field"]) for e in entries] == [(1, "name"), (2, "custom_fields.note")]
    assert await _records(store) == [ann]


def test_a_stop_that_running_again_would_repeat_says_what_must_be_fixed_first() -> None:
    done = Progress(Summary(), line=40)
    hint = "The operator must give the server's role write access to CONTACT_MCP_DB; reads still work"
    refused = ProviderUnavailable("the contact database refused the write", hint=hint, retryable=False)
    gone = ProviderUnavailable("the contact database is unreachable (connection lost)", hint="retry in a few seconds")

    assert stopped(done, refused).endswith(f"each whole: {hint}, then run the same import again")
    assert stopped(done, gone).endswith("each whole: run the same import again to finish")


async def test_a_phone_and_name_row_for_a_contact_an_earlier_row_imports_by_email_is_rejected_naming_it(
    store: LocalStore, tmp_path: Path
) -> None:
    # Row 3 finds, by phone and name, the contact row 2 imports by email: the two overwrote each other's locale on
    # every run, and importing the file again was never unchanged.
    path = _write(
        tmp_path / "people.csv",
        "email,phone,name,locale\n"
        "ann@example.com,+14155550101,Ann Lee,en\n"
        ",+14155550101,ann  lee,fr\n"
        "bob@example.com,+14155550101,Ann Lee,de\n",  # keyed by its own email: another contact, same phone
    )
    rejected = tmp_path / "rejected.jsonl"

    first = await _import(store, path, rejected)
    entries = [json.loads(line) for line in rejected.read_text().splitlines()]
    again = await _import(store, path, rejected)

    assert (first.created, first.updated, first.rejected) == (2, 0, 1)
    assert [(entry["line"], entry["reason"]) for entry in entries] == [
        (3, "the row names the same contact as line 2 (phone and name +14155550101 ann lee)")
    ]
    assert (again.created, again.updated, again.unchanged, again.rejected) == (0, 0, 2, 1)
    assert sorted(record.locale or "" for record in await _records(store)) == ["de", "en"]


async def test_a_second_restore_row_for_one_contact_is_rejected_whatever_the_case_of_its_id(
    store: LocalStore, tmp_path: Path
) -> None:
    await _import(store, _write(tmp_path / "a.csv", "email,name\nann@example.com,Ann\n"))
    (ann,) = await _records(store)
    renamed = ann.model_copy(update={"id": ann.id.upper(), "name": "Ann Lee"})
    path = _write(tmp_path / "export.jsonl", ann.model_dump_json() + "\n" + renamed.model_dump_json() + "\n")
    rejected = tmp_path / "rejected.jsonl"

    first = await _import(store, path, rejected)
    again = await _import(store, path, rejected)

    assert (first.unchanged, first.updated, first.rejected) == (1, 0, 1)
    assert (again.unchanged, again.updated, again.rejected) == (1, 0, 1)
    assert await _records(store) == [ann]


async def test_a_batch_committed_as_the_import_is_stopped_is_counted(tmp_path: Path) -> None:
    # Stopped (Ctrl-C) while it waited for a batch the store had committed but not yet answered for, the import
    # cancelled that batch's task with it: the rows were in the store, and the stop said fewer than were.
    committed, answer = anyio.Event(), anyio.Event()
    batches: list[int] = []

    class Committing:
        async def import_batch(self, items: Sequence[ContactRecord | ImportContactInput]) -> list[Outcome | RowError]:
            batches.append(len(items))
            committed.set()
            await answer.wait()  # committed; the answer is on its way back
            return ["created"] * len(items)

    path = _write(tmp_path / "people.csv", "email\n" + "".join(f"p{n}@example.com\n" for n in range(4)))
    done = Progress(Summary())
    rejected = RejectedFile(tmp_path / "rejected.jsonl")
    importing = anyio.CancelScope()

    async def stop_once_committed() -> None:
        await committed.wait()
        await anyio.sleep(0.05)  # the import waits for the first batch, the next one in hand
        importing.cancel()
        await anyio.sleep(0.05)
        answer.set()

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(stop_once_committed)
        with importing:
            await import_rows(
                Committing(), read_rows(path, "csv"), default_region=None, rejected=rejected, done=done, batch_rows=2
            )

    assert importing.cancelled_caught
    assert batches == [2]
    assert (done.summary.created, done.line) == (2, 3)
