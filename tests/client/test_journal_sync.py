"""The journal file format, torn tails, and ``runyard.sync`` (exactly once, however often)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest

import runyard
from runyard.client.journal import MAGIC, JournalReader, JournalWriter, is_locked, run_id_from_path
from tests.fakes.server import FakeServer


def offline_run(n_steps: int, run_id: str | None = None) -> tuple[runyard.Run, Path]:
    run = runyard.init(project="p", experiment="e", mode="offline", run_id=run_id, flush_interval_s=0.01)
    for step in range(n_steps):
        run.log({"a": float(step)}, step=step)
    result = run.finish()
    assert result.journal is not None
    return run, result.journal


def test_journal_is_the_documented_format(spool: Path) -> None:
    run, path = offline_run(10)
    data = path.read_bytes()
    assert data[:8] == MAGIC == b"RYJ1\n\0\0\0"
    offset, payloads = 8, []
    while offset < len(data):
        length, crc = struct.unpack_from("<II", data, offset)
        payload = data[offset + 8 : offset + 8 + length]
        assert zlib.crc32(payload) == crc
        payloads.append(json.loads(payload))
        offset += 8 + length
    assert offset == len(data)
    assert payloads[0]["seq"] == 1 and payloads[0]["run"]["project"] == "p"
    assert [p["seq"] for p in payloads] == list(range(1, len(payloads) + 1))
    assert path.name == f"{run.id}.{payloads[0]['writer']}.journal"
    assert run_id_from_path(path) == run.id
    assert run_id_from_path(Path("a.b.c.0123456789abcdef.journal")) == "a.b.c"


@pytest.mark.parametrize("damage", ["cut", "crc", "header"])
def test_reader_stops_at_a_torn_tail_and_reports_it(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "r.w0000000.journal"
    writer = JournalWriter(path)
    for i in range(3):
        writer.append(json.dumps({"i": i}).encode())
    writer.close()
    data = bytearray(path.read_bytes())
    if damage == "cut":
        data = data[:-3]
    elif damage == "crc":
        data[-1] ^= 0xFF
    else:
        data = data[: -len(json.dumps({"i": 2})) - 5]  # only part of the last record header
    path.write_bytes(bytes(data))
    reader = JournalReader(path)
    assert [json.loads(p)["i"] for _, _, p in reader] == [0, 1]
    assert reader.torn is not None


def test_not_a_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.y.journal"
    path.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not a Runyard journal"):
        list(JournalReader(path))


def test_sync_torn_journal_uploads_the_intact_part(fake: FakeServer, spool: Path) -> None:
    run, path = offline_run(100)
    with path.open("ab") as f:  # a process killed in the middle of an append
        f.write(struct.pack("<II", 500, 0) + b'{"writer":')
    result = runyard.sync(path, api_key="good-key", _transport=fake.transport())
    assert result.errors == () and len(result.warnings) == 1 and "cut short" in result.warnings[0]
    assert fake.runs[run.id].steps("a") == list(range(100))


def test_sync_twice_counts_duplicates_and_stores_points_once(
    fake: FakeServer, spool: Path, tmp_path: Path
) -> None:
    run, path = offline_run(1000)
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    first = runyard.sync(path, api_key="good-key", _transport=fake.transport())
    assert first.files == (path,) and first.points == 1000 and first.duplicates == 0
    assert first.batches_sent >= 2 and first.errors == ()
    assert not path.exists() and Path(f"{path}.synced").exists()
    second = runyard.sync(copy, api_key="good-key", _transport=fake.transport(), delete=True)
    assert second.points == 0 and second.batches_sent == 0 and second.duplicates == first.batches_sent
    assert not copy.exists() and not Path(f"{copy}.synced").exists()
    assert fake.runs[run.id].steps("a") == list(range(1000))
    assert fake.runs[run.id].status == "finished"


def test_sync_a_directory_of_journals(fake: FakeServer, spool: Path) -> None:
    runs = [offline_run(50)[0] for _ in range(3)]
    sub = spool / "nested"
    sub.mkdir()
    for p in list(spool.glob("*.journal"))[:1]:
        p.rename(sub / p.name)  # directories are searched recursively
    result = runyard.sync(spool, api_key="good-key", _transport=fake.transport())
    assert len(result.files) == 3 and result.points == 150 and result.errors == ()
    for run in runs:
        assert fake.runs[run.id].steps("a") == list(range(50))
    assert runyard.sync(spool, api_key="good-key", _transport=fake.transport()).files == ()


def test_sync_skips_a_journal_its_process_is_still_writing(fake: FakeServer, spool: Path) -> None:
    fake.down = True
    run = runyard.init(project="p", experiment="e", api_key="good-key", _transport=fake.transport())
    assert run.journal is not None and is_locked(run.journal)
    fake.down = False
    other = FakeServer()
    result = runyard.sync(spool, api_key="good-key", _transport=other.transport())
    assert result.files == () and "still writing" in result.warnings[0]
    run.finish()


def test_sync_with_a_wrong_key_stops_and_keeps_the_journal(fake: FakeServer, spool: Path) -> None:
    _, path = offline_run(10)
    result = runyard.sync(path, api_key="bad", _transport=fake.transport())
    assert result.files == () and "valid API key" in result.errors[0]
    assert path.exists()


def test_sync_with_the_server_down_reports_it(fake: FakeServer, spool: Path) -> None:
    _, path = offline_run(10)
    fake.down = True
    result = runyard.sync(path, api_key="good-key", _transport=fake.transport(), _retries=1)
    assert result.files == () and "try again later" in result.errors[0] and path.exists()


def test_sync_of_a_missing_path_is_an_error(tmp_path: Path) -> None:
    assert runyard.sync(tmp_path / "nope").errors
