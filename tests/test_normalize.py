"""Normalisation: phones to E.164, emails to one lower-cased form, channel values typed as Feather types them."""

from __future__ import annotations

import pytest

from contact_mcp.errors import InvalidArgument
from contact_mcp.normalize import (
    ValueKind,
    in_normal_form,
    normalize_channel_value,
    normalize_email,
    normalize_identifier,
    normalize_phone,
    normalize_uuid,
)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 (415) 555-0123", None, "+14155550123"),
        ("  +44 20 7183 8750 ", None, "+442071838750"),
        ("(415) 555-0123", "US", "+14155550123"),
        ("020 7183 8750", "GB", "+442071838750"),
        ("+14155550123", "GB", "+14155550123"),
    ],
    ids=["us-formatted", "gb-spaced", "national-with-region", "gb-national", "plus-ignores-region"],
)
def test_phones_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, field="phone", default_region=region) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("4155550123", "no country code"),
        ("+1415555012", "not a valid phone number"),
        ("hello", "not a phone number"),
        ("   ", "empty"),
    ],
    ids=["no-country", "too-short", "letters", "blank"],
)
def test_bad_phones_say_what_is_wrong(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize_phone(raw, field="phone_number")
    assert message in info.value.message
    assert info.value.field == "phone_number"
    assert info.value.hint


def test_emails_are_normalised_and_lower_cased() -> None:
    assert normalize_email("  Ann.Lee@EXAMPLE.com ", field="email") == "ann.lee@example.com"


@pytest.mark.parametrize("raw", ["ann", "ann@", "@example.com", "a b@example.com", "ann@localhost"])
def test_bad_emails_are_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        normalize_email(raw, field="email")
    assert info.value.field == "email"


@pytest.mark.parametrize(
    ("channel", "raw", "expected"),
    [
        ("email", "Ann@Example.com", ("email", "ann@example.com")),
        ("sms", "+1 415 555 0123", ("sms", "+14155550123")),
        ("whatsapp", "+44 20 7183 8750", ("whatsapp", "+442071838750")),
        ("twitter", " @AnnLee ", ("twitter", "annlee")),
        ("slack", " U024BE7LH ", ("slack", "U024BE7LH")),
        ("matrix", "  @ann:matrix.org  ", (None, "@ann:matrix.org")),
    ],
    ids=["email", "sms", "whatsapp", "twitter", "slack", "untyped"],
)
def test_channel_values_are_typed_and_normalised(channel: str, raw: str, expected: tuple[str | None, str]) -> None:
    assert normalize_channel_value(channel, raw, field="value") == expected


def test_identifiers_are_email_or_phone() -> None:
    assert normalize_identifier("Ann@Example.com", field="identifier") == ("email", "ann@example.com")
    assert normalize_identifier("+1 415 555 0123", field="identifier") == ("phone", "+14155550123")


def test_uuids_are_canonical() -> None:
    assert (
        normalize_uuid(" 6F1C2A0E8A3B4C5D9E7F0A1B2C3D4E5F ", field="contact_id")
        == "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"
    )
    with pytest.raises(InvalidArgument):
        normalize_uuid("ct_123", field="contact_id")


# ---------- remembered answers (normalize.py keeps the last few thousand) ----------


def test_a_remembered_phone_depends_on_the_default_region() -> None:
    # The same national digits are a London number under GB and no number at all under US: what is remembered
    # for one region must never answer for another.
    assert normalize_phone("020 7183 8751", field="phone", default_region="GB") == "+442071838751"
    with pytest.raises(InvalidArgument):
        normalize_phone("020 7183 8751", field="phone", default_region="US")
    assert normalize_phone("020 7183 8751", field="phone", default_region="GB") == "+442071838751"


def test_a_remembered_refusal_names_each_callers_field() -> None:
    for field in ("phone", "phone_number", "value"):
        with pytest.raises(InvalidArgument) as info:
            normalize_phone("+1415555012", field=field)
        assert info.value.field == field
        assert "not a valid phone number" in info.value.message
    for field in ("email", "identifier"):
        with pytest.raises(InvalidArgument) as info:
            normalize_email(" ann@ ", field=field)
        assert info.value.field == field
        assert info.value.message.startswith("'ann@' is not a valid email address: ")


def test_the_same_text_is_normalised_once() -> None:
    from contact_mcp import normalize

    before = (normalize._e164.cache_info().hits, normalize._email_form.cache_info().hits)  # pyright: ignore[reportPrivateUsage]
    for _ in range(3):
        assert normalize_phone(" +1 415 555 0177 ", field="phone") == "+14155550177"
        assert normalize_email(" Zed.Cached@Example.com", field="email") == "zed.cached@example.com"
    after = (normalize._e164.cache_info().hits, normalize._email_form.cache_info().hits)  # pyright: ignore[reportPrivateUsage]
    assert after[0] - before[0] >= 2
    assert after[1] - before[1] >= 2


@pytest.mark.parametrize(
    ("kind", "channel", "value", "normal"),
    [
        ("phone", "phone", "+14155550123", True),
        ("phone", "sms", "+1 415 555 0123", False),
        ("phone", "phone", "4155550123", False),
        ("phone", "phone", "+04155550123", False),
        ("email", "email", "ann@example.com", True),
        ("email", "email", "Ann@example.com", False),
        ("email", "email", " ann@example.com", False),
        ("email", "email", "ann", False),
        ("email", "email", "ann@", False),
        ("email", "email", "a nn@example.com", False),
        ("email", "email", "ann@exam\u0301ple.com", False),  # not NFC
        ("handle", "twitter", "ann", True),
        ("handle", "twitter", "@Ann", False),
        ("handle", "slack", "U123", True),
        ("handle", "slack", " ", False),
        (None, "telegram", "@Ann", True),
        (None, "telegram", " @Ann", False),
    ],
)
def test_in_normal_form_is_what_the_normalisers_would_leave_as_it_is(
    kind: ValueKind | None, channel: str, value: str, normal: bool
) -> None:
    assert in_normal_form(kind, channel, value) is normal
