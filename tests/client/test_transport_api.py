"""The HTTP transport (keep-alive, reconnects, network errors) and ApiClient's REST calls."""

from __future__ import annotations

import json
import math
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import runyard
from runyard.client.api import ApiClient
from runyard.client.transport import HttpTransport
from runyard.errors import InvalidInput, NotFound, RunyardError, ServerUnreachable, Unauthorized
from tests.fakes.server import FakeServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_transport_keeps_one_connection_alive(fake: FakeServer) -> None:
    with fake.serve_http() as url:
        t = HttpTransport(url)
        for _ in range(5):
            assert t.request("GET", "/api/v1/health") == (200, b'{"status":"ok"}')
        t.close()
    assert fake.connections == 1


def test_transport_reconnects_when_the_server_closed_the_connection(fake: FakeServer) -> None:
    with fake.serve_http() as url:
        t = HttpTransport(url)
        assert t.request("GET", "/api/v1/health")[0] == 200
        assert t._conn is not None and t._conn.sock is not None
        t._conn.sock.shutdown(socket.SHUT_RDWR)  # as if the server dropped an idle connection
        assert t.request("GET", "/api/v1/health")[0] == 200
    assert fake.connections == 2


def test_transport_raises_server_unreachable_for_network_errors() -> None:
    t = HttpTransport(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerUnreachable, match="cannot reach the Runyard server"):
        t.request("GET", "/api/v1/health")


def test_transport_times_out() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        t = HttpTransport(f"http://127.0.0.1:{listener.getsockname()[1]}", timeout=0.2)
        with pytest.raises(ServerUnreachable, match="timed out"):
            t.request("GET", "/api/v1/health")
    finally:
        listener.close()


def test_transport_refuses_a_bad_url() -> None:
    with pytest.raises(InvalidInput, match="RUNYARD_URL"):
        HttpTransport("localhost:8765")


def test_url_prefix_is_kept(fake: FakeServer) -> None:
    seen: list[str] = []
    original = fake.handle

    def handle(method: str, path: str, body: bytes | None, headers: Mapping[str, str]) -> tuple[int, bytes]:
        seen.append(path)
        return original(method, path.removeprefix("/tracker"), body, headers)

    fake.handle = handle  # type: ignore[method-assign]
    with fake.serve_http() as url:
        assert HttpTransport(url + "/tracker/").request("GET", "/api/v1/health")[0] == 200
    assert seen == ["/tracker/api/v1/health"]


def test_a_run_logs_over_real_http(fake: FakeServer) -> None:
    with fake.serve_http() as url:
        run = runyard.init(project="p", experiment="e", url=url, api_key="good-key", flush_interval_s=0.01)
        for step in range(100):
            run.log({"a": float(step)})
        assert run.finish().synced
    assert fake.runs[run.id].steps("a") == list(range(100))


def test_init_against_a_dead_url_warns_and_journals(capsys: pytest.CaptureFixture[str]) -> None:
    run = runyard.init(project="p", experiment="e", url=f"http://127.0.0.1:{free_port()}")
    run.log({"a": 1.0})
    result = run.finish()
    assert not result.synced and result.points_journaled == 1
    err = capsys.readouterr().err
    assert "cannot reach the Runyard server" in err and "server unreachable; 1 points saved" in err


class Recorder:
    """A transport that answers from a table and remembers what was asked."""

    def __init__(self, answers: dict[str, tuple[int, Any]] | None = None) -> None:
        self.answers = answers or {}
        self.calls: list[tuple[str, str, bytes | None, dict[str, str]]] = []

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        self.calls.append((method, path, body, dict(headers or {})))
        status, payload = self.answers.get(urlsplit(path).path, (200, {}))
        return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()

    def close(self) -> None:
        pass


def test_api_client_builds_the_documented_paths() -> None:
    rec = Recorder({"/api/v1/projects": (200, [{"id": "p1", "name": "digits"}])})
    api = ApiClient("http://x", "key", transport=rec)
    api.health()
    api.list_projects()
    api.list_experiments(project_id="p1")
    api.create_experiment("digits", "mlp")
    api.get_run("r1")
    api.metric_summaries("r1")
    api.export("r1", "parquet")
    api.list_runs(
        experiment_id="e1",
        filters=("params.lr>=0.01", "status=running"),
        sort="metrics.loss.min",
        descending=False,
        limit=10,
        offset=20,
        metric_keys=("loss", "acc"),
    )
    api.list_runs(project="digits")
    paths = [(m, urlsplit(p).path) for m, p, _, _ in rec.calls]
    assert paths == [
        ("GET", "/api/v1/health"),
        ("GET", "/api/v1/projects"),
        ("GET", "/api/v1/experiments"),
        ("POST", "/api/v1/experiments"),
        ("GET", "/api/v1/runs/r1"),
        ("GET", "/api/v1/runs/r1/metrics"),
        ("GET", "/api/v1/runs/r1/export"),
        ("GET", "/api/v1/runs"),
        ("GET", "/api/v1/projects"),
        ("GET", "/api/v1/runs"),
    ]
    assert all(h["X-API-Key"] == "key" for _, _, _, h in rec.calls)
    assert parse_qs(urlsplit(rec.calls[2][1]).query) == {"project_id": ["p1"]}
    assert json.loads(rec.calls[3][2] or b"") == {"project": "digits", "name": "mlp", "exist_ok": True}
    assert parse_qs(urlsplit(rec.calls[6][1]).query) == {"format": ["parquet"]}
    assert parse_qs(urlsplit(rec.calls[7][1]).query) == {
        "experiment_id": ["e1"],
        "filter": ["params.lr>=0.01", "status=running"],
        "sort": ["metrics.loss.min"],
        "order": ["asc"],
        "limit": ["10"],
        "offset": ["20"],
        "metrics": ["loss,acc"],
    }
    assert parse_qs(urlsplit(rec.calls[9][1]).query)["project_id"] == ["p1"]


def test_metric_series_decodes_non_finite_values() -> None:
    body = {
        "key": "loss",
        "steps": [0, 1, 2],
        "times": [0, 0, 0],
        "values": [1.5, "NaN", "-Infinity"],
        "total": 3,
        "downsampled": False,
    }
    rec = Recorder({"/api/v1/runs/r1/metrics/series": (200, body)})
    series = ApiClient("http://x", transport=rec).metric_series("r1", "loss", max_points=1000)
    assert series["values"][0] == 1.5 and math.isnan(series["values"][1]) and series["values"][2] == -math.inf
    assert parse_qs(urlsplit(rec.calls[0][1]).query) == {"key": ["loss"], "max_points": ["1000"]}


def test_api_errors_are_rebuilt_from_the_json_body() -> None:
    rec = Recorder(
        {
            "/api/v1/runs/missing": (
                404,
                {"error": {"code": "not_found", "message": "run 'missing' not found", "field": None}},
            ),
            "/api/v1/projects": (
                401,
                {"error": {"code": "unauthorized", "message": "bad key", "field": None}},
            ),
            "/api/v1/health": (502, b"<html>Bad Gateway</html>"),
        }
    )
    api = ApiClient("http://x", transport=rec)
    with pytest.raises(NotFound, match="run 'missing' not found"):
        api.get_run("missing")
    with pytest.raises(Unauthorized):
        api.list_projects()
    with pytest.raises(RunyardError, match="HTTP 502"):
        api.health()
    with pytest.raises(NotFound, match="no project named"):
        ApiClient("http://x", transport=Recorder({"/api/v1/projects": (200, [])})).list_runs(project="x")


def test_api_client_is_safe_to_share_between_threads(fake: FakeServer) -> None:
    with fake.serve_http() as url:
        api = ApiClient(url, "good-key")
        errors: list[BaseException] = []

        def hammer() -> None:
            try:
                for _ in range(20):
                    api.health()
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
