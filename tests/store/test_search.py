from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from runyard.entities import Experiment, RunCreate, RunQuery, RunStatus, RunUpdate
from runyard.errors import InvalidInput
from runyard.store.sql import SqlStore, search
from runyard.store.sql.schema import runs as runs_table
from tests.store.helpers import cols


@dataclass
class World:
    store: SqlStore
    exp: Experiment
    ids: dict[str, str]  # short name -> run id
    alice: str

    def search(self, *filters: tuple[str, str, object], **kwargs: object) -> list[str]:
        query = RunQuery(experiment_id=self.exp.id, filters=filters, **kwargs)  # type: ignore[arg-type]
        back = {v: k for k, v in self.ids.items()}
        return [back[r.id] for r in self.store.search_runs(query).runs]


@pytest.fixture
def world(store: SqlStore, experiment: Experiment) -> World:
    alice = store.create_user("alice").id
    specs = [
        (
            "r0",
            "resnet-small",
            {"lr": 0.001, "opt": {"name": "adam"}},
            ("baseline",),
            RunStatus.FINISHED,
            [3, 1, 2],
        ),
        (
            "r1",
            "resnet-large",
            {"lr": 0.01, "opt": {"name": "sgd"}},
            ("baseline", "big"),
            RunStatus.RUNNING,
            [5, 0.5],
        ),
        ("r2", "vit", {"lr": 0.1, "opt": {"name": "adam"}}, (), RunStatus.FAILED, None),
        ("r3", "ViT-huge", {"lr": "auto", "opt": {"name": "adamw"}}, (), RunStatus.QUEUED, [math.nan]),
        ("r4", "mlp", {"lr": 1.0}, ("big",), RunStatus.FINISHED, [0.1]),
        ("r5", "100%_sure", {"seed": 1}, (), RunStatus.FINISHED, [2.5]),
    ]
    ids = {}
    for i, (short, name, config, tags, status, losses) in enumerate(specs):
        run = store.create_run(
            RunCreate(
                experiment_id=experiment.id,
                name=name,
                config=config,
                tags=tags,
                status=status,
                user_id=alice if i % 2 else None,
                slurm_job_id=str(70 + i),
            )
        )
        ids[short] = run.id
        if losses is not None:
            store.log_metrics(run.id, {"loss": cols(range(len(losses)), [float(v) for v in losses])})
            store.log_metrics(run.id, {"acc": cols([0], [0.5])})
        with store.database.write() as conn:  # deterministic creation order for the tests
            conn.execute(sa.update(runs_table).where(runs_table.c.id == run.id).values(created_at=1000.0 + i))
    other = store.ensure_experiment("proj", "other")
    store.create_run(RunCreate(experiment_id=other.id, name="elsewhere", config={"lr": 0.01}))
    return World(store, experiment, ids, alice)


ALL_NEWEST_FIRST = ["r5", "r4", "r3", "r2", "r1", "r0"]


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (("status", "=", "running"), ["r1"]),
        (("status", "!=", "finished"), ["r3", "r2", "r1"]),
        (("tags", "=", "baseline"), ["r1", "r0"]),
        (("tags", "!=", "baseline"), ["r5", "r4", "r3", "r2"]),
        (("tags", "~", "BAS"), ["r1", "r0"]),
        (("name", "=", "vit"), ["r2"]),
        (("name", "~", "resnet"), ["r1", "r0"]),
        (("name", "~", "VIT"), ["r3", "r2"]),
        (("name", "~", "%"), ["r5"]),
        (("name", "~", "_s"), ["r5"]),
        (("params.lr", ">=", 0.01), ["r4", "r2", "r1"]),
        (("params.lr", "<", 0.05), ["r1", "r0"]),
        (("params.lr", "=", "0.1"), ["r2"]),
        (("params.lr", "!=", 0.1), ["r4", "r1", "r0"]),
        (("params.lr", "=", "auto"), ["r3"]),
        (("params.opt.name", "=", "adam"), ["r2", "r0"]),
        (("params.opt.name", "~", "ada"), ["r3", "r2", "r0"]),
        (("params.seed", "=", 1), ["r5"]),
        (("metrics.loss", "<", 1), ["r4", "r1"]),
        (("metrics.loss.last", ">", 1.5), ["r5", "r0"]),
        (("metrics.loss.min", "<=", 1), ["r4", "r1", "r0"]),
        (("metrics.loss.max", ">", 4), ["r1"]),
        (("metrics.loss.count", "=", 3), ["r0"]),
        (("metrics.acc", "=", 0.5), ["r5", "r4", "r3", "r1", "r0"]),
        (("created_at", ">=", 1003), ["r5", "r4", "r3"]),
        (("slurm_job_id", "=", "72"), ["r2"]),
        (("id", "!=", "nope"), ALL_NEWEST_FIRST),
    ],
)
@pytest.mark.parametrize("candidates", [1000, 0], ids=["narrowed", "index-walk"])
def test_filters(
    world: World,
    flt: tuple[str, str, object],
    expected: list[str],
    candidates: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both plans: a short candidate list from a selective filter, and walking the sort index."""
    monkeypatch.setattr(search, "CANDIDATES", candidates)
    assert world.search(flt) == expected
    assert world.search(flt, sort="metrics.loss.last", descending=False) == [
        k for k in world.search(sort="metrics.loss.last", descending=False) if k in expected
    ]


def test_filter_matching_nothing(world: World) -> None:
    page = world.store.search_runs(
        RunQuery(experiment_id=world.exp.id, filters=(("params.lr", ">", 99),), with_total=True)
    )
    assert page.runs == () and page.total == 0 and page.next_offset is None


def test_filters_are_anded(world: World) -> None:
    assert world.search(("tags", "=", "big"), ("params.lr", ">", 0.5)) == ["r4"]
    assert world.search(("user_id", "=", world.alice)) == ["r5", "r3", "r1"]
    assert world.search(("user_id", "=", world.alice), ("status", "=", "queued")) == ["r3"]


@pytest.mark.parametrize(
    ("flt", "needle"),
    [
        (("bogus", "=", 1), "params.<key>"),
        (("status", "=~", "x"), "use one of"),
        (("status", "=", "nope"), "running"),
        (("tags", "<", "x"), "does not apply"),
        (("metrics.loss", "~", "1"), "does not apply"),
        (("metrics.loss", "<", "low"), "not a number"),
        (("created_at", ">", "yesterday"), "not a number"),
        (("params.", "=", 1), "params.<key>"),
    ],
)
def test_bad_filters(world: World, flt: tuple[str, str, object], needle: str) -> None:
    with pytest.raises(InvalidInput) as err:
        world.search(flt)
    assert err.value.field == "filter" and needle in err.value.message


@pytest.mark.parametrize(
    ("sort", "descending", "expected"),
    [
        ("metrics.loss.last", False, ["r4", "r1", "r0", "r5", "r3", "r2"]),
        ("metrics.loss", True, ["r5", "r0", "r1", "r4", "r3", "r2"]),
        ("metrics.loss.min", False, ["r4", "r1", "r0", "r5", "r3", "r2"]),
        ("metrics.loss.max", True, ["r1", "r0", "r5", "r4", "r3", "r2"]),
        ("params.lr", False, ["r0", "r1", "r2", "r4", "r3", "r5"]),
        ("params.lr", True, ["r4", "r2", "r1", "r0", "r3", "r5"]),
        ("name", False, ["r5", "r3", "r4", "r1", "r0", "r2"]),
        ("created_at", False, list(reversed(ALL_NEWEST_FIRST))),
        ("created_at", True, ALL_NEWEST_FIRST),
    ],
)
def test_sort_missing_last(world: World, sort: str, descending: bool, expected: list[str]) -> None:
    assert world.search(sort=sort, descending=descending) == expected


def test_sort_ties_break_on_id(world: World) -> None:
    ordered = world.search(sort="metrics.acc", descending=False)
    with_acc = [k for k in ordered if k != "r2"]
    assert [world.ids[k] for k in with_acc] == sorted(world.ids[k] for k in with_acc)
    assert ordered[-1] == "r2"
    status_sorted = world.search(sort="status", descending=False)
    assert status_sorted[0] == "r2" and status_sorted[-1] == "r1"  # failed < finished < queued < running


@pytest.mark.parametrize(
    ("sort", "descending"), [("metrics.loss.last", False), ("params.lr", True), ("name", False)]
)
def test_pages_concatenate_to_the_whole(world: World, sort: str, descending: bool) -> None:
    whole = world.search(sort=sort, descending=descending)
    for limit in (1, 2, 4):
        pages: list[str] = []
        offset: int | None = 0
        while offset is not None:
            query = RunQuery(
                experiment_id=world.exp.id, sort=sort, descending=descending, limit=limit, offset=offset
            )
            page = world.store.search_runs(query)
            assert page.limit == limit and page.offset == offset and page.total is None
            back = {v: k for k, v in world.ids.items()}
            pages += [back[r.id] for r in page.runs]
            offset = page.next_offset
        assert pages == whole
    beyond = world.store.search_runs(RunQuery(experiment_id=world.exp.id, sort=sort, offset=100))
    assert beyond.runs == () and beyond.next_offset is None


def test_total_and_scopes(world: World) -> None:
    page = world.store.search_runs(
        RunQuery(experiment_id=world.exp.id, filters=(("tags", "=", "big"),), limit=1, with_total=True)
    )
    assert page.total == 2 and page.next_offset == 1 and len(page.runs) == 1
    project_wide = world.store.search_runs(RunQuery(project_id=world.exp.project_id, with_total=True))
    assert project_wide.total == 7
    everywhere = world.store.search_runs(RunQuery(filters=(("params.lr", "=", 0.01),)))
    assert {r.name for r in everywhere.runs} == {"resnet-large", "elsewhere"}


def test_page_carries_summaries(world: World) -> None:
    runs = {r.id: r for r in world.store.search_runs(RunQuery(experiment_id=world.exp.id)).runs}
    r0 = runs[world.ids["r0"]]
    assert set(r0.metrics) == {"loss", "acc"} and r0.metrics["loss"].min == 1.0
    assert r0.config == {"lr": 0.001, "opt": {"name": "adam"}} and r0.tags == ("baseline",)
    only = world.store.search_runs(RunQuery(experiment_id=world.exp.id, metric_keys=("acc",))).runs
    assert all(set(r.metrics) <= {"acc"} for r in only)
    none = world.store.search_runs(RunQuery(experiment_id=world.exp.id, metric_keys=())).runs
    assert all(r.metrics == {} for r in none)


def test_bad_paging_and_sort(world: World) -> None:
    for limit in (0, 1001, -1):
        with pytest.raises(InvalidInput) as err:
            world.store.search_runs(RunQuery(limit=limit))
        assert err.value.field == "limit"
    with pytest.raises(InvalidInput) as err:
        world.store.search_runs(RunQuery(offset=-1))
    assert err.value.field == "offset"
    with pytest.raises(InvalidInput) as err:
        world.store.search_runs(RunQuery(sort="colour"))
    assert err.value.field == "sort" and "metrics.<key>" in err.value.message


def test_sort_by_count(world: World) -> None:
    ordered = world.search(sort="metrics.loss.count")
    assert ordered[:2] == ["r0", "r1"] and set(ordered[2:5]) == {"r3", "r4", "r5"} and ordered[5] == "r2"


def test_sort_by_user_and_job_puts_runs_without_them_last(store: SqlStore, experiment: Experiment) -> None:
    ada = store.create_user("ada")
    bob = store.create_user("bob")
    made = store.create_runs(
        [
            RunCreate(experiment_id=experiment.id, name="b", user_id=bob.id, slurm_job_id="20"),
            RunCreate(experiment_id=experiment.id, name="none"),
            RunCreate(experiment_id=experiment.id, name="a", user_id=ada.id, slurm_job_id="10"),
        ]
    )
    by_name = {r.name: r.id for r in made}
    for field, order in (("user_id", sorted([ada.id, bob.id])), ("slurm_job_id", ["10", "20"])):
        for descending in (False, True):
            page = store.search_runs(RunQuery(experiment_id=experiment.id, sort=field, descending=descending))
            values = [getattr(r, field) for r in page.runs]
            assert values[:2] == (order[::-1] if descending else order)
            assert page.runs[-1].id == by_name["none"]  # missing sorts last both ways


def test_sort_by_duration_counts_running_runs_until_now(store: SqlStore, experiment: Experiment) -> None:
    import time

    now = time.time()
    made = store.create_runs(
        [
            RunCreate(experiment_id=experiment.id, name="short", started_at=now - 100),
            RunCreate(experiment_id=experiment.id, name="long", started_at=now - 5000),
            RunCreate(experiment_id=experiment.id, name="running", started_at=now - 1000),
            RunCreate(experiment_id=experiment.id, name="queued", status=RunStatus.QUEUED),
        ]
    )
    ids = {r.name: r.id for r in made}
    store.update_run(ids["short"], RunUpdate(status=RunStatus.FINISHED, ended_at=now - 50))  # 50 s
    store.update_run(ids["long"], RunUpdate(status=RunStatus.FINISHED, ended_at=now - 1000))  # 4000 s
    for descending, order in ((False, ["short", "running", "long"]), (True, ["long", "running", "short"])):
        page = store.search_runs(
            RunQuery(experiment_id=experiment.id, sort="duration", descending=descending)
        )
        assert [r.name for r in page.runs] == [*order, "queued"]  # never started: last both ways
