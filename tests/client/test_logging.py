"""What a training script records arrives as the protocol says: columnar, numbered, complete."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import runyard
from runyard.client.api import batch_path
from tests.client.conftest import wait_until
from tests.fakes.server import FakeServer


class RecordingTransport:
    """Keeps every batch body it forwards to the fake, to look at the wire format."""

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        self.bodies: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: Any = None, timeout: Any = None
    ):  # type: ignore[no-untyped-def]
        if body is not None:
            self.raw.append(body)
            self.bodies.append(json.loads(body))
        return self.fake.handle(method, path, body, headers or {})

    def close(self) -> None:
        pass


class Scalar:
    """Stands for a numpy scalar or a 0-d torch tensor: a number through ``__float__``."""

    def __init__(self, v: float) -> None:
        self.v = v

    def __float__(self) -> float:
        return self.v


def test_log_arrives_as_columnar_batches(fake: FakeServer, start: Callable[..., runyard.Run]) -> None:
    rec = RecordingTransport(fake)
    run = start(_transport=rec, config={"lr": 0.1}, tags=["baseline"], name="n1", notes="hi")
    for step in range(50):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 50})
    result = run.finish()
    assert result.synced and result.points_sent == 100 and result.journal is None
    first = rec.bodies[0]
    assert first["seq"] == 1 and re.fullmatch(r"[0-9a-f]{16}", first["writer"])
    assert first["run"]["project"] == "p" and first["run"]["experiment"] == "e"
    assert first["run"]["config"] == {"lr": 0.1} and first["run"]["tags"] == ["baseline"]
    assert (first["run"]["name"], first["run"]["notes"], first["run"]["status"]) == ("n1", "hi", "running")
    assert [b["seq"] for b in rec.bodies] == list(range(1, len(rec.bodies) + 1))
    assert {b["writer"] for b in rec.bodies} == {first["writer"]}
    assert all("run" not in b for b in rec.bodies[1:])
    for b in rec.bodies[1:]:
        for cols in b.get("metrics", {}).values():
            assert set(cols) == {"steps", "times", "values"}
            assert len(cols["steps"]) == len(cols["times"]) == len(cols["values"])
    stored = fake.runs[run.id]
    assert stored.steps("loss") == list(range(50))
    assert stored.values("loss") == [1.0 / (s + 1) for s in range(50)]
    times = [t for _, t, _ in stored.metrics["loss"]]
    assert times == sorted(times)
    assert stored.status == "finished" and stored.exit_code is None and stored.ended_at is not None
    assert rec.bodies[-1]["update"]["status"] == "finished"


def test_step_counter_continues_after_an_explicit_step(
    fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    run = start()
    run.log({"a": 1.0})
    run.log({"a": 2.0})
    run.log({"a": 3.0}, step=10)
    run.log({"a": 4.0})
    run.finish()
    assert fake.runs[run.id].steps("a") == [0, 1, 10, 11]


def test_non_finite_values_travel_as_strings(fake: FakeServer, start: Callable[..., runyard.Run]) -> None:
    rec = RecordingTransport(fake)
    run = start(_transport=rec)
    run.log({"x": math.nan})
    run.log({"x": math.inf})
    run.log({"x": -math.inf})
    run.log({"x": 1.5})
    run.finish()
    wire = b"".join(rec.raw)
    assert b'"NaN"' in wire and b'"Infinity"' in wire and b'"-Infinity"' in wire
    assert b"NaN," not in wire.replace(b'"NaN",', b"")  # no bare NaN tokens
    values = fake.runs[run.id].values("x")
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.5]


def test_bad_values_are_skipped_with_a_warning_never_raised(
    fake: FakeServer, start: Callable[..., runyard.Run], capsys: pytest.CaptureFixture[str]
) -> None:
    run = start()
    run.log({"ok": 1, "flag": True, "name": "resnet", "obj": object(), "np": Scalar(2.5), "big": 10**400})
    run.log({"ok": 2}, step="three")  # type: ignore[arg-type]
    run.log({"ok": 3}, step=-1)
    run.log({"ok": 4})
    run.log([1, 2])  # type: ignore[arg-type]
    run.finish()
    stored = fake.runs[run.id]
    assert stored.values("ok") == [1.0, 4.0] and stored.values("np") == [2.5]
    assert set(stored.metrics) == {"ok", "np"}
    err = capsys.readouterr().err
    for word in ("'flag'", "'name'", "'obj'", "'big'", "'three'", "-1", "run.log() takes a dict"):
        assert word in err, word


def test_config_summary_tags_and_artifacts_are_sent(
    fake: FakeServer, start: Callable[..., runyard.Run], tmp_path: Path
) -> None:
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes(b"weights" * 100)
    run = start(config={"lr": 0.1})
    run.config["epochs"] = 10
    run.config.update({"opt": "sgd", "path": tmp_path, "decay": math.nan})
    run.summary["best_acc"] = 0.97
    run.add_tags("x", "y")
    run.log_artifact(ckpt, kind="checkpoint", step=3)
    run.log_artifact("s3://bucket/model.pt", kind="model", name="final")
    run.log_artifact(tmp_path / "missing.pt")
    assert run.config["epochs"] == 10 and dict(run.config)["lr"] == 0.1
    with pytest.raises(TypeError):
        del run.config["lr"]
    run.finish()
    stored = fake.runs[run.id]
    assert stored.config == {"lr": 0.1, "epochs": 10, "opt": "sgd", "path": str(tmp_path), "decay": "NaN"}
    assert stored.summary == {"best_acc": 0.97}
    assert stored.tags == ["x", "y"]
    by_path = {a["path"]: a for a in stored.artifacts}
    a = by_path[str(ckpt)]
    assert a["kind"] == "checkpoint" and a["step"] == 3 and a["size_bytes"] == 700
    assert a["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert by_path["s3://bucket/model.pt"] == {
        "path": "s3://bucket/model.pt",
        "kind": "model",
        "name": "final",
    }
    assert "size_bytes" not in by_path[str(tmp_path / "missing.pt")]


def test_finish_status_exit_code_and_idempotence(fake: FakeServer, start: Callable[..., runyard.Run]) -> None:
    run = start()
    first = run.finish(exit_code=3)
    assert run.finish() is first
    stored = fake.runs[run.id]
    assert (stored.status, stored.exit_code) == ("failed", 3)
    run2 = start()
    run2.finish(status="cancelled")
    assert fake.runs[run2.id].status == "cancelled"


def test_log_after_finish_is_ignored_with_a_warning(
    fake: FakeServer, start: Callable[..., runyard.Run], capsys: pytest.CaptureFixture[str]
) -> None:
    run = start()
    run.finish()
    run.log({"a": 1.0})
    assert "after run.finish()" in capsys.readouterr().err
    assert "a" not in fake.runs[run.id].metrics


def test_context_manager_marks_failed_on_exception(
    fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    with pytest.raises(ZeroDivisionError), start() as run:
        run.log({"a": 1.0})
        _ = 1 / 0
    stored = fake.runs[run.id]
    assert (stored.status, stored.exit_code, stored.values("a")) == ("failed", 1, [1.0])
    with start() as ok:
        ok.log({"a": 1.0})
    assert fake.runs[ok.id].status == "finished"


def test_finish_prints_one_line_saying_synced(
    fake: FakeServer, start: Callable[..., runyard.Run], capsys: pytest.CaptureFixture[str]
) -> None:
    run = start()
    run.log({"a": 1.0})
    result = run.finish()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("runyard:")]
    assert lines == [result.message] and "synced" in result.message and "1 points" in result.message


def test_many_points_are_split_into_bounded_batches(
    fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    rec = RecordingTransport(fake)
    run = start(_transport=rec, max_buffer_points=1000, flush_interval_s=5)
    for step in range(2000):
        run.log({"a": float(step), "b": float(step)}, step=step)
    run.finish()
    sizes = [sum(len(c["values"]) for c in b.get("metrics", {}).values()) for b in rec.bodies]
    assert max(sizes) <= 100  # batch_max = max_buffer_points // 10
    assert fake.runs[run.id].steps("a") == list(range(2000))


def test_batches_go_to_the_run_path_with_the_api_key(
    fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    run = start()
    run.finish()
    assert set(fake.requests) == {("POST", batch_path(run.id))}
    wait_until(lambda: fake.runs[run.id].status == "finished")


def test_numpy_scalars_and_arrays_are_logged_as_numbers(
    fake: FakeServer, start: Callable[..., runyard.Run]
) -> None:
    np = pytest.importorskip("numpy")
    run = start()
    for step in range(20):  # enough calls for the grouped (columnar) path
        run.log(
            {"f64": np.float64(step), "f32": np.float32(0.5), "i64": np.int64(step), "zero_d": np.array(1.5)},
            step=np.int64(step),
        )
    run.config["np"] = np.float32(2.5)
    run.config["arr"] = np.arange(3)
    run.finish()
    stored = fake.runs[run.id]
    assert stored.values("f64") == [float(s) for s in range(20)] and stored.steps("f64") == list(range(20))
    assert stored.values("f32") == [0.5] * 20 and stored.values("zero_d") == [1.5] * 20
    assert stored.values("i64") == [float(s) for s in range(20)]
    assert stored.config["np"] == 2.5 and stored.config["arr"] == [0, 1, 2]
