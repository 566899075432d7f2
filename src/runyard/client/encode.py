"""Turn what the training thread logged into protocol JSON, in the sender thread.

Nothing here runs in the training thread, and nothing here raises for bad input: a value the
protocol cannot carry (a string, a bool, an object without ``__float__``) is skipped with
one warning per metric key, so a typo never kills a training job.
"""

from __future__ import annotations

import math
import os
import stat
import sys
import threading
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_STEP", "Warner", "coerce_value", "describe_artifact", "jsonable", "valid_step"]

MAX_STEP = 2**53
HASH_LIMIT_BYTES = 256 * 1024 * 1024  # artifacts up to this size get a sha256
_INF = math.inf
_NONFINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class Warner:
    """Prints ``runyard: warning: …`` to stderr, once per topic."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def warn(self, message: str, topic: str | None = None) -> None:
        topic = topic or message
        with self._lock:
            if topic in self._seen:
                return
            self._seen.add(topic)
        self.note(f"warning: {message}")

    @staticmethod
    def note(message: str) -> None:
        """One ``runyard: …`` line on stderr, unconditionally (past console capture)."""
        console = sys.modules.get("runyard.client.console")
        err = sys.stderr if console is None else console.original_stream(sys.stderr)
        try:
            err.write(f"runyard: {message}\n")
            err.flush()
        except (OSError, ValueError):  # stderr closed at interpreter exit
            pass


def coerce_value(value: Any) -> float | str | None:
    """A metric value for the wire (finite float, or "NaN"/"Infinity"/"-Infinity"); None = reject.

    Accepts ints, floats and anything with ``__float__`` that is not a bool or a string
    (numpy scalars, 0-d numpy arrays, 0-d torch tensors, Decimal, Fraction).
    """
    if isinstance(value, bool | str | bytes):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError, OverflowError, RuntimeError):
        return None
    if f != f or f == _INF or f == -_INF:
        return _NONFINITE[repr(f)]
    return f


def valid_step(step: Any) -> int | None:
    """``step`` as an int in [0, 2^53), or None when it is not one."""
    if type(step) is not int:
        if isinstance(step, bool):
            return None
        if isinstance(step, float):
            if not step.is_integer():
                return None
            step = int(step)
        else:
            try:
                step = step.__index__()  # numpy integers
            except (AttributeError, TypeError):
                return None
    if 0 <= step < MAX_STEP:
        return int(step)
    return None


def jsonable(value: Any, _depth: int = 0) -> Any:
    """A JSON-safe copy of a config/summary value: non-finite floats as the wire strings,
    numpy scalars via ``item()``, arrays via ``tolist()``, paths and other objects as ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NONFINITE[repr(value)]
    if _depth > 50:
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v, _depth + 1) for v in value]
    for method in ("item", "tolist"):  # numpy / torch scalars and arrays
        fn = getattr(value, method, None)
        if callable(fn):
            try:
                return jsonable(fn(), _depth + 1)
            except Exception:
                pass
    return str(value)


def describe_artifact(a: Mapping[str, Any], warner: Warner) -> dict[str, Any]:
    """The protocol's artifact object for what ``run.log_artifact`` recorded: the path, and
    for a local file its size and (up to 256 MiB) sha256. URIs (``s3://…``) are not read."""
    path = str(a["path"])
    out: dict[str, Any] = {"path": path, "kind": a.get("kind") or "file"}
    if a.get("name"):
        out["name"] = str(a["name"])
    if a.get("step") is not None:
        step = valid_step(a["step"])
        if step is not None:
            out["step"] = step
    if "://" in path:
        return out
    try:
        st = os.stat(path)
    except OSError as exc:
        warner.warn(f"artifact {path}: {exc.strerror}; recorded without size or checksum")
        return out
    if stat.S_ISREG(st.st_mode):
        out["size_bytes"] = st.st_size
        if st.st_size <= HASH_LIMIT_BYTES:
            import hashlib

            h = hashlib.sha256()
            try:
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                out["sha256"] = h.hexdigest()
            except OSError as exc:
                warner.warn(f"artifact {path}: cannot read it for a checksum ({exc.strerror})")
    return out
