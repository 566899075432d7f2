"""``runyard.slurm.launch`` (pure parsing and planning) and the launch scripts ``render_sbatch``
makes with a ``JobReport``: golden files, ``bash -n``, and the scripts run by bash with a fake
interpreter and a fake ``scontrol`` that record how they were called.

Regenerate the golden ``launch_*.sbatch`` files after an intended change with
``RUNYARD_REGEN_GOLDEN=1 pytest tests/slurm/test_launch.py`` and review the diff.
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
from runyard.slurm.launch import (
    dependency_string,
    expand_pattern,
    looks_like_batch_script,
    parse_after,
    parse_array,
    parse_array_spec,
    parse_dependency,
    parse_mem_gb,
    parse_sbatch_script,
    parse_time_limit,
    plan_launch,
)
from runyard.slurm.script import JobReport, render_sbatch
from runyard.slurm.spec import JobSpec

DATA = Path(__file__).parent / "data"
REGEN_GOLDEN = os.environ.get("RUNYARD_REGEN_GOLDEN") == "1"
TRICKY_ARGS = ("a b", "it's", '"q"', "$HOME", "`id`", "$(touch /tmp/runyard-pwned)", "x; rm -rf /", "", "*")
PRINT_ARGV = (
    "-c",
    "import sys, json, os; print(json.dumps([os.environ.get('RUNYARD_RUN_ID'), *sys.argv[1:]]))",
)


# --------------------------------------------------------------------------- times, sizes


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("10", 10),
        ("10:30", 11),  # seconds round up, as in Slurm
        ("10:00", 10),
        ("1:00:00", 60),
        ("2:30:01", 151),
        ("1-0", 1440),
        ("1-2", 1560),
        ("1-2:30", 1590),
        ("1-2:30:15", 1591),
        ("7-00:00:00", 7 * 1440),
        (" 90 ", 90),
        ("0", None),  # Slurm: no limit
        ("UNLIMITED", None),
        ("infinite", None),
    ],
)
def test_time_limits_in_every_slurm_format(text: str, minutes: int | None) -> None:
    assert parse_time_limit(text) == minutes


@pytest.mark.parametrize("text", ["", "abc", "1:2:3:4", "-5", "1-", ":5", "1-2-3", "1.5", "1-2:3:4:5"])
def test_bad_time_limits_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_time_limit(text, field="time")
    assert info.value.field == "time"
    assert "Slurm time" in info.value.message


@pytest.mark.parametrize(
    ("text", "gb"), [("4G", 4.0), ("500M", 500 / 1024), ("500", 500 / 1024), ("1T", 1024.0), ("2g", 2.0)]
)
def test_memory_sizes(text: str, gb: float) -> None:
    assert parse_mem_gb(text) == pytest.approx(gb)


@pytest.mark.parametrize("text", ["", "G", "4X", "-1G", "four"])
def test_bad_memory_sizes(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_mem_gb(text, field="mem")
    assert info.value.field == "mem"


# --------------------------------------------------------------------------- arrays, dependencies


@pytest.mark.parametrize(
    ("spec", "tasks", "throttle"),
    [
        ("0-9", list(range(10)), None),
        ("0-9%2", list(range(10)), 2),
        ("1,3,5-7", [1, 3, 5, 6, 7], None),
        ("0-10:2", [0, 2, 4, 6, 8, 10], None),
        ("7", [7], None),
        ("3,1,3", [1, 3], None),
        ("1-3,7,10-12%4", [1, 2, 3, 7, 10, 11, 12], 4),
    ],
)
def test_array_specs(spec: str, tasks: list[int], throttle: int | None) -> None:
    assert parse_array(spec) == tasks
    assert parse_array_spec(spec).throttle == throttle


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("", "must look like"),
        ("a-b", "must look like"),
        ("0-9%", "throttle"),
        ("0-9%0", "throttle"),
        ("9-0", "ends before it starts"),
        ("0-10:0", "step"),
        ("0-20000", "at most 10000"),
        ("5000000", "<= 4000000"),
        ("1;2", "must look like"),
    ],
)
def test_bad_array_specs_say_why(spec: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_array(spec)
    assert info.value.field == "array"
    assert words in info.value.message


def test_after_references() -> None:
    assert parse_after("0123456789abcdef0123456789abcdef") == (
        "0123456789abcdef0123456789abcdef",
        "afterok",
        False,
    )
    assert parse_after("123") == ("123", "afterok", True)
    assert parse_after("123_4:any") == ("123_4", "afterany", True)
    assert parse_after("myrun:notok") == ("myrun", "afternotok", False)
    for bad in ("123:maybe", ":ok", "a b", ""):
        with pytest.raises(InvalidInput) as info:
            parse_after(bad, field="after[2]")
        assert info.value.field == "after[2]"


def test_dependency_strings_group_by_type() -> None:
    items = [("afterok", "12"), ("afterany", "14_1"), ("afterok", "13"), ("afterok", "12")]
    assert dependency_string(items) == "afterok:12:13,afterany:14_1"
    assert dependency_string([]) is None
    assert parse_dependency("afterok:12:13,afterany:14_1") == (
        "all",
        [("afterok", "12"), ("afterok", "13"), ("afterany", "14_1")],
    )
    assert parse_dependency("afterok:1?afternotok:2")[0] == "any"
    for bad in ("singleton", "afterok", "afterok:x", "afterok:1,afterany:2?afterok:3"):
        with pytest.raises(InvalidInput):
            parse_dependency(bad)


def test_output_patterns() -> None:
    common = {"job_name": "train", "user": "alice", "node": "n1"}
    assert expand_pattern("/o/%x-%j.out", job_id="12", **common) == "/o/train-12.out"
    assert expand_pattern("%x-%A_%a.err", job_id="15", array_job_id="12", array_task_id=3, **common) == (
        "train-12_3.err"
    )
    assert expand_pattern("%u/%N/%4a/100%%", job_id="1", array_task_id=7, **common) == "alice/n1/0007/100%"
    # what is not known yet stays for the job to fill in
    assert expand_pattern("%x-%j.out", job_id=None, **common) == "train-%j.out"


# --------------------------------------------------------------------------- sbatch headers

SCRIPT = """#!/bin/bash -l
# a comment, then directives in every form
#SBATCH --job-name=my-job
#SBATCH -p gpu
#SBATCH -N2 --ntasks-per-node 4
#SBATCH -c 8   # trailing comment
#SBATCH --gres=gpu:a100:2
#SBATCH --mem=32G
#SBATCH -t 1-12:00
#SBATCH --array=0-9%3
#SBATCH -d afterok:5
#SBATCH -o logs/%x-%A_%a.out
#SBATCH -e logs/%x-%A_%a.err
#SBATCH --no-requeue
#SBATCH --signal=B:USR1@120
#SBATCH -D /scratch/work
#SBATCH -A research -q high
#SBATCH --exclusive --mail-type=END
#SBATCH --part=debug
##SBATCH --nodes=99
module load cuda
#SBATCH --nodes=77
"""


def test_every_form_of_directive_is_read() -> None:
    header = parse_sbatch_script(SCRIPT)
    assert header.shebang == "#!/bin/bash -l"
    assert header.job_name == "my-job"
    assert header.partition == "debug"  # later lines win; --part is a unique prefix of --partition
    assert (header.nodes, header.ntasks_per_node, header.cpus_per_task) == (2, 4, 8)
    assert (header.gpus_per_node, header.gpu_type) == (2, "a100")
    assert header.mem_gb == 32
    assert header.time_limit_min == 36 * 60
    assert header.array == "0-9%3"
    assert header.dependency == "afterok:5"
    assert (header.output, header.error) == ("logs/%x-%A_%a.out", "logs/%x-%A_%a.err")
    assert header.requeue is False
    assert header.signal == "B:USR1@120"
    assert header.chdir == "/scratch/work"
    assert (header.account, header.qos) == ("research", "high")
    assert header.sets("exclusive") and header.options["mail-type"] == "END"
    # sbatch stops at the first command: the last line and the disabled one do not count
    assert header.nodes == 2
    assert len(header.directives) == 17
    assert all(line.startswith("#SBATCH") for line in header.directives)
    assert header.requested() == {
        "partition": "debug",
        "nodes": 2,
        "ntasks_per_node": 4,
        "cpus_per_task": 8,
        "gpus_per_node": 2,
        "gpu_type": "a100",
        "mem_gb": 32.0,
        "time_limit_min": 2160,
        "account": "research",
        "qos": "high",
    }


@pytest.mark.parametrize(
    ("line", "attr", "value"),
    [
        ("#SBATCH --gpus-per-node=4", "gpus_per_node", 4),
        ("#SBATCH --gpus-per-node=h100:4", "gpu_type", "h100"),
        ("#SBATCH -G 3", "gpus", 3),
        ("#SBATCH --gpus=a100:8", "gpus", 8),
        ("#SBATCH --gres=gpu:1", "gpus_per_node", 1),
        ("#SBATCH --gres=gpu", "gpus_per_node", 1),
        ("#SBATCH --gres=shard:2,gpu:tesla:3", "gpus_per_node", 3),
        ("#SBATCH --gres=shard:2", "gpus_per_node", None),
        ("#SBATCH --mem 500M", "mem_gb", 500 / 1024),
        ("#SBATCH --mem-per-cpu=2G", "mem_per_cpu_gb", 2.0),
        ("#SBATCH --time=30", "time_limit_min", 30),
        ("#SBATCH --time 2:00:00", "time_limit_min", 120),
        ("#SBATCH -JnoSpace", "job_name", "noSpace"),
        ('#SBATCH --job-name="two words"', "job_name", "two words"),
        ("#SBATCH -n 16", "ntasks", 16),
        ("#SBATCH --nodes=2-4", "nodes", 2),
        ("#SBATCH --requeue", "requeue", True),
        ("#SBATCH --workdir=/w", "chdir", "/w"),
        ("#SBATCH --chdir /w", "chdir", "/w"),
    ],
)
def test_single_directives(line: str, attr: str, value: object) -> None:
    header = parse_sbatch_script(f"#!/bin/bash\n{line}\necho hi\n")
    got = getattr(header, attr)
    assert got == (pytest.approx(value) if isinstance(value, float) else value)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("#SBATCH --nodes=x", "--nodes must be a whole number"),
        ("#SBATCH -c 0", "--cpus-per-task must be a whole number >= 1"),
        ("#SBATCH --time=soon", "--time must be minutes"),
        ("#SBATCH --array=9-0", "ends before it starts"),
        ("#SBATCH --mem=lots", "--mem must be a size"),
        ("#SBATCH --job-name='unclosed", "No closing quotation"),
        ("#SBATCH --gpus=many", "--gpus must look like"),
        ("#SBATCH partition=gpu", "is not an sbatch option"),
        ("#SBATCH --output", "--output needs a value"),
    ],
)
def test_bad_directives_name_the_line(line: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_sbatch_script(f"#!/bin/bash\n\n{line}\n")
    assert info.value.field == "script"
    assert "script line 3" in info.value.message
    assert words in info.value.message


def test_script_detection() -> None:
    assert looks_like_batch_script("#!/bin/bash\necho\n")
    assert looks_like_batch_script("#SBATCH -p gpu\necho\n")
    assert not looks_like_batch_script("import torch\n")
    assert not looks_like_batch_script("# SBATCH is mentioned here\n")


def test_script_limits() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_sbatch_script("#!/bin/bash\n\x00")
    assert info.value.field == "script"
    with pytest.raises(InvalidInput) as info:
        parse_sbatch_script("#!/bin/bash\n" + "#" * (1024 * 1024 + 1))
    assert "at most" in info.value.message


# --------------------------------------------------------------------------- plans


def _plan(**overrides: object):  # type: ignore[no-untyped-def]
    fields: dict[str, object] = {
        "name": None,
        "command": ["python", "train.py", "--lr", "0.1"],
        "script": None,
        "workdir": "/w",
        "output_dir": "/w/runyard-logs",
        "resources": {},
    }
    fields.update(overrides)
    return plan_launch(**fields)  # type: ignore[arg-type]


def test_command_plan_defaults() -> None:
    plan = _plan(resources={"partition": "debug", "mem_gb": 4.0, "time_limit_min": 30})
    assert plan.job_name == "train"  # the *.py argument names it
    assert plan.spec.command == ("python", "train.py", "--lr", "0.1")
    assert plan.spec.signal_before_end_s == 60 and plan.spec.requeue is True
    assert plan.spec.workdir == "/w"
    assert plan.task_ids is None
    assert plan.output_pattern == "/w/runyard-logs/%x-%j.out"
    assert plan.error_pattern == "/w/runyard-logs/%x-%j.err"
    assert plan.requested == {
        "nodes": 1,
        "ntasks_per_node": 1,
        "cpus_per_task": 1,
        "partition": "debug",
        "mem_gb": 4.0,
        "time_limit_min": 30,
    }


def test_array_plan() -> None:
    plan = _plan(array="0-4:2%1", requeue=False, signal_before_end_s=0, name="sweep")
    assert plan.task_ids == (0, 2, 4)
    assert plan.output_pattern.endswith("/%x-%A_%a.out")
    assert plan.spec.requeue is False and plan.spec.signal_before_end_s is None
    assert plan.job_name == "sweep"


def test_script_plan_keeps_the_scripts_settings_unless_overridden() -> None:
    plan = _plan(
        command=None,
        script=SCRIPT,
        script_path="/w/runyard-logs/script-1.sh",
        resources={"partition": "long", "time_limit_min": 5},
        array="0-1",
    )
    assert plan.job_name == "my-job"
    assert plan.spec.command == ("/w/runyard-logs/script-1.sh",)  # it has a shebang
    assert plan.task_ids == (0, 1)  # the request's array wins over the script's
    assert plan.spec.requeue is False  # the script's --no-requeue
    assert plan.output_pattern == "/scratch/work/logs/%x-%A_%a.out"  # relative to its --chdir
    assert plan.requested["partition"] == "long" and plan.requested["time_limit_min"] == 5
    assert plan.requested["gpus_per_node"] == 2
    assert plan.overrides == {"partition", "time_limit_min", "array"}


def test_script_without_shebang_runs_under_bash_and_output_alone_takes_stderr() -> None:
    plan = _plan(command=None, script="#SBATCH -o out.txt\necho hi\n", script_path="/o/s.sh")
    assert plan.spec.command == ("/bin/bash", "/o/s.sh")
    assert plan.output_pattern == plan.error_pattern == "/w/out.txt"
    assert plan.job_name == "job"  # no --job-name and no name: the CLI sends the file name


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"command": None}, "command"),
        ({"script": "#!/bin/bash\n", "script_path": "/s"}, "command"),
        ({"command": []}, "command"),
        ({"command": [""]}, "command"),
        ({"name": "two words"}, "name"),
        ({"workdir": "rel"}, "workdir"),
        ({"output_dir": "logs"}, "output_dir"),
        ({"resources": {"partition": "a b"}}, "resources.partition"),
        ({"resources": {"nodes": 0}}, "resources.nodes"),
        ({"resources": {"mem_gb": -1}}, "resources.mem_gb"),
        ({"resources": {"gpus": 2}}, "resources"),
        ({"array": "0-9%"}, "array"),
        ({"dependency": "afterok:1;rm"}, "dependency"),
        ({"env": {"A-B": "x"}}, "env"),
        ({"signal_before_end_s": -1}, "signal_before_end_s"),
        ({"command": None, "script": "#!/bin/bash\n#SBATCH -N x\n", "script_path": "/s"}, "script"),
    ],
)
def test_bad_plans_name_the_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        _plan(**overrides)
    assert info.value.field == field
    assert info.value.message


# --------------------------------------------------------------------------- rendered scripts

REPORT = JobReport(url="http://head:8765", python="/opt/venv/bin/python", run_id="0123456789abcdef" * 2)


def _golden_cases() -> dict[str, str]:
    command = _plan(resources={"partition": "debug", "time_limit_min": 90}, env={"OMP_NUM_THREADS": "4"})
    array = _plan(array="0-3%2", name="sweep", requeue=False)
    script = _plan(
        command=None,
        script=SCRIPT,
        script_path="/w/runyard-logs/script-1.sh",
        resources={"partition": "long"},
    )
    bare = _plan(command=None, script="#!/bin/bash\n#SBATCH -p gpu\necho hi\n", script_path="/w/s.sh")
    array_report = JobReport(url=REPORT.url, python=REPORT.python, array_base_id="fe" * 16, max_restarts=2)
    return {
        "launch_command": render_sbatch(command.spec, run_env={}, report=REPORT),
        "launch_array": render_sbatch(array.spec, run_env={}, report=array_report),
        "launch_script": render_sbatch(
            script.spec,
            run_env={},
            report=array_report,
            user_script=script.header,
            overrides=script.overrides,
        ),
        "launch_script_bare": render_sbatch(
            bare.spec, run_env={}, report=REPORT, user_script=bare.header, overrides=bare.overrides
        ),
    }


@pytest.mark.parametrize("case", sorted(_golden_cases()))
def test_golden_launch_scripts(case: str) -> None:
    text = _golden_cases()[case]
    golden = DATA / f"{case}.sbatch"
    if REGEN_GOLDEN:
        golden.write_text(text)
    assert text == golden.read_text()
    done = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr


def test_the_script_keeps_user_lines_and_adds_only_what_is_missing() -> None:
    text = _golden_cases()["launch_script"]
    head = text.split("\n\n", 1)[0].splitlines()
    user = parse_sbatch_script(SCRIPT).directives
    assert head[1 : 1 + len(user)] == list(user)  # verbatim, first
    ours = head[1 + len(user) :]
    # the script sets name, output, error, signal and requeue: none of ours is added
    assert ours == [
        "# runyard launch: settings given at launch (they win over the script's)",
        "#SBATCH --partition=long",
    ]
    bare = _golden_cases()["launch_script_bare"]
    for line in ("#SBATCH --job-name=job", "#SBATCH --signal=B:USR1@60", "#SBATCH --requeue"):
        assert line + "\n" in bare
    assert "#SBATCH --output=/w/runyard-logs/%x-%j.out\n" in bare
    assert "--chdir" not in bare  # a script runs where it was launched from, or its own -D


def test_report_needs_the_right_id() -> None:
    spec = JobSpec(name="a", command=("x",), output_dir="/o", array="0-1")
    with pytest.raises(InvalidInput) as info:
        render_sbatch(spec, run_env={}, report=REPORT)
    assert info.value.field == "report.array_base_id"
    with pytest.raises(InvalidInput) as info:
        render_sbatch(
            JobSpec(name="a", command=("x",), output_dir="/o"),
            run_env={},
            report=JobReport(url="u", python="p"),
        )
    assert info.value.field == "report.run_id"
    with pytest.raises(InvalidInput) as info:
        render_sbatch(
            JobSpec(name="a", command=("x",), output_dir="/o"),
            run_env={},
            report=JobReport(url="http://x\n#SBATCH --uid=0", python="p", run_id="r"),
        )
    assert info.value.field == "report.url"


# --------------------------------------------------------------------------- scripts run by bash


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, Path]:
    """A fake interpreter for the reporter and a fake scontrol, both logging their argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    py = bin_dir / "fakepy"
    py.write_text(
        "#!/bin/bash\n"
        'echo "report $*" >> "$CALLS_LOG"\n'
        'if [ "$FAKE_REPORTER_BROKEN" = 1 ]; then exit 1; fi\n'
        'if [ "$3" = start ] && [ -n "$FAKE_START_UNTIL" ]; then\n'
        '    while [ ! -e "$FAKE_START_UNTIL" ]; do sleep 0.05; done\n'
        "fi\n"
        'if [ "$3" = start ]; then echo run-from-reporter; fi\n'
    )
    scontrol = bin_dir / "scontrol"
    scontrol.write_text('#!/bin/bash\necho "scontrol $*" >> "$CALLS_LOG"\n')
    for path in (py, scontrol):
        path.chmod(0o755)
    return {"bin": bin_dir, "py": py, "log": log}


def _script(tmp_path: Path, fakes: dict[str, Path], command: tuple[str, ...], **spec_fields: object) -> Path:
    fields: dict[str, object] = {"name": "t", "command": command, "output_dir": str(tmp_path)}
    fields.update(spec_fields)
    spec = JobSpec(**fields)  # type: ignore[arg-type]
    report = JobReport(url="http://127.0.0.1:9", python=str(fakes["py"]), run_id="r1", max_restarts=5)
    path = tmp_path / "job.sbatch"
    path.write_text(render_sbatch(spec, run_env={}, report=report))
    return path


def _env(fakes: dict[str, Path], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RUNYARD_"))}
    env.update(PATH=f"{fakes['bin']}:{env['PATH']}", CALLS_LOG=str(fakes["log"]), SLURM_JOB_ID="41", **extra)
    return env


def _calls(fakes: dict[str, Path]) -> list[str]:
    return fakes["log"].read_text().splitlines() if fakes["log"].exists() else []


def test_the_job_reports_start_and_exit_and_keeps_argv_and_exit_code(
    tmp_path: Path, fakes: dict[str, Path]
) -> None:
    argv = (sys.executable, *PRINT_ARGV, *TRICKY_ARGS)
    script = _script(tmp_path, fakes, (*argv[:-1], argv[-1]), signal_before_end_s=None)
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=_env(fakes), timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["run-from-reporter", *TRICKY_ARGS]  # the reporter's id is exported
    assert _calls(fakes) == [
        "report -m runyard.client.jobreport start",
        "report -m runyard.client.jobreport exit 0",
    ]
    assert not Path("/tmp/runyard-pwned").exists()

    fakes["log"].unlink()
    script = _script(tmp_path, fakes, (sys.executable, "-c", "import sys; sys.exit(3)"))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=_env(fakes), timeout=60)
    assert done.returncode == 3
    assert _calls(fakes)[-1] == "report -m runyard.client.jobreport exit 3"


def test_a_broken_reporter_never_stops_the_job(tmp_path: Path, fakes: dict[str, Path]) -> None:
    script = _script(tmp_path, fakes, (sys.executable, *PRINT_ARGV, "x"))
    env = _env(fakes, FAKE_REPORTER_BROKEN="1")
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["r1", "x"]  # the launch's run id stays


_WAITS_FOR_USR1 = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGUSR1, lambda *a: (print('got USR1', flush=True), sys.exit(7)))\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)


def _run_until_usr1(script: Path, env: dict[str, str]) -> tuple[int, str]:
    proc = subprocess.Popen(["bash", str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGUSR1)  # what Slurm does with --signal=B:USR1@N
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode is not None, "the job did not end after USR1"
        return proc.returncode, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("requeue", "restarts", "status", "requeued"),
    [(True, "0", "requeued", True), (True, "4", "requeued", True), (True, "5", "timeout", False),
     (False, "0", "timeout", False)],
)  # fmt: skip
def test_usr1_ends_the_attempt_requeued_or_timeout(
    tmp_path: Path, fakes: dict[str, Path], requeue: bool, restarts: str, status: str, requeued: bool
) -> None:
    script = _script(tmp_path, fakes, (sys.executable, "-c", _WAITS_FOR_USR1), requeue=requeue)
    code, out = _run_until_usr1(script, _env(fakes, SLURM_RESTART_COUNT=restarts))
    assert code == 7 and out == "got USR1\n"
    calls = _calls(fakes)
    assert calls[1] == f"report -m runyard.client.jobreport exit 7 --status {status}"
    assert ("scontrol requeue 41" in calls) is requeued
    if requeued:  # reported before the requeue, which ends this attempt
        assert calls.index("scontrol requeue 41") > 1


def test_usr1_before_the_command_runs_is_only_logged(tmp_path: Path, fakes: dict[str, Path]) -> None:
    script = _script(tmp_path, fakes, (sys.executable, "-c", "print('ran')"), requeue=True)
    release = tmp_path / "release"
    env = _env(fakes, FAKE_START_UNTIL=str(release))
    proc = subprocess.Popen(
        ["bash", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        started = "report -m runyard.client.jobreport start"
        deadline = time.monotonic() + 30
        while started not in _calls(fakes) and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGUSR1)  # while the start report runs: before the command
        release.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and out == "ran\n"
    assert "USR1 came before the command started" in err
    assert _calls(fakes)[-1] == "report -m runyard.client.jobreport exit 0"  # no requeue for a job that ran
    assert not any(c.startswith("scontrol") for c in _calls(fakes))


def test_without_a_signal_usr1_is_not_trapped(tmp_path: Path, fakes: dict[str, Path]) -> None:
    text = _script(tmp_path, fakes, ("true",), signal_before_end_s=None).read_text()
    assert "trap" not in text and "--signal" not in text and "scontrol" not in text


def test_a_users_script_runs_as_the_command(tmp_path: Path, fakes: dict[str, Path]) -> None:
    user_script = (
        '#!/bin/bash\n#SBATCH --job-name=mine\necho "user script in $PWD as $RUNYARD_RUN_ID: $1"\nexit 4\n'
    )
    saved = tmp_path / "saved.sh"
    saved.write_text(user_script)
    saved.chmod(0o755)
    plan = _plan(
        command=None,
        script=user_script,
        script_path=str(saved),
        workdir=str(tmp_path),
        output_dir=str(tmp_path),
    )
    report = JobReport(url="http://127.0.0.1:9", python=str(fakes["py"]), run_id="r1")
    job = tmp_path / "job.sbatch"
    job.write_text(
        render_sbatch(plan.spec, run_env={}, report=report, user_script=plan.header, overrides=plan.overrides)
    )
    done = subprocess.run(
        ["bash", str(job)], capture_output=True, text=True, env=_env(fakes), timeout=60, cwd=tmp_path
    )
    assert done.returncode == 4
    assert done.stdout == f"user script in {tmp_path} as run-from-reporter: \n"
    assert _calls(fakes)[-1] == "report -m runyard.client.jobreport exit 4"
