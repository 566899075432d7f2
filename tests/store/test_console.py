"""Console lines (``run_logs``): stored with their batch, exactly once; listed and paged by id."""

from __future__ import annotations

import pytest

from runyard.entities import Batch, LogLine, RunCreate
from runyard.errors import InvalidInput, NotFound
from runyard.store.sql import SqlStore
from tests.store.helpers import T0, cols

WRITER = "writer-0001"


def lines(
    *texts: str, stream: str = "stdout", host: str | None = "n1", rank: int | None = 0
) -> tuple[LogLine, ...]:
    return tuple(
        LogLine(time=T0 + i, stream=stream, line=t, host=host, rank=rank) for i, t in enumerate(texts)
    )


def test_lines_are_stored_with_their_batch_exactly_once(store: SqlStore, run_id: str) -> None:
    batch = Batch(writer=WRITER, seq=1, metrics={"loss": cols([0], [1.0])}, logs=lines("a", "b"))
    first = store.apply_batch(run_id, batch)
    assert (first.points, first.lines) == (1, 2)
    again = store.apply_batch(run_id, batch)
    assert again.duplicate and again.lines == 0
    got = store.list_log_lines(run_id)
    assert [(x.time, x.stream, x.host, x.rank, x.line) for x in got] == [
        (T0, "stdout", "n1", 0, "a"),
        (T0 + 1, "stdout", "n1", 0, "b"),
    ]
    assert got[0].id < got[1].id


def test_lines_of_ranks_and_streams_interleave_in_arrival_order(store: SqlStore, run_id: str) -> None:
    store.apply_batch(run_id, Batch(writer=WRITER, seq=1, logs=lines("r0 out")))
    store.apply_batch(
        run_id, Batch(writer="writer-0002", seq=1, logs=lines("r1 err", stream="stderr", rank=1))
    )
    store.apply_batch(run_id, Batch(writer=WRITER, seq=2, logs=lines("r0 err", stream="stderr")))
    assert [x.line for x in store.list_log_lines(run_id)] == ["r0 out", "r1 err", "r0 err"]
    stderr = store.list_log_lines(run_id, stream="stderr")
    assert [(x.rank, x.line) for x in stderr] == [(1, "r1 err"), (0, "r0 err")]
    assert [x.line for x in store.list_log_lines(run_id, stream="stdout")] == ["r0 out"]


def test_paging_by_after_id_and_the_newest_lines(store: SqlStore, run_id: str) -> None:
    texts = [f"line {i}" for i in range(25)]
    store.apply_batch(run_id, Batch(writer=WRITER, seq=1, logs=lines(*texts)))
    seen: list[str] = []
    after = 0
    while True:
        page = store.list_log_lines(run_id, after_id=after, limit=10)
        if not page:
            break
        seen += [x.line for x in page]
        after = page[-1].id
    assert seen == texts
    assert [x.line for x in store.list_log_lines(run_id, limit=3, newest=True)] == texts[-3:]
    all_lines = store.list_log_lines(run_id, limit=100)
    assert store.list_log_lines(run_id, after_id=all_lines[-1].id) == []


def test_unknown_run_and_bad_arguments(store: SqlStore, run_id: str) -> None:
    with pytest.raises(NotFound):
        store.list_log_lines("no-such-run")
    for kwargs, field in (
        ({"stream": "stdin"}, "stream"),
        ({"after_id": -1}, "after_id"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_001}, "limit"),
    ):
        with pytest.raises(InvalidInput) as err:
            store.list_log_lines(run_id, **kwargs)  # type: ignore[arg-type]
        assert err.value.field == field


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (LogLine(time=T0, stream="stdin", line="x"), "logs[1].stream"),
        (LogLine(time=float("nan"), stream="stdout", line="x"), "logs[1].time"),
        (LogLine(time=T0, stream="stdout", line="x" * 16_385), "logs[1].line"),
        (LogLine(time=T0, stream="stdout", line="x", host="h" * 256), "logs[1].host"),
        (LogLine(time=T0, stream="stdout", line="x", rank=-1), "logs[1].rank"),
    ],
)
def test_a_bad_line_rejects_the_whole_batch(store: SqlStore, run_id: str, entry: LogLine, field: str) -> None:
    batch = Batch(writer=WRITER, seq=1, metrics={"loss": cols([0], [1.0])}, logs=(*lines("good"), entry))
    with pytest.raises(InvalidInput) as err:
        store.apply_batch(run_id, batch)
    assert err.value.field == field
    assert store.list_log_lines(run_id) == [] and store.metric_summaries(run_id) == []
    assert not store.apply_batch(run_id, Batch(writer=WRITER, seq=1)).duplicate  # the mark rolled back


def test_text_any_database_takes(store: SqlStore, run_id: str) -> None:
    odd = ("nul\x00byte", "bad \udcff bytes", "ünïcödé ✓ 日本", "")
    store.apply_batch(run_id, Batch(writer=WRITER, seq=1, logs=lines(*odd, host=None, rank=None)))
    got = store.list_log_lines(run_id)
    assert [x.line for x in got] == ["nul\ufffdbyte", "bad ? bytes", "ünïcödé ✓ 日本", ""]
    assert got[0].host is None and got[0].rank is None


def test_a_batch_with_lines_creates_its_run_and_touches_it(store: SqlStore, run_id: str) -> None:
    exp = store.get_run(run_id).experiment_id
    batch = Batch(writer=WRITER, seq=1, run=RunCreate(experiment_id=exp, name="x"), logs=lines("first"))
    assert store.apply_batch("new-run-from-lines", batch).lines == 1
    assert [x.line for x in store.list_log_lines("new-run-from-lines")] == ["first"]
    before = store.get_run(run_id).updated_at
    store.apply_batch(run_id, Batch(writer=WRITER, seq=1, logs=lines("activity")))
    assert store.get_run(run_id).updated_at >= before
