"""Logging set-up for every entry point: one stderr handler whose lines cannot be forged, and a rate limit for noise.

A logged value may come from anyone (a `contact_id` an agent sent, a provider's error text, a `Host` header): a
newline in it would start a line that looks like our own (`2026 WARNING contact_mcp: admin login`). The formatter
escapes control characters in the message (`\\n` → `\\\\n`, `\\x1b` → `\\\\x1b`), and indents every line of a
traceback, so each record starts exactly one line at column 0 and nothing a value carries can. `RateLimit` keeps a
flood of identical warnings (one per rejected request) to a few lines a minute plus a count of what it dropped.

Logs carry no email, phone or name. Our own log calls never format one (they log codes, field names, ids and
types); libraries' records that would (the SDK's SSE transport logs whole message bodies at DEBUG, httpx2 every
request URL at INFO, and a URL may hold an email; httpcore2 headers at DEBUG; sse-starlette every SSE chunk it
sends at DEBUG) are held at WARNING whatever the level; uvicorn's access lines lose the request's query string (a
client may put a token there); and the formatter masks any email or +phone left in a line (`masking`), as a last
line of defence. Imports nothing of ours but `masking` (a leaf): the CLI sets logging up before it loads anything
heavy.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from types import TracebackType

from contact_mcp.masking import mask_email, mask_phone

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# C0 controls, DEL, C1 controls (NEL among them), and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Libraries whose records below WARNING carry what clients and providers sent (bodies, URLs, headers).
_RETRY_LOGGER = "stamina"
TALKATIVE_LOGGERS = (
    "mcp.server.sse",
    "mcp.server.runner",
    "mcp.shared.jsonrpc_dispatcher",
    "sse_starlette.sse",
    "httpx2",
    "httpcore2",
)
# uvicorn's access log line quotes the request's path with its query string, where a client may put a token.
_ACCESS_LOGGER = "uvicorn.access"
_EMAIL_IN_TEXT = re.compile(r"[\w.+%-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+")
_PHONE_IN_TEXT = re.compile(r"(?:\+|%2B)\d[\d ().-]{5,18}\d")


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def mask_contact_values(text: str) -> str:
    """`text` with every email and international phone number in it masked (`masking`), percent-encoded or not."""
    text = _EMAIL_IN_TEXT.sub(lambda m: mask_email(m[0].replace("%40", "@")), text)
    return _PHONE_IN_TEXT.sub(lambda m: mask_phone(m[0].replace("%2B", "+")), text)


def escape_controls(text: str) -> str:
    """`text` with every control character written as a visible escape: one logical line stays one line."""
    return _CONTROL.sub(_escape, text)


class EscapingFormatter(logging.Formatter):
    """`logging.Formatter` whose message part is one line whatever its arguments held; tracebacks are indented."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape_controls(mask_contact_values(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: ExcInfo) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    # A traceback is many lines by nature; indenting them all (control characters escaped, newlines kept) means
    # only a record's first line begins at column 0, so an exception message cannot pass for a record.
    return "\n".join("    " + escape_controls(line) for line in text.splitlines())


class RateLimit(logging.Filter):
    """At most `burst` warnings (or worse) per `per_s` seconds for each (logger, level); the next record let
    through after a quiet spell says how many were dropped. For loggers that speak once per rejected request."""

    def __init__(self, *, burst: int = 5, per_s: float = 60.0, tracebacks: bool = True) -> None:
        super().__init__()
        self._tracebacks = tracebacks
        self._burst = burst
        self._per_s = per_s
        self._windows: dict[tuple[str, int], tuple[float, int, int]] = {}  # key -> (window start, passed, dropped)
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:  # what an operator asked for by lowering the level is kept whole
            return True
        # Keyed by logger and level, not by text: the SDK formats values into its messages (f-strings).
        key = (record.name, record.levelno)
        now = time.monotonic()
        with self._lock:
            start, passed, dropped = self._windows.get(key, (now, 0, 0))
            if now - start >= self._per_s:
                start, passed = now, 0
            if passed >= self._burst:
                self._windows[key] = (start, passed, dropped + 1)
                return False
            self._windows[key] = (start, passed + 1, 0)
        if dropped:
            record.msg = f"{record.msg} ({dropped} more like this in the last {self._per_s:g} s not logged)"
        if not self._tracebacks and record.exc_info:
            # A client's malformed request is not our bug: its type and message say enough.
            record.msg = f"{record.msg}: " + repr(record.exc_info[1]).replace("%", "%%")
            record.exc_info = record.exc_text = None
        return True


def configure_logging(level: str = "WARNING") -> None:
    """Every record, including uvicorn's, the SDK's and Python warnings, to stderr at `level`, through
    `EscapingFormatter`. Safe to call again (the CLI calls it at start and once the settings are read)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(FORMAT))
    # force=True replaces whatever was there, e.g. the handler the SDK's own basicConfig would have added.
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.captureWarnings(True)
    for name in TALKATIVE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level]))
    access = logging.getLogger(_ACCESS_LOGGER)
    if not any(isinstance(existing, WithoutQueryString) for existing in access.filters):
        access.addFilter(WithoutQueryString())
    # One warning per retry, each the same few words, from every call a provider or database outage reaches.
    rate_limit(_RETRY_LOGGER)


class WithoutQueryString(logging.Filter):
    """uvicorn's access record (`client - "METHOD path HTTP/v" status`) with its path's query string cut off."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
        return True


def rate_limit(*names: str, burst: int = 5, per_s: float = 60.0, tracebacks: bool = True) -> None:
    """Attach one `RateLimit` to each named logger (idempotent)."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RateLimit) for existing in logger.filters):
            logger.addFilter(RateLimit(burst=burst, per_s=per_s, tracebacks=tracebacks))
