"""SIGUSR1 / SIGTERM: run.should_stop, on_preempt callbacks, checkpoints, exit status 143, and
the status a stopped run ends with (timeout, requeued, cancelled, or none under Slurm)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

import runyard
from tests.client.conftest import wait_until
from tests.fakes.server import FakeServer

Start = Callable[..., runyard.Run]


@pytest.fixture(autouse=True)
def _handlers_restored() -> Iterator[None]:
    """Every test leaves the process's signal handlers as it found them."""
    before = {s: signal.getsignal(s) for s in (signal.SIGUSR1, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        assert signal.getsignal(s) is handler, f"{signal.Signals(s).name} handler not restored"


def checkpoint(tmp_path: Path, name: str = "ckpt.pt") -> Path:
    path = tmp_path / name
    path.write_bytes(b"weights")
    return path


def test_usr1_sets_should_stop_runs_callbacks_once_and_records_the_checkpoint(
    fake: FakeServer, start: Start, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run = start()
    calls: list[str] = []
    ckpt = checkpoint(tmp_path)

    @run.on_preempt
    def save() -> Path:
        calls.append("save")
        return ckpt

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("disk full")

    run.on_preempt(broken)
    for step in range(5):
        run.log({"loss": 1.0 / (step + 1)})
    assert not run.should_stop and run.stop_reason is None

    os.kill(os.getpid(), signal.SIGUSR1)
    assert run.should_stop and run.stop_reason == "time_limit"
    assert calls == ["save", "broken"]
    os.kill(os.getpid(), signal.SIGUSR1)  # a second warning: callbacks already ran
    assert calls == ["save", "broken"]
    run.log({"loss": 0.1})  # USR1 does not stop the script: it finishes its step
    run.finish()

    stored = fake.runs[run.id]
    assert stored.status == "timeout"  # never "finished" after the time-limit warning
    assert stored.steps("loss") == [0, 1, 2, 3, 4, 5]
    assert [(a["path"], a["kind"], a["step"]) for a in stored.artifacts] == [(str(ckpt), "checkpoint", 4)]
    assert "disk full" in capfd.readouterr().err


def test_usr1_under_a_requeueing_launch_ends_requeued(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Start
) -> None:
    monkeypatch.setenv("RUNYARD_REQUEUE", "1")
    run = start()
    os.kill(os.getpid(), signal.SIGUSR1)
    run.finish()
    assert fake.runs[run.id].status == "requeued"


def test_a_callback_registered_after_usr1_runs_on_the_following_sigterm(
    fake: FakeServer, start: Start
) -> None:
    run = start()
    calls: list[str] = []
    run.on_preempt(lambda: calls.append("early"))
    os.kill(os.getpid(), signal.SIGUSR1)
    run.on_preempt(lambda: calls.append("late"))
    with pytest.raises(SystemExit):
        os.kill(os.getpid(), signal.SIGTERM)
    assert calls == ["early", "late"]
    assert run.stop_reason == "terminated"


def test_sigterm_flushes_then_exits_143_and_reports_cancelled_outside_slurm(
    fake: FakeServer, start: Start, tmp_path: Path
) -> None:
    run = start(flush_interval_s=60)  # nothing leaves before the signal forces it
    ckpt = checkpoint(tmp_path)
    run.on_preempt(lambda: ckpt)
    for step in range(100):
        run.log({"loss": float(step)})
    with pytest.raises(SystemExit) as exit_info:
        os.kill(os.getpid(), signal.SIGTERM)
    assert exit_info.value.code == 143
    stored = fake.runs[run.id]
    assert stored.steps("loss") == list(range(100))  # flushed before exiting
    assert stored.status == "cancelled" and stored.exit_code == 143
    assert [a["kind"] for a in stored.artifacts] == ["checkpoint"]
    assert run.finish().synced  # already finished by the handler: the same result


def test_sigterm_under_slurm_sends_no_status(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Start
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    run = start()
    run.log({"loss": 1.0})
    with pytest.raises(SystemExit):
        os.kill(os.getpid(), signal.SIGTERM)
    stored = fake.runs[run.id]
    assert stored.values("loss") == [1.0]
    assert stored.status == "running" and stored.exit_code is None and stored.ended_at is None


def test_sigterm_in_the_middle_of_finish_lets_finish_complete(fake: FakeServer, start: Start) -> None:
    guard = signal.signal(signal.SIGTERM, lambda signum, frame: None)  # never kill pytest itself
    try:
        sigterm_during_finish(fake, start)
    finally:
        signal.signal(signal.SIGTERM, guard)


def sigterm_during_finish(fake: FakeServer, start: Start) -> None:
    run = start()
    run.log({"a": 1.0})
    fake.gate = threading.Event()  # the server stalls: finish() waits for it
    calls: list[str] = []
    run.on_preempt(lambda: calls.append("saved"))

    def interrupt() -> None:
        wait_until(lambda: run._finishing_thread and fake.batch_posts >= 2, what="finish() waiting")
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: run.should_stop, what="the handler")
        assert fake.gate is not None
        fake.gate.set()

    helper = threading.Thread(target=interrupt)
    helper.start()
    result = run.finish()  # neither cut short by SystemExit nor deadlocked on its own lock
    helper.join(30)
    assert result.synced and calls == ["saved"] and run.stop_reason == "terminated"
    assert fake.runs[run.id].values("a") == [1.0] and fake.runs[run.id].status == "finished"


def test_leaving_a_with_block_after_a_signal_is_not_a_failure(fake: FakeServer, start: Start) -> None:
    with pytest.raises(SystemExit), start() as run:
        os.kill(os.getpid(), signal.SIGUSR1)
        raise SystemExit(0)  # the script saved and left because run.should_stop
    assert fake.runs[run.id].status == "timeout"


def test_handlers_come_back_on_finish_and_an_earlier_handler_is_still_called(
    fake: FakeServer, start: Start
) -> None:
    seen: list[int] = []

    def theirs(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGUSR1, theirs)
    try:
        run = start()
        assert signal.getsignal(signal.SIGUSR1) is not theirs
        os.kill(os.getpid(), signal.SIGUSR1)
        assert run.should_stop and seen == [signal.SIGUSR1]
        run.finish()
        assert signal.getsignal(signal.SIGUSR1) is theirs
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("how", ["argument", "env"])
def test_signal_handling_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, start: Start, how: str) -> None:
    before = signal.getsignal(signal.SIGTERM)
    if how == "env":
        monkeypatch.setenv("RUNYARD_HANDLE_SIGNALS", "0")
        run = start()
    else:
        run = start(handle_signals=False)
    assert signal.getsignal(signal.SIGTERM) is before
    run.finish()


def test_init_off_the_main_thread_installs_nothing_and_works(fake: FakeServer, start: Start) -> None:
    before = signal.getsignal(signal.SIGTERM)
    box: list[runyard.Run] = []
    thread = threading.Thread(target=lambda: box.append(start()))
    thread.start()
    thread.join(30)
    run = box[0]
    assert signal.getsignal(signal.SIGTERM) is before and not run.should_stop
    run.log({"a": 1.0})
    run.finish()
    assert fake.runs[run.id].status == "finished"


CHILD = """
import os, sys, time
from pathlib import Path
import runyard

run = runyard.init(project="p", experiment="e", run_id=sys.argv[1], flush_interval_s=0.05)
ckpt = Path(sys.argv[2])
saves = []

def save():
    saves.append(1)
    ckpt.write_text(f"saves={len(saves)}")
    return ckpt

run.on_preempt(save)
print("ready", flush=True)
step = 0
while not (sys.argv[3] == "usr1" and run.should_stop):
    run.log({"loss": 1.0 / (step + 1)})
    step += 1
    time.sleep(0.001)
run.log({"final": float(len(saves))})
"""


def run_child(fake: FakeServer, tmp_path: Path, kind: str, extra_env: dict[str, str]) -> tuple[int, str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(CHILD))
    with fake.serve_http() as url:
        env = {**os.environ, "RUNYARD_URL": url, "RUNYARD_API_KEY": "good-key", **extra_env}
        proc = subprocess.Popen(
            [sys.executable, str(script), "child-run", str(tmp_path / "ckpt.txt"), kind],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        wait_until(lambda: fake.runs.get("child-run") and fake.runs["child-run"].values("loss"), 30, "points")
        proc.send_signal(signal.SIGUSR1 if kind == "usr1" else signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_a_script_stopped_by_sigterm_exits_143_after_saving(fake: FakeServer, tmp_path: Path) -> None:
    code, err = run_child(fake, tmp_path, "term", {})
    assert code == 143, err
    stored = fake.runs["child-run"]
    assert (tmp_path / "ckpt.txt").read_text() == "saves=1"
    assert stored.status == "cancelled" and stored.exit_code == 143
    assert [a["kind"] for a in stored.artifacts] == ["checkpoint"]


def test_a_script_warned_by_usr1_finishes_its_step_and_ends_timeout(fake: FakeServer, tmp_path: Path) -> None:
    code, err = run_child(fake, tmp_path, "usr1", {})
    assert code == 0, err
    stored = fake.runs["child-run"]
    assert stored.values("final") == [1.0]  # logged after the signal, callback ran once
    assert stored.status == "timeout"


def test_a_requeued_slurm_job_stopped_by_sigterm_leaves_the_status_to_slurm(
    fake: FakeServer, tmp_path: Path
) -> None:
    code, err = run_child(fake, tmp_path, "term", {"SLURM_JOB_ID": "99", "RUNYARD_REQUEUE": "1"})
    assert code == 143, err
    stored = fake.runs["child-run"]
    assert stored.status == "running" and stored.exit_code is None
    assert stored.values("loss")  # what was buffered got out


def in_forked_child(body: Callable[[], int]) -> int:
    """Run ``body`` in a forked child; its return value (or the signal that ended it, negated)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            code = body()
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def test_forked_children_do_not_act_for_the_parents_run(start: Start, spool: Path) -> None:
    run = start()
    calls: list[str] = []
    run.on_preempt(lambda: calls.append("parent"))

    def usr1_then_own_run() -> int:
        os.kill(os.getpid(), signal.SIGUSR1)  # a data loader worker warned by scancel --signal
        if run.should_stop or calls:
            return 1
        child = runyard.init(project="p", experiment="e", mode="offline", spool_dir=spool)
        os.kill(os.getpid(), signal.SIGUSR1)
        ok = child.should_stop and not run.should_stop
        child.finish()
        return 0 if ok else 2

    assert in_forked_child(usr1_then_own_run) == 0
    assert in_forked_child(lambda: os.kill(os.getpid(), signal.SIGTERM) or 0) == -signal.SIGTERM
    assert not run.should_stop and calls == []
    run.finish()
