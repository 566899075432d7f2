"""System metrics: CPU, RSS and GPUs (from a fake ``nvidia-smi`` on PATH) reach the run under
the contracted key names, from every rank, and missing GPUs are simply no keys."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

import runyard
from runyard.client.sampler import GpuReading, parse_nvidia_smi, process_usage
from runyard.errors import InvalidInput
from tests.client.conftest import wait_until
from tests.fakes.server import FakeServer

Start = Callable[..., runyard.Run]

NVIDIA_SMI_OUTPUT = """\
0, GPU-0aa1e5d2-1111-2222-3333-444455556666, 35, 1024, 81559, 70.50
1, GPU-1bb2f6e3-7777-8888-9999-aaaabbbbcccc, [N/A], 2048, 81559, [Not Supported]
"""


@pytest.fixture
def sampling(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Fast samples on host n1, NVML unavailable, and an empty bin dir first on PATH."""
    monkeypatch.setenv("RUNYARD_SYSTEM_INTERVAL_S", "0.02")
    monkeypatch.setenv("SLURMD_NODENAME", "n1")
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml fails: nvidia-smi is used
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def install_fake_nvidia_smi(bin_dir: Path, output: str = NVIDIA_SMI_OUTPUT) -> Path:
    """An ``nvidia-smi`` that checks it was asked the right query and prints two GPUs."""
    (bin_dir / "gpus.csv").write_text(output)
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "want = ['--query-gpu=index,uuid,utilization.gpu,memory.used,memory.total,power.draw',\n"
        "        '--format=csv,noheader,nounits']\n"
        "if sys.argv[1:] != want:\n"
        "    sys.exit('unexpected arguments: %r' % sys.argv[1:])\n"
        f"sys.stdout.write(open({str(bin_dir / 'gpus.csv')!r}).read())\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def sys_keys(fake: FakeServer, run_id: str) -> dict[str, list[float]]:
    run = fake.runs.get(run_id)
    if run is None:
        return {}
    return {k: run.values(k) for k in run.metrics if k.startswith("sys/")}


def test_cpu_memory_and_two_gpus_reach_the_server(sampling: Path, fake: FakeServer, start: Start) -> None:
    install_fake_nvidia_smi(sampling)
    run = start()
    wait_until(lambda: "sys/n1/r0/cpu_pct" in sys_keys(fake, run.id), what="a CPU sample")
    wait_until(lambda: len(sys_keys(fake, run.id).get("sys/n1/gpu0/util_pct", [])) >= 2, what="GPU samples")
    run.finish()
    keys = sys_keys(fake, run.id)
    assert keys["sys/n1/gpu0/util_pct"][0] == 35.0
    assert keys["sys/n1/gpu0/mem_mb"][0] == 1024.0
    assert keys["sys/n1/gpu0/mem_total_mb"][0] == 81559.0
    assert keys["sys/n1/gpu0/power_w"][0] == 70.5
    assert keys["sys/n1/gpu1/mem_mb"][0] == 2048.0
    assert keys["sys/n1/gpu1/mem_total_mb"][0] == 81559.0
    assert "sys/n1/gpu1/util_pct" not in keys and "sys/n1/gpu1/power_w" not in keys  # N/A: no point
    assert not any("pcie" in k for k in keys)  # PCIe throughput comes from NVML only
    assert 0 < keys["sys/n1/r0/rss_mb"][0] < 1_000_000 and keys["sys/n1/r0/cpu_pct"][0] >= 0
    steps = fake.runs[run.id].steps("sys/n1/r0/rss_mb")
    assert abs(steps[0] - time.time()) < 600  # a sample's step is its POSIX time in seconds
    assert fake.runs[run.id].status == "finished"


def fake_nvml() -> SimpleNamespace:
    """The parts of ``pynvml`` the sampler calls: GPU 0 reports everything, GPU 1 no power."""

    class NotSupported(Exception):
        pass

    def power(h: int) -> int:
        if h == 1:
            raise NotSupported("power readings are not supported")
        return 250_500  # mW

    return SimpleNamespace(
        NVML_PCIE_UTIL_TX_BYTES=0,
        NVML_PCIE_UTIL_RX_BYTES=1,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUUID=lambda h: f"GPU-{h}{h}{h}".encode(),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=90 + h, memory=10),
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=(h + 1) * 2**30, total=80 * 2**30, free=0),
        nvmlDeviceGetPowerUsage=power,
        nvmlDeviceGetPcieThroughput=lambda h, counter: 2048 if counter == 1 else 512,  # KiB/s
    )


def test_nvml_is_preferred_and_gives_pcie_throughput(
    monkeypatch: pytest.MonkeyPatch, sampling: Path, fake: FakeServer, start: Start
) -> None:
    install_fake_nvidia_smi(sampling)  # present, but NVML wins
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml())
    run = start()
    wait_until(lambda: "sys/n1/gpu1/pcie_tx_mbps" in sys_keys(fake, run.id), what="NVML samples")
    run.finish()
    keys = {k: v[0] for k, v in sys_keys(fake, run.id).items() if "/gpu" in k}
    assert keys == {
        "sys/n1/gpu0/util_pct": 90.0,
        "sys/n1/gpu0/mem_mb": 1024.0,
        "sys/n1/gpu0/mem_total_mb": 81920.0,
        "sys/n1/gpu0/power_w": 250.5,
        "sys/n1/gpu0/pcie_rx_mbps": 2.0,
        "sys/n1/gpu0/pcie_tx_mbps": 0.5,
        "sys/n1/gpu1/util_pct": 91.0,
        "sys/n1/gpu1/mem_mb": 2048.0,
        "sys/n1/gpu1/mem_total_mb": 81920.0,
        "sys/n1/gpu1/pcie_rx_mbps": 2.0,
        "sys/n1/gpu1/pcie_tx_mbps": 0.5,
    }


@pytest.mark.parametrize("visible", ["1", "GPU-1bb2f6e3", "1,7"])
def test_only_gpus_in_cuda_visible_devices_are_reported(
    monkeypatch: pytest.MonkeyPatch, sampling: Path, fake: FakeServer, start: Start, visible: str
) -> None:
    install_fake_nvidia_smi(sampling)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    run = start()
    wait_until(lambda: "sys/n1/gpu1/mem_mb" in sys_keys(fake, run.id), what="GPU 1 samples")
    run.finish()
    assert not any(k.startswith("sys/n1/gpu0/") for k in sys_keys(fake, run.id))


def test_without_nvidia_smi_there_are_no_gpu_keys_and_no_complaints(
    monkeypatch: pytest.MonkeyPatch,
    sampling: Path,
    fake: FakeServer,
    start: Start,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PATH", str(sampling))  # nothing else: no nvidia-smi anywhere
    run = start()
    wait_until(lambda: len(sys_keys(fake, run.id).get("sys/n1/r0/cpu_pct", [])) >= 3, what="CPU samples")
    run.finish()
    assert not any("/gpu" in k for k in sys_keys(fake, run.id))
    assert "warning" not in capfd.readouterr().err


def test_a_failing_nvidia_smi_is_no_error(sampling: Path, fake: FakeServer, start: Start) -> None:
    script = sampling / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate' >&2\nexit 9\n"
    )
    script.chmod(0o755)
    run = start()
    wait_until(lambda: len(sys_keys(fake, run.id).get("sys/n1/r0/cpu_pct", [])) >= 5, what="CPU samples")
    run.finish()
    assert not any("/gpu" in k for k in sys_keys(fake, run.id))


@pytest.mark.parametrize(("local_rank", "gpus"), [("0", True), ("1", False)])
def test_other_ranks_send_system_metrics_to_the_same_run(
    monkeypatch: pytest.MonkeyPatch,
    sampling: Path,
    fake: FakeServer,
    start: Start,
    local_rank: str,
    gpus: bool,
) -> None:
    install_fake_nvidia_smi(sampling)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    run = start(run_id="ddp-run")
    run.log({"loss": 1.0})  # a non-zero rank's own metrics stay local
    wait_until(
        lambda: len(sys_keys(fake, "ddp-run").get("sys/n1/r3/cpu_pct", [])) >= 2, what="rank 3 samples"
    )
    run.finish()
    stored = fake.runs["ddp-run"]
    assert "loss" not in stored.metrics
    assert any(k.startswith("sys/n1/gpu0/") for k in stored.metrics) is gpus  # one reporter per node
    assert stored.status == "running"  # the run's status belongs to rank 0


def test_system_metrics_can_be_turned_off(sampling: Path, fake: FakeServer, start: Start) -> None:
    install_fake_nvidia_smi(sampling)
    run = start(system_metrics=False)
    run.log({"loss": 1.0})
    run.finish()
    assert run._sampler is None and sys_keys(fake, run.id) == {}


def test_a_bad_interval_is_refused(monkeypatch: pytest.MonkeyPatch, start: Start) -> None:
    monkeypatch.setenv("RUNYARD_SYSTEM_INTERVAL_S", "often")
    with pytest.raises(InvalidInput, match="RUNYARD_SYSTEM_INTERVAL_S"):
        start()


def test_nvidia_smi_rows_are_parsed() -> None:
    assert parse_nvidia_smi(NVIDIA_SMI_OUTPUT + "No devices were found\n\n") == [
        GpuReading(0, "GPU-0aa1e5d2-1111-2222-3333-444455556666", 35.0, 1024.0, 81559.0, 70.5),
        GpuReading(1, "GPU-1bb2f6e3-7777-8888-9999-aaaabbbbcccc", None, 2048.0, 81559.0, None),
    ]


def test_cpu_time_counts_child_processes(tmp_path: Path) -> None:
    """A busy child (a data loader worker, say) counts toward the process's CPU."""
    start_total, start_own = process_usage()[0], sum(os.times()[:2])
    child = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:

        def child_cpu() -> bool:
            return process_usage()[0] - start_total - (sum(os.times()[:2]) - start_own) > 0.3

        wait_until(child_cpu, 60, "the child's CPU time to show")
    finally:
        child.kill()
        child.wait()
