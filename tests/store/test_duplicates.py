"""find_duplicates through a real MCP client, on every backend: who is grouped, who is kept apart, and why."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from tests.store.calls import err, new_contact, ok

pytestmark = pytest.mark.anyio


def _groups(page: dict[str, Any]) -> list[set[str]]:
    return [{c["id"] for c in group["contacts"]} for group in page["groups"]]


def _kinds(group: dict[str, Any]) -> set[str]:
    return {e["kind"] for e in group["evidence"]}


@pytest.mark.parametrize(
    ("first", "second", "kind"),
    [
        ("ada.lovelace@gmail.com", "AdaLovelace+crm@googlemail.com", "mailbox"),
        ("ada@outlook.com", "ada+newsletter@outlook.com", "mailbox"),
        ("ada@icloud.com", "ada+shop@icloud.com", "mailbox"),
        ("ada@fastmail.com", "Ada+x@fastmail.com", "mailbox"),
        ("ada@analytical.org", "ada+crm@analytical.org", "tagged"),
    ],
    ids=["gmail-dots-tag-googlemail", "outlook-tag", "icloud-tag", "fastmail-tag", "other-domain-tag"],
)
async def test_one_mailbox_written_two_ways_is_one_person(client: Client, first: str, second: str, kind: str) -> None:
    a = await new_contact(client, first, name="Ada Lovelace")
    b = await new_contact(client, second, name="Ada Lovelace")

    page = await ok(client, "find_duplicates")

    assert _groups(page) == [{a, b}]
    (group,) = page["groups"]
    assert kind in _kinds(group)
    assert group["score"] >= 0.8
    assert all(set(e["ids"]) == {a, b} for e in group["evidence"])


async def test_dots_in_an_outlook_address_name_another_mailbox(client: Client) -> None:
    await new_contact(client, "ada.lovelace@outlook.com", name="Ada Lovelace")
    await new_contact(client, "adalovelace@outlook.com", name="Grace Hopper")

    assert (await ok(client, "find_duplicates"))["groups"] == []


async def test_same_phone_and_a_misspelt_name_is_one_person(client: Client) -> None:
    a = await new_contact(client, "m.green@gmail.com", name="Mitchell Green", phone="+1 415 555 0132")
    b = await new_contact(client, "mitch@work.example", name="Mitchel Green", phone="+14155550132")

    (group,) = (await ok(client, "find_duplicates"))["groups"]

    assert {c["id"] for c in group["contacts"]} == {a, b}
    assert {"phone", "name"} <= _kinds(group)


async def test_a_nickname_at_one_company_domain_is_one_person(client: Client) -> None:
    a = await new_contact(client, "william.gates@acme.example", name="William Gates")
    b = await new_contact(client, "bgates@acme.example", name="Bill Gates")

    (group,) = (await ok(client, "find_duplicates"))["groups"]

    assert {c["id"] for c in group["contacts"]} == {a, b}
    assert _kinds(group) == {"email_domain", "name"}


async def test_family_sharing_a_phone_and_namesakes_are_kept_apart(client: Client) -> None:
    await new_contact(client, "john.smith@gmail.com", name="John Smith", phone="+14155550199")
    await new_contact(client, "jane.smith@gmail.com", name="Jane Smith", phone="+14155550199")
    await new_contact(client, "jsmith1970@yahoo.com", name="John Smith", phone="+14155550111")

    assert (await ok(client, "find_duplicates"))["groups"] == []


async def test_a_family_member_stays_out_of_the_group_of_a_person_on_the_shared_phone(client: Client) -> None:
    john = await new_contact(client, "john.smith@gmail.com", name="John Smith", phone="+14155550199")
    again = await new_contact(client, "johnsmith+x@gmail.com", name="John Smith")
    await new_contact(client, "jane.smith@gmail.com", name="Jane Smith", phone="+14155550199")

    assert _groups(await ok(client, "find_duplicates")) == [{john, again}]


async def test_identities_count_as_the_contact_s_phones(client: Client) -> None:
    a = await new_contact(client, "ann@example.com", name="Ann Lee")
    b = await new_contact(client, "ann.lee@other.example", name="Ann Lee")
    await ok(client, "attach_identity", contact_id=a, identifier="+14155550123")
    await ok(client, "attach_contact", end_user_id=b, channel="whatsapp", value="+14155550123")

    (group,) = (await ok(client, "find_duplicates"))["groups"]

    assert {c["id"] for c in group["contacts"]} == {a, b}
    assert "phone" in _kinds(group)


async def test_groups_page_with_the_cursor_and_min_score_filters(client: Client) -> None:
    pairs = []
    for k in range(3):
        first = await new_contact(client, f"person{k}@gmail.com", name=f"Person Number{k}")
        second = await new_contact(client, f"person{k}+x@gmail.com", name=f"Person Number{k}")
        pairs.append({first, second})

    first_page = await ok(client, "find_duplicates", limit=2)
    second_page = await ok(client, "find_duplicates", limit=2, cursor=first_page["next_cursor"])

    assert _groups(first_page) == pairs[:2]
    assert _groups(second_page) == pairs[2:]
    assert "next_cursor" not in second_page
    assert (await ok(client, "find_duplicates", min_score=1))["groups"] == []


async def test_a_cursor_we_did_not_issue_is_invalid(client: Client) -> None:
    error = await err(client, "find_duplicates", cursor="not-a-cursor")

    assert (error["code"], error["field"]) == ("invalid_argument", "cursor")
