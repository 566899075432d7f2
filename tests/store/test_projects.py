from __future__ import annotations

import threading

import pytest

from runyard.entities import RunCreate, RunStatus, RunUpdate
from runyard.errors import AlreadyExists, InvalidInput, NotFound
from runyard.store.sql import SqlStore
from tests.store.helpers import cols

ODD_NAMES = ["émile/ü 実験", 'it\'s "quoted"', "a/b\\c", "x" * 200, "100%_done", "DROP TABLE runs;--"]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_names_round_trip_verbatim(store: SqlStore, name: str) -> None:
    project = store.create_project(name, description="d")
    assert store.get_project_by_name(name) == project
    assert store.get_project(project.id).name == name
    exp = store.create_experiment(project.id, name)
    assert store.get_experiment_by_name(project.id, name).id == exp.id
    assert store.ensure_experiment(name, name).id == exp.id


def test_names_are_stripped(store: SqlStore) -> None:
    project = store.create_project("  spaced  ")
    assert project.name == "spaced"
    assert store.ensure_experiment(" spaced", "e ").name == "e"


@pytest.mark.parametrize("bad", ["", "   ", "x" * 201, "tab\there", "new\nline", "nul\x00", "c1\x85c1"])
def test_bad_names_name_the_field(store: SqlStore, bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        store.create_project(bad)
    assert err.value.field == "name"
    project = store.create_project("p")
    with pytest.raises(InvalidInput) as err:
        store.create_experiment(project.id, bad)
    assert err.value.field == "name"
    with pytest.raises(InvalidInput) as err:
        store.ensure_experiment(bad, "e")
    assert err.value.field == "project"
    with pytest.raises(InvalidInput) as err:
        store.ensure_experiment("p", bad)
    assert err.value.field == "experiment"


def test_duplicates(store: SqlStore) -> None:
    project = store.create_project("p")
    with pytest.raises(AlreadyExists) as err:
        store.create_project("p")
    assert err.value.field == "name"
    store.create_experiment(project.id, "e")
    with pytest.raises(AlreadyExists):
        store.create_experiment(project.id, "e")
    other = store.create_project("q")
    assert store.create_experiment(other.id, "e").project_id == other.id  # unique per project


def test_not_found(store: SqlStore) -> None:
    with pytest.raises(NotFound):
        store.get_project("0" * 32)
    with pytest.raises(NotFound):
        store.get_project_by_name("nope")
    with pytest.raises(NotFound):
        store.create_experiment("0" * 32, "e")
    with pytest.raises(NotFound):
        store.get_experiment("0" * 32)
    with pytest.raises(NotFound):
        store.update_experiment("0" * 32, name="x")
    with pytest.raises(NotFound):
        store.list_experiments("0" * 32)
    with pytest.raises(NotFound) as err:
        store.create_project("p", owner_id="0" * 32)
    assert err.value.field == "owner_id"


def test_owner_and_listing(store: SqlStore) -> None:
    alice = store.create_user("alice")
    b = store.create_project("b", owner_id=alice.id)
    a = store.create_project("a")
    assert b.owner_id == alice.id
    assert [p.name for p in store.list_projects()] == ["a", "b"]
    e1 = store.create_experiment(a.id, "one")
    e2 = store.create_experiment(b.id, "two")
    assert [e.id for e in store.list_experiments(a.id)] == [e1.id]
    assert {e.id for e in store.list_experiments()} == {e1.id, e2.id}


def test_update_experiment(store: SqlStore) -> None:
    project = store.create_project("p")
    exp = store.create_experiment(project.id, "e", description="old")
    store.create_experiment(project.id, "taken")
    updated = store.update_experiment(exp.id, description="new")
    assert (updated.name, updated.description) == ("e", "new")
    assert updated.updated_at >= exp.updated_at
    assert store.update_experiment(exp.id, name=" renamed ").name == "renamed"
    assert store.update_experiment(exp.id, name="renamed").name == "renamed"  # same name is fine
    with pytest.raises(AlreadyExists):
        store.update_experiment(exp.id, name="taken")
    with pytest.raises(InvalidInput):
        store.update_experiment(exp.id, name="")


def test_experiment_counters(store: SqlStore) -> None:
    exp = store.ensure_experiment("p", "e")
    fresh = store.get_experiment(exp.id)
    assert (fresh.run_count, fresh.running_count, fresh.queued_count, fresh.last_activity_at) == (
        0,
        0,
        0,
        None,
    )
    statuses = [RunStatus.RUNNING, RunStatus.RUNNING, RunStatus.QUEUED, RunStatus.REQUEUED, RunStatus.CREATED]
    runs = [store.create_run(RunCreate(experiment_id=exp.id, status=s)) for s in statuses]
    last = store.update_run(runs[0].id, RunUpdate(status=RunStatus.FINISHED))
    got = store.get_experiment(exp.id)
    assert (got.run_count, got.running_count, got.queued_count) == (5, 1, 2)
    assert got.last_activity_at == last.updated_at
    listed = {e.id: e for e in store.list_experiments()}[exp.id]
    assert (listed.run_count, listed.running_count, listed.queued_count) == (5, 1, 2)
    assert store.get_experiment_by_name(exp.project_id, "e").run_count == 5


def test_ensure_experiment_is_idempotent_and_race_safe(store: SqlStore) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in range(5):
                results.append(store.ensure_experiment("race", f"e{i}").id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 30 and len(set(results)) == 5
    assert len(store.list_experiments(store.get_project_by_name("race").id)) == 5


def test_experiment_keys_read_the_newest_runs(store: SqlStore) -> None:
    exp = store.ensure_experiment("p", "keys")
    other = store.ensure_experiment("p", "other")
    store.create_run(RunCreate(experiment_id=other.id, config={"elsewhere": 1}, tags=("nope",)))
    old = store.create_run(RunCreate(experiment_id=exp.id, config={"old_param": 1}, tags=("old",)))
    store.log_metrics(old.id, {"old_metric": cols([0], [1.0])})
    for i in range(3):
        run = store.create_run(
            RunCreate(
                experiment_id=exp.id, config={"opt": {"lr": 0.1 * i}, "seed": i}, tags=("base", f"t{i}")
            )
        )
        store.log_metrics(run.id, {"loss": cols([0], [1.0]), "acc": cols([0], [0.5])})

    keys = store.experiment_keys(exp.id)
    assert keys.params == ("old_param", "opt.lr", "seed")
    assert keys.metrics == ("acc", "loss", "old_metric")
    assert keys.tags == ("base", "old", "t0", "t1", "t2")
    assert keys.sampled_runs == 4

    newest = store.experiment_keys(exp.id, sample=3)  # the oldest run falls out of the sample
    assert newest.params == ("opt.lr", "seed")
    assert newest.metrics == ("acc", "loss")
    assert "old" not in newest.tags and newest.sampled_runs == 3

    with pytest.raises(NotFound):
        store.experiment_keys("nope")
