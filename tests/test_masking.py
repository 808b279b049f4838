"""Masking what the history keeps: emails, phones and custom-field values recognisable, never usable."""

from __future__ import annotations

import pytest

from contact_mcp.masking import MASK, mask_email, mask_phone, mask_value


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("ada.lovelace@example.com", "a***@example.com"),
        ("a@example.com", "a***@example.com"),
        ("Ada.Lovelace+crm@Example.COM", "A***@Example.COM"),
    ],
)
def test_an_email_keeps_its_first_letter_and_domain(value: str, masked: str) -> None:
    assert mask_email(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("+14155550132", "+1******0132"),
        ("+442071838750", "+44******8750"),
        ("+3531234567", "+353***4567"),
        ("(415) 555-0132", "******0132"),
    ],
)
def test_a_phone_keeps_its_country_code_and_last_four_digits(value: str, masked: str) -> None:
    assert mask_phone(value) == masked


def test_values_are_masked_by_shape_wherever_they_are() -> None:
    assert mask_value("email", "ann@example.com") == "a***@example.com"
    assert mask_value("phone", "+14155550132") == "+1******0132"
    assert mask_value("user_id", "ann@example.com") == "a***@example.com"  # an email is an email in any field
    assert mask_value("methods", [{"channel": "email", "value": "ann@example.com"}]) == [
        {"channel": "email", "value": "a***@example.com"}
    ]


def test_contact_values_of_any_other_shape_are_masked_whole_and_other_fields_kept() -> None:
    assert mask_value("value", "@ann_lovelace") == MASK
    assert mask_value("identifier", "ann-handle") == MASK
    assert mask_value("name", "Ann Lovelace") == "Ann Lovelace"
    assert mask_value("locale", "en") == "en"
    assert mask_value("subscribed_to_changelog", True) is True
    assert mask_value("name", None) is None


def test_custom_field_values_are_masked_whole_and_null_stays_null() -> None:
    assert mask_value("custom_fields", {"plan": "pro", "seats": 3, "vip": True, "note": None}) == {
        "plan": MASK,
        "seats": MASK,
        "vip": MASK,
        "note": None,
    }
    assert mask_value("custom_fields.ssn", "078-05-1120") == MASK
    assert mask_value("custom_fields.ssn", None) is None
