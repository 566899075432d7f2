"""Request body limits as plain ASGI middleware: 413 before the body is read, naming the limit.

A declared ``Content-Length`` over the limit is refused at once; a chunked body is counted as
it streams and refused as soon as it passes the limit, so no handler ever sees it.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runyard.errors import PayloadTooLarge
from runyard.server.errors import error_response

__all__ = ["BodyLimitMiddleware"]


DRAIN_FACTOR = 4


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB"


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int, upload_marker: str
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_marker = upload_marker

    def _limit_for(self, scope: Scope) -> tuple[int, str]:
        if self.upload_marker in scope.get("path", ""):
            return self.max_upload_bytes, "RUNYARD_MAX_ARTIFACT_MB"
        return self.max_body_bytes, "RUNYARD_MAX_BODY_MB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit_for(scope)
        error = PayloadTooLarge(
            f"request body is larger than the limit of {_mib(limit)} ({limit} bytes); "
            f"send smaller batches or raise {setting} on the server",
            field="body",
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(error, declared, limit, scope, receive, send)
                    return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise error
            return message

        await self.app(scope, limited_receive, send)

    @staticmethod
    async def _refuse(
        error: PayloadTooLarge, declared: int, limit: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer 413. A client that sends the whole body before reading the answer (most do)
        would see a reset instead of the 413 if we closed first, so a body up to DRAIN_FACTOR
        times the limit is read and dropped; a bigger one gets the answer and a closed socket."""
        if declared <= DRAIN_FACTOR * limit:
            more = True
            while more:
                message = await receive()
                more = message["type"] == "http.request" and bool(message.get("more_body"))
            await error_response(error)(scope, receive, send)
        else:
            await error_response(error, headers={"Connection": "close"})(scope, receive, send)
