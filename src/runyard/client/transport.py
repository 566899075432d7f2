"""The one network seam of the client: ``request(method, path, body, headers) -> (status, body)``.

``HttpTransport`` speaks HTTP/1.1 over ``http.client`` with one kept-alive connection,
TCP_NODELAY, a timeout per request, and one reconnect when a reused connection turns out to
have been closed by the server. Every network failure (refused, reset, timeout, DNS, TLS)
becomes ``ServerUnreachable``; HTTP error statuses are *not* exceptions here — callers decide.
Tests substitute any object with the same two methods (see ``tests/fakes/server.py``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from runyard.errors import InvalidInput, ServerUnreachable

if TYPE_CHECKING:
    import http.client

__all__ = ["HttpTransport", "Transport"]


class Transport(Protocol):
    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; the path starts with ``/``. Raises ``ServerUnreachable``."""
        ...

    def close(self) -> None: ...


class HttpTransport:
    """HTTP(S) to one base URL (``http://host:port[/prefix]``), safe to share between threads."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"server URL must look like http://host:port, got {base_url!r} "
                "(set RUNYARD_URL or pass url=...)",
                field="url",
            )
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        import http.client
        import socket

        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=timeout)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        conn.connect()
        if conn.sock is not None:  # small requests must not wait for Nagle + delayed ACKs
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
            self._conn = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        import http.client

        t = self._timeout if timeout is None else timeout
        hdrs = {"User-Agent": "runyard-client", **(headers or {})}
        with self._lock:
            for attempt in (0, 1):
                reused = self._conn is not None
                try:
                    if self._conn is None:
                        self._conn = self._connect(t)
                    elif self._conn.sock is not None:
                        self._conn.sock.settimeout(t)
                    conn = self._conn
                    try:
                        conn.request(method, self._prefix + path, body=body, headers=hdrs)
                    except (BrokenPipeError, ConnectionResetError):
                        # The server may have answered (413) and closed before reading the
                        # body; try to read that answer before calling it a network error.
                        if not reused or attempt == 1:
                            resp = conn.getresponse()
                        else:
                            raise
                    else:
                        resp = conn.getresponse()
                    data = resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    self._drop()
                    if reused and attempt == 0:
                        continue  # a kept-alive connection the server had closed: reconnect once
                    raise ServerUnreachable(self._why(exc)) from exc
                except (OSError, http.client.HTTPException) as exc:  # timeouts, refused, DNS, TLS
                    self._drop()
                    raise ServerUnreachable(self._why(exc)) from exc
                if resp.will_close:
                    self._drop()
                return resp.status, data
        raise AssertionError("unreachable")  # pragma: no cover

    def _why(self, exc: BaseException) -> str:
        what = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        return (
            f"cannot reach the Runyard server at {self.base_url} ({what}); "
            "check that it runs and that RUNYARD_URL is right"
        )

    def close(self) -> None:
        with self._lock:
            self._drop()
