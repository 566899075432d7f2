"""Commands for the server host: ``server``, ``db``, ``user``, ``apikey``.

They open the database directly (``--database-url`` / RUNYARD_DATABASE_URL / the data dir),
so they need ``runyard[server]``; imports happen inside the commands to keep the CLI light.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runyard.cli.table import render_table
from runyard.config import Settings, read_config_file, write_config_file
from runyard.errors import InvalidInput, Unauthorized

if TYPE_CHECKING:
    from types import FrameType

    from runyard.store.base import Store

__all__ = ["add_admin_commands"]

ADMIN_KEY_FILE = "admin.key"


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        database_url=getattr(args, "database_url", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
    )


def _open(settings: Settings, *, check: bool = True) -> Store:
    try:
        from runyard.server.app import check_schema
        from runyard.store import open_store
    except ImportError as exc:
        raise InvalidInput(
            f"this command needs the server extra ({exc.name} is missing): pip install 'runyard[server]'"
        ) from None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings.database_url)
    if check:
        check_schema(store)
    return store


def _bootstrap_key(store: Store, settings: Settings) -> str | None:
    """First start: create an admin user and key. Later starts: reuse the saved key."""
    key_file = settings.data_dir / ADMIN_KEY_FILE
    if store.list_users():
        if key_file.exists():
            secret = key_file.read_text().strip()
            try:
                store.authenticate(secret)
            except Unauthorized:
                return None
            return secret
        return None
    user = store.create_user(getpass.getuser() or "admin", is_admin=True)
    _, secret = store.create_api_key(user.id, "created by runyard server on first start")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret


def cmd_server(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _open(settings)
    secret = _bootstrap_key(store, settings)
    import uvicorn

    from runyard.server.app import create_app

    app = create_app(settings, store)

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            app.state.events.close()  # uvicorn waits for open responses: end the live streams
            super().handle_exit(sig, frame)

    shown_host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{shown_host}:{settings.port}"
    if secret and not args.no_config:
        existing = read_config_file()
        if existing.get("url") in (None, url) or existing.get("api_key") in (None, secret):
            path = write_config_file({"url": url, "api_key": secret})
            print(f"runyard: saved url and API key to {path}", file=sys.stderr)
    print(f"runyard: serving {settings.database_url.split('://')[0]} data at {url}", file=sys.stderr)
    if secret:
        print(f"runyard: API key: {secret}", file=sys.stderr)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=args.access_log
    )
    Server(config).run()
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    store = _open(_settings(args), check=False)
    before = store.schema_state()
    store.upgrade()
    after = store.schema_state()
    print(f"database schema: {before.current or 'empty'} -> {after.current}")
    return 0


def cmd_db_status(args: argparse.Namespace) -> int:
    state = _open(_settings(args), check=False).schema_state()
    verdict = "up to date" if state.up_to_date else "needs `runyard db upgrade`"
    print(f"database schema: {state.current or 'empty'} (this Runyard needs {state.head}): {verdict}")
    return 0 if state.up_to_date else 1


def cmd_user_create(args: argparse.Namespace) -> int:
    store = _open(_settings(args))
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    user = store.create_user(args.username, password=password, is_admin=args.admin)
    print(f"created user {user.username} ({user.id}){' as admin' if user.is_admin else ''}")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    users = _open(_settings(args)).list_users()
    print(render_table(["id", "username", "admin"], [[u.id, u.username, u.is_admin] for u in users]))
    return 0


def cmd_apikey_create(args: argparse.Namespace) -> int:
    store = _open(_settings(args))
    user = store.get_user_by_name(args.user or getpass.getuser())
    key, secret = store.create_api_key(user.id, args.name or "")
    print(f"created key {key.id} for {user.username}; the key is shown once:", file=sys.stderr)
    print(secret)
    return 0


def cmd_apikey_list(args: argparse.Namespace) -> int:
    store = _open(_settings(args))
    user_id = store.get_user_by_name(args.user).id if args.user else None
    names = {u.id: u.username for u in store.list_users()}
    rows = [
        [
            k.id,
            names.get(k.user_id, k.user_id),
            k.name,
            k.prefix + "…",
            "revoked" if k.revoked_at else "active",
        ]
        for k in store.list_api_keys(user_id)
    ]
    print(render_table(["id", "user", "name", "key", "state"], rows))
    return 0


def cmd_apikey_revoke(args: argparse.Namespace) -> int:
    key = _open(_settings(args)).revoke_api_key(args.key_id)
    print(f"revoked key {key.id} ({key.prefix}…); servers stop accepting it within 5 s")
    return 0


def _db_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, help="data directory (default: RUNYARD_DATA_DIR or ~/.local/share/runyard)"
    )
    p.add_argument(
        "--database-url", help="SQLAlchemy URL (default: RUNYARD_DATABASE_URL or SQLite in the data dir)"
    )


def add_admin_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "server",
        help="run the Runyard server",
        description=(
            "Run the API server. On first start with an empty user table it creates an admin user and an "
            "API key, prints the key, and saves url and key to the client config file."
        ),
    )
    _db_flags(p)
    p.add_argument("--host", help="listen address (default: RUNYARD_HOST or 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default: RUNYARD_PORT or 8765)")
    p.add_argument("--no-config", action="store_true", help="do not write the client config file")
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.set_defaults(func=cmd_server)

    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_cmd", required=True)
    p = db.add_parser("upgrade", help="create or migrate the schema to this version (back up first)")
    _db_flags(p)
    p.set_defaults(func=cmd_db_upgrade)
    p = db.add_parser("status", help="show the schema revision; exit 1 when an upgrade is needed")
    _db_flags(p)
    p.set_defaults(func=cmd_db_status)

    user = sub.add_parser("user", help="manage users (on the server host)").add_subparsers(
        dest="user_cmd", required=True
    )
    p = user.add_parser("create", help="create a user")
    p.add_argument("username")
    p.add_argument("--admin", action="store_true", help="make the user an admin")
    p.add_argument(
        "--password-stdin", action="store_true", help="read a password for browser sign-in from stdin"
    )
    _db_flags(p)
    p.set_defaults(func=cmd_user_create)
    p = user.add_parser("list", help="list users")
    _db_flags(p)
    p.set_defaults(func=cmd_user_list)

    key = sub.add_parser("apikey", help="manage API keys (on the server host)").add_subparsers(
        dest="key_cmd", required=True
    )
    p = key.add_parser("create", help="create an API key and print it (once)")
    p.add_argument("--user", help="owner (default: the current login name)")
    p.add_argument("--name", help="a label for the key")
    _db_flags(p)
    p.set_defaults(func=cmd_apikey_create)
    p = key.add_parser("list", help="list API keys (never the secrets)")
    p.add_argument("--user", help="only this user's keys")
    _db_flags(p)
    p.set_defaults(func=cmd_apikey_list)
    p = key.add_parser("revoke", help="revoke an API key by id")
    p.add_argument("key_id")
    _db_flags(p)
    p.set_defaults(func=cmd_apikey_revoke)
