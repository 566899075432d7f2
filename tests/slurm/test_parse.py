"""The Slurm output parsers, on output recorded from the dev cluster (Slurm 22.05.8).

``tests/slurm/data`` was recorded by hand once from ``scripts/dev-cluster.sh up`` jobs:
13 rec-ok (burned CPU), 14 rec-fail (``exit 3``), 15 rec-held (``-H``), 16 rec-run (sleep 60,
cancelled), 17 rec-array (``--array=0-3%2``, tasks are jobs 20, 21, 22 and 17 itself),
18 rec-gpu (``--gpus-per-node=2``), 19 rec-dep (``afterok:14``, never satisfied), 23 rec-big
(``-N3 -c4``, waiting on Resources, with a start estimate); ``sinfo_gpu_busy.json`` while
job 24 held 3 GPUs on n1. Jobs 9-12 in ``squeue.json`` are earlier cluster smoke tests.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from runyard.errors import InvalidInput
from runyard.slurm.parse import (
    AccountingJob,
    QueueJob,
    parse_gres,
    parse_partitions,
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
    parse_start_estimates,
    parse_time_min,
)

DATA = Path(__file__).parent / "data"


def _read(name: str) -> str:
    return (DATA / name).read_text()


@pytest.fixture(scope="module")
def queue() -> dict[str, QueueJob]:
    return {job.display_id: job for job in parse_squeue_json(_read("squeue.json"))}


@pytest.fixture(scope="module")
def acct() -> dict[str, AccountingJob]:
    return {job.job_id: job for job in parse_sacct_json(_read("sacct.json"))}


# ---------------------------------------------------------------- squeue


def test_squeue_states_and_reasons(queue: dict[str, QueueJob]) -> None:
    assert queue["13"].state == "COMPLETED"
    assert queue["14"].state == "FAILED"
    assert queue["14"].reason == "NonZeroExitCode"
    assert queue["15"].state == "PENDING"
    assert queue["15"].reason == "JobHeldUser"
    assert queue["16"].state == "RUNNING"
    assert queue["16"].reason is None  # "None" in the JSON
    assert queue["19"].reason == "DependencyNeverSatisfied"


def test_squeue_decodes_raw_wait_status(queue: dict[str, QueueJob]) -> None:
    assert queue["14"].exit_code == 3  # the JSON says 768
    assert queue["14"].signal is None
    assert queue["13"].exit_code == 0


def test_squeue_array(queue: dict[str, QueueJob]) -> None:
    running = queue["17_0"]
    assert (running.job_id, running.array_job_id, running.array_task_id) == (20, 17, 0)
    assert queue["17_1"].state == "RUNNING"
    rest = queue["17_[2-3%2]"]
    assert rest.job_id == 17
    assert rest.array_task_id is None
    assert rest.array_task_string == "2-3%2"
    assert rest.reason == "JobArrayTaskLimit"
    assert queue["13"].array_job_id is None


def test_squeue_resources_times_and_user(queue: dict[str, QueueJob]) -> None:
    gpu = queue["18"]
    assert gpu.gpus_per_node == 2
    assert gpu.tres_per_node == "gres:gpu:2"
    assert gpu.tres_alloc["gres/gpu"] == "2"
    assert gpu.partition == "gpu"
    assert gpu.nodes == "n2"
    assert queue["13"].gpus_per_node == 0
    assert queue["13"].time_limit_min == 5  # debug partition's limit
    assert queue["16"].time_limit_min == 60
    assert queue["16"].start_time is not None and queue["16"].submit_time is not None
    assert queue["16"].start_time >= queue["16"].submit_time
    assert queue["15"].start_time is None  # 0 = not started
    assert queue["15"].nodes is None
    assert queue["16"].restart_count == 0
    assert queue["16"].user == "root"


# ---------------------------------------------------------------- sacct


def test_sacct_failed_job(acct: dict[str, AccountingJob]) -> None:
    failed = acct["14"]
    assert failed.state == "FAILED"
    # sacct -o ExitCode says 3:0, but 22.05's JSON says return_code 0: unknown, not a wrong 0
    assert failed.exit_code is None


def test_sacct_completed_job_burned_cpu(acct: dict[str, AccountingJob]) -> None:
    ok = acct["13"]
    assert ok.state == "COMPLETED"
    assert ok.exit_code == 0
    assert ok.total_cpu_s == pytest.approx(0.686098)  # from steps[].time.total, job level is 0
    assert ok.total_cpu_s > 0
    assert ok.elapsed_s == 1
    assert ok.time_limit_min == 5
    assert ok.alloc_cpus == 1
    assert ok.req_mem_bytes == 500 * 1024 * 1024
    assert ok.nodes == "n1"
    assert ok.step_ids == ("batch",)
    assert ok.start_time is not None and ok.end_time is not None
    assert ok.end_time - ok.start_time == ok.elapsed_s


def test_sacct_array_has_four_tasks(acct: dict[str, AccountingJob]) -> None:
    tasks = [job for job in acct.values() if job.array_job_id == 17]
    assert sorted(job.job_id for job in tasks) == ["17_0", "17_1", "17_2", "17_3"]
    assert {job.raw_job_id for job in tasks} == {17, 20, 21, 22}
    assert all(job.state == "COMPLETED" and job.exit_code == 0 for job in tasks)
    assert acct["17_2"].array_task_id == 2


def test_sacct_gpu_and_rss(acct: dict[str, AccountingJob]) -> None:
    assert acct["18"].gpus == 2
    assert acct["13"].gpus == 0
    assert acct["17_0"].max_rss_bytes == 3305472  # steps[].tres.requested.max[type=mem], bytes
    assert acct["13"].max_rss_bytes is None  # too short for the accounting gatherer


def test_sacct_cancelled_jobs(acct: dict[str, AccountingJob]) -> None:
    running = acct["16"]
    assert running.state == "CANCELLED"
    assert running.signal == 15  # the batch step was SIGNALED with Terminated
    assert running.elapsed_s == 15
    held = acct["15"]
    assert held.state == "CANCELLED"
    assert held.reason == "JobHeldUser"
    assert held.nodes is None  # sacct says "None assigned"
    assert held.alloc_cpus == 0
    assert held.step_ids == ()


def test_sacct_filters_to_the_jobs_asked(acct: dict[str, AccountingJob]) -> None:
    # sacct -j does filter (unlike squeue --json): only the recorded ids are there
    assert {job.raw_job_id for job in acct.values()} == {13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23}


# ---------------------------------------------------------------- sinfo


def test_sinfo_nodes() -> None:
    nodes = {node.name: node for node in parse_sinfo_json(_read("sinfo.json"))}
    assert sorted(nodes) == ["n1", "n2", "n3"]
    for node in nodes.values():
        assert node.gpus_total == 4
        assert node.cpus == 4
        assert node.real_memory_mb == 4000
        assert node.partitions == ("debug", "cpu", "gpu")
        assert node.reason is None
    assert nodes["n1"].state == "mixed"
    assert nodes["n1"].alloc_cpus == 2  # rec-run and array task 17_0
    assert nodes["n1"].alloc_memory_mb == 1000
    assert nodes["n3"].state == "idle"
    assert nodes["n3"].alloc_cpus == 0


def test_sinfo_gpus_in_use() -> None:
    nodes = {node.name: node for node in parse_sinfo_json(_read("sinfo_gpu_busy.json"))}
    assert (nodes["n1"].gpus_used, nodes["n1"].gpus_total) == (3, 4)
    assert nodes["n2"].gpus_used == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("gpu:4", {"gpu": 4}),
        ("gpu:0", {"gpu": 0}),
        ("gpu:tesla:2(IDX:0,2)", {"gpu": 2}),
        ("gpu:a100:2(S:0-1),mps:100", {"gpu": 2, "mps": 100}),
        ("gres:gpu:2", {"gpu": 2}),
        ("gres/gpu=3", {"gpu": 3}),
        ("", {}),
        ("(null)", {}),
    ],
)
def test_parse_gres(text: str, expected: dict[str, int]) -> None:
    assert parse_gres(text) == expected


# ---------------------------------------------------------------- scontrol show partition


def test_partitions() -> None:
    """``scontrol show partition --oneliner`` recorded from the dev cluster (deploy/slurm/slurm.conf)."""
    parts = {p.name: p for p in parse_partitions(_read("scontrol_partitions.txt"))}
    assert list(parts) == ["debug", "cpu", "gpu"]
    debug = parts["debug"]
    assert debug.default is True and debug.state == "UP"
    assert (debug.max_time_min, debug.default_time_min) == (10, 5)
    assert (debug.nodes, debug.total_nodes, debug.total_cpus) == ("n[1-3]", 3, 12)
    assert (debug.gpus, debug.memory_mb) == (12, 12000)
    assert parts["cpu"].default is False
    assert (parts["cpu"].max_time_min, parts["cpu"].default_time_min) == (None, 60)  # UNLIMITED


def test_partition_variants() -> None:
    text = (
        "PartitionName=long State=DOWN Default=NO MaxTime=7-00:00:00 DefaultTime=1-12:30:00 "
        "Nodes=(null) TotalCPUs=0 TotalNodes=0 TRES=cpu=0,mem=1.50T\n"
        "\n"
        "PartitionName=short Nodes=g[01-02] MaxTime=30 State=DRAIN Reason=being fixed now TotalCPUs=8\n"
    )
    long, short = parse_partitions(text)
    assert (long.state, long.max_time_min, long.default_time_min) == ("DOWN", 7 * 1440, 1440 + 12 * 60 + 30)
    assert (long.nodes, long.gpus, long.memory_mb) == (None, 0, int(1.5 * 1024 * 1024))
    assert (short.name, short.state, short.max_time_min, short.default_time_min) == (
        "short",
        "DRAIN",
        30,
        None,
    )
    assert (short.total_cpus, short.total_nodes, short.default, short.memory_mb) == (8, 0, False, None)
    assert parse_partitions("") == []


def test_partitions_reject_garbage() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_partitions("scontrol: error: slurm_load_partitions: Unable to contact slurm controller\n")
    assert info.value.field == "slurm_output"
    with pytest.raises(InvalidInput):
        parse_partitions("PartitionName=x MaxTime=soon\n")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [
        ("UNLIMITED", None),
        ("INFINITE", None),
        ("NONE", None),
        ("", None),
        ("45", 45),
        ("10:30", 11),  # MM:SS, seconds round up
        ("10:00", 10),
        ("01:00:00", 60),
        ("2-00", 2880),
        ("1-02:03", 1440 + 123),
        ("1-00:00:01", 1441),
    ],
)
def test_parse_time_min(text: str, minutes: int | None) -> None:
    assert parse_time_min(text) == minutes


@pytest.mark.parametrize("bad", ["x", "1:2:3:4", "a-01:00:00", "-5", "1-", "10:xx"])
def test_parse_time_min_rejects(bad: str) -> None:
    with pytest.raises(InvalidInput):
        parse_time_min(bad)


# ---------------------------------------------------------------- squeue --start


def test_start_estimates() -> None:
    estimates = {e.job_id: e for e in parse_start_estimates(_read("squeue_start.txt"))}
    assert estimates["23"].start_time == datetime(2026, 11, 22, 10, 1, 30)
    assert estimates["23"].reason == "Resources"
    assert estimates["15"].start_time is None  # N/A: held
    assert estimates["19"].reason == "DependencyNeverSatisfied"


def test_start_estimates_pending_array() -> None:
    estimates = parse_start_estimates(_read("squeue_start_pending.txt"))
    assert [e.job_id for e in estimates] == ["15", "19", "17_[2-3%2]"]
    assert all(e.start_time is None for e in estimates)
    assert estimates[2].reason == "JobArrayTaskLimit"


def test_start_estimates_rejects_garbage() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_start_estimates("squeue: error: Invalid user\n")
    assert info.value.field == "slurm_output"
    with pytest.raises(InvalidInput):
        parse_start_estimates("12|tomorrow|(Resources)")
    assert parse_start_estimates("") == []


# ---------------------------------------------------------------- robustness


@pytest.mark.parametrize("parser", [parse_squeue_json, parse_sacct_json, parse_sinfo_json])
@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"jobs": 3, "nodes": 3}'])
def test_unparseable_output_is_invalid_input(parser: object, text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parser(text)  # type: ignore[operator]
    assert info.value.field == "slurm_output"


def test_missing_keys_are_tolerated() -> None:
    assert parse_squeue_json('{"meta": {}, "errors": []}') == []
    [job] = parse_squeue_json('{"jobs": [{"job_id": 5}]}')
    assert (job.job_id, job.state, job.time_limit_min, job.exit_code, job.gpus_per_node) == (
        5,
        "UNKNOWN",
        None,
        None,
        0,
    )
    [acct] = parse_sacct_json('{"jobs": [{"job_id": 5}]}')
    assert (acct.job_id, acct.total_cpu_s, acct.max_rss_bytes, acct.gpus) == ("5", 0.0, None, 0)
    [node] = parse_sinfo_json('{"nodes": [{"name": "x"}]}')
    assert (node.cpus, node.gpus_total, node.partitions) == (0, 0, ())


def test_later_slurm_number_objects_and_state_lists() -> None:
    text = (
        '{"jobs": [{"job_id": 7, "job_state": ["RUNNING"], '
        '"time_limit": {"set": true, "infinite": false, "number": 30}, '
        '"start_time": {"set": true, "infinite": false, "number": 1700000000}, '
        '"exit_code": {"status": ["EXITED"], "return_code": {"set": true, "number": 2}}}]}'
    )
    [job] = parse_squeue_json(text)
    assert (job.state, job.time_limit_min, job.start_time, job.exit_code) == ("RUNNING", 30, 1700000000, 2)
    [unlimited] = parse_squeue_json(
        '{"jobs": [{"job_id": 8, "time_limit": {"set": true, "infinite": true}}]}'
    )
    assert unlimited.time_limit_min is None


def test_public_api_is_pinned() -> None:
    import runyard.slurm

    assert sorted(runyard.slurm.__all__) == [
        "AccountingJob",
        "JobSpec",
        "NodeInfo",
        "PartitionInfo",
        "QueueJob",
        "StartEstimate",
        "parse_partitions",
        "parse_sacct_json",
        "parse_sinfo_json",
        "parse_squeue_json",
        "parse_start_estimates",
        "render_sbatch",
    ]


def test_errors_in_the_json_are_errors_not_an_empty_queue() -> None:
    """22.05's squeue --json exits 0 with slurmctld down: only its "errors" list says so."""
    from runyard.errors import SlurmError

    with pytest.raises(SlurmError) as info:
        parse_squeue_json((DATA / "squeue_ctld_down.json").read_text())
    assert "slurm_load_jobs" in info.value.message and "Failed while looking for jobs" in info.value.message


def test_sinfo_node_state_keeps_its_flags() -> None:
    """A drained node is not "idle": 22.05 puts DRAIN in state_flags, later versions in a list."""
    doc = json.loads(_read("sinfo.json"))
    doc["nodes"][0]["state"] = "idle"
    doc["nodes"][0]["state_flags"] = ["DRAIN"]
    doc["nodes"][0]["reason"] = "disk full"
    doc["nodes"][1]["state"] = ["MIXED", "COMPLETING"]
    nodes = {node.name: node for node in parse_sinfo_json(json.dumps(doc))}
    assert nodes["n1"].state == "idle+drain" and nodes["n1"].reason == "disk full"
    assert nodes["n2"].state == "mixed+completing"
    assert nodes["n3"].state == "idle"
