"""An in-process stand-in for the Runyard server's batch endpoint, for fast client tests.

``FakeServer`` implements the protocol rules the client relies on (docs/protocol.md): API
key check, batch validation, ``run`` creates a run, a batch for an unknown run without
``run`` is a 404, and each (run, writer, seq) is applied exactly once — a repeat answers
``{"duplicate": true, "points": 0}``. It records every point it applied, so a test can check
that each one arrived exactly once and in order.

Failure knobs (all thread-safe to flip while a client runs):
    down                  every request fails as a network error (ServerUnreachable)
    fail_next, fail_status the next N batch posts fail: with that HTTP status, or 0 = network
    flaky_every           every Nth batch post fails as a network error
    lose_answer_every     every Nth batch post is APPLIED, then the answer is lost
    gate                  an Event: batch posts block until it is set (a stalled server)
    delay_s               each batch post takes this long (a slow server)
    max_body              bodies above this many bytes get 413
    reject                a function(batch) -> (status, message) | None to refuse batches

Use it through the client's transport seam (``server.transport()``) or over real HTTP on an
ephemeral port (``with server.serve_http() as url: ...``) for subprocess tests.
"""

from __future__ import annotations

import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from runyard.errors import ServerUnreachable

WRITER_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_WIRE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


@dataclass
class FakeRun:
    id: str
    section: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    status: str = "running"
    exit_code: int | None = None
    ended_at: float | None = None
    host: str | None = None
    restart_count: int | None = None
    metrics: dict[str, list[tuple[int, float, float]]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    writers: set[str] = field(default_factory=set)
    # console lines as applied: (time, stream, host, rank, line)
    logs: list[tuple[float, str, str | None, int | None, str]] = field(default_factory=list)

    def lines(self, stream: str | None = None) -> list[str]:
        return [entry[4] for entry in self.logs if stream is None or entry[1] == stream]

    def values(self, key: str) -> list[float]:
        return [v for _, _, v in self.metrics.get(key, [])]

    def steps(self, key: str) -> list[int]:
        return [s for s, _, _ in self.metrics.get(key, [])]


class _Invalid(Exception):
    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _err(status: int, code: str, message: str, field: str | None = None) -> tuple[int, bytes]:
    return status, json.dumps({"error": {"code": code, "message": message, "field": field}}).encode()


class FakeServer:
    def __init__(self, api_key: str | None = "good-key") -> None:
        self.lock = threading.RLock()
        self.api_keys: set[str] | None = {api_key} if api_key else None
        self.runs: dict[str, FakeRun] = {}
        self.applied: set[tuple[str, str, int]] = set()
        self.requests: list[tuple[str, str]] = []
        self.batch_posts = 0
        self.duplicates = 0
        self.down = False
        self.fail_next = 0
        self.fail_status = 0
        self.flaky_every = 0
        self.lose_answer_every = 0
        self.gate: threading.Event | None = None
        self.delay_s = 0.0
        self.max_body: int | None = None
        self.reject: Callable[[dict[str, Any]], tuple[int, str] | None] | None = None
        self.connections = 0  # TCP connections accepted by serve_http

    # -- the seam ------------------------------------------------------------------------
    def transport(self) -> FakeTransport:
        return FakeTransport(self)

    def handle(
        self, method: str, path: str, body: bytes | None, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        with self.lock:
            self.requests.append((method, path))
            if self.down:
                raise ServerUnreachable("fake server is down")
        key = headers.get("X-API-Key")
        if method == "GET" and path == "/api/v1/health":
            return 200, b'{"status":"ok"}'
        if self.api_keys is not None and key not in self.api_keys:
            return _err(401, "unauthorized", "unknown or revoked API key")
        m = re.fullmatch(r"/api/v1/runs/([^/?]+)/batches", path)
        if method == "POST" and m:
            return self._batch(m.group(1), body or b"")
        m = re.fullmatch(r"/api/v1/runs/([^/?]+)", path)
        if method == "GET" and m:
            run = self.runs.get(m.group(1))
            if run is None:
                return _err(404, "not_found", f"run {m.group(1)!r} not found")
            return 200, json.dumps({"id": run.id, "status": run.status, "config": run.config}).encode()
        return _err(404, "not_found", f"no route {method} {path}")

    def _batch(self, run_id: str, body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.batch_posts += 1
            n = self.batch_posts
            if self.fail_next > 0:
                self.fail_next -= 1
                if self.fail_status == 0:
                    raise ServerUnreachable("fake network error")
                return _err(self.fail_status, "store_unavailable", "fake failure")
            if self.flaky_every and n % self.flaky_every == 0:
                raise ServerUnreachable("fake flaky network")
        gate = self.gate
        if gate is not None:
            gate.wait()
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.max_body is not None and len(body) > self.max_body:
            return _err(413, "payload_too_large", f"request body is larger than {self.max_body} bytes")
        try:
            batch = json.loads(body)
        except ValueError:
            return _err(400, "invalid_input", "body is not JSON", "body")
        if self.reject is not None:
            refusal = self.reject(batch)
            if refusal is not None:
                codes = {404: "not_found", 409: "already_exists", 413: "payload_too_large"}
                return _err(refusal[0], codes.get(refusal[0], "invalid_input"), refusal[1])
        with self.lock:
            try:
                answer = self._apply(run_id, batch)
            except _Invalid as exc:
                return _err(400, "invalid_input", exc.message, exc.field)
            if answer is None:
                return _err(404, "not_found", f"run {run_id!r} not found; send `run` in the first batch")
            if self.lose_answer_every and n % self.lose_answer_every == 0:
                raise ServerUnreachable("fake: applied, but the answer was lost")
        return 200, json.dumps(answer).encode()

    def _apply(self, run_id: str, batch: Any) -> dict[str, Any] | None:
        if not isinstance(batch, dict):
            raise _Invalid("body must be an object", "body")
        writer, seq = batch.get("writer"), batch.get("seq")
        if not isinstance(writer, str) or not WRITER_RE.match(writer):
            raise _Invalid("writer must be 8-64 characters of A-Z, a-z, 0-9, _ and -", "writer")
        if type(seq) is not int or seq < 1:
            raise _Invalid("seq must be an integer >= 1", "seq")
        columns = self._columns(batch.get("metrics") or {})
        logs = self._logs(batch.get("logs"))
        ident = (run_id, writer, seq)
        if ident in self.applied:
            self.duplicates += 1
            return {"run_id": run_id, "seq": seq, "duplicate": True, "points": 0}
        run = self.runs.get(run_id)
        if run is None:
            if not isinstance(batch.get("run"), dict):
                return None
            run = self.runs[run_id] = FakeRun(run_id, batch["run"])
            run.config.update(batch["run"].get("config") or {})
            run.tags.extend(batch["run"].get("tags") or [])
            run.host = batch["run"].get("host")
        run.writers.add(writer)
        points = 0
        for key, rows in columns.items():
            run.metrics.setdefault(key, []).extend(rows)
            points += len(rows)
        update = batch.get("update") or {}
        run.config.update(update.get("config") or {})
        run.summary.update(update.get("summary") or {})
        run.tags.extend(t for t in update.get("tags_add") or [] if t not in run.tags)
        for k in ("status", "exit_code", "ended_at", "host", "restart_count"):
            if k in update:
                setattr(run, k, update[k])
        run.artifacts.extend(batch.get("artifacts") or [])
        run.logs.extend(logs)
        self.applied.add(ident)
        return {"run_id": run_id, "seq": seq, "duplicate": False, "points": points}

    @staticmethod
    def _columns(metrics: Any) -> dict[str, list[tuple[int, float, float]]]:
        if not isinstance(metrics, dict):
            raise _Invalid("metrics must be an object", "metrics")
        out = {}
        for key, cols in metrics.items():
            steps, times, values = cols.get("steps"), cols.get("times"), cols.get("values")
            if not (isinstance(steps, list) and isinstance(times, list) and isinstance(values, list)):
                raise _Invalid("steps, times and values must be arrays", f"metrics.{key}")
            if not len(steps) == len(times) == len(values):
                raise _Invalid("columns must have the same length", f"metrics.{key}")
            rows = []
            for i, (s, t, v) in enumerate(zip(steps, times, values, strict=True)):
                if type(s) is not int or not 0 <= s < 2**53:
                    raise _Invalid(f"step {s!r} is not an integer", f"metrics.{key}.steps[{i}]")
                if isinstance(v, str) and v in _WIRE:
                    v = _WIRE[v]
                elif isinstance(v, bool) or not isinstance(v, int | float):
                    raise _Invalid(f"{v!r} is not a number", f"metrics.{key}.values[{i}]")
                rows.append((s, float(t), float(v)))
            out[key] = rows
        return out

    @staticmethod
    def _logs(logs: Any) -> list[tuple[float, str, str | None, int | None, str]]:
        if logs is None:
            return []
        if not isinstance(logs, dict) or not isinstance(logs.get("lines"), list):
            raise _Invalid("logs must be an object with a lines array", "logs")
        n = len(logs["lines"])
        cols = {name: logs.get(name) or [None] * n for name in ("times", "streams", "hosts", "ranks")}
        if any(len(col) != n for col in cols.values()):
            raise _Invalid("logs columns must have the same length", "logs")
        for i, stream in enumerate(cols["streams"]):
            if stream not in ("stdout", "stderr"):
                raise _Invalid(f"stream {stream!r} is not stdout or stderr", f"logs.streams[{i}]")
        return list(
            zip(cols["times"], cols["streams"], cols["hosts"], cols["ranks"], logs["lines"], strict=True)
        )

    # -- real HTTP ----------------------------------------------------------------------
    @contextmanager
    def serve_http(self) -> Iterator[str]:
        """Serve this fake over HTTP/1.1 (keep-alive) on 127.0.0.1; yields the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with fake.lock:
                    fake.connections += 1

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                try:
                    status, data = fake.handle(self.command, self.path, body, dict(self.headers))
                except ServerUnreachable:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_address[1]}"
        finally:
            httpd.shutdown()
            httpd.server_close()


class FakeTransport:
    """The client's ``Transport`` seam, answered in-process by a ``FakeServer``."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.closed = False

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        return self.server.handle(method, path, body, headers or {})

    def close(self) -> None:
        self.closed = True
