"""Where init's settings, run id and rank come from."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

import runyard
from runyard.client.settings import resolve_settings
from runyard.errors import InvalidInput
from tests.fakes.server import FakeServer


def write_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "client.toml"
    path.write_text(text)
    monkeypatch.setenv("RUNYARD_CONFIG", str(path))


def test_url_and_key_resolve_argument_then_env_then_file_then_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert resolve_settings().url == "http://127.0.0.1:8765"
    assert resolve_settings().api_key is None
    write_config(monkeypatch, tmp_path, 'url = "http://file:1"\napi_key = "file-key"\n')
    assert (resolve_settings().url, resolve_settings().api_key) == ("http://file:1", "file-key")
    monkeypatch.setenv("TRACKER_API", "http://seed:2")
    monkeypatch.setenv("TRACKER_API_KEY", "seed-key")
    assert (resolve_settings().url, resolve_settings().api_key) == ("http://seed:2", "seed-key")
    monkeypatch.setenv("RUNYARD_URL", "http://env:3/")
    monkeypatch.setenv("RUNYARD_API_KEY", "env-key")
    assert (resolve_settings().url, resolve_settings().api_key) == ("http://env:3", "env-key")
    s = resolve_settings(url="http://arg:4", api_key="arg-key")
    assert (s.url, s.api_key) == ("http://arg:4", "arg-key")


def test_project_experiment_mode_spool_and_buffer_from_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = resolve_settings()
    assert (s.project, s.experiment, s.mode, s.max_buffer_points) == (
        "default",
        "default",
        "online",
        1_000_000,
    )
    monkeypatch.setenv("RUNYARD_PROJECT", "proj")
    monkeypatch.setenv("RUNYARD_EXPERIMENT", "exp")
    monkeypatch.setenv("RUNYARD_MODE", "OFFLINE")
    monkeypatch.setenv("RUNYARD_SPOOL_DIR", str(tmp_path / "sp"))
    monkeypatch.setenv("RUNYARD_MAX_BUFFER_POINTS", "5000")
    monkeypatch.setenv("RUNYARD_RUN_ID", "run-from-env")
    s = resolve_settings()
    assert (s.project, s.experiment, s.mode, s.max_buffer_points) == ("proj", "exp", "offline", 5000)
    assert (s.spool_dir, s.run_id) == (tmp_path / "sp", "run-from-env")
    s = resolve_settings(project="a", experiment="b", mode="disabled", max_buffer_points=200, run_id="r")
    assert (s.project, s.experiment, s.mode, s.max_buffer_points, s.run_id) == (
        "a",
        "b",
        "disabled",
        200,
        "r",
    )


def test_default_spool_dir_is_under_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNYARD_SPOOL_DIR")
    assert resolve_settings().spool_dir == Path("~/.runyard/spool").expanduser()


def test_seed_experiment_id_applies_unless_the_script_names_an_experiment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPERIMENT_ID", "exp-42")
    s = resolve_settings()
    assert (s.experiment_id, s.project, s.experiment) == ("exp-42", None, None)
    s = resolve_settings(project="p", experiment="e")
    assert (s.experiment_id, s.project, s.experiment) == (None, "p", "e")
    assert resolve_settings(experiment_id="exp-7", project="p").experiment_id == "exp-7"


@pytest.mark.parametrize(
    ("env", "value", "field"),
    [
        ("RUNYARD_MODE", "sometimes", "mode"),
        ("RUNYARD_MAX_BUFFER_POINTS", "lots", "max_buffer_points"),
        ("RUNYARD_RETRY_MAX_S", "-1", "RUNYARD_RETRY_MAX_S"),
    ],
)
def test_invalid_settings_raise_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, field: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(InvalidInput) as info:
        resolve_settings()
    assert info.value.field == field


def test_seed_003_variables_reach_the_server(monkeypatch: pytest.MonkeyPatch, fake: FakeServer) -> None:
    monkeypatch.setenv("TRACKER_API", "http://tracker.internal")
    monkeypatch.setenv("TRACKER_API_KEY", "good-key")
    monkeypatch.setenv("EXPERIMENT_ID", "exp-9")
    run = runyard.init(_transport=fake.transport(), flush_interval_s=0.01)
    run.finish()
    assert fake.runs[run.id].section["experiment_id"] == "exp-9"
    assert "project" not in fake.runs[run.id].section
    assert run.url == f"http://tracker.internal/runs/{run.id}"


def slurm_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for k, v in values.items():
        monkeypatch.setenv(k, v)


def test_slurm_job_gets_a_stable_run_id_so_a_requeue_continues_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slurm_env(monkeypatch, SLURM_JOB_ID="1234", SLURM_CLUSTER_NAME="lab")
    first = runyard.init(mode="disabled")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # the requeued attempt
    again = runyard.init(mode="disabled")
    assert first.id == again.id and re.fullmatch(r"[0-9a-f]{32}", first.id)
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "other")
    assert runyard.init(mode="disabled").id != first.id
    monkeypatch.setenv("RUNYARD_RUN_ID", "explicit-id")
    assert runyard.init(mode="disabled").id == "explicit-id"
    assert runyard.init(mode="disabled", run_id="arg-id").id == "arg-id"


def test_array_tasks_get_distinct_stable_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    slurm_env(monkeypatch, SLURM_JOB_ID="1001", SLURM_ARRAY_JOB_ID="1000", SLURM_ARRAY_TASK_ID="0")
    task0 = runyard.init(mode="disabled").id
    slurm_env(monkeypatch, SLURM_JOB_ID="1002", SLURM_ARRAY_TASK_ID="1")
    task1 = runyard.init(mode="disabled").id
    assert task0 != task1
    assert runyard.init(mode="disabled").id == task1


def test_without_slurm_every_run_id_is_new() -> None:
    a, b = runyard.init(mode="disabled").id, runyard.init(mode="disabled").id
    assert a != b and re.fullmatch(r"[0-9a-f]{32}", a)


def test_invalid_run_id_is_refused() -> None:
    with pytest.raises(InvalidInput):
        runyard.init(mode="disabled", run_id="../etc/passwd")


def test_slurm_context_is_recorded(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    slurm_env(
        monkeypatch,
        SLURM_JOB_ID="77",
        SLURM_JOB_NODELIST="n[1-2]",
        SLURM_JOB_PARTITION="gpu",
        SLURM_CLUSTER_NAME="lab",
        SLURMD_NODENAME="n1",
        SLURM_RESTART_COUNT="2",
    )
    run = start()
    run.finish()
    section = fake.runs[run.id].section
    assert section["host"] == "n1"
    assert section["slurm"] == {
        "job_id": "77",
        "array_job_id": None,
        "array_task_id": None,
        "nodes": "n[1-2]",
        "partition": "gpu",
        "cluster": "lab",
    }
    assert fake.runs[run.id].restart_count == 2


@pytest.mark.parametrize("var", ["RANK", "SLURM_PROCID"])
def test_only_rank_zero_logs_by_default(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run], var: str
) -> None:
    monkeypatch.setenv(var, "1")
    run = start(run_id="shared-run")
    run.log({"loss": 1.0})
    run.log_artifact(__file__)
    run.config["x"] = 1
    result = run.finish()
    assert run.id == "shared-run" and run.rank == 1
    assert fake.requests == [] and result.synced and result.points_sent == 0


def test_rank_comes_from_rank_before_slurm_procid(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("SLURM_PROCID", "3")
    run = start()
    run.log({"loss": 1.0})
    run.finish()
    assert run.rank == 0 and fake.runs[run.id].values("loss") == [1.0]


def test_log_all_ranks_makes_other_ranks_writers(
    monkeypatch: pytest.MonkeyPatch, fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    monkeypatch.setenv("RANK", "2")
    run = start(log_all_ranks=True)
    run.log({"loss_rank2": 1.0})
    run.finish()
    assert fake.runs[run.id].values("loss_rank2") == [1.0]


def test_disabled_mode_sends_and_writes_nothing(fake: FakeServer, spool: Path) -> None:
    run = runyard.init(mode="disabled", _transport=fake.transport())
    run.log({"a": 1.0})
    result = run.finish()
    assert result.synced and fake.requests == [] and not spool.exists()
