"""The numbers: latency samples summarised as p50/p99/calls-per-second, and contact-mcp / baseline ratios.

Samples are nanoseconds from `time.perf_counter_ns()`; summaries are milliseconds. Percentiles are nearest-rank,
so every reported value is one that was actually measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


def percentile(sorted_samples: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (q in [0, 1])."""
    if not sorted_samples:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q * len(sorted_samples)))
    return sorted_samples[min(rank, len(sorted_samples)) - 1]


@dataclass(frozen=True)
class Summary:
    """One side of one comparison: how many calls, their latency and the throughput they reached."""

    calls: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    calls_per_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples_ns: list[int], wall_s: float) -> Summary:
    """Latency percentiles of `samples_ns`; throughput as calls over the wall time they took together."""
    ordered = sorted(samples_ns)
    return Summary(
        calls=len(ordered),
        p50_ms=percentile(ordered, 0.50) / 1e6,
        p99_ms=percentile(ordered, 0.99) / 1e6,
        mean_ms=sum(ordered) / len(ordered) / 1e6,
        calls_per_s=len(ordered) / wall_s if wall_s > 0 else math.inf,
    )


def ratio(ours: float, baseline: float) -> float:
    return ours / baseline if baseline > 0 else math.inf


def median(values: list[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
