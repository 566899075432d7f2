from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from runyard.entities import ArtifactCreate, Experiment, RunCreate, RunStatus, RunUpdate
from runyard.errors import AlreadyExists, InvalidInput, NotFound
from runyard.store.sql import SqlStore
from runyard.store.sql.schema import run_params, run_tags


def params_of(store: SqlStore, run_id: str) -> dict[str, tuple[float | None, str | None]]:
    with store.database.read() as conn:
        rows = conn.execute(
            sa.select(run_params.c.key, run_params.c.num_value, run_params.c.text_value).where(
                run_params.c.run_id == run_id
            )
        )
        return {k: (n, t) for k, n, t in rows}


def tags_of(store: SqlStore, run_id: str) -> set[str]:
    with store.database.read() as conn:
        return set(conn.execute(sa.select(run_tags.c.tag).where(run_tags.c.run_id == run_id)).scalars())


def test_create_and_get_run(store: SqlStore, experiment: Experiment) -> None:
    user = store.create_user("alice")
    create = RunCreate(
        experiment_id=experiment.id,
        name=' résumé/run "1" ',
        id="job-42.3_a",
        status=RunStatus.QUEUED,
        user_id=user.id,
        host="node01",
        config={"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}, "nan": math.nan},
        tags=("baseline", "b", "baseline"),
        notes="multi\nline notes",
        gpu_type="A100",
        slurm_job_id="123",
        slurm_array_job_id="120",
        slurm_array_task_id=3,
        slurm_nodes="node[01-04]",
        slurm_partition="gpu",
        slurm_cluster="lab",
    )
    run = store.create_run(create)
    assert run.id == "job-42.3_a" and run.name == 'résumé/run "1"'
    assert run.experiment_id == experiment.id and run.project_id == experiment.project_id
    assert run.status is RunStatus.QUEUED and run.started_at is None
    assert run.tags == ("baseline", "b")
    assert run.config["optimizer"] == {"name": "adam", "betas": [0.9, 0.99]}
    assert math.isnan(run.config["nan"])
    assert (run.slurm_array_task_id, run.slurm_nodes, run.notes) == (3, "node[01-04]", "multi\nline notes")
    got = store.get_run(run.id)
    assert got.config.keys() == run.config.keys() and got.tags == run.tags and got.metrics == {}
    assert params_of(store, run.id) == {
        "lr": (0.1, "0.1"),
        "optimizer.name": (None, "adam"),
        "optimizer.betas": (None, "[0.9, 0.99]"),
        "nan": (None, "NaN"),
    }
    assert tags_of(store, run.id) == {"baseline", "b"}


def test_generated_ids_and_defaults(store: SqlStore, experiment: Experiment) -> None:
    run = store.create_run(RunCreate(experiment_id=experiment.id))
    assert len(run.id) == 32 and run.name == "" and run.status is RunStatus.RUNNING
    assert run.started_at is not None and run.created_at == run.updated_at
    assert run.restart_count == 0 and run.exit_code is None


def test_create_run_errors(store: SqlStore, experiment: Experiment) -> None:
    store.create_run(RunCreate(experiment_id=experiment.id, id="taken"))
    with pytest.raises(AlreadyExists) as err:
        store.create_run(RunCreate(experiment_id=experiment.id, id="taken"))
    assert err.value.field == "id"
    for bad_id in ("", "-lead", "has space", "x" * 65, "slash/no"):
        with pytest.raises(InvalidInput) as err:
            store.create_run(RunCreate(experiment_id=experiment.id, id=bad_id))
        assert err.value.field == "id"
    with pytest.raises(NotFound) as err:
        store.create_run(RunCreate(experiment_id="0" * 32))
    assert err.value.field == "experiment_id"
    cases = {
        "name": RunCreate(experiment_id=experiment.id, name="x" * 201),
        "status": RunCreate(experiment_id=experiment.id, status="bogus"),  # type: ignore[arg-type]
        "tags": RunCreate(experiment_id=experiment.id, tags=("",)),
        "config": RunCreate(experiment_id=experiment.id, config={"f": object()}),
    }
    for field, create in cases.items():
        with pytest.raises(InvalidInput) as err:
            store.create_run(create)
        assert err.value.field == field
    with pytest.raises(NotFound):
        store.create_run(RunCreate(experiment_id=experiment.id, user_id="0" * 32))
    with pytest.raises(NotFound):
        store.get_run("missing")


def test_update_merges(store: SqlStore, experiment: Experiment) -> None:
    run = store.create_run(
        RunCreate(experiment_id=experiment.id, config={"lr": 0.1, "opt": {"name": "sgd"}}, tags=("a",))
    )
    store.update_run(run.id, RunUpdate(summary={"best": 0.5, "keep": 1}))
    updated = store.update_run(
        run.id,
        RunUpdate(
            config={"opt": {"name": "adam"}, "epochs": 3, "lr": None},
            summary={"best": 0.9, "extra": None},
            tags_add=("b", "a"),
            notes="n",
        ),
    )
    assert updated.config == {"lr": None, "opt": {"name": "adam"}, "epochs": 3}
    assert updated.summary == {"best": 0.9, "keep": 1, "extra": None}
    assert updated.tags == ("a", "b") and updated.notes == "n"
    assert updated.updated_at >= run.updated_at and updated.name == run.name
    assert params_of(store, run.id) == {
        "lr": (None, None),
        "opt.name": (None, "adam"),
        "epochs": (3.0, "3"),
    }
    replaced = store.update_run(run.id, RunUpdate(tags=("z",), tags_add=("y",)))
    assert replaced.tags == ("z", "y") and tags_of(store, run.id) == {"z", "y"}
    assert replaced.config == updated.config  # untouched fields stay
    assert store.get_run(run.id) == replaced


def test_update_status_fills_times(store: SqlStore, experiment: Experiment) -> None:
    run = store.create_run(RunCreate(experiment_id=experiment.id, status=RunStatus.QUEUED))
    running = store.update_run(run.id, RunUpdate(status=RunStatus.RUNNING, host="n1", slurm_nodes="n1"))
    assert running.started_at is not None and running.ended_at is None and running.host == "n1"
    done = store.update_run(run.id, RunUpdate(status=RunStatus.FAILED, exit_code=3, restart_count=1))
    assert done.ended_at is not None and done.exit_code == 3 and done.restart_count == 1
    assert done.started_at == running.started_at
    explicit = store.update_run(run.id, RunUpdate(ended_at=123.0, name="renamed"))
    assert explicit.ended_at == 123.0 and explicit.name == "renamed"


def test_update_errors_change_nothing(store: SqlStore, experiment: Experiment) -> None:
    run = store.create_run(RunCreate(experiment_id=experiment.id, config={"a": 1}))
    with pytest.raises(NotFound):
        store.update_run("missing", RunUpdate(name="x"))
    bad = {
        "name": RunUpdate(config={"a": 2}, name="\x00"),
        "restart_count": RunUpdate(config={"a": 2}, restart_count=-1),
        "status": RunUpdate(config={"a": 2}, status="nope"),  # type: ignore[arg-type]
        "started_at": RunUpdate(config={"a": 2}, started_at=math.inf),
    }
    for field, update in bad.items():
        with pytest.raises(InvalidInput) as err:
            store.update_run(run.id, update)
        assert err.value.field == field
    assert store.get_run(run.id) == run
    assert params_of(store, run.id) == {"a": (1.0, "1")}


def test_find_runs_by_slurm_job(store: SqlStore, experiment: Experiment) -> None:
    a = store.create_run(RunCreate(experiment_id=experiment.id, slurm_job_id="500"))
    b = store.create_run(
        RunCreate(
            experiment_id=experiment.id, slurm_job_id="507", slurm_array_job_id="500", slurm_array_task_id=7
        )
    )
    store.create_run(RunCreate(experiment_id=experiment.id, slurm_job_id="999"))
    assert [r.id for r in store.find_runs_by_slurm_job("500")] == [a.id]
    assert [r.id for r in store.find_runs_by_slurm_job("507")] == [b.id]
    assert [r.id for r in store.find_runs_by_slurm_job("500_7")] == [b.id]
    assert store.find_runs_by_slurm_job("1") == []


def test_artifacts(store: SqlStore, run_id: str) -> None:
    art = store.create_artifact(
        run_id,
        ArtifactCreate(
            path="/shared/ckpt/best.pt", kind="checkpoint", size_bytes=10, sha256="AB" * 32, step=5
        ),
    )
    assert art.name == "best.pt" and art.sha256 == "ab" * 32 and not art.stored
    uri = store.create_artifact(run_id, ArtifactCreate(path="s3://bucket/model/", name="m", stored=True))
    assert uri.name == "m" and uri.stored
    assert store.list_artifacts(run_id) == [art, uri]
    assert store.get_artifact(art.id) == art
    with pytest.raises(NotFound):
        store.get_artifact("0" * 32)
    with pytest.raises(NotFound):
        store.create_artifact("missing", ArtifactCreate(path="/x"))
    with pytest.raises(NotFound):
        store.list_artifacts("missing")
    for field, bad in {
        "artifact.path": ArtifactCreate(path=""),
        "artifact.sha256": ArtifactCreate(path="/x", sha256="zz"),
        "artifact.size_bytes": ArtifactCreate(path="/x", size_bytes=-1),
    }.items():
        with pytest.raises(InvalidInput) as err:
            store.create_artifact(run_id, bad)
        assert err.value.field == field
