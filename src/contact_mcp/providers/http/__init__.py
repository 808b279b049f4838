"""The HTTP client base the five provider APIs share: `client` (retries, timeouts, size cap, scrubbing), `errors`
(provider answers mapped to `ContactError`s, once) and `wire` (instants, envelopes, paths, cursors)."""

from contact_mcp.providers.http.client import HttpOptions, HttpProvider
from contact_mcp.providers.http.errors import ErrorDetail, parse_error_body, parse_retry_after
from contact_mcp.providers.http.wire import path_segment

__all__ = ["ErrorDetail", "HttpOptions", "HttpProvider", "parse_error_body", "parse_retry_after", "path_segment"]
