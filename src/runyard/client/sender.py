"""The sender: turns logged points into protocol batches and gets each one to the server or
into the journal, in order, with bounded memory.

Two daemon threads, so the network can never stall the training thread nor the buffer:

    training thread ──append──▶ queue ──▶ collector ──▶ outbox (≤ 3 batches) ──▶ network ──▶ server
                                              │                                    │
                                              └────▶ journal (fsync) ◀─────────────┘
                                                         └── replayed by the network thread

* The **collector** drains the queue every ``flush_interval_s`` (sooner when a batch worth
  of points is waiting), validates and encodes columnar batches of at most ``batch_max``
  points, numbers them (``seq``), and places each one: into the outbox when the path to the
  server is clear, else appended (fsynced) to the journal. It never touches the network.
* The **network thread** sends the outbox head, or, while a journal backlog exists, the
  oldest unconfirmed journal record. A network error/5xx moves the outbox into the journal
  and starts an exponential back-off; while a backlog exists every new batch goes to the
  journal too, so batches reach the server in ``seq`` order. When the backlog is confirmed,
  the journal is deleted and batches flow through the outbox again.
* **Bounded memory**: the queue holds at most ``queue_limit`` points (beyond it ``log`` waits
  for the collector: local CPU and disk only, never the network), the outbox at most
  ``outbox_cap``; when the outbox is full the collector spills it, in order, to the journal.
* **Console lines** (``runyard.client.console``) wait in their own bounded buffer, which drops
  rather than waits; the collector adds them to its batches (``logs``). In the outbox a line
  weighs one point per ``_LOG_CHARS_PER_POINT`` characters, so lines share the points' bound.

Invariant: whenever the journal has unconfirmed records the outbox is empty, so journal
records are always older than outbox batches.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runyard.client import delivery
from runyard.client.columns import ColumnBuilder
from runyard.client.encode import Warner, describe_artifact, jsonable
from runyard.client.journal import JournalWriter, journal_name, read_record_at
from runyard.client.transport import Transport

if TYPE_CHECKING:
    from runyard.client.console import ConsoleBuffer

__all__ = ["Sender"]

OK, DOWN, AUTH, OFFLINE = "ok", "down", "auth", "offline"
_LOG_BATCH_LINES = 5000  # console lines per batch, at most
_LOG_BATCH_CHARS = 1 << 20  # and about this many characters of them
_LOG_CHARS_PER_POINT = 32  # a console line's memory weight in the outbox, in points


class _Batch:
    __slots__ = ("body", "jstart", "points", "seq", "weight")

    def __init__(self, seq: int, body: bytes, points: int, weight: int | None = None) -> None:
        self.seq = seq
        self.body = body
        self.points = points
        self.weight = points if weight is None else weight  # what it counts for in the outbox bound
        self.jstart = -1  # journal offset once spilled there


class Sender:
    """Owns the queue that ``Run.log`` appends to, and the two threads that empty it."""

    def __init__(
        self,
        *,
        run_id: str,
        writer: str,
        online: bool,
        spool_dir: Path,
        transport: Transport | None,
        headers: dict[str, str],
        max_points: int,
        flush_interval_s: float,
        retry_min_s: float,
        retry_max_s: float,
        http_timeout_s: float,
        finish_timeout_s: float,
        warner: Warner,
    ) -> None:
        self.run_id = run_id
        self.writer = writer
        self.online = online and transport is not None
        self.journal_path = spool_dir / journal_name(run_id, writer)
        self.rejected_path = Path(f"{self.journal_path}.rejected")
        self._transport = transport
        self._headers = headers
        self._warner = warner
        self.flush_interval_s = flush_interval_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.http_timeout_s = http_timeout_s
        self.finish_timeout_s = finish_timeout_s
        # memory budget: queue + one batch being built + outbox <= max_points
        self.batch_max = min(100_000, max(10, max_points // 10))
        self.outbox_cap = 3 * self.batch_max
        self.queue_limit = max(self.batch_max, max_points - 4 * self.batch_max)
        self.soft_limit = self.batch_max  # wake the collector early past this
        # training thread → collector
        self.queue: deque[tuple[Any, ...]] = deque()
        self.produced = 0  # points appended; written by the training thread only
        self.consumed = 0  # points taken off the queue; written by the collector only
        self.peak_buffered = 0  # high-water mark of points held in memory (diagnostics)
        self.console: ConsoleBuffer | None = None  # captured lines, when the run captures them
        self._wake = threading.Event()
        self._space = threading.Event()
        # shared state, guarded by _lock
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._seq = 0
        self._outbox: deque[_Batch] = deque()
        self._outbox_points = 0
        self._journal: JournalWriter | None = None
        self._read_fd = -1
        self._jrecords: deque[tuple[int, int, int]] = deque()  # unconfirmed (start, end, points)
        self._state = OK if self.online else OFFLINE
        self._retry_at = 0.0
        self._backoff = retry_min_s
        self._closing = False  # collector: final drain
        self._final = False  # network thread: finishing, bounded by _deadline
        self._deadline = 0.0
        self._quick = False  # finish found the server down: one quick attempt only
        self._quick_used = False
        self._abandoned = False
        self._last_contact = -1e18  # monotonic time of the last HTTP answer of any kind
        self.points_sent = 0
        self.points_journaled = 0  # unconfirmed points in the journal
        self.points_rejected = 0
        self.points_lost = 0
        self.batches_sent = 0
        self.last_error = ""
        self._collector = threading.Thread(target=self._collect_loop, name="runyard-collector", daemon=True)
        self._network = (
            threading.Thread(target=self._send_loop, name="runyard-network", daemon=True)
            if self.online
            else None
        )

    # -- lifecycle ------------------------------------------------------------------------
    def send_first(self, batch: dict[str, Any], timeout: float) -> delivery.Outcome | None:
        """Send seq 1 (the ``run`` section) synchronously; on a network failure journal it.

        Returns the outcome (None offline). AUTH/REJECTED outcomes are left to the caller,
        which raises them: nothing has been logged yet, so nothing is journaled.
        """
        body = self._encode_dict(batch)
        if not self.online or self._transport is None:
            with self._lock:
                self._journal_locked(body)  # an offline run without a journal loses everything
            return None
        out = delivery.deliver(self._transport, self._headers, self.run_id, body.body, timeout=timeout)
        with self._lock:
            if out.status:
                self._last_contact = time.monotonic()
            if out.kind == delivery.OK:
                self.batches_sent += 1
            elif out.kind == delivery.RETRY:
                if not self._journal_locked(body):
                    self._outbox.append(body)
                self._mark_down_locked(out.message)
        return out

    def start(self) -> None:
        self._collector.start()
        if self._network is not None:
            self._network.start()

    def close(self) -> None:
        """Drain everything; send what the server takes in bounded time; journal the rest."""
        self._closing = True
        self._wake.set()
        self._collector.join(timeout=max(120.0, self.finish_timeout_s))
        if self._network is not None and self._network.is_alive():
            with self._cond:
                now = time.monotonic()
                self._final = True
                self._deadline = now + self.finish_timeout_s
                # Retry until the deadline if the server answered recently (even with a 5xx);
                # one quick attempt if it has been unreachable for longer than that.
                self._quick = self._state == DOWN and now - self._last_contact > self.finish_timeout_s
                self._cond.notify_all()
            self._network.join(timeout=self.finish_timeout_s + self.http_timeout_s + 5.0)
        with self._cond:
            self._abandoned = True
            self._spill_outbox_locked()
            # only when the journal cannot be written
            self.points_lost += sum(b.points for b in self._outbox)
            self._outbox.clear()
            self._outbox_points = 0
            if self._journal is not None:
                if self.online and not self._jrecords:
                    self._journal.delete()  # everything in it was confirmed
                else:
                    self._journal.close()
            if self._read_fd >= 0:
                os.close(self._read_fd)
                self._read_fd = -1
        if self._transport is not None:
            self._transport.close()

    @property
    def journal_exists(self) -> bool:
        return self.journal_path.exists()

    @property
    def state(self) -> str:
        return self._state

    # -- training-thread side -------------------------------------------------------------
    def pressure(self) -> None:
        """Called by ``log`` past the soft limit: wake the collector; past the hard limit,
        wait for it (bounded by local CPU and disk, never by the network)."""
        self._wake.set()
        if self.produced - self.consumed < self.queue_limit:
            return
        while self.produced - self.consumed >= self.queue_limit:
            if not self._collector.is_alive():  # after fork(), or a dead collector: never hang
                self._drop_oldest()
                return
            self._space.clear()
            self._wake.set()
            self._space.wait(0.05)

    def _drop_oldest(self) -> None:
        dropped = 0
        while self.queue and self.produced - self.consumed - dropped >= self.queue_limit:
            item = self.queue.popleft()
            dropped += len(item[2]) if len(item) == 3 else 1
        self.consumed += dropped
        self.points_lost += dropped
        self._warner.warn(
            f"the sender thread of run {self.run_id} is not running (forked process?); "
            "dropping points beyond the buffer limit",
            "dropping",
        )

    # -- collector ------------------------------------------------------------------------
    def _collect_loop(self) -> None:
        while True:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            closing = self._closing
            try:
                self._drain()
            except Exception:
                self._warner.warn(
                    "internal error in the runyard collector thread (please report):\n"
                    + traceback.format_exc(),
                    "collector-crash",
                )
            self._space.set()
            if closing:
                return

    def _drain(self) -> None:
        q = self.queue
        console = self.console
        while q or console:
            buffered = self.produced - self.consumed + self._outbox_points
            if buffered > self.peak_buffered:
                self.peak_buffered = buffered
            cols = ColumnBuilder(self._warner.warn)
            update: dict[str, Any] = {}
            artifacts: list[dict[str, Any]] = []
            group: list[tuple[Any, float, dict[str, Any]]] = []
            group_keys: Any = None
            npts = taken = 0
            while q and npts < self.batch_max:
                item = q.popleft()
                if len(item) != 3:
                    taken += 1
                    if group:
                        cols.add_group(group)
                        group = []
                    self._control(item[0], item[1], update, artifacts)
                    continue
                metrics = item[2]
                taken += len(metrics)
                npts += len(metrics)
                if group and metrics.keys() != group_keys:
                    cols.add_group(group)
                    group = []
                if not group:
                    group_keys = metrics.keys()
                group.append(item)
            if group:
                cols.add_group(group)
            self.consumed += taken
            lines = console.take(_LOG_BATCH_LINES, _LOG_BATCH_CHARS) if console else []
            if cols or update or artifacts or lines:
                self._place(self._encode_batch(cols, update, artifacts, lines))
            self._space.set()

    def _control(self, kind: str, payload: Any, update: dict[str, Any], artifacts: list[Any]) -> None:
        if kind in ("config", "summary"):
            update.setdefault(kind, {}).update(jsonable(payload))
        elif kind == "tags_add":
            tags = update.setdefault("tags_add", [])
            for tag in payload:
                tag = str(tag).strip()
                if tag and tag not in tags:
                    tags.append(tag)
        elif kind == "update":
            update.update(payload)
        elif kind == "artifact":
            artifacts.append(describe_artifact(payload, self._warner))

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _encode_dict(self, body: dict[str, Any]) -> _Batch:
        seq = self._next_seq()
        data = json.dumps({"writer": self.writer, "seq": seq, **body}, separators=(",", ":"), allow_nan=False)
        return _Batch(seq, data.encode(), 0)

    def _encode_batch(
        self,
        cols: ColumnBuilder,
        update: dict[str, Any],
        artifacts: list[dict[str, Any]],
        lines: list[tuple[float, str, str]] | None = None,
    ) -> _Batch:
        seq = self._next_seq()
        parts = [json.dumps({"writer": self.writer, "seq": seq}, separators=(",", ":"))[:-1]]
        if cols:
            parts.append(',"metrics":' + cols.to_json())
        if update:
            parts.append(',"update":' + json.dumps(update, separators=(",", ":"), allow_nan=False))
        if artifacts:
            parts.append(',"artifacts":' + json.dumps(artifacts, separators=(",", ":"), allow_nan=False))
        weight = cols.points
        if lines and self.console is not None:
            logs, chars = self.console.to_json(lines)
            parts.append(',"logs":' + logs)
            weight += len(lines) + chars // _LOG_CHARS_PER_POINT
        parts.append("}")
        return _Batch(seq, "".join(parts).encode(), cols.points, weight)

    def _place(self, batch: _Batch) -> None:
        with self._cond:
            if self._state != OK or self._jrecords:
                journal = True  # offline, server down, bad key, or a backlog to send first
            elif self._outbox and self._outbox_points + batch.weight > self.outbox_cap:
                self._spill_outbox_locked()  # the server cannot keep up: spill, keep order
                journal = True
            else:
                journal = False
            if not journal or not self._journal_locked(batch):
                self._keep_in_memory_locked(batch)
            self._cond.notify_all()

    def _keep_in_memory_locked(self, batch: _Batch) -> None:
        """The outbox, if the bound allows (the normal path, or a journal that cannot be
        written); else the batch is lost, loudly."""
        room = not self._outbox or self._outbox_points + batch.weight <= self.outbox_cap
        if self._state != OFFLINE and room:
            self._outbox.append(batch)
            self._outbox_points += batch.weight
        else:
            self.points_lost += batch.points

    # -- journal (all under _lock) --------------------------------------------------------
    def _journal_locked(self, batch: _Batch) -> bool:
        """Append durably; False when the journal cannot be written (the caller decides)."""
        try:
            if self._journal is None:
                self._journal = JournalWriter(self.journal_path)
                if self.online:
                    self._read_fd = os.open(self.journal_path, os.O_RDONLY)
            start, end = self._journal.append(batch.body)
        except OSError as exc:
            self.last_error = f"cannot write the journal {self.journal_path}: {exc}"
            self._warner.warn(
                f"{self.last_error}; batches stay in memory while there is room, then are lost "
                "— set RUNYARD_SPOOL_DIR to a writable directory",
                "journal-broken",
            )
            return False
        batch.jstart = start
        self.points_journaled += batch.points
        if self.online:
            self._jrecords.append((start, end, batch.points))
        return True

    def _spill_outbox_locked(self) -> None:
        """Move the outbox, oldest first, to the journal (as far as the journal takes it)."""
        while self._outbox and self._journal_locked(self._outbox[0]):
            self._outbox_points -= self._outbox.popleft().weight

    def _confirm_record_locked(self) -> int:
        _, _, points = self._jrecords.popleft()
        self.points_journaled -= points
        if not self._jrecords and self._journal is not None:
            self._journal.delete()  # every record in it is confirmed
            self._journal = None
            if self._read_fd >= 0:
                os.close(self._read_fd)
                self._read_fd = -1
        return points

    # -- network thread -------------------------------------------------------------------
    def _next_job_locked(self) -> tuple[str, Any, float] | None:
        """The next thing to send, waiting as needed; None when the thread should stop."""
        while True:
            now = time.monotonic()
            has_work = bool(self._jrecords or self._outbox)
            if self._final and (not has_work or self._state == AUTH or now >= self._deadline):
                return None
            if self._state == AUTH or not has_work:
                self._cond.wait(None if not self._final else max(0.0, self._deadline - now))
                continue
            timeout = self.http_timeout_s
            if self._state == DOWN:
                if self._final and self._quick:
                    if self._quick_used:
                        return None
                    self._quick_used = True
                    timeout = min(timeout, 5.0)
                elif now < self._retry_at:
                    if self._final and self._retry_at >= self._deadline:
                        return None
                    self._cond.wait(self._retry_at - now)
                    continue
            if self._final:
                timeout = max(1.0, min(timeout, self._deadline - now))
            if self._jrecords:
                return "journal", self._jrecords[0], timeout
            return "outbox", self._outbox[0], timeout

    def _send_loop(self) -> None:
        assert self._transport is not None
        if self._state == OK:
            from runyard.client.sync import upload_earlier_attempts

            def stop() -> bool:
                return self._abandoned or (self._final and time.monotonic() >= self._deadline)

            try:
                upload_earlier_attempts(
                    self.journal_path, self.run_id, self._transport, self._headers, self._warner, stop
                )
            except Exception:
                self._warner.warn(
                    "could not upload earlier journals of this run:\n" + traceback.format_exc(),
                    "earlier-journals",
                )
        while True:
            with self._cond:
                job = self._next_job_locked()
            if job is None:
                return
            kind, item, timeout = job
            try:
                if kind == "journal":
                    start, end, _ = item
                    payload = read_record_at(self._read_fd, start, end)
                    if payload is None:
                        with self._cond:
                            self._warner.warn(f"journal {self.journal_path}: record at {start} is damaged")
                            if self._jrecords and self._jrecords[0] is item:
                                self.points_lost += self._confirm_record_locked()
                        continue
                else:
                    payload = item.body
                out = delivery.deliver(
                    self._transport,
                    self._headers,
                    self.run_id,
                    payload,
                    timeout=timeout,
                    rejected_path=self.rejected_path,
                )
                with self._cond:
                    if not self._abandoned:
                        self._settle_locked(kind, item, out)
            except Exception:
                self._warner.warn(
                    "internal error in the runyard network thread (please report):\n"
                    + traceback.format_exc(),
                    "network-crash",
                )
                with self._cond:
                    self._mark_down_locked("internal error")

    def _settle_locked(self, kind: str, item: Any, out: delivery.Outcome) -> None:
        if out.status:
            self._last_contact = time.monotonic()
        ours = kind == "outbox" and bool(self._outbox) and self._outbox[0] is item
        if out.kind in (delivery.OK, delivery.REJECTED):
            if kind == "journal":
                points = self._confirm_record_locked() if self._jrecords and self._jrecords[0] is item else 0
            elif ours:
                self._outbox.popleft()
                self._outbox_points -= item.weight
                points = item.points
            elif self._jrecords and self._jrecords[0][0] == item.jstart:
                points = self._confirm_record_locked()  # spilled to the journal while in flight
            else:
                points = 0
            if out.kind == delivery.OK:
                self.points_sent += points
                self.batches_sent += 1
                self._mark_up_locked()
            else:
                self.points_rejected += points
                self._warner.warn(
                    f"the server rejected a batch of run {self.run_id} (HTTP {out.status}: {out.message}); "
                    f"it is kept in {self.rejected_path}",
                    f"rejected:{out.status}:{out.message}",
                )
            self._cond.notify_all()
            return
        if ours:  # not sent: the outbox goes to the journal, in order, before anything newer
            self._spill_outbox_locked()
        if out.kind == delivery.AUTH:
            self._state = AUTH
            self.last_error = out.message
            self._warner.warn(
                f"the server refused the API key (HTTP {out.status}: {out.message}). Run {self.run_id} "
                f"keeps logging to the journal {self.journal_path}; upload it with a valid key: "
                f"runyard sync {self.journal_path}",
                "auth",
            )
        else:
            self._mark_down_locked(out.message)

    def _mark_down_locked(self, message: str) -> None:
        if self._state == OK:
            self._warner.warn(
                f"{message}. Saving batches to {self.journal_path} and retrying in the background.",
                "down",
            )
        if self._state != AUTH:
            self._state = DOWN
        self.last_error = message
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.retry_max_s)

    def _mark_up_locked(self) -> None:
        if self._state == DOWN and self._final and self._quick:
            self._quick = False  # the server is back: retry normally until the deadline
            self._deadline = time.monotonic() + self.finish_timeout_s
        if self._state == DOWN:
            self._state = OK
        self._backoff = self.retry_min_s
