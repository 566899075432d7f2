"""GET /api/v1/series: one metric of several runs in one answer (the charts' overlay)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.server.conftest import assert_error


def _run(api: TestClient, experiment: dict, name: str, losses: list[float]) -> str:
    run = api.post(f"/api/v1/experiments/{experiment['id']}/runs", json={"name": name}).json()
    for step, loss in enumerate(losses):
        r = api.post(
            f"/api/v1/runs/{run['id']}/metrics/batch", json={"step": step, "metrics": {"loss": loss}}
        )
        assert r.is_success, r.text
    return str(run["id"])


def test_series_of_several_runs_in_order_with_per_run_errors(api: TestClient, experiment: dict) -> None:
    a = _run(api, experiment, "a", [3.0, 2.0, 1.0, 0.5])
    b = _run(api, experiment, "b", [9.0])
    bare = api.post(f"/api/v1/experiments/{experiment['id']}/runs", json={"name": "bare"}).json()["id"]
    r = api.get("/api/v1/series", params={"key": "loss", "run_id": [b, a, bare, "nope", a], "max_points": 2})
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert [s["run_id"] for s in series] == [b, a, bare, "nope"]  # asked order, each run once
    assert series[0]["values"] == [9.0] and series[0]["downsampled"] is False
    single = api.get(f"/api/v1/runs/{a}/metrics/series", params={"key": "loss", "max_points": 2}).json()
    assert {k: series[1][k] for k in single} == single  # the same answer as the one-run endpoint
    assert series[2]["error"]["field"] == "key" and series[2]["error"]["code"] == "not_found"
    assert series[3]["error"]["field"] == "run_id"
    ranged = api.get("/api/v1/series", params={"key": "loss", "run_id": [a], "step_min": 2}).json()
    assert ranged["series"][0]["steps"] == [2, 3]


def test_series_batch_checks_input_and_caller(api: TestClient, anon: TestClient, run: dict) -> None:
    assert_error(api.get("/api/v1/series", params={"key": "loss"}), 400, "invalid_input", "run_id")
    many = [run["id"]] * 101
    assert_error(
        api.get("/api/v1/series", params={"key": "loss", "run_id": many}), 400, "invalid_input", "run_id"
    )
    assert_error(
        api.get("/api/v1/series", params={"key": "loss", "run_id": [run["id"]], "max_points": 1}),
        400,
        "invalid_input",
        "max_points",
    )
    anon.headers.pop("X-API-Key", None)
    assert_error(
        anon.get("/api/v1/series", params={"key": "loss", "run_id": [run["id"]]}), 401, "unauthorized"
    )
