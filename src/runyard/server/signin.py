"""Browser sign-in: the session cookie, CSRF for cookie requests, and the failed sign-in limit.

The cookie ``runyard_session`` holds a random token (the store keeps its SHA-256); it is
``HttpOnly; SameSite=Strict; Path=/`` with ``Max-Age`` the session lifetime, re-sent on each
cookie-authenticated JSON answer so it slides with the server-side expiry, and ``Secure``
when the request came over https (``RUNYARD_COOKIE_SECURE``). A cookie-authenticated request
with an unsafe method must also carry ``X-Requested-With: runyard``: a custom header that a
page on another site cannot add without a CORS preflight, which this server never grants.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import Response

from runyard.config import Settings
from runyard.errors import Forbidden, TooManyAttempts

__all__ = [
    "CSRF_HEADER",
    "CSRF_VALUE",
    "SESSION_COOKIE",
    "SignInLimiter",
    "check_csrf",
    "clear_session_cookie",
    "session_lifetime_s",
    "set_session_cookie",
]

SESSION_COOKIE = "runyard_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "runyard"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def session_lifetime_s(settings: Settings) -> float:
    return settings.session_hours * 3600.0


def _secure(request: Request, settings: Settings) -> bool:
    if settings.cookie_secure == "always":
        return True
    if settings.cookie_secure == "never":
        return False
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(1, int(session_lifetime_s(settings))),
        path="/",
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, request: Request, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request, settings), httponly=True, samesite="strict"
    )


def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated unsafe request without ``X-Requested-With: runyard``."""
    if request.method in UNSAFE_METHODS and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
        raise Forbidden(
            f"requests signed in with the session cookie must send the header {CSRF_HEADER}: {CSRF_VALUE} "
            "(API clients: send the API key instead)",
            field=CSRF_HEADER,
        )


class SignInLimiter:
    """At most ``max_failures`` failed sign-ins per key (``user:NAME``, ``ip:ADDR``) in a
    sliding ``window_s``; in memory, per server process."""

    def __init__(self, max_failures: int = 10, window_s: float = 60.0, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, keys: Sequence[str]) -> None:
        """``TooManyAttempts`` when any key is over the limit, saying when to try again."""
        at = time.monotonic()
        with self._lock:
            waits = [self._wait(key, at) for key in keys]
        wait = max(waits, default=0.0)
        if wait > 0:
            raise TooManyAttempts(
                f"too many failed sign-ins for this user or address ({self.max_failures} per "
                f"{self.window_s:g} s): try again in {math.ceil(wait)} s"
            )

    def failed(self, keys: Sequence[str]) -> None:
        at = time.monotonic()
        with self._lock:
            if len(self._failures) >= self.max_keys:
                self._prune(at)
            for key in keys:
                self._failures.setdefault(key, deque()).append(at)

    def _wait(self, key: str, at: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= at - self.window_s:
            times.popleft()
        if len(times) < self.max_failures:
            return 0.0
        return times[-self.max_failures] + self.window_s - at

    def _prune(self, at: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] <= at - self.window_s]:
            del self._failures[key]
        if len(self._failures) >= self.max_keys:  # a flood of distinct names: forget them all
            self._failures.clear()
