"""Signed Slurm epilog calls: a shared secret, an HMAC-SHA256 over the timestamp and the body.

The epilog script (``runyard slurm epilog-script``) sends::

    X-Runyard-Timestamp: 1795341600
    X-Runyard-Signature: sha256=<hex of HMAC-SHA256(secret, b"1795341600." + body)>

The server recomputes it with ``hmac.compare_digest`` and refuses a call that is unsigned,
signed with another secret, altered after signing, or older than ``MAX_SKEW_S`` (a replay).
The secret is ``RUNYARD_WEBHOOK_SECRET`` or, by default, generated once into
``<data dir>/webhook.secret`` (mode 0600), where the epilog script reads it from.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from runyard.config import Settings
from runyard.errors import Unauthorized

__all__ = [
    "MAX_SKEW_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "secret_path",
    "sign",
    "verify",
    "webhook_secret",
]

SIGNATURE_HEADER = "X-Runyard-Signature"
TIMESTAMP_HEADER = "X-Runyard-Timestamp"
MAX_SKEW_S = 300


def secret_path(settings: Settings) -> Path:
    return settings.data_dir / "webhook.secret"


def webhook_secret(settings: Settings) -> str:
    """The configured secret, else the one in the data dir (created on first use, 0600)."""
    if settings.webhook_secret:
        return settings.webhook_secret
    path = secret_path(settings)
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> None:
    """Return when the call is signed with ``secret``; raise ``Unauthorized`` saying why not."""
    if not timestamp or not signature:
        raise Unauthorized(f"unsigned webhook call: send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be POSIX seconds") from None
    if abs(now - sent_at) > MAX_SKEW_S:
        raise Unauthorized(f"webhook call is more than {MAX_SKEW_S} s old or in the future (a replay?)")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise Unauthorized("webhook signature does not match (wrong secret, or the body was altered)")
