"""Small builders shared by the store tests."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from runyard.entities import MetricColumns

T0 = 1_700_000_000.0


def cols(steps: Iterable[int], values: Sequence[float], t0: float = T0) -> MetricColumns:
    """Columns with one second between points."""
    steps = list(steps)
    return MetricColumns(steps=steps, times=[t0 + i for i in range(len(steps))], values=list(values))
