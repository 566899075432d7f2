"""Send one encoded batch and say what became of it; shared by the sender thread and ``sync``.

Outcomes:
    OK        2xx: applied now, or a duplicate the server had already applied
    RETRY     network error, timeout, 5xx or 429: nothing is known to be lost; try again later
    AUTH      401/403: the key is wrong or revoked; keep the batch, upload later with a good key
    REJECTED  400/404/409/422 (or a 413 that cannot be split further): the server will never
              take this batch; it is written to ``<journal>.rejected`` with the error, never
              dropped silently

A 413 is answered by splitting the batch's points in two and sending the halves, recursively.
The halves are deterministic and go out as writer ``<writer>-<seq>`` with heap-numbered
seqs (2, 3, then 4..7, ...), so re-sending the same batch later, from a journal, produces
the same (writer, seq) pairs and the server's exactly-once rule still holds.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from runyard.client.api import batch_path, error_from_response
from runyard.client.transport import Transport
from runyard.errors import RunyardError, ServerUnreachable

__all__ = ["AUTH", "OK", "REJECTED", "RETRY", "Outcome", "deliver", "write_rejected"]

OK, RETRY, AUTH, REJECTED = "ok", "retry", "auth", "rejected"
_REJECT_STATUSES = frozenset({400, 404, 405, 409, 410, 413, 415, 422})


class Outcome:
    __slots__ = ("duplicate", "error", "kind", "message", "points", "status")

    def __init__(
        self,
        kind: str,
        *,
        status: int = 0,
        message: str = "",
        points: int = 0,
        duplicate: bool = False,
        error: RunyardError | None = None,
    ) -> None:
        self.kind = kind
        self.status = status
        self.message = message
        self.points = points  # points the server stored (0 for a duplicate)
        self.duplicate = duplicate
        self.error = error  # the server's error, rebuilt (non-2xx answers)

    def __repr__(self) -> str:
        return f"Outcome({self.kind!r}, status={self.status}, points={self.points}, {self.message!r})"


def write_rejected(path: Path, run_id: str, status: int, message: str, body: bytes) -> None:
    """Append one JSON line ``{"run_id","status","error","rejected_at","batch"}``, fsynced."""
    head = json.dumps(
        {"run_id": run_id, "status": status, "error": message, "rejected_at": time.time()},
        separators=(",", ":"),
    )
    line = head[:-1].encode() + b',"batch":' + body + b"}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _post(
    transport: Transport, headers: dict[str, str], run_id: str, body: bytes, timeout: float | None
) -> Outcome:
    try:
        status, data = transport.request("POST", batch_path(run_id), body, headers, timeout)
    except ServerUnreachable as exc:
        return Outcome(RETRY, message=exc.message)
    if 200 <= status < 300:
        try:
            answer: Any = json.loads(data)
            points = int(answer.get("points", 0))
            duplicate = bool(answer.get("duplicate", False))
        except (ValueError, AttributeError, TypeError):
            points, duplicate = 0, False
        return Outcome(OK, status=status, points=points, duplicate=duplicate)
    err = error_from_response(status, data)
    if status in (401, 403):
        kind = AUTH
    elif status in _REJECT_STATUSES:
        kind = REJECTED
    else:
        kind = RETRY  # 5xx, 429, anything unexpected
    message = err.message if kind != RETRY else f"the server answered HTTP {status} ({err.message})"
    return Outcome(kind, status=status, message=message, error=err)


def _split(batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Two halves of a batch's points (None when it has fewer than two).

    The first half keeps ``run`` (so the run exists before anything else lands); the second
    keeps ``update`` and ``artifacts`` (so a final status still comes after every point).
    """
    metrics: dict[str, dict[str, list[Any]]] = batch.get("metrics") or {}
    total = sum(len(c.get("values", ())) for c in metrics.values())
    if total < 2:
        return None
    half = (total + 1) // 2
    first: dict[str, Any] = {}
    second: dict[str, Any] = {}
    taken = 0
    for key, cols in metrics.items():
        n = len(cols.get("values", ()))
        if taken + n <= half:
            first[key] = cols
        elif taken >= half:
            second[key] = cols
        else:
            cut = half - taken
            first[key] = {k: v[:cut] for k, v in cols.items()}
            second[key] = {k: v[cut:] for k, v in cols.items()}
        taken += n
    a: dict[str, Any] = {"metrics": first}
    if "run" in batch:
        a["run"] = batch["run"]
    b: dict[str, Any] = {"metrics": second}
    for k in ("update", "artifacts"):
        if k in batch:
            b[k] = batch[k]
    return a, b


def deliver(
    transport: Transport,
    headers: dict[str, str],
    run_id: str,
    body: bytes,
    *,
    timeout: float | None = None,
    rejected_path: Path | None = None,
) -> Outcome:
    """Send one batch (splitting on 413); what is REJECTED is written to ``rejected_path``."""
    return _send(transport, headers, run_id, body, None, 1, timeout, rejected_path)


def _split_writer(batch: dict[str, Any]) -> str:
    name = f"{batch.get('writer')}-{batch.get('seq')}"
    if len(name) > 64:
        import hashlib

        name = "split-" + hashlib.sha256(name.encode()).hexdigest()[:40]
    return name


def _send(
    transport: Transport,
    headers: dict[str, str],
    run_id: str,
    data: bytes,
    split_writer: str | None,
    node: int,
    timeout: float | None,
    rejected_path: Path | None,
) -> Outcome:
    """Send heap node ``node`` (1 = the batch itself); after a 413 its halves are 2n, 2n+1."""
    out = _post(transport, headers, run_id, data, timeout)
    if out.kind == REJECTED and out.status == 413:
        part = json.loads(data)
        halves = _split(part)
        if halves is not None:
            writer = split_writer or _split_writer(part)
            total = Outcome(OK, status=200)
            for i, half in enumerate(halves):
                child = 2 * node + i
                piece_data = json.dumps({"writer": writer, "seq": child, **half}, separators=(",", ":"))
                piece = _send(
                    transport, headers, run_id, piece_data.encode(), writer, child, timeout, rejected_path
                )
                if piece.kind in (RETRY, AUTH):
                    return piece  # the whole batch stays pending; sent pieces re-send as duplicates
                total.points += piece.points
                if piece.kind == REJECTED and total.kind == OK:
                    total.kind, total.status, total.message = REJECTED, piece.status, piece.message
            return total
    if out.kind == REJECTED and rejected_path is not None:
        write_rejected(rejected_path, run_id, out.status, out.message, data)
    return out
