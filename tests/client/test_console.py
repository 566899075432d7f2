"""Console capture: stdout/stderr lines reach the run with time, host and rank, and the
streams themselves behave exactly as before."""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import runyard
from runyard.client import console
from runyard.client.api import ApiClient
from tests.client.conftest import wait_until
from tests.e2e.conftest import LiveServer
from tests.fakes.server import FakeServer


class Terminal(io.StringIO):
    """A stand-in for the process's real stream: records text and flushes, claims to be a tty."""

    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 99

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "latin-1"


def terminals(monkeypatch: pytest.MonkeyPatch) -> tuple[Terminal, Terminal]:
    """Replace the streams (in the test itself: pytest resets them between setup and call)."""
    out, err = Terminal(), Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setenv("RUNYARD_CAPTURE_CONSOLE", "1")
    return out, err


@pytest.fixture
def context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURMD_NODENAME", "gpu-node-7")
    monkeypatch.setenv("RANK", "0")


def test_the_tee_passes_everything_through_unchanged(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    out, err = terminals(monkeypatch)
    run = start()
    tee = sys.stdout
    assert tee is not out and sys.stderr is not err  # replaced
    assert tee.isatty() and tee.fileno() == 99 and tee.encoding == "latin-1" and tee.closed is False
    text = "plain\nno newline yet"
    assert sys.stdout.write(text) == len(text)
    print(" — done", end="\r\n")
    print("ünïcödé ✓", file=sys.stderr)
    sys.stdout.writelines(["a\n", "b\n"])
    flushes = out.flushes
    print("flushed", flush=True)
    assert out.flushes == flushes + 1  # a flush reaches the original once, nothing more
    run.finish()
    assert sys.stdout is out and sys.stderr is err  # put back
    assert out.getvalue() == "plain\nno newline yet — done\r\na\nb\nflushed\n"
    assert err.getvalue().startswith("ünïcödé ✓\n")  # then finish()'s own line
    assert fake.runs[run.id].lines() == ["plain", "no newline yet — done", "ünïcödé ✓", "a", "b", "flushed"]
    assert [entry[1] for entry in fake.runs[run.id].logs] == ["stdout", "stdout", "stderr"] + ["stdout"] * 3


def test_lines_carry_time_host_and_rank(
    monkeypatch: pytest.MonkeyPatch, context: None, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    terminals(monkeypatch)
    before = time.time()
    run = start()
    print("epoch 1")
    wait_until(lambda: fake.runs[run.id].logs, what="the first line at the server")
    print("epoch 2", file=sys.stderr)
    run.finish()
    (t1, s1, h1, r1, l1), (t2, s2, h2, r2, l2) = fake.runs[run.id].logs
    assert (s1, h1, r1, l1) == ("stdout", "gpu-node-7", 0, "epoch 1")
    assert (s2, h2, r2, l2) == ("stderr", "gpu-node-7", 0, "epoch 2")
    assert before <= t1 <= t2 <= time.time()


def test_every_rank_captures_under_its_own_rank(
    monkeypatch: pytest.MonkeyPatch,
    fake: FakeServer,
    start: Callable[..., runyard.Run],
) -> None:
    terminals(monkeypatch)
    monkeypatch.setenv("RANK", "3")
    run = start(run_id="shared-run")
    run.log({"loss": 1.0})  # still rank 0's business
    print("hello from rank 3")
    result = run.finish()
    assert fake.runs["shared-run"].logs[0][3:] == (3, "hello from rank 3")
    assert fake.runs["shared-run"].metrics == {} and fake.runs["shared-run"].status == "running"
    assert result.points_sent == 0


def test_long_lines_are_cut_and_progress_bars_keep_their_last_state(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    out, _ = terminals(monkeypatch)
    run = start()
    long = "x" * (console.MAX_LINE_CHARS * 3)
    print(long)
    for chunk in range(0, len(long), 1000):  # one long line written in pieces
        sys.stdout.write(long[chunk : chunk + 1000])
    sys.stdout.write("\n")
    for pct in (10, 50, 100):  # what tqdm writes to stderr
        sys.stderr.write(f"\r{pct:3d}%|{'#' * (pct // 10)}")
    sys.stderr.write("\n")
    sys.stdout.write("tail without newline")
    run.finish()
    assert out.getvalue().startswith(long + "\n" + long + "\n")  # the stream itself is not cut
    lines = fake.runs[run.id].lines()
    cut = "x" * console.MAX_LINE_CHARS + console.TRUNCATED
    assert lines == [cut, cut, "100%|##########", "tail without newline"]


def test_the_clients_own_warnings_are_not_captured(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    _, err = terminals(monkeypatch)
    run = start()
    run.log({"loss": "not a number"})
    print("user line", file=sys.stderr)
    run.finish()
    assert "runyard: warning: metric 'loss'" in err.getvalue()  # shown
    assert fake.runs[run.id].lines() == ["user line"]  # not sent


def test_logging_handlers_made_before_init_are_captured_too(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    _, err = terminals(monkeypatch)
    logger = logging.getLogger("runyard-test-console")
    handler = logging.StreamHandler()  # holds the sys.stderr of this moment, like basicConfig
    log_file = io.StringIO()
    other = logging.StreamHandler(log_file)  # another stream: left alone
    monkeypatch.setattr(logger, "handlers", [handler, other])
    monkeypatch.setattr(logger, "propagate", False)
    run = start()
    assert handler.stream is sys.stderr and other.stream is log_file
    logger.warning("from a library logger")
    run.finish()
    assert handler.stream is err  # pointed back
    assert "from a library logger" in err.getvalue() and "from a library logger" in log_file.getvalue()
    assert fake.runs[run.id].lines("stderr") == ["from a library logger"]


def test_capture_is_on_by_default_and_off_with_the_variable_or_argument(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.delenv("RUNYARD_CAPTURE_CONSOLE")
    run = start()
    assert sys.stdout is not out
    print("captured")
    run.finish()
    assert fake.runs[run.id].lines() == ["captured"]

    monkeypatch.setenv("RUNYARD_CAPTURE_CONSOLE", "0")
    run = start()
    assert sys.stdout is out
    print("not captured")
    run.finish()
    assert fake.runs[run.id].lines() == []

    monkeypatch.setenv("RUNYARD_CAPTURE_CONSOLE", "1")
    run = start(capture_console=False)
    assert sys.stdout is out
    run.finish()
    assert out.getvalue() == "captured\nnot captured\n"


def test_a_flood_is_bounded_and_never_blocks_the_training_thread(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    out, err = terminals(monkeypatch)
    run = start()
    fake.gate = threading.Event()  # the server stalls: nothing is confirmed while we print
    total = 60_000

    def flood() -> None:
        for i in range(total):
            print(f"line {i}")

    printer = threading.Thread(target=flood)
    printer.start()
    printer.join(timeout=120)
    assert not printer.is_alive(), "printing waited for the stalled server"
    assert out.getvalue().count("\n") == total  # the stream got every line
    buffer = run._console
    assert buffer is not None
    assert buffer.dropped > 0 and buffer.captured + buffer.dropped == total
    assert buffer.captured < total
    fake.gate.set()
    result = run.finish()
    lines = fake.runs[run.id].lines()
    notes = [line for line in lines if line.startswith("[runyard: ")]
    assert notes and sum(int(n.split()[1].replace(",", "")) for n in notes) == buffer.dropped
    kept = [line for line in lines if not line.startswith("[runyard: ")]
    assert len(kept) == buffer.captured and kept[0] == "line 0"
    numbers = [int(line.split()[1]) for line in kept]
    assert all(a < b for a, b in itertools.pairwise(numbers))  # in order, each once
    assert "console lines not captured" in result.message
    assert "console lines not captured" in err.getvalue()


def test_offline_lines_are_journaled_and_synced_once(
    monkeypatch: pytest.MonkeyPatch, context: None, live_server: LiveServer, tmp_path: Path
) -> None:
    terminals(monkeypatch)
    run = runyard.init(project="console", experiment="offline", mode="offline", flush_interval_s=0.01)
    for i in range(3):
        print(f"offline line {i}")
    print("offline error", file=sys.stderr)
    result = run.finish()
    assert result.journal is not None and b"offline line 2" in result.journal.read_bytes()
    copy = tmp_path / result.journal.name
    copy.write_bytes(result.journal.read_bytes())
    for path in (result.journal, copy):  # the second sync is all duplicates
        synced = runyard.sync(path, url=live_server.url, api_key=live_server.key)
        assert synced.errors == ()
    page = live_server.get(f"/api/v1/runs/{run.id}/console")
    assert [(x["stream"], x["host"], x["rank"], x["line"]) for x in page["lines"]] == [
        ("stdout", "gpu-node-7", 0, "offline line 0"),
        ("stdout", "gpu-node-7", 0, "offline line 1"),
        ("stdout", "gpu-node-7", 0, "offline line 2"),
        ("stderr", "gpu-node-7", 0, "offline error"),
    ]
    assert page["final"] and not page["more"]


def test_lines_reach_a_live_server_and_survive_an_outage(
    monkeypatch: pytest.MonkeyPatch,
    context: None,
    live_server: LiveServer,
    fake: FakeServer,
    start: Callable[..., runyard.Run],
) -> None:
    terminals(monkeypatch)
    run = runyard.init(
        project="console",
        experiment="live",
        url=live_server.url,
        api_key=live_server.key,
        flush_interval_s=0.01,
    )
    api = ApiClient(live_server.url, live_server.key)
    print("hello server")
    first = wait_until(lambda: api.run_console(run.id)["lines"], what="the line at the server")
    assert first[0]["line"] == "hello server" and first[0]["host"] == "gpu-node-7" and first[0]["rank"] == 0
    print("more", file=sys.stderr)
    run.finish()
    page = api.run_console(run.id, stream="stderr")
    assert [x["line"] for x in page["lines"]] == ["more"] and page["final"]
    api.close()

    # the same through an outage of a server that comes back
    other = start()
    fake.down = True
    for i in range(5):
        print(f"during outage {i}")
    wait_until(lambda: other.journal is not None, what="the journal")
    fake.down = False
    assert other.finish().synced
    assert fake.runs[other.id].lines() == [f"during outage {i}" for i in range(5)]


def test_a_stream_replaced_after_init_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    out, _ = terminals(monkeypatch)
    run = start()
    tee = sys.stdout
    elsewhere = io.StringIO()
    with contextlib.redirect_stdout(elsewhere):
        print("redirected")  # not through the tee: not captured
        run.finish()  # sys.stdout is not the tee now: finish leaves it
    assert sys.stdout is tee  # redirect_stdout put the tee back; it only writes through now
    print("after finish")
    assert out.getvalue() == "after finish\n" and elsewhere.getvalue() == "redirected\n"
    assert fake.runs[run.id].lines() == []
    second = start()  # the next run reuses the tee left in place
    assert sys.stdout is tee
    print("second run")
    second.finish()
    assert fake.runs[second.id].lines() == ["second run"]
    assert sys.stdout is out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_writes_through_without_capturing(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    terminals(monkeypatch)
    run = start()
    print("parent before")
    pid = os.fork()
    if pid == 0:  # the child: a data loader worker, say
        code = 0
        try:
            print("child line")
            code = 0 if not console._buffers else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    print("parent after")
    run.finish()
    assert fake.runs[run.id].lines() == ["parent before", "parent after"]
