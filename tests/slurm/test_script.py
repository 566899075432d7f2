"""``JobSpec`` validation and ``render_sbatch``, pinned by golden files in ``tests/slurm/data``.

The golden ``*.sbatch`` files are compared byte for byte. After an intended change to the
renderer, regenerate them with ``RUNYARD_REGEN_GOLDEN=1 pytest tests/slurm/test_script.py``
and review the diff. (That variable is read by this test module only, never by Runyard.)

The quoting case was also submitted by hand to the dev cluster (Slurm 22.05.8): sbatch read the
quoted ``--output``/``--chdir`` paths with spaces and quotes, and the job printed the argv intact.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runyard.errors import InvalidInput
from runyard.slurm.script import JobReport, Trials, format_mem, format_time_limit, render_sbatch
from runyard.slurm.spec import JobSpec

DATA = Path(__file__).parent / "data"
# read at import: the autouse fixture in tests/conftest.py clears RUNYARD_* before each test
REGEN_GOLDEN = os.environ.get("RUNYARD_REGEN_GOLDEN") == "1"
TRICKY_ARGS = (
    "a b",
    "it's",
    '"double"',
    "$HOME",
    "`id`",
    "$(touch /tmp/runyard-pwned)",
    "x; rm -rf /",
    "back\\slash",
    "",
    "tab\there",
    "multi\nline",
    "*",
    "ünïcode",
)
PRINT_ARGV = ("-c", "import sys, json; print(json.dumps(sys.argv[1:]))")


def _golden_specs() -> dict[str, tuple[JobSpec, dict[str, str]]]:
    return {
        "basic": (JobSpec(name="train", command=("python3", "train.py"), output_dir="/scratch/logs"), {}),
        "full": (
            JobSpec(
                name="sweep-lr",
                command=("python3", "-m", "project.train", "--lr", "0.001"),
                output_dir="/scratch/runyard/logs/",
                partition="gpu",
                nodes=2,
                ntasks_per_node=4,
                cpus_per_task=8,
                gpus_per_node=4,
                mem_gb=64,
                time_limit_min=2 * 24 * 60 + 3 * 60 + 5,
                signal_before_end_s=120,
                requeue=False,
                array="0-9%2",
                dependency="afterok:12:13",
                workdir="/home/alice/project",
                env={"OMP_NUM_THREADS": "8", "WANDB_MODE": "disabled"},
                account="research",
                qos="normal",
            ),
            {"RUNYARD_RUN_ID": "0123456789abcdef", "RUNYARD_TRACKING_URI": "http://head:8000"},
        ),
        "quoting": (
            JobSpec(
                name="quote.test",
                command=("python3", *PRINT_ARGV, *TRICKY_ARGS),
                output_dir="/tmp/my logs/it's; $x",
                workdir="/tmp/work dir/`sub`",
                mem_gb=1.5,
                time_limit_min=90,
                signal_before_end_s=None,
                env={"WEIRD": "a 'b' \"c\" $d `e`; f"},
            ),
            {"RUNYARD_RUN_ID": "run with space"},
        ),
    }


@pytest.mark.parametrize("case", sorted(_golden_specs()))
def test_golden_scripts(case: str) -> None:
    spec, run_env = _golden_specs()[case]
    text = render_sbatch(spec, run_env=run_env)
    golden = DATA / f"{case}.sbatch"
    if REGEN_GOLDEN:
        golden.write_text(text)
    assert text == golden.read_text()


@pytest.mark.parametrize("case", sorted(_golden_specs()))
def test_rendered_scripts_pass_bash_syntax_check(case: str) -> None:
    spec, run_env = _golden_specs()[case]
    result = subprocess.run(
        ["bash", "-n"], input=render_sbatch(spec, run_env=run_env), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr


def _local_spec(tmp_path: Path, **overrides: object) -> JobSpec:
    fields: dict[str, object] = {
        "name": "local",
        "command": (sys.executable, *PRINT_ARGV, *TRICKY_ARGS),
        "output_dir": str(tmp_path),
        "signal_before_end_s": None,
    }
    fields.update(overrides)
    return JobSpec(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("signal_before_end_s", [None, 60])
def test_argv_arrives_intact_when_bash_runs_the_script(
    tmp_path: Path, signal_before_end_s: int | None
) -> None:
    spec = _local_spec(tmp_path, signal_before_end_s=signal_before_end_s)
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(spec, run_env={}))
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == list(TRICKY_ARGS)
    assert not Path("/tmp/runyard-pwned").exists()


def test_env_values_arrive_intact(tmp_path: Path) -> None:
    weird = "a 'b' \"c\" $d `e`; f\nline2"
    spec = _local_spec(
        tmp_path,
        command=(sys.executable, "-c", "import os; print(os.environ['WEIRD'] + '|' + os.environ['RUN'])"),
        env={"WEIRD": weird},
    )
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(spec, run_env={"RUN": "r 1"}))
    result = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == weird + "|r 1\n"


def test_exit_code_and_usr1_are_passed_through(tmp_path: Path) -> None:
    child = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGUSR1, lambda *a: (print('got USR1', flush=True), sys.exit(7)))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    spec = _local_spec(tmp_path, command=(sys.executable, "-c", child), signal_before_end_s=30)
    script = tmp_path / "job.sbatch"
    script.write_text(render_sbatch(spec, run_env={}))
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGUSR1)  # what Slurm does with --signal=B:USR1@30
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 7
        assert proc.stdout.read() == "got USR1\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_array_output_pattern() -> None:
    text = render_sbatch(JobSpec(name="a", command=("x",), output_dir="/o", array="0-3%2"), run_env={})
    assert "#SBATCH --output=/o/%x-%A_%a.out\n" in text
    assert "#SBATCH --error=/o/%x-%A_%a.err\n" in text
    assert "#SBATCH --array=0-3%2\n" in text


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(1, "00:01:00"), (90, "01:30:00"), (1439, "23:59:00"), (1440, "1-00:00:00"), (3065, "2-03:05:00")],
)
def test_format_time_limit(minutes: int, expected: str) -> None:
    assert format_time_limit(minutes) == expected


@pytest.mark.parametrize(("mem_gb", "expected"), [(4, "4G"), (64.0, "64G"), (0.5, "512M"), (1.5, "1536M")])
def test_format_mem(mem_gb: float, expected: str) -> None:
    assert format_mem(mem_gb) == expected


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "two words"}, "name"),
        ({"name": "x\n#SBATCH --uid=0"}, "name"),
        ({"command": ()}, "command"),
        ({"command": "python train.py"}, "command"),
        ({"command": ("",)}, "command"),
        ({"partition": "gpu\r"}, "partition"),
        ({"account": "a b"}, "account"),
        ({"qos": "q\n"}, "qos"),
        ({"nodes": 0}, "nodes"),
        ({"nodes": True}, "nodes"),
        ({"ntasks_per_node": 0}, "ntasks_per_node"),
        ({"cpus_per_task": -1}, "cpus_per_task"),
        ({"gpus_per_node": -1}, "gpus_per_node"),
        ({"mem_gb": 0}, "mem_gb"),
        ({"mem_gb": float("nan")}, "mem_gb"),
        ({"time_limit_min": 0}, "time_limit_min"),
        ({"signal_before_end_s": 0}, "signal_before_end_s"),
        ({"signal_before_end_s": 70000}, "signal_before_end_s"),
        ({"array": "0-9%"}, "array"),
        ({"array": "a-b"}, "array"),
        ({"array": "0-3\n#SBATCH --x"}, "array"),
        ({"dependency": "afterok"}, "dependency"),
        ({"dependency": "afterok:12;rm"}, "dependency"),
        ({"dependency": "sometime:12"}, "dependency"),
        ({"output_dir": ""}, "output_dir"),
        ({"output_dir": "/tmp/x\n#SBATCH --uid=0"}, "output_dir"),
        ({"workdir": "/tmp/\rx"}, "workdir"),
        ({"env": {"1BAD": "x"}}, "env"),
        ({"env": {"A-B": "x"}}, "env"),
        ({"env": {"A": "x\x00"}}, "env"),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, object], field: str) -> None:
    fields: dict[str, object] = {"name": "ok", "command": ("true",), "output_dir": "/tmp"}
    fields.update(overrides)
    with pytest.raises(InvalidInput) as info:
        JobSpec(**fields)  # type: ignore[arg-type]
    assert info.value.field == field
    assert info.value.message


@pytest.mark.parametrize("value", ["0-9", "0-9%2", "1,3,5", "0-15:4", "1-3,7,10-12%4"])
def test_valid_arrays(value: str) -> None:
    assert JobSpec(name="a", command=("x",), output_dir="/o", array=value).array == value


@pytest.mark.parametrize("value", ["afterok:12:13", "afterany:5,afternotok:7", "singleton", "afterok:12_3"])
def test_valid_dependencies(value: str) -> None:
    assert JobSpec(name="a", command=("x",), output_dir="/o", dependency=value).dependency == value


def test_run_env_is_checked() -> None:
    spec = JobSpec(name="a", command=("x",), output_dir="/o")
    with pytest.raises(InvalidInput) as info:
        render_sbatch(spec, run_env={"NOT VALID": "x"})
    assert info.value.field == "run_env"


def test_render_is_pure_and_deterministic() -> None:
    spec, run_env = _golden_specs()["full"]
    assert render_sbatch(spec, run_env=run_env) == render_sbatch(
        spec, run_env=dict(reversed(run_env.items()))
    )


def test_each_array_task_runs_its_own_trial_argv_intact(tmp_path: Path) -> None:
    """A sweep's script holds every trial's argv by task id, quoted: bash runs exactly it."""
    stub = tmp_path / "python-stub"  # stands in for the job's python: jobreport says nothing
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    spec = _local_spec(tmp_path, array="0-1")
    trials = Trials(
        argv={0: [sys.executable, *PRINT_ARGV, "--lr=0.1"], 1: [sys.executable, *PRINT_ARGV, *TRICKY_ARGS]}
    )
    report = JobReport(url="http://127.0.0.1:1", python=str(stub), array_base_id="b" * 32)
    script = tmp_path / "sweep.sbatch"
    script.write_text(render_sbatch(spec, run_env={}, report=report, trials=trials))

    def task(task_id: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SLURM_ARRAY_TASK_ID": task_id}
        return subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env
        )

    assert json.loads(task("0").stdout) == ["--lr=0.1"]
    assert json.loads(task("1").stdout) == list(TRICKY_ARGS)
    missing = task("7")
    assert missing.returncode == 2 and "no trial for array task 7" in missing.stderr
    assert not Path("/tmp/runyard-pwned").exists()
    with pytest.raises(InvalidInput):  # trials run only as a reporting array
        render_sbatch(_local_spec(tmp_path), run_env={}, report=None, trials=trials)


def test_kill_on_invalid_dep_is_a_directive(tmp_path: Path) -> None:
    spec = _local_spec(tmp_path, dependency="afterok:12", kill_on_invalid_dep=True)
    assert "#SBATCH --kill-on-invalid-dep=yes" in render_sbatch(spec, run_env={}).splitlines()
    assert "kill-on-invalid-dep" not in render_sbatch(_local_spec(tmp_path), run_env={})
