"""The plan: settings × selection → which provider serves which tool. The server, `doctor` and the manifests all
build from it, so what is served, what is diagnosed and what is published cannot disagree.

Serving: a write tool is served by the one enabled HTTP provider that serves it, else by the local store when
`local` is enabled; two HTTP providers for one write tool are a start-up error naming both. A read tool, and
delete_contact (each provider holds its own contacts, so enabling several that can delete stays valid), is
served by every enabled provider that can, in the order `CONTACT_MCP_PROVIDERS` names them (with several, it
takes a `provider` argument). A tool appears only when something serves it.

Selection, applied after serving: `tools` keeps only the named tools, `exclude_tools` drops the named ones,
`read_only` drops every tool that writes and wins over both. An unknown tool name, or a selection that leaves no
tool, is a start-up error.
"""

from dataclasses import dataclass

from contact_mcp import providers
from contact_mcp.errors import ConfigError
from contact_mcp.settings import HTTP_PROVIDERS, Settings, env_name
from contact_mcp.tools.table import TOOL_NAMES, TOOLS, ToolSpec


@dataclass(frozen=True, slots=True)
class Route:
    """One tool and the providers serving it (one, unless the tool is served by every provider that can)."""

    spec: ToolSpec
    providers: tuple[str, ...]

    @property
    def takes_provider(self) -> bool:
        """Whether the tool has a `provider` argument choosing among its providers."""
        return len(self.providers) > 1


@dataclass(frozen=True, slots=True)
class Plan:
    routes: tuple[Route, ...]
    """The tools served, in table order."""
    unselected: frozenset[str] = frozenset()
    """Tools the selection left out (whether or not a provider serves them)."""

    @property
    def enabled(self) -> tuple[str, ...]:
        """The providers serving at least one tool, in the order they first appear."""
        return tuple(dict.fromkeys(name for route in self.routes for name in route.providers))

    def lines(self) -> list[str]:
        """The plan in words, one line per tool of the table, for `doctor`."""
        served = {route.spec.name: route for route in self.routes}
        width = max(len(name) for name in TOOL_NAMES)
        out: list[str] = []
        for name in TOOL_NAMES:
            route = served.get(name)
            if route is None:
                why = "not selected" if name in self.unselected else "not served by an enabled provider"
                out.append(f"{name:<{width}}  {why}")
                continue
            shown = ", ".join(_shown(provider) for provider in route.providers)
            choice = "  (provider argument)" if route.takes_provider else ""
            out.append(f"{name:<{width}}  {shown}{choice}")
        return out


def _shown(name: str) -> str:
    display = providers.provider_class(name).display_name
    return name if display == name else f"{name} ({display})"


def _servers(spec: ToolSpec, enabled: tuple[str, ...]) -> tuple[str, ...]:
    able = tuple(name for name in enabled if spec.operation in providers.provider_class(name).operations)
    if spec.every_provider:
        return able
    http = [name for name in able if name != "local"]
    if len(http) > 1:
        raise ConfigError(
            f"CONTACT_MCP_PROVIDERS: {' and '.join(http)} both serve {spec.name}; enable only one of them"
        )
    return (http[0],) if http else able


def _source(field: str) -> str:
    """How an operator sets a selection field: the `serve` flag or the environment variable."""
    return f"--{field.replace('_', '-')} / {env_name(field)}"


def _checked_names(names: tuple[str, ...], field: str) -> frozenset[str]:
    unknown = [name for name in names if name not in TOOL_NAMES]
    if unknown:
        raise ConfigError(
            f"{_source(field)}: unknown tool(s) {', '.join(unknown)}; the tools are {', '.join(TOOL_NAMES)}"
        )
    return frozenset(names)


def _selected(spec: ToolSpec, settings: Settings, keep: frozenset[str], drop: frozenset[str]) -> bool:
    if settings.read_only and not spec.read_only:
        return False
    if keep and spec.name not in keep:
        return False
    return spec.name not in drop


def make_plan(settings: Settings) -> Plan:
    """Decide, without I/O, which enabled provider serves each selected tool; a `ConfigError` for a missing
    credential, two HTTP providers for one write tool, an unknown tool name, or a selection that leaves nothing."""
    for name in settings.providers:
        if name in HTTP_PROVIDERS:
            settings.credentials(name)
    keep = _checked_names(settings.tools, "tools")
    drop = _checked_names(settings.exclude_tools, "exclude_tools")
    routes: list[Route] = []
    unselected: set[str] = set()
    for spec in TOOLS:
        if not _selected(spec, settings, keep, drop):
            unselected.add(spec.name)
            continue
        serving = _servers(spec, settings.providers)
        if serving:
            routes.append(Route(spec, serving))
    if not routes:
        raise ConfigError(
            "no tool is left to serve: CONTACT_MCP_PROVIDERS="
            + ",".join(settings.providers)
            + _selection_words(settings)
            + " selects none; widen the selection or enable a provider that serves the tools you want"
        )
    return Plan(tuple(routes), frozenset(unselected))


def _selection_words(settings: Settings) -> str:
    words: list[str] = []
    if settings.tools:
        words.append(f"{_source('tools')}={','.join(settings.tools)}")
    if settings.exclude_tools:
        words.append(f"{_source('exclude_tools')}={','.join(settings.exclude_tools)}")
    if settings.read_only:
        words.append(f"{_source('read_only')}")
    return (" with " + " ".join(words)) if words else ""
