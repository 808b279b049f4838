"""The five providers as test cases: one description each of how to serve its fake, configure the server against
it, seed a contact, and which ids and filters it accepts. The shared suites (`test_contract.py`, `test_reads_mcp.py`)
run once per case; `conftest.py` serves each fake once per session from here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from contact_mcp.errors import ContactError
from contact_mcp.models import FindContactsInput
from contact_mcp.providers.blooio import BlooioClient
from contact_mcp.providers.feather import FeatherClient
from contact_mcp.providers.featurebase import FeaturebaseClient
from contact_mcp.providers.http import HttpOptions, HttpProvider
from contact_mcp.providers.protocol import ProtocolClient
from contact_mcp.providers.tetherai import TetherAIClient
from tests.fakes import blooio, feather, featurebase, protocol, tetherai
from tests.fakes.harness import Fault, RecordedRequest, serve

# Small enough that a slow fault times out fast and an oversized body is refused quickly.
OPTIONS = HttpOptions(connect_timeout_s=1.0, read_timeout_s=0.5, max_response_bytes=64_000, retry_attempts=3)


@dataclass(frozen=True)
class Seeded:
    """A contact the fake now holds: its id, a find that matches it, and fields its `Contact` must show."""

    id: str
    find: FindContactsInput
    expected: dict[str, Any]


@dataclass(frozen=True)
class ProviderCase:
    name: str
    api_key: str
    make: Callable[[], Any]
    serve: Callable[[Any], AbstractContextManager[str]]
    client_class: type[HttpProvider]
    seed: Callable[[Any, int], Seeded]
    """Seed contact number n (distinct values per n)."""
    missing_id: str
    """Well formed for the provider, held by no contact."""
    bad_id: str
    """Not in the provider's id format."""
    unsupported: str
    """A find_contacts filter the provider's API cannot serve."""
    paginates: bool

    def settings(self, base_url: str, db_path: str, **overrides: Any) -> dict[str, Any]:
        return {
            "providers": self.name,
            f"{self.name}_api_key": self.api_key,
            f"{self.name}_base_url": base_url,
            "db": db_path,
            **overrides,
        }

    def client(self, base_url: str, *, api_key: str | None = None) -> HttpProvider:
        return self.client_class(base_url=base_url, api_key=api_key or self.api_key, options=OPTIONS)

    def __str__(self) -> str:
        return self.name


async def failure(call: Awaitable[Any]) -> ContactError:
    """The error a provider call raises (the call is expected to fail)."""
    with pytest.raises(ContactError) as info:
        await call
    return info.value


def push(fake: Any, fault: Fault) -> None:
    (getattr(fake, "push", None) or fake.app.push)(fault)


def requests(fake: Any) -> list[RecordedRequest]:
    return list(fake.requests)


@contextmanager
def _serve_app(fake: Any) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


@contextmanager
def _serve_blooio(fake: blooio.BlooioFake) -> Iterator[str]:
    with blooio.running(fake) as (_, url):
        yield url


def _seed_feather(fake: feather.FeatherFake, n: int) -> Seeded:
    uid = fake.add_end_user(display_name=f"Jane {n}", external_id=f"user-{n}", metadata={"plan": "pro"})
    fake.add_contact(uid, "email", f"jane{n}@example.com", verification_method="otp")
    return Seeded(
        id=uid,
        find=FindContactsInput(user_id=f"user-{n}"),
        expected={"id": uid, "display_name": f"Jane {n}", "user_id": f"user-{n}", "status": "active"},
    )


def _seed_tetherai(fake: tetherai.TetherAIFake, n: int) -> Seeded:
    contact_id = fake.add_contact(first_name="Alex", last_name=f"Morgan{n}", emails=[f"alex{n}@example.com"])
    return Seeded(id=contact_id, find=FindContactsInput(), expected={"id": contact_id, "name": f"Alex Morgan{n}"})


def _seed_blooio(fake: blooio.BlooioFake, n: int) -> Seeded:
    email = f"sam{n}@example.com"
    contact_id = fake.seed_contact(f"Sam {n}", ((email, "blooio", None),))
    return Seeded(id=contact_id, find=FindContactsInput(email=email), expected={"id": contact_id, "name": f"Sam {n}"})


def _seed_featurebase(fake: featurebase.FeaturebaseFake, n: int) -> Seeded:
    contact = fake.seed_contact(user_id=f"usr_{n}", email=f"ada{n}@example.com", name=f"Ada {n}")
    return Seeded(
        id=contact["id"],
        find=FindContactsInput(user_id=f"usr_{n}"),
        expected={"id": contact["id"], "user_id": f"usr_{n}", "name": f"Ada {n}"},
    )


def _seed_protocol(fake: protocol.ProtocolFake, n: int) -> Seeded:
    contact = fake.seed(f"lin{n}", display_name=f"Lin {n}")
    return Seeded(
        id=contact["id"],
        find=FindContactsInput(username=f"lin{n}"),
        expected={"id": contact["id"], "username": f"lin{n}", "display_name": f"Lin {n}"},
    )


CASES: dict[str, ProviderCase] = {
    "feather": ProviderCase(
        name="feather",
        api_key=feather.API_KEY,
        make=feather.FeatherFake,
        serve=_serve_app,
        client_class=FeatherClient,
        seed=_seed_feather,
        missing_id="0b6d1c5e-0000-4000-8000-000000000000",
        bad_id="not-a-uuid",
        unsupported="email",
        paginates=True,
    ),
    "tetherai": ProviderCase(
        name="tetherai",
        api_key=tetherai.TOKEN,
        make=tetherai.TetherAIFake,
        serve=_serve_app,
        client_class=TetherAIClient,
        seed=_seed_tetherai,
        missing_id="64b2c3d4e5f6ffffffffffff",
        bad_id="64b2c3d4e5f6",
        unsupported="email",
        paginates=True,
    ),
    "blooio": ProviderCase(
        name="blooio",
        api_key=blooio.DEFAULT_KEY,
        make=blooio.BlooioFake,
        serve=_serve_blooio,
        client_class=BlooioClient,
        seed=_seed_blooio,
        missing_id="ct_doesnotexist",
        bad_id="cid_123",
        unsupported="username",
        paginates=True,
    ),
    "featurebase": ProviderCase(
        name="featurebase",
        api_key=featurebase.API_KEY,
        make=featurebase.FeaturebaseFake,
        serve=_serve_app,
        client_class=FeaturebaseClient,
        seed=_seed_featurebase,
        missing_id="676f0f6765bdaa7d7d760fff",
        bad_id="usr_123",
        unsupported="email",
        paginates=False,
    ),
    "protocol": ProviderCase(
        name="protocol",
        api_key=protocol.API_KEY,
        make=protocol.ProtocolFake,
        serve=_serve_app,
        client_class=ProtocolClient,
        seed=_seed_protocol,
        missing_id="AAAAAAAAAAAAAAAA",
        bad_id="short",
        unsupported="email",
        paginates=False,
    ),
}
