"""HTTP behaviour that only a real socket shows."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

from tests.e2e.conftest import LiveServer, free_port


def test_oversized_body_gets_a_413_not_a_reset(tmp_path: Path, clean_env: dict[str, str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    server = LiveServer(data, free_port(), {**clean_env, "RUNYARD_MAX_BODY_MB": "1"})
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = b"x" * (3 * 1024 * 1024)  # sent in full before the answer is read
        conn.request(
            "POST",
            "/api/v1/runs/r/batches",
            body=body,
            headers={"X-API-Key": server.key, "Content-Type": "application/json"},
        )
        r = conn.getresponse()
        err = json.loads(r.read())["error"]
        assert r.status == 413 and err["code"] == "payload_too_large" and "1 MiB" in err["message"]
        conn.request("GET", "/api/v1/health")  # the connection is still usable
        assert conn.getresponse().status == 200
    finally:
        server.stop()
