"""Browser sign-in: ``POST /api/v1/session`` sets the session cookie, ``GET`` says who is
signed in, ``DELETE`` signs out. See ``server/signin.py`` for the cookie and CSRF rules."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request, status
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from runyard.entities import User
from runyard.errors import InvalidInput, Unauthorized
from runyard.server.deps import CurrentUser, SettingsDep, StoreDep, session_cache_key
from runyard.server.jsonio import JsonResponse
from runyard.server.schemas import SessionCreate, UserRead
from runyard.server.signin import (
    SESSION_COOKIE,
    SignInLimiter,
    check_csrf,
    clear_session_cookie,
    session_lifetime_s,
    set_session_cookie,
)

router = APIRouter(tags=["session"])

_NO_CREDENTIALS = (
    'send {"api_key": "..."} or {"username": "...", "password": "..."} to sign in '
    "(or the X-API-Key header for API calls)"
)


def _user(u: User) -> UserRead:
    return UserRead(**dataclasses.asdict(u))


@router.post(
    "/api/v1/session",
    response_model=UserRead,
    summary="Sign in with an API key or username and password; sets the HttpOnly session cookie",
    responses={401: {"description": "Wrong credentials"}, 429: {"description": "Too many failed sign-ins"}},
)
async def sign_in(body: SessionCreate, request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    if body.api_key is not None and (body.username is not None or body.password is not None):
        raise InvalidInput("send either api_key or username and password, not both", field="api_key")
    if body.api_key is None and body.username is None and body.password is None:
        raise Unauthorized(_NO_CREDENTIALS)
    limiter: SignInLimiter = request.app.state.sign_in_limiter
    keys = [f"ip:{request.client.host if request.client else '?'}"]
    if body.username is not None:
        keys.append(f"user:{body.username.lower()}")
    limiter.check(keys)
    key_id: str | None = None
    try:
        if body.api_key is not None:
            user, key_id = await run_in_threadpool(store.authenticate_key, body.api_key)
        elif body.username and body.password:
            user = await run_in_threadpool(store.check_password, body.username, body.password)
        else:
            raise InvalidInput(
                "send both username and password", field="password" if body.username else "username"
            )
    except Unauthorized:
        limiter.failed(keys)
        raise
    token, _ = await run_in_threadpool(
        store.create_session, user.id, lifetime_s=session_lifetime_s(settings), key_id=key_id
    )
    response = JsonResponse(_user(user).model_dump(), headers={"Cache-Control": "no-store"})
    set_session_cookie(response, request, settings, token)
    return response


@router.get(
    "/api/v1/session",
    response_model=UserRead,
    summary="Who is signed in (session cookie or API key); refreshes the cookie's Max-Age",
)
def who(user: CurrentUser) -> UserRead:
    return _user(user)


@router.delete(
    "/api/v1/session",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Sign out: deletes the session and clears the cookie (cookie: needs X-Requested-With: runyard)",
)
async def sign_out(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise Unauthorized(f"not signed in: no {SESSION_COOKIE} cookie (API keys are revoked instead)")
    check_csrf(request)  # a stale cookie may still be cleared, but never cross-site
    await run_in_threadpool(store.delete_session, token)
    request.app.state.auth_cache.discard(session_cache_key(token))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_session_cookie(response, request, settings)
    return response
