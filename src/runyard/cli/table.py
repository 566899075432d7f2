"""Plain-text tables for the CLI (no dependencies: the CLI ships with the light client)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

__all__ = ["fmt", "render_table"]


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ",".join(fmt(v) for v in value)
    return str(value).replace("\n", " ")


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], max_width: int = 40) -> str:
    cells = [[fmt(c) for c in row] for row in rows]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in row] for row in cells]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, c in enumerate(row):
            widths[i] = max(widths[i], len(c))
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
