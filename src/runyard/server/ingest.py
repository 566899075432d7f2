"""Parse ingestion bodies (batches, metric points, seed 003 forms) into entities, fast.

Pure functions, no I/O. Columns go through numpy in one call when they are clean (the common
case) and fall back to a per-element check only to find and name the offending element.
Every error is an ``InvalidInput`` whose ``field`` is a path into the body, e.g.
``metrics.loss.values[3]``.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from runyard.entities import (
    ArtifactCreate,
    Batch,
    LogLine,
    MetricColumns,
    RunCreate,
    RunStatus,
    RunUpdate,
    decode_float,
)
from runyard.errors import InvalidInput

__all__ = [
    "parse_artifact",
    "parse_batch",
    "parse_logs",
    "parse_points",
    "parse_seed_batch",
    "parse_status",
    "parse_timestamp",
]

WRITER_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
MAX_STEP = 2**53
MAX_LOG_LINES = 100_000  # per batch (the client sends at most 5,000)
MAX_LOG_LINE_CHARS = 16_384  # per line (the client cuts lines at 8,192 characters)
LOG_STREAMS = ("stdout", "stderr")


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{field} must be a JSON object, got {_kind(value)}", field=field)
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def _str(value: Any, field: str, *, optional: bool = True, max_len: int = 200) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, got {_kind(value)}", field=field)
    if len(value) > max_len:
        raise InvalidInput(f"{field} must be at most {max_len} characters", field=field)
    return value


def _int(value: Any, field: str, *, lo: int = 0, hi: int = MAX_STEP - 1) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        raise InvalidInput(f"{field} must be an integer, got {value!r}", field=field)
    if not lo <= number <= hi:
        raise InvalidInput(f"{field} must be between {lo} and {hi}, got {number}", field=field)
    return number


def _opt_int(value: Any, field: str, **kw: int) -> int | None:
    return None if value is None else _int(value, field, **kw)


def _time(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput(f"{field} must be POSIX seconds (a finite number)", field=field)
    return float(value)


def _tags(value: Any, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput(f"{field} must be an array of strings", field=field)
    tags = []
    for i, tag in enumerate(value):
        text = _str(tag, f"{field}[{i}]", optional=False, max_len=200)
        assert text is not None
        if not text.strip():
            raise InvalidInput(f"{field}[{i}] must not be empty", field=f"{field}[{i}]")
        tags.append(text)
    return tuple(dict.fromkeys(tags))


def _json_obj(value: Any, field: str) -> dict[str, Any] | None:
    return None if value is None else _obj(value, field)


def parse_status(value: Any, field: str = "status") -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        valid = ", ".join(s.value for s in RunStatus)
        raise InvalidInput(f"{field} must be one of: {valid}; got {value!r}", field=field) from None


def parse_timestamp(value: Any, field: str = "timestamp") -> float:
    """ISO 8601 (naive means UTC, as seed 003 sends ``datetime.utcnow().isoformat()``) or POSIX."""
    if value is None:
        return time.time()
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    raise InvalidInput(f"{field} must be an ISO 8601 time or POSIX seconds, got {value!r}", field=field)


# -- columns -----------------------------------------------------------------------------
def _array(raw: list[Any]) -> np.ndarray:
    """One numpy call for a clean column; ragged or mixed input becomes an object array,
    which the callers then check element by element to name the bad one."""
    try:
        return np.asarray(raw)
    except (ValueError, TypeError):
        return np.asarray(raw, dtype=object)


def _steps(raw: Any, field: str) -> np.ndarray:
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be an array of integers", field=field)
    arr = _array(raw)
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind in "iu":
        steps = arr.astype(np.int64, copy=False)
    elif arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.floor(arr)):
        steps = arr.astype(np.int64)
    else:
        for i, v in enumerate(raw):
            _int(v, f"{field}[{i}]")
        raise InvalidInput(f"{field} must be an array of integers", field=field)
    bad = np.flatnonzero((steps < 0) | (steps >= MAX_STEP))
    if bad.size:
        i = int(bad[0])
        raise InvalidInput(
            f"{field}[{i}] must be between 0 and {MAX_STEP - 1}, got {int(steps[i])}", field=f"{field}[{i}]"
        )
    return steps


def _times(raw: Any, n: int, field: str, now: float) -> np.ndarray:
    if raw is None:
        return np.full(n, now, dtype=np.float64)
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be an array of POSIX seconds", field=field)
    arr = _array(raw)
    if arr.size and (arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr))):
        for i, v in enumerate(raw):
            _time(v, f"{field}[{i}]")
            if v is None:
                raise InvalidInput(f"{field}[{i}] must be a number", field=f"{field}[{i}]")
    return arr.astype(np.float64, copy=False) if arr.size else np.zeros(0, dtype=np.float64)


def _values(raw: Any, field: str) -> np.ndarray:
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be an array of numbers", field=field)
    arr = _array(raw)
    if arr.dtype.kind in "iuf":
        return arr.astype(np.float64, copy=False)
    if arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    out = np.empty(len(raw), dtype=np.float64)
    for i, v in enumerate(raw):
        try:
            out[i] = decode_float(v)
        except ValueError as exc:
            raise InvalidInput(f"{field}[{i}]: {exc}", field=f"{field}[{i}]") from None
    return out


def parse_columns(metrics: Any, now: float, field: str = "metrics") -> dict[str, MetricColumns]:
    out: dict[str, MetricColumns] = {}
    for key, cols in _obj(metrics, field).items():
        f = f"{field}.{key}"
        cols = _obj(cols, f)
        unknown = set(cols) - {"steps", "times", "values"}
        if unknown:
            raise InvalidInput(f"{f} has unknown fields {sorted(unknown)}; use steps, times, values", field=f)
        values = _values(cols.get("values"), f"{f}.values")
        steps = _steps(cols.get("steps"), f"{f}.steps")
        times = _times(cols.get("times"), len(values), f"{f}.times", now)
        if not len(steps) == len(times) == len(values):
            raise InvalidInput(
                f"{f}: steps, times and values must have the same length "
                f"(got {len(steps)}, {len(times)}, {len(values)})",
                field=f,
            )
        if len(values):
            out[key] = MetricColumns(steps=steps, times=times, values=values)
    return out


# -- console lines -----------------------------------------------------------------------
def _log_column(cols: dict[str, Any], name: str, n: int, field: str) -> list[Any] | None:
    raw = cols.get(name)
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise InvalidInput(f"{field}.{name} must be an array", field=f"{field}.{name}")
    if len(raw) != n:
        raise InvalidInput(
            f"{field}: {name} and lines must have the same length (got {len(raw)} and {n})",
            field=f"{field}.{name}",
        )
    return raw


def parse_logs(raw: Any, now: float, field: str = "logs") -> tuple[LogLine, ...]:
    """``{"times", "streams", "hosts", "ranks", "lines"}``: equally long columns, one entry
    per line; only ``lines`` is required (times default to now, streams to stdout, hosts and
    ranks to null)."""
    cols = _obj(raw, field)
    unknown = set(cols) - {"times", "streams", "hosts", "ranks", "lines"}
    if unknown:
        raise InvalidInput(
            f"{field} has unknown fields {sorted(unknown)}; use times, streams, hosts, ranks, lines",
            field=field,
        )
    lines = cols.get("lines")
    if not isinstance(lines, list):
        raise InvalidInput(f"{field}.lines must be an array of strings", field=f"{field}.lines")
    n = len(lines)
    if n > MAX_LOG_LINES:
        raise InvalidInput(
            f"{field} has {n} lines; at most {MAX_LOG_LINES} per batch", field=f"{field}.lines"
        )
    times = _log_column(cols, "times", n, field)
    streams = _log_column(cols, "streams", n, field)
    hosts = _log_column(cols, "hosts", n, field)
    ranks = _log_column(cols, "ranks", n, field)
    out = []
    for i, line in enumerate(lines):
        if not isinstance(line, str):
            raise InvalidInput(
                f"{field}.lines[{i}] must be a string, got {_kind(line)}", field=f"{field}.lines[{i}]"
            )
        if len(line) > MAX_LOG_LINE_CHARS:
            raise InvalidInput(
                f"{field}.lines[{i}] has {len(line)} characters; at most {MAX_LOG_LINE_CHARS} "
                "(cut longer lines)",
                field=f"{field}.lines[{i}]",
            )
        t = now if times is None else _time(times[i], f"{field}.times[{i}]")
        if t is None:
            raise InvalidInput(f"{field}.times[{i}] must be a number", field=f"{field}.times[{i}]")
        stream = "stdout" if streams is None else streams[i]
        if stream not in LOG_STREAMS:
            raise InvalidInput(
                f"{field}.streams[{i}] must be stdout or stderr, got {stream!r}",
                field=f"{field}.streams[{i}]",
            )
        out.append(
            LogLine(
                time=t,
                stream=stream,
                line=line,
                host=None if hosts is None else _str(hosts[i], f"{field}.hosts[{i}]", max_len=255),
                rank=None if ranks is None else _opt_int(ranks[i], f"{field}.ranks[{i}]", hi=2**31 - 1),
            )
        )
    return tuple(out)


# -- batches -----------------------------------------------------------------------------
def _run_create(run_id: str, raw: dict[str, Any], user_id: str) -> RunCreate:
    slurm = _json_obj(raw.get("slurm"), "run.slurm") or {}
    status = parse_status(raw.get("status", "running"), "run.status")
    return RunCreate(
        id=run_id,
        experiment_id=_str(raw.get("experiment_id"), "run.experiment_id", max_len=64) or "",
        name=_str(raw.get("name"), "run.name") or "",
        status=status,
        started_at=_time(raw.get("started_at"), "run.started_at"),
        user_id=user_id,
        host=_str(raw.get("host"), "run.host", max_len=500),
        config=_json_obj(raw.get("config"), "run.config") or {},
        tags=_tags(raw.get("tags"), "run.tags") or (),
        notes=_str(raw.get("notes"), "run.notes", max_len=100_000) or "",
        gpu_type=_str(raw.get("gpu_type"), "run.gpu_type"),
        slurm_job_id=_slurm_str(slurm.get("job_id"), "run.slurm.job_id"),
        slurm_array_job_id=_slurm_str(slurm.get("array_job_id"), "run.slurm.array_job_id"),
        slurm_array_task_id=_opt_int(slurm.get("array_task_id"), "run.slurm.array_task_id"),
        slurm_nodes=_str(slurm.get("nodes"), "run.slurm.nodes", max_len=10_000),
        slurm_partition=_str(slurm.get("partition"), "run.slurm.partition"),
        slurm_cluster=_str(slurm.get("cluster"), "run.slurm.cluster"),
    )


def _slurm_str(value: Any, field: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _str(value, field, max_len=64)


def parse_update(raw: Any, field: str = "update") -> RunUpdate:
    raw = _obj(raw, field)
    known = {
        "name",
        "status",
        "exit_code",
        "ended_at",
        "started_at",
        "notes",
        "config",
        "summary",
        "tags",
        "tags_add",
        "restart_count",
        "host",
        "slurm",
    }
    unknown = set(raw) - known
    if unknown:
        raise InvalidInput(
            f"{field} has unknown fields {sorted(unknown)}; valid: {sorted(known)}", field=field
        )
    status = raw.get("status")
    slurm = dict(_json_obj(raw.get("slurm"), f"{field}.slurm") or {})
    f = f"{field}.slurm"
    return RunUpdate(
        slurm_job_id=_slurm_str(slurm.pop("job_id", None), f"{f}.job_id"),
        slurm_array_job_id=_slurm_str(slurm.pop("array_job_id", None), f"{f}.array_job_id"),
        slurm_array_task_id=_opt_int(slurm.pop("array_task_id", None), f"{f}.array_task_id"),
        slurm_nodes=_str(slurm.pop("nodes", None), f"{f}.nodes", max_len=10_000),
        slurm_partition=_str(slurm.pop("partition", None), f"{f}.partition"),
        slurm=slurm or None,
        name=_str(raw.get("name"), f"{field}.name"),
        status=None if status is None else parse_status(status, f"{field}.status"),
        exit_code=_opt_int(raw.get("exit_code"), f"{field}.exit_code", lo=-(2**31), hi=2**31 - 1),
        ended_at=_time(raw.get("ended_at"), f"{field}.ended_at"),
        started_at=_time(raw.get("started_at"), f"{field}.started_at"),
        notes=_str(raw.get("notes"), f"{field}.notes", max_len=100_000),
        host=_str(raw.get("host"), f"{field}.host", max_len=500),
        config=_json_obj(raw.get("config"), f"{field}.config"),
        summary=_json_obj(raw.get("summary"), f"{field}.summary"),
        tags=_tags(raw.get("tags"), f"{field}.tags"),
        tags_add=_tags(raw.get("tags_add"), f"{field}.tags_add"),
        restart_count=_opt_int(raw.get("restart_count"), f"{field}.restart_count", hi=1_000_000),
    )


def parse_artifact(raw: Any, field: str = "artifact") -> ArtifactCreate:
    raw = _obj(raw, field)
    path = _str(raw.get("path"), f"{field}.path", optional=False, max_len=4096)
    assert path is not None
    if not path.strip():
        raise InvalidInput(f"{field}.path must not be empty", field=f"{field}.path")
    sha = _str(raw.get("sha256"), f"{field}.sha256", max_len=64)
    if sha is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", sha):
        raise InvalidInput(f"{field}.sha256 must be 64 hex digits", field=f"{field}.sha256")
    kind = raw.get("kind", raw.get("type")) or "file"
    return ArtifactCreate(
        path=path,
        kind=_str(kind, f"{field}.kind", max_len=100) or "file",
        name=_str(raw.get("name"), f"{field}.name", max_len=500),
        size_bytes=_opt_int(raw.get("size_bytes"), f"{field}.size_bytes", hi=2**62),
        sha256=sha.lower() if sha else None,
        step=_opt_int(raw.get("step"), f"{field}.step"),
    )


def parse_batch(run_id: str, body: Any, user_id: str) -> Batch:
    body = _obj(body, "body")
    known = {"writer", "seq", "run", "metrics", "update", "artifacts", "logs"}
    unknown = set(body) - known
    if unknown:
        raise InvalidInput(
            f"batch has unknown fields {sorted(unknown)}; valid: {sorted(known)}", field="body"
        )
    writer = body.get("writer")
    if not isinstance(writer, str) or not WRITER_RE.match(writer):
        raise InvalidInput("writer must be 8-64 characters of A-Z, a-z, 0-9, _ and -", field="writer")
    seq = _int(body.get("seq"), "seq", lo=1)
    run_raw = _json_obj(body.get("run"), "run")
    arts = body.get("artifacts") or []
    if not isinstance(arts, list):
        raise InvalidInput("artifacts must be an array", field="artifacts")
    now = time.time()
    return Batch(
        writer=writer,
        seq=seq,
        run=None if run_raw is None else _run_create(run_id, run_raw, user_id),
        project=None if run_raw is None else _str(run_raw.get("project"), "run.project"),
        experiment=None if run_raw is None else _str(run_raw.get("experiment"), "run.experiment"),
        metrics=parse_columns(body.get("metrics") or {}, now),
        update=None if body.get("update") is None else parse_update(body["update"]),
        artifacts=tuple(parse_artifact(a, f"artifacts[{i}]") for i, a in enumerate(arts)),
        logs=() if body.get("logs") is None else parse_logs(body["logs"], now),
    )


# -- single points and seed 003 forms ----------------------------------------------------
def _append(
    acc: dict[str, tuple[list[int], list[float], list[float]]], key: str, step: int, t: float, v: float
) -> None:
    cols = acc.setdefault(key, ([], [], []))
    cols[0].append(step)
    cols[1].append(t)
    cols[2].append(v)


def _to_columns(acc: dict[str, tuple[list[int], list[float], list[float]]]) -> dict[str, MetricColumns]:
    return {
        k: MetricColumns(
            steps=np.asarray(s, dtype=np.int64),
            times=np.asarray(t, dtype=np.float64),
            values=np.asarray(v, dtype=np.float64),
        )
        for k, (s, t, v) in acc.items()
    }


def _value(value: Any, field: str) -> float:
    try:
        return decode_float(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}: {exc}", field=field) from None


def parse_points(body: Any) -> dict[str, MetricColumns]:
    """``{"name"|"key", "value", "step", "timestamp"}`` or ``{"points": [...]}``."""
    body = _obj(body, "body")
    points = body.get("points", [body])
    if not isinstance(points, list):
        raise InvalidInput("points must be an array", field="points")
    acc: dict[str, tuple[list[int], list[float], list[float]]] = {}
    prefix = "points" if "points" in body else ""
    for i, point in enumerate(points):
        f = f"{prefix}[{i}]." if prefix else ""
        point = _obj(point, f"{prefix}[{i}]" if prefix else "body")
        key = point.get("name", point.get("key"))
        if key is None:
            raise InvalidInput(f"{f}name is required (the metric key)", field=f"{f}name")
        key = _str(key, f"{f}name", optional=False, max_len=250)
        assert key is not None
        if "value" not in point:
            raise InvalidInput(f"{f}value is required", field=f"{f}value")
        if "step" not in point:
            raise InvalidInput(f"{f}step is required (an integer >= 0)", field=f"{f}step")
        _append(
            acc,
            key,
            _int(point["step"], f"{f}step"),
            parse_timestamp(point.get("timestamp"), f"{f}timestamp"),
            _value(point["value"], f"{f}value"),
        )
    return _to_columns(acc)


def parse_seed_batch(body: Any) -> dict[str, MetricColumns]:
    """Seed 003's ``{"step": 3, "metrics": {"loss": 0.5}, "timestamp": "…"}``."""
    body = _obj(body, "body")
    step = _int(body.get("step"), "step")
    t = parse_timestamp(body.get("timestamp"))
    acc: dict[str, tuple[list[int], list[float], list[float]]] = {}
    for key, value in _obj(body.get("metrics"), "metrics").items():
        _append(acc, key, step, t, _value(value, f"metrics.{key}"))
    return _to_columns(acc)
