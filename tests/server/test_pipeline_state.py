"""How a pipeline's steps read from their runs (``pipeline_json``): waiting, never and why."""

from __future__ import annotations

import pytest

from runyard.entities import Pipeline, PipelineStep, Run, RunStatus
from runyard.server.sweeps import pipeline_json


def _pipeline(*steps: tuple[str, tuple[tuple[str, str], ...]]) -> Pipeline:
    return Pipeline(
        id="p",
        experiment_id="e",
        project_id="pr",
        name="pipe",
        created_at=1.0,
        user_id=None,
        spec_text="",
        steps=tuple(
            PipelineStep(name, f"run-{name}", f"{i}", after, ("true",))
            for i, (name, after) in enumerate(steps)
        ),
    )


def _runs(**statuses: RunStatus) -> dict[str, Run]:
    runs = {}
    for name, status in statuses.items():
        code = 1 if status is RunStatus.FAILED else None
        runs[f"run-{name}"] = Run(
            id=f"run-{name}", experiment_id="e", project_id="pr", name=name, status=status,
            created_at=1.0, updated_at=1.0, exit_code=code,
        )  # fmt: skip
    return runs


CHAIN = (("a", ()), ("b", (("a", "ok"),)), ("c", (("b", "ok"),)))


def _states(pipeline: Pipeline, runs: dict[str, Run]) -> dict[str, tuple[str, str | None]]:
    out = pipeline_json(pipeline, runs, detail=True)
    return {s["name"]: (s["state"], s["reason"]) for s in out["steps"]}


def test_a_failed_step_leaves_the_rest_of_the_chain_never_to_run() -> None:
    runs = _runs(a=RunStatus.FINISHED, b=RunStatus.FAILED, c=RunStatus.QUEUED)
    states = _states(_pipeline(*CHAIN), runs)
    assert states["a"] == ("finished", None)
    assert states["b"] == ("failed", "failed (exit code 1)")
    assert states["c"] == ("never", "never runs: b failed and c needs it to succeed (after b:ok)")
    assert pipeline_json(_pipeline(*CHAIN), runs)["state"] == "failed"


def test_never_propagates_and_slurms_cancel_reads_as_never() -> None:
    steps = (*CHAIN, ("d", (("c", "ok"),)))
    runs = _runs(a=RunStatus.FAILED, b=RunStatus.CANCELLED, c=RunStatus.QUEUED, d=RunStatus.QUEUED)
    states = _states(_pipeline(*steps), runs)
    assert states["b"][0] == "never"  # Slurm cancelled it (kill-on-invalid-dep)
    assert states["c"] == ("never", "never runs: b was never run and c needs it to succeed (after b:ok)")
    assert states["d"][0] == "never"


@pytest.mark.parametrize(
    ("when", "upstream", "expected"),
    [
        ("ok", RunStatus.RUNNING, "waiting"),
        ("ok", RunStatus.FINISHED, "queued"),
        ("any", RunStatus.FAILED, "queued"),
        ("notok", RunStatus.FINISHED, "never"),
        ("notok", RunStatus.FAILED, "queued"),
    ],
)
def test_each_edge_kind(when: str, upstream: RunStatus, expected: str) -> None:
    pipeline = _pipeline(("a", ()), ("b", (("a", when),)))
    states = _states(pipeline, _runs(a=upstream, b=RunStatus.QUEUED))
    assert states["b"][0] == expected


def test_a_cancelled_step_with_no_broken_edge_is_cancelled() -> None:
    states = _states(_pipeline(("a", ())), _runs(a=RunStatus.CANCELLED))
    assert states["a"] == ("cancelled", None)
