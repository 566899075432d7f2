"""Typed calls to the REST API for the CLI and scripts: ``ApiClient(url, api_key)``.

Every non-2xx answer raises the exception the server described
(``RunyardError.from_dict``), so ``runyard.errors.NotFound`` means the same thing locally and
remotely; network failures raise ``ServerUnreachable``. Answers are the decoded JSON
(dicts and lists); metric values in series come back as floats (NaN/inf decoded).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, urlencode

from runyard.client.transport import HttpTransport, Transport
from runyard.errors import InvalidInput, NotFound, RunyardError

__all__ = ["ApiClient", "batch_path", "error_from_response"]

_WIRE_FLOATS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def batch_path(run_id: str) -> str:
    return f"/api/v1/runs/{quote(run_id, safe='')}/batches"


def error_from_response(status: int, data: bytes) -> RunyardError:
    """The exception a non-2xx answer stands for (the one JSON error shape, else by status)."""
    try:
        body = json.loads(data) if data else None
    except ValueError:
        body = None
    err = RunyardError.from_dict(body, status)
    if not isinstance(body, dict) or "error" not in body:
        text = data[:200].decode("utf-8", "replace").strip()
        err.message = f"server answered HTTP {status}" + (f": {text}" if text else "")
        err.args = (err.message,)
    return err


def _decode_value(v: Any) -> float:
    if isinstance(v, str):
        return _WIRE_FLOATS.get(v, math.nan)
    return float(v)


class ApiClient:
    """One server, one API key; thread-safe (one kept-alive connection behind a lock)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        transport: Transport | None = None,
        *,
        timeout: float = 30.0,
    ) -> None:
        if transport is None and not url:
            raise InvalidInput("no server URL: set RUNYARD_URL or pass --url", field="url")
        self.url = url.rstrip("/")
        self.api_key = api_key or None
        self.transport: Transport = transport or HttpTransport(self.url, timeout=timeout)

    def headers(self, content_type: str | None = None) -> dict[str, str]:
        h = {"Accept": "application/json"}
        if self.api_key:
            h["X-API-Key"] = self.api_key
        if content_type:
            h["Content-Type"] = content_type
        return h

    def raw(
        self, method: str, path: str, body: bytes | None = None, *, timeout: float | None = None
    ) -> tuple[int, bytes]:
        """One request, no status check: ``(status, body bytes)``."""
        return self.transport.request(
            method, path, body, self.headers("application/json" if body is not None else None), timeout
        )

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Iterable[tuple[str, Any]] = (),
        json_body: Any = None,
        body: bytes | None = None,
    ) -> bytes:
        pairs = [(k, str(v)) for k, v in query if v is not None]
        if pairs:
            path = f"{path}?{urlencode(pairs)}"
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
        status, data = self.raw(method, path, body)
        if not 200 <= status < 300:
            raise error_from_response(status, data)
        return data

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        data = self._call(method, path, **kw)
        return json.loads(data) if data else None

    # -- endpoints ------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", "/api/v1/health")
        return out

    def post_batch(self, run_id: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
        """Apply one protocol batch; ``{"run_id", "seq", "duplicate", "points"}``."""
        data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
        out: dict[str, Any] = self._json("POST", batch_path(run_id), body=data)
        return out

    def get_run(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/api/v1/runs/{quote(run_id, safe='')}")
        return out

    def list_runs(
        self,
        experiment_id: str | None = None,
        project: str | None = None,
        filters: Iterable[str] = (),
        sort: str | None = None,
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
        metric_keys: Iterable[str] | None = None,
        *,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        """A page of runs, ``{"runs", "offset", "limit", "next_offset", ...}``.

        ``project`` is a project name (looked up), ``project_id`` its id; ``filters`` are
        expressions such as ``params.lr>=0.01``, ``status=running``, ``metrics.loss.last<0.5``.
        """
        if project and not project_id:
            found = [p for p in self.list_projects() if p.get("name") == project]
            if not found:
                raise NotFound(f"no project named {project!r}; list them with `runyard runs`")
            project_id = str(found[0]["id"])
        query: list[tuple[str, Any]] = [("experiment_id", experiment_id), ("project_id", project_id)]
        query += [("filter", f) for f in filters]
        if sort:
            query.append(("sort", sort))
        query += [("order", "desc" if descending else "asc"), ("limit", limit), ("offset", offset)]
        if metric_keys is not None:
            query.append(("metrics", ",".join(metric_keys)))
        out: dict[str, Any] = self._json("GET", "/api/v1/runs", query=query)
        return out

    def list_projects(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", "/api/v1/projects")
        return out

    def list_experiments(self, project_id: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json(
            "GET", "/api/v1/experiments", query=[("project_id", project_id)]
        )
        return out

    def create_experiment(
        self, project: str, name: str, *, exist_ok: bool = True, description: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"project": project, "name": name, "exist_ok": exist_ok}
        if description is not None:
            body["description"] = description
        out: dict[str, Any] = self._json("POST", "/api/v1/experiments", json_body=body)
        return out

    def metric_summaries(self, run_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._json("GET", f"/api/v1/runs/{quote(run_id, safe='')}/metrics")
        return out

    def metric_series(self, run_id: str, key: str, max_points: int | None = None) -> dict[str, Any]:
        """``{"key", "steps", "times", "values", "total", "downsampled"}``, values as floats."""
        out: dict[str, Any] = self._json(
            "GET",
            f"/api/v1/runs/{quote(run_id, safe='')}/metrics/series",
            query=[("key", key), ("max_points", max_points)],
        )
        out["values"] = [_decode_value(v) for v in out.get("values", [])]
        return out

    def export(self, run_id: str, fmt: str = "csv") -> bytes:
        return self._call("GET", f"/api/v1/runs/{quote(run_id, safe='')}/export", query=[("format", fmt)])

    # -- jobs: output, history, the cluster, cancel/requeue, efficiency ---------------------
    def run_logs(
        self,
        run_id: str,
        stream: str = "stdout",
        offset: int = 0,
        *,
        limit_bytes: int | None = None,
        tail: int | None = None,
    ) -> dict[str, Any]:
        """Whole lines of the run's output from byte ``offset`` (or its last ``tail`` lines):
        ``{"lines": [{"offset", "text"}], "next_offset", "eof", "final", "same_file", ...}``."""
        out: dict[str, Any] = self._json(
            "GET",
            f"/api/v1/runs/{quote(run_id, safe='')}/logs",
            query=[("stream", stream), ("offset", offset), ("limit_bytes", limit_bytes), ("tail", tail)],
        )
        return out

    def run_console(
        self,
        run_id: str,
        *,
        stream: str | None = None,
        after_id: int = 0,
        limit: int | None = None,
        tail: int | None = None,
    ) -> dict[str, Any]:
        """The stdout/stderr lines the client captured, from ``after_id`` (or the last ``tail``):
        ``{"lines": [{"id", "time", "stream", "host", "rank", "line"}], "next_after_id", "more",
        "final", ...}``."""
        out: dict[str, Any] = self._json(
            "GET",
            f"/api/v1/runs/{quote(run_id, safe='')}/console",
            query=[("stream", stream), ("after_id", after_id), ("limit", limit), ("tail", tail)],
        )
        return out

    def run_events(self, run_id: str, after_id: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The run's history, oldest first: ``{"events": [...], "next_after_id"}``."""
        out: dict[str, Any] = self._json(
            "GET",
            f"/api/v1/runs/{quote(run_id, safe='')}/events",
            query=[("after_id", after_id), ("limit", limit)],
        )
        return out

    def cluster(self) -> dict[str, Any]:
        """Nodes, partitions, the queue, ``mine`` and GPU-hours per experiment."""
        out: dict[str, Any] = self._json("GET", "/api/v1/cluster")
        return out

    def my_runs(self, *, include_ended: bool = False, limit: int | None = None) -> list[dict[str, Any]]:
        """The caller's runs, newest first: active ones, or all of them."""
        out: dict[str, Any] = self._json(
            "GET", "/api/v1/me/runs", query=[("all", "true" if include_ended else None), ("limit", limit)]
        )
        runs: list[dict[str, Any]] = out["runs"]
        return runs

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", f"/api/v1/runs/{quote(run_id, safe='')}/cancel")
        return out

    def requeue_run(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", f"/api/v1/runs/{quote(run_id, safe='')}/requeue")
        return out

    def run_efficiency(self, run_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/api/v1/runs/{quote(run_id, safe='')}/efficiency")
        return out

    def launch(
        self,
        *,
        project: str,
        experiment: str,
        workdir: str,
        command: Iterable[str] | None = None,
        script: str | None = None,
        name: str | None = None,
        resources: dict[str, Any] | None = None,
        array: str | None = None,
        after: Iterable[str] = (),
        requeue: bool | None = None,
        max_restarts: int | None = None,
        signal_before_end_s: int | None = None,
        env: dict[str, str] | None = None,
        output_dir: str | None = None,
        config: dict[str, Any] | None = None,
        tags: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Submit ``command`` (argv) or ``script`` (sbatch text) as tracked runs (``POST
        /api/v1/launch``): ``{"job_id", "executor", "run_ids", "array_task_ids", "runs", ...}``.
        ``resources``: partition, nodes, ntasks_per_node, cpus_per_task, gpus_per_node, mem_gb,
        time_limit_min, account, qos. Left-out values take the server's defaults."""
        body: dict[str, Any] = {
            "project": project,
            "experiment": experiment,
            "workdir": workdir,
            "command": None if command is None else list(command),
            "script": script,
            "name": name,
            "resources": {k: v for k, v in (resources or {}).items() if v is not None},
            "array": array,
            "after": list(after),
            "requeue": requeue,
            "max_restarts": max_restarts,
            "signal_before_end_s": signal_before_end_s,
            "env": env,
            "output_dir": output_dir,
            "config": config,
            "tags": list(tags),
        }
        out: dict[str, Any] = self._json(
            "POST", "/api/v1/launch", json_body={k: v for k, v in body.items() if v is not None}
        )
        return out

    # -- sweeps and pipelines (the server parses the YAML: the client stays stdlib only) -----
    def _submit_spec(
        self,
        path: str,
        spec: str,
        source: str,
        base_dir: str,
        project: str | None,
        experiment: str | None,
        dry_run: bool,
    ) -> dict[str, Any]:
        body = {"spec": spec, "source": source, "base_dir": base_dir, "dry_run": dry_run}
        body.update({k: v for k, v in (("project", project), ("experiment", experiment)) if v})
        out: dict[str, Any] = self._json("POST", path, json_body=body)
        return out

    def create_sweep(
        self,
        spec: str,
        *,
        source: str = "sweep.yaml",
        base_dir: str,
        project: str | None = None,
        experiment: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Check the sweep spec (YAML text) and submit its trials as one job array."""
        return self._submit_spec("/api/v1/sweeps", spec, source, base_dir, project, experiment, dry_run)

    def get_sweep(self, sweep_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/api/v1/sweeps/{quote(sweep_id, safe='')}")
        return out

    def cancel_sweep(self, sweep_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", f"/api/v1/sweeps/{quote(sweep_id, safe='')}/cancel")
        return out

    def extend_sweep(self, sweep_id: str, count: int) -> dict[str, Any]:
        path = f"/api/v1/sweeps/{quote(sweep_id, safe='')}/extend"
        out: dict[str, Any] = self._json("POST", path, json_body={"count": count})
        return out

    def create_pipeline(
        self,
        spec: str,
        *,
        source: str = "pipeline.yaml",
        base_dir: str,
        project: str | None = None,
        experiment: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Check the pipeline spec (YAML text) and submit its steps chained with --dependency."""
        return self._submit_spec("/api/v1/pipelines", spec, source, base_dir, project, experiment, dry_run)

    def get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("GET", f"/api/v1/pipelines/{quote(pipeline_id, safe='')}")
        return out

    def cancel_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._json("POST", f"/api/v1/pipelines/{quote(pipeline_id, safe='')}/cancel")
        return out

    def close(self) -> None:
        self.transport.close()
