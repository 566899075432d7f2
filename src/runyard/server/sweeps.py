"""Sweeps and pipelines on the server: what their runs say, and the early-stop supervisor.

A sweep's truth is its runs: a trial's params are the run's config, its value the last value
of the sweep's metric, its state the run's status. Nothing about a trial is kept anywhere
else, so views, Optuna's decisions (``runyard.sweeps.optimizer``, stateless) and restarts all
read the same thing.

``SweepSupervisor`` judges trials while they run. It listens to the event bus (a callback that
only queues the run id: publishing never waits), and on its own thread reads the sweep's
trials, asks the early-stop rule, and stops a trial that does worse than the others: the run
becomes ``pruned`` (with the rule's reason in its history) and its array task is cancelled.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runyard.entities import (
    ACTIVE_STATUSES,
    Pipeline,
    Run,
    RunStatus,
    RunUpdate,
    Sweep,
)
from runyard.lifecycle import NewEvent
from runyard.server.events import EventBus, publish_runs, publish_safely
from runyard.slurm.executor import Executor
from runyard.store.base import Store
from runyard.sweeps.model import SweepSpec
from runyard.sweeps.optimizer import TrialRecord, best, importance, prune_reason
from runyard.sweeps.spec import parse_sweep

__all__ = [
    "SpecCache",
    "SweepSupervisor",
    "pipeline_json",
    "sweep_json",
    "trial_records",
]

log = logging.getLogger("runyard.sweeps")

_FAILED = frozenset({RunStatus.FAILED, RunStatus.TIMEOUT, RunStatus.OOM, RunStatus.NODE_FAIL})
_WAITING = frozenset({RunStatus.CREATED, RunStatus.QUEUED})


class SpecCache:
    """Parsed specs by sweep id (a sweep's spec never changes after it is created)."""

    def __init__(self, size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, SweepSpec] = {}
        self._size = size

    def get(self, sweep: Sweep) -> SweepSpec:
        with self._lock:
            found = self._specs.get(sweep.id)
        if found is not None:
            return found
        spec = parse_sweep(sweep.spec_text, source=str(sweep.spec.get("source") or "sweep.yaml"))
        with self._lock:
            if len(self._specs) >= self._size:
                self._specs.clear()
            self._specs[sweep.id] = spec
        return spec


# --------------------------------------------------------------------------- trials


def _value(run: Run, metric: str | None) -> tuple[float | None, int | None]:
    if metric is None:
        return None, None
    summary = run.metrics.get(metric)
    if summary is None or not math.isfinite(summary.last):
        return None, None if summary is None else summary.last_step
    return summary.last, summary.last_step


def _trial_state(run: Run, value: float | None) -> str:
    if run.status is RunStatus.FINISHED:
        return "complete" if value is not None else "failed"
    if run.status is RunStatus.PRUNED:
        return "pruned"
    if run.status in _WAITING:
        return "waiting"
    if run.status in ACTIVE_STATUSES:
        return "running"
    return "failed"


def trial_index(run: Run) -> int:
    """A trial's number in its sweep: its array task id (set when the run is created)."""
    return run.slurm_array_task_id if run.slurm_array_task_id is not None else -1


def param_names(spec: SweepSpec) -> list[str]:
    if spec.parameters:
        return [p.name for p in spec.parameters]
    return list(dict.fromkeys(name for trial in spec.trials for name in trial))  # method list


def _params(spec: SweepSpec, run: Run) -> dict[str, Any]:
    return {name: run.config[name] for name in param_names(spec) if name in run.config}


def trial_records(
    spec: SweepSpec,
    runs: Sequence[Run],
    series: Mapping[str, Mapping[int, float]] | None = None,
) -> list[TrialRecord]:
    """The optimizer's view of a sweep's runs (``series``: intermediate values by run id)."""
    metric = spec.metric.name if spec.metric is not None else None
    records = []
    for run in runs:
        value, _ = _value(run, metric)
        records.append(
            TrialRecord(
                index=trial_index(run),
                run_id=run.id,
                params=_params(spec, run),
                state=_trial_state(run, value),  # type: ignore[arg-type]
                value=value if run.status is RunStatus.FINISHED else None,
                intermediate=(series or {}).get(run.id, {}),
            )
        )
    return records


# --------------------------------------------------------------------------- views


def _counts(runs: Sequence[Run]) -> dict[str, int]:
    counts = {"queued": 0, "running": 0, "finished": 0, "failed": 0, "pruned": 0, "cancelled": 0}
    for run in runs:
        if run.status in _WAITING:
            counts["queued"] += 1
        elif run.status in (RunStatus.RUNNING, RunStatus.REQUEUED):
            counts["running"] += 1
        elif run.status in _FAILED:
            counts["failed"] += 1
        else:
            counts[run.status.value] += 1
    return counts


class ImportanceCache:
    """Parameter importance per sweep, recomputed only when its finished trials change."""

    def __init__(self, size: int = 200) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, tuple[tuple[str, ...], list[tuple[str, float]] | None]] = {}
        self._size = size

    def get(self, sweep_id: str, spec: SweepSpec, records: Sequence[TrialRecord]) -> Any:
        key = tuple(sorted(r.run_id for r in records if r.state == "complete"))
        with self._lock:
            hit = self._found.get(sweep_id)
        if hit is not None and hit[0] == key:
            return hit[1]
        try:
            found = importance(spec, records)
        except Exception:  # a view never fails for its extras
            log.warning("sweeps: importance of %s failed", sweep_id, exc_info=True)
            found = None
        with self._lock:
            if len(self._found) >= self._size:
                self._found.clear()
            self._found[sweep_id] = (key, found)
        return found


def _reason(run: Run) -> str | None:
    sweep = run.slurm.get("sweep")
    if run.status is RunStatus.PRUNED and isinstance(sweep, dict) and sweep.get("pruned"):
        return str(sweep["pruned"])
    if run.status in _FAILED or run.status is RunStatus.CANCELLED:
        code = f" (exit code {run.exit_code})" if run.exit_code is not None else ""
        return f"{run.status.value}{code}"
    return None


def sweep_json(
    sweep: Sweep,
    spec: SweepSpec,
    runs: Sequence[Run],
    *,
    detail: bool = False,
    importance_cache: ImportanceCache | None = None,
) -> dict[str, Any]:
    """A sweep as the API shows it: progress, best trial; with ``detail`` every trial, the
    parameters, their importance and the spec text."""
    metric = spec.metric.name if spec.metric is not None else None
    records = trial_records(spec, runs)
    top = best(spec, records) if spec.metric is not None else None
    active = any(run.status in ACTIVE_STATUSES for run in runs)
    state = "cancelled" if sweep.cancelled_at is not None else ("running" if active else "finished")
    out: dict[str, Any] = {
        "id": sweep.id,
        "name": sweep.name,
        "experiment_id": sweep.experiment_id,
        "project_id": sweep.project_id,
        "user_id": sweep.user_id,
        "method": sweep.method,
        "created_at": sweep.created_at,
        "cancelled_at": sweep.cancelled_at,
        "metric": None if spec.metric is None else {"name": spec.metric.name, "goal": spec.metric.goal},
        "concurrency": spec.concurrency,
        "trial_count": sweep.trial_count,
        "state": state,
        "counts": _counts(runs),
        "best": None
        if top is None
        else {"run_id": top.run_id, "index": top.index, "value": top.value, "params": dict(top.params)},
        "job_ids": [job.job_id for job in sweep.jobs],
    }
    if not detail:
        return out
    trials = []
    for run, record in zip(runs, records, strict=True):
        value, step = _value(run, metric)
        trials.append(
            {
                "index": record.index,
                "run_id": run.id,
                "name": run.name,
                "status": run.status.value,
                "params": dict(record.params),
                "value": value,
                "step": step,
                "slurm_job_id": run.slurm_job_id,
                "reason": _reason(run),
            }
        )
    ranked = importance_cache.get(sweep.id, spec, records) if importance_cache is not None else None
    out.update(
        parameters=[
            {
                "name": p.name,
                "kind": p.kind,
                "values": None if p.values is None else list(p.values),
                "low": p.low,
                "high": p.high,
                "log": p.log,
                "integer": p.integer,
            }
            for p in spec.parameters
        ],
        early_stop=None
        if spec.early_stop is None
        else {
            "rule": spec.early_stop.rule,
            "min_step": spec.early_stop.min_step,
            "min_trials": spec.early_stop.min_trials,
        },
        trials=trials,
        importance=None if ranked is None else [{"param": p, "importance": v} for p, v in ranked],
        spec=sweep.spec_text,
    )
    return out


# --------------------------------------------------------------------------- pipelines

_STEP_STATE = {
    RunStatus.FINISHED: "finished",
    RunStatus.RUNNING: "running",
    RunStatus.REQUEUED: "running",
    RunStatus.CANCELLED: "cancelled",
}
_WHEN_WORDS = {"ok": "to succeed", "notok": "to fail", "any": "to end"}


def _blocked(state: str, when: str) -> bool:
    """Whether an edge ``after <step>:<when>`` can no longer be met, given that step's state."""
    if when == "ok":
        return state in ("failed", "cancelled", "never")
    if when == "notok":
        return state == "finished"
    return False  # any: met however it ends (a step that never runs is cancelled: it ends)


def pipeline_json(pipeline: Pipeline, runs: Mapping[str, Run], *, detail: bool = False) -> dict[str, Any]:
    """A pipeline with each step's live state; a step that waits on an edge that can no longer
    be met is ``never``, with the reason (the step that broke it and what it needed)."""
    states: dict[str, str] = {}
    steps = []
    for step in pipeline.steps:
        run = runs.get(step.run_id)
        status = run.status if run is not None else RunStatus.CREATED
        reason: str | None = None
        state = _STEP_STATE.get(status, "failed" if status in _FAILED | {RunStatus.PRUNED} else "queued")
        if state in ("queued", "cancelled"):
            broken = [(dep, when) for dep, when in step.after if _blocked(states.get(dep, "queued"), when)]
            waiting = [dep for dep, _ in step.after if states.get(dep) in ("queued", "waiting", "running")]
            if broken:
                dep, when = broken[0]
                state = "never"
                reason = (
                    f"never runs: {dep} {'was never run' if states[dep] == 'never' else states[dep]} "
                    f"and {step.name} needs it {_WHEN_WORDS[when]} (after {dep}:{when})"
                )
            elif state == "queued" and waiting:
                state = "waiting"
                reason = f"waiting for {', '.join(waiting)}"
        states[step.name] = state
        if state == "failed" and run is not None and run.exit_code is not None:
            reason = f"{status.value} (exit code {run.exit_code})"
        steps.append(
            {
                "name": step.name,
                "run_id": step.run_id,
                "slurm_job_id": step.job_id,
                "command": list(step.command),
                "after": [{"step": dep, "when": when} for dep, when in step.after],
                "status": status.value,
                "state": state,
                "reason": reason,
                "started_at": None if run is None else run.started_at,
                "ended_at": None if run is None else run.ended_at,
                "pending_reason": None if run is None else run.pending_reason,
            }
        )
    values = list(states.values())
    if any(s in ("queued", "waiting", "running") for s in values):
        overall = "running"
    elif "failed" in values:
        overall = "failed"
    elif "cancelled" in values:
        overall = "cancelled"
    else:
        overall = "finished"
    counts: dict[str, int] = {}
    for s in values:
        counts[s] = counts.get(s, 0) + 1
    out: dict[str, Any] = {
        "id": pipeline.id,
        "name": pipeline.name,
        "experiment_id": pipeline.experiment_id,
        "project_id": pipeline.project_id,
        "user_id": pipeline.user_id,
        "created_at": pipeline.created_at,
        "state": overall,
        "counts": counts,
    }
    if detail:
        out.update(spec=pipeline.spec_text, steps=steps)
    return out


# --------------------------------------------------------------------------- early stop


@dataclass(frozen=True)
class _Pruned:
    reason: str
    step: int | None


def _prune(reason: str, at: float) -> Any:
    def decide(run: Run) -> tuple[RunUpdate | None, list[NewEvent]]:
        if run.status not in ACTIVE_STATUSES:
            return None, []  # it ended meanwhile: nothing to stop
        sweep = dict(run.slurm.get("sweep") or {})
        sweep["pruned"] = reason
        update = RunUpdate(status=RunStatus.PRUNED, ended_at=at, slurm={"sweep": sweep})
        return update, [NewEvent(source="server", kind="status", status="pruned", message=reason)]

    return decide


class SweepSupervisor:
    """Judges running trials of sweeps with an early-stop rule as their metric arrives."""

    def __init__(self, store: Store, executor: Executor | None, bus: EventBus, specs: SpecCache) -> None:
        self.store = store
        self.executor = executor
        self.bus = bus
        self.specs = specs
        self._queue: queue.SimpleQueue[tuple[str, frozenset[str]] | None] = queue.SimpleQueue()
        self._sweep_of: dict[str, str | None] = {}  # run id -> sweep id (None: not a trial)
        self._done_series: dict[tuple[str, str], dict[int, float]] = {}  # ended trials' series
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- the bus side: cheap, never blocks --------------------------------------------------
    def on_event(self, kind: str, data: Mapping[str, Any]) -> None:
        if kind == "metrics" and isinstance(data.get("run_id"), str):
            keys = data.get("metrics")
            self._queue.put((data["run_id"], frozenset(keys) if isinstance(keys, Mapping) else frozenset()))

    # -- the thread --------------------------------------------------------------------------
    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="runyard-sweeps", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stopping:
            first = self._queue.get()
            if first is None:
                continue
            dirty: dict[str, set[str]] = {first[0]: set(first[1])}
            while True:  # everything that queued meanwhile, judged once per sweep
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is not None:
                    dirty.setdefault(more[0], set()).update(more[1])
            by_sweep: dict[str, list[tuple[str, set[str]]]] = {}
            for run_id, keys in dirty.items():
                sweep_id = self._sweep_id(run_id)
                if sweep_id is not None:
                    by_sweep.setdefault(sweep_id, []).append((run_id, keys))
            for sweep_id, items in by_sweep.items():
                try:
                    self.judge_sweep(sweep_id, items)
                except Exception:
                    log.warning("sweeps: judging trials of sweep %s failed", sweep_id, exc_info=True)

    def _sweep_id(self, run_id: str) -> str | None:
        if run_id not in self._sweep_of:
            if len(self._sweep_of) > 100_000:
                self._sweep_of.clear()
            try:
                self._sweep_of[run_id] = self.store.get_run(run_id, with_metrics=False).sweep_id
            except Exception:
                return None
        return self._sweep_of[run_id]

    def _series(self, run: Run, key: str) -> dict[int, float]:
        cached = self._done_series.get((run.id, key))
        if cached is not None:
            return cached
        series = self.store.metric_series(run.id, key)
        points = {int(s): float(v) for s, v in zip(series.steps, series.values, strict=False)}
        if run.status not in ACTIVE_STATUSES:
            if len(self._done_series) > 20_000:
                self._done_series.clear()
            self._done_series[(run.id, key)] = points
        return points

    def judge(self, run_id: str) -> list[_Pruned]:
        """Stop ``run_id`` when its sweep's early-stop rule says so; what was decided."""
        sweep_id = self._sweep_id(run_id)
        return [] if sweep_id is None else self.judge_sweep(sweep_id, [(run_id, None)])

    def judge_sweep(self, sweep_id: str, items: Sequence[tuple[str, set[str] | None]]) -> list[_Pruned]:
        """Judge these trials of one sweep (run id, the metric keys that just arrived — None:
        any) against the others, reading the sweep's trials once."""
        sweep = self.store.get_sweep(sweep_id)
        spec = self.specs.get(sweep)
        if spec.early_stop is None or spec.metric is None or sweep.cancelled_at is not None:
            return []
        key = spec.metric.name
        wanted = {run_id for run_id, keys in items if keys is None or key in keys}
        if not wanted:
            return []  # other metrics arrived: nothing new to judge
        runs = self.store.sweep_runs(sweep_id, [key])
        targets = [r for r in runs if r.id in wanted and r.status in (RunStatus.RUNNING, RunStatus.REQUEUED)]
        if not targets:
            return []
        series = {r.id: self._series(r, key) for r in runs if key in r.metrics}
        records = trial_records(spec, runs, series)
        by_id = {r.run_id: r for r in records}
        decided = []
        for target in targets:
            trial = by_id[target.id]
            reason = prune_reason(spec, records, trial)
            if reason is not None:
                step = max(trial.intermediate) if trial.intermediate else None
                pruned = self.prune(target, reason, step=step)
                if pruned is not None:
                    decided.append(pruned)
        return decided

    def prune(self, run: Run, reason: str, *, step: int | None = None) -> _Pruned | None:
        after, changed = self.store.transition_run(run.id, _prune(reason, time.time()))
        if not changed:
            return None
        log.info("sweeps: pruned run %s: %s", run.id, reason)
        publish_safely(publish_runs, self.bus, self.store, [after])
        if self.executor is not None and run.slurm_job_id:
            try:
                self.executor.cancel(run.slurm_job_id)
            except Exception as exc:  # the job may have ended on its own meanwhile
                log.info("sweeps: cancelling job %s of pruned run %s: %s", run.slurm_job_id, run.id, exc)
        return _Pruned(reason, step)
