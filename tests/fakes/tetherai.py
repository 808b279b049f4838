"""A fake TetherAI instance: the contacts endpoints as TetherAI documents them, kept in memory.

Written from PROVIDERS.md section 2 and the seed page (`seeds/tetherai-verify-contact-methods.txt`). It checks the
bearer token, keeps contacts whose `phoneNumber[]` and `email[]` hold `{value, isPrimary, verifiedAt, verifiedBy,
verificationSource}` entries, normalises values server-side (phones to E.164, emails lower-cased) and requires a
verification's value to match an existing entry. TetherAI's docs disagree on the error envelope, so the fake uses
both: flat `{message, code}` for authentication, ids and lookups, nested `{"error": {code, message}}` for body
validation and conflicts. [ASSUMPTION]s (no public page says so): unknown id -> 404 `{"message":"Contact not
found"}`; value not on the contact or bad type -> 400; `GET /api/contacts/{id}` and `POST /api/contact` answer
`{message, data: {contact}}` like the PATCH; the list answers `{message, data: [...], page, size, total}`;
phones written without a country code are read as North American.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import phonenumbers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.harness import FaultInjector

TOKEN = "tether-test-token-5f1c9a"
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_ARRAY = {"phone": "phoneNumber", "email": "email"}
_MESSAGES = {
    ("phone", True): "Phone number verified",
    ("phone", False): "Phone number verification cleared",
    ("email", True): "Email verified",
    ("email", False): "Email verification cleared",
}


def user_id_for(token: str) -> str:
    """The caller's user id, fixed per token: what TetherAI stores as `verifiedBy`."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def _flat(status: int, message: str, code: str | None = None) -> JSONResponse:
    body: dict[str, str] = {"message": message}
    if code is not None:
        body["code"] = code
    return JSONResponse(body, status_code=status)


def _nested(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class BadValue(Exception):
    """A value TetherAI cannot normalise."""


def normalise(kind: str, value: str) -> str:
    if kind == "email":
        return value.strip().lower()
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        raise BadValue(value) from None
    if not phonenumbers.is_valid_number(number):
        raise BadValue(value)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _iso(value: str) -> str:
    """TetherAI keeps dates as MongoDB Dates and answers them as ISO 8601 UTC with milliseconds."""
    moment = datetime.fromisoformat(value.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class TetherAIFake:
    """State plus the ASGI app; `app` (a `FaultInjector`) is what `harness.serve` runs."""

    def __init__(self, tokens: Iterable[str] = (TOKEN,)) -> None:
        self.tokens = set(tokens)
        self.contacts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.app = FaultInjector(
            Starlette(
                routes=[
                    Route("/api/contacts", self.list_contacts, methods=["GET"]),
                    Route("/api/contacts/{id}", self.get_contact, methods=["GET"]),
                    Route("/api/contacts/{id}/verify-contact-methods", self.verify, methods=["PATCH"]),
                    Route("/api/contact", self.create_contact, methods=["POST"]),
                ]
            )
        )

    # ---------- helpers for tests ----------

    @property
    def requests(self) -> list[Any]:
        return self.app.requests

    def reset(self) -> None:
        self.contacts.clear()
        self.app.clear()

    def add_contact(
        self,
        *,
        first_name: str = "Alex",
        last_name: str = "Morgan",
        phones: Iterable[str] = (),
        emails: Iterable[str] = (),
    ) -> str:
        """Seed a contact (values normalised as TetherAI would); returns its `_id`."""
        contact_id = f"64b2c3d4e5f6{next(self._ids):012x}"
        self.contacts[contact_id] = {
            "_id": contact_id,
            "firstName": first_name,
            "lastName": last_name,
            "phoneNumber": self._entries("phone", phones),
            "email": self._entries("email", emails),
        }
        return contact_id

    def entry(self, contact_id: str, kind: str, value: str) -> dict[str, Any]:
        found = next(e for e in self.contacts[contact_id][_ARRAY[kind]] if e["value"] == value)
        return dict(found)

    @staticmethod
    def _entries(kind: str, values: Iterable[str]) -> list[dict[str, Any]]:
        blank = {"verifiedAt": None, "verifiedBy": None, "verificationSource": None}
        return [{"value": normalise(kind, v), "isPrimary": i == 0, **blank} for i, v in enumerate(values)]

    # ---------- the API ----------

    def _caller(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return token if scheme == "Bearer" and token in self.tokens else None

    def _unauthorized(self) -> JSONResponse:
        return _flat(401, "Unauthorized: invalid or missing token", "UNAUTHORIZED")

    def _lookup(self, request: Request) -> dict[str, Any] | JSONResponse:
        contact_id = request.path_params["id"]
        if not _OBJECT_ID.fullmatch(contact_id):
            return _flat(400, "Invalid contact id", "INVALID_ID")
        contact = self.contacts.get(contact_id.lower())
        if contact is None:
            return _flat(404, "Contact not found")
        return contact

    async def list_contacts(self, request: Request) -> JSONResponse:
        if self._caller(request) is None:
            return self._unauthorized()
        try:
            page = int(request.query_params.get("page", "1"))
            size = int(request.query_params.get("size", "10"))
        except ValueError:
            return _flat(400, "page and size must be integers", "VALIDATION_ERROR")
        if page < 1 or size < 1:
            return _flat(400, "page and size must be at least 1", "VALIDATION_ERROR")
        everyone = list(self.contacts.values())
        chunk = everyone[(page - 1) * size : page * size]
        page_body = {"data": copy.deepcopy(chunk), "page": page, "size": size, "total": len(everyone)}
        return JSONResponse({"message": "Contacts fetched", **page_body})

    async def get_contact(self, request: Request) -> JSONResponse:
        if self._caller(request) is None:
            return self._unauthorized()
        found = self._lookup(request)
        if isinstance(found, JSONResponse):
            return found
        return JSONResponse({"message": "Contact fetched", "data": {"contact": copy.deepcopy(found)}})

    async def create_contact(self, request: Request) -> JSONResponse:
        if self._caller(request) is None:
            return self._unauthorized()
        body = await _json_object(request)
        if body is None:
            return _nested(400, "VALIDATION_ERROR", "Request body must be a JSON object")
        phones, emails = _as_list(body.get("phoneNumber")), _as_list(body.get("email"))
        if not phones:
            return _nested(400, "VALIDATION_ERROR", "phoneNumber is required")
        try:
            normalised = [normalise("phone", p) for p in phones]
        except BadValue:
            return _nested(400, "INVALID_PHONE", "Invalid phone number")
        taken = {e["value"] for c in self.contacts.values() for e in c["phoneNumber"]}
        if taken.intersection(normalised):
            return _nested(409, "DUPLICATE_CONTACT", "A contact with this phone number already exists")
        contact_id = self.add_contact(
            first_name=str(body.get("firstName") or ""),
            last_name=str(body.get("lastName") or ""),
            phones=normalised,
            emails=emails,
        )
        return JSONResponse(
            {"message": "Contact created", "data": {"contact": copy.deepcopy(self.contacts[contact_id])}},
            status_code=201,
        )

    async def verify(self, request: Request) -> JSONResponse:
        caller = self._caller(request)
        if caller is None:
            return self._unauthorized()
        found = self._lookup(request)
        if isinstance(found, JSONResponse):
            return found
        body = await _json_object(request)
        if body is None:
            return _nested(400, "VALIDATION_ERROR", "Request body must be a JSON object")
        kind, value = body.get("type"), body.get("value")
        if kind not in _ARRAY:
            return _nested(400, "INVALID_TYPE", "type must be one of: phone, email")
        if not isinstance(value, str) or not value.strip():
            return _nested(400, "VALIDATION_ERROR", "value is required")
        verified_at = body.get("verifiedAt")
        source = body.get("verificationSource")
        if verified_at is not None:
            if not isinstance(verified_at, str):
                return _nested(400, "VALIDATION_ERROR", "verifiedAt must be an ISO 8601 date-time or null")
            try:
                verified_at = _iso(verified_at)
            except ValueError:
                return _nested(400, "VALIDATION_ERROR", "verifiedAt must be an ISO 8601 date-time or null")
        if source is not None and not isinstance(source, str):
            return _nested(400, "VALIDATION_ERROR", "verificationSource must be a string")
        try:
            wanted = normalise(kind, value)
        except BadValue:
            return _nested(400, "INVALID_PHONE", "Invalid phone number")
        entry = next((e for e in found[_ARRAY[kind]] if e["value"] == wanted), None)
        if entry is None:
            noun = "Phone number" if kind == "phone" else "Email"
            return _nested(400, "VALUE_NOT_FOUND", f"{noun} not found on this contact")
        if verified_at is None:
            entry.update(verifiedAt=None, verifiedBy=None, verificationSource=None)
        else:
            entry.update(verifiedAt=verified_at, verifiedBy=user_id_for(caller), verificationSource=source)
        return JSONResponse(
            {"message": _MESSAGES[(kind, verified_at is not None)], "data": {"contact": copy.deepcopy(found)}}
        )


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v.strip()]
    return []
