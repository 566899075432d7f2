"""An adaptive sweep's array task asks the server for its trial (``python -m runyard.client.trial``).

The batch script of an adaptive sweep runs this after ``jobreport start``, with
RUNYARD_SWEEP_ID and RUNYARD_RUN_ID set::

    python -m runyard.client.trial >argv-file   # this trial's argv, NUL-separated

The server (the one place that asks Optuna) picks the parameters, records them as the run's
config and answers the full argv, which the script then runs. Asking again (a requeued task)
gets the same trial. The server must be reachable: a few attempts over about a minute, then
exit 1 with the reason on stderr (the job then ends failed).
"""

from __future__ import annotations

import sys
import time
from urllib.parse import quote

from runyard import config
from runyard.client.api import ApiClient
from runyard.errors import RunyardError, ServerUnreachable

__all__ = ["ask", "main"]

_ATTEMPTS = 6


def ask(api: ApiClient, sweep_id: str, run_id: str) -> list[str]:
    """The argv of the trial ``run_id`` of sweep ``sweep_id`` (retried while unreachable)."""
    path = f"/api/v1/sweeps/{quote(sweep_id, safe='')}/trials/{quote(run_id, safe='')}/ask"
    delay = 2.0
    for attempt in range(_ATTEMPTS):
        try:
            out = api._json("POST", path, json_body={})
            break
        except ServerUnreachable:
            if attempt == _ATTEMPTS - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 20.0)
    argv = out.get("argv") if isinstance(out, dict) else None
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(a, str) and "\x00" not in a for a in argv)
    ):
        raise RunyardError(f"the server's answer has no usable argv: {out!r}")
    return argv


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        print(
            "usage: python -m runyard.client.trial  (reads RUNYARD_SWEEP_ID, RUNYARD_RUN_ID)", file=sys.stderr
        )
        return 2
    sweep_id = config.env("RUNYARD_SWEEP_ID")
    run_id = config.env("RUNYARD_RUN_ID")
    url = config.env("RUNYARD_URL")
    if not sweep_id or not run_id or not url:
        print("runyard trial: RUNYARD_SWEEP_ID, RUNYARD_RUN_ID and RUNYARD_URL must be set", file=sys.stderr)
        return 1
    api = ApiClient(url, config.env("RUNYARD_API_KEY"))
    try:
        trial = ask(api, sweep_id.strip(), run_id.strip())
    except RunyardError as exc:
        print(f"runyard trial: {exc}", file=sys.stderr)
        return 1
    finally:
        api.close()
    sys.stdout.buffer.write(b"\x00".join(a.encode() for a in trial) + b"\x00")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
