"""``runyard.sync(path)``: upload journals left by offline runs or by runs that lost the server.

Records go out in file order through the same batch endpoint the live client uses; the
server applies each (run, writer, seq) once, so syncing a journal twice, or one that was
partly uploaded, stores every point exactly once (the repeats count as ``duplicates``).
A completely processed journal is renamed to ``*.journal.synced`` (deleted with
``delete=True``). Journals whose writer process is still alive (it holds the lock) are
skipped: that process uploads them itself.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from runyard.client import delivery
from runyard.client.encode import Warner
from runyard.client.journal import JournalReader, is_locked, run_id_from_path
from runyard.client.transport import Transport

__all__ = ["SyncResult", "sync", "sync_files", "upload_earlier_attempts"]


@dataclass(frozen=True, slots=True)
class SyncResult:
    """``files``: journals completely processed (renamed or deleted); ``batches_sent``:
    batches applied now; ``duplicates``: batches the server already had; ``points``: points
    stored now; ``errors``: what needs attention (rejected batches, an unreachable server, a
    refused key); ``warnings``: torn tails and skipped journals, which need none."""

    files: tuple[Path, ...]
    batches_sent: int
    duplicates: int
    points: int
    errors: tuple[str, ...]
    warnings: tuple[str, ...] = ()


def _journals(path: Path) -> list[Path]:
    if path.is_dir():
        found = [p for p in path.rglob("*.journal") if p.is_file()]
        return sorted(found, key=lambda p: (p.stat().st_mtime, str(p)))  # older attempts first
    return [path]


def sync(
    path: str | os.PathLike[str],
    *,
    url: str | None = None,
    api_key: str | None = None,
    delete: bool = False,
    _transport: Transport | None = None,
    _retries: int = 3,
) -> SyncResult:
    """Upload a journal file, or every ``*.journal`` under a directory (oldest first).

    Never raises for server trouble: an unreachable server or a refused key stops the sync
    and is reported in ``errors`` (what was sent stays sent; run it again later).
    """
    from runyard import config

    root = Path(path).expanduser()
    if not root.exists():
        return SyncResult((), 0, 0, 0, (f"{root} does not exist",))
    server = config.client_setting(url, ("RUNYARD_URL", "TRACKER_API"), "url") or ""
    key = config.client_setting(api_key, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key")
    transport = _transport
    if transport is None:
        from runyard.client.transport import HttpTransport

        transport = HttpTransport(server, timeout=60.0)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if key:
        headers["X-API-Key"] = key
    try:
        return sync_files(_journals(root), transport, headers, delete=delete, retries=_retries)
    finally:
        if _transport is None:
            transport.close()


def sync_files(
    journals: Iterable[Path],
    transport: Transport,
    headers: dict[str, str],
    *,
    delete: bool = False,
    retries: int = 3,
    should_stop: Callable[[], bool] = lambda: False,
) -> SyncResult:
    """Upload these journals in order; stops at an unreachable server, a refused key, or
    when ``should_stop()`` turns true (checked between records)."""
    done: list[Path] = []
    errors: list[str] = []
    warnings: list[str] = []
    sent = dups = points = 0

    def result() -> SyncResult:
        return SyncResult(tuple(done), sent, dups, points, tuple(errors), tuple(warnings))

    for journal in journals:
        if is_locked(journal):
            warnings.append(f"{journal}: a running process is still writing it; skipped")
            continue
        try:
            run_id = run_id_from_path(journal)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        reader = JournalReader(journal)
        rejected = Path(f"{journal}.rejected")
        try:
            for start, _end, payload in reader:
                if should_stop():
                    return result()
                out = delivery.deliver(transport, headers, run_id, payload, rejected_path=rejected)
                for attempt in range(retries):
                    if out.kind != delivery.RETRY:
                        break
                    time.sleep(0.5 * 2**attempt)
                    out = delivery.deliver(transport, headers, run_id, payload, rejected_path=rejected)
                if out.kind == delivery.OK:
                    points += out.points
                    if out.duplicate:
                        dups += 1
                    else:
                        sent += 1
                elif out.kind == delivery.REJECTED:
                    errors.append(
                        f"{journal}: the server rejected the batch at byte {start} "
                        f"(HTTP {out.status}: {out.message}); it is kept in {rejected}"
                    )
                else:  # RETRY after retries, or AUTH: nothing further can succeed now
                    fix = "use a valid API key" if out.kind == delivery.AUTH else "try again later"
                    errors.append(f"{journal}: {out.message}; sync stopped ({fix})")
                    return result()
        except (OSError, ValueError) as exc:
            errors.append(f"{journal}: cannot read it ({exc})")
            continue
        if reader.torn:
            warnings.append(f"{journal}: {reader.torn}; the records before it were sent")
        try:
            if delete:
                journal.unlink()
            else:
                journal.replace(journal.with_name(journal.name + ".synced"))
        except FileNotFoundError:
            pass  # another process synced it at the same time: the server deduplicated
        except OSError as exc:
            errors.append(f"{journal}: uploaded, but cannot rename or delete it ({exc})")
        done.append(journal)
    return result()


def upload_earlier_attempts(
    journal_path: Path,
    run_id: str,
    transport: Transport,
    headers: dict[str, str],
    warner: Warner,
    should_stop: Callable[[], bool],
) -> None:
    """Upload the journals an earlier attempt of this run left next to ``journal_path``
    (a requeued job killed while the server was down), oldest first."""
    spool = journal_path.parent
    try:
        found = [
            p
            for p in spool.glob(f"{run_id}.*.journal")
            if p != journal_path and run_id_from_path(p) == run_id
        ]
        found.sort(key=lambda p: (p.stat().st_mtime, p.name))
    except OSError:
        return
    if not found:
        return
    result = sync_files(found, transport, headers, retries=0, should_stop=should_stop)
    if result.files:
        warner.note(
            f"uploaded {result.points:,} points from {len(result.files)} journal(s) that an "
            f"earlier attempt of run {run_id} left in {spool}"
        )
    for problem in result.errors:
        warner.warn(f"{problem} (upload it with: runyard sync {spool})", problem)
