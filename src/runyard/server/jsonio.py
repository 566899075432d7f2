"""JSON in and out of the server: fast (orjson), and NaN/±inf safe in both directions.

Requests are parsed strictly with orjson first; Python clients that send the bare
``NaN``/``Infinity`` tokens (``json.dumps`` does, and seed 003's client uses it) fall back to
the stdlib parser, which accepts them. Responses carry non-finite metric values as the
strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (see docs/protocol.md).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from runyard.entities import Artifact, Experiment, MetricSeries, MetricSummary, Run, encode_float
from runyard.errors import InvalidInput

__all__ = [
    "JsonResponse",
    "artifact_json",
    "experiment_json",
    "loads",
    "run_json",
    "series_json",
    "summary_json",
]


def loads(body: bytes) -> Any:
    """Parse a request body; malformed JSON is a 400 naming the body and the position."""
    if not body:
        raise InvalidInput("request body is empty: send a JSON object", field="body")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as strict_error:
        try:
            return json.loads(body)  # accepts NaN / Infinity / -Infinity tokens
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"request body is not valid JSON: {strict_error}", field="body") from None


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _float(value: float | None) -> float | str | None:
    return None if value is None else encode_float(value)


def summary_json(s: MetricSummary) -> dict[str, Any]:
    return {
        "key": s.key,
        "count": s.count,
        "last": _float(s.last),
        "last_step": s.last_step,
        "last_time": s.last_time,
        "min": _float(s.min),
        "max": _float(s.max),
    }


def _json_safe(value: Any) -> Any:
    """User-supplied JSON (config, summary) may hold non-finite floats: encode them."""
    if isinstance(value, float) and not math.isfinite(value):
        return encode_float(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def run_json(run: Run) -> dict[str, Any]:
    data = {f.name: getattr(run, f.name) for f in dataclasses.fields(run) if f.name != "metrics"}
    data["status"] = run.status.value
    data["tags"] = list(run.tags)
    data["config"] = _json_safe(run.config)
    data["summary"] = _json_safe(run.summary)
    data["metrics"] = {k: summary_json(s) for k, s in run.metrics.items()}
    return data


def experiment_json(exp: Experiment) -> dict[str, Any]:
    return dataclasses.asdict(exp)


def artifact_json(artifact: Artifact) -> dict[str, Any]:
    return dataclasses.asdict(artifact)


def series_json(series: MetricSeries) -> dict[str, Any]:
    values = np.asarray(series.values, dtype=np.float64)
    finite = np.isfinite(values)
    out_values: Any = values
    if not finite.all():
        as_list: list[Any] = values.tolist()
        for i in np.flatnonzero(~finite).tolist():
            as_list[i] = encode_float(as_list[i])
        out_values = as_list
    return {
        "key": series.key,
        "steps": np.asarray(series.steps, dtype=np.int64),
        "times": np.asarray(series.times, dtype=np.float64),
        "values": out_values,
        "total": series.total,
        "downsampled": series.downsampled,
    }
