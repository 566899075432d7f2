"""``LocalSlurm`` against the real dev cluster, plus the failures that need no cluster at all."""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runyard.errors import InvalidInput, RunyardError, SlurmError, SubmitFailed, error_for_code
from runyard.slurm import JobSpec, render_sbatch
from runyard.slurm.runner import LocalSlurm
from tests.slurm.conftest import poll

ARGV = ("plain", "two words", "it's", '"double"', "$HOME", "`date`", "", "ünï", "a\\b", "--flag=x y")
PRINT_ARGV = "import json, sys; print(json.dumps(sys.argv[1:]))"


def _fake_bin(tmp_path: Path, name: str, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    program = bin_dir / name
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _final_state(slurm: LocalSlurm, job_id: str, name: str) -> str | None:
    """The job's final state once sacct has its whole record, else None.

    sacct can lag about a second behind the job's end, and for a moment (22.05) it reports a
    placeholder record with the final state but the name "allocation" and no partition: wait
    until the real name is there.
    """
    for job in slurm.accounting([job_id]):
        if job.job_id == job_id and job.name == name and job.state not in ("PENDING", "RUNNING"):
            return job.state
    return None


# --------------------------------------------------------------------------- no cluster needed


def test_error_tree() -> None:
    assert issubclass(SubmitFailed, SlurmError) and issubclass(SlurmError, RunyardError)
    assert SlurmError("x").status == 502 and SlurmError.code == "slurm_error"
    assert SubmitFailed("x").status == 502 and SubmitFailed.code == "submit_failed"
    assert error_for_code("slurm_error") is SlurmError
    assert error_for_code("submit_failed") is SubmitFailed
    body = SubmitFailed("sbatch failed").to_dict()
    assert type(RunyardError.from_dict(body, 502)) is SubmitFailed


@pytest.mark.parametrize("bad", ["1;rm -rf /", "", "12 13", "-1", "1_", "abc", "1_2_3", "1\n2"])
def test_bad_job_id_runs_no_command(tmp_path: Path, bad: str) -> None:
    marker = tmp_path / "ran"
    for name in ("scancel", "scontrol", "sacct"):
        bin_dir = _fake_bin(tmp_path, name, f"touch {marker}")
    slurm = LocalSlurm(bin_dir=str(bin_dir))
    for call in (slurm.cancel, slurm.requeue, slurm.hold, slurm.release, lambda j: slurm.accounting([j])):
        with pytest.raises(InvalidInput) as info:
            call(bad)
        assert info.value.field == "job_id"
    assert not marker.exists()


def test_missing_commands_say_how_to_get_a_cluster(tmp_path: Path) -> None:
    slurm = LocalSlurm(bin_dir=str(tmp_path))
    with pytest.raises(SlurmError, match="runyard dev-cluster up") as info:
        slurm.queue()
    assert type(info.value) is SlurmError and "squeue not found" in info.value.message
    with pytest.raises(SlurmError, match="sbatch not found"):
        slurm.submit("#!/bin/bash\ntrue\n")
    assert slurm.accounting([]) == []  # no ids: no sacct call, so no error either


def test_timeout_and_failure_messages(tmp_path: Path) -> None:
    _fake_bin(tmp_path, "squeue", "exec sleep 5")
    bin_dir = _fake_bin(tmp_path, "sinfo", "echo 'sinfo: error: first line' >&2; echo second >&2; exit 3")
    slurm = LocalSlurm(timeout_s=0.3, bin_dir=str(bin_dir))
    with pytest.raises(SlurmError, match=r"squeue timed out after 0.3 s"):
        slurm.queue()
    with pytest.raises(SlurmError) as info:
        slurm.nodes()
    assert info.value.message == "sinfo failed (exit 3): sinfo: error: first line"


# --------------------------------------------------------------------------- the real cluster


@pytest.fixture
def slurm(dev_cluster: None) -> LocalSlurm:
    return LocalSlurm()


@pytest.fixture
def cancel_later(slurm: LocalSlurm) -> Iterator[list[str]]:
    """Job ids to cancel when the test ends, whatever happened."""
    ids: list[str] = []
    yield ids
    for job_id in ids:
        with contextlib.suppress(SlurmError):
            slurm.cancel(job_id)


def test_submit_runs_argv_intact_and_is_accounted(slurm: LocalSlurm, tmp_path: Path) -> None:
    spec = JobSpec(
        name="runner-argv",
        command=("python3", "-c", PRINT_ARGV, *ARGV),
        output_dir=str(tmp_path),
        time_limit_min=2,
    )
    job_id = slurm.submit(render_sbatch(spec, run_env={"RUNYARD_RUN_ID": "r1"}), workdir=str(tmp_path))
    assert job_id.isdigit(), job_id
    assert poll(lambda: _final_state(slurm, job_id, spec.name), 30, f"job {job_id} in sacct") == "COMPLETED"
    (job,) = [j for j in slurm.accounting([job_id]) if j.job_id == job_id]
    assert job.exit_code == 0 and job.partition == "debug"
    out = tmp_path / f"runner-argv-{job_id}.out"
    assert json.loads(out.read_text()) == list(ARGV)


def test_submit_to_unknown_partition_fails_with_sbatchs_message(slurm: LocalSlurm, tmp_path: Path) -> None:
    spec = JobSpec(name="nope", command=("true",), output_dir=str(tmp_path), partition="nosuchpart")
    with pytest.raises(SubmitFailed, match="nosuchpart") as info:
        slurm.submit(render_sbatch(spec, run_env={}))
    assert info.value.message.startswith("sbatch failed (exit 1):")
    assert "Invalid partition" in info.value.message


def test_queue_cancel_and_accounting(slurm: LocalSlurm, tmp_path: Path, cancel_later: list[str]) -> None:
    spec = JobSpec(name="runner-sleep", command=("sleep", "60"), output_dir=str(tmp_path), time_limit_min=2)
    job_id = slurm.submit(render_sbatch(spec, run_env={}))
    cancel_later.append(job_id)

    (queued,) = [job for job in slurm.queue() if str(job.job_id) == job_id]
    assert queued.name == "runner-sleep" and queued.state in ("PENDING", "RUNNING")
    assert all(estimate.job_id for estimate in slurm.start_estimates())
    nodes = slurm.nodes()
    assert {node.name for node in nodes} == {"n1", "n2", "n3"}
    assert all(node.gpus_total == 4 for node in nodes)

    slurm.cancel(job_id)
    state = poll(lambda: _final_state(slurm, job_id, spec.name), 30, f"job {job_id} cancelled in sacct")
    assert state.startswith("CANCELLED"), state


def test_requeue_unknown_job_is_a_slurm_error(slurm: LocalSlurm) -> None:
    with pytest.raises(SlurmError, match="scontrol failed") as info:
        slurm.requeue("999999999")
    assert type(info.value) is SlurmError and info.value.field is None
    assert "Invalid job id" in info.value.message


def test_workdir_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        LocalSlurm().submit("#!/bin/bash\ntrue\n", workdir=str(tmp_path / "missing"))
    assert info.value.field == "workdir"
    assert not os.path.exists(tmp_path / "missing")
