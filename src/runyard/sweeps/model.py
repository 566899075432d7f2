"""What a sweep or pipeline spec says, once parsed and checked (``spec.py`` builds these).

Pure dataclasses, no I/O. Every value here has passed the spec's rules, so the code that
submits and supervises sweeps never re-checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "EarlyStop",
    "Metric",
    "Param",
    "PipelineSpec",
    "Step",
    "SweepSpec",
]

Method = Literal["grid", "random", "list", "adaptive"]
Goal = Literal["minimize", "maximize"]
When = Literal["ok", "any", "notok"]


@dataclass(frozen=True)
class Param:
    """One searched parameter: a list of ``values`` (grid axis, random or adaptive choice) or
    a range ``low``..``high`` (random and adaptive only; ``log`` samples log-uniformly,
    ``integer`` draws whole numbers)."""

    name: str
    values: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    line: int = 0  # where the spec defines it (for messages)

    @property
    def kind(self) -> Literal["values", "range"]:
        return "values" if self.values is not None else "range"


@dataclass(frozen=True)
class Metric:
    name: str  # a metric key the trials log, e.g. "val/loss"
    goal: Goal = "minimize"


@dataclass(frozen=True)
class EarlyStop:
    """Stop trials that do badly, judged each time the sweep's metric arrives.

    ``median``: a trial whose best value so far is worse than the median of the other trials'
    values at the same step is stopped, once ``min_trials`` trials have finished and from step
    ``min_step`` on (Optuna's MedianPruner). ``halving``: successive halving (Optuna's
    SuccessiveHalvingPruner) with ``min_step`` as its minimum resource.
    """

    rule: Literal["median", "halving"] = "median"
    min_step: int = 0
    min_trials: int = 1
    interval: int = 1  # judge every ``interval`` steps


@dataclass(frozen=True)
class SweepSpec:
    name: str
    command: tuple[str, ...]  # argv; with args="template", items hold {param} placeholders
    method: Method
    parameters: tuple[Param, ...] = ()
    trials: tuple[Mapping[str, Any], ...] = ()  # method "list": each trial's params
    count: int | None = None  # random and adaptive: how many trials
    seed: int = 0  # random and adaptive
    concurrency: int | None = None  # at most this many trials at once (the array's %K)
    metric: Metric | None = None  # needed by adaptive and early_stop
    early_stop: EarlyStop | None = None
    sampler: Literal["tpe", "random"] = "tpe"  # adaptive
    args: Literal["append", "template"] = "append"  # append: --name=value after the command
    project: str | None = None
    experiment: str | None = None
    workdir: str | None = None  # relative: to the spec file's folder
    output_dir: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)  # LaunchResources' fields
    env: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    requeue: bool | None = None
    max_restarts: int | None = None


@dataclass(frozen=True)
class Step:
    name: str
    command: tuple[str, ...]
    after: tuple[tuple[str, When], ...] = ()  # (earlier step, when)
    resources: Mapping[str, Any] = field(default_factory=dict)  # merged over the pipeline's
    env: Mapping[str, str] = field(default_factory=dict)  # merged over the pipeline's
    line: int = 0


@dataclass(frozen=True)
class PipelineSpec:
    name: str
    steps: tuple[Step, ...]  # in an order where every step comes after those it waits for
    project: str | None = None
    experiment: str | None = None
    workdir: str | None = None
    output_dir: str | None = None
    resources: Mapping[str, Any] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
