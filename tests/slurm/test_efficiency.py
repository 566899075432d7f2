"""``efficiency_report``: made-up accounting numbers for every advice branch, and missing or
malformed inputs that must give "unknown" rather than an error."""

from __future__ import annotations

import math
from typing import Any

import pytest

from runyard.entities import MetricSummary, Run, RunStatus
from runyard.slurm.efficiency import efficiency_report, format_bytes, format_duration

GB = 1024**3
MB = 1024**2


def acct(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "elapsed_s": 3000,
        "total_cpu_s": 3000 * 3.8,  # 95% of 4 CPUs
        "alloc_cpus": 4,
        "max_rss_bytes": 3 * GB,
        "req_mem_bytes": 4 * GB,
        "gpus": 0,
        "time_limit_min": 60,
        "nodes": "n1",
        "partition": "cpu",
        "state": "COMPLETED",
        "exit_code": 0,
    }
    base.update(kw)
    return base


def make_run(
    accounting: dict[str, Any] | None = None,
    *,
    status: RunStatus = RunStatus.FINISHED,
    requested: dict[str, Any] | None = None,
    metrics: dict[str, MetricSummary] | None = None,
    **kw: Any,
) -> Run:
    slurm: dict[str, Any] = {}
    if accounting is not None:
        slurm["accounting"] = accounting
    if requested is not None:
        slurm["requested"] = requested
    return Run(
        id="r1",
        experiment_id="e",
        project_id="p",
        name="r",
        status=status,
        created_at=0.0,
        updated_at=0.0,
        slurm_job_id="5",
        slurm=slurm,
        metrics=metrics or {},
        **kw,
    )


def advice(run: Run, gpu: dict[str, float] | None = None, **kw: Any) -> list[str]:
    return list(efficiency_report(run, gpu, **kw).advice)


def test_a_well_sized_run_gets_no_advice() -> None:
    report = efficiency_report(make_run(acct()), None)
    assert report.advice == ()
    assert report.final is True and report.cpu.source == "accounting"
    assert report.cpu.efficiency == pytest.approx(0.95)
    assert report.memory.fraction_used == pytest.approx(0.75)
    assert report.time.fraction_used == pytest.approx(3000 / 3600)
    assert report.gpu.gpus == 0 and report.gpu.gpu_hours == 0.0
    data = report.as_dict()
    assert data["cpu"]["alloc_cpus"] == 4 and data["advice"] == [] and data["run_id"] == "r1"


# ---------------------------------------------------------------- CPUs


def test_too_many_cpus() -> None:
    run = make_run(acct(alloc_cpus=8, total_cpu_s=3000 * 1.1))
    assert advice(run) == ["asked 8 CPUs, used 1.1 on average: ask for 2 (--cpus-per-task=2)"]


def test_at_least_one_cpu_is_suggested() -> None:
    run = make_run(acct(alloc_cpus=4, total_cpu_s=3000 * 0.05))
    assert advice(run) == ["asked 4 CPUs, used 0.1 on average: ask for 1 (--cpus-per-task=1)"]


def test_a_single_cpu_run_is_never_told_to_shrink() -> None:
    assert advice(make_run(acct(alloc_cpus=1, total_cpu_s=30.0))) == []


def test_cpus_per_task_for_a_multi_task_job() -> None:
    requested = {"nodes": 2, "ntasks_per_node": 2, "cpus_per_task": 4}
    run = make_run(
        acct(alloc_cpus=16, total_cpu_s=3000 * 4.0, max_rss_bytes=GB, req_mem_bytes=8 * GB),
        requested=requested,
    )
    assert advice(run) == [
        "asked 16 CPUs (4 tasks × 4), used 4.0 on average: ask for 2 per task (--cpus-per-task=2)"
    ]


def test_more_threads_than_cpus() -> None:
    run = make_run(acct(alloc_cpus=2, total_cpu_s=3000 * 3.5))
    [line] = advice(run)
    assert line.startswith("asked 2 CPUs but kept 3.5 busy on average") and "--cpus-per-task=4" in line


def test_cpu_use_from_system_samples_before_accounting() -> None:
    run = make_run(None, status=RunStatus.RUNNING, requested={"cpus_per_task": 8}, started_at=1000.0)
    report = efficiency_report(run, None, {"sys/n1/r0/cpu_pct": 150.0, "sys/n1/r1/cpu_pct": 50.0}, now=1600.0)
    assert report.cpu.source == "system samples" and report.cpu.avg_cpus_used == pytest.approx(2.0)
    assert report.cpu.alloc_cpus == 8 and report.cpu.efficiency == pytest.approx(0.25)
    assert report.time.elapsed_s == 600.0 and report.final is False
    assert report.advice == ()  # still running: no advice to ask for less yet


# ---------------------------------------------------------------- memory


def test_too_much_memory() -> None:
    run = make_run(acct(max_rss_bytes=400 * MB, req_mem_bytes=16 * GB))
    assert advice(run) == ["used 0.4 GB of 16 GB memory: ask for 1 GB (--mem=1G)"]


def test_memory_headroom_is_rounded_up() -> None:
    run = make_run(acct(max_rss_bytes=int(2.6 * GB), req_mem_bytes=32 * GB))
    assert advice(run) == ["used 2.6 GB of 32 GB memory: ask for 4 GB (--mem=4G)"]  # 2.6 × 1.2 = 3.1 → 4


def test_memory_per_node_for_a_multi_node_job() -> None:
    requested = {"nodes": 2, "ntasks_per_node": 1, "mem_gb": 16}
    run = make_run(acct(max_rss_bytes=1 * GB, req_mem_bytes=32 * GB), requested=requested)
    assert advice(run) == ["used 1.0 GB of 16 GB memory per node: ask for 2 GB (--mem=2G)"]


def test_memory_close_to_the_limit() -> None:
    run = make_run(acct(max_rss_bytes=int(15.2 * GB), req_mem_bytes=16 * GB))
    [line] = advice(run)
    assert line.startswith("peak memory 15 GB is 95% of the 16 GB asked: ask for 19 GB (--mem=19G)")


def test_out_of_memory() -> None:
    run = make_run(
        acct(max_rss_bytes=4 * GB, req_mem_bytes=4 * GB, state="OUT_OF_MEMORY"), status=RunStatus.OOM
    )
    assert advice(run) == ["ran out of memory: ask for 6 GB (--mem=6G)"]


def test_peak_memory_from_system_samples() -> None:
    summary = MetricSummary("sys/n1/r0/rss_mb", 3, 100.0, 2, 0.0, 50.0, 300.0)
    run = make_run(None, status=RunStatus.RUNNING, metrics={summary.key: summary}, requested={"mem_gb": 4})
    report = efficiency_report(run, None)
    assert report.memory.max_rss_bytes == 300 * MB and report.memory.source == "system samples"
    assert report.memory.fraction_used == pytest.approx(300 / 4096)


# ---------------------------------------------------------------- time


def test_short_run_with_a_long_limit() -> None:
    run = make_run(acct(elapsed_s=300, total_cpu_s=300 * 3.8, time_limit_min=120))
    assert advice(run) == ["ran 5 min of a 2 h limit: a shorter --time starts sooner (try --time=0:15:00)"]


def test_suggested_time_rounds_to_quarter_hours_and_hours() -> None:
    run = make_run(acct(elapsed_s=2 * 3600, total_cpu_s=7200 * 3.8, time_limit_min=24 * 60))
    assert advice(run) == ["ran 2 h of a 1 d limit: a shorter --time starts sooner (try --time=3:00:00)"]


def test_timeout() -> None:
    run = make_run(acct(elapsed_s=7260, total_cpu_s=7260 * 3.8, time_limit_min=120, state="TIMEOUT"))
    run = make_run(run.slurm["accounting"], status=RunStatus.TIMEOUT)
    [line] = advice(run)
    assert line.startswith("hit the 2 h time limit: ask for more (--time)")


def test_no_advice_to_shrink_after_a_failure() -> None:
    run = make_run(
        acct(alloc_cpus=8, total_cpu_s=10.0, elapsed_s=100, state="FAILED"), status=RunStatus.FAILED
    )
    assert advice(run) == ["the run ended failed: advice on asking for less is given for runs that finished"]


# ---------------------------------------------------------------- GPUs


def test_idle_gpus() -> None:
    run = make_run(acct(gpus=2))
    report = efficiency_report(run, {"sys/n1/gpu0/util_pct": 2.0, "sys/n1/gpu1/util_pct": 4.0})
    assert report.gpu.util_mean_pct == pytest.approx(3.0)
    assert report.gpu.gpu_hours == pytest.approx(2 * 3000 / 3600)
    [line] = report.advice
    assert line.startswith("GPUs idle (3% average utilisation)")


def test_some_gpus_idle() -> None:
    util = {"sys/n1/gpu0/util_pct": 95.0, "sys/n1/gpu1/util_pct": 90.0, "sys/n1/gpu2/util_pct": 1.0}
    util["sys/n1/gpu3/util_pct"] = 0.0
    [line] = advice(make_run(acct(gpus=4)), util)
    assert line.startswith("2 of 4 GPUs idle (under 5% utilisation): ask for 2")


def test_gpus_waiting_on_input() -> None:
    [line] = advice(make_run(acct(gpus=1)), {"sys/n1/gpu0/util_pct": 25.0})
    assert line.startswith("GPUs busy only 25% of the time on average")


def test_busy_gpus_get_no_advice() -> None:
    assert advice(make_run(acct(gpus=1)), {"sys/n1/gpu0/util_pct": 85.0}) == []


def test_idle_gpus_are_reported_while_the_run_runs() -> None:
    run = make_run(None, status=RunStatus.RUNNING, started_at=0.0)
    run.slurm["gpus"] = 1
    [line] = advice(run, {"sys/n1/gpu0/util_pct": 0.5}, now=60.0)
    assert line.startswith("GPUs idle (0% average")


def test_gpus_without_samples_are_unknown() -> None:
    report = efficiency_report(make_run(acct(gpus=2)), None)
    assert report.gpu.util_mean_pct is None and "RUNYARD_SYSTEM_INTERVAL_S" in (report.gpu.note or "")
    assert report.gpu.gpu_hours == pytest.approx(2 * 3000 / 3600)


# ---------------------------------------------------------------- missing and malformed inputs


def test_nothing_known() -> None:
    report = efficiency_report(make_run(None, status=RunStatus.QUEUED), None)
    assert report.advice == () and report.final is False
    for part in (report.time, report.cpu, report.memory):
        assert part.note
    assert report.time.elapsed_s is None and report.cpu.efficiency is None
    assert report.memory.fraction_used is None and report.gpu.gpus is None and report.gpu.gpu_hours is None


@pytest.mark.parametrize("bad", ["12", None, -5, math.nan, math.inf, True, [], {}])
def test_malformed_accounting_values_are_unknown(bad: Any) -> None:
    broken = {key: bad for key in acct()}
    report = efficiency_report(make_run(broken), {"sys/n1/gpu0/util_pct": bad}, {"sys/n1/r0/cpu_pct": bad})
    assert report.cpu.efficiency is None and report.memory.fraction_used is None
    assert report.time.fraction_used is None and report.gpu.util_mean_pct is None


def test_accounting_that_is_not_a_dict_is_ignored() -> None:
    run = make_run(None)
    run.slurm["accounting"] = "oops"
    run.slurm["requested"] = [1, 2]
    assert efficiency_report(run, None).final is False


def test_zero_elapsed_does_not_divide_by_zero() -> None:
    report = efficiency_report(make_run(acct(elapsed_s=0, total_cpu_s=0.0)), None)
    assert report.cpu.efficiency is None and report.time.fraction_used == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (95, "1 min 35 s"),
        (300, "5 min"),
        (7200, "2 h"),
        (3605, "1 h"),
        (90000, "1 d 1 h"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("nbytes", "text"),
    [(5 * MB, "5 MB"), (400 * MB, "0.4 GB"), (int(2.6 * GB), "2.6 GB"), (16 * GB, "16 GB")],
)
def test_format_bytes(nbytes: int, text: str) -> None:
    assert format_bytes(nbytes) == text
