"""``search_runs``: filters, sort and pagination over runs, as SQL Core expressions.

Filters are ANDed; each becomes a WHERE term on ``runs`` (params, metric summaries and tags
through correlated ``EXISTS`` on their indexed tables). A sort is split into *segments*
queried one after another, so that every segment's ORDER BY can walk an index and stop after
one page: for ``metrics.loss.last`` first the runs that have a value (walking
``ix_metric_summaries_last``), then the runs without one; for ``params.x`` the numeric values,
then the text ones, then the runs without the param. Runs missing the sort value therefore
come last in both directions. Ties break on the run id, in the sort's direction.

When a filter that can use an index matches few runs (``CANDIDATES``), its run ids lead the
query instead, so a selective filter does not walk every run either (see ``_narrow``).

Field syntax: ``params.<key>`` (dotted config keys as flattened), ``metrics.<key>`` with an
optional ``.last``/``.min``/``.max``/``.count`` suffix (default ``.last``; a metric key
that itself ends in one of those words must be given with the suffix). A params filter
compares numerically when its value is a number (or a numeric string), else as text.
``!=`` on params and metrics matches runs that have the field with another value (as in
SQL); on tags it matches runs without the tag. ``~`` is a case-insensitive substring match.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from runyard.entities import RunPage, RunQuery, RunStatus
from runyard.errors import InvalidInput
from runyard.store.sql.metrics import load_summaries
from runyard.store.sql.runs import param_number, param_text, run_from_row
from runyard.store.sql.schema import metric_summaries, run_params, run_tags, runs

__all__ = ["FILTER_FIELDS", "OPERATORS", "PLAIN_FIELDS", "SORT_COLUMNS", "SORT_FIELDS", "search_runs"]

Where = ColumnElement[bool]

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "~")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_STATS = ("last", "min", "max", "count")
_NUMBER_FIELDS = ("created_at", "updated_at", "started_at", "ended_at", "exit_code", "restart_count")
_TEXT_FIELDS = (
    "id",
    "name",
    "user_id",
    "host",
    "gpu_type",
    "slurm_job_id",
    "slurm_array_job_id",
    "slurm_partition",
    "slurm_cluster",
    "sweep_id",
)
PLAIN_FIELDS = ("status", "tags", *_TEXT_FIELDS, *_NUMBER_FIELDS)
FILTER_FIELDS = (
    *PLAIN_FIELDS,
    "params.<key>",
    "metrics.<key>[.last|.min|.max|.count]",
)
SORT_COLUMNS = (
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
    "name",
    "status",
    "user_id",
    "host",
    "slurm_job_id",
    "slurm_partition",
    "slurm_nodes",
    "exit_code",
    "restart_count",
    "duration",  # computed: ended_at (or now, while it runs) - started_at
)
SORT_FIELDS = (*SORT_COLUMNS, "params.<key>", "metrics.<key>[.last|.min|.max|.count]")
MAX_LIMIT = 1000
CANDIDATES = 1000  # see _narrow


def _bad_filter(message: str) -> InvalidInput:
    return InvalidInput(message, field="filter")


def _number(name: str, value: Any) -> float:
    number = param_number(value)
    if number is None:
        raise _bad_filter(f"{name}: {value!r} is not a number")
    return number


def _metric_field(rest: str, *, field_name: str) -> tuple[str, str]:
    key, dot, stat = rest.rpartition(".")
    if not dot or stat not in _STATS:
        key, stat = rest, "last"
    if not key:
        raise InvalidInput(f"{field_name}: metrics.<key> needs a metric key", field=field_name)
    return key, stat


def _text_compare(column: Any, op: str, value: str) -> Where:
    if op == "~":
        result: Where = column.icontains(value, autoescape=True)
        return result
    return _COMPARE[op](column, value)  # type: ignore[no-any-return]


def _check_op(name: str, op: str, allowed: tuple[str, ...]) -> None:
    if op not in OPERATORS:
        raise _bad_filter(f"unknown operator {op!r} in filter on {name}; use one of: {' '.join(OPERATORS)}")
    if op not in allowed:
        raise _bad_filter(f"operator {op!r} does not apply to {name}; use one of: {' '.join(allowed)}")


def _exists(*where: Any) -> Where:
    """A correlated EXISTS on the outer ``runs`` row only."""
    return sa.exists().where(*where).correlate(runs)


@dataclass(frozen=True, slots=True)
class Built:
    """A filter as a WHERE term on ``runs``; ``probe``, when the filter can walk an index,
    selects the ids of the runs it matches (see ``_narrow``)."""

    where: Where
    probe: Any = None


def build_filter(name: Any, op: Any, value: Any) -> Built:
    if not isinstance(name, str) or not isinstance(op, str):
        raise _bad_filter("a filter is (field, operator, value)")
    rp, ms = run_params, metric_summaries
    if name.startswith("params.") and len(name) > len("params."):
        key = name[len("params.") :]
        _check_op(name, op, OPERATORS)
        numeric = op != "~" and param_number(value) is not None and not isinstance(value, bool)
        if numeric:
            cond = _COMPARE[op](rp.c.num_value, param_number(value))
        else:
            text = param_text(value)
            if text is None:
                raise _bad_filter(f"{name}: a filter value is needed")
            cond = _text_compare(rp.c.text_value, op, text)
        probe = None if op in ("!=", "~") else sa.select(rp.c.run_id).where(rp.c.key == key, cond)
        return Built(_exists(rp.c.run_id == runs.c.id, rp.c.key == key, cond), probe)
    if name.startswith("metrics.") and len(name) > len("metrics."):
        key, stat = _metric_field(name[len("metrics.") :], field_name="filter")
        _check_op(name, op, tuple(_COMPARE))
        cond = _COMPARE[op](ms.c[stat], _number(name, value))
        indexed = stat != "count" and op != "!="
        probe = sa.select(ms.c.run_id).where(ms.c.key == key, cond) if indexed else None
        return Built(_exists(ms.c.run_id == runs.c.id, ms.c.key == key, cond), probe)
    if name == "status":
        _check_op(name, op, ("=", "!="))
        try:
            status = RunStatus(value)
        except ValueError:
            valid = ", ".join(s.value for s in RunStatus)
            raise _bad_filter(f"status {value!r} is not one of: {valid}") from None
        return Built(_COMPARE[op](runs.c.status, status.value))
    if name == "tags":
        _check_op(name, op, ("=", "!=", "~"))
        text = param_text(value) or ""
        has = _exists(
            run_tags.c.run_id == runs.c.id, _text_compare(run_tags.c.tag, "~" if op == "~" else "=", text)
        )
        if op == "!=":
            return Built(~has)
        probe = sa.select(run_tags.c.run_id).where(run_tags.c.tag == text) if op == "=" else None
        return Built(has, probe)
    if name in _TEXT_FIELDS:
        _check_op(name, op, OPERATORS)
        return Built(_text_compare(runs.c[name], op, param_text(value) or ""))
    if name in _NUMBER_FIELDS:
        _check_op(name, op, tuple(_COMPARE))
        return Built(_COMPARE[op](runs.c[name], _number(name, value)))
    raise _bad_filter(f"unknown filter field {name!r}; use one of: {', '.join(FILTER_FIELDS)}")


@dataclass(slots=True)
class Segment:
    """One part of a sort order: the runs it covers and how they are ordered."""

    order: list[Any]
    where: list[Where] = field(default_factory=list)
    join: tuple[sa.FromClause, Where] | None = None


def _newest_first() -> list[Any]:
    return [runs.c.created_at.desc(), runs.c.id.desc()]


def sort_segments(sort: Any, descending: bool) -> list[Segment]:
    def direct(col: Any) -> Any:
        return col.desc() if descending else col.asc()

    if not isinstance(sort, str):
        raise InvalidInput("sort must be a field name", field="sort")
    if sort == "duration":
        elapsed = sa.func.coalesce(runs.c.ended_at, time.time()) - runs.c.started_at
        return [
            Segment([direct(elapsed), direct(runs.c.id)], [runs.c.started_at.is_not(None)]),
            Segment(_newest_first(), [runs.c.started_at.is_(None)]),
        ]
    if sort in SORT_COLUMNS:
        col = runs.c[sort]
        first = Segment([direct(col), direct(runs.c.id)])
        if not col.nullable:
            return [first]
        first.where.append(col.is_not(None))
        return [first, Segment(_newest_first(), [col.is_(None)])]
    if sort.startswith("params.") and len(sort) > len("params."):
        key = sort[len("params.") :]
        rp = run_params.alias("sort_param")  # distinct from the filters' EXISTS subqueries
        on = sa.and_(rp.c.run_id == runs.c.id, rp.c.key == key)
        has_value = sa.or_(rp.c.num_value.is_not(None), rp.c.text_value.is_not(None))
        return [
            Segment([direct(rp.c.num_value), direct(rp.c.run_id)], [rp.c.num_value.is_not(None)], (rp, on)),
            Segment(
                [direct(rp.c.text_value), direct(rp.c.run_id)],
                [rp.c.num_value.is_(None), rp.c.text_value.is_not(None)],
                (rp, on),
            ),
            Segment(_newest_first(), [~_exists(on, has_value)]),
        ]
    if sort.startswith("metrics.") and len(sort) > len("metrics."):
        key, stat = _metric_field(sort[len("metrics.") :], field_name="sort")
        ms = metric_summaries.alias("sort_metric")
        on = sa.and_(ms.c.run_id == runs.c.id, ms.c.key == key)
        value = ms.c[stat]
        return [
            Segment([direct(value), direct(ms.c.run_id)], [value.is_not(None)], (ms, on)),
            Segment(_newest_first(), [~_exists(on, value.is_not(None))]),
        ]
    raise InvalidInput(f"unknown sort field {sort!r}; use one of: {', '.join(SORT_FIELDS)}", field="sort")


def _select(what: Any, seg: Segment | None, base: list[Where]) -> Any:
    source: Any = runs
    where = list(base)
    if seg is not None:
        if seg.join is not None:
            source = runs.join(seg.join[0], seg.join[1])
        where += seg.where
    return sa.select(what).select_from(source).where(*where)


def _narrow(conn: Connection, probes: list[Any]) -> list[str] | None:
    """The ids matched by the most selective filter, if one matches at most
    ``CANDIDATES`` runs (in any experiment); None when every filter matches more.

    Walking the sort's index and checking each run against the filters finds a page in a
    few ms while the filters match a good share of runs, but walks every run when they
    match few (a seed, a typo'd value): 600 ms over 100,000 runs on SQLite. A bounded read of each
    filter's own index tells which case this is, and a short id list then leads the query.
    """
    best, fewest = None, CANDIDATES + 1
    for probe in probes:
        bounded = probe.limit(CANDIDATES + 1).subquery()
        count = conn.execute(sa.select(sa.func.count()).select_from(bounded)).scalar_one()
        if count < fewest:
            best, fewest = probe, count
            if not count:
                return []
    return None if best is None else list(conn.execute(best).scalars())


def search_runs(conn: Connection, query: RunQuery) -> RunPage:
    limit, offset = query.limit, query.offset
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_LIMIT}", field="limit")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidInput("offset must be a non-negative integer", field="offset")
    base: list[Where] = []
    if query.experiment_id is not None:
        base.append(runs.c.experiment_id == query.experiment_id)
    if query.project_id is not None:
        base.append(runs.c.project_id == query.project_id)
    probes = []
    for item in query.filters:
        if not isinstance(item, tuple | list) or len(item) != 3:
            raise _bad_filter("a filter is (field, operator, value)")
        built = build_filter(*item)
        base.append(built.where)
        if built.probe is not None:
            probes.append(built.probe)
    segments = sort_segments(query.sort, bool(query.descending))
    candidates = _narrow(conn, probes)
    if candidates == []:
        return RunPage(
            runs=(), offset=offset, limit=limit, next_offset=None, total=0 if query.with_total else None
        )
    if candidates is not None:
        base.append(runs.c.id.in_(candidates))

    ids: list[str] = []
    need, skip = limit + 1, offset  # one extra row tells whether there is a next page
    for seg in segments:
        stmt = _select(runs.c.id, seg, base).order_by(*seg.order).limit(need).offset(skip)
        found = list(conn.execute(stmt).scalars())
        if found:
            ids += found
            need -= len(found)
            skip = 0
        elif skip:
            skip -= conn.execute(_select(sa.func.count(), seg, base)).scalar_one()
            skip = max(skip, 0)
        if need == 0:
            break
    more = len(ids) > limit
    ids = ids[:limit]

    total = None
    if query.with_total:
        total = int(conn.execute(_select(sa.func.count(), None, base)).scalar_one())
    rows = (
        {m["id"]: m for m in conn.execute(sa.select(runs).where(runs.c.id.in_(ids))).mappings()}
        if ids
        else {}
    )
    summaries = load_summaries(conn, ids, query.metric_keys)
    page = tuple(run_from_row(rows[i], summaries[i]) for i in ids)
    return RunPage(
        runs=page,
        offset=offset,
        limit=limit,
        next_offset=offset + len(page) if more else None,
        total=total,
    )
