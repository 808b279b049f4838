"""A fake Blooio v4 (beta) API: contacts and their phone/email identities, written from Blooio's public v4 OpenAPI
(4.0.0-beta, `idknerdyshit/blooio` `api-spec/blooio-v4.openapi.json`), the attach-identity page
(`seeds/blooio-attach-identity.txt`) and PROVIDERS.md section 3.

Served under `/v4` like the real host, so clients are tested with a base URL that carries a path. An auth
middleware answers a wrong or missing bearer key with the flat `{"error": "ApiError", "message", "status"}` envelope
(401, or 403 for a blocked key); route handlers answer errors nested as `{"error": {"code", "message", "details"}}`.
Tests seed state with `seed_contact`, `close_chat` and `deactivate_channel` and read it back with `identities`.

Where no public page says, the fake does this ([ASSUMPTION], each also in PROVIDERS.md or the client):
* a duplicate identity (same contact, identifier, channel_type and channel_id) is 409 `identity_already_exists`;
  an identifier already attached on the same channel_type to another contact is a 409 with the same code;
* a contact whose chat is closed refuses new identities with 409 `chat_closed`; an inactive channel_id with 409
  `channel_not_active`;
* validation failures are 422 `validation_error` whose `details` name the `field`; malformed JSON is 400;
* phones must be written with +country code and are stored E.164; emails are stored lower-cased;
* an omitted channel_type is stored as null (the docs do not say what the server defaults to);
* the identity list of a contact pages like every v4 list (`limit`, `cursor`, `has_more`, `next_cursor`).
"""

from __future__ import annotations

import functools
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.fakes.harness import Fault, FaultInjector, RecordedRequest, serve

DEFAULT_KEY = "bl_live_fake_0123456789abcdef"
CHANNEL_TYPES = ("blooio", "twilio", "whatsapp", "whatsapp_business", "rcs_business", "amb")
PREFIX = "/v4"


@dataclass
class FakeIdentity:
    id: str
    contact_id: str
    channel_type: str | None
    identifier: str
    channel_id: str | None
    created_at: int

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "contact_id": self.contact_id,
            "channel_type": self.channel_type,
            "identifier": self.identifier,
            "channel_id": self.channel_id,
            "created_at": self.created_at,
        }


@dataclass
class FakeContact:
    id: str
    name: str | None
    created_at: int
    identities: list[FakeIdentity] = field(default_factory=list[FakeIdentity])
    tags: list[str] = field(default_factory=list[str])
    chat_closed: bool = False

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "tags": list(self.tags),
            "last_message_time": None,
            "last_direction": None,
            "last_text": None,
            "last_status": None,
            "identities": [{k: v for k, v in i.wire().items() if k != "contact_id"} for i in self.identities],
        }


class ApiError(Exception):
    """A route handler's error, answered in the nested envelope."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        return JSONResponse(body, status_code=self.status)


def _invalid(field_name: str, message: str, **details: Any) -> ApiError:
    return ApiError(422, "validation_error", message, {"field": field_name, **details})


def normalize_identifier(raw: str) -> str:
    """Blooio's two identity kinds: an email (lower-cased) or a phone (E.164, written with +country code)."""
    text = raw.strip()
    if "@" in text:
        try:
            return validate_email(text, check_deliverability=False).normalized.lower()
        except EmailNotValidError:
            raise _invalid("identifier", "identifier must be a phone number in E.164 format or an email") from None
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        raise _invalid("identifier", "identifier must be a phone number in E.164 format or an email") from None
    if not phonenumbers.is_valid_number(number):
        raise _invalid("identifier", "identifier is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


Handler = Callable[[Any, Request], Awaitable[Response]]


def _api(handler: Handler) -> Handler:
    """A route handler whose `ApiError`s become Blooio's nested error envelope."""

    @functools.wraps(handler)
    async def route(self: Any, request: Request) -> Response:
        try:
            return await handler(self, request)
        except ApiError as exc:
            return exc.response()

    return route


class BlooioFake:
    """State, seeding helpers and the ASGI app (`asgi`: the fault injector around the Blooio routes)."""

    def __init__(self, *, api_key: str = DEFAULT_KEY, page_size: int = 50) -> None:
        self.api_key = api_key
        self.key_blocked = False
        self.page_size = page_size
        self.now_ms: Callable[[], int] = lambda: int(time.time() * 1000)
        self.contacts: dict[str, FakeContact] = {}
        self.deleted: dict[str, FakeContact] = {}
        """Soft-deleted contacts, kept only for tests to look at."""
        self.inactive_channels: set[str] = set()
        self.attached = threading.Event()
        """Set whenever an identity is attached: lets a test wait for a request the client gave up on."""
        self._lock = threading.Lock()
        self.asgi = FaultInjector(_Auth(self._app(), self))

    # ---------- for tests ----------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.asgi.requests

    def push(self, fault: Fault) -> None:
        self.asgi.push(fault)

    def reset(self) -> None:
        with self._lock:
            self.api_key = DEFAULT_KEY
            self.key_blocked = False
            self.page_size = 50
            self.now_ms = lambda: int(time.time() * 1000)
            self.contacts.clear()
            self.deleted.clear()
            self.inactive_channels.clear()
            self.attached.clear()
        self.asgi.clear()

    def seed_contact(
        self, name: str | None = None, identities: tuple[tuple[str, str | None, str | None], ...] = ()
    ) -> str:
        """Create a contact with (identifier, channel_type, channel_id) identities; return its ct_ id."""
        with self._lock:
            contact = self._new_contact(name)
            for identifier, channel_type, channel_id in identities:
                self._attach(contact, normalize_identifier(identifier), channel_type, channel_id)
        return contact.id

    def close_chat(self, contact_id: str) -> None:
        with self._lock:
            self.contacts[contact_id].chat_closed = True

    def deactivate_channel(self, channel_id: str) -> None:
        with self._lock:
            self.inactive_channels.add(channel_id)

    def identities(self, contact_id: str) -> list[FakeIdentity]:
        with self._lock:
            return list(self.contacts[contact_id].identities)

    # ---------- state (callers hold the lock) ----------

    def _new_contact(self, name: str | None) -> FakeContact:
        contact = FakeContact(id=f"ct_{secrets.token_hex(12)}", name=name, created_at=self.now_ms())
        self.contacts[contact.id] = contact
        return contact

    def _attach(
        self, contact: FakeContact, identifier: str, channel_type: str | None, channel_id: str | None
    ) -> FakeIdentity:
        identity = FakeIdentity(
            id=f"cid_{secrets.token_hex(12)}",
            contact_id=contact.id,
            channel_type=channel_type,
            identifier=identifier,
            channel_id=channel_id,
            created_at=self.now_ms(),
        )
        contact.identities.append(identity)
        self.attached.set()
        return identity

    def _contact(self, contact_id: str) -> FakeContact:
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise ApiError(404, "contact_not_found", "Contact not found.", {"contact_id": contact_id})
        return contact

    def _check_attachable(
        self, contact: FakeContact, identifier: str, channel_type: str | None, channel_id: str | None
    ) -> None:
        for identity in contact.identities:
            if (identity.identifier, identity.channel_type, identity.channel_id) == (
                identifier,
                channel_type,
                channel_id,
            ):
                raise ApiError(
                    409,
                    "identity_already_exists",
                    "This identity is already attached to the contact.",
                    {"identity_id": identity.id},
                )
        for other in self.contacts.values():
            if other.id != contact.id and any(
                (i.identifier, i.channel_type) == (identifier, channel_type) for i in other.identities
            ):
                raise ApiError(
                    409, "identity_already_exists", "This identifier is already attached to another contact.", {}
                )
        if channel_id is not None and channel_id in self.inactive_channels:
            raise ApiError(409, "channel_not_active", "The channel is not active.", {"channel_id": channel_id})
        if contact.chat_closed:
            raise ApiError(409, "chat_closed", "The chat with this contact is closed.", {"contact_id": contact.id})

    # ---------- routes ----------

    def _app(self) -> Starlette:
        routes = [
            Route("/contacts", self._list_contacts, methods=["GET"]),
            Route("/contacts", self._create_contact, methods=["POST"]),
            Route("/contacts/{contact_id}", self._get_contact, methods=["GET"]),
            Route("/contacts/{contact_id}", self._delete_contact, methods=["DELETE"]),
            Route("/contacts/{contact_id}/identities", self._list_identities, methods=["GET"]),
            Route("/contacts/{contact_id}/identities", self._attach_identity, methods=["POST"]),
            Route("/contacts/{contact_id}/identities/{identity_id}", self._detach_identity, methods=["DELETE"]),
        ]

        async def http_error(request: Request, exc: Exception) -> Response:
            status = exc.status_code if isinstance(exc, HTTPException) else 500
            code = {404: "not_found", 405: "method_not_allowed"}.get(status, "internal_error")
            return ApiError(status, code, f"{request.method} {request.url.path} cannot be served.").response()

        return Starlette(routes=[Mount(PREFIX, routes=routes)], exception_handlers={HTTPException: http_error})

    @_api
    async def _list_contacts(self, request: Request) -> Response:
        """Cursor pagination by default; `q` or `offset` switch to offset pagination with a `pagination` object
        (the v4 OpenAPI's listContacts). `identifier` is an exact phone/email match, `q` a case-insensitive search
        across names, identities and tags."""
        query = request.query_params
        wanted = query.get("identifier")
        search = query.get("q")
        offset_mode = search is not None or "offset" in query
        if offset_mode and "cursor" in query:
            raise ApiError(400, "invalid_request", "offset cannot be combined with cursor", {"field": "offset"})
        limit, offset = _paging(request, default=50)
        if offset_mode:
            raw = query.get("offset", "0")
            if not raw.isdigit():
                raise ApiError(400, "invalid_request", "offset must be a non-negative integer", {"field": "offset"})
            offset = int(raw)
        with self._lock:
            contacts = list(self.contacts.values())
            if wanted:
                key = _lenient_identifier(wanted)
                contacts = [c for c in contacts if any(i.identifier == key for i in c.identities)]
            if search:
                needle = search.casefold()
                contacts = [c for c in contacts if needle in _searchable(c)]
            wired = [c.wire() for c in contacts]
        if not offset_mode:
            return _list_envelope(wired, limit, offset)
        page = wired[offset : offset + limit]
        return JSONResponse(
            {
                "data": page,
                "has_more": offset + limit < len(wired),
                "next_cursor": None,
                "pagination": {"limit": limit, "offset": offset, "total": len(wired)},
            }
        )

    @_api
    async def _create_contact(self, request: Request) -> Response:
        body = await _json_object(request)
        name = body.get("name")
        if name is not None and not isinstance(name, str):
            raise _invalid("name", "name must be a string or null")
        first = _identity_fields(body) if "identifier" in body else None
        with self._lock:
            if first is not None:
                self._check_attachable(FakeContact(id="", name=None, created_at=0), *first)
            contact = self._new_contact(name)
            if first is not None:
                self._attach(contact, *first)
            return JSONResponse({"data": contact.wire()}, status_code=201)

    @_api
    async def _get_contact(self, request: Request) -> Response:
        with self._lock:
            return JSONResponse({"data": self._contact(request.path_params["contact_id"]).wire()})

    @_api
    async def _delete_contact(self, request: Request) -> Response:
        """deleteContact: "Soft-deletes a contact and its identities" (200 `{data: {id, deleted: true}}`). The fake
        keeps the soft-deleted contact in `deleted`, out of every route (it answers 404 like an unknown one)."""
        with self._lock:
            contact = self._contact(request.path_params["contact_id"])
            del self.contacts[contact.id]
            self.deleted[contact.id] = contact
        return JSONResponse({"data": {"id": contact.id, "deleted": True}})

    @_api
    async def _list_identities(self, request: Request) -> Response:
        limit, offset = _paging(request, default=self.page_size)
        with self._lock:
            contact = self._contact(request.path_params["contact_id"])
            return _list_envelope([i.wire() for i in contact.identities], limit, offset)

    @_api
    async def _attach_identity(self, request: Request) -> Response:
        identifier, channel_type, channel_id = _identity_fields(await _json_object(request))
        with self._lock:
            contact = self._contact(request.path_params["contact_id"])
            self._check_attachable(contact, identifier, channel_type, channel_id)
            identity = self._attach(contact, identifier, channel_type, channel_id)
            return JSONResponse({"data": identity.wire()}, status_code=201)

    @_api
    async def _detach_identity(self, request: Request) -> Response:
        identity_id = request.path_params["identity_id"]
        with self._lock:
            contact = self._contact(request.path_params["contact_id"])
            identity = next((i for i in contact.identities if i.id == identity_id), None)
            if identity is None:
                raise ApiError(404, "identity_not_found", "Identity not found.", {"identity_id": identity_id})
            contact.identities.remove(identity)
        return JSONResponse({"data": {"id": identity_id, "detached": True}})


# ---------- request reading ----------


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise ApiError(400, "invalid_json", "Request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise _invalid("body", "Request body must be a JSON object.")
    return cast(dict[str, Any], body)


def _identity_fields(body: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(identifier, channel_type, channel_id) of an attach/create body, validated as Blooio documents them."""
    identifier = body.get("identifier")
    if not isinstance(identifier, str) or not identifier.strip():
        raise _invalid("identifier", "identifier is required", reason="required")
    channel_type = body.get("channel_type")
    if channel_type is not None and channel_type not in CHANNEL_TYPES:
        raise _invalid("channel_type", f"channel_type must be one of {', '.join(CHANNEL_TYPES)}", allowed=CHANNEL_TYPES)
    channel_id = body.get("channel_id")
    if channel_id is not None and (not isinstance(channel_id, str) or not channel_id.strip()):
        raise _invalid("channel_id", "channel_id must be a non-empty string")
    if channel_type == "amb" and channel_id is None:
        raise _invalid("channel_id", "channel_id is required when channel_type is amb", reason="required")
    return normalize_identifier(identifier), channel_type, channel_id


def _lenient_identifier(raw: str) -> str:
    try:
        return normalize_identifier(raw)
    except ApiError:
        return raw.strip().lower()


def _paging(request: Request, *, default: int) -> tuple[int, int]:
    """(limit, offset) from `limit` (1-200) and the opaque `cursor` (ours encodes an offset)."""
    raw_limit = request.query_params.get("limit")
    try:
        limit = int(raw_limit) if raw_limit is not None else default
    except ValueError:
        limit = 0
    if not 1 <= limit <= 200:
        raise ApiError(400, "invalid_request", "limit must be an integer between 1 and 200", {"field": "limit"})
    cursor = request.query_params.get("cursor")
    if cursor is None:
        return limit, 0
    if not cursor.startswith("cur_") or not cursor[4:].isdigit():
        raise ApiError(400, "invalid_cursor", "cursor is not valid", {"field": "cursor"})
    return limit, int(cursor[4:])


def _searchable(contact: FakeContact) -> str:
    return " ".join([contact.name or "", *(i.identifier for i in contact.identities), *contact.tags]).casefold()


def _list_envelope(items: list[dict[str, Any]], limit: int, offset: int) -> JSONResponse:
    page = items[offset : offset + limit]
    more = offset + limit < len(items)
    return JSONResponse({"data": page, "has_more": more, "next_cursor": f"cur_{offset + limit}" if more else None})


# ---------- the auth middleware ----------


class _Auth:
    """Blooio's auth middleware: bearer key checked before any route, flat error envelope."""

    def __init__(self, app: ASGIApp, fake: BlooioFake) -> None:
        self.app = app
        self.fake = fake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scheme, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secrets.compare_digest(token.encode(), self.fake.api_key.encode()):
                await _flat(401, "Invalid or missing API key.")(scope, receive, send)
                return
            if self.fake.key_blocked:
                await _flat(403, "This API key is blocked.")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _flat(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": "ApiError", "message": message, "status": status}, status_code=status)


@contextmanager
def running(fake: BlooioFake | None = None) -> Iterator[tuple[BlooioFake, str]]:
    """Serve a fake on 127.0.0.1; yield it and the base URL a client uses (`http://127.0.0.1:<port>/v4`)."""
    fake = fake or BlooioFake()
    with serve(fake.asgi) as url:
        yield fake, url + PREFIX
