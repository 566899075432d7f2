"""``GET /api/v1/events`` against a real server process (the ASGI test transport buffers a
response, so only a real socket shows that events arrive while the request is open)."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runyard.server.events import EventBus
from tests.e2e.conftest import LiveServer, free_port

WAIT_S = 5.0  # a deadline to wait for an event, not a measured latency
_seq = iter(range(1, 1_000_000))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_"))}
    data = tmp_path_factory.mktemp("events") / "server-data"
    data.mkdir()
    env["RUNYARD_EXECUTOR"] = "none"
    env["RUNYARD_CONFIG"] = str(data.parent / "client.toml")
    live = LiveServer(data, free_port(), env)
    live.start()
    yield live
    live.stop()


class Stream:
    """Reads an event stream on a thread; events (and comments) land in a queue."""

    def __init__(self, server: LiveServer, headers: dict[str, str] | None = None, **params: Any) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._client = httpx.Client(base_url=server.url, timeout=httpx.Timeout(5.0, read=None))
        self._cm = self._client.stream(
            "GET", "/api/v1/events", params=params, headers={"X-API-Key": server.key, **(headers or {})}
        )
        self.response = self._cm.__enter__()
        assert self.response.status_code == 200
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event: dict[str, Any] = {}
        try:
            for line in self.response.iter_lines():
                if not line:
                    if event:
                        self.events.put(event)
                    event = {}
                elif line.startswith(":"):
                    continue
                else:
                    field, _, value = line.partition(": ")
                    event[field] = json.loads(value) if field == "data" else value
        except httpx.HTTPError:
            pass

    def next(self, *kinds: str) -> dict[str, Any]:
        """The next event of one of ``kinds`` (others are skipped), waiting up to WAIT_S."""
        import time

        deadline = time.monotonic() + WAIT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {kinds} event within {WAIT_S} s")
            try:
                event = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if event["event"] in kinds:
                return event

    def close(self) -> None:
        self._cm.__exit__(None, None, None)
        self._client.close()


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    opened: list[Stream] = []
    yield opened
    for s in opened:
        s.close()


def open_stream(streams: list[Stream], server: LiveServer, **kwargs: Any) -> Stream:
    s = Stream(server, **kwargs)
    streams.append(s)
    s.next("hello", "reset")  # the stream is registered: later changes reach it
    return s


def new_run(server: LiveServer, experiment: str = "live") -> dict[str, Any]:
    run: dict[str, Any] = server.post("/api/v1/runs", {"project": "events", "experiment": experiment})
    return run


def batch(server: LiveServer, run_id: str, **body: Any) -> dict[str, Any]:
    out: dict[str, Any] = server.post(
        f"/api/v1/runs/{run_id}/batches", {"writer": "writer-0001", "seq": next(_seq), **body}
    )
    return out


def loss(steps: list[int], values: list[float]) -> dict[str, Any]:
    return {"loss": {"steps": steps, "times": [1_763_798_400.0 + s for s in steps], "values": values}}


def test_batch_gives_metrics_and_run_events(server: LiveServer, streams: list[Stream]) -> None:
    stream = open_stream(streams, server)
    run = new_run(server)
    created = stream.next("run")
    assert created["data"]["run_id"] == run["id"] and created["data"]["status"] == "running"
    assert created["data"]["created_at"] == run["created_at"] and created["data"]["user_id"] == run["user_id"]
    batch(server, run["id"], metrics=loss([0, 1, 2], [3.0, 2.0, 1.0]))
    metrics = stream.next("metrics")
    assert metrics["data"]["run_id"] == run["id"]
    assert metrics["data"]["experiment_id"] == run["experiment_id"]
    assert metrics["data"]["metrics"]["loss"] == {
        "count": 3,
        "new": 3,
        "last": 1.0,
        "min": 1.0,
        "max": 3.0,
        "last_step": 2,
        "last_time": 1_763_798_402.0,
    }
    batch(server, run["id"], update={"status": "finished", "exit_code": 0})
    changed = stream.next("run")
    assert changed["data"]["run_id"] == run["id"]
    assert changed["data"]["status"] == "finished" and changed["data"]["exit_code"] == 0
    assert changed["id"].startswith(created["id"].split("-")[0] + "-")


def test_console_lines_give_logs_events(server: LiveServer, streams: list[Stream]) -> None:
    run = new_run(server)
    stream = open_stream(streams, server, run_id=run["id"])
    logs = {
        "times": [1_763_798_400.0, 1_763_798_401.0],
        "streams": ["stdout", "stderr"],
        "hosts": ["n1", "n2"],
        "ranks": [0, 1],
        "lines": ["epoch 1", "warning: slow"],
    }
    batch(server, run["id"], logs=logs)
    event = stream.next("logs")
    lines = event["data"]["lines"]
    assert [(x["stream"], x["host"], x["rank"], x["line"]) for x in lines] == [
        ("stdout", "n1", 0, "epoch 1"),
        ("stderr", "n2", 1, "warning: slow"),
    ]
    assert lines[0]["id"] < lines[1]["id"] and event["data"]["truncated"] is False
    batch(server, run["id"], logs={"lines": ["epoch 2"]})
    again = stream.next("logs")["data"]["lines"]
    assert [x["line"] for x in again] == ["epoch 2"] and again[0]["id"] > lines[1]["id"]


def test_filters_by_run_and_experiment(server: LiveServer, streams: list[Stream]) -> None:
    a, b = new_run(server, "filter-a"), new_run(server, "filter-b")
    by_run = open_stream(streams, server, run_id=[b["id"]])
    by_experiment = open_stream(streams, server, experiment_id=a["experiment_id"])
    batch(server, a["id"], metrics=loss([0], [1.0]))
    batch(server, b["id"], metrics=loss([0], [2.0]))
    assert by_run.next("metrics")["data"]["run_id"] == b["id"]
    assert by_experiment.next("metrics")["data"]["run_id"] == a["id"]
    marker = new_run(server, "filter-a")  # a later event a's stream sees: nothing of b came before
    assert by_experiment.next("run", "metrics", "logs")["data"]["run_id"] == marker["id"]


def test_reconnect_replays_exactly_the_missed_events(server: LiveServer, streams: list[Stream]) -> None:
    run = new_run(server, "replay")
    first = open_stream(streams, server, run_id=run["id"])
    batch(server, run["id"], metrics=loss([0], [1.0]))
    seen = first.next("metrics")
    first.close()
    streams.remove(first)
    for step in range(1, 6):  # missed while disconnected
        batch(server, run["id"], metrics=loss([step], [float(step)]))
    batch(server, run["id"], update={"status": "failed", "exit_code": 3})
    for how in ({"headers": {"Last-Event-ID": seen["id"]}}, {"last_event_id": seen["id"]}):
        again = open_stream(streams, server, run_id=run["id"], **how)
        replayed = [again.next("run", "metrics", "logs") for _ in range(6)]
        assert [e["event"] for e in replayed] == ["metrics"] * 5 + ["run"]
        assert [e["data"]["metrics"]["loss"]["last_step"] for e in replayed[:5]] == [1, 2, 3, 4, 5]
        numbers = [int(e["id"].rsplit("-", 1)[1]) for e in replayed]
        assert numbers == sorted(set(numbers)) and numbers[0] > int(seen["id"].rsplit("-", 1)[1])
        assert replayed[-1]["data"]["status"] == "failed"
        batch(server, run["id"], logs={"lines": ["after"]})  # then live again, nothing repeated
        assert again.next("run", "metrics", "logs")["event"] == "logs"


@pytest.mark.parametrize("last_id", ["not-an-id", "0000-1", "x"])
def test_unknown_or_foreign_id_gets_reset(server: LiveServer, streams: list[Stream], last_id: str) -> None:
    stream = Stream(server, headers={"Last-Event-ID": last_id})
    streams.append(stream)
    epoch = stream.next("hello")["data"]["epoch"]
    reset = stream.next("reset")
    assert reset["id"].split("-")[0] == epoch and reset["data"]["reason"]
    run = new_run(server, "after-reset")
    assert stream.next("run")["data"]["run_id"] == run["id"]


def test_needs_an_api_key(server: LiveServer) -> None:
    r = httpx.get(f"{server.url}/api/v1/events", timeout=5)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"


def test_openapi_documents_the_stream(server: LiveServer) -> None:
    spec = httpx.get(f"{server.url}/openapi.json", timeout=5).json()
    op = spec["paths"]["/api/v1/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert "Last-Event-ID" in op["description"] and "reset" in op["description"]


def test_server_stops_with_a_stream_open(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNYARD_", "SLURM_"))}
    env |= {"RUNYARD_EXECUTOR": "none", "RUNYARD_CONFIG": str(tmp_path / "client.toml")}
    (tmp_path / "data").mkdir()
    live = LiveServer(tmp_path / "data", free_port(), env)
    live.start()
    stream = Stream(live)
    try:
        stream.next("hello")
        assert live.proc is not None
        live.proc.terminate()  # uvicorn waits for open responses: the bus ends the streams
        live.proc.wait(timeout=10)  # a deadline, well under the 15 s heartbeat
    finally:
        stream.close()
        live.stop()


# -- the bus on its own: ring, resume points, thread-safe wake-ups ----------------------------
def test_bus_resume_points_and_ring_overflow() -> None:
    bus = EventBus(buffer_size=3)
    assert bus.resume_point(bus.event_id(0)) == 0  # nothing published yet: nothing missed
    for i in range(5):
        bus.publish("run", {"i": i}, run_id="r")
    assert bus.resume_point(bus.event_id(5)) == 5
    assert bus.resume_point(bus.event_id(2)) == 2  # 3, 4, 5 are still there
    assert bus.resume_point(bus.event_id(1)) is None  # 2 left the ring: a gap
    assert bus.resume_point(bus.event_id(6)) is None  # from the future
    assert bus.resume_point("other-3") is None
    events = bus.since(2)
    assert events is not None and [e.n for e in events] == [3, 4, 5]
    assert bus.since(1) is None and bus.since(5) == []


def test_bus_wakes_a_reader_from_another_thread() -> None:
    import asyncio

    bus = EventBus()

    async def main() -> list[int]:
        sub = bus.subscribe()
        thread = threading.Thread(target=lambda: bus.publish("run", {}, run_id="r"))
        thread.start()
        await asyncio.wait_for(sub.ready.wait(), WAIT_S)
        thread.join()
        bus.unsubscribe(sub)
        return [e.n for e in bus.since(0) or []]

    assert asyncio.run(main()) == [1]
    assert bus.subscribers == 0


def test_architecture_doc_describes_events() -> None:
    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text()
    assert "/api/v1/events" in text
