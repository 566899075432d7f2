"""The run state machine: one place that turns evidence into a run's status.

Three sources report on a run, and they disagree in predictable ways:

- the **client** (``runyard.init`` in the training script) and the **job** (the batch script
  that ``runyard launch`` generates) know when the command started and how it exited, but
  die silently when Slurm kills them (time limit, memory, node failure, ``scancel``);
- **Slurm** (the watcher's ``squeue``/``sacct``, the epilog webhook) always has the last word
  on how a job ended, but lags: a job shows RUNNING/COMPLETING for a moment after its command
  has exited, and ``sacct`` first answers with a placeholder record.

The rules, pure functions over a ``Run`` (no I/O, so the watcher, the webhook and the batch
ingest all apply the same ones, inside the store's transaction):

1. Evidence about an older attempt (a lower restart count than the run's) changes nothing.
2. A higher restart count means Slurm requeued the job: the run records ``requeued`` (an
   event), forgets its end time and exit code, and continues as the same run.
3. Slurm's final state (COMPLETED, FAILED, TIMEOUT, CANCELLED, OUT_OF_MEMORY, NODE_FAIL, …)
   wins over whatever the client said; once Slurm's final record with its accounting is in
   (``slurm_done``), the client can no longer change the status of that attempt.
4. Slurm's *non-final* states (PENDING, RUNNING) never undo a final status the client already
   reported for the same attempt: Slurm is just late. Nor does COMPLETED undo ``timeout`` or
   ``requeued`` from the client: the script stopped cleanly at the time-limit warning.
   A ``pruned`` run (its sweep's early-stop rule stopped it, then cancelled its job) stays
   pruned whatever Slurm and the client say after: the job's end is the prune's consequence.
5. Every status change is recorded as an event, with who reported it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from runyard.entities import TERMINAL_STATUSES, Run, RunStatus, RunUpdate

__all__ = [
    "NewEvent",
    "Observation",
    "apply_observation",
    "filter_client_update",
    "normalize_state",
    "status_for_slurm_state",
]

# Slurm job states (22.05 names) to run statuses; None: decided by the exit code.
_FINAL_STATES: dict[str, RunStatus | None] = {
    "COMPLETED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "TIMEOUT": RunStatus.TIMEOUT,
    "DEADLINE": RunStatus.TIMEOUT,
    "CANCELLED": RunStatus.CANCELLED,
    "REVOKED": RunStatus.CANCELLED,
    "OUT_OF_MEMORY": RunStatus.OOM,
    "NODE_FAIL": RunStatus.NODE_FAIL,
    "BOOT_FAIL": RunStatus.NODE_FAIL,
}
_QUEUED_STATES = {"PENDING", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SPECIAL_EXIT"}
_RUNNING_STATES = {"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING", "RESIZING"}
_REQUEUE_STATES = {"REQUEUED", "PREEMPTED"}
_KNOWN_STATES = frozenset(_FINAL_STATES) | _QUEUED_STATES | _RUNNING_STATES | _REQUEUE_STATES


def normalize_state(state: str) -> str:
    """``CANCELLED by 0`` / ``cancelled+`` / ``out of memory`` → ``CANCELLED`` / ``OUT_OF_MEMORY``."""
    if state in _KNOWN_STATES:  # the common case: already Slurm's own word
        return state
    text = state.strip().upper().rstrip("+")
    if text.startswith("CANCELLED"):
        return "CANCELLED"
    return text.replace(" ", "_")


def status_for_slurm_state(
    state: str, *, exit_code: int | None = None, signal: int | None = None, oom: bool = False
) -> RunStatus | None:
    """The run status a Slurm job state means; None for a state that says nothing new.

    ``oom``: the job's output shows it was killed for memory (Slurm's linuxproc accounting
    reports such a job as FAILED with signal 9; only the cgroup plugin says OUT_OF_MEMORY).
    """
    state = normalize_state(state)
    if state in _QUEUED_STATES:
        return RunStatus.QUEUED
    if state in _RUNNING_STATES:
        return RunStatus.RUNNING
    if state in _REQUEUE_STATES:
        return RunStatus.REQUEUED
    if state not in _FINAL_STATES:
        return None
    status = _FINAL_STATES[state]
    if oom and status in (RunStatus.FAILED, RunStatus.CANCELLED) and signal == 9:
        return RunStatus.OOM
    if status is RunStatus.FINISHED and exit_code not in (None, 0):
        return RunStatus.FAILED
    return status


@dataclass(frozen=True, slots=True)
class Observation:
    """What Slurm says about one job (or array task), from ``squeue``, ``sacct`` or an epilog."""

    source: str  # "squeue", "sacct", "epilog"
    state: str
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    nodes: str | None = None
    partition: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    start_estimate: float | None = None
    restart_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)  # gpus, time_limit_min, accounting, …
    complete: bool = False  # sacct's full record (not its first placeholder): accounting is final
    oom: bool = False


@dataclass(frozen=True, slots=True)
class NewEvent:
    source: str
    kind: str
    status: str | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _status_event(source: str, status: RunStatus, message: str = "", **data: Any) -> NewEvent:
    return NewEvent(source=source, kind="status", status=str(status), message=message, data=data)


# what a run whose job came back for another attempt forgets about the last one
_REQUEUE_CLEARS = ("exit_code", "ended_at")


def _requeue(run: Run, restart_count: int, source: str) -> tuple[dict[str, Any], list[NewEvent]]:
    """The fields (besides ``_REQUEUE_CLEARS``) and event of a run whose job came back for
    attempt ``restart_count``."""
    values: dict[str, Any] = {"restart_count": restart_count, "slurm_done": False}
    event = _status_event(
        source,
        RunStatus.REQUEUED,
        f"requeued (restart {restart_count}); the run continues",
        restart_count=restart_count,
        previous=run.status.value,
    )
    return values, [event]


def _update(values: dict[str, Any], clear: list[str]) -> RunUpdate | None:
    if not values and not clear:
        return None
    return RunUpdate(**values, clear=tuple(clear))


def apply_observation(run: Run, obs: Observation) -> tuple[RunUpdate | None, list[NewEvent]]:
    """The update and events that ``obs`` implies for ``run`` (None, [] when nothing changes)."""
    values: dict[str, Any] = {}
    events: list[NewEvent] = []
    current = run.status
    done = run.slurm_done
    clear: list[str] = []
    if obs.restart_count is not None and obs.restart_count < run.restart_count:
        return None, []  # an older attempt
    if obs.restart_count is not None and obs.restart_count > run.restart_count:
        requeued, events = _requeue(run, obs.restart_count, "slurm")
        clear += _REQUEUE_CLEARS
        values.update(requeued)
        current, done = RunStatus.REQUEUED, False
        values["status"] = RunStatus.REQUEUED
    if done:
        return _update(values, clear), events

    state = normalize_state(obs.state)
    status = status_for_slurm_state(state, exit_code=obs.exit_code, signal=obs.signal, oom=obs.oom)
    if state != run.slurm_state:
        values["slurm_state"] = state
    if run.state_unknown_since is not None:
        clear.append("state_unknown_since")
    if obs.partition and obs.partition != run.slurm_partition:
        values["slurm_partition"] = obs.partition
    if obs.nodes and obs.nodes != run.slurm_nodes:
        values["slurm_nodes"] = obs.nodes
    details = {k: v for k, v in obs.details.items() if run.slurm.get(k) != v}

    if status is RunStatus.QUEUED:
        if current in TERMINAL_STATUSES:
            status = None  # Slurm is late; the attempt already ended
        else:
            if obs.reason != run.pending_reason:
                if obs.reason:
                    values["pending_reason"] = obs.reason
                else:
                    clear.append("pending_reason")
            if obs.start_estimate != run.start_estimate:
                if obs.start_estimate:
                    values["start_estimate"] = obs.start_estimate
                else:
                    clear.append("start_estimate")
    elif status is RunStatus.RUNNING:
        if current in TERMINAL_STATUSES:
            status = None
        else:
            clear += [f for f in ("pending_reason", "start_estimate") if getattr(run, f) is not None]
            if obs.start_time and run.started_at is None:
                values["started_at"] = obs.start_time
    elif status is RunStatus.REQUEUED:
        pass  # the requeue itself is recorded when the restart count moves
    elif status is not None and current is RunStatus.PRUNED:
        status = None  # the sweep stopped it; how the cancelled job ended changes nothing
        if obs.exit_code is not None and obs.exit_code != run.exit_code:
            values["exit_code"] = obs.exit_code
        if obs.end_time and run.ended_at is None:
            values["ended_at"] = obs.end_time
        if obs.source == "sacct" and obs.complete:
            values["slurm_done"] = True
    elif status is RunStatus.FINISHED and current in (RunStatus.TIMEOUT, RunStatus.REQUEUED):
        status = None  # the script stopped early at the time-limit warning: Slurm saw a clean exit
        if obs.source == "sacct" and obs.complete:
            values["slurm_done"] = True
    elif status is not None:  # final
        clear += [f for f in ("pending_reason", "start_estimate") if getattr(run, f) is not None]
        if obs.exit_code is not None and obs.exit_code != run.exit_code:
            values["exit_code"] = obs.exit_code
        if obs.end_time and (run.ended_at is None or "ended_at" in clear):
            values["ended_at"] = obs.end_time
            clear = [c for c in clear if c != "ended_at"]
        if obs.start_time and run.started_at is None:
            values["started_at"] = obs.start_time
        if obs.source == "sacct" and obs.complete:
            values["slurm_done"] = True
    if details:
        values["slurm"] = details
    reason_changed = values.get("pending_reason") is not None and status is RunStatus.QUEUED
    if reason_changed and status is current:  # a new reason to wait is history worth keeping
        events.append(NewEvent(source="slurm", kind="pending", message=f"pending: {obs.reason}"))
    if status is not None and status is not RunStatus.REQUEUED and status is not current:
        values["status"] = status
        message = f"Slurm: {state}"
        if obs.reason and status is RunStatus.QUEUED:
            message += f" ({obs.reason})"
        if obs.exit_code is not None and status in TERMINAL_STATUSES:
            message += f", exit code {obs.exit_code}"
        events.append(_status_event("slurm" if obs.source != "epilog" else "epilog", status, message))
    return _update(values, clear), events


_STATUS_FIELDS = ("status", "exit_code", "ended_at")


def filter_client_update(run: Run, update: RunUpdate, source: str) -> tuple[RunUpdate, list[NewEvent]]:
    """``update`` as the client or job script sent it, minus what the rules refuse, plus events.

    ``source`` is ``client``, ``job`` or ``user``. Runs without a Slurm job take the client's
    word (rule 1 and the requeue rule still apply through ``restart_count``).
    """
    changes: dict[str, Any] = {}
    events: list[NewEvent] = []
    clear = list(update.clear)
    done = run.slurm_done
    attempt = update.restart_count
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 0:
        attempt = None  # not an attempt number: the store's validation names the field
    if attempt is not None and attempt < run.restart_count:
        changes = {name: None for name in (*_STATUS_FIELDS, "restart_count")}
        return dataclasses.replace(update, **changes), []
    newer = attempt is not None and attempt > run.restart_count
    if newer:
        assert attempt is not None
        requeued, events = _requeue(run, attempt, source)
        clear += _REQUEUE_CLEARS
        changes.update(requeued)
        done = False
    status = update.status
    if status is not None and run.status is RunStatus.PRUNED:
        status = None  # the sweep stopped it: the client's word on how it ended changes nothing
    elif status is not None and run.slurm_job_id is not None and not newer:
        if done:
            status = None  # Slurm's final word on this attempt is in
        elif run.status in TERMINAL_STATUSES and status not in TERMINAL_STATUSES:
            status = None  # a late "running" after the end
    elif (
        status is not None
        and run.slurm_job_id is None
        and run.status in TERMINAL_STATUSES
        and status not in TERMINAL_STATUSES
    ):
        clear += ["exit_code", "ended_at"]  # a resumed run outside Slurm
    if status is None and update.status is not None:
        changes.update({name: None for name in _STATUS_FIELDS})
    elif status is not None and (status is not run.status or newer):
        message = f"exit code {update.exit_code}" if update.exit_code is not None else ""
        events.append(_status_event(source, status, message))
    if clear != list(update.clear):
        changes["clear"] = tuple(dict.fromkeys(c for c in clear if getattr(update, c, None) is None))
    return dataclasses.replace(update, **changes), events
