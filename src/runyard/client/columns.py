"""Build the columnar ``metrics`` object of a batch from logged dicts, fast, in the sender.

Training scripts log the same keys call after call, so consecutive log calls with the same
key set form a *group*: its steps and times are one list shared by every key, validated and
JSON-encoded once, and each key's values are checked with C-speed builtins (``map``,
``set``, ``sum``) instead of a Python loop per point. Groups that are small, or hold a value
that needs attention (a NaN, an int, a string), take the per-point path, which also decides
what to skip and warns. Point order per key is always the order of the log calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from runyard.client.encode import MAX_STEP, coerce_value, valid_step

__all__ = ["ColumnBuilder"]

_FLOATS = {float}
_NUMBERS = {float, int}  # not bool: type(True) is bool
_INT_LIMIT = 2**63  # ints travel as JSON integers up to int64
_SMALL_GROUP = 8  # below this many log calls a group is cheaper point by point

# A segment of one key's columns: (steps, times, values, private). Non-private segments share
# their steps/times lists with the other keys of their group and must not be mutated.
Segment = tuple[list[int], list[float], list[Any], bool]


class ColumnBuilder:
    def __init__(self, warn: Callable[[str, str | None], None]) -> None:
        self._warn = warn
        self._cols: dict[str, list[Segment]] = {}
        self._good_keys: set[str] = set()
        self.points = 0

    def __bool__(self) -> bool:
        return bool(self._cols)

    def _key_ok(self, key: Any) -> bool:
        if key in self._good_keys:
            return True
        if type(key) is not str or not key or len(key) > 250:
            self._warn(f"metric key {key!r} must be a non-empty string of at most 250 characters", None)
            return False
        self._good_keys.add(key)
        return True

    def add_group(self, items: list[tuple[Any, float, dict[str, Any]]]) -> None:
        """Add consecutive log calls ``(step, time, metrics)`` whose dicts have equal key sets."""
        steps = [it[0] for it in items]
        if not (set(map(type, steps)) == {int} and min(steps) >= 0 and max(steps) < MAX_STEP):
            items, steps = self._valid_steps(items)
            if not items:
                return
        times = [it[1] for it in items]
        dicts = [it[2] for it in items]
        small = len(items) < _SMALL_GROUP
        for key in dicts[0]:
            if not self._key_ok(key):
                continue
            values = [d[key] for d in dicts]
            types = set(map(type, values))
            clean = types == _FLOATS or (
                types <= _NUMBERS and min(values) > -_INT_LIMIT and max(values) < _INT_LIMIT
            )
            if clean:
                total = sum(values)
                clean = total - total == 0  # no NaN/inf (or an overflow: checked the slow way)
            if clean:
                seg_steps, seg_times = steps, times
            else:
                seg_steps, seg_times, values = self._checked(key, steps, times, values)
                if not values:
                    continue
            self.points += len(values)
            segments = self._cols.setdefault(key, [])
            if (small or not clean) and segments and segments[-1][3]:
                last = segments[-1]
                last[0].extend(seg_steps)
                last[1].extend(seg_times)
                last[2].extend(values)
            elif small or not clean:
                segments.append((list(seg_steps), list(seg_times), list(values), True))
            else:
                segments.append((seg_steps, seg_times, values, False))

    def _valid_steps(
        self, items: list[tuple[Any, float, dict[str, Any]]]
    ) -> tuple[list[tuple[Any, float, dict[str, Any]]], list[int]]:
        kept, steps = [], []
        for it in items:
            s = valid_step(it[0])
            if s is None:
                self._warn(
                    f"step must be an integer in [0, 2^53), got {it[0]!r}; skipped that log call",
                    f"step:{type(it[0]).__name__}",
                )
                continue
            kept.append(it)
            steps.append(s)
        return kept, steps

    def _checked(
        self, key: str, steps: list[int], times: list[float], values: list[Any]
    ) -> tuple[list[int], list[float], list[Any]]:
        out_s: list[int] = []
        out_t: list[float] = []
        out_v: list[Any] = []
        for s, t, v in zip(steps, times, values, strict=True):
            w = coerce_value(v)
            if w is None:
                self._warn(
                    f"metric {key!r}: {type(v).__name__} value {v!r} is not a number; skipped "
                    "(log numbers: int, float, numpy/torch scalars)",
                    f"value:{key}",
                )
                continue
            out_s.append(s)
            out_t.append(t)
            out_v.append(w)
        return out_s, out_t, out_v

    def to_json(self) -> str:
        """``{"key": {"steps": [...], "times": [...], "values": [...]}, ...}`` as JSON text."""
        cache: dict[int, str] = {}

        def shared(lst: list[Any]) -> str:
            text = cache.get(id(lst))
            if text is None:
                text = cache[id(lst)] = json.dumps(lst, separators=(",", ":"), allow_nan=False)[1:-1]
            return text

        parts = []
        for key, segments in self._cols.items():
            steps = ",".join([shared(seg[0]) for seg in segments if seg[0]])
            times = ",".join([shared(seg[1]) for seg in segments if seg[1]])
            values = ",".join(
                [json.dumps(seg[2], separators=(",", ":"), allow_nan=False)[1:-1] for seg in segments]
            )
            parts.append(f'{json.dumps(key)}:{{"steps":[{steps}],"times":[{times}],"values":[{values}]}}')
        return "{" + ",".join(parts) + "}"
