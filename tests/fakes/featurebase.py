"""A fake Featurebase API (the v2 contacts endpoints), written from PROVIDERS.md section 4 and the seed page.

It owns what a Featurebase workspace would do for `POST /v2/contacts` and its neighbours: Bearer-key auth with
Featurebase's `{"error":{type,code,message,param,status}}` envelope (401 unknown key, 403 a key without access),
the `Featurebase-Version` gate (v2 contacts need `2026-01-01.nova` or newer), body validation with the offending
`param`, stateful upsert (matched by `userId`, then by email; 201 created, 200 updated), identity verification of
`userHash`, and `X-RateLimit-*` headers on every answer. Tests seed and read state through `FeaturebaseFake`
and inject faults through its `FaultInjector` (`fake.app`). Handlers never sleep: a benchmark measures the client.

Decisions where Featurebase documents nothing (each marked [ASSUMPTION] below where the code depends on it):
a missing or older `Featurebase-Version` is a 400 `invalid_request_error` with code `invalid_api_version` and
param `Featurebase-Version`; a wrong `userHash` still upserts, with `verified: false`; `X-RateLimit-Reset` is
seconds to the end of the window and a 429 carries `Retry-After`; rate limits are enforced only when a test sets
`rate_limit`, so a benchmark never meets a 429 it did not ask for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.harness import FaultInjector

API_KEY = "sk_test_featurebase_fake_4f9c2a"
MIN_VERSION = "2026-01-01.nova"
# What a workspace answers with when no header is sent: the pre-v2-contacts default.
WORKSPACE_DEFAULT_VERSION = "2025-12-12.clover"
DOCUMENTED_KEY_LIMIT = 2000  # requests per minute per API key
ORGANIZATION_ID = "5febde12dc56d60012d47db6"

_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})\.[a-z0-9]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")

# (name, documented maxLength or None)
_CONTACT_STRINGS: tuple[tuple[str, int | None], ...] = (
    ("email", 500),
    ("userId", 500),
    ("name", 500),
    ("phone", 500),
    ("locale", 10),
    ("profilePicture", None),
    ("userHash", 256),
    ("createdAt", None),
)
_COMPANY_STRINGS: tuple[tuple[str, int | None], ...] = (
    ("plan", 500),
    ("industry", 500),
    ("website", 500),
    ("companyHash", 256),
    ("createdAt", None),
)


def error_body(kind: str, code: str, message: str, status: int, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": kind, "code": code, "message": message, "param": param, "status": status}}


def user_hash(secret: str, identifier: str) -> str:
    """Featurebase's identity verification: hex HMAC-SHA256 of the userId (or email) keyed with the secret."""
    return hmac.new(secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _object_id() -> str:
    return secrets.token_hex(12)


class _Invalid(Exception):
    """One validation failure, reported as Featurebase's 400 with the offending `param`."""

    def __init__(self, param: str | None, code: str, message: str) -> None:
        super().__init__(message)
        self.param = param
        self.code = code
        self.message = message


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass
class FeaturebaseState:
    api_keys: set[str] = field(default_factory=lambda: {API_KEY})
    forbidden_keys: set[str] = field(default_factory=lambda: set[str]())
    identity_secret: str | None = None
    rate_limit: int | None = None
    window_s: float = 60.0
    send_retry_after: bool = True
    contacts: dict[str, dict[str, Any]] = field(default_factory=lambda: dict[str, dict[str, Any]]())
    companies: dict[str, dict[str, Any]] = field(default_factory=lambda: dict[str, dict[str, Any]]())
    windows: dict[str, _Window] = field(default_factory=lambda: dict[str, _Window]())


class FeaturebaseFake:
    """The fake's state, its helpers for tests, and `app` (the Starlette app inside a `FaultInjector`)."""

    def __init__(self, *, identity_secret: str | None = None) -> None:
        self.state = FeaturebaseState(identity_secret=identity_secret)
        self._lock = threading.Lock()
        routes = [
            Route("/v2/contacts", self._upsert, methods=["POST"]),
            Route("/v2/contacts/by-user-id/{user_id:path}", self._get_by_user_id, methods=["GET"]),
            Route("/v2/contacts/{contact_id}", self._get, methods=["GET"]),
            Route("/v2/contacts/{contact_id}", self._delete, methods=["DELETE"]),
        ]
        self.app = FaultInjector(Starlette(routes=routes))

    # ---------- helpers for tests ----------

    @property
    def requests(self) -> list[Any]:
        return self.app.requests

    def reset(self, *, identity_secret: str | None = None) -> None:
        """Forget contacts, faults, requests and rate-limit windows; back to one valid key."""
        with self._lock:
            self.state = FeaturebaseState(identity_secret=identity_secret)
        self.app.clear()

    def seed_contact(self, *, user_id: str | None = None, email: str | None = None, **fields: Any) -> dict[str, Any]:
        """Store a contact as if an earlier upsert had created it; `fields` use Featurebase's names."""
        body: dict[str, Any] = {**fields}
        if user_id is not None:
            body["userId"] = user_id
        if email is not None:
            body["email"] = email
        with self._lock:
            contact, _ = self._apply(body)
        return contact

    def contact(self, contact_id: str) -> dict[str, Any] | None:
        return self.state.contacts.get(contact_id)

    def by_user_id(self, user_id: str) -> dict[str, Any] | None:
        return next((c for c in self.state.contacts.values() if c["userId"] == user_id), None)

    # ---------- the request pipeline ----------

    def _gate(self, request: Request, *, versioned: bool) -> tuple[JSONResponse | None, dict[str, str]]:
        """Auth, rate limit and version, in that order; returns an error answer or None, plus the limit headers."""
        auth = request.headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        known = scheme.lower() == "bearer" and key.strip() in self.state.api_keys | self.state.forbidden_keys
        key = key.strip() if known else ""
        headers = self._count(key)
        if not auth:
            message = "No API key provided. Send your key as a Bearer token in the Authorization header."
            return _answer(error_body("authentication_error", "missing_api_key", message, 401), 401, headers), headers
        if not known:
            message = "Invalid API key provided."
            return _answer(error_body("authentication_error", "invalid_api_key", message, 401), 401, headers), headers
        if key in self.state.forbidden_keys:
            message = "This API key does not have permission to access contacts."
            body = error_body("authorization_error", "insufficient_permissions", message, 403)
            return _answer(body, 403, headers), headers
        limit = self.state.rate_limit
        if limit is not None and self._over(key, limit):
            retry = {"Retry-After": headers["X-RateLimit-Reset"]} if self.state.send_retry_after else {}
            message = "Too many requests. Slow down and retry after the rate limit window resets."
            body = error_body("rate_limit_error", "rate_limit_exceeded", message, 429)
            return _answer(body, 429, {**headers, **retry}), headers
        if versioned:
            problem = _version_problem(request.headers.get("featurebase-version"))
            if problem is not None:
                # [ASSUMPTION] no page shows this error; it follows the documented 400 invalid_request_error shape.
                body = error_body("invalid_request_error", "invalid_api_version", problem, 400, "Featurebase-Version")
                return _answer(body, 400, headers), headers
        return None, headers

    def _count(self, key: str) -> dict[str, str]:
        """Count the request in its key's window; the X-RateLimit-* headers every answer carries."""
        limit = self.state.rate_limit or DOCUMENTED_KEY_LIMIT
        now = time.monotonic()
        with self._lock:
            window = self.state.windows.get(key)
            if window is None or now - window.started >= self.state.window_s:
                window = self.state.windows[key] = _Window(started=now)
            window.count += 1
            remaining = max(0, limit - window.count)
            reset = max(1, math.ceil(window.started + self.state.window_s - now))
        # [ASSUMPTION] Reset is seconds to the end of the window, not a Unix time.
        return {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }

    def _over(self, key: str, limit: int) -> bool:
        window = self.state.windows.get(key)
        return window is not None and window.count > limit

    # ---------- endpoints ----------

    async def _upsert(self, request: Request) -> JSONResponse:
        refused, headers = self._gate(request, versioned=True)
        if refused is not None:
            return refused
        try:
            body = json.loads(await request.body())
        except ValueError:
            message = "The request body is not valid JSON."
            return _answer(error_body("invalid_request_error", "invalid_json", message, 400), 400, headers)
        try:
            _validate_contact(body)
        except _Invalid as exc:
            return _answer(error_body("invalid_request_error", exc.code, exc.message, 400, exc.param), 400, headers)
        with self._lock:
            contact, created = self._apply(body)
        return _answer(contact, 201 if created else 200, headers)

    async def _get(self, request: Request) -> JSONResponse:
        refused, headers = self._gate(request, versioned=True)
        if refused is not None:
            return refused
        contact_id = request.path_params["contact_id"]
        if not _OBJECT_ID.match(contact_id):
            message = f"'{contact_id[:40]}' is not a valid contact id."
            return _answer(error_body("invalid_request_error", "parameter_invalid", message, 400, "id"), 400, headers)
        contact = self.state.contacts.get(contact_id)
        if contact is None:
            return _answer(_not_found("id"), 404, headers)
        return _answer(contact, 200, headers)

    async def _get_by_user_id(self, request: Request) -> JSONResponse:
        refused, headers = self._gate(request, versioned=True)
        if refused is not None:
            return refused
        contact = self.by_user_id(request.path_params["user_id"])
        if contact is None:
            return _answer(_not_found("userId"), 404, headers)
        return _answer(contact, 200, headers)

    async def _delete(self, request: Request) -> JSONResponse:
        refused, headers = self._gate(request, versioned=True)
        if refused is not None:
            return refused
        contact_id = request.path_params["contact_id"]
        with self._lock:
            contact = self.state.contacts.pop(contact_id, None)
        if contact is None:
            return _answer(_not_found("id"), 404, headers)
        return _answer({"object": "contact", "id": contact_id, "deleted": True}, 200, headers)

    # ---------- state ----------

    def _match(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """userId takes precedence; an email matches only a contact that has no other userId.

        [ASSUMPTION] the docs say only that userId takes precedence; a contact known by another userId is a
        different person, so an email match does not merge into it.
        """
        user_id = body.get("userId")
        if user_id is not None:
            found = self.by_user_id(user_id)
            if found is not None:
                return found
        email = body.get("email")
        if email is None:
            return None
        wanted = email.lower()
        for contact in self.state.contacts.values():
            same_email = (contact["email"] or "").lower() == wanted
            if same_email and contact["userId"] in (None, user_id):
                return contact
        return None

    def _apply(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        contact = self._match(body)
        created = contact is None
        if contact is None:
            contact = _new_contact()
            self.state.contacts[contact["id"]] = contact
        for name in ("email", "userId", "name", "phone", "locale", "profilePicture", "subscribedToChangelog"):
            if body.get(name) is not None:
                contact[name] = body[name]
        if body.get("roles") is not None:
            contact["roles"] = list(body["roles"])
        if body.get("customFields") is not None:
            # [ASSUMPTION] custom fields merge into the stored ones, as a partial update does.
            contact["customFields"] = {**contact["customFields"], **body["customFields"]}
        for company in body.get("companies") or []:
            self._link_company(contact, company)
        contact["type"] = "customer" if contact["userId"] else "lead"
        contact["verified"] = self._verified(body)
        contact["lastActivity"] = _now()
        return contact, created

    def _verified(self, body: dict[str, Any]) -> bool:
        """[ASSUMPTION] a wrong (or absent) userHash still upserts; it only leaves the contact unverified."""
        secret = self.state.identity_secret
        given = body.get("userHash")
        identifier = body.get("userId") or body.get("email")
        if secret is None or not given or not identifier:
            return False
        return hmac.compare_digest(given, user_hash(secret, identifier))

    def _link_company(self, contact: dict[str, Any], given: dict[str, Any]) -> None:
        external = given["id"]
        company = self.state.companies.get(external)
        if company is None:
            now = _now()
            company = {"object": "company", "id": _object_id(), "companyId": external, "createdAt": now}
            company.update({"customFields": {}, "linkedUsers": 0})
            self.state.companies[external] = company
        for name in ("name", "plan", "monthlySpend", "industry", "website", "companySize"):
            if given.get(name) is not None:
                company[name] = given[name]
        if given.get("customFields") is not None:
            company["customFields"] = {**company["customFields"], **given["customFields"]}
        company["updatedAt"] = _now()
        linked = [c for c in contact["companies"] if c["companyId"] != external]
        if len(linked) == len(contact["companies"]):
            company["linkedUsers"] += 1
        contact["companies"] = [*linked, company]


def _new_contact() -> dict[str, Any]:
    return {
        "object": "contact",
        "id": _object_id(),
        "userId": None,
        "email": None,
        "name": None,
        "type": "lead",
        "phone": None,
        "locale": None,
        "profilePicture": None,
        "companies": [],
        "customFields": {},
        "roles": [],
        "description": "",
        "subscribedToChangelog": True,
        "manuallyOptedOutFromChangelog": False,
        "organizationId": ORGANIZATION_ID,
        "commentsCreated": 0,
        "postsCreated": 0,
        "verified": False,
        "lastActivity": _now(),
    }


def _not_found(param: str) -> dict[str, Any]:
    return error_body("invalid_request_error", "resource_not_found", "Contact not found.", 404, param)


def _answer(body: Any, status: int, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def _version_problem(given: str | None) -> str | None:
    version = given.strip() if given else None
    shown = version or f"the workspace default, {WORKSPACE_DEFAULT_VERSION}"
    match = _VERSION.match(version or WORKSPACE_DEFAULT_VERSION)
    if match is None:
        return f"Unknown API version '{version}'. Versions look like {MIN_VERSION}."
    if match.group(1) < MIN_VERSION.split(".", 1)[0]:
        return f"This endpoint is only available in API version {MIN_VERSION} and newer (the request used {shown})."
    return None


# ---------- validation, as Featurebase's schema for POST /v2/contacts ----------


def _validate_contact(body: Any) -> None:
    if not isinstance(body, dict):
        raise _Invalid(None, "parameter_invalid", "The request body must be a JSON object.")
    for name, limit in _CONTACT_STRINGS:
        _check_string(body, name, limit, prefix="")
    email = body.get("email")
    if email is not None and not _EMAIL.match(email):
        raise _Invalid("email", "parameter_invalid", "email must be a valid email address.")
    picture = body.get("profilePicture")
    if picture is not None and not _URI.match(picture):
        raise _Invalid("profilePicture", "parameter_invalid", "profilePicture must be a valid URI.")
    if "subscribedToChangelog" in body and not isinstance(body["subscribedToChangelog"], bool):
        raise _Invalid("subscribedToChangelog", "parameter_invalid", "subscribedToChangelog must be a boolean.")
    roles = body.get("roles")
    if roles is not None and (not isinstance(roles, list) or not all(isinstance(r, str) for r in roles)):
        raise _Invalid("roles", "parameter_invalid", "roles must be an array of strings.")
    _check_custom_fields(body.get("customFields"), "customFields")
    companies = body.get("companies")
    if companies is not None:
        if not isinstance(companies, list):
            raise _Invalid("companies", "parameter_invalid", "companies must be an array.")
        for index, company in enumerate(companies):
            _validate_company(company, f"companies.{index}")
    if not body.get("email") and not body.get("userId"):
        raise _Invalid("email", "parameter_missing", "Either email or userId must be provided to identify the contact.")


def _validate_company(company: Any, at: str) -> None:
    if not isinstance(company, dict):
        raise _Invalid(at, "parameter_invalid", f"{at} must be an object.")
    for required in ("id", "name"):
        value = company.get(required)
        if value is None or value == "":
            raise _Invalid(f"{at}.{required}", "parameter_missing", f"{at}.{required} is required.")
        _check_string(company, required, 500, prefix=f"{at}.")
    for name, limit in _COMPANY_STRINGS:
        _check_string(company, name, limit, prefix=f"{at}.")
    for name in ("monthlySpend", "companySize"):
        value = company.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _Invalid(f"{at}.{name}", "parameter_invalid", f"{at}.{name} must be a number.")
        if value < 0:
            raise _Invalid(f"{at}.{name}", "parameter_invalid", f"{at}.{name} must be greater than or equal to 0.")
    _check_custom_fields(company.get("customFields"), f"{at}.customFields")


def _check_string(body: dict[str, Any], name: str, limit: int | None, *, prefix: str) -> None:
    value = body.get(name)
    if value is None:
        return
    param = f"{prefix}{name}"
    if not isinstance(value, str):
        raise _Invalid(param, "parameter_invalid", f"{param} must be a string.")
    if limit is not None and len(value) > limit:
        raise _Invalid(param, "parameter_too_long", f"{param} must be at most {limit} characters.")


def _check_custom_fields(value: Any, at: str) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise _Invalid(at, "parameter_invalid", f"{at} must be an object.")
    primitive = str | int | float | bool
    for key, item in value.items():
        ok = item is None or isinstance(item, primitive)
        ok = ok or (isinstance(item, list) and all(v is None or isinstance(v, primitive) for v in item))
        if not ok:
            raise _Invalid(f"{at}.{key}", "parameter_invalid", f"{at}.{key} must be a primitive or an array of them.")
