"""Sections of the previous report that a partial run (`--only`) did not measure, carried into the new one.

A run of some scenarios rewrites RESULTS.md and results.json; without this the scenarios it left out would vanish
from them. Their sections, target rows and raw numbers are copied from the files being replaced, each marked with
the commit and date of the run that measured them, so no number is passed off as this run's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECTION_NUMBERS: dict[str, int] = {
    "local": 1,
    "provider": 2,
    "coldstart": 3,
    "scale": 4,
    "memory": 5,
    "postgres": 6,
    "replicas": 7,
    "scale-postgres": 8,
    "import": 9,
}
# Which scenario a target row belongs to, by how its text starts.
TARGET_PREFIXES: dict[str, tuple[str, ...]] = {
    "local": ("Local store tool p50", "SQLite store off the event loop"),
    "provider": ("Provider tool",),
    "coldstart": ("Cold start",),
    "scale": ("Store p50 at",),
    "memory": ("Peak RSS",),
    "postgres": ("PostgreSQL store p50 ≤",),
    "replicas": ("3 replicas", "2 replicas"),
    "scale-postgres": ("PostgreSQL store p50 at",),
    "import": ("`import`",),
}
# Which results.json keys hold a scenario's raw numbers.
JSON_KEYS: dict[str, tuple[str, ...]] = {
    "local": ("local",),
    "provider": ("provider", "floor"),
    "coldstart": ("cold_start", "imports"),
    "scale": ("scale",),
    "memory": ("memory",),
    "postgres": ("backends",),
    "replicas": ("replicas",),
    "scale-postgres": ("scale_postgres",),
    "import": ("import",),
}


_NOTE = "Not measured in this run:"


@dataclass
class Carried:
    commit: str
    started: str
    sections: dict[int, str] = field(default_factory=dict[int, str])  # section number -> its Markdown
    targets: list[dict[str, str]] = field(default_factory=list[dict[str, str]])
    raw: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def label(self) -> str:
        return f"carried from the run at {self.commit} ({self.started[:16].replace('T', ' ')} UTC)"


def _sections(markdown: str) -> dict[int, str]:
    """The report's numbered `## N.` sections, each up to the next `## ` heading."""
    found: dict[int, str] = {}
    parts = re.split(r"(?m)^(?=## )", markdown)
    for part in parts:
        match = re.match(r"## (\d+)\. ", part)
        if match:
            found[int(match.group(1))] = part.rstrip() + "\n"
    return found


def _scenario_of(target: str) -> str | None:
    return next((s for s, prefixes in TARGET_PREFIXES.items() if target.startswith(prefixes)), None)


def carry(markdown_path: Path, json_path: Path, ran: set[str], scenarios: tuple[str, ...]) -> Carried | None:
    """What the previous report at these paths says about the scenarios not in `ran`; None without one (or when
    the previous one was a `--quick` run, whose numbers mean nothing)."""
    if not markdown_path.exists() or not json_path.exists():
        return None
    try:
        old: dict[str, Any] = json.loads(json_path.read_text())
    except ValueError:
        return None
    if old.get("quick"):
        return None
    missing = [s for s in scenarios if s not in ran]
    carried = Carried(commit=str(old.get("commit", "unknown")), started=str(old.get("started", "")))
    old_sections = _sections(markdown_path.read_text())
    for scenario in missing:
        number = SECTION_NUMBERS[scenario]
        if number in old_sections:
            heading, _, body = old_sections[number].partition("\n")
            # A section the previous report itself carried keeps the note naming the run that measured it.
            note = "" if _NOTE in body else f"\n*{_NOTE} {carried.label}.*\n"
            carried.sections[number] = f"{heading}\n{note}{body}"
        for key in JSON_KEYS[scenario]:
            if old.get(key):
                carried.raw[key] = old[key]
    carried.targets = [
        {**t, "measured": t["measured"] if "(carried from" in t["measured"] else f"{t['measured']} ({carried.label})"}
        for t in old.get("targets", [])
        if _scenario_of(str(t.get("target", ""))) in missing
    ]
    return carried if carried.sections or carried.targets else None


def splice(markdown: str, carried: Carried) -> str:
    """Insert the carried sections into a fresh report, in section-number order (before the first later one)."""
    fresh = _sections(markdown)
    for number, text in sorted(carried.sections.items()):
        later = [n for n in fresh if n > number]
        if later:
            anchor = fresh[min(later)]
            markdown = markdown.replace(anchor, text + "\n" + anchor, 1)
        else:
            markdown = markdown.rstrip() + "\n\n" + text
        fresh[number] = text
    return markdown
