"""Artifacts: records of files a run produced (checkpoints, models), by path or URI."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from runyard.entities import Artifact, ArtifactCreate
from runyard.errors import InvalidInput, NotFound
from runyard.store.sql.common import check_int, check_name, check_text, has_control, new_id, now
from runyard.store.sql.schema import artifacts

__all__ = ["get_artifact", "insert_artifact", "list_artifacts"]

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _artifact(m: RowMapping) -> Artifact:
    return Artifact(
        id=m["id"],
        run_id=m["run_id"],
        name=m["name"],
        path=m["path"],
        kind=m["kind"],
        created_at=m["created_at"],
        size_bytes=m["size_bytes"],
        sha256=m["sha256"],
        step=m["step"],
        stored=bool(m["stored"]),
    )


def insert_artifact(
    conn: Connection, run_id: str, create: ArtifactCreate, field: str = "artifact"
) -> Artifact:
    """Insert one artifact of a run the caller has checked exists."""
    path = check_text(create.path, f"{field}.path", limit=4096)
    if not path.strip() or has_control(path):
        raise InvalidInput(f"{field}.path must be a non-empty path or URI on one line", field=f"{field}.path")
    default_name = path.rstrip("/").rsplit("/", 1)[-1] or path
    name = check_name(create.name if create.name is not None else default_name, f"{field}.name", limit=1000)
    kind = check_name(create.kind, f"{field}.kind", limit=64)
    sha = create.sha256
    if sha is not None and (not isinstance(sha, str) or not _SHA256_RE.match(sha.lower())):
        raise InvalidInput(f"{field}.sha256 must be 64 hex characters", field=f"{field}.sha256")
    art = Artifact(
        id=new_id(),
        run_id=run_id,
        name=name,
        path=path,
        kind=kind,
        created_at=now(),
        size_bytes=None
        if create.size_bytes is None
        else check_int(create.size_bytes, f"{field}.size_bytes", minimum=0),
        sha256=None if sha is None else sha.lower(),
        step=None if create.step is None else check_int(create.step, f"{field}.step", minimum=0),
        stored=bool(create.stored),
    )
    conn.execute(
        sa.insert(artifacts).values(
            id=art.id,
            run_id=art.run_id,
            name=art.name,
            path=art.path,
            kind=art.kind,
            created_at=art.created_at,
            size_bytes=art.size_bytes,
            sha256=art.sha256,
            step=art.step,
            stored=art.stored,
        )
    )
    return art


def list_artifacts(conn: Connection, run_id: str) -> list[Artifact]:
    stmt = (
        sa.select(artifacts)
        .where(artifacts.c.run_id == run_id)
        .order_by(artifacts.c.created_at, artifacts.c.id)
    )
    return [_artifact(m) for m in conn.execute(stmt).mappings()]


def get_artifact(conn: Connection, artifact_id: str) -> Artifact:
    row = conn.execute(sa.select(artifacts).where(artifacts.c.id == artifact_id)).mappings().first()
    if row is None:
        raise NotFound(f"artifact {artifact_id!r} not found", field="artifact_id")
    return _artifact(row)
