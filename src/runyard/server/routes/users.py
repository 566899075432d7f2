"""Users and API keys. Creating users is for admins; everyone manages their own keys."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request, status

from runyard.entities import ApiKey, User
from runyard.errors import Forbidden
from runyard.server.deps import AdminUser, CurrentUser, StoreDep
from runyard.server.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, UserCreate, UserRead

router = APIRouter(tags=["users"])


def _user(u: User) -> UserRead:
    return UserRead(**dataclasses.asdict(u))


def _key(k: ApiKey) -> ApiKeyRead:
    return ApiKeyRead(**dataclasses.asdict(k))


@router.get("/api/v1/users", response_model=list[UserRead], summary="List users (admin)")
def list_users(store: StoreDep, _: AdminUser) -> list[UserRead]:
    return [_user(u) for u in store.list_users()]


@router.get(
    "/api/v1/usernames",
    response_model=dict[str, str],
    summary="Every user's id and name (for showing who ran what; no other user data)",
)
def usernames(store: StoreDep, _: CurrentUser) -> dict[str, str]:
    return {u.id: u.username for u in store.list_users()}


@router.post(
    "/api/v1/users",
    response_model=UserRead,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (admin)",
)
def create_user(body: UserCreate, store: StoreDep, _: AdminUser) -> UserRead:
    return _user(store.create_user(body.username, password=body.password, is_admin=body.is_admin))


@router.get(
    "/api/v1/apikeys",
    response_model=list[ApiKeyRead],
    summary="List API keys: your own, or everyone's for an admin",
)
def list_keys(store: StoreDep, user: CurrentUser) -> list[ApiKeyRead]:
    return [_key(k) for k in store.list_api_keys(None if user.is_admin else user.id)]


@router.post(
    "/api/v1/apikeys",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key; the secret is in the answer, once",
)
def create_key(body: ApiKeyCreate, store: StoreDep, user: CurrentUser) -> ApiKeyCreated:
    owner = body.user_id or user.id
    if owner != user.id and not user.is_admin:
        raise Forbidden("only admins may create keys for other users")
    key, secret = store.create_api_key(owner, body.name)
    return ApiKeyCreated(**dataclasses.asdict(key), key=secret)


@router.delete("/api/v1/apikeys/{key_id}", response_model=ApiKeyRead, summary="Revoke an API key")
def revoke_key(key_id: str, request: Request, store: StoreDep, user: CurrentUser) -> ApiKeyRead:
    mine = {k.id for k in store.list_api_keys(user.id)}
    if key_id not in mine and not user.is_admin:
        raise Forbidden("you may only revoke your own keys")
    key = store.revoke_api_key(key_id)
    request.app.state.auth_cache.clear()
    return _key(key)
