"""The run-listing query language of ``GET /api/v1/runs?filter=…&sort=…``.

A filter is ``<field><op><value>``: ``params.lr>=0.01``, ``metrics.loss.min<0.5``,
``status=running``, ``tags=baseline``, ``name~resnet``. Operators: ``= != < <= > >= ~``
(``~`` is "contains"). Values that parse as numbers are numbers; quote them (``"1e-3"``)
to compare as text. Several ``filter`` parameters are ANDed.
"""

from __future__ import annotations

import re
from typing import Any

from runyard.errors import InvalidInput
from runyard.store.sql.search import PLAIN_FIELDS, SORT_COLUMNS

__all__ = ["FIELDS", "parse_filter", "parse_sort"]

FIELDS = (*PLAIN_FIELDS, "params.<key>", "metrics.<key>[.last|.min|.max|.count]")
_FILTER_RE = re.compile(
    r"^\s*(?P<field>[^<>=!~\s][^<>=!~]*?)\s*(?P<op><=|>=|!=|=|<|>|~)\s*(?P<value>.*?)\s*$", re.S
)
_PLAIN = frozenset(PLAIN_FIELDS)
_STATS = ("last", "min", "max", "count")


def _check_field(field: str, what: str) -> str:
    if field in _PLAIN or (field.startswith("params.") and len(field) > 7):
        return field
    if field.startswith("metrics.") and len(field) > 8:
        key, _, stat = field[8:].rpartition(".")
        if stat in _STATS and key:
            return field
        return f"{field}.last"
    raise InvalidInput(f"unknown {what} field {field!r}; valid: {', '.join(FIELDS)}", field=what)


def _value(raw: str) -> Any:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    try:
        number = float(raw)
    except ValueError:
        return raw
    return int(number) if re.fullmatch(r"[+-]?\d+", raw) else number


def parse_filter(expr: str) -> tuple[str, str, Any]:
    match = _FILTER_RE.match(expr)
    if not match:
        raise InvalidInput(
            f"filter {expr!r} is not <field><op><value> with op one of = != < <= > >= ~ "
            "(e.g. params.lr>=0.01, status=running, metrics.loss.min<0.5)",
            field="filter",
        )
    return _check_field(match["field"], "filter"), match["op"], _value(match["value"])


def parse_sort(sort: str | None) -> str:
    if not sort:
        return "created_at"
    if sort in SORT_COLUMNS:
        return sort
    if sort.startswith(("params.", "metrics.")):
        return _check_field(sort, "sort")
    raise InvalidInput(
        f"cannot sort by {sort!r}; valid: {', '.join(SORT_COLUMNS)}, "
        "params.<key>, metrics.<key>[.last|.min|.max|.count]",
        field="sort",
    )
