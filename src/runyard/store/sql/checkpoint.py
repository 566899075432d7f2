"""Background WAL checkpoints for SQLite.

In WAL mode every commit appends to the ``-wal`` file and, by default, the commit that makes
the WAL pass 1000 pages also copies it back into the database file and fsyncs both: that
one request then takes several times longer than the others (measured: ingest batches of
100,000 points at ~19 ms each, but ~35 ms on average with checkpoints inside commits).
The writer therefore turns SQLite's auto-checkpoint off, and this thread runs PASSIVE
checkpoints shortly after writes instead. A passive checkpoint never blocks the writer or
readers; once it has copied everything, the next writer restarts the WAL from its start.
Under a steady stream of writes a passive checkpoint never catches up, though (the writer
appends while it copies), so when the WAL passes ``limit_bytes`` the thread takes the writer
lock for one TRUNCATE checkpoint: one short pause per ``limit_bytes`` written, and a bounded
WAL file.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)


class Checkpointer:
    """A daemon thread that checkpoints ``path``'s WAL at most every ``interval_s`` after
    ``poke()`` (called after each committed write)."""

    def __init__(
        self,
        path: str,
        writer_lock: threading.Lock,
        *,
        interval_s: float = 0.2,
        limit_bytes: int = 64 * 2**20,
    ) -> None:
        self._path = path
        self._writer_lock = writer_lock
        self._interval_s = interval_s
        self.limit_bytes = limit_bytes  # WAL size that triggers a TRUNCATE checkpoint
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.completed = 0  # checkpoints run so far (for tests and diagnostics)
        self._thread = threading.Thread(target=self._loop, name="runyard-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        if self._thread.is_alive():
            self._wake.set()
        else:  # never let the WAL grow without bound, even if the thread died
            self._checkpoint_once()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while not self._stop.is_set():
                self._wake.wait()
                if self._stop.is_set():
                    return
                self._stop.wait(self._interval_s)  # let a burst of commits share one checkpoint
                self._wake.clear()
                if conn is None:
                    conn = sqlite3.connect(self._path, isolation_level=None)
                    conn.execute("PRAGMA busy_timeout=1000")
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if self._wal_size() > self.limit_bytes:
                        with self._writer_lock:
                            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                    self.completed += 1
                except sqlite3.Error as exc:  # e.g. the disk is full: try again after the next write
                    log.warning("SQLite checkpoint of %s failed: %s", self._path, exc)
        finally:
            if conn is not None:
                conn.close()

    def _wal_size(self) -> int:
        try:
            return os.path.getsize(self._path + "-wal")
        except OSError:
            return 0

    def _checkpoint_once(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None)
            try:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            finally:
                conn.close()
            self.completed += 1
        except sqlite3.Error as exc:
            log.warning("SQLite checkpoint of %s failed: %s", self._path, exc)
