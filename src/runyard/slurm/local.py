"""``LocalExecutor``: the ``Executor`` for a machine without Slurm. Jobs are plain processes.

The same generated sbatch scripts run here: the ``#SBATCH`` lines that make sense on one
machine are honoured (``--job-name``, ``--output``/``--error`` with ``%x %j %A %a %u %N``,
``--array`` with its ``%K`` throttle, ``--chdir``, ``--dependency`` after/afterok/afterany/
afternotok on local job ids) and the job sees Slurm's variables (``SLURM_JOB_ID``,
``SLURM_ARRAY_TASK_ID``, ``SLURM_RESTART_COUNT=0``, ``SLURM_CLUSTER_NAME=local``, …), so
``runyard.init`` and the job reporter work unchanged. Time limits are not enforced.

Each job has a folder ``<state_dir>/jobs/<job id>/`` (the script, ``job.json``,
``status.json``) and one detached supervisor process (``python -m runyard.slurm.local
supervise DIR``, its own session), so jobs outlive the server that submitted them. The
supervisor waits for dependencies, starts tasks (each in its own process group, at most
``%K`` at a time), collects their exit status and resource use (``wait4``), and on
``cancel`` sends SIGTERM, then SIGKILL after ``kill_wait_s``. Job ids are increasing integers
from a counter file under ``flock``; an array takes its id plus one id per task.

The API key and other secrets in ``submit(env=...)`` are never written to disk: they reach
the supervisor through its environment, as sbatch passes the submitting environment on.
A dependency that can never be satisfied cancels the job (reason DependencyNeverSatisfied),
as Slurm does with ``kill_invalid_depend``. A supervisor that died (reboot) leaves its
unfinished tasks NODE_FAIL.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from runyard.errors import InvalidInput, SlurmError, SubmitFailed
from runyard.slurm.launch import expand_pattern, parse_array_spec, parse_dependency, parse_sbatch_script
from runyard.slurm.parse import AccountingJob, NodeInfo, PartitionInfo, QueueJob
from runyard.slurm.runner import check_job_id, job_environment

__all__ = ["LocalExecutor", "main"]

PARTITION = "local"
CLUSTER = "local"
_ENDED = frozenset({"COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL"})
_SINGLE = "-"  # the task key of a job that is not an array
_POLL_S = 0.05  # the supervisor's pause after a change; it grows to _MAX_POLL_S while nothing happens
_MAX_POLL_S = 0.5


def _short_host() -> str:
    return socket.gethostname().split(".", 1)[0] or "localhost"


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _memory_mb() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)
    except (ValueError, OSError):
        return 0


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, data: Any, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int | None, folder: Path) -> bool:
    """Whether ``pid`` is the live supervisor of the job in ``folder`` (zombies and reused pids
    are not: its command line names the module and the folder)."""
    if not pid:
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"runyard.slurm.local" in argv and str(folder).encode() in argv


def _compress(tasks: Sequence[int]) -> str:
    """[2, 3, 4, 7] → ``2-4,7``."""
    parts: list[str] = []
    i = 0
    while i < len(tasks):
        j = i
        while j + 1 < len(tasks) and tasks[j + 1] == tasks[j] + 1:
            j += 1
        parts.append(str(tasks[i]) if i == j else f"{tasks[i]}-{tasks[j]}")
        i = j + 1
    return ",".join(parts)


class _Job:
    """One job folder, read once (``job.json`` plus the latest ``status.json``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.info: dict[str, Any] = _read_json(folder / "job.json") or {}
        status = _read_json(folder / "status.json") or {}
        self.tasks: dict[str, dict[str, Any]] = status.get("tasks", {})
        self.supervisor: int | None = status.get("supervisor")

    @property
    def job_id(self) -> int:
        return int(self.info["job_id"])

    @property
    def is_array(self) -> bool:
        return self.info.get("array") is not None

    def task_job_id(self, key: str) -> int:
        return int(self.info["task_job_ids"][key])

    def unfinished(self) -> bool:
        return any(t["state"] not in _ENDED for t in self.tasks.values())


# --------------------------------------------------------------------------- the executor


class LocalExecutor:
    """Runs sbatch scripts as local processes; state lives under ``state_dir``."""

    kind = "local"

    def __init__(self, state_dir: Path, *, kill_wait_s: float = 5.0, keep_s: float = 300.0) -> None:
        self.state_dir = Path(state_dir).absolute()
        self.kill_wait_s = kill_wait_s
        self.keep_s = keep_s  # how long ended jobs stay in queue(), like Slurm's MinJobAge

    @property
    def jobs_dir(self) -> Path:
        return self.state_dir / "jobs"

    def _next_ids(self, count: int) -> int:
        """Reserve ``count`` consecutive job ids; the first one."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        counter = self.state_dir / "counter"
        with open(counter, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            text = handle.read().strip()
            last = int(text) if text.isdigit() else 0
            handle.seek(0)
            handle.truncate()
            handle.write(str(last + count))
            handle.flush()
            os.fsync(handle.fileno())
        return last + 1

    def _job(self, job_id: int) -> _Job | None:
        folder = self.jobs_dir / str(job_id)
        return _Job(folder) if (folder / "job.json").exists() else None

    def _all_jobs(self) -> list[_Job]:
        if not self.jobs_dir.is_dir():
            return []
        ids = sorted(int(p.name) for p in self.jobs_dir.iterdir() if p.name.isdigit())
        return [job for job in (self._job(i) for i in ids) if job is not None and job.info]

    # -- submit ------------------------------------------------------------------------
    def submit(self, script: str, *, workdir: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Start a supervisor for ``script``; the job id (an array's id)."""
        if workdir is not None and not os.path.isdir(workdir):
            raise InvalidInput(f"workdir {workdir!r} is not an existing directory", field="workdir")
        if not script.startswith("#!"):
            raise SubmitFailed(
                "sbatch: error: This does not look like a batch script. The first line must start with #! "
                "followed by the path to an interpreter."
            )
        try:
            header = parse_sbatch_script(script)
            array = parse_array_spec(header.array) if header.array is not None else None
            dependency = parse_dependency(header.dependency) if header.dependency else None
        except InvalidInput as exc:
            raise SubmitFailed(f"sbatch: error: {exc.message}") from None
        submit_dir = os.path.abspath(workdir or os.getcwd())
        chdir = os.path.join(submit_dir, header.chdir) if header.chdir else submit_dir
        if not os.path.isdir(chdir):
            raise SubmitFailed(f"sbatch: error: --chdir {chdir!r} is not an existing directory")
        if dependency is not None:
            for _, ref in dependency[1]:
                if self._job(int(ref.split("_", 1)[0])) is None:
                    raise SubmitFailed(
                        f"sbatch: error: Batch job submission failed: Job dependency problem ({ref})"
                    )
        keys = [str(t) for t in array.task_ids] if array is not None else [_SINGLE]
        job_id = self._next_ids(len(keys) + 1 if array is not None else 1)
        task_ids = {key: (job_id + 1 + i if array is not None else job_id) for i, key in enumerate(keys)}
        folder = self.jobs_dir / str(job_id)
        folder.mkdir()
        (folder / "script").write_text(script)
        os.chmod(folder / "script", 0o700)
        default_out = "slurm-%A_%a.out" if array is not None else "slurm-%j.out"
        info = {
            "job_id": job_id,
            "name": header.job_name or "sbatch",
            "array": header.array,
            "throttle": array.throttle if array is not None else None,
            "task_job_ids": task_ids,
            "dependency": header.dependency,
            "submit_dir": submit_dir,
            "chdir": chdir,
            "output": os.path.join(chdir, header.output or default_out),
            "error": os.path.join(chdir, header.error) if header.error else None,
            "submit_time": time.time(),
            "time_limit_min": header.time_limit_min,
            "cpus": header.cpus_per_task or 1,
            "mem_gb": header.mem_gb,
            "user": _user(),
            "kill_wait_s": self.kill_wait_s,
        }
        _write_json(folder / "job.json", info)
        tasks = {key: {"state": "PENDING", "reason": None} for key in keys}
        _write_json(folder / "status.json", {"tasks": tasks, "supervisor": None})
        self._start_supervisor(folder, env)
        return str(job_id)

    def _start_supervisor(self, folder: Path, env: Mapping[str, str] | None) -> None:
        full_env = {**job_environment(), **(env or {})}  # never the server's own settings
        with open(folder / "supervisor.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "runyard.slurm.local", "supervise", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=full_env,
                start_new_session=True,
                close_fds=True,
            )
        try:
            code = proc.wait(timeout=30)  # it forks the real supervisor and exits at once
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -1
        if code != 0:
            raise SubmitFailed(
                f"sbatch: error: the local supervisor did not start (see {folder}/supervisor.log)"
            )

    # -- what is known about jobs ---------------------------------------------------------
    def _fix_lost(self, job: _Job) -> _Job:
        """Mark the unfinished tasks of a job whose supervisor is gone as NODE_FAIL."""
        if not job.unfinished() or _alive(job.supervisor, job.folder):
            return job
        if job.supervisor is None and time.time() - float(job.info.get("submit_time", 0)) < 30:
            return job  # still starting
        with _locked(job.folder / "lock"):
            fresh = _Job(job.folder)
            if not fresh.unfinished() or _alive(fresh.supervisor, fresh.folder):
                return fresh
            for task in fresh.tasks.values():
                if task["state"] not in _ENDED:
                    task.update(state="NODE_FAIL", reason="supervisor lost", end_time=time.time())
            _write_json(fresh.folder / "status.json", {"tasks": fresh.tasks, "supervisor": fresh.supervisor})
        return _Job(job.folder)

    def queue(self) -> list[QueueJob]:
        """Pending and running jobs, and those that ended within ``keep_s``; the pending
        tasks of an array are one record (``array_task_string``), as in squeue."""
        out: list[QueueJob] = []
        now = time.time()
        for job in self._all_jobs():
            job = self._fix_lost(job)
            ends = [t.get("end_time") or now for t in job.tasks.values()]
            if not job.unfinished() and ends and max(ends) < now - self.keep_s:
                continue
            pending: list[int] = []
            reasons: set[str] = set()
            for key, task in job.tasks.items():
                if job.is_array and task["state"] == "PENDING":
                    pending.append(int(key))
                    reasons.add(task.get("reason") or "")
                    continue
                out.append(self._queue_record(job, key, task))
            if pending:
                throttle = job.info.get("throttle")
                text = _compress(sorted(pending)) + (f"%{throttle}" if throttle else "")
                reason = next((r for r in ("Dependency", "JobArrayTaskLimit") if r in reasons), None)
                out.append(
                    self._queue_record(job, None, {"state": "PENDING", "reason": reason}, task_string=text)
                )
        return out

    def _queue_record(
        self, job: _Job, key: str | None, task: Mapping[str, Any], task_string: str | None = None
    ) -> QueueJob:
        array_task = int(key) if key is not None and key != _SINGLE else None
        started = task.get("start_time") is not None
        return QueueJob(
            job_id=job.task_job_id(key) if key is not None else job.job_id,
            array_job_id=job.job_id if job.is_array else None,
            array_task_id=array_task,
            array_task_string=task_string,
            name=str(job.info.get("name", "")),
            state=str(task["state"]),
            reason=task.get("reason") or None,
            nodes=_short_host() if started else None,
            partition=PARTITION,
            submit_time=int(job.info.get("submit_time", 0)) or None,
            start_time=int(task["start_time"]) if started else None,
            end_time=int(task["end_time"]) if task.get("end_time") else None,
            time_limit_min=job.info.get("time_limit_min"),
            restart_count=0,
            requeue=False,
            tres_per_node=None,
            tres_alloc={"cpu": str(job.info.get("cpus", 1))} if started else {},
            gpus_per_node=0,
            user=job.info.get("user"),
            exit_code=task.get("exit_code"),
            signal=task.get("signal"),
        )

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        """Records of these jobs (``12`` is every task of array 12, ``12_3`` one task)."""
        out: list[AccountingJob] = []
        seen: set[tuple[int, str]] = set()
        for raw in job_ids:
            ref = check_job_id(raw)
            leader, _, task = ref.partition("_")
            job = self._job(int(leader))
            if job is None:
                continue
            job = self._fix_lost(job)
            keys = [task] if task else list(job.tasks)
            for key in keys:
                if key not in job.tasks or (job.job_id, key) in seen:
                    continue
                seen.add((job.job_id, key))
                out.append(self._accounting_record(job, key, job.tasks[key]))
        return out

    def _accounting_record(self, job: _Job, key: str, task: Mapping[str, Any]) -> AccountingJob:
        array_task = int(key) if key != _SINGLE else None
        start, end = task.get("start_time"), task.get("end_time")
        elapsed = int((end or time.time()) - start) if start is not None else 0
        mem_gb = job.info.get("mem_gb")
        rss_kb = task.get("max_rss_kb")
        return AccountingJob(
            job_id=f"{job.job_id}_{key}" if array_task is not None else str(job.job_id),
            raw_job_id=job.task_job_id(key),
            array_job_id=job.job_id if array_task is not None else None,
            array_task_id=array_task,
            name=str(job.info.get("name", "")),
            state=str(task["state"]),
            reason=task.get("reason") or None,
            exit_code=task.get("exit_code"),
            signal=task.get("signal"),
            elapsed_s=max(elapsed, 0),
            time_limit_min=job.info.get("time_limit_min"),
            alloc_cpus=int(job.info.get("cpus", 1)),
            total_cpu_s=float(task.get("cpu_s") or 0.0),
            max_rss_bytes=int(rss_kb) * 1024 if rss_kb is not None else None,
            req_mem_bytes=int(mem_gb * 1024**3) if mem_gb else None,
            gpus=0,
            nodes=_short_host() if start is not None else None,
            submit_time=int(job.info.get("submit_time", 0)) or None,
            start_time=int(start) if start is not None else None,
            end_time=int(end) if end is not None else None,
            partition=PARTITION,
            user=job.info.get("user"),
            step_ids=("batch",) if start is not None else (),
        )

    def partitions(self) -> list[PartitionInfo]:
        """The one partition, ``local``: this host, no time limit."""
        return [
            PartitionInfo(
                name=PARTITION,
                state="UP",
                default=True,
                max_time_min=None,
                default_time_min=None,
                nodes=_short_host(),
                total_nodes=1,
                total_cpus=os.cpu_count() or 1,
                gpus=0,
                memory_mb=_memory_mb() or None,
            )
        ]

    def nodes(self) -> list[NodeInfo]:
        cpus = os.cpu_count() or 1
        running = sum(
            int(job.info.get("cpus", 1))
            for job in self._all_jobs()
            for task in job.tasks.values()
            if task["state"] == "RUNNING"
        )
        memory_mb = _memory_mb()
        used = min(running, cpus)
        state = "idle" if used == 0 else ("allocated" if used >= cpus else "mixed")
        return [
            NodeInfo(
                name=_short_host(),
                state=state,
                cpus=cpus,
                alloc_cpus=used,
                gpus_total=0,
                gpus_used=0,
                real_memory_mb=memory_mb,
                alloc_memory_mb=0,
                partitions=(PARTITION,),
                reason=None,
            )
        ]

    # -- control -----------------------------------------------------------------------
    def cancel(self, job_id: str) -> None:
        """Cancel a job (``12``: every task) or one array task (``12_3``): pending tasks are
        cancelled, running ones get SIGTERM (the supervisor sends SIGKILL later)."""
        ref = check_job_id(job_id)
        leader, _, task = ref.partition("_")
        job = self._job(int(leader))
        if job is None or (task and task not in job.tasks):
            raise SlurmError(f"scancel: error: Kill job error on job id {ref}: Invalid job id specified")
        with _locked(job.folder / "lock"):
            with open(job.folder / "cancel", "a") as marker:
                marker.write((task or "all") + "\n")
            fresh = _Job(job.folder)
            keys = [task] if task else list(fresh.tasks)
            supervised = _alive(fresh.supervisor, fresh.folder)
            for key in keys:
                state = fresh.tasks[key]
                if state["state"] == "RUNNING" and state.get("pgid"):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(int(state["pgid"]), signal.SIGTERM)
                elif state["state"] == "PENDING" and not supervised:
                    state.update(state="CANCELLED", end_time=time.time())
            if not supervised:
                _write_json(
                    fresh.folder / "status.json", {"tasks": fresh.tasks, "supervisor": fresh.supervisor}
                )

    def requeue(self, job_id: str) -> None:
        raise SlurmError("the local executor cannot requeue")


# --------------------------------------------------------------------------- the supervisor


class _Supervisor:
    """Runs one job's tasks; the only writer of its ``status.json`` while it lives."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.info: dict[str, Any] = json.loads((folder / "job.json").read_text())
        self.executor = LocalExecutor(
            folder.parent.parent, kill_wait_s=float(self.info.get("kill_wait_s", 5.0))
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.term_sent: dict[str, float] = {}
        self.host = _short_host()

    def _set(
        self, changes: Mapping[str, Mapping[str, Any]], *, only: str | None = None
    ) -> dict[str, dict[str, Any]]:
        """Apply per-task changes to ``status.json`` under the lock (``only``: to tasks in that
        state); the tasks after."""
        with _locked(self.folder / "lock"):
            status = _read_json(self.folder / "status.json") or {"tasks": {}}
            for key, change in changes.items():
                if only is None or status["tasks"][key]["state"] == only:
                    status["tasks"][key].update(change)
            status["supervisor"] = os.getpid()
            _write_json(self.folder / "status.json", status)
            tasks: dict[str, dict[str, Any]] = status["tasks"]
            return tasks

    def _cancel_requests(self) -> set[str]:
        try:
            return {
                line.strip() for line in (self.folder / "cancel").read_text().splitlines() if line.strip()
            }
        except OSError:
            return set()

    def _dependency(self) -> str:
        """``ok`` (may start), ``wait`` or ``never``."""
        text = self.info.get("dependency")
        if not text:
            return "ok"
        mode, items = parse_dependency(text)
        verdicts = [self._one_dependency(kind, ref) for kind, ref in items]
        if mode == "all":
            return "never" if "never" in verdicts else ("ok" if all(v == "ok" for v in verdicts) else "wait")
        return "ok" if "ok" in verdicts else ("never" if all(v == "never" for v in verdicts) else "wait")

    def _one_dependency(self, kind: str, ref: str) -> str:
        leader, _, task = ref.partition("_")
        job = self.executor._job(int(leader))
        if job is None:
            return "ok"  # a job nobody knows any more: Slurm drops such dependencies too
        job = self.executor._fix_lost(job)
        tasks = [job.tasks[task]] if task and task in job.tasks else list(job.tasks.values())
        states = [t["state"] for t in tasks]
        ended = all(s in _ENDED for s in states)
        failed = any(s in _ENDED and s != "COMPLETED" for s in states)
        if kind == "after":
            return "ok" if all(s != "PENDING" for s in states) else "wait"
        if kind == "afterany":
            return "ok" if ended else "wait"
        if kind == "afterok":
            return "never" if failed else ("ok" if ended else "wait")
        return ("ok" if failed else "never") if ended else "wait"  # afternotok

    def _task_env(self, key: str) -> dict[str, str]:
        job_id = int(self.info["job_id"])
        task_job_id = int(self.info["task_job_ids"][key])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SLURMD_"))}
        env.update(
            SLURM_JOB_ID=str(task_job_id),
            SLURM_JOBID=str(task_job_id),
            SLURM_JOB_NAME=str(self.info["name"]),
            SLURM_RESTART_COUNT="0",
            SLURM_CLUSTER_NAME=CLUSTER,
            SLURMD_NODENAME=self.host,
            SLURM_JOB_NODELIST=self.host,
            SLURM_JOB_PARTITION=PARTITION,
            SLURM_JOB_NUM_NODES="1",
            SLURM_NTASKS="1",
            SLURM_PROCID="0",
            SLURM_LOCALID="0",
            SLURM_CPUS_ON_NODE=str(self.info.get("cpus", 1)),
            SLURM_SUBMIT_DIR=str(self.info["submit_dir"]),
            SLURM_JOB_USER=str(self.info.get("user", "")),
        )
        if key != _SINGLE:
            tasks = sorted(int(k) for k in self.info["task_job_ids"])
            env.update(
                SLURM_ARRAY_JOB_ID=str(job_id),
                SLURM_ARRAY_TASK_ID=key,
                SLURM_ARRAY_TASK_COUNT=str(len(tasks)),
                SLURM_ARRAY_TASK_MIN=str(tasks[0]),
                SLURM_ARRAY_TASK_MAX=str(tasks[-1]),
            )
        return env

    def _path(self, pattern: str, key: str) -> str:
        return expand_pattern(
            pattern,
            job_name=str(self.info["name"]),
            job_id=str(self.info["task_job_ids"][key]),
            array_job_id=str(self.info["job_id"]),
            array_task_id=int(key) if key != _SINGLE else None,
            user=str(self.info.get("user", "")),
            node=self.host,
        )

    def _fail(self, key: str, message: str) -> None:
        now = time.time()
        self._set(
            {key: {"state": "FAILED", "reason": message, "exit_code": 1, "start_time": now, "end_time": now}}
        )

    def _start(self, key: str) -> None:
        err_pattern = self.info.get("error")
        with contextlib.ExitStack() as files:
            try:
                stdout = files.enter_context(open(self._path(str(self.info["output"]), key), "ab"))
                stderr = (
                    files.enter_context(open(self._path(str(err_pattern), key), "ab"))
                    if err_pattern
                    else stdout
                )
            except OSError as exc:
                self._fail(key, f"cannot open the job's output: {exc}")
                return
            try:
                proc = subprocess.Popen(
                    [str(self.folder / "script")],
                    cwd=str(self.info["chdir"]),
                    env=self._task_env(key),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                self._fail(key, f"cannot start the job: {exc}")
                return
        self.procs[key] = proc

        change = {
            "state": "RUNNING",
            "reason": None,
            "pid": proc.pid,
            "pgid": proc.pid,
            "start_time": time.time(),
        }
        self._set({key: change})

    def _reap(self, cancelled: set[str]) -> bool:
        """Collect the tasks that ended; whether any did."""
        reaped = False
        for key, proc in list(self.procs.items()):
            try:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status, usage = proc.pid, 0, None
            if pid == 0:
                continue
            proc.returncode = 0  # reaped here: keep subprocess from waiting on it again
            del self.procs[key]
            reaped = True
            reaped = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # what the job left behind goes with it, as in Slurm
            code: int | None = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            if key in cancelled or "all" in cancelled:
                state = "CANCELLED"
            else:
                state = "COMPLETED" if code == 0 else "FAILED"
            cpu = (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0
            rss = usage.ru_maxrss if usage is not None else None

            end = {"state": state, "exit_code": code, "signal": sig, "end_time": time.time()}
            self._set({key: {**end, "cpu_s": cpu, "max_rss_kb": rss}})
        return reaped
        return reaped

    def _kill_cancelled(self, cancelled: set[str]) -> None:
        now = time.monotonic()
        for key, proc in self.procs.items():
            if key not in cancelled and "all" not in cancelled:
                continue
            first = self.term_sent.setdefault(key, now)
            sig = signal.SIGTERM if now - first < self.executor.kill_wait_s else signal.SIGKILL
            if first == now or sig == signal.SIGKILL:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)

    def run(self) -> None:
        self._set({})  # records this supervisor's pid
        throttle = self.info.get("throttle")
        delay = _POLL_S
        while True:
            cancelled = self._cancel_requests()
            self._kill_cancelled(cancelled)
            if self._reap(cancelled) or cancelled:
                delay = _POLL_S
            tasks = (_read_json(self.folder / "status.json") or {}).get("tasks", {})
            pending = [k for k, t in tasks.items() if t["state"] == "PENDING"]
            to_cancel = [k for k in pending if k in cancelled or "all" in cancelled]
            if to_cancel:
                tasks = self._set({k: {"state": "CANCELLED", "end_time": time.time()} for k in to_cancel})
                pending = [k for k in pending if k not in to_cancel]
            if not pending and not self.procs:
                return
            verdict = self._dependency() if pending else "ok"
            if verdict == "never":
                never = {"state": "CANCELLED", "reason": "DependencyNeverSatisfied", "end_time": time.time()}
                self._set({k: never for k in pending})
                continue
            room = len(pending) if not throttle else max(throttle - len(self.procs), 0)
            if verdict == "ok" and room:
                for key in sorted(pending, key=lambda k: int(k) if k != _SINGLE else 0)[:room]:
                    self._start(key)
                delay = _POLL_S
            reason = "Dependency" if verdict == "wait" else "JobArrayTaskLimit"
            waiting = [k for k in pending if k not in self.procs and tasks[k].get("reason") != reason]
            if waiting:
                self._set({k: {"reason": reason} for k in waiting}, only="PENDING")
            time.sleep(delay)
            delay = min(delay * 1.5, _MAX_POLL_S)


def _supervise(folder: Path) -> int:
    """Fork the supervisor into the background (it outlives its caller) and return."""
    child = os.fork()
    if child:
        with _locked(folder / "lock"):
            status = _read_json(folder / "status.json") or {"tasks": {}}
            if not status.get("supervisor"):
                status["supervisor"] = child
                _write_json(folder / "status.json", status)
        return 0
    code = 0
    try:
        _Supervisor(folder).run()
    except BaseException as exc:  # record why, then leave: queue() reports the job NODE_FAIL
        sys.stderr.write(f"runyard local supervisor of {folder} failed: {type(exc).__name__}: {exc}\n")
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] != "supervise":
        sys.stderr.write("usage: python -m runyard.slurm.local supervise JOB_DIR\n")
        return 2
    return _supervise(Path(args[1]))


if __name__ == "__main__":
    sys.exit(main())
