"""What the confirmation tests share: a user who answers the questions a client is asked, the clearing call, and
the error a result carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mcp import Client
from mcp.client.context import ClientRequestContext
from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult

PHONE = "+14155550132"
ERAS = {"auto": "2026-07-28", "legacy": "2025-11-25"}


@dataclass
class User:
    """The person behind a client that declared elicitation: answers every question the same way, remembers them."""

    action: Literal["accept", "decline", "cancel"] = "accept"
    ticked: bool = True
    asked: list[str] = field(default_factory=list[str])
    schemas: list[dict[str, Any]] = field(default_factory=list[dict[str, Any]])

    async def __call__(self, context: ClientRequestContext, params: ElicitRequestParams) -> ElicitResult:
        self.asked.append(params.message)
        self.schemas.append(getattr(params, "requested_schema", {}))
        if self.action == "accept":
            return ElicitResult(action="accept", content={"confirm": self.ticked})
        return ElicitResult(action=self.action)


def clearing(contact_id: str, **extra: Any) -> dict[str, Any]:
    return {"contact_id": contact_id, "type": "phone", "value": PHONE, "verified": False, **extra}


def error_of(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.content
    assert result.structured_content is not None
    error: dict[str, Any] = result.structured_content["error"]
    return error


async def seed_over(client: Client, email: str = "ada@example.com") -> str:
    """Ada Lovelace with an email and a verified phone (verified by a call); her id."""
    made = await client.call_tool("upsert_contact", {"email": email, "name": "Ada Lovelace", "phone": PHONE})
    assert made.structured_content is not None, made.content
    contact_id: str = made.structured_content["id"]
    verify = {"contact_id": contact_id, "type": "phone", "value": PHONE, "verified": True}
    done = await client.call_tool("set_verification", verify | {"verification_source": "call"})
    assert not done.is_error, done.content
    return contact_id


async def phone_over(client: Client, contact_id: str) -> dict[str, Any]:
    """The stored phone method (a read: never asked about)."""
    contact = await client.call_tool("get_contact", {"contact_id": contact_id})
    assert contact.structured_content is not None, contact.content
    (found,) = [m for m in contact.structured_content["methods"] if m["value"] == PHONE]
    return found
