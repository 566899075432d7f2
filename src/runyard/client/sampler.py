"""System metrics of a run: CPU, memory and GPUs, sampled by a daemon thread.

Every ``RUNYARD_SYSTEM_INTERVAL_S`` seconds (default 10; 0 or ``init(system_metrics=False)``
turns it off) the sampler logs one point per key through the run's normal path, so system
metrics are batched and journaled like any other metric. Key names are a contract that the
efficiency report and the web UI read:

    sys/{host}/r{rank}/cpu_pct         CPU of this process and its descendants (100 = one core)
    sys/{host}/r{rank}/rss_mb          resident memory of the same processes, MiB
    sys/{host}/gpu{index}/util_pct     GPU utilisation, %
    sys/{host}/gpu{index}/mem_mb       GPU memory used, MiB
    sys/{host}/gpu{index}/mem_total_mb GPU memory, MiB
    sys/{host}/gpu{index}/power_w      power draw, W
    sys/{host}/gpu{index}/pcie_rx_mbps PCIe receive, MiB/s (NVML only)
    sys/{host}/gpu{index}/pcie_tx_mbps PCIe transmit, MiB/s (NVML only)

``host`` is SLURMD_NODENAME or the short host name, ``rank`` the global rank, ``index`` the
GPU's index on its node as nvidia-smi shows it. Every rank reports its CPU and memory; GPUs
are reported by local rank 0 (all GPUs it can see) and by any rank whose
``CUDA_VISIBLE_DEVICES`` names exactly one GPU (a per-task binding), so ranks that share
GPUs do not report them twice. A point's step is the sample's POSIX time in whole seconds,
so the samples of every attempt and rank of a run sort in time order.

GPU readings come from NVML (``pynvml``, package nvidia-ml-py) when it loads, else from
``nvidia-smi``; without either there are simply no GPU keys. Nothing here ever raises into
the run: a failing reading is skipped.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from runyard import config
from runyard.client.encode import Warner
from runyard.errors import InvalidInput

__all__ = [
    "GpuReading",
    "SystemSampler",
    "interval_s",
    "nvidia_smi_readings",
    "parse_nvidia_smi",
    "process_usage",
]

NVIDIA_SMI_QUERY = "index,uuid,utilization.gpu,memory.used,memory.total,power.draw"
_MIB = 1024 * 1024


def interval_s(system_metrics: bool | None) -> float:
    """Seconds between samples; 0 when off (``init(system_metrics=False)`` or the variable 0)."""
    if system_metrics is False:
        return 0.0
    name = "RUNYARD_SYSTEM_INTERVAL_S"
    raw = config.env(name) or config.default(name)
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds (0 = off), got {raw!r}", field=name) from None
    if not 0 <= value <= 86400 or value != value:
        raise InvalidInput(f"{name} must be between 0 and 86400 seconds, got {raw!r}", field=name)
    return value


# -- processes ------------------------------------------------------------------------------
def _stat(pid: int) -> tuple[int, int] | None:
    """(CPU clock ticks including reaped children, resident pages) of one process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        rest = data[data.rindex(b")") + 2 :].split()
        return int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14]), int(rest[21])
    except (OSError, ValueError, IndexError):
        return None


def _children(pid: int) -> list[int] | None:
    """Direct children of ``pid`` (None when the kernel has no ``children`` files)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
        except FileNotFoundError:
            if pid == os.getpid():
                return None
        except (OSError, ValueError):
            continue
    return out


def _descendants_by_scan(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(name))
    out: list[int] = []
    stack = [root]
    while stack:
        for child in parents.get(stack.pop(), ()):
            out.append(child)
            stack.append(child)
    return out


def _descendants(root: int) -> list[int]:
    out: list[int] = []
    stack = [root]
    while stack:
        kids = _children(stack.pop())
        if kids is None:
            return _descendants_by_scan(root)
        out.extend(kids)
        stack.extend(kids)
    return out


def process_usage() -> tuple[float, float | None]:
    """(CPU seconds, resident bytes) of this process and its descendants; from /proc, else
    ``os.times`` with no memory figure."""
    me = os.getpid()
    own = _stat(me)
    if own is None:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system, None
    ticks, pages = own
    for pid in _descendants(me):
        st = _stat(pid)
        if st is not None:
            ticks += st[0]
            pages += st[1]
    return ticks / os.sysconf("SC_CLK_TCK"), float(pages * os.sysconf("SC_PAGE_SIZE"))


# -- GPUs -----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    uuid: str
    util_pct: float | None = None
    mem_mb: float | None = None
    mem_total_mb: float | None = None
    power_w: float | None = None
    pcie_rx_mbps: float | None = None
    pcie_tx_mbps: float | None = None


def _num(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:  # "[N/A]", "[Not Supported]"
        return None
    return value if value == value else None


def parse_nvidia_smi(output: str) -> list[GpuReading]:
    """Rows of ``nvidia-smi --query-gpu=NVIDIA_SMI_QUERY --format=csv,noheader,nounits``."""
    out = []
    for line in output.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 6 or not cells[0].isdigit():
            continue
        out.append(
            GpuReading(
                index=int(cells[0]),
                uuid=cells[1],
                util_pct=_num(cells[2]),
                mem_mb=_num(cells[3]),
                mem_total_mb=_num(cells[4]),
                power_w=_num(cells[5]),
            )
        )
    return out


def nvidia_smi_readings(executable: str, timeout_s: float = 10.0) -> list[GpuReading] | None:
    """One ``nvidia-smi`` query; None when it cannot run or fails."""
    import subprocess

    try:
        done = subprocess.run(
            [executable, f"--query-gpu={NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return parse_nvidia_smi(done.stdout)


class _GpuSource(Protocol):
    def read(self) -> list[GpuReading] | None: ...

    def close(self) -> None: ...


class _Nvml:
    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._handles = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            uuid = nvml.nvmlDeviceGetUUID(handle)
            self._handles.append((i, uuid.decode() if isinstance(uuid, bytes) else str(uuid), handle))

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # NVMLError_NotSupported and friends: that field is unknown
            return None

    def read(self) -> list[GpuReading] | None:
        n, call = self._nvml, self._call
        out = []
        for index, uuid, h in self._handles:
            util = call(n.nvmlDeviceGetUtilizationRates, h)
            mem = call(n.nvmlDeviceGetMemoryInfo, h)
            power = call(n.nvmlDeviceGetPowerUsage, h)  # mW
            rx = call(n.nvmlDeviceGetPcieThroughput, h, n.NVML_PCIE_UTIL_RX_BYTES)  # KiB/s
            tx = call(n.nvmlDeviceGetPcieThroughput, h, n.NVML_PCIE_UTIL_TX_BYTES)
            out.append(
                GpuReading(
                    index=index,
                    uuid=uuid,
                    util_pct=None if util is None else float(util.gpu),
                    mem_mb=None if mem is None else mem.used / _MIB,
                    mem_total_mb=None if mem is None else mem.total / _MIB,
                    power_w=None if power is None else power / 1000.0,
                    pcie_rx_mbps=None if rx is None else rx / 1024.0,
                    pcie_tx_mbps=None if tx is None else tx / 1024.0,
                )
            )
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class _NvidiaSmi:
    def __init__(self, executable: str) -> None:
        self._executable = executable

    def read(self) -> list[GpuReading] | None:
        return nvidia_smi_readings(self._executable)

    def close(self) -> None:
        pass


def _open_gpu_source() -> _GpuSource | None:
    try:
        import importlib

        nvml: Any = importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception:  # not installed, no driver, no GPU
        pass
    else:
        try:
            return _Nvml(nvml)
        except Exception:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
    import shutil

    executable = shutil.which("nvidia-smi")
    return _NvidiaSmi(executable) if executable else None


def _is_visible(gpu: GpuReading, visible: tuple[str, ...] | None) -> bool:
    if visible is None:
        return True
    for entry in visible:
        if entry.isdigit():
            if int(entry) == gpu.index:
                return True
        elif gpu.uuid and (gpu.uuid.startswith(entry) or entry.startswith(gpu.uuid)):
            return True
    return False


# -- the thread -----------------------------------------------------------------------------
class SystemSampler:
    """Calls ``emit(metrics, step, time)`` every ``interval_s`` seconds from a daemon thread."""

    def __init__(
        self,
        emit: Callable[[dict[str, float], int, float], None],
        *,
        interval_s: float,
        host: str,
        rank: int,
        gpus: bool,
        visible: tuple[str, ...] | None,
        warner: Warner,
    ) -> None:
        self.interval_s = interval_s
        self._emit = emit
        self._proc_prefix = f"sys/{host}/r{rank}/"
        self._gpu_prefix = f"sys/{host}/gpu"
        self._gpus = gpus and visible != ()
        self._visible = visible
        self._warner = warner
        self._source: _GpuSource | None = None
        self._source_opened = False
        self._gpu_failures = 0
        self._last: tuple[float, float] | None = None  # (monotonic time, CPU seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runyard-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def sample(self) -> dict[str, float]:
        """One reading of every key (CPU needs an earlier reading: the first has none)."""
        out: dict[str, float] = {}
        now = time.monotonic()
        cpu_s, rss = process_usage()
        if self._last is not None and now > self._last[0]:
            out[self._proc_prefix + "cpu_pct"] = max(
                0.0, 100.0 * (cpu_s - self._last[1]) / (now - self._last[0])
            )
        self._last = (now, cpu_s)
        if rss is not None:
            out[self._proc_prefix + "rss_mb"] = rss / _MIB
        for gpu in self._gpu_readings():
            prefix = f"{self._gpu_prefix}{gpu.index}/"
            for name in ("util_pct", "mem_mb", "mem_total_mb", "power_w", "pcie_rx_mbps", "pcie_tx_mbps"):
                value = getattr(gpu, name)
                if value is not None:
                    out[prefix + name] = float(value)
        return out

    def _gpu_readings(self) -> list[GpuReading]:
        if not self._gpus:
            return []
        if not self._source_opened:
            self._source_opened = True
            self._source = _open_gpu_source()
        if self._source is None:
            return []
        readings = self._source.read()
        if readings is None:
            self._gpu_failures += 1
            if self._gpu_failures >= 3:  # no GPUs here after all: stop asking
                self._source.close()
                self._source = None
            return []
        self._gpu_failures = 0
        return [g for g in readings if _is_visible(g, self._visible)]

    def _loop(self) -> None:
        with contextlib.suppress(Exception):  # the baseline of the first CPU reading
            self._last = (time.monotonic(), process_usage()[0])
        while not self._stop.wait(self.interval_s):
            try:
                metrics = self.sample()
            except Exception:
                self._warner.warn(
                    "internal error in the runyard system sampler (please report):\n"
                    + traceback.format_exc(),
                    "sampler-crash",
                )
                continue
            if metrics and not self._stop.is_set():
                t = time.time()
                self._emit(metrics, int(t), t)
        if self._source is not None:
            self._source.close()
