"""`FeaturebaseClient`: `upsert_contact` served by Featurebase's `POST /v2/contacts` (API `2026-01-01.nova`+), and
the reads its neighbours allow: `get_contact` (`GET /v2/contacts/{id}`) and `find_contacts` by `user_id` only
(`GET /v2/contacts/by-user-id/{userId}`: a page of zero or one contact), and `delete_contact`
(`DELETE /v2/contacts/{id}`, replayed like a read: DELETE is idempotent).

Reads top to bottom: configuration (key, `Featurebase-Version` on every request, the optional identity-verification
secret), the request body in Featurebase's field names, the mapping of the contact it answers (201 created,
200 updated) into `UpsertResult`, and the mapping of its `{"error":{type,code,message,param,status}}` envelope,
whose camelCase `param` becomes the snake_case argument the agent passed. The upsert is idempotent, so it is
replayed after a 429/502/503/504 or a dropped connection. When `FEATUREBASE_IDENTITY_SECRET` is set the client
signs the contact (`userHash`), so the agent never sees the secret.

A dry run sends no upsert. With a `user_id` it reads the contact by user id and reports the fields the upsert would
change ([ASSUMPTION] as the fake merges them: custom fields key by key, companies by id, roles replaced); an unknown
user id without an email would create a contact. Featurebase has no read by email, so where the email decides the
match, the dry run says it cannot tell whether the upsert would create or update.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, cast

import httpx2
from pydantic import ValidationError

from contact_mcp.errors import ConfigError, ContactError, InvalidArgument, NotFound, ProviderError
from contact_mcp.models import (
    Company,
    Contact,
    ContactMethod,
    ContactPage,
    ContactSummary,
    CustomValue,
    DeleteContactInput,
    DeletedContact,
    FindContactsInput,
    Operation,
    UpsertContactInput,
    UpsertResult,
    changes_between,
)
from contact_mcp.providers.http import ErrorDetail, HttpOptions, HttpProvider, parse_retry_after, path_segment
from contact_mcp.providers.http.wire import iso_from_text, mapping, text
from contact_mcp.redact import Scrubber
from contact_mcp.settings import Settings

VERSION_HEADER = "Featurebase-Version"
# The first API version that serves the v2 contacts endpoints.
MIN_API_VERSION = "2026-01-01.nova"
_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})\.[A-Za-z0-9]+$")

# Featurebase's parameter names -> the tool's argument names (company fields included).
_ARGUMENT_NAMES = {
    "userId": "user_id",
    "profilePicture": "profile_picture",
    "customFields": "custom_fields",
    "subscribedToChangelog": "subscribed_to_changelog",
    "monthlySpend": "monthly_spend",
    "companySize": "company_size",
}
# Parameters the client sets itself, never the agent: an error about them is the operator's to fix.
_SERVER_SET = frozenset({"userHash", VERSION_HEADER})
_PARAM_TOKEN = re.compile(r"[^.\[\]]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")
# Above this, X-RateLimit-Reset reads as a Unix time rather than a number of seconds.
_UNIX_TIME_FLOOR = 1_000_000_000
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")
_GET_HINT = "Featurebase has no contact with this id; find it by user_id with find_contacts"
_DELETE_HINT = (
    "Featurebase has no contact with this id (it may be deleted already); find it by user_id with find_contacts"
)


class FeaturebaseClient(HttpProvider):
    """Featurebase's contacts API, for `upsert_contact`."""

    name = "featurebase"
    display_name = "Featurebase"
    operations = frozenset(
        {Operation.UPSERT_CONTACT, Operation.GET_CONTACT, Operation.FIND_CONTACTS, Operation.DELETE_CONTACT}
    )
    find_filters = ("user_id",)
    filter_required = True
    paginates = False

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        api_version: str = MIN_API_VERSION,
        identity_secret: str | None = None,
        options: HttpOptions | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        scrubber: Scrubber | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            api_key=api_key,
            options=options,
            transport=transport,
            scrubber=scrubber or Scrubber([api_key, identity_secret]),
        )
        self.api_version = api_version
        self._identity_secret = identity_secret.encode() if identity_secret else None
        self.client.headers[VERSION_HEADER] = api_version

    @classmethod
    def preflight(cls, settings: Settings) -> None:
        check_api_version(settings.featurebase_api_version)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx2.AsyncBaseTransport | None = None
    ) -> FeaturebaseClient:
        base_url, api_key = settings.credentials(cls.name)
        secret = settings.featurebase_identity_secret
        secret_text = secret.get_secret_value().strip() if secret is not None else ""
        return cls(
            base_url=base_url,
            api_key=api_key,
            api_version=settings.featurebase_api_version.strip(),
            identity_secret=secret_text or None,
            options=HttpOptions.from_settings(settings),
            transport=transport,
            scrubber=Scrubber.from_settings(settings),
        )

    # ---------- the operation ----------

    async def upsert_contact(self, call: UpsertContactInput) -> UpsertResult:
        if call.dry_run:
            return await self._dry_upsert(call)
        status, body = await self.request("POST", "/v2/contacts", replayable=True, json_body=self.contact_body(call))
        return self._result(status, body)

    async def _dry_upsert(self, call: UpsertContactInput) -> UpsertResult:
        stored: Contact | None = None
        if call.user_id is not None:
            try:
                _, body = await self.request(
                    "GET", f"/v2/contacts/by-user-id/{path_segment(call.user_id)}", replayable=True
                )
                stored = self._contact(body)
            except NotFound:
                stored = None  # the lookup is exact: no contact has this user id
        given = _view_of_call(call)
        if stored is not None:
            before = _view_of_contact(stored)
            after: dict[str, Any] = {**before, **given}
            after["companies"] = _companies_after(stored.companies, call.companies)
            after = {key: value for key, value in after.items() if value is not None}
            return UpsertResult(
                provider=self.name,
                outcome="updated",  # what the upsert would answer (200), changed or not
                id=stored.id,
                user_id=after.get("user_id"),
                email=after.get("email"),
                name=after.get("name"),
                phone=after.get("phone"),
                dry_run=True,
                changes=changes_between(before, after),
            )
        known = call.email is None
        return UpsertResult(
            provider=self.name,
            outcome="created" if known else None,
            user_id=call.user_id,
            email=call.email,
            name=call.name,
            phone=call.phone,
            dry_run=True,
            changes=changes_between({}, given) if known else None,
            note="Featurebase assigns the new contact's id."
            if known
            else "Featurebase has no read by email, so it cannot tell whether a contact with this email exists: "
            "the upsert would update it, or create one.",
        )

    async def probe(self) -> str:
        """Featurebase documents no cheap read of v2 contacts, so look up a user id that cannot exist: its 404
        (in Featurebase's envelope) proves the key, the API version and the base URL; 401/403 raise."""
        probe_id = f"contact-mcp-probe-{secrets.token_hex(8)}"
        verdict = f"{self.shown_url} accepted the key and API version {self.api_version}"
        try:
            await self.request("GET", f"/v2/contacts/by-user-id/{path_segment(probe_id)}", replayable=True)
        except NotFound as exc:
            if exc.status == 404:
                return verdict
            raise
        return verdict

    async def get_contact(self, contact_id: str) -> Contact:
        try:
            _, body = await self.request("GET", self._contact_path(contact_id), replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_GET_HINT) from None
        return self._contact(body)

    async def delete_contact(self, call: DeleteContactInput) -> DeletedContact:
        """`DELETE /v2/contacts/{id}` answers `{id, object: "contact", deleted: true}`; Featurebase removes the
        contact for good and cleans up its data asynchronously."""
        if call.dry_run:
            return await self.delete_preview(call.contact_id)
        try:
            _, body = await self.request("DELETE", self._contact_path(call.contact_id), replayable=True)
        except NotFound as exc:
            raise exc.evolve(field="contact_id", hint=_DELETE_HINT) from None
        answer = mapping(body) or {}
        deleted_id = text(answer.get("id"))
        if deleted_id is None or answer.get("deleted") is not True:
            raise ProviderError(
                "Featurebase's delete answer does not confirm the deletion",
                provider=self.name,
                status=200,
                hint="Read the contact with get_contact to see whether it is gone",
            )
        return DeletedContact(provider=self.name, id=deleted_id)

    def _contact_path(self, contact_id: str) -> str:
        given = contact_id.strip()
        if not _OBJECT_ID.fullmatch(given):
            raise InvalidArgument(
                "contact_id must be a Featurebase contact id: 24 hexadecimal characters",
                field="contact_id",
                hint="Use the contact's id as Featurebase returns it, e.g. 676f0f6765bdaa7d7d760f88",
                provider=self.name,
            )
        return f"/v2/contacts/{path_segment(given.lower())}"

    async def find_contacts(self, call: FindContactsInput) -> ContactPage:
        self.check_filters(call)
        user_id = call.user_id or ""
        try:
            _, body = await self.request("GET", f"/v2/contacts/by-user-id/{path_segment(user_id)}", replayable=True)
        except NotFound:
            # The lookup is exact: no contact has this user id.
            return ContactPage(provider=self.name, contacts=[])
        contact = self._contact(body)
        summary = ContactSummary(
            id=contact.id,
            name=contact.name,
            user_id=contact.user_id,
            email=_value(contact, "email"),
            phone=_value(contact, "phone"),
        )
        return ContactPage(provider=self.name, contacts=[summary])

    def _contact(self, body: Any) -> Contact:
        """Featurebase's contact object as the canonical `Contact`."""
        contact = mapping(body) or {}
        contact_id = text(contact.get("id"))
        if contact_id is None:
            raise ProviderError(
                "Featurebase's contact answer has no id",
                provider=self.name,
                status=200,
                hint="Featurebase's API may have changed; the operator should check FEATUREBASE_API_VERSION",
            )
        methods = [
            ContactMethod(channel=kind, type=kind, value=value)
            for kind in ("email", "phone")
            if (value := text(contact.get(kind))) is not None
        ]
        roles = contact.get("roles")
        subscribed = contact.get("subscribedToChangelog")
        return Contact(
            provider=self.name,
            id=contact_id,
            user_id=text(contact.get("userId")),
            name=text(contact.get("name")),
            locale=text(contact.get("locale")),
            profile_picture=text(contact.get("profilePicture")),
            companies=_companies(contact.get("companies")),
            custom_fields=_scalars(contact.get("customFields")),
            roles=[r for r in cast(list[object], roles) if isinstance(r, str)] if isinstance(roles, list) else [],
            subscribed_to_changelog=subscribed if isinstance(subscribed, bool) else None,
            created_at=iso_from_text(contact.get("createdAt")),
            updated_at=iso_from_text(contact.get("updatedAt")),
            methods=methods,
        )

    def contact_body(self, call: UpsertContactInput) -> dict[str, Any]:
        """The request body: Featurebase's field names, only the fields that were given."""
        body: dict[str, Any] = {}
        scalars: tuple[tuple[str, object], ...] = (
            ("email", call.email),
            ("userId", call.user_id),
            ("name", call.name),
            ("phone", call.phone),
            ("locale", call.locale),
            ("profilePicture", call.profile_picture),
            ("subscribedToChangelog", call.subscribed_to_changelog),
        )
        body.update((key, value) for key, value in scalars if value is not None)
        if call.companies is not None:
            body["companies"] = [_company(company) for company in call.companies]
        if call.custom_fields is not None:
            body["customFields"] = dict(call.custom_fields)
        if call.roles is not None:
            body["roles"] = list(call.roles)
        signed = self.user_hash(call.user_id or call.email)
        if signed is not None:
            body["userHash"] = signed
        return body

    def user_hash(self, identifier: str | None) -> str | None:
        """Identity verification: hex HMAC-SHA256 of the userId (or email) keyed with the workspace secret."""
        if self._identity_secret is None or not identifier:
            return None
        return hmac.new(self._identity_secret, identifier.encode(), hashlib.sha256).hexdigest()

    # ---------- response mapping ----------

    def _result(self, status: int, body: Any) -> UpsertResult:
        contact = cast(Mapping[str, Any], body if isinstance(body, Mapping) else {})
        contact_id = contact.get("id")
        if not isinstance(contact_id, str) or not contact_id:
            raise ProviderError(
                f"Featurebase answered {status} without a contact id",
                provider=self.name,
                status=status,
                retryable=True,
                hint="The upsert is idempotent: calling again with the same arguments is safe",
            )
        return UpsertResult(
            provider=self.name,
            # Featurebase answers 201 for a new contact and 200 for any update; it cannot tell "unchanged".
            outcome="created" if status == 201 else "updated",
            id=contact_id,
            user_id=text(contact.get("userId")),
            email=text(contact.get("email")),
            name=text(contact.get("name")),
            phone=text(contact.get("phone")),
        )

    # ---------- error mapping ----------

    def retry_after(self, status: int, headers: httpx2.Headers) -> float | None:
        """[ASSUMPTION] Featurebase's 429 carries Retry-After; when one does not, X-RateLimit-Reset (seconds to the
        end of the window) says the same. A Reset large enough to be a Unix time is turned into seconds from now."""
        given = super().retry_after(status, headers)
        if given is not None or status != 429:
            return given
        reset = parse_retry_after(headers.get("x-ratelimit-reset"))
        if reset is not None and reset >= _UNIX_TIME_FLOOR:
            reset = max(0.0, reset - time.time())
        return reset

    def error_for_status(
        self, status: int, detail: ErrorDetail, headers: httpx2.Headers, *, unknown: str | None
    ) -> ContactError:
        param = detail.field
        if param in _SERVER_SET or detail.code == "invalid_api_version":
            return self._operator_error(status, detail)
        if status == 404 and detail.message is None and detail.code is None:
            return ProviderError(
                "Featurebase answered 404 without its error envelope",
                provider=self.name,
                status=status,
                hint="FEATUREBASE_BASE_URL may not point at the Featurebase API; the operator must check it",
            )
        return super().error_for_status(status, replace(detail, field=argument_name(param)), headers, unknown=unknown)

    def hint_for(self, status: int, detail: ErrorDetail) -> str | None:
        if status == 400 and detail.field is None:
            return "Correct the argument the message names and call again"
        if status == 403:
            return "FEATUREBASE_API_KEY is valid but may not use contacts; the operator must use a key with access"
        if status == 404:
            return "Featurebase has no such contact or endpoint; upsert_contact arguments cannot cause this"
        if status == 410:
            return "Featurebase no longer serves this; the operator should check FEATUREBASE_API_VERSION"
        if status == 429:
            return "Featurebase allows 2,000 requests per minute per key; wait retry_after_s, then call again"
        if status >= 500:
            return "Featurebase failed; the upsert is idempotent, so calling again is safe"
        return None

    def _operator_error(self, status: int, detail: ErrorDetail) -> ContactError:
        if detail.field == VERSION_HEADER or detail.code == "invalid_api_version":
            hint = (
                f"The server sends {VERSION_HEADER}: {self.api_version}; the operator must set "
                f"FEATUREBASE_API_VERSION to {MIN_API_VERSION} or newer"
            )
        else:
            hint = f"The server computes {detail.field}; the operator must check FEATUREBASE_IDENTITY_SECRET"
        return ProviderError(
            detail.message or f"Featurebase refused the server's {detail.field}",
            provider=self.name,
            status=status,
            hint=hint,
        )


def check_api_version(version: str) -> None:
    """A start-up check: the version must look like Featurebase's and be new enough for v2 contacts."""
    match = _VERSION.match(version.strip())
    if match is None:
        raise ConfigError(f"FEATUREBASE_API_VERSION must look like {MIN_API_VERSION} (a date, a dot and a name)")
    if match.group(1) < MIN_API_VERSION.split(".", 1)[0]:
        raise ConfigError(
            f"FEATUREBASE_API_VERSION is older than {MIN_API_VERSION}, the first version with v2 contacts"
        )


def argument_name(param: str | None) -> str | None:
    """Featurebase's `param` as the tool's argument path: `companies.0.monthlySpend` -> `companies[0].monthly_spend`.

    Keys under customFields are the caller's own and are kept as given.
    """
    if not param:
        return None
    path = ""
    verbatim = False
    for token in _PARAM_TOKEN.findall(param.removeprefix("body.")):
        if token.isdigit():
            path += f"[{token}]"
            continue
        name = token if verbatim else _ARGUMENT_NAMES.get(token, _CAMEL.sub(r"_\1", token).lower())
        verbatim = verbatim or token == "customFields"
        path += f".{name}" if path else name
    return path or None


def _company(company: Company) -> dict[str, Any]:
    fields: tuple[tuple[str, object], ...] = (
        ("id", company.id),
        ("name", company.name),
        ("plan", company.plan),
        ("monthlySpend", company.monthly_spend),
        ("industry", company.industry),
        ("website", company.website),
        ("companySize", company.company_size),
    )
    return {key: value for key, value in fields if value is not None}


def _view_of_call(call: UpsertContactInput) -> dict[str, Any]:
    """The fields an upsert sets, flat and named as our contact's (custom fields one entry each)."""
    view: dict[str, Any] = {
        "user_id": call.user_id,
        "name": call.name,
        "email": call.email,
        "phone": call.phone,
        "locale": call.locale,
        "profile_picture": call.profile_picture,
        "roles": list(call.roles) if call.roles is not None else None,
        "subscribed_to_changelog": call.subscribed_to_changelog,
        "companies": [c.model_dump(mode="json", exclude_none=True) for c in call.companies] if call.companies else None,
    }
    view.update((f"custom_fields.{key}", value) for key, value in (call.custom_fields or {}).items())
    return {key: value for key, value in view.items() if value is not None}


def _view_of_contact(contact: Contact) -> dict[str, Any]:
    view: dict[str, Any] = {
        "user_id": contact.user_id,
        "name": contact.name,
        "email": _value(contact, "email"),
        "phone": _value(contact, "phone"),
        "locale": contact.locale,
        "profile_picture": contact.profile_picture,
        "roles": contact.roles or None,
        "subscribed_to_changelog": contact.subscribed_to_changelog,
        "companies": [c.model_dump(mode="json", exclude_none=True) for c in contact.companies] or None,
    }
    view.update((f"custom_fields.{key}", value) for key, value in contact.custom_fields.items())
    return {key: value for key, value in view.items() if value is not None}


def _companies_after(stored: list[Company], given: tuple[Company, ...] | None) -> list[dict[str, Any]] | None:
    """[ASSUMPTION] companies are upserted by their id: the given ones replace those with their id, others stay."""
    ids = {company.id for company in given or ()}
    kept = [company for company in stored if company.id not in ids]
    merged = [company.model_dump(mode="json", exclude_none=True) for company in (*kept, *(given or ()))]
    return merged or None


def _value(contact: Contact, kind: str) -> str | None:
    return next((m.value for m in contact.methods if m.type == kind), None)


def _companies(value: object) -> list[Company]:
    """Featurebase's companies as ours: `companyId` is the caller's own id (ours is `id`); one that does not fit
    the model (no id or name) is left out rather than guessed."""
    found: list[Company] = []
    for item in cast(list[object], value) if isinstance(value, list) else []:
        company = mapping(item)
        if company is None:
            continue
        fields = {
            "id": text(company.get("companyId")) or text(company.get("id")),
            "name": text(company.get("name")),
            "plan": text(company.get("plan")),
            "monthly_spend": company.get("monthlySpend"),
            "industry": text(company.get("industry")),
            "website": text(company.get("website")),
            "company_size": company.get("companySize"),
        }
        try:
            found.append(Company.model_validate({k: v for k, v in fields.items() if v is not None}))
        except ValidationError:
            continue
    return found


def _scalars(value: object) -> dict[str, CustomValue]:
    fields = mapping(value) or {}
    return {k: v for k, v in fields.items() if v is None or isinstance(v, str | int | float | bool)}
