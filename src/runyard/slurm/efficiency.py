"""How well a run used what it asked Slurm for, with plain-language advice. Pure: no I/O.

Inputs are what the server already holds: the run's ``slurm["accounting"]`` (Slurm's final
record, stored by the watcher from ``parse.AccountingJob``), ``slurm["requested"]`` (what
``runyard launch`` asked for), the run's times, its system-metric summaries, and the mean of
each GPU-utilisation series (the caller reads those series). The formulas are seff's:

- CPU efficiency = total CPU time / (elapsed × allocated CPUs)
- memory = peak RSS (MaxRSS, per task) against the memory asked per node
- GPU-hours = allocated GPUs × elapsed / 3600

Anything missing makes that part "unknown" with the reason (``note``), never an error.
Advice that asks for *less* (CPUs, memory, time) is only given for runs that finished: a run
that failed or was cancelled early says little about what it needed. Advice that asks for
*more* follows a TIMEOUT or an out-of-memory end; idle GPUs are reported while a run still runs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from runyard.entities import TERMINAL_STATUSES, Run, RunStatus

__all__ = [
    "CpuUse",
    "EfficiencyReport",
    "GpuUse",
    "MemoryUse",
    "TimeUse",
    "efficiency_report",
    "format_bytes",
    "format_duration",
]

GIB = 1024**3
_MIB = 1024**2
CPU_HEADROOM = 1.2  # ask for 20% more than the average use
MEMORY_HEADROOM = 1.2  # ask for 20% more than the peak
LOW_FRACTION = 0.5  # below this share of what was asked, suggest asking for less
IDLE_GPU_PCT = 10.0  # mean utilisation below this: the GPUs sat idle
IDLE_DEVICE_PCT = 5.0  # one device below this while others work: that device was not used
BUSY_GPU_PCT = 40.0  # mean utilisation below this: the GPUs wait on something


@dataclass(frozen=True, slots=True)
class TimeUse:
    elapsed_s: float | None
    time_limit_min: int | None
    fraction_used: float | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class CpuUse:
    alloc_cpus: int | None
    total_cpu_s: float | None
    avg_cpus_used: float | None
    efficiency: float | None  # avg_cpus_used / alloc_cpus
    source: str | None = None  # "accounting" or "system samples"
    note: str | None = None


@dataclass(frozen=True, slots=True)
class MemoryUse:
    max_rss_bytes: int | None  # the largest task's peak (Slurm's MaxRSS)
    req_mem_bytes: int | None  # the job's whole request (all nodes)
    fraction_used: float | None  # peak per node / asked per node
    source: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class GpuUse:
    gpus: int | None
    gpu_hours: float | None
    util_mean_pct: float | None
    util_by_device: dict[str, float]
    note: str | None = None


@dataclass(frozen=True, slots=True)
class EfficiencyReport:
    run_id: str
    status: str
    slurm_state: str | None
    final: bool  # Slurm's final accounting is in
    time: TimeUse
    cpu: CpuUse
    memory: MemoryUse
    gpu: GpuUse
    advice: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["advice"] = list(self.advice)
        return data


# --------------------------------------------------------------------------- small helpers


def _number(data: Any, key: str) -> float | None:
    """A finite, non-negative number from ``data[key]``; None for anything else."""
    value = data.get(key) if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _int(data: Any, key: str) -> int | None:
    value = _number(data, key)
    return None if value is None else int(value)


def format_duration(seconds: float) -> str:
    """``95`` → ``1 min 35 s``; ``7200`` → ``2 h``; ``90000`` → ``1 d 1 h`` (two units at most)."""
    total = round(seconds)
    if total < 60:
        return f"{total} s"
    units = (("d", 86400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        if total >= size:
            parts.append(f"{total // size} {name}")
            total %= size
        elif parts:
            break  # "1 h 5 s" would skip a unit: stop at the first gap
        if len(parts) == 2:
            break
    return " ".join(parts)


def _slurm_time(minutes: int) -> str:
    """Minutes as ``--time`` accepts them: ``H:MM:00`` or ``D-HH:MM:00``."""
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    return f"{days}-{hours:02d}:{mins:02d}:00" if days else f"{hours}:{mins:02d}:00"


def format_bytes(nbytes: float) -> str:
    """Memory as Slurm counts it (1 GB = 1024 MB): ``5 MB``, ``0.4 GB``, ``16 GB``."""
    value = nbytes / GIB
    if value < 0.1:
        return f"{nbytes / _MIB:.0f} MB"
    return f"{value:.1f} GB" if value < 10 else f"{value:.0f} GB"


def _suggest_time_min(elapsed_s: float) -> int:
    """Half as long again as the run took (at least 10 min more), rounded up to a round number."""
    wanted = max(elapsed_s * 1.5, elapsed_s + 600) / 60
    step = 5 if wanted <= 60 else 15 if wanted <= 360 else 60
    return int(math.ceil(wanted / step) * step)


def _is(run: Run, status: RunStatus, slurm_state: str | None, *states: str) -> bool:
    return run.status is status or (slurm_state or "").upper().rstrip("+") in states


# --------------------------------------------------------------------------- the parts


def _time_use(run: Run, acct: dict[str, Any], req: dict[str, Any], now: float | None) -> TimeUse:
    elapsed = _number(acct, "elapsed_s")
    note = None
    if elapsed is None and run.started_at is not None:
        end = run.ended_at if run.ended_at is not None else now
        if end is not None:
            elapsed = max(0.0, end - run.started_at)
    if elapsed is None:
        note = "the run has not started (no start time, no accounting)"
    limit = _int(acct, "time_limit_min")
    if limit is None:
        limit = _int(run.slurm, "time_limit_min")
    if limit is None:
        limit = _int(req, "time_limit_min")
    fraction = None
    if elapsed is not None and limit:
        fraction = elapsed / (limit * 60)
    elif note is None and not limit:
        note = "no time limit is known for this run"
    return TimeUse(elapsed_s=elapsed, time_limit_min=limit, fraction_used=fraction, note=note)


def _tasks(req: dict[str, Any]) -> tuple[int, int]:
    nodes = _int(req, "nodes") or 1
    per_node = _int(req, "ntasks_per_node") or 1
    return nodes, per_node


def _cpu_use(
    acct: dict[str, Any], req: dict[str, Any], elapsed: float | None, cpu_pct_mean: dict[str, float] | None
) -> CpuUse:
    nodes, per_node = _tasks(req)
    alloc = _int(acct, "alloc_cpus") or None
    if alloc is None and _int(req, "cpus_per_task"):
        alloc = nodes * per_node * (_int(req, "cpus_per_task") or 1)
    total = _number(acct, "total_cpu_s") if acct else None
    avg: float | None = None
    source: str | None = None
    if total is not None and elapsed:
        avg, source = total / elapsed, "accounting"
    elif cpu_pct_mean:
        means = [
            v
            for v in cpu_pct_mean.values()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
        ]
        if means:
            avg, source = sum(means) / 100.0, "system samples"
    note = None
    if avg is None:
        note = "no CPU time yet: Slurm's accounting arrives when the job ends"
    elif not alloc:
        note = "the number of allocated CPUs is not known"
    efficiency = avg / alloc if avg is not None and alloc else None
    return CpuUse(
        alloc_cpus=alloc,
        total_cpu_s=total,
        avg_cpus_used=avg,
        efficiency=efficiency,
        source=source,
        note=note,
    )


def _peak_rss_from_samples(run: Run) -> int | None:
    peaks = [
        summary.max
        for key, summary in run.metrics.items()
        if key.startswith("sys/") and key.endswith("/rss_mb") and summary.max is not None
    ]
    return int(max(peaks) * _MIB) if peaks else None


def _memory_use(run: Run, acct: dict[str, Any], req: dict[str, Any]) -> MemoryUse:
    nodes, per_node = _tasks(req)
    peak = _int(acct, "max_rss_bytes")
    source = "accounting" if peak is not None else None
    if peak is None:
        peak = _peak_rss_from_samples(run)
        source = "system samples" if peak is not None else None
    asked = _int(acct, "req_mem_bytes")
    if asked is None and _number(req, "mem_gb"):
        asked = int((_number(req, "mem_gb") or 0) * GIB * nodes)  # mem_gb is per node, like --mem
    fraction = None
    note = None
    if peak is None:
        note = "no peak memory yet: Slurm's accounting arrives when the job ends"
    elif not asked:
        note = "the memory asked for is not known"
    else:
        fraction = peak * per_node / (asked / nodes)
    return MemoryUse(
        max_rss_bytes=peak, req_mem_bytes=asked, fraction_used=fraction, source=source, note=note
    )


def _gpu_use(
    run: Run, acct: dict[str, Any], req: dict[str, Any], elapsed: float | None, util: dict[str, float] | None
) -> GpuUse:
    gpus = _int(acct, "gpus")
    if gpus is None:
        gpus = _int(run.slurm, "gpus")
    if gpus is None and _int(req, "gpus_per_node") is not None:
        gpus = (_int(req, "gpus_per_node") or 0) * (_tasks(req)[0])
    by_device = {
        key: float(value)
        for key, value in sorted((util or {}).items())
        if isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    }
    mean = sum(by_device.values()) / len(by_device) if by_device else None
    hours = gpus * elapsed / 3600 if gpus is not None and elapsed is not None else None
    note = None
    if gpus is None:
        note = "the number of GPUs is not known"
    elif gpus and mean is None:
        note = "no GPU utilisation samples (system metrics off? see RUNYARD_SYSTEM_INTERVAL_S)"
    return GpuUse(gpus=gpus, gpu_hours=hours, util_mean_pct=mean, util_by_device=by_device, note=note)


# --------------------------------------------------------------------------- advice


def _time_advice(run: Run, state: str | None, time: TimeUse, finished: bool) -> list[str]:
    limit, elapsed = time.time_limit_min, time.elapsed_s
    if limit is None or elapsed is None:
        return []
    limit_text = format_duration(limit * 60)
    if _is(run, RunStatus.TIMEOUT, state, "TIMEOUT", "DEADLINE"):
        return [
            f"hit the {limit_text} time limit: ask for more (--time) or save checkpoints so a requeued "
            "run can continue"
        ]
    if finished and time.fraction_used is not None and time.fraction_used < LOW_FRACTION:
        suggested = _suggest_time_min(elapsed)
        if suggested < limit:
            return [
                f"ran {format_duration(elapsed)} of a {limit_text} limit: a shorter --time starts sooner "
                f"(try --time={_slurm_time(suggested)})"
            ]
    return []


def _cpu_advice(cpu: CpuUse, req: dict[str, Any], finished: bool) -> list[str]:
    alloc, avg = cpu.alloc_cpus, cpu.avg_cpus_used
    if not alloc or avg is None or cpu.efficiency is None:
        return []
    nodes, per_node = _tasks(req)
    tasks = nodes * per_node if alloc % (nodes * per_node) == 0 else 1
    per_task_alloc = alloc // tasks
    per_task_used = avg / tasks
    asked = f"asked {alloc} CPUs" + (f" ({tasks} tasks × {per_task_alloc})" if tasks > 1 else "")
    each = " per task" if tasks > 1 else ""
    if finished and cpu.efficiency < LOW_FRACTION:
        suggested = max(1, math.ceil(per_task_used * CPU_HEADROOM - 1e-9))
        if suggested < per_task_alloc:
            return [
                f"{asked}, used {avg:.1f} on average: ask for {suggested}{each} (--cpus-per-task={suggested})"
            ]
    if cpu.efficiency > 1.1:
        wanted = math.ceil(per_task_used - 1e-9)
        return [
            f"{asked} but kept {avg:.1f} busy on average: threads compete for cores; ask for "
            f"{wanted}{each} (--cpus-per-task={wanted}) or start fewer threads"
        ]
    return []


def _memory_advice(
    run: Run, state: str | None, memory: MemoryUse, req: dict[str, Any], finished: bool
) -> list[str]:
    nodes, per_node = _tasks(req)
    peak, asked = memory.max_rss_bytes, memory.req_mem_bytes
    per_node_text = " per node" if nodes > 1 else ""
    if _is(run, RunStatus.OOM, state, "OUT_OF_MEMORY"):
        base = max(float(peak or 0) * per_node, float(asked or 0) / nodes)
        if base <= 0:
            return ["ran out of memory: ask for more (--mem)"]
        suggested = max(1, math.ceil(base * 1.5 / GIB))
        return [f"ran out of memory: ask for {suggested} GB{per_node_text} (--mem={suggested}G)"]
    if peak is None or not asked or memory.fraction_used is None or not finished:
        return []
    used = peak * per_node
    asked_node = asked / nodes
    suggested = max(1, math.ceil(used * MEMORY_HEADROOM / GIB))
    used_text, asked_text = format_bytes(used), format_bytes(asked_node)
    if memory.fraction_used < LOW_FRACTION and suggested * GIB < asked_node:
        return [
            f"used {used_text} of {asked_text} memory{per_node_text}: ask for {suggested} GB "
            f"(--mem={suggested}G)"
        ]
    if memory.fraction_used > 0.9:
        return [
            f"peak memory {used_text} is {memory.fraction_used:.0%} of the {asked_text} asked"
            f"{per_node_text}: ask for {suggested} GB (--mem={suggested}G) before a bigger input gets "
            "the job killed"
        ]
    return []


def _gpu_advice(gpu: GpuUse) -> list[str]:
    if not gpu.gpus or gpu.util_mean_pct is None:
        return []
    mean = gpu.util_mean_pct
    if mean < IDLE_GPU_PCT:
        return [
            f"GPUs idle ({mean:.0f}% average utilisation): check that the model and data are on the GPU, "
            "or run without --gpus"
        ]
    devices = len(gpu.util_by_device)
    idle = [key for key, value in gpu.util_by_device.items() if value < IDLE_DEVICE_PCT]
    if idle and devices == gpu.gpus:
        busy = devices - len(idle)
        return [
            f"{len(idle)} of {devices} GPUs idle (under {IDLE_DEVICE_PCT:.0f}% utilisation): ask for {busy} "
            "or make sure every rank uses its own GPU"
        ]
    if mean < BUSY_GPU_PCT:
        return [
            f"GPUs busy only {mean:.0f}% of the time on average: the input pipeline may be the bottleneck "
            "(more data-loader workers, data on local disk)"
        ]
    return []


# --------------------------------------------------------------------------- the report


def efficiency_report(
    run: Run,
    gpu_util_mean: dict[str, float] | None,
    cpu_pct_mean: dict[str, float] | None = None,
    *,
    now: float | None = None,
) -> EfficiencyReport:
    """How ``run`` used its allocation, with advice.

    ``gpu_util_mean``: the mean of each ``sys/{host}/gpu{i}/util_pct`` series of the run;
    ``cpu_pct_mean``: the mean of each ``sys/{host}/r{rank}/cpu_pct`` series, used for CPU use
    when Slurm's accounting is not in yet (100 = one core); ``now``: the time used for the
    elapsed time of a run that has not ended (None: unknown until it ends or is accounted).
    """
    raw_acct = run.slurm.get("accounting") if isinstance(run.slurm, dict) else None
    acct: dict[str, Any] = raw_acct if isinstance(raw_acct, dict) else {}
    raw_req = run.slurm.get("requested") if isinstance(run.slurm, dict) else None
    req: dict[str, Any] = raw_req if isinstance(raw_req, dict) else {}
    state = acct.get("state") if isinstance(acct.get("state"), str) else run.slurm_state
    finished = run.status is RunStatus.FINISHED

    time = _time_use(run, acct, req, now)
    cpu = _cpu_use(acct, req, time.elapsed_s, cpu_pct_mean)
    memory = _memory_use(run, acct, req)
    gpu = _gpu_use(run, acct, req, time.elapsed_s, gpu_util_mean)
    advice = [
        *_time_advice(run, state, time, finished),
        *_cpu_advice(cpu, req, finished),
        *_memory_advice(run, state, memory, req, finished),
        *_gpu_advice(gpu),
    ]
    if run.status in TERMINAL_STATUSES and not finished and not advice:
        advice.append(
            f"the run ended {run.status.value}: advice on asking for less is given for runs that finished"
        )
    return EfficiencyReport(
        run_id=run.id,
        status=run.status.value,
        slurm_state=state if isinstance(state, str) else None,
        final=bool(acct),
        time=time,
        cpu=cpu,
        memory=memory,
        gpu=gpu,
        advice=tuple(advice),
    )
