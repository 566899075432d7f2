"""One handler renders one JSON shape for every error the server returns.

``{"error": {"code", "message", "field"}}`` — see runyard.errors and docs/protocol.md.
Unknown exceptions become a 500 with a generic message; the traceback goes to the log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from runyard.errors import RunyardError, error_for_code
from runyard.server.jsonio import JsonResponse

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("runyard.server")


def error_response(error: RunyardError, headers: dict[str, str] | None = None) -> Response:
    return JsonResponse(error.to_dict(), status_code=error.status, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or str(loc[0]) if loc else "body"


def _validation_error(exc: RequestValidationError) -> RunyardError:
    errors = exc.errors()
    if not errors:
        return error_for_code("invalid_input")("invalid request")
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return error_for_code("invalid_input")(
            f"request body is not valid JSON: {first.get('msg', '')}", field="body"
        )
    field = _field_path(loc)
    message = f"{field}: {first.get('msg', 'invalid value')}"
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return error_for_code("invalid_input")(message, field=field)


_HTTP_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 413: "payload_too_large"}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RunyardError)
    async def _runyard(_: Request, exc: RunyardError) -> Response:
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        return error_response(_validation_error(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "invalid_input" if exc.status_code < 500 else "internal")
        if exc.status_code == 404:
            message = f"no such path: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        body = {"error": {"code": code, "message": message, "field": None}}
        return JsonResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unknown(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        body = {"error": {"code": "internal", "message": "internal server error (logged)", "field": None}}
        return JsonResponse(body, status_code=500)
