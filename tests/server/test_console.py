"""Console lines over the API: the batch's ``logs`` field in, ``GET /runs/{id}/console`` out."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import assert_error

T0 = 1_763_798_400.0
_seq = iter(range(1, 1_000_000))


def post(api: TestClient, run_id: str, logs: Any, *, writer: str = "writer-0001", **extra: Any) -> Any:
    return api.post(
        f"/api/v1/runs/{run_id}/batches", json={"writer": writer, "seq": next(_seq), "logs": logs, **extra}
    )


def columns(*texts: str, stream: str = "stdout", host: str = "n1", rank: int = 0) -> dict[str, list[Any]]:
    n = len(texts)
    return {
        "times": [T0 + i for i in range(n)],
        "streams": [stream] * n,
        "hosts": [host] * n,
        "ranks": [rank] * n,
        "lines": list(texts),
    }


def console(api: TestClient, run_id: str, **params: Any) -> dict[str, Any]:
    r = api.get(f"/api/v1/runs/{run_id}/console", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_lines_in_a_batch_come_back_with_time_host_and_rank(api: TestClient, run: dict) -> None:
    r = post(api, run["id"], columns("epoch 1", "epoch 2"), metrics={"loss": {"steps": [0], "values": [1.0]}})
    assert r.status_code == 200 and r.json()["points"] == 1, r.text
    post(api, run["id"], columns("Traceback (most recent call last):", stream="stderr", host="n2", rank=3))
    body = console(api, run["id"])
    assert [(x["time"], x["stream"], x["host"], x["rank"], x["line"]) for x in body["lines"]] == [
        (T0, "stdout", "n1", 0, "epoch 1"),
        (T0 + 1, "stdout", "n1", 0, "epoch 2"),
        (T0, "stderr", "n2", 3, "Traceback (most recent call last):"),
    ]
    assert body["next_after_id"] == body["lines"][-1]["id"] and not body["more"]
    assert body["run_status"] == "running" and not body["final"] and body["stream"] is None
    assert [x["line"] for x in console(api, run["id"], stream="stderr")["lines"]] == [
        "Traceback (most recent call last):"
    ]


def test_paging_following_and_tail(api: TestClient, run: dict) -> None:
    post(api, run["id"], columns(*(f"line {i}" for i in range(7))))
    first = console(api, run["id"], limit=5)
    assert [x["line"] for x in first["lines"]] == [f"line {i}" for i in range(5)] and first["more"]
    rest = console(api, run["id"], limit=5, after_id=first["next_after_id"])
    assert [x["line"] for x in rest["lines"]] == ["line 5", "line 6"] and not rest["more"]
    empty = console(api, run["id"], after_id=rest["next_after_id"])
    assert empty["lines"] == [] and empty["next_after_id"] == rest["next_after_id"]
    post(api, run["id"], columns("line 7"))  # a follower picks up what arrives later
    assert [x["line"] for x in console(api, run["id"], after_id=rest["next_after_id"])["lines"]] == ["line 7"]
    tail = console(api, run["id"], tail=2)
    assert [x["line"] for x in tail["lines"]] == ["line 6", "line 7"] and not tail["more"]


def test_only_lines_are_required(api: TestClient, run: dict) -> None:
    assert post(api, run["id"], {"lines": ["bare"]}).status_code == 200
    (line,) = console(api, run["id"])["lines"]
    assert (line["stream"], line["host"], line["rank"], line["line"]) == ("stdout", None, None, "bare")


def test_a_duplicate_batch_stores_its_lines_once(api: TestClient, run: dict) -> None:
    body = {"writer": "writer-dupe", "seq": 1, "logs": columns("once")}
    for _ in range(2):
        assert api.post(f"/api/v1/runs/{run['id']}/batches", json=body).status_code == 200
    assert [x["line"] for x in console(api, run["id"])["lines"]] == ["once"]


@pytest.mark.parametrize(
    ("logs", "field"),
    [
        (["not", "columnar"], "logs"),
        ({"lines": "one string"}, "logs.lines"),
        ({"times": [T0]}, "logs.lines"),
        ({"lines": ["a"], "colour": ["red"]}, "logs"),
        ({"lines": ["a", 3]}, "logs.lines[1]"),
        ({"lines": ["a", "b"], "streams": ["stdout"]}, "logs.streams"),
        ({"lines": ["a", "b"], "streams": ["stdout", "stdin"]}, "logs.streams[1]"),
        ({"lines": ["a"], "times": ["yesterday"]}, "logs.times[0]"),
        ({"lines": ["a"], "ranks": [-1]}, "logs.ranks[0]"),
        ({"lines": ["a"], "hosts": [7]}, "logs.hosts[0]"),
        ({"lines": ["a", "x" * 16_385]}, "logs.lines[1]"),
    ],
)
def test_bad_logs_are_400_naming_the_field(api: TestClient, run: dict, logs: Any, field: str) -> None:
    error = assert_error(post(api, run["id"], logs), 400, "invalid_input", field)
    assert field.split("[")[0].split(".")[-1] in error["message"] or "logs" in error["message"]
    assert console(api, run["id"])["lines"] == []  # nothing of the batch was stored


def test_too_many_lines_in_one_batch(api: TestClient, run: dict) -> None:
    error = assert_error(post(api, run["id"], {"lines": [""] * 100_001}), 400, "invalid_input", "logs.lines")
    assert "100000" in error["message"]


def test_console_errors(api: TestClient, run: dict) -> None:
    assert_error(api.get("/api/v1/runs/no-such-run/console"), 404, "not_found")
    assert_error(
        api.get(f"/api/v1/runs/{run['id']}/console", params={"stream": "stdin"}), 400, "invalid_input"
    )
    assert_error(api.get(f"/api/v1/runs/{run['id']}/console", params={"limit": 0}), 400, "invalid_input")
    bad_key = {"X-API-Key": "ry_nothing_wrongwrongwrong"}
    assert_error(api.get(f"/api/v1/runs/{run['id']}/console", headers=bad_key), 401, "unauthorized")


def test_openapi_documents_the_logs_field_and_the_endpoint(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    assert "/api/v1/runs/{run_id}/console" in spec["paths"]
    body = spec["paths"]["/api/v1/runs/{run_id}/batches"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    log_columns = body["schema"]["$defs"]["LogColumns"]
    assert set(log_columns["properties"]) == {"times", "streams", "hosts", "ranks", "lines"}
    assert log_columns["required"] == ["lines"]
