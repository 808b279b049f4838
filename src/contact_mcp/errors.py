"""The errors an agent can see, and how each becomes an MCP tool result.

Every anticipated failure is a `ContactError`; the tree is closed and each class maps 1:1 to a code:

    ContactError
     ├── InvalidArgument      invalid_argument       the call is wrong: fix the named field
     ├── NotFound             not_found              an id or value does not exist
     ├── Conflict             conflict               clashes with existing state (may carry existing_id, and
     │                                               candidates when two contacts are involved)
     ├── Unauthorized         unauthorized           the server's credential was refused (operator's problem)
     ├── RateLimited          rate_limited           retry after `retry_after_s`
     ├── ProviderUnavailable  provider_unavailable   provider down or unreachable
     ├── ProviderTimeout      timeout                no answer in time
     ├── ProviderError        provider_error         the provider failed or answered nonsense
     ├── ConfirmationRequired confirmation_required  cannot be undone and this client cannot ask the user:
     │                                               say what would happen, call again with confirm: true
     └── Declined             declined               the user was asked and said no (or cancelled):
                                                     nothing was changed; do not retry unasked

A `ContactError` is for the model: it becomes an `isError` result whose `structuredContent` is
`{"error": ErrorInfo}` and whose text says the same in a sentence or two. Configuration errors are for the
operator (`ConfigError`, raised at start-up); bugs are for us and are never caught and relabelled.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from mcp.types import CallToolResult


class ErrorCode(StrEnum):
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    UNAUTHORIZED = "unauthorized"
    RATE_LIMITED = "rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    TIMEOUT = "timeout"
    PROVIDER_ERROR = "provider_error"
    CONFIRMATION_REQUIRED = "confirmation_required"
    DECLINED = "declined"


class ErrorInfo(BaseModel):
    """The structured error payload an agent receives under `structuredContent.error`."""

    model_config = ConfigDict(frozen=True)

    code: ErrorCode
    message: str
    field: str | None = None
    hint: str | None = None
    retryable: bool = False
    retry_after_s: float | None = None
    provider: str | None = None
    status: int | None = None
    existing_id: str | None = None
    candidates: list[str] | None = None


class ConfigError(Exception):
    """A start-up problem for the operator: bad or missing environment, unusable paths."""


_FACTS = frozenset(
    {"message", "field", "hint", "retryable", "retry_after_s", "provider", "status", "existing_id", "candidates"}
)


class ContactError(Exception):
    """Base of every failure the model is meant to read and act on. Its facts are fixed once it is built (where
    they are known): a caller that learns more builds a new error with `evolve`."""

    code: ClassVar[ErrorCode] = ErrorCode.PROVIDER_ERROR
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        retry_after_s: float | None = None,
        provider: str | None = None,
        status: int | None = None,
        existing_id: str | None = None,
        candidates: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.hint = hint
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after_s = retry_after_s
        self.provider = provider
        self.status = status
        self.existing_id = existing_id
        self.candidates = candidates

    def info(self, *, provider: str | None = None) -> ErrorInfo:
        """The payload an agent receives. `provider` is the one the call was routed to, named when the error does
        not name its own (an argument the tool refused before any provider was asked)."""
        return ErrorInfo(
            code=self.code,
            message=self.message,
            field=self.field,
            hint=self.hint,
            retryable=self.retryable,
            retry_after_s=self.retry_after_s,
            provider=self.provider or provider,
            status=self.status,
            existing_id=self.existing_id,
            candidates=self.candidates,
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FACTS and name in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.{name} is fixed once the error is built; use evolve()")
        super().__setattr__(name, value)

    def evolve(self, **changes: Any) -> Self:
        """A new error of the same kind with some facts added or changed: an error is never edited once built, so a
        caller that learns more (which argument a 404 was about) builds a new one from the old."""
        facts: dict[str, Any] = {
            "field": self.field,
            "hint": self.hint,
            "retryable": self.retryable,
            "retry_after_s": self.retry_after_s,
            "provider": self.provider,
            "status": self.status,
            "existing_id": self.existing_id,
            "candidates": self.candidates,
        }
        message = changes.pop("message", self.message)
        facts.update(changes)
        return type(self)(message, **facts)


CURSOR_HINT: Final = "Pass next_cursor from the previous page of the same call unchanged, or omit cursor"
"""What to do about a cursor the server did not issue (the store's and the providers' pages alike)."""


class InvalidArgument(ContactError):
    code = ErrorCode.INVALID_ARGUMENT


class NotFound(ContactError):
    code = ErrorCode.NOT_FOUND


class Conflict(ContactError):
    code = ErrorCode.CONFLICT


class Unauthorized(ContactError):
    code = ErrorCode.UNAUTHORIZED


class RateLimited(ContactError):
    code = ErrorCode.RATE_LIMITED
    default_retryable = True


class ProviderUnavailable(ContactError):
    code = ErrorCode.PROVIDER_UNAVAILABLE
    default_retryable = True


class ProviderTimeout(ContactError):
    code = ErrorCode.TIMEOUT
    default_retryable = True


class ProviderError(ContactError):
    code = ErrorCode.PROVIDER_ERROR


class ConfirmationRequired(ContactError):
    code = ErrorCode.CONFIRMATION_REQUIRED


class Declined(ContactError):
    code = ErrorCode.DECLINED


def error_text(info: ErrorInfo) -> str:
    """One or two sentences a model can act on; the same facts as the structured payload."""
    parts = [f"{info.code.value}: {info.message.rstrip('.')}."]
    if info.field:
        parts.append(f"Field: {info.field}.")
    if info.hint:
        parts.append(info.hint.rstrip(".") + ".")
    if info.retry_after_s is not None:
        parts.append(f"Retry after {info.retry_after_s:g} s.")
    elif info.retryable:
        parts.append("Retrying may succeed.")
    return " ".join(parts)


def error_result(info: ErrorInfo) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent  # here: an import needs no MCP types (~0.5 s to load)

    payload: dict[str, Any] = {"error": info.model_dump(mode="json", exclude_none=True)}
    return CallToolResult(
        content=[TextContent(type="text", text=error_text(info))],
        structured_content=payload,
        is_error=True,
    )
