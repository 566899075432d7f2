"""The Slurm watcher: one thread in the server that keeps every tracked run in step with Slurm.

Per cycle it asks Slurm at most twice, whatever the number of jobs: **one** ``squeue`` for
everything slurmctld knows, and **one** ``sacct`` for the tracked jobs that have left the
queue or ended (their exit, CPU time, peak memory). ``plan_cycle`` and ``observe_*`` are
pure, so a 10,000-job cycle is benchmarked without Slurm (benchmarks/watcher_bench.py); the
state machine in ``runyard.lifecycle`` decides what each observation means for its run.

Protecting slurmctld: a sliding-window budget caps Slurm calls per minute (configurable);
the pause between cycles grows while nothing changes and shrinks back when something does;
with no tracked jobs the watcher does not call Slurm at all. When Slurm cannot be asked
(slurmctld or slurmdbd down, a command timing out), the tracked runs are marked "state
unknown since …", the watcher backs off and keeps trying; nothing crashes.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.config import Settings
from runyard.entities import TERMINAL_STATUSES, Run, RunUpdate
from runyard.errors import InvalidInput, RunyardError
from runyard.lifecycle import NewEvent, Observation, apply_observation, normalize_state
from runyard.slurm.executor import Executor
from runyard.slurm.launch import parse_array_spec
from runyard.slurm.parse import AccountingJob, QueueJob, gc_paused
from runyard.store.base import Store

__all__ = [
    "CallBudget",
    "CyclePlan",
    "Watcher",
    "WatcherConfig",
    "expand_task_string",
    "observe_accounting",
    "observe_queue",
    "plan_cycle",
]

log = logging.getLogger("runyard.watcher")

# Slurm states after which a job's record will not change any more (but for a requeue)
_ENDED = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "TIMEOUT",
        "DEADLINE",
        "CANCELLED",
        "REVOKED",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "BOOT_FAIL",
    }
)
_OOM_MARKERS = ("exceeded memory limit", "oom-kill", "out of memory", "oom_kill")
MAX_SACCT_IDS = 1000  # per cycle; the rest wait for the next one
WRITE_CHUNK = 500  # runs per transaction: short transactions, so client batches are not held up


@dataclass(frozen=True, slots=True)
class WatcherConfig:
    poll_s: float = 5.0
    poll_max_s: float = 60.0
    max_calls_per_min: int = 20
    oom_scan_bytes: int = 64 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> WatcherConfig:
        return cls(
            poll_s=settings.slurm_poll_s,
            poll_max_s=max(settings.slurm_poll_max_s, settings.slurm_poll_s),
            max_calls_per_min=settings.slurm_max_calls_per_min,
        )


class CallBudget:
    """At most ``per_minute`` calls in any 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._calls: deque[float] = deque()

    def _trim(self, now: float) -> None:
        while self._calls and now - self._calls[0] >= 60.0:
            self._calls.popleft()

    def wait_s(self, calls: int = 1) -> float:
        """Seconds until ``calls`` more calls fit in the window (0 when they fit now)."""
        now = self._clock()
        self._trim(now)
        excess = len(self._calls) + calls - self.per_minute
        if excess <= 0:
            return 0.0
        if calls > self.per_minute:
            return 60.0
        return max(0.0, self._calls[excess - 1] + 60.0 - now)

    def spend(self) -> None:
        self._calls.append(self._clock())

    def used(self) -> int:
        self._trim(self._clock())
        return len(self._calls)


# --------------------------------------------------------------------------- pure part


def expand_task_string(text: str) -> list[int]:
    """Task ids of squeue's ``array_task_string`` (``2-9%2``, ``1,3,5-7``, ``0-10:2``); the
    same grammar as ``--array``, read leniently: output that does not parse matches nothing."""
    try:
        return list(parse_array_spec(text.strip().strip("[]")).task_ids)
    except InvalidInput:
        return []


def _run_key(run: Run) -> str | None:
    """``123`` or ``123_4``: how a run's job is named in squeue/sacct matches."""
    if run.slurm_array_job_id and run.slurm_array_task_id is not None:
        return f"{run.slurm_array_job_id}_{run.slurm_array_task_id}"
    return run.slurm_job_id


def _queue_index(jobs: Iterable[QueueJob]) -> dict[str, QueueJob]:
    index: dict[str, QueueJob] = {}
    for job in jobs:
        if job.array_job_id is not None and job.array_task_id is not None:
            index[f"{job.array_job_id}_{job.array_task_id}"] = job
            continue
        if job.array_task_string:  # the pending rest of an array, one record for all its tasks
            leader = job.array_job_id or job.job_id
            for task in expand_task_string(job.array_task_string):
                index.setdefault(f"{leader}_{task}", job)
        index[str(job.job_id)] = job
    return index


def _details(gpus: int | None, time_limit_min: int | None) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if gpus is not None:
        details["gpus"] = gpus
    if time_limit_min is not None:
        details["time_limit_min"] = time_limit_min
    return details


def observe_queue(job: QueueJob, *, oom: bool = False) -> Observation:
    state = normalize_state(job.state)
    pending = state == "PENDING"
    ended = state in _ENDED
    nodes_count = job.nodes.count(",") + 1 if job.nodes else 1
    gpus = job.gpus_per_node * nodes_count if job.gpus_per_node else 0
    return Observation(
        source="squeue",
        state=state,
        exit_code=job.exit_code if ended else None,
        signal=job.signal if ended else None,
        reason=job.reason if pending else None,
        nodes=None if pending else job.nodes,
        partition=job.partition,
        start_time=None if pending else job.start_time,
        end_time=job.end_time if ended else None,
        start_estimate=job.start_time if pending else None,  # Slurm's estimate, once backfill ran
        restart_count=job.restart_count,
        details=_details(None if pending else gpus, job.time_limit_min),
        oom=oom,
    )


def observe_accounting(job: AccountingJob, *, oom: bool = False) -> Observation:
    state = normalize_state(job.state)
    # right after a job ends, 22.05 first answers with a placeholder (no partition); the full
    # record follows within a second or so
    complete = state in _ENDED and bool(job.partition) and job.end_time is not None
    accounting = {
        "state": state,
        "exit_code": job.exit_code,
        "signal": job.signal,
        "elapsed_s": job.elapsed_s,
        "time_limit_min": job.time_limit_min,
        "alloc_cpus": job.alloc_cpus,
        "total_cpu_s": round(job.total_cpu_s, 3),
        "max_rss_bytes": job.max_rss_bytes,
        "req_mem_bytes": job.req_mem_bytes,
        "gpus": job.gpus,
        "nodes": job.nodes,
        "partition": job.partition,
    }
    details = _details(job.gpus, job.time_limit_min)
    if complete:
        details["accounting"] = accounting
    return Observation(
        source="sacct",
        state=state,
        exit_code=job.exit_code if state in _ENDED else None,
        signal=job.signal,
        nodes=job.nodes,
        partition=job.partition,
        start_time=job.start_time,
        end_time=job.end_time if state in _ENDED else None,
        details=details,
        complete=complete,
        oom=oom,
    )


@dataclass
class CyclePlan:
    """What one cycle learned from squeue: observations, and which jobs to ask sacct about."""

    observations: dict[str, Observation] = field(default_factory=dict)  # run id → observation
    sacct_ids: list[str] = field(default_factory=list)  # job keys, deduplicated
    runs_by_key: dict[str, list[Run]] = field(default_factory=dict)
    oom_candidates: list[Run] = field(default_factory=list)  # ended by SIGKILL: read their output


def plan_cycle(runs: Sequence[Run], queue: Sequence[QueueJob]) -> CyclePlan:
    """Match tracked runs to squeue's jobs; runs whose job ended or left the queue go to sacct."""
    plan = CyclePlan()
    index = _queue_index(queue)
    for run in runs:
        key = _run_key(run)
        if key is None:
            continue
        plan.runs_by_key.setdefault(key, []).append(run)
        job = index.get(key)
        if job is None:
            if key not in plan.sacct_ids:
                plan.sacct_ids.append(key)
            continue
        obs = observe_queue(job)
        if obs.state in _ENDED:
            if key not in plan.sacct_ids:
                plan.sacct_ids.append(key)
            if obs.signal == 9:
                plan.oom_candidates.append(run)
        plan.observations[run.id] = obs
    return plan


def accounting_observations(
    plan: CyclePlan, jobs: Sequence[AccountingJob], oom_runs: set[str]
) -> dict[str, Observation]:
    """sacct's records for the plan's runs (run id → observation), preferring them to squeue's
    for ended jobs (they carry the accounting) but keeping squeue's exit code when sacct's JSON
    lost it (22.05 reports 0 for a job that exited 3; the parser gives None)."""
    out: dict[str, Observation] = {}
    for job in jobs:
        for run in plan.runs_by_key.get(job.job_id, ()):
            obs = observe_accounting(job, oom=run.id in oom_runs)
            queued = plan.observations.get(run.id)
            if queued is not None and queued.state not in _ENDED:
                continue  # squeue is fresher about a job that is still alive (e.g. requeued)
            if queued is not None and obs.exit_code is None and queued.exit_code is not None:
                obs = _with(obs, exit_code=queued.exit_code)
            if queued is not None:
                obs = _with(obs, restart_count=queued.restart_count)
            out[run.id] = obs
    return out


def _with(obs: Observation, **changes: Any) -> Observation:
    return dataclasses.replace(obs, **changes)


def shows_oom(path: str | None, scan_bytes: int) -> bool:
    """Whether the tail of a job's output file says it was killed for memory."""
    if not path:
        return False
    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - scan_bytes))
            tail = f.read().decode("utf-8", "replace").lower()
    except OSError:
        return False
    return any(marker in tail for marker in _OOM_MARKERS)


# --------------------------------------------------------------------------- the thread


@dataclass
class CycleResult:
    tracked: int = 0
    changed: int = 0
    calls: int = 0
    error: str | None = None


class Watcher:
    """Polls Slurm for the store's tracked runs on a daemon thread (``start``/``stop``/``wake``)."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        config: WatcherConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_change = on_change  # called (on this thread) with the runs a cycle changed
        self.executor = executor
        self.config = config or WatcherConfig()
        self.budget = CallBudget(self.config.max_calls_per_min, clock)
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.interval = self.config.poll_s
        self.cycles = 0
        self.last_cycle_at: float | None = None
        self.last_error: str | None = None
        self.unknown_since: float | None = None

    # -- control -------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="runyard-slurm-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Run a cycle soon (a job was launched, cancelled or reported by the epilog)."""
        self.interval = self.config.poll_s
        self._wake.set()

    def status(self) -> dict[str, Any]:
        return {
            "executor": self.executor.kind,
            "cycles": self.cycles,
            "last_cycle_at": self.last_cycle_at,
            "interval_s": self.interval,
            "calls_last_minute": self.budget.used(),
            "max_calls_per_min": self.config.max_calls_per_min,
            "last_error": self.last_error,
            "state_unknown_since": self.unknown_since,
        }

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.cycle()
            except Exception:  # never let the thread die: log, back off, go on
                log.exception("watcher cycle failed")
                result = CycleResult(error="internal error")
            if result.error is not None or (result.changed == 0 and result.tracked):
                self.interval = min(self.interval * 1.5, self.config.poll_max_s)
            elif result.changed:
                self.interval = self.config.poll_s
            pause = self.interval if result.tracked or result.error else self.config.poll_max_s
            self._wake.wait(pause)
            self._wake.clear()

    # -- one cycle -----------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any]) -> Any:
        wait = self.budget.wait_s()
        # over the cap: wait (interruptibly) rather than hammer slurmctld
        if wait > 0 and self._stop.wait(wait):
            raise RunyardError("watcher stopping")
        self.budget.spend()
        return fn()

    def cycle(self) -> CycleResult:
        """One pass: one squeue, at most one sacct, every change through the state machine."""
        runs = self.store.slurm_tracked_runs()
        result = CycleResult(tracked=len(runs))
        self.cycles += 1
        self.last_cycle_at = time.time()
        if not runs:
            return result
        try:
            queue = self._call(self.executor.queue)
            result.calls += 1
        except RunyardError as exc:
            return self._degraded(runs, result, f"squeue: {exc}")
        with gc_paused():  # pure work over thousands of small objects: see parse.gc_paused
            plan = plan_cycle(runs, queue)
        oom_runs = {
            run.id for run in plan.oom_candidates if _killed_for_memory(run, self.config.oom_scan_bytes)
        }
        observations = {
            run_id: (_with(obs, oom=True) if run_id in oom_runs else obs)
            for run_id, obs in plan.observations.items()
        }
        sacct_error = None
        if plan.sacct_ids:
            ids = plan.sacct_ids[:MAX_SACCT_IDS]
            try:
                jobs = self._call(lambda: self.executor.accounting(ids))
                result.calls += 1
                for run_id, obs in self._sacct_oom(plan, jobs, oom_runs).items():
                    observations[run_id] = obs
            except RunyardError as exc:
                sacct_error = f"sacct: {exc}"  # slurmdbd down: squeue's view still counts
        touched: list[str] = []
        decisions = [
            (run.id, functools.partial(_noting, touched, run.id, obs=observations[run.id]))
            for run in runs
            if run.id in observations
        ]
        for start in range(0, len(decisions), WRITE_CHUNK):
            try:
                result.changed += self.store.transition_runs(decisions[start : start + WRITE_CHUNK])
            except RunyardError as exc:  # one bad chunk must not stop the others
                log.warning("watcher: could not record Slurm's states: %s", exc)
        if touched and self.on_change is not None:
            self.on_change(list(dict.fromkeys(touched)))
        self._revoke_job_keys(runs, observations)
        unseen = [
            run.id for run in runs if run.id not in observations and run.status not in TERMINAL_STATUSES
        ]
        if sacct_error is not None and unseen:
            self.store.mark_state_unknown(unseen, time.time())
        self.last_error = sacct_error
        self.unknown_since = None if sacct_error is None else (self.unknown_since or time.time())
        result.error = sacct_error
        return result

    def _revoke_job_keys(self, runs: Sequence[Run], observations: dict[str, Observation]) -> None:
        """A launch mints an API key for its job (all tasks of an array share it); once Slurm's
        final record of every run using it is in, nothing of that job can run any more: revoke."""
        finished = {run.id for run in runs if (obs := observations.get(run.id)) is not None and obs.complete}
        if not finished:
            return
        in_use = {run.slurm.get("api_key_id") for run in runs if run.id not in finished}
        for run in runs:
            key_id = run.slurm.get("api_key_id")
            if run.id in finished and isinstance(key_id, str) and key_id not in in_use:
                try:
                    self.store.revoke_api_key(key_id)
                except RunyardError as exc:
                    log.warning("could not revoke job key %s: %s", key_id, exc)
                in_use.add(key_id)  # once is enough

    def _sacct_oom(
        self, plan: CyclePlan, jobs: Sequence[AccountingJob], oom_runs: set[str]
    ) -> dict[str, Observation]:
        extra = set(oom_runs)
        for job in jobs:
            if job.signal == 9:
                for run in plan.runs_by_key.get(job.job_id, ()):
                    if run.id not in extra and _killed_for_memory(run, self.config.oom_scan_bytes):
                        extra.add(run.id)
        return accounting_observations(plan, jobs, extra)

    def _degraded(self, runs: Sequence[Run], result: CycleResult, error: str) -> CycleResult:
        now = time.time()
        if self.unknown_since is None:
            log.warning("Slurm cannot be asked (%s): runs show 'state unknown' until it answers", error)
        self.unknown_since = self.unknown_since or now
        self.last_error = error
        self.store.mark_state_unknown([run.id for run in runs], now)
        result.error = error
        return result


def _decide(run: Run, *, obs: Observation) -> tuple[RunUpdate | None, list[NewEvent]]:
    return apply_observation(run, obs)


def _noting(
    touched: list[str], run_id: str, run: Run, *, obs: Observation
) -> tuple[RunUpdate | None, list[NewEvent]]:
    """``_decide``, noting the runs it changes (for ``on_change``)."""
    update, events = apply_observation(run, obs)
    if update is not None or events:
        touched.append(run_id)
    return update, events


def _killed_for_memory(run: Run, scan_bytes: int) -> bool:
    """Whether the run's stderr or stdout file ends with Slurm's memory-kill message."""
    paths = {run.slurm.get("stderr"), run.slurm.get("stdout")}
    return any(
        shows_oom(path, scan_bytes) for path in paths if isinstance(path, str) and Path(path).is_absolute()
    )
