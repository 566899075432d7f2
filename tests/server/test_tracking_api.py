"""Runs, metrics, artifacts and the seed 003 paths through the REST API (real SQLite store)."""

from __future__ import annotations

import io
import json
import math

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import assert_error

WRITER = "w" * 16


def batch(seq: int, metrics: dict, **extra) -> dict:
    return {"writer": WRITER, "seq": seq, "metrics": metrics, **extra}


def cols(steps, values, t0=1_700_000_000.0):
    return {"steps": list(steps), "times": [t0 + s for s in steps], "values": list(values)}


def series(api: TestClient, run_id: str, key: str, **params) -> dict:
    r = api.get(f"/api/v1/runs/{run_id}/metrics/series", params={"key": key, **params})
    assert r.status_code == 200, r.text
    return r.json()


def test_seed_paths_create_run_and_log(api: TestClient, experiment: dict) -> None:
    body = {"slurm_job_id": "4242", "slurm_node": "n1", "config": {"lr": 0.1}, "gpu_type": "A100", "seed": 7}
    r = api.post(f"/experiments/{experiment['id']}/runs", json=body)
    assert r.status_code == 201
    run_id = r.json()["run_id"]
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["slurm_job_id"] == "4242" and run["slurm_nodes"] == "n1" and run["gpu_type"] == "A100"
    assert run["config"] == {"lr": 0.1, "seed": 7}
    assert (
        api.post(f"/runs/{run_id}/metrics", json={"name": "loss", "value": 0.5, "step": 0}).status_code == 200
    )
    r = api.post(
        f"/runs/{run_id}/metrics/batch",
        json={"step": 1, "metrics": {"loss": 0.25, "acc": 0.9}, "timestamp": "2026-11-22T10:00:00"},
    )
    assert r.json() == {"points": 2}
    s = series(api, run_id, "loss")
    assert s["steps"] == [0, 1] and s["values"] == [0.5, 0.25]
    assert series(api, run_id, "acc")["times"] == [1795341600.0]  # naive ISO time is UTC
    r = api.post(
        f"/runs/{run_id}/artifacts",
        json={"path": "/shared/ckpt/best.pt", "type": "model_checkpoint", "size_bytes": 123},
    )
    assert r.status_code == 201 and r.json()["kind"] == "model_checkpoint"
    r = api.post("/webhooks/slurm", data={"job_id": "4242", "status": "completed", "exit_code": "0"})
    assert r.json()["received"] is True
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "finished"


def test_webhook_failed_exit_code(api: TestClient, experiment: dict) -> None:
    run_id = api.post(f"/experiments/{experiment['id']}/runs", json={"slurm_job_id": 77}).json()["run_id"]
    api.post("/webhooks/slurm", data={"job_id": "77", "status": "completed", "exit_code": "3:0"})
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["status"] == "failed" and run["exit_code"] == 3
    assert_error(
        api.post("/webhooks/slurm", data={"job_id": "77", "status": "exploded"}),
        400,
        "invalid_input",
        "status",
    )


def test_batches_apply_exactly_once(api: TestClient, experiment: dict) -> None:
    run_id = "a" * 32
    first = batch(
        1,
        {"loss": cols(range(5), [5, 4, 3, 2, 1])},
        run={"experiment_id": experiment["id"], "name": "client run", "config": {"lr": 1}},
    )
    r = api.post(f"/api/v1/runs/{run_id}/batches", json=first)
    assert r.json() == {"run_id": run_id, "seq": 1, "duplicate": False, "points": 5}
    r = api.post(f"/api/v1/runs/{run_id}/batches", json=first)
    assert r.json()["duplicate"] is True and r.json()["points"] == 0
    api.post(f"/api/v1/runs/{run_id}/batches", json=batch(2, {"loss": cols([5], [0.5])}))
    run = api.get(f"/api/v1/runs/{run_id}").json()
    assert run["metrics"]["loss"]["count"] == 6 and run["metrics"]["loss"]["min"] == 0.5
    assert run["name"] == "client run"


def test_batch_creates_project_and_experiment_by_name(api: TestClient) -> None:
    body = batch(1, {}, run={"project": "Ünïcode 'proj'", "experiment": 'a/b "c"', "name": "n"})
    assert api.post("/api/v1/runs/" + "b" * 32 + "/batches", json=body).status_code == 200
    names = {p["name"] for p in api.get("/api/v1/projects").json()}
    assert "Ünïcode 'proj'" in names
    assert 'a/b "c"' in {e["name"] for e in api.get("/api/v1/experiments").json()}


def test_batch_for_unknown_run_without_run_section_is_404(api: TestClient) -> None:
    assert_error(api.post("/api/v1/runs/" + "c" * 32 + "/batches", json=batch(1, {})), 404, "not_found")


def test_non_finite_values_round_trip(api: TestClient, run: dict) -> None:
    rid = run["id"]
    api.post(
        f"/api/v1/runs/{rid}/batches",
        json=batch(1, {"x": cols([0, 1, 2, 3], [1.5, "NaN", "Infinity", "-Infinity"])}),
    )
    # Python's json module sends bare NaN tokens (seed 003's client would): accepted too.
    raw = json.dumps({"name": "x", "value": float("nan"), "step": 4}).encode()
    assert b"NaN" in raw
    assert (
        api.post(
            f"/api/v1/runs/{rid}/metrics", content=raw, headers={"Content-Type": "application/json"}
        ).status_code
        == 200
    )
    s = series(api, rid, "x")
    assert s["values"] == [1.5, "NaN", "Infinity", "-Infinity", "NaN"]
    summary = api.get(f"/api/v1/runs/{rid}").json()["metrics"]["x"]
    assert summary["count"] == 5 and summary["last"] == "NaN" and summary["max"] == "Infinity"
    assert summary["min"] == "-Infinity"


def test_bad_input_names_the_field_and_changes_nothing(api: TestClient, run: dict) -> None:
    rid = run["id"]
    api.post(f"/api/v1/runs/{rid}/batches", json=batch(1, {"loss": cols([0], [1.0])}))
    before = api.get(f"/api/v1/runs/{rid}").json()
    cases = [
        (batch(2, {"loss": cols([1], [2.0]), "acc": cols([0, 1], [0.5, "abc"])}), "metrics.acc.values[1]"),
        (batch(2, {"loss": {"steps": [1, 2], "values": [1.0]}}), "metrics.loss"),
        (batch(2, {"loss": cols([-1], [1.0])}), "metrics.loss.steps[0]"),
        (batch(2, {"loss": cols([1.5], [1.0])}), "metrics.loss.steps[0]"),
        (batch(2, {"loss": cols([1], [True])}), "metrics.loss.values[0]"),
        (batch(2, {"loss": cols([1], [None])}), "metrics.loss.values[0]"),
        (batch(2, {"loss": "nope"}), "metrics.loss"),
        ({"writer": "short", "seq": 2}, "writer"),
        ({"writer": WRITER, "seq": 0}, "seq"),
        ({"writer": WRITER, "seq": "1"}, "seq"),
        ({"writer": WRITER, "seq": 2, "bogus": 1}, "body"),
        (batch(2, {}, update={"status": "exploded"}), "update.status"),
        (batch(2, {"": cols([1], [1.0])}), None),
        (batch(2, {"k\x00ey": cols([1], [1.0])}), None),
        ([1, 2, 3], "body"),
    ]
    for body, field in cases:
        r = api.post(f"/api/v1/runs/{rid}/batches", json=body)
        err = assert_error(r, 400, "invalid_input")
        if field is not None:
            assert err["field"] == field, (body, err)
        else:
            assert err["field"], err
    single = [
        ({"value": 1.0, "step": 1}, "name"),
        ({"name": "loss", "step": 1}, "value"),
        ({"name": "loss", "value": 1.0}, "step"),
        ({"name": "loss", "value": "high", "step": 1}, "value"),
        ({"name": "loss", "value": 1.0, "step": 1, "timestamp": "yesterday"}, "timestamp"),
        (
            {"points": [{"name": "loss", "value": 1, "step": 1}, {"name": "loss", "value": [], "step": 2}]},
            "points[1].value",
        ),
    ]
    for body, field in single:
        assert_error(api.post(f"/api/v1/runs/{rid}/metrics", json=body), 400, "invalid_input", field)
    assert_error(
        api.post(f"/runs/{rid}/metrics/batch", json={"step": 1, "metrics": {"a": "x"}}),
        400,
        "invalid_input",
        "metrics.a",
    )
    assert api.get(f"/api/v1/runs/{rid}").json() == before
    assert series(api, rid, "loss")["values"] == [1.0]
    # the failed seq 2 was not consumed: it can still be applied
    assert (
        api.post(f"/api/v1/runs/{rid}/batches", json=batch(2, {"loss": cols([1], [2.0])})).json()["duplicate"]
        is False
    )


def test_steps_going_backwards_are_stored_and_read_in_step_order(api: TestClient, run: dict) -> None:
    rid = run["id"]
    api.post(f"/api/v1/runs/{rid}/batches", json=batch(1, {"loss": cols([0, 1, 2, 3], [4.0, 3.0, 2.0, 1.0])}))
    api.post(f"/api/v1/runs/{rid}/batches", json=batch(2, {"loss": cols([2, 3], [2.5, 1.5])}))  # resumed at 2
    s = series(api, rid, "loss")
    assert s["steps"] == [0, 1, 2, 2, 3, 3]
    assert s["values"] == [4.0, 3.0, 2.0, 2.5, 1.0, 1.5]  # equal steps keep logging order
    summary = api.get(f"/api/v1/runs/{rid}").json()["metrics"]["loss"]
    assert summary["last"] == 1.5 and summary["last_step"] == 3 and summary["count"] == 6


def test_ten_thousand_distinct_keys(api: TestClient, run: dict) -> None:
    rid = run["id"]
    metrics = {f"layer{i}/grad_norm": cols([0], [float(i)]) for i in range(10_000)}
    r = api.post(f"/api/v1/runs/{rid}/batches", json=batch(1, metrics))
    assert r.status_code == 200 and r.json()["points"] == 10_000
    listed = api.get(f"/api/v1/runs/{rid}/metrics").json()
    assert len(listed) == 10_000
    assert series(api, rid, "layer9999/grad_norm")["values"] == [9999.0]


def test_downsampled_series(api: TestClient, run: dict) -> None:
    rid = run["id"]
    n = 50_000
    values = [math.sin(i / 100) for i in range(n)]
    values[31_337] = 100.0
    r = api.post(f"/api/v1/runs/{rid}/batches", json=batch(1, {"y": cols(range(n), values)}))
    assert r.status_code == 200, r.text
    s = series(api, rid, "y", max_points=500)
    assert s["downsampled"] is True and s["total"] == n
    assert len(s["values"]) <= 500
    assert 100.0 in s["values"] and s["steps"][0] == 0 and s["steps"][-1] == n - 1
    full = series(api, rid, "y")
    assert len(full["values"]) == n and full["downsampled"] is False


def test_run_update_merges_and_search(api: TestClient, experiment: dict) -> None:
    eid = experiment["id"]
    ids = []
    for i, lr in enumerate([0.001, 0.01, 0.1, 1.0]):
        rid = api.post(
            f"/api/v1/experiments/{eid}/runs",
            json={"name": f"r{i}", "config": {"lr": lr, "opt": {"name": "adam"}}, "tags": ["t"]},
        ).json()["id"]
        api.post(f"/api/v1/runs/{rid}/batches", json=batch(1, {"loss": cols([0, 1], [10.0 - i, 5.0 - i])}))
        ids.append(rid)
    r = api.patch(
        f"/api/v1/runs/{ids[0]}",
        json={
            "config": {"epochs": 3},
            "notes": "best <b>so far</b>",
            "tags_add": ["keep"],
            "status": "finished",
        },
    )
    assert r.status_code == 200
    run = r.json()
    assert run["config"] == {"lr": 0.001, "opt": {"name": "adam"}, "epochs": 3}
    assert run["notes"] == "best <b>so far</b>" and set(run["tags"]) == {"t", "keep"}
    page = api.get(
        f"/api/v1/experiments/{eid}/runs",
        params={
            "filter": ["params.lr>=0.01", "params.opt.name=adam"],
            "sort": "metrics.loss.min",
            "order": "asc",
            "limit": 2,
            "total": "true",
        },
    ).json()
    assert [r["name"] for r in page["runs"]] == ["r3", "r2"]
    assert page["total"] == 3 and page["next_offset"] == 2
    page2 = api.get(
        f"/api/v1/experiments/{eid}/runs",
        params={
            "filter": "params.lr>=0.01",
            "sort": "metrics.loss.min",
            "order": "asc",
            "limit": 2,
            "offset": 2,
        },
    ).json()
    assert [r["name"] for r in page2["runs"]] == ["r1"] and page2["next_offset"] is None
    tagged = api.get("/api/v1/runs", params={"experiment_id": eid, "filter": "tags=keep"}).json()["runs"]
    assert [r["id"] for r in tagged] == [ids[0]]
    assert api.get("/api/v1/runs", params={"filter": "status=finished"}).json()["runs"][0]["id"] == ids[0]
    assert_error(
        api.patch(f"/api/v1/runs/{ids[0]}", json={"status": "bogus"}), 400, "invalid_input", "status"
    )
    assert_error(api.patch(f"/api/v1/runs/{ids[0]}", json={"colour": "red"}), 400, "invalid_input", "colour")


def test_experiment_counts(api: TestClient, experiment: dict, run: dict) -> None:
    exp = api.get(f"/api/v1/experiments/{experiment['id']}").json()
    assert exp["run_count"] == 1 and exp["running_count"] == 1


def test_artifact_upload_download_and_limits(api: TestClient, run: dict) -> None:
    rid = run["id"]
    payload = b"\x00\x01weights" * 100
    r = api.put(f"/api/v1/runs/{rid}/artifacts/files/model.bin", content=payload, params={"kind": "model"})
    assert r.status_code == 201, r.text
    art = r.json()
    assert art["stored"] is True and art["size_bytes"] == len(payload) and len(art["sha256"]) == 64
    assert api.get(f"/api/v1/artifacts/{art['id']}/download").content == payload
    assert_error(
        api.put(f"/api/v1/runs/{rid}/artifacts/files/a%01b", content=b"x"), 400, "invalid_input", "name"
    )
    assert_error(
        api.put(f"/api/v1/runs/{rid}/artifacts/files/a%5Cb", content=b"x"), 400, "invalid_input", "name"
    )
    err = assert_error(
        api.put(f"/api/v1/runs/{rid}/artifacts/files/big.bin", content=b"x" * (64 * 1024 + 1)),
        413,
        "payload_too_large",
    )
    assert "RUNYARD_MAX_ARTIFACT_MB" in err["message"]
    recorded = api.post(
        f"/api/v1/runs/{rid}/artifacts", json={"path": "/shared/x.pt", "kind": "checkpoint"}
    ).json()
    assert_error(api.get(f"/api/v1/artifacts/{recorded['id']}/download"), 404, "not_found")
    listed = api.get(f"/api/v1/runs/{rid}/artifacts").json()
    assert {a["name"] for a in listed} == {"model.bin", "x.pt"}
    assert_error(
        api.post(f"/api/v1/runs/{rid}/artifacts", json={"path": "/x", "sha256": "zz"}),
        400,
        "invalid_input",
        "body.sha256",
    )


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export(api: TestClient, run: dict, fmt: str) -> None:
    rid = run["id"]
    api.post(
        f"/api/v1/runs/{rid}/batches",
        json=batch(1, {"loss": cols([0, 1], [1.0, "NaN"]), 'a,"b"': cols([0], [2.0])}),
    )
    r = api.get(f"/api/v1/runs/{rid}/export", params={"format": fmt})
    assert r.status_code == 200
    if fmt == "csv":
        lines = r.text.splitlines()
        assert lines[0] == "key,step,time,value"
        assert '"a,""b""",0,1700000000.0,2.0' in lines
        assert any(line.startswith('"loss",1,') and line.endswith(",nan") for line in lines)
    elif fmt == "json":
        data = r.json()
        assert data["run"]["id"] == rid and data["metrics"]["loss"]["values"] == [1.0, "NaN"]
    else:
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(r.content)).to_pydict()
        assert sorted(zip(table["key"], table["step"], strict=True)) == [
            ('a,"b"', 0),
            ("loss", 0),
            ("loss", 1),
        ]
        assert math.isnan(table["value"][table["step"].index(1)])


@pytest.mark.parametrize("name", [".", "..", "a/b", "a\\b", "x\x00", "n" * 256])
def test_upload_names_that_could_escape_are_refused(name: str) -> None:
    from runyard.errors import InvalidInput
    from runyard.server.routes.artifacts import _check_name

    with pytest.raises(InvalidInput):
        _check_name(name)


def test_bulk_create_is_all_or_none(api: TestClient, experiment: dict) -> None:
    eid = experiment["id"]
    runs = [{"experiment_id": eid, "name": f"trial-{i}", "config": {"lr": 10.0**-i}} for i in range(50)]
    r = api.post("/api/v1/runs/bulk", json={"runs": runs})
    assert r.status_code == 201, r.text
    assert len(r.json()["run_ids"]) == 50 and r.json()["runs"][3]["config"] == {"lr": 0.001}
    by_name = api.post(
        "/api/v1/runs/bulk", json={"runs": [{"project": "bulk", "experiment": "named", "name": "x"}]}
    )
    assert by_name.status_code == 201
    before = api.get(f"/api/v1/experiments/{eid}").json()["run_count"]
    bad = [*runs[:3], {"experiment_id": "no-such-experiment", "name": "oops"}]
    assert_error(api.post("/api/v1/runs/bulk", json={"runs": bad}), 404, "not_found")
    dup = [{"experiment_id": eid, "id": "same-id"}, {"experiment_id": eid, "id": "same-id"}]
    assert_error(api.post("/api/v1/runs/bulk", json={"runs": dup}), 409, "already_exists")
    assert api.get(f"/api/v1/experiments/{eid}").json()["run_count"] == before
    assert_error(api.post("/api/v1/runs/bulk", json={"runs": []}), 400, "invalid_input", "runs")


def test_create_run_by_names_or_id(api: TestClient, experiment: dict) -> None:
    r = api.post(
        "/api/v1/runs", json={"project": "by-name", "experiment": "e1", "name": "n", "id": "my-run-1"}
    )
    assert r.status_code == 201 and r.json()["run_id"] == "my-run-1"
    by_id = api.post("/api/v1/runs", json={"experiment_id": experiment["id"]})
    assert by_id.status_code == 201 and by_id.json()["experiment_id"] == experiment["id"]
    assert_error(api.post("/api/v1/runs", json={"name": "orphan"}), 400, "invalid_input", "experiment_id")
    assert_error(api.post("/api/v1/runs", json={"experiment_id": "nope"}), 404, "not_found")
    assert_error(
        api.post("/api/v1/runs", json={"experiment_id": experiment["id"], "id": "my-run-1"}),
        409,
        "already_exists",
    )
