"""A fake of Protocol's contact API, written from its public page (seeds/protocol-create-contact.txt) and
PROVIDERS.md section 5; the [ASSUMPTION]s there are implemented as stated.

It owns the contacts (16-char alphanumeric ids, usernames unique ignoring case), checks `Authorization: Bearer`,
validates the create body as Protocol would, and answers every error with `{"error": {"code", "message"}}`.
`lookup_style` picks how `GET /v1/contacts?username=` answers, since the public page does not show it: "list"
(`{"data": [...]}`, the default) or "object" (the contact itself, 404 when unknown).
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.harness import Fault, FaultInjector, RecordedRequest

LookupStyle = Literal["list", "object"]
_ALPHABET = string.ascii_letters + string.digits
_OPTIONAL = ("avatar_url", "display_name")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


API_KEY = "pk_live_Zq8yT3secretvalue"


class ProtocolFake:
    """Protocol's `/v1/contacts` endpoints, stateful, behind a `FaultInjector` (serve `fake.app`)."""

    def __init__(self, api_key: str = API_KEY, *, lookup_style: LookupStyle = "list") -> None:
        self.api_key = api_key
        self.lookup_style: LookupStyle = lookup_style
        self.contacts: dict[str, dict[str, Any]] = {}
        self.app = FaultInjector(
            Starlette(
                routes=[
                    Route("/v1/contacts", self._create, methods=["POST"]),
                    Route("/v1/contacts", self._find, methods=["GET"]),
                    Route("/v1/contacts/{contact_id}", self._get, methods=["GET"]),
                    Route("/v1/contacts/{contact_id}", self._delete, methods=["DELETE"]),
                ]
            )
        )

    # ---------- helpers for tests ----------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.requests

    def push(self, fault: Fault) -> None:
        self.app.push(fault)

    def reset(self) -> None:
        self.contacts.clear()
        self.app.clear()
        self.lookup_style = "list"

    def seed(self, username: str, phone_number: str = "+14155550100", **optional: str) -> dict[str, Any]:
        """Store a contact as if created through the API; return it."""
        return self._store({"username": username, "phone_number": phone_number, **optional})

    def by_username(self, username: str) -> dict[str, Any] | None:
        wanted = username.casefold()
        return next((c for c in self.contacts.values() if c["username"].casefold() == wanted), None)

    # ---------- the API ----------

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_key}"

    def _unauthorized(self) -> JSONResponse:
        return _error(401, "unauthorized", "Invalid or missing API key.")

    async def _create(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "invalid_request", "Request body must be a JSON object.")
        if not isinstance(body, dict):
            return _error(400, "invalid_request", "Request body must be a JSON object.")
        problem = _invalid(body)
        if problem:
            return _error(400, "invalid_request", problem)
        if self.by_username(body["username"]) is not None:
            return _error(409, "conflict", "A contact with this username already exists.")
        return JSONResponse(self._store(body), status_code=201)

    async def _find(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        username = request.query_params.get("username")
        if username is None:
            return JSONResponse({"data": list(self.contacts.values())})
        found = self.by_username(username)
        if self.lookup_style == "object":
            return JSONResponse(found) if found else _error(404, "not_found", "Contact not found.")
        return JSONResponse({"data": [found] if found else []})

    async def _get(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        found = self.contacts.get(request.path_params["contact_id"])
        return JSONResponse(found) if found else _error(404, "not_found", "Contact not found.")

    async def _delete(self, request: Request) -> Response:
        if not self._authorized(request):
            return self._unauthorized()
        if self.contacts.pop(request.path_params["contact_id"], None) is None:
            return _error(404, "not_found", "Contact not found.")
        return Response(status_code=204)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        contact_id = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        contact = {
            "id": contact_id,
            "username": body["username"],
            "phone_number": body["phone_number"],
            "avatar_url": body.get("avatar_url"),
            "display_name": body.get("display_name") or body["username"],
            "conversation_id": "".join(secrets.choice(_ALPHABET) for _ in range(16)),
            "last_active_at": None,
            "created_at": int(time.time()),
        }
        self.contacts[contact_id] = contact
        return contact


def _invalid(body: dict[str, Any]) -> str | None:
    """Protocol's 400 `invalid_request` message for a bad body, or None."""
    for name in ("username", "phone_number"):
        value = body.get(name)
        if value is None or value == "":
            return f"{name} is required."
        if not isinstance(value, str):
            return f"{name} must be a string."
    for name in _OPTIONAL:
        if name in body and body[name] is not None and not isinstance(body[name], str):
            return f"{name} must be a string."
    return None
