"""Import files read into typed rows: JSONL exports, CSV with a header of contact fields, vCard 3/4 as address
books write them; each row numbered by the line it starts on, unreadable rows rejected with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from contact_mcp.porting.readers import Format, ImportFileError, count_rows, detect_format, read_rows
from contact_mcp.porting.rows import NewDataRow, RejectedRow, RestoreRow, Row

# An iPhone/macOS Contacts export (vCard 3.0, CRLF, grouped item1.EMAIL, folded NOTE), a Google Contacts one
# (3.0), and a vCard 4.0 card with tel: URIs and PREF.
APPLE = (
    "BEGIN:VCARD\r\n"
    "VERSION:3.0\r\n"
    "PRODID:-//Apple Inc.//iPhone OS 17.5//EN\r\n"
    "N:Appleseed;Johnny;;;\r\n"
    "FN:Johnny Appleseed\r\n"
    "item1.EMAIL;type=INTERNET;type=HOME:j.apple@Example.org\r\n"
    "EMAIL;type=INTERNET;type=WORK;type=pref:johnny@example.com\r\n"
    "TEL;type=HOME;type=VOICE:+1 (415) 555-0124\r\n"
    "TEL;type=CELL;type=VOICE;type=pref:(415) 555-0123\r\n"
    "NOTE:met at the orchard\\, bring a long ladder for the tall trees near the \r\n"
    " north gate\r\n"
    "END:VCARD\r\n"
)
GOOGLE = "BEGIN:VCARD\nVERSION:3.0\nFN:Mom\nN:;Mom;;;\nTEL;TYPE=CELL:+1 415-555-0199\nEND:VCARD\n"
V4 = (
    "BEGIN:VCARD\n"
    "VERSION:4.0\n"
    "N:Doe;Jane;Q.;Dr.;\n"
    'TEL;VALUE=uri;TYPE="voice,home":tel:+44-20-7946-0000\n'
    'TEL;VALUE=uri;TYPE="voice,cell";PREF=1:tel:+44-20-7946-0958\n'
    "EMAIL;TYPE=work:jane@example.com\n"
    "END:VCARD\n"
)


def _rows(path: Path, fmt: Format | None = None) -> list[Row]:
    return list(read_rows(path, fmt or detect_format(path)))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


# ---------- vCard ----------


def test_vcard_apple_google_and_v4_cards_become_rows_numbered_by_their_begin_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "contacts.vcf", APPLE + GOOGLE + "\n" + V4)
    apple, google, v4 = _rows(path)
    assert isinstance(apple, NewDataRow)
    assert apple.line == 1
    assert apple.name == "Johnny Appleseed"
    assert apple.emails == ("johnny@example.com", "j.apple@Example.org")  # TYPE=pref first
    assert apple.phones == ("(415) 555-0123", "+1 (415) 555-0124")
    assert isinstance(google, NewDataRow)
    assert (google.line, google.name, google.emails, google.phones) == (13, "Mom", (), ("+1 415-555-0199",))
    assert isinstance(v4, NewDataRow)
    assert v4.line == 20
    assert v4.phones == ("+44-20-7946-0958", "+44-20-7946-0000")  # PREF=1 first, tel: URIs read as numbers
    assert v4.emails == ("jane@example.com",)
    assert v4.name == "Dr. Jane Q. Doe"  # no FN: N's parts
    assert count_rows(path, "vcf") == 3


def test_the_vcard_row_count_is_every_row_read_stray_text_and_unended_cards_included(tmp_path: Path) -> None:
    # It counted BEGIN:VCARD lines: a line outside any card is a (rejected) row too, and the bar went past its end.
    text = "stray text\n" + APPLE + "more stray text\nBEGIN:VCARD\nVERSION:3.0\nFN:Never Ended\n" + GOOGLE
    path = _write(tmp_path, "contacts.vcf", text)

    rows = _rows(path)

    assert [isinstance(row, NewDataRow) for row in rows] == [False, True, False, False, True]
    assert count_rows(path, "vcf") == len(rows)


def test_vcard_folded_lines_are_unfolded(tmp_path: Path) -> None:
    card = "BEGIN:VCARD\nVERSION:3.0\nFN:Ana Mar\n ía López\nEMAIL:ana@exa\n mple.com\nEND:VCARD\n"
    (row,) = _rows(_write(tmp_path, "a.vcf", card))
    assert isinstance(row, NewDataRow)
    assert row.name == "Ana María López"
    assert row.emails == ("ana@example.com",)


def test_vcard_quoted_printable_soft_line_breaks_join_the_value_they_break(tmp_path: Path) -> None:
    # Android and Samsung phones write quoted-printable into 3.0 cards, breaking a long value with a trailing "=" and
    # going on at the start of the next line. That line was taken for a property of its own and dropped: the name
    # was stored cut short ("Anna Mü"), the row counted as created.
    card = (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        "N;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;Anna;;;\r\n"
        "FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:Anna M=C3=BC=\r\nller\r\n"
        "NOTE;ENCODING=QUOTED-PRINTABLE:call me on=\r\nTEL:+1 415 555 0100 (a note, not a number)\r\n"
        "EMAIL:anna@example.de\r\nEND:VCARD\r\n"
    )
    (row,) = _rows(_write(tmp_path, "qp.vcf", card))
    assert isinstance(row, NewDataRow)
    assert row.name == "Anna Müller"
    assert row.emails == ("anna@example.de",)
    assert row.phones == ()


def test_vcard_a_bare_pref_parameter_puts_its_value_first(tmp_path: Path) -> None:
    # `TEL;HOME;PREF:` (older exporters' spelling of TYPE=pref) reaches vobject as a parameter without a name.
    card = "BEGIN:VCARD\nVERSION:3.0\nFN:John\nTEL;CELL:+1 415 555 0300\nTEL;HOME;PREF:+1 415 555 0301\nEND:VCARD\n"
    (row,) = _rows(_write(tmp_path, "pref.vcf", card))
    assert isinstance(row, NewDataRow)
    assert row.phones == ("+1 415 555 0301", "+1 415 555 0300")


def test_vcard_properties_an_import_does_not_keep_cannot_cost_the_contact(tmp_path: Path) -> None:
    card = (
        "BEGIN:VCARD\nVERSION:3.0\nFN:Ann\nPHOTO;ENCODING=b;TYPE=JPEG:!!!not base64\n more of it\n"
        "ADR;TYPE=home:;;1 Main St\nthis line is no property\nTEL:+14155550100\nEND:VCARD\n"
    )
    (row,) = _rows(_write(tmp_path, "photo.vcf", card))
    assert isinstance(row, NewDataRow)
    assert (row.name, row.phones) == ("Ann", ("+14155550100",))


def test_vcard_bad_cards_are_rejected_with_their_line_and_the_rest_are_read(tmp_path: Path) -> None:
    v21 = "BEGIN:VCARD\nVERSION:2.1\nN;ENCODING=QUOTED-PRINTABLE:=4A=C3=B6rg\nTEL;CELL:+14155550100\nEND:VCARD\n"
    garbage = "BEGIN:VCARD\nVERSION:3.0\nTEL;TYPE=CELL +1 415 555 0100\nEND:VCARD\n"
    unclosed = "BEGIN:VCARD\nVERSION:3.0\nFN:Cut Off\n"
    path = _write(tmp_path, "mixed.vcf", v21 + "stray text\n" + garbage + GOOGLE + unclosed)
    rows = _rows(path)
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("RejectedRow", 1),
        ("RejectedRow", 6),
        ("RejectedRow", 7),
        ("NewDataRow", 11),
        ("RejectedRow", 17),
    ]
    reasons = [r.reason for r in rows if isinstance(r, RejectedRow)]
    assert "vCard version 2.1 is not supported" in reasons[0]
    assert "outside" in reasons[1]
    assert "not a readable vCard" in reasons[2]
    assert "END:VCARD" in reasons[3]


# ---------- CSV ----------


def test_csv_header_names_fields_in_any_spelling_and_rows_carry_their_line(tmp_path: Path) -> None:
    text = (
        "\ufeffemail2,E-mail,Phone Number,NAME,User ID,username,Locale,phone_2\r\n"
        "ann@work.example,ann@example.com,+14155550100,Ann,u1,ann,en,+14155550101\r\n"
        "\r\n"
        ',"bob@example.com",,"Bob ""Bobby"" Jones\r\nthe second",,,,\r\n'
        ",,+14155550102,Mom,,,,\r\n"
    )
    path = _write(tmp_path, "people.csv", text)
    ann, bob, mom = _rows(path)
    assert isinstance(ann, NewDataRow)
    assert ann.line == 2
    assert ann.emails == ("ann@example.com", "ann@work.example")
    assert ann.phones == ("+14155550100", "+14155550101")
    assert (ann.name, ann.user_id, ann.username, ann.locale) == ("Ann", "u1", "ann", "en")
    assert isinstance(bob, NewDataRow)
    assert bob.line == 4  # the blank line 3 is skipped, and the quoted newline keeps Bob on line 4
    assert bob.name == 'Bob "Bobby" Jones\r\nthe second'
    assert isinstance(mom, NewDataRow)
    assert mom.line == 6
    assert count_rows(path, "csv") == 3


def test_csv_semicolon_delimited_as_spreadsheets_in_many_locales_write(tmp_path: Path) -> None:
    (row,) = _rows(_write(tmp_path, "eu.csv", "name;email\nAnn;ann@example.com\n"))
    assert isinstance(row, NewDataRow)
    assert (row.name, row.emails) == ("Ann", ("ann@example.com",))


def test_csv_row_with_the_wrong_number_of_cells_is_rejected(tmp_path: Path) -> None:
    rows = _rows(_write(tmp_path, "short.csv", "email,name\nann@example.com\nbob@example.com,Bob\n"))
    assert isinstance(rows[0], RejectedRow)
    assert rows[0].line == 2
    assert "1 cells; the header has 2" in rows[0].reason
    assert isinstance(rows[1], NewDataRow)


def test_csv_header_with_a_column_that_is_no_contact_field_refuses_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "google.csv", "Name,Given Name,E-mail 1 - Value\nAnn,Ann,ann@example.com\n")
    with pytest.raises(ImportFileError, match="'Given Name', 'E-mail 1 - Value'"):
        _rows(path)


def test_csv_header_naming_a_field_twice_refuses_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="names one field twice"):
        _rows(_write(tmp_path, "twice.csv", "name,Name\nA,B\n"))


def test_csv_columns_with_a_blank_header_are_ignored_and_a_row_with_a_value_under_one_is_rejected(
    tmp_path: Path,
) -> None:
    # `email,name,` (the trailing comma Excel and Sheets write) refused the whole file for a column named ''.
    text = (
        "email,,name, \r\n"
        "ann@example.com,,Ann,\r\n"
        "bob@example.com,x,Bob,\r\n"
        "cy@example.com,,Cy,y\r\n"
        "dee@example.com,,Dee\r\n"  # the nameless last cell left off
        "eve@example.com\r\n"  # a named cell left off too
        "fay@example.com,,Fay,,, \r\n"  # empty cells past the header's last column
        "gus@example.com,,Gus,,,z\r\n"  # and one that is not empty
    )
    path = _write(tmp_path, "sheet.csv", text)

    ann, bob, cy, dee, eve, fay, gus = _rows(path)

    assert isinstance(ann, NewDataRow)
    assert (ann.line, ann.emails, ann.name) == (2, ("ann@example.com",), "Ann")
    assert isinstance(bob, RejectedRow)
    assert bob.line == 3
    assert bob.reason == "the row has a value in a column the header row leaves unnamed: (column 2)"
    assert bob.hint is not None and "Name the column" in bob.hint
    assert bob.source == {"email": "bob@example.com", "(column 2)": "x", "name": "Bob", "(column 4)": ""}
    assert isinstance(cy, RejectedRow)
    assert (cy.line, cy.reason.endswith("(column 4)")) == (4, True)
    assert isinstance(dee, NewDataRow)
    assert (dee.line, dee.emails, dee.name) == (5, ("dee@example.com",), "Dee")
    assert isinstance(eve, RejectedRow)
    assert "1 cells; the header has 4" in eve.reason
    assert isinstance(fay, NewDataRow)
    assert (fay.line, fay.emails, fay.name) == (7, ("fay@example.com",), "Fay")
    assert isinstance(gus, RejectedRow)
    assert "6 cells; the header has 4" in gus.reason
    assert count_rows(path, "csv") == 7


def test_csv_header_naming_no_field_at_all_refuses_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImportFileError, match="the header row names no contact field"):
        _rows(_write(tmp_path, "blank.csv", ",,\nann@example.com,Ann,\n"))


def test_a_file_that_is_not_utf8_is_refused_before_any_row(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,email\nJörg,j@example.com\n".encode("latin-1"))
    with pytest.raises(ImportFileError, match="not UTF-8"):
        count_rows(path, "csv")


@pytest.mark.parametrize("rows_before", [0, 3, 3000, 70_000], ids=["first-line", "line-5", "line-3002", "past-1-MiB"])
def test_the_byte_that_is_not_utf8_is_named_by_its_place_in_the_file(tmp_path: Path, rows_before: int) -> None:
    # The text reader's error counts from the start of the chunk it was decoding: 3431 for a byte at 28007.
    head = "name,email\n" + "".join(f"Zoë {n},z{n}@example.com\n" for n in range(rows_before))
    path = tmp_path / "mixed.csv"
    path.write_bytes(head.encode() + "Jörg,j@example.com\n".encode("latin-1"))
    offset = len(head.encode()) + 1  # "J", then the latin-1 "ö"

    with pytest.raises(ImportFileError) as refused:
        count_rows(path, "csv")

    assert f"(line {rows_before + 2}, byte {offset})" in str(refused.value)


# ---------- JSONL ----------


def test_jsonl_lines_are_restore_rows_and_bad_lines_rejected(tmp_path: Path) -> None:
    good = (
        '{"id":"3f0c5a52-2b0e-4a8e-9d3e-1f1f1f1f1f1f","name":"Ann","created_at":"2026-01-01T00:00:00.000Z",'
        '"updated_at":"2026-01-01T00:00:00.000Z"}'
    )
    path = _write(tmp_path, "export.jsonl", f'{good}\n\nnot json\n{{"id": "x"}}\n')
    restore, garbage, partial = _rows(path)
    assert isinstance(restore, RestoreRow)
    assert (restore.line, restore.record.name) == (1, "Ann")
    assert isinstance(garbage, RejectedRow)
    assert garbage.line == 3
    assert "not an exported contact" in garbage.reason
    assert isinstance(partial, RejectedRow)
    assert partial.line == 4
    assert "created_at" in partial.reason


# ---------- format detection ----------


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("a.vcf", "", "vcf"),
        ("a.VCARD", "", "vcf"),
        ("a.csv", "", "csv"),
        ("a.ndjson", "", "jsonl"),
        ("contacts", "\n  BEGIN:VCARD\nEND:VCARD\n", "vcf"),
        ("contacts.txt", '{"id": 1}\n', "jsonl"),
        ("contacts.txt", "email\nann@example.com\n", "csv"),
    ],
    ids=["vcf", "vcard-upper", "csv", "ndjson", "sniff-vcard", "sniff-jsonl", "sniff-csv"],
)
def test_format_by_suffix_else_by_the_first_line(tmp_path: Path, name: str, text: str, expected: Format) -> None:
    assert detect_format(_write(tmp_path, name, text)) == expected


# ---------- CSV that cannot be read on ----------


@pytest.mark.parametrize(
    "text",
    [
        'email,name\nann@example.com,Ann\nbob@example.com,"Bob\n',
        'email,name\nann@example.com,Ann\nbob@example.com,"Bob\ncy@example.com,Cy\ndee@example.com,Dee\n',
    ],
    ids=["at-the-end", "swallowing-the-rows-after-it"],
)
def test_csv_quote_that_is_never_closed_refuses_the_file_naming_the_line(tmp_path: Path, text: str) -> None:
    # Read leniently, the open quote ran to the end of the file: Bob's name took in every later row, which were lost.
    path = _write(tmp_path, "people.csv", text)
    with pytest.raises(ImportFileError, match=r"people\.csv: the row on line 3 "):
        count_rows(path, "csv")
    with pytest.raises(ImportFileError, match=r"people\.csv: the row on line 3 "):
        _rows(path)


def test_csv_field_longer_than_the_csv_field_limit_refuses_the_file_naming_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.csv", f"email,name\nann@example.com,Ann\nbob@example.com,{'b' * 200_000}\n")
    with pytest.raises(ImportFileError, match=r"big\.csv: the row on line 3 has a field longer than 131072 char"):
        count_rows(path, "csv")
    with pytest.raises(ImportFileError, match="line 3"):
        _rows(path)
