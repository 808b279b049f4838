"""`FeatherClient`: Feather's identity API serving `attach_contact` (attach a verified email, phone or handle to an
end user), plus the `whoami` probe; it owns the requests sent, the mapping of Feather's answers into
`AttachedContact`, and Feather-specific error hints.

Feather answers 201 whether the contact is new or was already on the end user, so the client reads the end user
first (which also turns an unknown id into a clean not_found) and reports `created` when the returned uid was not
among the end user's contacts before. Both requests are replayable: the read trivially, and the attach because
re-adding the same channel and value returns the existing contact (PROVIDERS.md [ASSUMPTION]).
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx2
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contact_mcp.errors import ContactError, NotFound, ProviderError
from contact_mcp.models import AttachContactInput, AttachedContact, Operation
from contact_mcp.normalize import normalize_uuid
from contact_mcp.providers.http import ErrorDetail, HttpProvider, path_segment

_Model = TypeVar("_Model", bound=BaseModel)


# ---------- Feather's response bodies (only what we read; unknown fields ignored) ----------


class _ContactResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uid: str
    channel: str
    type: str | None = None
    raw_value: str
    normalized_value: str
    verification_method: str | None = None


class _ContactRef(BaseModel):
    model_config = ConfigDict(extra="ignore")

    uid: str


class _EndUserProfile(BaseModel):
    """GET /v1/identity/end-users/{id}: only the uids of the contacts matter here."""

    model_config = ConfigDict(extra="ignore")

    uid: str
    contacts: list[_ContactRef] = Field(default_factory=list[_ContactRef])


class _WhoAmI(BaseModel):
    model_config = ConfigDict(extra="ignore")

    organization_name: str | None = None
    role: str | None = None


class FeatherClient(HttpProvider):
    """Feather's identity API (`x-api-key` auth, flat `{error, message}` envelope, FastAPI 422s)."""

    name = "feather"
    display_name = "Feather"
    operations = frozenset({Operation.ATTACH_CONTACT})

    def auth_headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key}

    # ---------- attach_contact ----------

    async def attach_contact(self, call: AttachContactInput) -> AttachedContact:
        end_user_id = normalize_uuid(call.end_user_id, field="end_user_id")
        end_user_path = f"/v1/identity/end-users/{path_segment(end_user_id)}"

        _, profile_body = await self.request("GET", end_user_path, replayable=True)
        profile = self._parse(_EndUserProfile, profile_body, what="end user")
        before = {contact.uid for contact in profile.contacts}

        _, contact_body = await self.request(
            "POST",
            f"{end_user_path}/contacts",
            replayable=True,
            json_body={"channel": call.channel, "value": _value_to_send(call)},
        )
        contact = self._parse(_ContactResponse, contact_body, what="contact")
        return AttachedContact(
            provider=self.name,
            # A contact added by someone else between our read and our POST also counts as created: the read
            # is the only way to tell, since Feather answers 201 either way.
            created=contact.uid not in before,
            end_user_id=end_user_id,
            uid=contact.uid,
            channel=contact.channel,
            type=contact.type,
            normalized_value=contact.normalized_value,
            verification_method=contact.verification_method,
        )

    # ---------- doctor ----------

    async def probe(self) -> str:
        try:
            _, body = await self.request("GET", "/v1/identity/whoami", replayable=True)
        except NotFound:
            raise ProviderError(
                f"{self.base_url} has no /v1/identity/whoami endpoint",
                provider=self.name,
                status=404,
                hint="FEATHER_BASE_URL must point at a Feather API host, e.g. https://api-sandbox.featherhq.com",
            ) from None
        who = self._parse(_WhoAmI, body, what="whoami answer")
        org = who.organization_name or "an unnamed organization"
        role = f" as {who.role}" if who.role else ""
        return f"Feather at {self.base_url}: API key accepted for {org}{role}"

    # ---------- errors ----------

    def error_for_status(self, status: int, detail: ErrorDetail, headers: httpx2.Headers) -> ContactError:
        error = super().error_for_status(status, detail, headers)
        # Every path we call is keyed by the end user, so a 404 ({"error": "not_found"}, PROVIDERS.md
        # [ASSUMPTION]) can only mean that id is unknown.
        if status == 404 and error.field is None:
            error.field = "end_user_id"
        return error

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        if status == 400:
            return "Feather could not use this value on this channel; give a valid email, +E.164 phone or handle"
        if status == 404:
            return (
                "Feather has no end user with this id; use the end_user_id Feather returned when the end user was "
                "resolved or created (POST /v1/identity/resolve)"
            )
        if status == 422:
            return _validation_hint(detail.field)
        if status == 429:
            # Feather documents no Retry-After: its limit is 6,000 requests a minute per organization.
            return "Feather's per-organization rate limit was reached; wait a few seconds, then retry"
        if status >= 500:
            return "Feather failed to complete the request; attaching the same value again is safe, so retry shortly"
        return None

    def _parse(self, model: type[_Model], body: Any, *, what: str) -> _Model:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors(include_input=False)})
            raise ProviderError(
                f"Feather's {what} did not have the documented shape (problem with: {', '.join(fields)})",
                provider=self.name,
                hint="Feather's API may have changed; the operator should check the provider's answer",
            ) from None


def _value_to_send(call: AttachContactInput) -> str:
    """Typed channels get our normal form, so a phone written for the server's default region arrives as E.164;
    an untyped channel's value is Feather's to keep as written (trimmed)."""
    return call.normalized_value if call.type is not None else call.raw_value.strip()


def _validation_hint(field: str | None) -> str:
    if field == "end_user_id":
        return "end_user_id must be the end user's UUID"
    if field in ("channel", "value"):
        return f"Correct {field} as the message says and call again"
    return "Feather rejected the request's shape; correct the named field and call again"
