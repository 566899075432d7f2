"""The live event bus behind ``GET /api/v1/events`` (Server-Sent Events).

Whatever changes a run publishes here *after* the store call returned (never inside a
transaction): ``run`` (status and fields), ``metrics`` (per key count/last/last_step of the
keys just written) and ``logs`` (new console lines, capped). Every event gets the next number
of this process, and its id is ``<epoch>-<n>`` (the epoch is random per bus, so an id from
another server process is recognised). Events live in one ring buffer of the last
``buffer_size``; a subscriber is only a cursor into it plus a wake-up, so publishing never
blocks and costs the same with one or many subscribers. A subscriber whose cursor fell out of
the ring (reconnected too late, or read too slowly) gets a ``reset`` event: refetch.

Publishing is thread-safe (the watcher thread and threadpool routes publish): the ring is
under a lock, and each subscriber's ``asyncio.Event`` is set through its loop's
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import Depends, Request

from runyard.entities import Batch, BatchResult, LogLine, Run, encode_float
from runyard.store.base import Store

__all__ = [
    "BUFFER_SIZE",
    "LOG_LINES_CAP",
    "Event",
    "EventBus",
    "EventBusDep",
    "Subscription",
    "publish_batch",
    "publish_metrics",
    "publish_runs",
    "publish_safely",
    "run_payload",
]

log = logging.getLogger("runyard.server.events")

BUFFER_SIZE = 10_000
LOG_LINES_CAP = 200  # console lines per ``logs`` event; more: ``truncated`` and the client refetches
_LOG_LOCKS = 64
_MAX_CURSORS = 100_000


@dataclass(frozen=True, slots=True)
class Event:
    n: int
    id: str
    kind: str  # run | metrics | logs
    run_id: str | None
    experiment_id: str | None
    data: bytes  # one line of JSON


class Subscription:
    """A waiting reader: ``wait`` returns when something was published since ``clear``."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready = asyncio.Event()

    def notify(self) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: the reader is gone
            self.loop.call_soon_threadsafe(self.ready.set)


class EventBus:
    def __init__(self, buffer_size: int = BUFFER_SIZE, *, heartbeat_s: float = 15.0) -> None:
        self.epoch = secrets.token_hex(4)
        self.heartbeat_s = heartbeat_s
        self._ring: deque[Event] = deque(maxlen=buffer_size)
        self._n = 0
        self._lock = threading.Lock()
        self._subs: set[Subscription] = set()
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._log_locks = [threading.Lock() for _ in range(_LOG_LOCKS)]
        self._log_cursor: dict[str, int] = {}
        self.closed = False

    def close(self) -> None:
        """End every stream (the server is shutting down: uvicorn waits for open responses)."""
        with self._lock:
            self.closed = True
            subs = list(self._subs)
        for sub in subs:
            sub.notify()

    # -- publishing ------------------------------------------------------------------------
    def publish(
        self, kind: str, data: dict[str, Any], *, run_id: str | None = None, experiment_id: str | None = None
    ) -> Event:
        body = orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)
        with self._lock:
            self._n += 1
            event = Event(self._n, self.event_id(self._n), kind, run_id, experiment_id, body)
            self._ring.append(event)
            subs = list(self._subs)
            listeners = list(self._listeners)
        for sub in subs:
            sub.notify()
        for listener in listeners:
            try:
                listener(kind, data)
            except Exception:  # a listener's bug never fails the publisher
                log.warning("events: a listener failed on a %s event", kind, exc_info=True)
        return event

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(kind, data)`` for every event published from now on, in the
        publisher's thread: it must only note the event (e.g. queue it), never block."""
        with self._lock:
            self._listeners.append(listener)

    def event_id(self, n: int) -> str:
        return f"{self.epoch}-{n}"

    # -- reading ---------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The number of the newest event (0 before the first)."""
        with self._lock:
            return self._n

    def resume_point(self, last_event_id: str | None) -> int | None:
        """The cursor to replay from for a client's ``Last-Event-ID``; None when it cannot be
        honoured without a gap (unknown, from another process, or older than the ring)."""
        if not last_event_id:
            return None
        epoch, _, raw = last_event_id.strip().rpartition("-")
        if epoch != self.epoch or not raw.isdigit():
            return None
        n = int(raw)
        with self._lock:
            oldest = self._ring[0].n if self._ring else self._n + 1
            if n > self._n or n < oldest - 1:
                return None
        return n

    def since(self, cursor: int, limit: int = 500) -> list[Event] | None:
        """Events after ``cursor`` (at most ``limit``), oldest first; None when some of them
        have already left the ring."""
        with self._lock:
            if cursor >= self._n:
                return []
            oldest = self._ring[0].n
            if cursor < oldest - 1:
                return None
            start = cursor - oldest + 1
            return list(itertools.islice(self._ring, start, start + limit))

    def subscribe(self) -> Subscription:
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    # -- console lines: exactly once per line, even with concurrent batches of one run ------
    def publish_logs(self, store: Store, run: Run, stored: int) -> None:
        """Publish the newest console lines of ``run`` not published yet (``stored`` were just
        written). Reads from the store: call it outside the event loop."""
        lock = self._log_locks[zlib.crc32(run.id.encode()) % _LOG_LOCKS]
        with lock:
            cursor = self._log_cursor.get(run.id)
            limit = LOG_LINES_CAP if cursor is not None else min(stored, LOG_LINES_CAP)
            lines = store.list_log_lines(run.id, newest=True, limit=limit)
            fresh = [line for line in lines if cursor is None or line.id > cursor]
            if not fresh:
                return
            truncated = (cursor is None and stored > LOG_LINES_CAP) or (
                cursor is not None and len(fresh) == LOG_LINES_CAP
            )
            if len(self._log_cursor) > _MAX_CURSORS:
                self._log_cursor.clear()
            self._log_cursor[run.id] = fresh[-1].id
            self.publish(
                "logs",
                {
                    "run_id": run.id,
                    "experiment_id": run.experiment_id,
                    "lines": [_line(line) for line in fresh],
                    "truncated": truncated,
                },
                run_id=run.id,
                experiment_id=run.experiment_id,
            )


def _line(line: LogLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "time": line.time,
        "stream": line.stream,
        "host": line.host,
        "rank": line.rank,
        "line": line.line,
    }


_RUN_FIELDS = (
    "experiment_id",
    "project_id",
    "name",
    "user_id",
    "created_at",
    "started_at",
    "ended_at",
    "updated_at",
    "exit_code",
    "host",
    "restart_count",
    "slurm_job_id",
    "slurm_state",
    "pending_reason",
    "start_estimate",
    "state_unknown_since",
    "slurm_done",
    "sweep_id",
)


def run_payload(run: Run) -> dict[str, Any]:
    """A ``run`` event's data: the fields a runs table shows (not config, summary or metrics)."""
    data: dict[str, Any] = {"run_id": run.id, "status": run.status.value, "tags": list(run.tags)}
    for name in _RUN_FIELDS:
        data[name] = getattr(run, name)
    return data


def _publish_run(bus: EventBus, run: Run) -> None:
    bus.publish("run", run_payload(run), run_id=run.id, experiment_id=run.experiment_id)


def publish_runs(bus: EventBus, store: Store, runs: Iterable[Run | str]) -> None:
    """A ``run`` event per run (ids are read from the store, in bulk: call it outside the
    event loop). A run gone meanwhile (or a store that is down) is not published."""
    items = list(runs)
    ids = [item for item in items if isinstance(item, str)]
    read: dict[str, Run] = {}
    if ids:
        try:
            read = {run.id: run for run in store.get_runs(ids)}
        except Exception:
            log.debug("events: runs %s not published", ids[:3], exc_info=True)
    for item in items:
        run = read.get(item) if isinstance(item, str) else item
        if run is not None:
            _publish_run(bus, run)


def publish_metrics(bus: EventBus, run: Run, new_points: dict[str, int]) -> None:
    """A ``metrics`` event for the keys just written (``run`` read with its summaries)."""
    metrics: dict[str, Any] = {}
    for key, count in new_points.items():
        summary = run.metrics.get(key)
        if summary is None or count <= 0:
            continue
        metrics[key] = {
            "count": summary.count,
            "new": count,
            "last": encode_float(summary.last),
            "min": None if summary.min is None else encode_float(summary.min),
            "max": None if summary.max is None else encode_float(summary.max),
            "last_step": summary.last_step,
            "last_time": summary.last_time,
        }
    if metrics:
        bus.publish(
            "metrics",
            {"run_id": run.id, "experiment_id": run.experiment_id, "metrics": metrics},
            run_id=run.id,
            experiment_id=run.experiment_id,
        )


def publish_batch(bus: EventBus, store: Store, run_id: str, batch: Batch, result: BatchResult) -> None:
    """What an applied batch changed: its run (created or updated), its metrics, its lines.
    Reads from the store: call it outside the event loop, after ``apply_batch`` returned."""
    if result.duplicate:
        return
    new_points = {key: len(columns) for key, columns in batch.metrics.items()}
    if not (batch.update is not None or batch.run is not None or result.points or result.lines):
        return
    run = store.get_run(result.run_id, with_metrics=bool(result.points))
    if batch.update is not None or batch.run is not None:
        _publish_run(bus, run)
    if result.points:
        publish_metrics(bus, run, new_points)
    if result.lines:
        bus.publish_logs(store, run, result.lines)


def publish_safely(fn: Callable[..., None], *args: Any) -> None:
    """Run a publish helper; an error in it never fails the request that changed things."""
    try:
        fn(*args)
    except Exception:
        log.warning("events: could not publish", exc_info=True)


async def get_bus(request: Request) -> EventBus:
    bus: EventBus = request.app.state.events
    return bus


EventBusDep = Annotated[EventBus, Depends(get_bus)]
