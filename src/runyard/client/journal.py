"""The journal: an append-only, checksummed file of batches, exactly as docs/protocol.md says.

    header  b"RYJ1\\n\\0\\0\\0"                    (8 bytes)
    record  u32 length | u32 crc32(payload) | payload   (little-endian; payload = batch JSON)

Each append is one ``write`` followed by ``fsync``, so after ``append`` returns the batch
survives a crash of the process or the node. A reader stops at the first record that is cut
short (length past the end of the file) or whose CRC does not match, and reports it: a
process killed mid-write leaves such a torn tail, and everything before it is intact.

A writer holds an exclusive ``flock`` on its journal while the run is alive, so ``runyard
sync`` can tell a journal that its own process is still uploading from an abandoned one.
"""

from __future__ import annotations

import contextlib
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "JournalReader",
    "JournalWriter",
    "is_locked",
    "journal_name",
    "read_record_at",
    "run_id_from_path",
]

MAGIC = b"RYJ1\n\0\0\0"
HEADER_SIZE = len(MAGIC)
_REC = struct.Struct("<II")
MAX_RECORD_BYTES = 1 << 30  # a length above this is corruption, not a batch


def journal_name(run_id: str, writer: str) -> str:
    return f"{run_id}.{writer}.journal"


def run_id_from_path(path: Path) -> str:
    """``<run_id>.<writer>.journal`` → run_id (run ids may contain dots, writers never do)."""
    name = path.name
    if not name.endswith(".journal") or name.count(".") < 2:
        raise ValueError(f"{path} is not named <run_id>.<writer>.journal")
    return name[: -len(".journal")].rsplit(".", 1)[0]


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class JournalWriter:
    """Appends records to a new or existing journal; fsyncs each append."""

    def __init__(self, path: Path) -> None:
        import fcntl

        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # Advisory, and unsupported on some NFS mounts: appending works without it.
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        size = os.fstat(self._fd).st_size
        if size == 0:
            self._write(MAGIC)
            os.fsync(self._fd)
            _fsync_dir(path.parent)
            size = HEADER_SIZE
        self.size = size

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def append(self, payload: bytes) -> tuple[int, int]:
        """Append one record durably; returns its (start, end) byte offsets."""
        start = self.size
        self._write(_REC.pack(len(payload), zlib.crc32(payload)) + payload)
        os.fsync(self._fd)
        self.size = start + _REC.size + len(payload)
        return start, self.size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # also releases the flock
            self._fd = -1

    def delete(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def read_record_at(fd: int, offset: int, end: int) -> bytes | None:
    """The payload of the record at ``offset`` (which must end at ``end``); None if damaged."""
    data = os.pread(fd, end - offset, offset)
    if len(data) != end - offset or len(data) < _REC.size:
        return None
    length, crc = _REC.unpack_from(data)
    payload = data[_REC.size :]
    if length != len(payload) or zlib.crc32(payload) != crc:
        return None
    return payload


class JournalReader:
    """Iterate ``(start, end, payload)`` over the intact records of a journal.

    After iteration ``torn`` describes a damaged tail (None when the file ended cleanly) and
    ``valid_end`` is the offset where the intact part ends. Raises ValueError for a file that
    is not a journal at all.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.torn: str | None = None
        self.valid_end = HEADER_SIZE

    def __iter__(self) -> Iterator[tuple[int, int, bytes]]:
        with self.path.open("rb") as f:
            if f.read(HEADER_SIZE) != MAGIC:
                raise ValueError(f"{self.path} is not a Runyard journal (bad header)")
            offset = HEADER_SIZE
            while True:
                head = f.read(_REC.size)
                if not head:
                    return
                if len(head) < _REC.size:
                    self.torn = f"record header cut short at byte {offset}"
                    return
                length, crc = _REC.unpack(head)
                if length > MAX_RECORD_BYTES:
                    self.torn = f"implausible record length {length} at byte {offset}"
                    return
                payload = f.read(length)
                if len(payload) < length:
                    self.torn = f"record at byte {offset} cut short ({len(payload)} of {length} bytes)"
                    return
                if zlib.crc32(payload) != crc:
                    self.torn = f"record at byte {offset} fails its CRC check"
                    return
                end = offset + _REC.size + length
                yield offset, end, payload
                offset = self.valid_end = end


def is_locked(path: Path) -> bool:
    """True when a live process holds the journal's writer lock."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False
