"""`redact`: the scrubber that keeps configured secrets out of foreign text, and the masked display of URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

from contact_mcp import load_settings
from contact_mcp.redact import REDACTED, Scrubber, configured_secrets, database_password_forms, display_url

KEY = "sk_test_0123456789abcdef"


def test_a_secret_quoted_back_by_a_provider_is_redacted() -> None:
    scrub = Scrubber([KEY])
    assert scrub(f"Invalid API key provided: Bearer {KEY}") == f"Invalid API key provided: Bearer {REDACTED}"


def test_the_percent_encoded_form_of_a_secret_is_redacted_too() -> None:
    secret = "pa ss/w0rd+é"
    scrub = Scrubber([secret])
    assert scrub("url: https://x/?k=pa%20ss%2Fw0rd%2B%C3%A9 done") == f"url: https://x/?k={REDACTED} done"


def test_a_secret_containing_another_is_replaced_whole() -> None:
    scrub = Scrubber(["abcd1234", "abcd1234-long-suffix"])
    assert scrub("x abcd1234-long-suffix y") == f"x {REDACTED} y"


def test_text_without_secrets_and_a_scrubber_without_any_leave_text_alone() -> None:
    assert Scrubber([KEY])("Contact not found") == "Contact not found"
    assert Scrubber([None, "", "ab"])("ab cd") == "ab cd"


def test_every_configured_secret_is_known(tmp_path: Path) -> None:
    settings = load_settings(
        db="postgresql://app:db-password-1@db.example:5432/contacts",
        http_token="http-token-abcdef",
        feather_api_key="fth_key_1",
        tetherai_api_key="teth_key_2",
        blooio_api_key="bl_key_3",
        featurebase_api_key="fb_key_4",
        featurebase_identity_secret="identity-secret-5",
        protocol_api_key="proto_key_6",
        request_state_key=f"{'state-key-7' * 3}, {'older-key-8' * 3}",  # a ring: each key is a secret
    )
    found = configured_secrets(settings)
    expected = {
        "db-password-1",
        "http-token-abcdef",
        "fth_key_1",
        "teth_key_2",
        "bl_key_3",
        "fb_key_4",
        "identity-secret-5",
        "proto_key_6",
        "state-key-7" * 3,
        "older-key-8" * 3,
    }
    assert set(found) == expected
    scrubbed = Scrubber.from_settings(settings)(" ".join(sorted(expected)))
    assert scrubbed == " ".join([REDACTED] * len(expected))


@pytest.mark.parametrize(
    ("target", "forms"),
    [
        ("postgresql://app:s3cret@host/db", ("s3cret",)),
        ("postgresql:/app:s3cret@host/db", ("s3cret",)),  # what a Path setting leaves of the URL
        ("postgres://app:p%40ss@host:5432/db", ("p%40ss", "p@ss")),  # as written, and as PostgreSQL reads it
        ("postgres://app:p%2fss@host:5432/db", ("p%2fss", "p/ss")),
        ("postgresql+psycopg://app:pw@host/db", ("pw",)),
        ("postgresql://host/db?user=app&password=q%20pw", ("q%20pw", "q pw")),
        ("postgresql://app:Tr0ub4dor#3x@host/db", ("Tr0ub4dor#3x",)),  # libpq takes # and ? unencoded
        # (an unencoded "/" or a second "@" is refused at start-up, settings.py; masked whole all the same)
        ("postgresql://app:a/b?c@host/db", ("a/b?c",)),
        ("postgresql://app@host/db", ()),
        ("/home/me/contacts.db", ()),
        ("contacts@home.db", ()),
    ],
)
def test_database_password_forms(target: str, forms: tuple[str, ...]) -> None:
    assert database_password_forms(target) == forms


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://api.example.com/v4", "https://api.example.com/v4"),
        ("https://user:secret@api.example.com/v4", "https://***@api.example.com/v4"),
        ("https://token@api.example.com", "https://***@api.example.com"),
        ("https://api.example.com/v1?api_key=abc", "https://api.example.com/v1?***"),
        ("https://api.example.com/#k=abc", "https://api.example.com/#***"),
        ("postgresql:/app:pw@db.example/contacts", "postgresql://***@db.example/contacts"),
        ("postgresql://app:Tr0ub4dor#3x@db.example:5432/c", "postgresql://***@db.example:5432/c"),
        ("postgresql://app:a/b?c@db.example/c?sslmode=require", "postgresql://***@db.example/c?***"),
        ("/var/lib/contacts.db", "/var/lib/contacts.db"),
        ("/home/me@corp/contacts.db", "/home/me@corp/contacts.db"),
    ],
)
def test_display_url_masks_userinfo_and_query(url: str, shown: str) -> None:
    assert display_url(url) == shown
