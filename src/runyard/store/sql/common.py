"""Small helpers shared by the SQL store modules: ids, clock, input rules, JSON."""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from runyard.errors import InvalidInput

__all__ = [
    "IN_BATCH",
    "MAX_NAME",
    "check_int",
    "check_name",
    "check_optional_text",
    "check_text",
    "check_time",
    "chunked",
    "dump_json",
    "has_control",
    "load_json",
    "new_id",
    "now",
]

T = TypeVar("T")

MAX_NAME = 200
# C0 and C1 control characters (tab and newline included: names are one line).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# How many bound parameters one IN (...) list may carry (SQLite allows 32766, PostgreSQL 65535).
IN_BATCH = 900


def new_id() -> str:
    return uuid.uuid4().hex


def now() -> float:
    return time.time()


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def check_name(value: object, field: str, *, allow_empty: bool = False, limit: int = MAX_NAME) -> str:
    """A project/experiment/run name or tag: stripped, one line, at most ``limit`` chars.

    Unicode, quotes and slashes are allowed and stored verbatim.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    name = value.strip()
    if not name and not allow_empty:
        raise InvalidInput(f"{field} must not be empty", field=field)
    if len(name) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    if has_control(name):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    return name


def check_text(value: object, field: str, *, limit: int = 100_000) -> str:
    """Free text (notes, descriptions): any characters, bounded length."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} is longer than {limit} characters", field=field)
    return value


def check_optional_text(value: object, field: str, *, limit: int = 1000) -> str | None:
    if value is None:
        return None
    text = check_text(value, field, limit=limit)
    if has_control(text):
        raise InvalidInput(f"{field} must not contain control characters", field=field)
    return text


def check_int(value: object, field: str, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be an integer", field=field)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{field} must be at least {minimum}", field=field)
    if abs(value) >= 2**63:
        raise InvalidInput(f"{field} is out of range", field=field)
    return value


def check_time(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be a finite number of POSIX seconds", field=field)
    return float(value)


def dump_json(value: Any, field: str) -> str:
    """JSON text for a config/summary document; NaN and infinities are kept (as JSON5-style
    ``NaN``/``Infinity`` tokens, which ``json.loads`` reads back)."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{field} must be JSON-serialisable: {exc}", field=field) from exc


def load_json(text: str | None, default: T) -> Any | T:
    if not text:
        return default
    return json.loads(text)


def chunked(items: Sequence[T] | Iterable[T], size: int = IN_BATCH) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
