"""Resolve ``runyard.init`` arguments into one validated ``ClientSettings``.

Order for every setting: argument > environment variable > config file > default, through
``runyard.config.client_setting`` (the seed's ``TRACKER_API``/``TRACKER_API_KEY``/
``EXPERIMENT_ID`` work as aliases). Invalid values raise ``InvalidInput`` naming the
variable, at ``init`` time, before any thread starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runyard import config
from runyard.errors import InvalidInput

__all__ = ["MODES", "ClientSettings", "resolve_settings"]

MODES = ("online", "offline", "disabled")


@dataclass(frozen=True, slots=True)
class ClientSettings:
    url: str
    api_key: str | None
    project: str | None
    experiment: str | None
    experiment_id: str | None
    run_id: str | None  # explicit (argument or RUNYARD_RUN_ID); None derives one
    mode: str
    spool_dir: Path
    max_buffer_points: int
    flush_interval_s: float
    http_timeout_s: float
    retry_min_s: float
    retry_max_s: float
    finish_timeout_s: float
    init_timeout_s: float = 5.0


def _number(raw: str | None, name: str, lo: float, hi: float) -> float:
    try:
        value = float(raw if raw is not None else config.default(name))
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, got {raw!r}", field=name) from None
    if not lo <= value <= hi:
        raise InvalidInput(f"{name} must be between {lo:g} and {hi:g}, got {value:g}", field=name)
    return value


def resolve_settings(
    *,
    project: str | None = None,
    experiment: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
    run_id: str | None = None,
    experiment_id: str | None = None,
    mode: str | None = None,
    spool_dir: str | os.PathLike[str] | None = None,
    max_buffer_points: int | None = None,
    flush_interval_s: float = 1.0,
) -> ClientSettings:
    resolved_mode = (config.client_setting(mode, ("RUNYARD_MODE",), "mode") or "online").lower()
    if resolved_mode not in MODES:
        raise InvalidInput(
            f"mode must be one of {', '.join(MODES)}; got {resolved_mode!r} (argument or RUNYARD_MODE)",
            field="mode",
        )
    # An explicit experiment_id wins; EXPERIMENT_ID from the environment (seed 003 scripts)
    # only applies when the script did not name a project or experiment itself.
    exp_id = experiment_id or (None if (project or experiment) else config.env("EXPERIMENT_ID"))
    proj = exp = None
    if exp_id is None:
        proj = config.client_setting(project, ("RUNYARD_PROJECT",), "project")
        exp = config.client_setting(experiment, ("RUNYARD_EXPERIMENT",), "experiment")
    spool = config.client_setting(
        None if spool_dir is None else os.fspath(spool_dir), ("RUNYARD_SPOOL_DIR",), "spool_dir"
    )
    raw_max = (
        str(max_buffer_points)
        if max_buffer_points is not None
        else config.env("RUNYARD_MAX_BUFFER_POINTS") or config.default("RUNYARD_MAX_BUFFER_POINTS")
    )
    try:
        max_points = int(raw_max)
    except ValueError:
        raise InvalidInput(
            f"max_buffer_points (RUNYARD_MAX_BUFFER_POINTS) must be an integer, got {raw_max!r}",
            field="max_buffer_points",
        ) from None
    if max_points < 100:
        raise InvalidInput(
            f"max_buffer_points must be at least 100, got {max_points}", field="max_buffer_points"
        )
    if not 0.001 <= flush_interval_s <= 3600:
        raise InvalidInput(
            f"flush_interval_s must be between 0.001 and 3600 seconds, got {flush_interval_s}",
            field="flush_interval_s",
        )
    retry_min = _number(config.env("RUNYARD_RETRY_MIN_S"), "RUNYARD_RETRY_MIN_S", 0.001, 3600)
    retry_max = _number(config.env("RUNYARD_RETRY_MAX_S"), "RUNYARD_RETRY_MAX_S", 0.001, 3600)
    return ClientSettings(
        url=(
            config.client_setting(url, ("RUNYARD_URL", "TRACKER_API"), "url") or config.default("RUNYARD_URL")
        ).rstrip("/"),
        api_key=config.client_setting(api_key, ("RUNYARD_API_KEY", "TRACKER_API_KEY"), "api_key"),
        project=proj,
        experiment=exp,
        experiment_id=exp_id,
        run_id=run_id or config.env("RUNYARD_RUN_ID"),
        mode=resolved_mode,
        spool_dir=Path(spool or config.default("RUNYARD_SPOOL_DIR")).expanduser(),
        max_buffer_points=max_points,
        flush_interval_s=float(flush_interval_s),
        http_timeout_s=_number(config.env("RUNYARD_HTTP_TIMEOUT_S"), "RUNYARD_HTTP_TIMEOUT_S", 0.01, 3600),
        retry_min_s=retry_min,
        retry_max_s=max(retry_min, retry_max),
        finish_timeout_s=_number(
            config.env("RUNYARD_FINISH_TIMEOUT_S"), "RUNYARD_FINISH_TIMEOUT_S", 0, 86400
        ),
    )
