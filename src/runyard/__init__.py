"""Runyard: experiment tracking for people who train models on Slurm clusters.

    import runyard

    with runyard.init(project="digits", experiment="mlp", config={"lr": 0.1}) as run:
        for step in range(1000):
            run.log({"loss": loss, "acc": acc})

``import runyard`` loads nothing but this file (a few hundred microseconds, stdlib only, no
server dependencies); the client modules load on first use of ``runyard.init`` and friends.
See ``runyard.client.run`` for the full story, docs/protocol.md for the wire contract.
"""

from __future__ import annotations

from runyard.version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing would cost ~15 ms here
if TYPE_CHECKING:
    from typing import Any

    from runyard import errors
    from runyard.client.run import FinishResult, Run, init
    from runyard.client.sync import SyncResult, sync

__all__ = ["FinishResult", "Run", "SyncResult", "__version__", "errors", "init", "sync"]

_LAZY = {
    "init": "runyard.client.run",
    "Run": "runyard.client.run",
    "FinishResult": "runyard.client.run",
    "sync": "runyard.client.sync",
    "SyncResult": "runyard.client.sync",
}


def __getattr__(name: str) -> Any:
    if name == "errors":
        import runyard.errors as errors_module

        return errors_module
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runyard' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
