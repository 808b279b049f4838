"""A fake of Feather's identity API (OpenAPI v1.21.0, PROVIDERS.md section 1), written from the public docs.

It serves `GET /v1/identity/whoami`, `GET /v1/identity/end-users/{id}` (the end user with its contacts),
`GET /v1/identity/end-users` (`CursorPage[EndUserResponse]`, filtered by `org_external_end_user_id`, `limit` 1-200,
opaque `cursor`) and `POST /v1/identity/end-users/{id}/contacts`, with `x-api-key` auth answering Feather's exact
401 envelope, FastAPI's 422 `{"detail": [...]}` for a bad path id or body, the flat `{"error", "message"}` envelope
for everything else,
and state: end users, their contacts, typed-channel normalisation and idempotent re-adds. Tests seed end users
with `add_end_user`, read `end_users`, and inject faults through `fake.app` (a `FaultInjector`).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.harness import FaultInjector, RecordedRequest

API_KEY = "fth_live_fake_0123456789abcdef"
ORG_ID = "5b0c6a8e-2f7d-4c1e-9a3b-0d4e5f6a7b8c"
ORG_NAME = "Acme Support"

UNAUTHORIZED_BODY = {
    "error": "authentication_required",
    "message": "No valid API key was provided. Pass your key in the x-api-key header.",
}
RATE_LIMITED_BODY = {
    "error": "rate_limited",
    "message": "Organization rate limit exceeded. Retry after a short delay.",
}

# The typed channels of AddContactRequest's description plus the newer instagram/facebook, and what each holds.
_PHONE_CHANNELS = frozenset({"phone", "sms", "voice", "whatsapp"})
_HANDLE_CHANNELS = frozenset({"slack", "twitter", "instagram", "facebook"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_UUID = TypeAdapter(uuid.UUID)


def validation_error(loc: list[str | int], msg: str, kind: str, value: Any = None) -> dict[str, Any]:
    """One FastAPI 422 body, the shape Feather sends (`HTTPValidationError`)."""
    return {"detail": [{"type": kind, "loc": loc, "msg": msg, "input": value}]}


class _AddContactRequest(BaseModel):
    channel: str
    value: str


@dataclass
class FakeContact:
    uid: str
    channel: str
    type: str | None
    raw_value: str
    normalized_value: str
    verification_method: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "channel": self.channel,
            "type": self.type,
            "raw_value": self.raw_value,
            "normalized_value": self.normalized_value,
            "verification_method": self.verification_method,
        }


@dataclass
class FakeEndUser:
    uid: str
    display_name: str | None = None
    external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict[str, Any])
    contacts: list[FakeContact] = field(default_factory=list[FakeContact])

    def summary_json(self) -> dict[str, Any]:
        """`EndUserResponse`, an item of the list."""
        return {
            "uid": self.uid,
            "org_id": ORG_ID,
            "status": "active",
            "display_name": self.display_name,
            "primary_email": next((c.normalized_value for c in self.contacts if c.type == "email"), None),
            "primary_phone": next((c.normalized_value for c in self.contacts if c.channel in _PHONE_CHANNELS), None),
            "metadata": dict(self.metadata),
            "org_external_end_user_id": self.external_id,
            "merged_into": None,
        }

    def as_json(self) -> dict[str, Any]:
        """`EndUserProfileResponse`: the end user with its contacts (the profile has no `merged_into`)."""
        profile = {k: v for k, v in self.summary_json().items() if k != "merged_into"}
        return {**profile, "contacts": [c.as_json() for c in self.contacts]}


class _Unusable(Exception):
    """A value Feather cannot normalise for its channel (answered 400 bad_request)."""


def normalize(channel: str, raw: str) -> tuple[str | None, str]:
    """(type, normalized value) as Feather documents it: typed channels normalise, unknown ones are only trimmed.

    [ASSUMPTION] a value that does not fit its typed channel, or an empty value, is a 400 bad_request; a phone
    without a +country code is refused (Feather documents no default region)."""
    text = raw.strip()
    if not text:
        raise _Unusable("value must not be empty")
    kind = channel.strip().lower()
    if kind == "email":
        if not _EMAIL.match(text):
            raise _Unusable(f"{text!r} is not a valid email address")
        return kind, text.lower()
    if kind in _PHONE_CHANNELS:
        try:
            number = phonenumbers.parse(text, None)
        except phonenumbers.NumberParseException:
            raise _Unusable(f"{text!r} is not a valid phone number") from None
        if not phonenumbers.is_valid_number(number):
            raise _Unusable(f"{text!r} is not a valid phone number")
        return kind, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if kind in _HANDLE_CHANNELS:
        return kind, text
    return None, text


Endpoint = Callable[[Request], Awaitable[Response]]


class FeatherFake:
    """State plus the Starlette app; serve `fake.app` with `harness.serve`."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        self.api_key = api_key
        self.end_users: dict[str, FakeEndUser] = {}
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route("/v1/identity/whoami", self._guard(self._whoami), methods=["GET"]),
                Route("/v1/identity/end-users", self._guard(self._list_end_users), methods=["GET"]),
                Route("/v1/identity/end-users/{end_user_id}", self._guard(self._get_end_user), methods=["GET"]),
                Route("/v1/identity/end-users/{end_user_id}", self._guard(self._delete_end_user), methods=["DELETE"]),
                Route(
                    "/v1/identity/end-users/{end_user_id}/contacts",
                    self._guard(self._add_contact),
                    methods=["POST"],
                ),
            ],
            exception_handlers={HTTPException: _http_exception},
        )
        self.app = FaultInjector(app)

    # ---------- for tests ----------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.requests

    def reset(self) -> None:
        """Forget state, requests and queued faults; restore the documented key."""
        self.app.clear()
        self.api_key = API_KEY
        with self._lock:
            self.end_users.clear()

    def add_end_user(
        self, *, display_name: str | None = None, external_id: str | None = None, metadata: dict[str, Any] | None = None
    ) -> str:
        uid = str(uuid.uuid4())
        with self._lock:
            self.end_users[uid] = FakeEndUser(
                uid=uid, display_name=display_name, external_id=external_id, metadata=dict(metadata or {})
            )
        return uid

    def add_contact(
        self, end_user_id: str, channel: str, value: str, *, verification_method: str | None = None
    ) -> FakeContact:
        """Seed a contact as if it had been verified some other way (e.g. an OTP)."""
        contact, _ = self._attach(self.end_users[end_user_id], channel, value)
        contact.verification_method = verification_method
        return contact

    # ---------- the API ----------

    def _guard(self, endpoint: Endpoint) -> Endpoint:
        async def guarded(request: Request) -> Response:
            if request.headers.get("x-api-key") != self.api_key:
                return JSONResponse(UNAUTHORIZED_BODY, status_code=401)
            return await endpoint(request)

        return guarded

    async def _whoami(self, request: Request) -> Response:
        return JSONResponse(
            {
                "user_id": "0f6f3b8a-8d2e-4f5c-a1b2-c3d4e5f60718",
                "clerk_user_id": "user_2fake",
                "email": "ops@acme.example",
                "display_name": "Ops",
                "role": "org:admin",
                "organization_id": ORG_ID,
                "organization_name": ORG_NAME,
                "kb_clearance_level": 0,
                "kb_acl_enabled": False,
            }
        )

    async def _list_end_users(self, request: Request) -> Response:
        """Insertion order; the cursor is the uid of the last item served ([ASSUMPTION] opaque to clients)."""
        query = request.query_params
        try:
            limit = int(query.get("limit", "50"))
        except ValueError:
            return JSONResponse(
                validation_error(["query", "limit"], "Input should be a valid integer", "int_parsing"), 422
            )
        if not 1 <= limit <= 200:
            return JSONResponse(
                validation_error(["query", "limit"], "Input should be less than or equal to 200", "less_than_equal"),
                422,
            )
        wanted = query.get("org_external_end_user_id")
        with self._lock:
            users = [u for u in self.end_users.values() if wanted is None or u.external_id == wanted]
            start = 0
            cursor = query.get("cursor")
            if cursor is not None:
                position = next((i for i, u in enumerate(users) if u.uid == cursor), None)
                if position is None:
                    return JSONResponse({"error": "bad_request", "message": "Invalid cursor"}, status_code=400)
                start = position + 1
            page = users[start : start + limit]
            more = start + limit < len(users)
            body = {
                "items": [u.summary_json() for u in page],
                "next_cursor": page[-1].uid if more and page else None,
                "has_more": more,
            }
        return JSONResponse(body)

    async def _get_end_user(self, request: Request) -> Response:
        end_user_id, errors = _path_uuid(request)
        if end_user_id is None:
            return JSONResponse({"detail": errors}, status_code=422)
        end_user = self.end_users.get(end_user_id)
        if end_user is None:
            return _not_found(end_user_id)
        with self._lock:
            return JSONResponse(end_user.as_json())

    async def _delete_end_user(self, request: Request) -> Response:
        """`DELETE /v1/identity/end-users/{end_user_id}` (deleteEndUser): 204, the end user and its data gone."""
        end_user_id, errors = _path_uuid(request)
        if end_user_id is None:
            return JSONResponse({"detail": errors}, status_code=422)
        with self._lock:
            end_user = self.end_users.pop(end_user_id, None)
        if end_user is None:
            return _not_found(end_user_id)
        return Response(status_code=204)

    async def _add_contact(self, request: Request) -> Response:
        # FastAPI validates the path and the body together and reports every problem in one 422.
        end_user_id, errors = _path_uuid(request)
        body, body_errors = _body(await request.body())
        errors += body_errors
        if end_user_id is None or body is None:
            return JSONResponse({"detail": errors}, status_code=422)
        end_user = self.end_users.get(end_user_id)
        if end_user is None:
            return _not_found(end_user_id)
        try:
            contact, _ = self._attach(end_user, body.channel, body.value)
        except _Unusable as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, status_code=400)
        # [ASSUMPTION] re-adding the same channel and value answers 201 with the existing contact.
        return JSONResponse(contact.as_json(), status_code=201)

    def _attach(self, end_user: FakeEndUser, channel: str, value: str) -> tuple[FakeContact, bool]:
        kind, normalized = normalize(channel, value)
        with self._lock:
            for contact in end_user.contacts:
                if contact.channel == channel and contact.normalized_value == normalized:
                    return contact, False
            contact = FakeContact(
                uid=str(uuid.uuid4()),
                channel=channel,
                type=kind,
                raw_value=value,
                normalized_value=normalized,
            )
            end_user.contacts.append(contact)
            return contact, True


def _path_uuid(request: Request) -> tuple[str | None, list[dict[str, Any]]]:
    """The path id as FastAPI's `uuid` parameter parses it (a scalar adapter adds no loc: it is ["path", name])."""
    raw = request.path_params["end_user_id"]
    try:
        return str(_UUID.validate_python(raw)), []
    except ValidationError as exc:
        return None, _fastapi_errors(exc, "path", "end_user_id")


def _body(raw: bytes) -> tuple[_AddContactRequest | None, list[dict[str, Any]]]:
    if not raw:
        return None, validation_error(["body"], "Field required", "missing")["detail"]
    try:
        data = json.loads(raw)
    except ValueError as exc:
        error = {
            "type": "json_invalid",
            "loc": ["body", getattr(exc, "pos", 0)],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": getattr(exc, "msg", str(exc))},
        }
        return None, [error]
    try:
        # FastAPI validates bodies with from_attributes=True: a non-object is "model_attributes_type".
        return _AddContactRequest.model_validate(data, from_attributes=True), []
    except ValidationError as exc:
        return None, _fastapi_errors(exc, "body")


def _fastapi_errors(exc: ValidationError, *prefix: str) -> list[dict[str, Any]]:
    """Pydantic errors the way FastAPI words them: location prefixed, no documentation URL."""
    out: list[dict[str, Any]] = []
    for err in exc.errors(include_url=False):
        item: dict[str, Any] = {"type": err["type"], "loc": [*prefix, *err["loc"]], "msg": err["msg"]}
        item["input"] = err.get("input")
        if "ctx" in err:
            item["ctx"] = {k: str(v) for k, v in err["ctx"].items()}
        out.append(item)
    return out


def _not_found(end_user_id: str) -> Response:
    # [ASSUMPTION] unknown end user -> 404 in Feather's flat envelope.
    return JSONResponse({"error": "not_found", "message": f"End user {end_user_id} not found"}, status_code=404)


async def _http_exception(request: Request, exc: Exception) -> Response:
    """Routing misses in Feather's envelope ("Standard error response returned by all API error handlers")."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
    detail = exc.detail if isinstance(exc, HTTPException) else "Internal Server Error"
    return JSONResponse({"error": code, "message": detail}, status_code=status)
