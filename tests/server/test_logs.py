"""``GET /api/v1/runs/{id}/logs`` and ``/events`` over a real SQLite store and real files."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from runyard.config import Settings
from runyard.entities import RunCreate, RunStatus, RunUpdate
from runyard.lifecycle import NewEvent
from runyard.server.app import create_app
from runyard.store.base import Store
from tests.server.conftest import assert_error


@pytest.fixture
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared storage for job output: outside the server's data directory."""
    return tmp_path_factory.mktemp("shared storage")


@pytest.fixture
def make_run(store: Store, admin_key: str):
    exp = store.ensure_experiment("proj", "exp")
    owner = store.get_user_by_name("admin")

    def make(slurm: dict, *, job: str | None = "101", **kw) -> str:
        run = store.create_run(
            RunCreate(experiment_id=exp.id, name="r", user_id=owner.id, slurm_job_id=job, slurm=slurm, **kw)
        )
        return run.id

    return make


def logs(api: TestClient, run_id: str, **params) -> dict:
    r = api.get(f"/api/v1/runs/{run_id}/logs", params=params)
    assert r.status_code == 200, r.text
    return r.json()


def texts(body: dict) -> list[str]:
    return [line["text"] for line in body["lines"]]


def test_whole_lines_only_and_follow_by_offset(api: TestClient, make_run, shared: Path) -> None:
    out = shared / "job 101.out"  # a space in the path
    out.write_bytes(b"epoch 1\nepoch 2\nepo")
    run_id = make_run({"stdout": str(out), "stderr": str(shared / "job.err")})

    first = logs(api, run_id)
    assert texts(first) == ["epoch 1", "epoch 2"]  # the partial line waits
    assert [line["offset"] for line in first["lines"]] == [0, 8]
    assert first["next_offset"] == 16 and first["size"] == 19
    assert first["eof"] is True  # the rest is a partial line: a follower pauses before asking again
    assert logs(api, run_id, limit_bytes=10)["eof"] is False  # more whole lines to read at once
    assert first["stream"] == "stdout" and first["path"] == str(out.resolve())
    assert first["final"] is False and first["same_file"] is False and first["run_status"] == "running"

    with out.open("ab") as f:
        f.write(b"ch 3\nepoch 4\n")
    second = logs(api, run_id, offset=first["next_offset"])
    assert texts(second) == ["epoch 3", "epoch 4"] and second["eof"] is True
    third = logs(api, run_id, offset=second["next_offset"])
    assert third["lines"] == [] and third["next_offset"] == second["next_offset"] and third["eof"] is True


def test_an_ended_run_gives_its_last_partial_line(
    api: TestClient, store: Store, make_run, shared: Path
) -> None:
    out = shared / "a.out"
    out.write_bytes(b"done\nno newline at the end")
    run_id = make_run({"stdout": str(out)})
    assert texts(logs(api, run_id)) == ["done"]
    store.update_run(run_id, RunUpdate(status=RunStatus.FINISHED))
    body = logs(api, run_id)
    assert texts(body) == ["done", "no newline at the end"]
    assert body["final"] is True and body["eof"] is True


def test_small_windows_long_lines_and_progress_bars(api: TestClient, make_run, shared: Path) -> None:
    out = shared / "b.out"
    out.write_bytes(b"x" * 50 + b"\n" + b" 10%\r 50%\r100%\n" + "ünï\n".encode())
    run_id = make_run({"stdout": str(out)})
    body = logs(api, run_id, limit_bytes=20)  # a line longer than the window comes in pieces
    assert texts(body) == ["x" * 20] and body["next_offset"] == 20
    seen, offset = [], 0
    for _ in range(20):
        body = logs(api, run_id, offset=offset, limit_bytes=20)
        seen += texts(body)
        offset = body["next_offset"]
        if body["eof"]:
            break
    assert "".join(seen[:3]) == "x" * 50 and seen[3:] == ["100%", "ünï"]


def test_tail(api: TestClient, make_run, shared: Path) -> None:
    out = shared / "c.out"
    out.write_text("".join(f"line {i}\n" for i in range(1000)) + "partial")
    run_id = make_run({"stdout": str(out)})
    body = logs(api, run_id, tail=3)
    assert texts(body) == ["line 997", "line 998", "line 999"]
    assert body["next_offset"] == out.stat().st_size - len("partial")  # follow from there
    small = logs(api, run_id, tail=500, limit_bytes=100)  # the window bounds a tail too
    assert texts(small)[-1] == "line 999" and len(small["lines"]) < 20
    assert logs(api, run_id, tail=0)["lines"] == []


def test_file_rewritten_by_a_requeued_job_is_read_again(api: TestClient, make_run, shared: Path) -> None:
    out = shared / "d.out"
    out.write_text("attempt 0 line 1\nattempt 0 line 2\n")
    run_id = make_run({"stdout": str(out)})
    end = logs(api, run_id)["next_offset"]
    out.write_text("attempt 1\n")  # Slurm truncates the output file when the job starts again
    body = logs(api, run_id, offset=end)
    assert body["reset"] is True and body["offset"] == 0 and texts(body) == ["attempt 1"]


def test_stdout_and_stderr_in_one_file(api: TestClient, make_run, shared: Path) -> None:
    both = shared / "both.log"
    both.write_text("out\nerr\n")
    run_id = make_run({"stdout": str(both), "stderr": str(both)})
    for stream in ("stdout", "stderr"):
        body = logs(api, run_id, stream=stream)
        assert body["same_file"] is True and texts(body) == ["out", "err"]


def test_separate_stderr(api: TestClient, make_run, shared: Path) -> None:
    (shared / "e.out").write_text("to stdout\n")
    (shared / "e.err").write_text("Traceback\n")
    run_id = make_run({"stdout": str(shared / "e.out"), "stderr": str(shared / "e.err")})
    assert texts(logs(api, run_id, stream="stderr")) == ["Traceback"]
    assert texts(logs(api, run_id)) == ["to stdout"]


def test_array_tasks_read_their_own_files(api: TestClient, make_run, shared: Path) -> None:
    ids = []
    for task in (0, 1):
        out = shared / f"arr_7_{task}.out"
        out.write_text(f"task {task}\n")
        ids.append(
            make_run({"stdout": str(out)}, job=f"7_{task}", slurm_array_job_id="7", slurm_array_task_id=task)
        )
    assert [texts(logs(api, i)) for i in ids] == [["task 0"], ["task 1"]]


def test_slurm_placeholders_are_filled_from_the_run(api: TestClient, make_run, shared: Path) -> None:
    (shared / "train-7_3.out").write_text("from task 3\n")
    run_id = make_run(
        {"stdout": str(shared / "%x-%A_%a.out"), "job_name": "train"},
        job="7_3",
        slurm_array_job_id="7",
        slurm_array_task_id=3,
    )
    assert texts(logs(api, run_id)) == ["from task 3"]


def test_no_file_yet_is_a_404_naming_the_stream(api: TestClient, make_run, shared: Path) -> None:
    run_id = make_run({"stdout": str(shared / "not-yet.out")})
    err = assert_error(api.get(f"/api/v1/runs/{run_id}/logs"), 404, "not_found", "stream")
    assert "not-yet.out" in err["message"] and "pending" in err["message"]
    err = assert_error(api.get(f"/api/v1/runs/{run_id}/logs?stream=stderr"), 404, "not_found", "stream")
    assert "no stderr file" in err["message"]
    bare = make_run({}, job=None)
    assert_error(api.get(f"/api/v1/runs/{bare}/logs"), 404, "not_found", "stream")
    assert_error(api.get("/api/v1/runs/nope/logs"), 404, "not_found")


def test_bad_parameters_name_the_field(api: TestClient, make_run, shared: Path) -> None:
    (shared / "f.out").write_text("x\n")
    run_id = make_run({"stdout": str(shared / "f.out")})
    for query, field in (
        ("stream=stdin", "stream"),
        ("offset=-1", "offset"),
        ("limit_bytes=0", "limit_bytes"),
        ("limit_bytes=999999999", "limit_bytes"),
        ("tail=-2", "tail"),
    ):
        assert_error(api.get(f"/api/v1/runs/{run_id}/logs?{query}"), 400, "invalid_input", field)


def test_only_the_recorded_paths_and_never_system_or_server_files(
    api: TestClient, make_run, shared: Path, settings: Settings
) -> None:
    for path in ("/etc/passwd", str(settings.data_dir / "runyard.db"), "/proc/self/environ"):
        run_id = make_run({"stdout": path})
        assert_error(api.get(f"/api/v1/runs/{run_id}/logs"), 403, "forbidden")
    link = shared / "innocent.out"
    link.symlink_to("/etc/hostname")  # symlinks are followed before the check
    run_id = make_run({"stdout": str(link)})
    assert_error(api.get(f"/api/v1/runs/{run_id}/logs"), 403, "forbidden")
    run_id = make_run({"stdout": "relative/path.out"})
    assert_error(api.get(f"/api/v1/runs/{run_id}/logs"), 404, "not_found", "stream")


def test_a_fifo_does_not_hang_the_server(api: TestClient, make_run, shared: Path) -> None:
    fifo = shared / "pipe.out"
    os.mkfifo(fifo)
    run_id = make_run({"stdout": str(fifo)})
    err = assert_error(api.get(f"/api/v1/runs/{run_id}/logs"), 403, "forbidden")
    assert "regular file" in err["message"]


@pytest.fixture
def rooted(settings: Settings, store: Store, admin_key: str, shared: Path) -> Iterator[TestClient]:
    allowed = shared / "allowed"
    allowed.mkdir()
    app = create_app(dataclasses.replace(settings, log_roots=(allowed.resolve(),)), store, executor=None)
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["X-API-Key"] = admin_key
        yield client


def test_log_roots_limit_what_is_served(rooted: TestClient, make_run, shared: Path) -> None:
    (shared / "allowed" / "ok.out").write_text("fine\n")
    (shared / "outside.out").write_text("secret\n")
    inside = make_run({"stdout": str(shared / "allowed" / "ok.out")})
    assert texts(logs(rooted, inside)) == ["fine"]
    outside = make_run({"stdout": str(shared / "outside.out")})
    err = assert_error(rooted.get(f"/api/v1/runs/{outside}/logs"), 403, "forbidden")
    assert "RUNYARD_LOG_ROOTS" in err["message"] and "secret" not in err["message"]
    escape = make_run({"stdout": str(shared / "allowed" / ".." / "outside.out")})
    assert_error(rooted.get(f"/api/v1/runs/{escape}/logs"), 403, "forbidden")
    missing_outside = make_run({"stdout": str(shared / "nothing-here.out")})
    assert_error(rooted.get(f"/api/v1/runs/{missing_outside}/logs"), 403, "forbidden")  # no existence probe


def test_logs_and_events_need_an_api_key(anon: TestClient, make_run) -> None:
    run_id = make_run({})
    assert_error(anon.get(f"/api/v1/runs/{run_id}/logs"), 401, "unauthorized")
    assert_error(anon.get(f"/api/v1/runs/{run_id}/events"), 401, "unauthorized")


# ---------------------------------------------------------------- events


def test_events_tell_the_run_history_and_page(api: TestClient, store: Store, make_run) -> None:
    run_id = make_run({})
    store.record_events(
        run_id,
        [
            NewEvent(source="slurm", kind="status", status="running", message="Slurm: RUNNING"),
            NewEvent(source="slurm", kind="status", status="requeued", message="requeued (restart 1)"),
            NewEvent(source="slurm", kind="status", status="finished", message="Slurm: COMPLETED"),
        ],
    )
    r = api.get(f"/api/v1/runs/{run_id}/events")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [e["status"] for e in body["events"]] == ["running", "requeued", "finished"]
    assert {e["source"] for e in body["events"]} == {"slurm"} and body["run_id"] == run_id
    first_id = body["events"][0]["id"]
    newer = api.get(f"/api/v1/runs/{run_id}/events", params={"after_id": first_id}).json()
    assert [e["status"] for e in newer["events"]] == ["requeued", "finished"]
    assert newer["next_after_id"] == body["events"][-1]["id"]
    empty = api.get(f"/api/v1/runs/{run_id}/events", params={"after_id": newer["next_after_id"]}).json()
    assert empty["events"] == [] and empty["next_after_id"] == newer["next_after_id"]
    page = api.get(f"/api/v1/runs/{run_id}/events", params={"limit": 1}).json()
    assert len(page["events"]) == 1
    assert_error(api.get("/api/v1/runs/nope/events"), 404, "not_found")
    assert_error(api.get(f"/api/v1/runs/{run_id}/events?after_id=-1"), 400, "invalid_input", "after_id")
