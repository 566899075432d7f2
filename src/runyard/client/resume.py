"""What ``runyard.init`` learns about a run that already exists: a requeued or resumed job.

A requeued Slurm job gets the same run id (``RUNYARD_RUN_ID``, or one derived from the job),
so ``init`` continues that run. One quick look at the server tells the script where it
left off: whether points were logged already, the step to continue from, and the newest
checkpoint artifact. The look-up never fails ``init``: an unreachable server, an unknown run
or an odd answer only means "nothing known" (``resumed`` then rests on SLURM_RESTART_COUNT).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from runyard.client.transport import Transport
from runyard.errors import ServerUnreachable

__all__ = ["SYSTEM_PREFIX", "ResumeInfo", "look_up"]

SYSTEM_PREFIX = "sys/"  # system metrics (runyard.client.sampler): not the script's step counter


@dataclass(frozen=True, slots=True)
class ResumeInfo:
    resumed: bool
    next_step: int  # where the automatic step counter continues
    latest_checkpoint: str | None


def _get(transport: Transport, path: str, headers: Mapping[str, str], timeout: float) -> Any:
    try:
        status, data = transport.request("GET", path, None, headers, timeout)
    except ServerUnreachable:
        return None
    if status != 200:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _number(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def look_up(
    transport: Transport, headers: Mapping[str, str], run_id: str, restart_count: int, timeout: float
) -> ResumeInfo:
    """Ask the server about ``run_id`` (``GET /api/v1/runs/{id}`` and its artifacts)."""
    fallback = ResumeInfo(restart_count > 0, 0, None)
    base = f"/api/v1/runs/{quote(run_id, safe='')}"
    run = _get(transport, base, headers, timeout)
    if not isinstance(run, dict):
        return fallback
    metrics = run.get("metrics")
    logged = False
    last_step = -1
    if isinstance(metrics, dict):
        for key, summary in metrics.items():
            if str(key).startswith(SYSTEM_PREFIX) or not isinstance(summary, dict):
                continue
            count, step = _number(summary.get("count")), _number(summary.get("last_step"))
            if count:
                logged = True
                if step is not None and step > last_step:
                    last_step = step
    checkpoint = None
    artifacts = _get(transport, f"{base}/artifacts", headers, timeout)
    if isinstance(artifacts, list):
        newest = -1.0
        for a in artifacts:  # the newest by creation time; the later one on a tie
            if isinstance(a, dict) and a.get("kind") == "checkpoint" and isinstance(a.get("path"), str):
                created = a.get("created_at")
                when = float(created) if isinstance(created, int | float) else 0.0
                if when >= newest:
                    newest, checkpoint = when, a["path"]
    return ResumeInfo(restart_count > 0 or logged, last_step + 1, checkpoint)
