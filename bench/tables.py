"""The report's building blocks: a target's verdict and Markdown tables (shared by every section of RESULTS.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    ok: bool | None  # None: not trustworthy (see the floor)

    @property
    def word(self) -> str:
        return "UNTRUSTED" if self.ok is None else ("PASS" if self.ok else "MISS")

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "measured": self.measured, "verdict": self.word}


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def mark(ok: bool | None) -> str:
    return "UNTRUSTED" if ok is None else ("PASS" if ok else "**MISS**")


def round_spread(ratios: list[float]) -> str:
    """How far one round's ratio strays from another's in the same run: the noise the verdict sits in."""
    return f"{min(ratios):.2f}–{max(ratios):.2f}×" if ratios else "–"
