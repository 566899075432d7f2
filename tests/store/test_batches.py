from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from runyard.entities import (
    ArtifactCreate,
    Batch,
    Experiment,
    RunCreate,
    RunStatus,
    RunUpdate,
)
from runyard.errors import InvalidInput, NotFound
from runyard.store.sql import SqlStore
from tests.store.helpers import cols

WRITER = "writer-0001"


def test_same_seq_applies_once(store: SqlStore, run_id: str) -> None:
    batch = Batch(writer=WRITER, seq=1, metrics={"loss": cols([0, 1, 2], [3.0, 2.0, 1.0])})
    first = store.apply_batch(run_id, batch)
    assert (first.run_id, first.seq, first.duplicate, first.points) == (run_id, 1, False, 3)
    again = store.apply_batch(run_id, batch)
    assert (again.duplicate, again.points) == (True, 0)
    assert store.metric_series(run_id, "loss").values.tolist() == [3.0, 2.0, 1.0]
    other_writer = store.apply_batch(run_id, Batch(writer="writer-0002", seq=1, metrics=batch.metrics))
    next_seq = store.apply_batch(run_id, Batch(writer=WRITER, seq=2, metrics=batch.metrics))
    assert not other_writer.duplicate and not next_seq.duplicate
    assert store.metric_summaries(run_id)[0].count == 9


def test_batch_creates_run_by_names(store: SqlStore) -> None:
    alice = store.create_user("alice")
    create = RunCreate(experiment_id="", name="first", config={"lr": 0.1}, tags=("t",), user_id=alice.id)
    batch = Batch(
        writer=WRITER,
        seq=1,
        run=create,
        project="digits",
        experiment="mlp",
        metrics={"acc": cols([0], [0.5])},
        update=RunUpdate(summary={"best": 0.5}, tags_add=("x",)),
        artifacts=(ArtifactCreate(path="/shared/ckpt.pt", kind="checkpoint"),),
    )
    result = store.apply_batch("offline-run-1", batch)
    assert result.points == 1 and not result.duplicate
    run = store.get_run("offline-run-1")
    exp = store.get_experiment(run.experiment_id)
    assert exp.name == "mlp" and store.get_project(exp.project_id).name == "digits"
    assert store.get_project(exp.project_id).owner_id == alice.id
    assert run.name == "first" and run.config == {"lr": 0.1} and run.tags == ("t", "x")
    assert run.summary == {"best": 0.5} and run.user_id == alice.id
    assert run.metrics["acc"].last == 0.5
    assert [a.path for a in store.list_artifacts(run.id)] == ["/shared/ckpt.pt"]
    # a second writer's first batch also carries `run`: it does not create anything new
    second = store.apply_batch(
        "offline-run-1", Batch(writer="writer-0002", seq=1, run=create, project="digits", experiment="mlp")
    )
    assert not second.duplicate
    assert store.get_run("offline-run-1").config == {"lr": 0.1}
    assert store.get_experiment(exp.id).run_count == 1


def test_batch_creates_run_by_experiment_id(store: SqlStore, experiment: Experiment) -> None:
    batch = Batch(writer=WRITER, seq=1, run=RunCreate(experiment_id=experiment.id, id="job-7"))
    assert store.apply_batch("job-7", batch).points == 0
    assert store.get_run("job-7").experiment_id == experiment.id
    with pytest.raises(InvalidInput) as err:
        store.apply_batch(
            "job-8", Batch(writer=WRITER, seq=1, run=RunCreate(experiment_id=experiment.id, id="x"))
        )
    assert err.value.field == "run.id"
    with pytest.raises(InvalidInput) as err:
        store.apply_batch("job-8", Batch(writer=WRITER, seq=1, run=RunCreate(experiment_id="")))
    assert err.value.field == "experiment"
    with pytest.raises(NotFound):
        store.apply_batch("job-8", Batch(writer=WRITER, seq=1, run=RunCreate(experiment_id="0" * 32)))


def test_batch_run_moves_waiting_run_to_running(store: SqlStore, experiment: Experiment) -> None:
    queued = store.create_run(RunCreate(experiment_id=experiment.id, status=RunStatus.REQUEUED))
    done = store.create_run(RunCreate(experiment_id=experiment.id, status=RunStatus.FINISHED))
    create = RunCreate(experiment_id=experiment.id, name="ignored")
    store.apply_batch(queued.id, Batch(writer=WRITER, seq=1, run=create))
    store.apply_batch(done.id, Batch(writer=WRITER, seq=1, run=create))
    running = store.get_run(queued.id)
    assert running.status is RunStatus.RUNNING and running.started_at is not None
    assert running.name == queued.name  # `run` is otherwise ignored for an existing run
    assert store.get_run(done.id).status is RunStatus.FINISHED
    store.apply_batch(queued.id, Batch(writer=WRITER, seq=2, update=RunUpdate(status=RunStatus.REQUEUED)))
    store.apply_batch(queued.id, Batch(writer=WRITER, seq=3))  # no `run`: status untouched
    assert store.get_run(queued.id).status is RunStatus.REQUEUED


def test_unknown_run_without_create_is_not_found(store: SqlStore, experiment: Experiment) -> None:
    batch = Batch(writer=WRITER, seq=1, metrics={"x": cols([0], [1.0])})
    with pytest.raises(NotFound):
        store.apply_batch("not-yet", batch)
    # nothing was marked applied: the same seq works once the run exists
    store.create_run(RunCreate(experiment_id=experiment.id, id="not-yet"))
    assert store.apply_batch("not-yet", batch).points == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"update": RunUpdate(status="bogus")},  # type: ignore[arg-type]
        {"update": RunUpdate(tags_add=("",))},
        {"artifacts": (ArtifactCreate(path="/ok"), ArtifactCreate(path=""))},
        {"metrics": {"x": cols([0], [1.0]), "bad\n": cols([0], [1.0])}},
    ],
)
def test_failing_batch_changes_nothing(
    store: SqlStore, experiment: Experiment, bad: dict[str, object]
) -> None:
    create = RunCreate(experiment_id="", name="n")
    batch = Batch(
        writer=WRITER,
        seq=1,
        run=create,
        project="new-project",
        experiment="new-exp",
        metrics={"x": cols([0, 1], [1.0, 2.0])},
        update=RunUpdate(summary={"a": 1}),
    )
    with pytest.raises(InvalidInput):
        store.apply_batch("r1", Batch(**{**_fields(batch), **bad}))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        store.get_run("r1")
    with pytest.raises(NotFound):
        store.get_project_by_name("new-project")
    # the good version of the same batch (same seq) still applies, once
    assert store.apply_batch("r1", batch).points == 2
    assert store.apply_batch("r1", batch).duplicate


def _fields(batch: Batch) -> dict[str, object]:
    return {name: getattr(batch, name) for name in Batch.__dataclass_fields__}


def test_failing_batch_on_existing_run_changes_nothing(store: SqlStore, run_id: str) -> None:
    store.apply_batch(run_id, Batch(writer=WRITER, seq=1, metrics={"x": cols([0], [1.0])}))
    before = store.get_run(run_id)
    bad = Batch(
        writer=WRITER,
        seq=2,
        metrics={"x": cols([1, 2], [5.0, 6.0]), "y": cols([0], [1.0])},
        update=RunUpdate(config={"a": 1}, restart_count=-1),
    )
    with pytest.raises(InvalidInput):
        store.apply_batch(run_id, bad)
    assert store.get_run(run_id) == before
    assert store.metric_series(run_id, "x").values.tolist() == [1.0]


def test_writer_and_seq_are_checked(store: SqlStore, run_id: str) -> None:
    for writer, seq, field in (("short", 1, "writer"), ("bad writer!", 1, "writer"), (WRITER, 0, "seq")):
        with pytest.raises(InvalidInput) as err:
            store.apply_batch(run_id, Batch(writer=writer, seq=seq))
        assert err.value.field == field
    with pytest.raises(InvalidInput) as err:
        store.apply_batch("bad id!", Batch(writer=WRITER, seq=1))
    assert err.value.field == "run_id"


def test_concurrent_writers(store: SqlStore, make_store: Callable[..., SqlStore], run_id: str) -> None:
    """8 threads (and a second store on the same database) write at once: no lock errors,
    every point stored exactly once, replays detected."""
    other = make_store()
    errors: list[BaseException] = []
    per_thread, batches = 50, 20

    def worker(t: int) -> None:
        target = store if t % 2 else other
        try:
            for seq in range(1, batches + 1):
                steps = range((seq - 1) * per_thread, seq * per_thread)
                metrics = {
                    f"mine/{t}": cols(steps, [float(s) for s in steps]),
                    "shared": cols(steps, [float(t)] * per_thread),
                }
                batch = Batch(writer=f"writer-{t:04d}", seq=seq, metrics=metrics)
                target.apply_batch(run_id, batch)
                assert target.apply_batch(run_id, batch).duplicate
        except BaseException as exc:  # collected and asserted in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    summaries = {s.key: s for s in store.metric_summaries(run_id)}
    assert summaries["shared"].count == 8 * per_thread * batches
    for t in range(8):
        series = store.metric_series(run_id, f"mine/{t}")
        assert series.values.tolist() == [float(s) for s in range(per_thread * batches)]
    shared = store.metric_series(run_id, "shared")
    assert sorted(shared.values.tolist()) == sorted(
        float(t) for t in range(8) for _ in range(per_thread * batches)
    )


def test_concurrent_replays_of_one_batch(store: SqlStore, run_id: str) -> None:
    batch = Batch(writer=WRITER, seq=1, metrics={"x": cols(range(100), [1.0] * 100)})
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def send() -> None:
        barrier.wait()
        results.append(store.apply_batch(run_id, batch).duplicate)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] + [True] * 5
    assert store.metric_summaries(run_id)[0].count == 100
