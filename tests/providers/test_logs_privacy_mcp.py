"""Logs carry no email, phone or name: a sequence of calls through real clients (the local store, and Featurebase's
fake on 127.0.0.1, whose requests httpx2 would log with their URLs) with logging at DEBUG, every record checked —
as our handler writes it to stderr, and as each logger emitted it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client

from contact_mcp import build_server, load_settings
from contact_mcp.logs import TALKATIVE_LOGGERS, configure_logging
from tests.fakes.featurebase import API_KEY, FeaturebaseFake

pytestmark = pytest.mark.anyio

PROVIDER = "featurebase"
EMAIL = "ada.lovelace@example.com"
PHONE = "+14155550132"
NAME = "Ada Lovelace"
SECRETS = (EMAIL, "ada.lovelace%40example.com", PHONE, "4155550132", "555-0132", NAME, "Lovelace")


class Records(logging.Handler):
    """Every record any logger emitted, as its own message and traceback (before our formatter's masking)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture
def debug_logs() -> Iterator[Records]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    talkative = {name: logging.getLogger(name).level for name in TALKATIVE_LOGGERS}
    configure_logging("DEBUG")
    records = Records()
    root.addHandler(records)
    try:
        yield records
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in talkative.items():
            logging.getLogger(name).setLevel(old)


async def test_a_sequence_of_calls_at_debug_logs_no_email_phone_or_name(
    debug_logs: Records,
    capsys: pytest.CaptureFixture[str],
    db_path: Path,
    base_url: str,
    fake: FeaturebaseFake,
) -> None:
    async with Client(build_server(load_settings(db=str(db_path), log_level="DEBUG"))) as local:
        made = await local.call_tool("upsert_contact", {"email": EMAIL, "name": NAME, "phone": PHONE})
        assert made.structured_content is not None
        ann = made.structured_content["id"]
        calls = [
            ("attach_contact", {"end_user_id": ann, "channel": "email", "value": EMAIL}),
            ("set_verification", {"contact_id": ann, "type": "phone", "value": PHONE, "verified": True}),
            ("set_verification", {"contact_id": ann, "type": "phone", "value": "+1415555013", "verified": True}),
            ("upsert_contact", {"email": "not an email " + EMAIL, "name": NAME}),
            ("create_contact", {"username": NAME, "phone_number": PHONE}),
            ("create_contact", {"username": NAME, "phone_number": PHONE}),
            ("find_contacts", {"email": EMAIL}),
            ("find_contacts", {"query": NAME}),
            ("get_contact", {"contact_id": ann, "include_history": True}),
        ]
        for tool, arguments in calls:
            await local.call_tool(tool, arguments)
    settings = load_settings(providers="featurebase", featurebase_api_key=API_KEY, featurebase_base_url=base_url)
    async with Client(build_server(settings.model_copy(update={"db": str(db_path), "log_level": "DEBUG"}))) as remote:
        await remote.call_tool("upsert_contact", {"email": EMAIL, "name": NAME, "phone": PHONE})
        await remote.call_tool("find_contacts", {"user_id": EMAIL})
    stderr = capsys.readouterr().err
    assert debug_logs.lines, "nothing was logged: the test would prove nothing"
    assert any("featurebase" in line for line in debug_logs.lines), "the provider's requests were not logged"
    for text in (stderr, *debug_logs.lines):
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} logged: {text[:300]}"
