"""The run state machine: who wins when client, job script and Slurm disagree."""

from __future__ import annotations

import dataclasses

import pytest

from runyard.entities import Run, RunStatus, RunUpdate
from runyard.lifecycle import (
    Observation,
    apply_observation,
    filter_client_update,
    normalize_state,
    status_for_slurm_state,
)


def make_run(**changes: object) -> Run:
    base = Run(
        id="r1",
        experiment_id="e",
        project_id="p",
        name="n",
        status=RunStatus.QUEUED,
        created_at=1.0,
        updated_at=1.0,
        slurm_job_id="42",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "kwargs", "expected"),
    [
        ("PENDING", {}, RunStatus.QUEUED),
        ("RUNNING", {}, RunStatus.RUNNING),
        ("COMPLETING", {}, RunStatus.RUNNING),
        ("COMPLETED", {"exit_code": 0}, RunStatus.FINISHED),
        ("FAILED", {"exit_code": 3}, RunStatus.FAILED),
        ("FAILED", {"signal": 9, "oom": True}, RunStatus.OOM),
        ("FAILED", {"signal": 9}, RunStatus.FAILED),
        ("CANCELLED by 0", {}, RunStatus.CANCELLED),
        ("CANCELLED+", {}, RunStatus.CANCELLED),
        ("TIMEOUT", {}, RunStatus.TIMEOUT),
        ("OUT_OF_MEMORY", {}, RunStatus.OOM),
        ("NODE_FAIL", {}, RunStatus.NODE_FAIL),
        ("REQUEUED", {}, RunStatus.REQUEUED),
        ("WEIRD", {}, None),
    ],
)
def test_slurm_states(state: str, kwargs: dict, expected: RunStatus | None) -> None:
    assert status_for_slurm_state(state, **kwargs) is expected


def test_normalize_state() -> None:
    assert normalize_state("cancelled+") == "CANCELLED"
    assert normalize_state("out of memory") == "OUT_OF_MEMORY"


def test_pending_with_reason_and_estimate_then_running() -> None:
    run = make_run(status=RunStatus.CREATED)
    update, events = apply_observation(
        run, Observation(source="squeue", state="PENDING", reason="Resources", start_estimate=500.0)
    )
    assert update is not None
    assert update.status is RunStatus.QUEUED and update.pending_reason == "Resources"
    assert update.start_estimate == 500.0 and update.slurm_state == "PENDING"
    assert [e.status for e in events] == ["queued"]
    queued = make_run(status=RunStatus.QUEUED, pending_reason="Resources", start_estimate=500.0)
    update, events = apply_observation(
        queued, Observation(source="squeue", state="RUNNING", nodes="n1", start_time=600.0)
    )
    assert update is not None and update.status is RunStatus.RUNNING
    assert set(update.clear) == {"pending_reason", "start_estimate"}
    assert update.slurm_nodes == "n1" and update.started_at == 600.0


def test_nothing_new_changes_nothing() -> None:
    run = make_run(status=RunStatus.RUNNING, slurm_state="RUNNING", slurm_nodes="n1")
    assert apply_observation(run, Observation(source="squeue", state="RUNNING", nodes="n1")) == (None, [])


def test_slurm_final_state_wins_over_the_client() -> None:
    run = make_run(status=RunStatus.FINISHED, exit_code=0)
    update, events = apply_observation(run, Observation(source="squeue", state="CANCELLED", end_time=9.0))
    assert update is not None and update.status is RunStatus.CANCELLED
    assert events[0].source == "slurm" and events[0].status == "cancelled"


def test_late_running_does_not_undo_the_clients_end() -> None:
    run = make_run(status=RunStatus.FINISHED, exit_code=0)
    update, events = apply_observation(run, Observation(source="squeue", state="COMPLETING"))
    assert events == [] and (update is None or update.status is None)


def test_sacct_complete_record_closes_tracking_placeholder_does_not() -> None:
    run = make_run(status=RunStatus.RUNNING)
    placeholder = Observation(source="sacct", state="COMPLETED", exit_code=0, end_time=5.0)
    update, _ = apply_observation(run, placeholder)
    assert update is not None and update.status is RunStatus.FINISHED and update.slurm_done is None
    full = dataclasses.replace(placeholder, complete=True, details={"accounting": {"elapsed_s": 3}})
    update, _ = apply_observation(run, full)
    assert update is not None and update.slurm_done is True
    assert update.slurm == {"accounting": {"elapsed_s": 3}}


def test_requeue_keeps_the_same_run_and_counts_restarts() -> None:
    run = make_run(status=RunStatus.NODE_FAIL, exit_code=1, ended_at=5.0, slurm_done=True)
    update, events = apply_observation(
        run, Observation(source="squeue", state="PENDING", reason="BeginTime", restart_count=1)
    )
    assert update is not None
    assert update.restart_count == 1 and update.slurm_done is False
    assert {"exit_code", "ended_at"} <= set(update.clear)
    assert update.status is RunStatus.QUEUED
    assert [e.status for e in events] == ["requeued", "queued"]


def test_older_attempt_is_ignored() -> None:
    run = make_run(status=RunStatus.RUNNING, restart_count=2)
    assert apply_observation(run, Observation(source="squeue", state="FAILED", restart_count=1)) == (None, [])
    update, events = filter_client_update(run, RunUpdate(status=RunStatus.FAILED, restart_count=1), "client")
    assert update.status is None and events == []


def test_client_cannot_change_slurms_final_word() -> None:
    run = make_run(status=RunStatus.TIMEOUT, slurm_done=True)
    update, events = filter_client_update(run, RunUpdate(status=RunStatus.FINISHED, exit_code=0), "client")
    assert update.status is None and update.exit_code is None and events == []


def test_client_status_is_taken_while_slurm_is_silent() -> None:
    run = make_run(status=RunStatus.RUNNING)
    update, events = filter_client_update(run, RunUpdate(status=RunStatus.FAILED, exit_code=3), "job")
    assert update.status is RunStatus.FAILED and update.exit_code == 3
    assert events[0].source == "job" and events[0].status == "failed"


def test_client_start_of_a_new_attempt_records_the_requeue() -> None:
    run = make_run(status=RunStatus.TIMEOUT, restart_count=0, slurm_done=True, exit_code=0)
    update, events = filter_client_update(run, RunUpdate(status=RunStatus.RUNNING, restart_count=1), "job")
    assert update.status is RunStatus.RUNNING and update.restart_count == 1
    assert "exit_code" in update.clear and update.slurm_done is False
    assert [e.status for e in events] == ["requeued", "running"]


def test_runs_without_slurm_take_the_clients_word() -> None:
    run = make_run(status=RunStatus.FINISHED, slurm_job_id=None, exit_code=0, ended_at=3.0)
    update, events = filter_client_update(run, RunUpdate(status=RunStatus.RUNNING), "client")
    assert update.status is RunStatus.RUNNING and {"exit_code", "ended_at"} <= set(update.clear)
    assert [e.status for e in events] == ["running"]


def test_clean_exit_after_the_time_limit_warning_stays_timeout() -> None:
    run = make_run(status=RunStatus.TIMEOUT)
    update, events = apply_observation(
        run, Observation(source="sacct", state="COMPLETED", exit_code=0, end_time=9.0, complete=True)
    )
    assert update is not None and update.status is None and update.slurm_done is True and events == []


def test_a_pruned_run_stays_pruned_whatever_slurm_and_the_client_say() -> None:
    run = make_run(status=RunStatus.PRUNED, ended_at=5.0, slurm_job_id="42_3")
    update, events = apply_observation(
        run, Observation(source="sacct", state="CANCELLED by 0", exit_code=0, end_time=6.0, complete=True)
    )
    assert update is not None and update.status is None and update.slurm_done is True
    assert not [e for e in events if e.kind == "status"]
    filtered, events = filter_client_update(run, RunUpdate(status=RunStatus.FINISHED, exit_code=0), "client")
    assert filtered.status is None and filtered.exit_code is None and events == []
