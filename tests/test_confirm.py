"""Confirmation of what cannot be undone, through a real MCP client session in memory, on both protocol eras: a
client that can be asked is always asked (accept: the write happens; decline, cancel or an unticked box: nothing
changes and the result says so), a client that cannot be asked needs `confirm: true` (else `confirmation_required`
listing what would happen), `CONTACT_MCP_CONFIRM=never` asks nothing, and what is never asked (setting a
verification, a verification already clear). Over stdio and HTTP sockets: `tests/serve/test_confirm_transports.py`.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from mcp import Client

from contact_mcp import Settings, build_server, load_settings
from contact_mcp.errors import ConfigError
from contact_mcp.server import ContactServer
from contact_mcp.tools.confirm import ANSWER_PARAMETER, Confirmation, confirming
from contact_mcp.tools.table import TOOLS
from contact_mcp.tools.writes import attach_contact, clears_verification, describe_clearing
from tests.confirming import ERAS, PHONE, User, clearing, error_of, phone_over, seed_over

pytestmark = pytest.mark.anyio


async def seed(server: ContactServer) -> str:
    async with Client(server) as client:
        return await seed_over(client)


async def phone(server: ContactServer, contact_id: str) -> dict[str, Any]:
    """The stored phone method, read through a client that cannot be asked (reads never are)."""
    async with Client(server) as client:
        return await phone_over(client, contact_id)


@pytest.fixture
def server(settings: Settings) -> ContactServer:
    return build_server(settings)


# ---------- a client that can be asked ----------


@pytest.mark.parametrize("mode", list(ERAS))
async def test_the_user_is_asked_what_will_happen_to_whom_and_accepting_clears(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    contact_id = await seed(server)
    user = User()
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        assert client.protocol_version == ERAS[mode]
        result = await client.call_tool("set_verification", clearing(contact_id))

    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["verified"] is False
    (question,) = user.asked
    assert f"Clear the verification of phone {PHONE} on contact Ada Lovelace (id {contact_id})" in question
    assert "cannot be undone" in question
    assert user.schemas[0]["properties"]["confirm"]["type"] == "boolean"
    stored = await phone(server, contact_id)
    assert stored["verified"] is False
    assert "verification_source" not in stored


@pytest.mark.parametrize("mode", list(ERAS))
async def test_confirm_true_from_the_model_does_not_skip_the_user(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    contact_id = await seed(server)
    user = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("set_verification", clearing(contact_id, confirm=True))

    assert len(user.asked) == 1
    assert error_of(result)["code"] == "declined"
    assert (await phone(server, contact_id))["verified"] is True


@pytest.mark.parametrize(
    ("user", "said"),
    [
        (User(action="decline"), "declined"),
        (User(action="cancel"), "cancelled"),
        (User(action="accept", ticked=False), "did not confirm"),
    ],
    ids=["decline", "cancel", "accept-unticked"],
)
@pytest.mark.parametrize("mode", list(ERAS))
async def test_a_user_who_says_no_changes_nothing_and_the_result_says_so(
    server: ContactServer, mode: Literal["auto", "legacy"], user: User, said: str
) -> None:
    contact_id = await seed(server)
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("set_verification", clearing(contact_id))

    error = error_of(result)
    assert error["code"] == "declined"
    assert f"the user {said} set_verification: nothing was changed" in error["message"]
    assert error["retryable"] is False
    assert error["provider"] == "local"
    assert result.content[0].type == "text"
    assert result.content[0].text.startswith("declined: ")
    stored = await phone(server, contact_id)
    assert stored["verified"] is True
    assert stored["verification_source"] == "call"


# ---------- a client that cannot be asked ----------


@pytest.mark.parametrize("mode", list(ERAS))
async def test_without_elicitation_the_call_needs_confirm_and_says_what_would_happen(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    contact_id = await seed(server)
    async with Client(server, mode=mode) as client:
        refused = await client.call_tool("set_verification", clearing(contact_id))
        assert (await phone(server, contact_id))["verified"] is True
        done = await client.call_tool("set_verification", clearing(contact_id, confirm=True))

    error = error_of(refused)
    assert error["code"] == "confirmation_required"
    assert error["field"] == "confirm"
    assert f"Clear the verification of phone {PHONE} on contact Ada Lovelace (id {contact_id})" in error["message"]
    assert "confirm: true" in error["hint"]
    assert error["retryable"] is False
    assert refused.content[0].type == "text"
    assert refused.content[0].text.startswith("confirmation_required: ")
    assert not done.is_error, done.content
    assert (await phone(server, contact_id))["verified"] is False


@pytest.mark.parametrize("confirm", [False, None], ids=["false", "null"])
async def test_confirm_false_or_null_is_not_a_confirmation(server: ContactServer, confirm: bool | None) -> None:
    contact_id = await seed(server)
    async with Client(server) as client:
        result = await client.call_tool("set_verification", clearing(contact_id, confirm=confirm))
    assert error_of(result)["code"] == "confirmation_required"
    assert (await phone(server, contact_id))["verified"] is True


# ---------- what is never asked ----------


@pytest.mark.parametrize("mode", list(ERAS))
async def test_setting_a_verification_is_never_asked(server: ContactServer, mode: Literal["auto", "legacy"]) -> None:
    contact_id = await seed(server)
    user = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=user) as client:
        result = await client.call_tool("set_verification", clearing(contact_id, verified=True))
    assert not result.is_error, result.content
    assert user.asked == []


async def test_clearing_what_is_already_clear_is_not_asked(server: ContactServer) -> None:
    contact_id = await seed(server)
    async with Client(server) as client:
        first = await client.call_tool("set_verification", clearing(contact_id, confirm=True))
        assert not first.is_error, first.content
        again = await client.call_tool("set_verification", clearing(contact_id))
    assert not again.is_error, again.content


async def test_an_unknown_contact_is_not_found_before_anyone_is_asked(server: ContactServer) -> None:
    user = User()
    async with Client(server, elicitation_callback=user) as client:
        result = await client.call_tool("set_verification", clearing("6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"))
    assert error_of(result)["code"] == "not_found"
    assert user.asked == []


async def test_a_bad_argument_is_refused_before_anyone_is_asked(server: ContactServer) -> None:
    contact_id = await seed(server)
    user = User()
    async with Client(server, elicitation_callback=user) as client:
        result = await client.call_tool("set_verification", clearing(contact_id, verified_at="2026-01-01T00:00:00Z"))
    assert error_of(result)["field"] == "verified_at"
    assert user.asked == []


@pytest.mark.parametrize("mode", list(ERAS))
async def test_confirm_never_asks_nothing_and_needs_no_confirm(db_path: Any, mode: Literal["auto", "legacy"]) -> None:
    server = build_server(load_settings(db=str(db_path), confirm="never"))
    contact_id = await seed(server)
    user = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=user) as asking:
        first = await asking.call_tool("set_verification", clearing(contact_id))
    assert not first.is_error, first.content
    assert user.asked == []
    assert (await phone(server, contact_id))["verified"] is False


# ---------- the mechanism ----------


async def test_the_hidden_answer_is_not_an_argument(server: ContactServer) -> None:
    contact_id = await seed(server)
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        sneaked = await client.call_tool("set_verification", clearing(contact_id, **{ANSWER_PARAMETER: "accept"}))
    assert ANSWER_PARAMETER not in tools["set_verification"].input_schema["properties"]
    assert "confirm" in tools["set_verification"].input_schema["properties"]
    error = error_of(sneaked)
    assert (error["code"], error["field"]) == ("invalid_argument", ANSWER_PARAMETER)
    assert (await phone(server, contact_id))["verified"] is True


def test_every_tool_with_a_confirmation_rule_takes_confirm() -> None:
    """The table is where a rule lives; `confirming` refuses a tool that gives the model no way to confirm."""
    ruled = [spec for spec in TOOLS if spec.confirmation is not None]
    assert {"set_verification", "delete_contact", "merge_contacts"} <= {spec.name for spec in ruled}
    for spec in ruled:
        assert spec.confirmation is not None
        confirming(spec.fn, spec.confirmation)  # raises for a tool without `confirm`
        assert spec.annotations.destructive_hint is True
    with pytest.raises(TypeError, match="no confirm parameter"):
        confirming(attach_contact, Confirmation(needed=clears_verification, describe=describe_clearing))


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"confirm": "always"}, "CONTACT_MCP_CONFIRM"),
        ({"server_name": "  "}, "CONTACT_MCP_SERVER_NAME"),
        ({"request_state_key": "too-short-secret"}, "CONTACT_MCP_REQUEST_STATE_KEY"),
        ({"request_state_key": "k" * 40 + "," + "k" * 40}, "CONTACT_MCP_REQUEST_STATE_KEY"),
    ],
    ids=["unknown-mode", "empty-name", "short-key", "repeated-key"],
)
def test_bad_confirmation_settings_stop_start_up_naming_the_variable(overrides: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(**overrides)
    assert variable in str(caught.value)
    assert "too-short-secret" not in str(caught.value)


def test_the_confirmation_settings_come_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (settings.confirm, settings.server_name, settings.request_state_keys()) == ("destructive", "contact-mcp", [])
    monkeypatch.setenv("CONTACT_MCP_CONFIRM", " Never ")
    monkeypatch.setenv("CONTACT_MCP_SERVER_NAME", "contacts-eu")
    monkeypatch.setenv("CONTACT_MCP_REQUEST_STATE_KEY", f"{'n' * 32}, {'o' * 32}")
    read = load_settings()
    assert (read.confirm, read.server_name, read.request_state_keys()) == ("never", "contacts-eu", ["n" * 32, "o" * 32])


async def test_the_server_name_is_a_setting(db_path: Any) -> None:
    server = build_server(load_settings(db=str(db_path), server_name="contacts-eu"))
    async with Client(server) as client:
        assert client.server_info is not None
        assert client.server_info.name == "contacts-eu"


@pytest.mark.parametrize("mode", list(ERAS))
async def test_a_dry_run_is_never_asked_and_changes_nothing(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    contact_id = await seed(server)
    user = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=user) as asking:
        preview = await asking.call_tool("set_verification", clearing(contact_id, dry_run=True))
    assert not preview.is_error, preview.content
    assert preview.structured_content is not None
    assert preview.structured_content["dry_run"] is True
    assert user.asked == []
    assert (await phone(server, contact_id))["verified"] is True


# ---------- delete_contact: always asked ----------


async def _exists(server: ContactServer, contact_id: str) -> bool:
    async with Client(server) as client:
        return not (await client.call_tool("get_contact", {"contact_id": contact_id})).is_error


@pytest.mark.parametrize("mode", list(ERAS))
async def test_deleting_asks_naming_the_contact_and_what_goes_with_it(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    contact_id = await seed(server)
    async with Client(server) as client:
        attached = await client.call_tool("attach_identity", {"contact_id": contact_id, "identifier": PHONE})
        assert not attached.is_error, attached.content

    no = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=no) as asking:
        declined = await asking.call_tool("delete_contact", {"contact_id": contact_id, "confirm": True})
    assert error_of(declined)["code"] == "declined"
    assert await _exists(server, contact_id)

    yes = User()
    async with Client(server, mode=mode, elicitation_callback=yes) as asking:
        deleted = await asking.call_tool("delete_contact", {"contact_id": contact_id})
    assert not deleted.is_error, deleted.content
    assert (
        yes.asked
        == no.asked
        == [
            f"Delete contact Ada Lovelace (id {contact_id}): 1 email, 1 phone, 1 identity. This cannot be undone. "
            "Confirm to go ahead."
        ]
    )
    assert not await _exists(server, contact_id)


async def test_deleting_without_elicitation_needs_confirm(server: ContactServer) -> None:
    contact_id = await seed(server)
    async with Client(server) as client:
        refused = await client.call_tool("delete_contact", {"contact_id": contact_id})
        assert await _exists(server, contact_id)
        deleted = await client.call_tool("delete_contact", {"contact_id": contact_id, "confirm": True})
    error = error_of(refused)
    assert error["code"] == "confirmation_required"
    assert f"Delete contact Ada Lovelace (id {contact_id}): 1 email, 1 phone." in error["message"]
    assert not deleted.is_error, deleted.content
    assert not await _exists(server, contact_id)


async def test_a_dry_run_delete_is_not_asked_and_deletes_nothing(server: ContactServer) -> None:
    contact_id = await seed(server)
    user = User(action="decline")
    async with Client(server, elicitation_callback=user) as asking:
        preview = await asking.call_tool("delete_contact", {"contact_id": contact_id, "dry_run": True})
    assert not preview.is_error, preview.content
    assert preview.structured_content is not None
    assert preview.structured_content["dry_run"] is True
    assert user.asked == []
    assert await _exists(server, contact_id)


# ---------- merge_contacts: always asked ----------


async def _merged_into(server: ContactServer, contact_id: str) -> str | None:
    async with Client(server) as client:
        contact = await client.call_tool("get_contact", {"contact_id": contact_id})
    assert contact.structured_content is not None, contact.content
    merged: str | None = contact.structured_content.get("merged_into")
    return merged


async def _twin(server: ContactServer) -> str:
    async with Client(server) as client:
        made = await client.call_tool("upsert_contact", {"email": "a.lovelace@example.com", "name": "Ada L."})
    assert made.structured_content is not None, made.content
    twin: str = made.structured_content["id"]
    return twin


@pytest.mark.parametrize("mode", list(ERAS))
async def test_merging_asks_who_goes_into_whom_and_what_moves(
    server: ContactServer, mode: Literal["auto", "legacy"]
) -> None:
    survivor = await seed(server)
    twin = await _twin(server)
    merge = {"survivor_id": survivor, "duplicate_ids": [twin]}

    no = User(action="decline")
    async with Client(server, mode=mode, elicitation_callback=no) as asking:
        declined = await asking.call_tool("merge_contacts", merge | {"confirm": True})
    assert error_of(declined)["code"] == "declined"
    assert await _merged_into(server, twin) is None

    yes = User()
    async with Client(server, mode=mode, elicitation_callback=yes) as asking:
        merged = await asking.call_tool("merge_contacts", merge)
        again = await asking.call_tool("merge_contacts", merge)  # merged before: changes nothing, asks no one
    assert not merged.is_error, merged.content
    assert not again.is_error, again.content
    assert (
        yes.asked
        == no.asked
        == [
            f"Merge contact Ada L. (id {twin}) into contact Ada Lovelace (id {survivor}), which takes over 1 email; "
            "empty fields are filled from the merged, and it then only points to the survivor (merged_into). "
            "This cannot be undone. Confirm to go ahead."
        ]
    )
    assert await _merged_into(server, twin) == survivor


async def test_merging_without_elicitation_needs_confirm(server: ContactServer) -> None:
    survivor = await seed(server)
    twin = await _twin(server)
    merge = {"survivor_id": survivor, "duplicate_ids": [twin]}
    async with Client(server) as client:
        refused = await client.call_tool("merge_contacts", merge)
        assert await _merged_into(server, twin) is None
        merged = await client.call_tool("merge_contacts", merge | {"confirm": True})
    error = error_of(refused)
    assert error["code"] == "confirmation_required"
    assert f"Merge contact Ada L. (id {twin}) into contact Ada Lovelace (id {survivor})" in error["message"]
    assert not merged.is_error, merged.content
    assert await _merged_into(server, twin) == survivor


async def test_a_merge_naming_an_unknown_contact_is_not_found_on_that_argument_before_anyone_is_asked(
    server: ContactServer,
) -> None:
    survivor = await seed(server)
    user = User()
    unknown = "6f1c2a0e-8a3b-4c5d-9e7f-0a1b2c3d4e5f"
    async with Client(server, elicitation_callback=user) as asking:
        no_survivor = await asking.call_tool("merge_contacts", {"survivor_id": unknown, "duplicate_ids": [survivor]})
        no_duplicate = await asking.call_tool("merge_contacts", {"survivor_id": survivor, "duplicate_ids": [unknown]})
    assert (error_of(no_survivor)["code"], error_of(no_survivor)["field"]) == ("not_found", "survivor_id")
    assert (error_of(no_duplicate)["code"], error_of(no_duplicate)["field"]) == ("not_found", "duplicate_ids")
    assert user.asked == []
