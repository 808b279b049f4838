"""The `contact-mcp` command line: `serve` (the default), `demo`, `manifest`, `doctor`, `export`, `import` and
`history`.

Each command is a small function returning its exit code; `main` parses, dispatches and turns a `ConfigError`
into one line on stderr and exit code 2, because a configuration problem is the operator's to fix and a
traceback would only bury the variable's name. Logs go to stderr (in stdio mode stdout is the protocol).
Heavy imports (the transports, the MCP client) happen inside the command that needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, cast

import anyio
from pydantic import SecretStr

from contact_mcp.errors import ConfigError, ContactError
from contact_mcp.logs import configure_logging
from contact_mcp.settings import Settings, env_name, load_settings

if TYPE_CHECKING:
    from contact_mcp.porting.readers import Format

log = logging.getLogger("contact_mcp")

_DEFAULT_MANIFEST_DIR = Path("tool_manifests")


# ---------- serve ----------


def _selection(args: argparse.Namespace) -> dict[str, object]:
    """The `serve` selection flags given, as settings overrides (a flag beats its environment variable)."""
    overrides: dict[str, object] = {}
    if args.tools is not None:
        overrides["tools"] = cast(str, args.tools)
    if args.exclude_tools is not None:
        overrides["exclude_tools"] = cast(str, args.exclude_tools)
    if cast(bool, args.read_only):
        overrides["read_only"] = True
    return overrides


def cmd_serve(args: argparse.Namespace) -> int:
    if cast(bool, args.stateless) and args.transport != "http":
        raise ConfigError("--stateless applies to --transport http only (stdio and SSE connections are sessions)")
    settings = load_settings(**_selection(args))
    from contact_mcp import serve  # sets logging to settings.log_level itself

    serve.run(
        settings,
        transport=cast(serve.Transport, args.transport),
        host=cast(str, args.host),
        port=cast(int, args.port),
        stateless=cast(bool, args.stateless),
    )
    return 0


# ---------- demo ----------


def cmd_demo(args: argparse.Namespace) -> int:
    from contact_mcp.demo import run_demo

    return anyio.run(run_demo)


# ---------- manifest ----------


def cmd_manifest(args: argparse.Namespace) -> int:
    from contact_mcp import manifests

    directory = cast(Path, args.dir)
    files = manifests.rendered()
    if cast(bool, args.check):
        stale = manifests.drifted(directory, files)
        if stale:
            print(f"contact-mcp: tool manifests in {directory} differ from the code:", file=sys.stderr)
            for name in stale:
                print(f"  {directory / name}", file=sys.stderr)
            print("Run `contact-mcp manifest` to regenerate them.", file=sys.stderr)
            return 1
        print(f"tool manifests in {directory} are up to date ({len(files)} files)")
        return 0
    for path in manifests.write(directory, files):
        print(f"wrote {path}")
    return 0


# ---------- doctor ----------


def mask(secret: SecretStr) -> str:
    """Enough to tell two keys apart, never enough to use one: the last 4 characters of a long secret only."""
    value = secret.get_secret_value()
    return f"****{value[-4:]}" if len(value) >= 12 else "****"


def _shown(value: object) -> str:
    if value is None:
        return "(not set)"
    if isinstance(value, SecretStr):
        return mask(value)
    if isinstance(value, tuple):
        return ",".join(str(item) for item in cast(tuple[object, ...], value)) or "(none)"
    return str(value)


def _print_settings(settings: Settings) -> None:
    from contact_mcp.redact import display_url

    print("Configuration:")
    names = list(Settings.model_fields)
    width = max(len(env_name(name)) for name in names)
    for name in names:
        value = getattr(settings, name)
        # A URL may carry a password (user:secret@host) or a key in its query string: shown masked.
        shown = display_url(str(value)) if value is not None and (name == "db" or name.endswith("_url")) else None
        print(f"  {env_name(name):<{width}}  {shown or _shown(value)}")


async def _probe(name: str, settings: Settings) -> bool:
    from contact_mcp import providers

    provider = providers.build_provider(name, settings)
    try:
        verdict = await provider.probe()
    except ContactError as exc:
        print(f"  {name:<12} FAIL  {exc.code.value}: {exc.message}")
        return False
    except Exception as exc:
        from contact_mcp.redact import Scrubber

        log.debug("probe of %s raised", name, exc_info=True)
        # A library's text is foreign: it may quote a credential.
        print(f"  {name:<12} FAIL  unexpected {type(exc).__name__}: {Scrubber.from_settings(settings)(str(exc))}")
        return False
    finally:
        await provider.aclose()
    print(f"  {name:<12} ok    {verdict}")
    return True


async def _doctor(settings: Settings) -> int:
    from contact_mcp import history, providers
    from contact_mcp.tools.plan import make_plan

    plan = make_plan(settings)
    print("\nTools (the plan: which provider serves which tool):")
    for line in plan.lines():
        print(f"  {line}")
    enabled = plan.enabled
    for name in enabled:
        providers.provider_class(name).preflight(settings)
    print("\nHistory of writes:")
    if history.preflight(settings, writes=plan.writes, enabled=enabled):
        kept = f"{settings.history_retention_days} days" if settings.history_retention_days else "forever"
        print(f"  kept in CONTACT_MCP_DB, {'recorded' if plan.writes else 'read only'}; retention {kept}")
    else:
        print("  not kept (no tool writes and no CONTACT_MCP_DB is set)")
    print("\nProbes:")
    results = [await _probe(name, settings) for name in enabled]
    return 0 if all(results) else 1


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = load_settings()
    _print_settings(settings)
    return anyio.run(_doctor, settings)


# ---------- export and import ----------


def _existing_store(settings: Settings, reading: str) -> None:
    """Commands that only read the store refuse a SQLite path with no file: opening it would create an empty store
    (a mistyped path left behind) and report nothing as if there were nothing."""
    from contact_mcp.store import backend_name

    if backend_name(settings.db) == "sqlite" and not Path(settings.db).expanduser().exists():
        raise ConfigError(
            f"CONTACT_MCP_DB names no database file ({settings.db}): there is no {reading}; "
            "set it to the store's path (`contact-mcp doctor` shows it)"
        )


def cmd_export(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    _existing_store(settings, "contact to export")
    from contact_mcp.porting.commands import export_command

    return export_command(settings, cast(Path | None, args.out))


def cmd_import(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    from contact_mcp.porting.commands import import_command

    fmt = cast(str, args.format)
    return import_command(
        settings,
        cast(Path, args.file),
        fmt=None if fmt == "auto" else cast("Format", fmt),
        rejected=cast(Path | None, args.rejected),
    )


# ---------- history ----------


def cmd_history(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    _existing_store(settings, "history to print")
    from contact_mcp.history_command import print_history

    return anyio.run(
        partial(
            print_history,
            settings,
            contact=cast(str | None, args.contact),
            provider=cast(str | None, args.provider),
            after=cast(str | None, args.since),
            as_json=cast(bool, args.json),
        )
    )


def _since(text: str) -> str:
    from contact_mcp.history_command import since

    return since(text)


# ---------- parsing and dispatch ----------


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("contact-mcp")
    except PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
        return "0.0.0"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="contact-mcp",
        description="An MCP server with contact tools. Without a command, `serve` runs.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the tools over MCP (default)")
    serve.add_argument("--transport", choices=("stdio", "sse", "http"), default="stdio", help="default: stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP/SSE bind address (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="HTTP/SSE port (default: 8000)")
    serve.add_argument("--tools", metavar="A,B", help="serve only these tools (default: all; CONTACT_MCP_TOOLS)")
    serve.add_argument("--exclude-tools", metavar="C", help="do not serve these tools (CONTACT_MCP_EXCLUDE_TOOLS)")
    serve.add_argument(
        "--read-only", action="store_true", help="serve only the tools that read; wins over all (CONTACT_MCP_READ_ONLY)"
    )
    serve.add_argument(
        "--stateless",
        action="store_true",
        help="streamable HTTP without sessions, so any replica behind a load balancer answers any request",
    )
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="call every tool once on a temporary database and show the results")
    demo.set_defaults(handler=cmd_demo)

    manifest = commands.add_parser("manifest", help="write the tool manifests for OpenAI, Anthropic and Gemini")
    manifest.add_argument("--check", action="store_true", help="write nothing; exit 1 if the files differ")
    manifest.add_argument(
        "--dir",
        type=Path,
        default=_DEFAULT_MANIFEST_DIR,
        help="directory of the manifests (default: tool_manifests, relative to the current directory)",
    )
    manifest.set_defaults(handler=cmd_manifest)

    doctor = commands.add_parser(
        "doctor", help="show the configuration, the plan (which provider serves which tool) and provider probes"
    )
    doctor.set_defaults(handler=cmd_doctor)

    export = commands.add_parser(
        "export", help="write every contact in CONTACT_MCP_DB (methods, identities, timestamps) as JSONL"
    )
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.set_defaults(handler=cmd_export)

    import_ = commands.add_parser(
        "import",
        help="import contacts into CONTACT_MCP_DB: an export (JSONL, restored as it was), CSV or vCard",
        description="Import a file into the store CONTACT_MCP_DB names. JSONL from `contact-mcp export` is restored "
        "as it was; CSV (a header row of contact fields: email, phone, name, user_id, username, locale) and vCard "
        "3/4 are new data, matched and merged like upsert_contact. Importing twice changes nothing.",
    )
    import_.add_argument("file", type=Path, help="the file to import")
    import_.add_argument("--format", choices=("auto", "jsonl", "csv", "vcf"), default="auto", help="default: auto")
    import_.add_argument(
        "--rejected", type=Path, help="where rejected rows go, as JSONL (default: FILE.rejected.jsonl)"
    )
    import_.set_defaults(handler=cmd_import)

    history = commands.add_parser(
        "history",
        help="print the history of writes kept in CONTACT_MCP_DB (oldest first; values masked)",
        description="Print the writes made through the tools, as recorded in CONTACT_MCP_DB: when, which tool and "
        "provider, which contact, the outcome, the fields (emails, phones and custom values masked), and who called.",
    )
    history.add_argument("--contact", metavar="ID", help="only this contact's writes")
    history.add_argument("--provider", metavar="NAME", help="only writes through this provider (local, feather, ...)")
    history.add_argument(
        "--since", type=_since, metavar="WHEN", help="from an ISO 8601 date or time, or a span back: 30m, 12h, 7d"
    )
    history.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    history.set_defaults(handler=cmd_history)
    return parser


def _with_default_command(argv: Sequence[str]) -> list[str]:
    args = list(argv)
    if not args or (args[0].startswith("-") and args[0] not in ("-h", "--help", "--version")):
        return ["serve", *args]
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """The command line; `contact_mcp.__main__` runs it for the `contact-mcp` script and `python -m contact_mcp`."""
    args = build_parser().parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
    configure_logging()
    try:
        code = cast(int, args.handler(args))
    except ConfigError as exc:
        print(f"contact-mcp: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
