"""The server goes away, answers badly or slowly: no point is lost, none is stored twice."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import runyard
from runyard.errors import NotFound, Unauthorized
from tests.client.conftest import wait_until
from tests.fakes.server import FakeServer

Start = Callable[..., runyard.Run]


def log_steps(run: runyard.Run, n: int, first: int = 0) -> None:
    for step in range(first, first + n):
        run.log({"a": float(step), "b": -float(step)}, step=step)


def assert_once_in_order(fake: FakeServer, run_id: str, n: int) -> None:
    stored = fake.runs[run_id]
    for key, sign in (("a", 1.0), ("b", -1.0)):
        assert stored.steps(key) == list(range(n)), key
        assert stored.values(key) == [sign * s for s in range(n)], key


def journals(spool: Path) -> list[Path]:
    return sorted(spool.glob("*.journal")) if spool.exists() else []


def test_server_down_at_init_then_back_replays_the_journal_once(
    fake: FakeServer, start: Start, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.down = True
    run = start()  # no exception: a warning and the journal instead
    assert "Saving batches to" in capsys.readouterr().err
    log_steps(run, 500)
    wait_until(lambda: journals(spool), what="the journal")
    assert run.journal is not None
    fake.down = False
    log_steps(run, 500, first=500)
    wait_until(lambda: not journals(spool), what="the replayed journal to be deleted")
    result = run.finish()
    assert result.synced and result.points_journaled == 0 and result.journal is None
    assert result.points_sent == 2000
    assert_once_in_order(fake, run.id, 1000)
    assert fake.runs[run.id].status == "finished"


def test_flaky_server_failing_every_other_request_stores_each_point_once(
    fake: FakeServer, start: Start, spool: Path
) -> None:
    fake.flaky_every = 2
    run = start()
    for chunk in range(10):
        posts = fake.batch_posts
        log_steps(run, 300, first=chunk * 300)
        wait_until(lambda: fake.batch_posts > posts, what="a batch post")  # noqa: B023
    result = run.finish()
    assert result.synced
    assert_once_in_order(fake, run.id, 3000)
    assert not journals(spool)


def test_lost_answers_are_resent_and_deduplicated(fake: FakeServer, start: Start) -> None:
    fake.lose_answer_every = 3  # applied on the server, but the client never hears so
    run = start()
    for chunk in range(10):
        posts = fake.batch_posts
        log_steps(run, 100, first=chunk * 100)
        wait_until(lambda: fake.batch_posts > posts, what="a batch post")  # noqa: B023
    assert run.finish().synced
    assert_once_in_order(fake, run.id, 1000)
    assert fake.duplicates > 0


def test_5xx_is_retried(fake: FakeServer, start: Start) -> None:
    run = start()
    fake.fail_next, fake.fail_status = 3, 503
    log_steps(run, 100)
    assert run.finish().synced
    assert_once_in_order(fake, run.id, 100)


def test_wrong_key_at_init_raises_unauthorized(fake: FakeServer, start: Start, spool: Path) -> None:
    with pytest.raises(Unauthorized) as info:
        start(api_key="wrong")
    assert "RUNYARD_API_KEY" in info.value.message
    assert not journals(spool)


def test_unknown_experiment_at_init_raises_the_servers_error(fake: FakeServer, start: Start) -> None:
    fake.reject = lambda b: (404, "experiment 'x' not found") if "run" in b else None
    with pytest.raises(NotFound):
        start(experiment_id="x")


def test_key_revoked_mid_run_keeps_the_journal_and_warns_once(
    fake: FakeServer, start: Start, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = start()
    log_steps(run, 100)
    wait_until(lambda: len(fake.runs[run.id].values("a")) == 100)
    fake.api_keys = {"another-key"}
    log_steps(run, 100, first=100)
    log_steps(run, 100, first=200)
    result = run.finish()
    assert not result.synced and result.journal is not None and result.journal.exists()
    assert result.points_journaled == 400 and "API key" in result.message
    assert "runyard sync" in result.message
    assert capsys.readouterr().err.count("refused the API key (HTTP 401") == 1
    # Later, with a good key, the journal uploads and the run is complete.
    fake.api_keys = {"good-key"}
    synced = runyard.sync(result.journal, api_key="good-key", _transport=fake.transport())
    assert synced.errors == () and synced.points == 400
    assert_once_in_order(fake, run.id, 300)
    assert fake.runs[run.id].status == "finished"


def test_rejected_batch_goes_to_the_rejected_file_never_dropped(
    fake: FakeServer, start: Start, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.reject = lambda b: (400, "metric key 'bad' is reserved") if "bad" in b.get("metrics", {}) else None
    run = start()
    run.log({"a": 0.0, "b": 0.0}, step=0)
    wait_until(lambda: fake.runs[run.id].values("a"))
    run.log({"bad": 1.0}, step=1)
    wait_until(lambda: fake.batch_posts >= 3)
    log_steps(run, 10, first=2)
    result = run.finish()
    assert result.synced  # nothing is waiting to be sent: the refused batch is kept aside
    assert "rejected" in result.message
    (rejected,) = spool.glob(f"{run.id}.*.journal.rejected")
    assert str(rejected) in result.message
    lines = [json.loads(line) for line in rejected.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["status"] == 400 and "reserved" in lines[0]["error"]
    assert lines[0]["batch"]["metrics"]["bad"]["values"] == [1.0]
    assert "rejected a batch" in capsys.readouterr().err
    assert fake.runs[run.id].steps("a") == [0, *range(2, 12)]


def test_payload_too_large_splits_the_batch(fake: FakeServer, start: Start) -> None:
    run = start(flush_interval_s=5)
    fake.max_body = 2000
    log_steps(run, 400)
    assert run.finish().synced
    assert_once_in_order(fake, run.id, 400)
    assert len(fake.runs[run.id].writers) > 1  # the pieces travel as <writer>-<seq>


def test_stalled_server_spills_to_the_journal_with_bounded_memory(
    fake: FakeServer, start: Start, spool: Path
) -> None:
    run = start(max_buffer_points=1000)
    gate = fake.gate = threading.Event()
    try:
        log_steps(run, 10_000)  # 20,000 points, 20x the buffer, while the server is stuck
        wait_until(lambda: journals(spool), what="spill to the journal")
        sender = run._sender
        assert sender is not None and sender.peak_buffered <= 1000
    finally:
        gate.set()
    result = run.finish()
    assert result.synced
    assert_once_in_order(fake, run.id, 10_000)
    assert not journals(spool)


def test_server_down_at_finish_leaves_a_journal_that_sync_uploads(
    fake: FakeServer,
    start: Start,
    spool: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT_S", "0.3")  # it was up recently: finish retries that long
    run = start()
    log_steps(run, 100)
    wait_until(lambda: len(fake.runs[run.id].values("a")) == 100)
    fake.down = True
    log_steps(run, 200, first=100)
    wait_until(lambda: journals(spool))
    result = run.finish()
    assert not result.synced and result.journal is not None
    assert result.points_sent == 200 and result.points_journaled == 400
    assert "server unreachable" in result.message and f"runyard sync {result.journal}" in result.message
    assert result.message in capsys.readouterr().err
    fake.down = False
    synced = runyard.sync(spool, api_key="good-key", _transport=fake.transport())
    assert synced.files == (result.journal,) and synced.errors == ()
    assert_once_in_order(fake, run.id, 300)
    assert fake.runs[run.id].status == "finished"


def test_server_back_during_finish_is_waited_for(fake: FakeServer, start: Start, spool: Path) -> None:
    run = start()
    fake.fail_next, fake.fail_status = 10, 503  # answers, but badly, for a little while
    log_steps(run, 100)
    result = run.finish()
    assert result.synced
    assert_once_in_order(fake, run.id, 100)


def test_finish_gives_up_after_the_timeout(
    fake: FakeServer, start: Start, spool: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNYARD_FINISH_TIMEOUT_S", "0.3")
    run = start()
    fake.fail_next, fake.fail_status = 10**9, 503
    log_steps(run, 50)
    result = run.finish()
    assert not result.synced and result.points_journaled == 100 and result.journal is not None


def test_offline_mode_never_touches_the_network(fake: FakeServer, start: Start, spool: Path) -> None:
    run = start(mode="offline")
    log_steps(run, 100)
    result = run.finish()
    assert fake.requests == []
    assert not result.synced and result.points_journaled == 200 and "offline" in result.message
    synced = runyard.sync(result.journal, api_key="good-key", _transport=fake.transport())  # type: ignore[arg-type]
    assert synced.points == 200
    assert_once_in_order(fake, run.id, 100)


KILLED_ATTEMPT = """
import json, os, signal, sys, time
import runyard
from runyard.client.journal import JournalReader

run = runyard.init(project="p", experiment="e", run_id=sys.argv[1], url=sys.argv[2], flush_interval_s=0.01)
for step in range(100):
    run.log({"a": float(step), "b": -float(step)}, step=step)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    if run.journal is not None:
        batches = [json.loads(p) for _, _, p in JournalReader(run.journal)]
        if sum(len(c["values"]) for b in batches for c in b.get("metrics", {}).values()) == 200:
            break
    time.sleep(0.01)
os.kill(os.getpid(), signal.SIGKILL)  # the node dies; Slurm requeues the job
"""


def test_a_requeued_job_uploads_what_its_killed_attempt_journaled(
    fake: FakeServer, start: Start, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    r = subprocess.run(
        [sys.executable, "-c", KILLED_ATTEMPT, "requeued-run", dead],
        env={**os.environ},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == -9, r.stderr
    (earlier,) = journals(spool)
    run = start(run_id="requeued-run")  # the second attempt, same run id, server reachable
    log_steps(run, 100, first=100)
    assert run.finish().synced
    assert_once_in_order(fake, "requeued-run", 200)
    assert not earlier.exists() and Path(f"{earlier}.synced").exists()
    assert "earlier attempt of run requeued-run" in capsys.readouterr().err


def test_unwritable_spool_keeps_batches_in_memory_until_the_server_is_back(
    fake: FakeServer, start: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_dir = tmp_path / "spool-is-a-file"
    not_a_dir.write_text("")
    fake.down = True
    run = start(spool_dir=not_a_dir)
    log_steps(run, 100)
    wait_until(lambda: "cannot write the journal" in capsys.readouterr().err, what="the journal warning")
    fake.down = False
    log_steps(run, 100, first=100)
    result = run.finish()
    assert result.synced and result.points_sent == 400
    assert_once_in_order(fake, run.id, 200)
