"""``RestSlurm``: Slurm through slurmrestd's REST API, for a server that is not on a Slurm host.

The other runner beside ``runner.LocalSlurm``, and the only code that talks to slurmrestd:
stdlib ``urllib`` (no proxies, no redirects: the token goes to the configured URL only), a
deadline on every request, JWT auth in the ``X-SLURM-USER-NAME`` / ``X-SLURM-USER-TOKEN``
headers. Written against Slurm 22.05 (openapi ``v0.0.38``, the default ``api_version``) and
checked on the dev cluster (docs/slurm-local.md section 6). Responses are parsed by the same
pure functions as the CLI's output (``runyard.slurm.parse``): ``GET jobs`` has the shape of
``squeue --json``, ``GET nodes`` of ``sinfo --json``, ``/slurmdb/.../jobs`` of ``sacct --json``.

Errors, all raised here::

    SlurmError       slurmrestd unreachable, timed out, an unexpected answer, the token refused,
    │                or slurmrestd's own "errors" list (its text, never the token)
    └── SubmitFailed  slurmrestd refused the job, or its script has an #SBATCH option that
                      slurmrestd cannot take (named)

What 22.05's API cannot do (checked on slurmrestd 22.05.8):
- It does not read ``#SBATCH`` lines: ``job_properties`` translates them into the job
  description, and refuses options it has no field for rather than dropping them.
- ``--signal=B:...`` (signal the batch shell) is refused ("Invalid SIGNAL specification"), and
  without ``B:`` the batch shell gets no signal at all, so Runyard's time-limit warning cannot
  work: such scripts are refused (launch with ``signal_before_end_s=0``).
- ``"requeue": false`` is ignored (the job stays requeueable): ``--no-requeue`` is sent as the
  undocumented ``no_requeue`` key, which works. ``nodes`` must be a string (its documented
  ``[min, max]`` list gives one node). ``--exclude`` and ``--export`` have no key ("Disabled
  key"/"Unknown key") and are refused; the job's environment is exactly what is sent.
- There is no requeue: ``requeue`` raises ``SlurmError`` saying so.
- ``/slurmdb/.../jobs`` filters by job ids only through its ``step`` parameter, and refuses a
  bare ``,`` in the query ("Unable to parse query."): the ids go as ``step=1%2C2``.
- A bad or expired token gives HTTP 500 "Unspecified error" (``/slurm``) or error 1007
  "Protocol authentication error" (``/slurmdb``) rather than 401; only missing headers give 401.
  A token file is re-read whenever it changes on disk, and once more after a refusal.
"""

from __future__ import annotations

import json
import math
import pwd
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.client import HTTPException
from pathlib import Path
from typing import Any

from runyard.errors import InvalidInput, SlurmError, SubmitFailed
from runyard.slurm.launch import parse_mem_gb, parse_sbatch_script, parse_time_limit
from runyard.slurm.parse import (
    AccountingJob,
    NodeInfo,
    PartitionInfo,
    QueueJob,
    parse_sacct_json,
    parse_sinfo_json,
    parse_squeue_json,
)
from runyard.slurm.runner import check_job_id

__all__ = ["DEFAULT_API_VERSION", "DEFAULT_PATH", "RestSlurm", "job_properties", "parse_rest_partitions"]

DEFAULT_API_VERSION = "v0.0.38"
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
MAX_IDS_PER_REQUEST = 1000  # job ids per /slurmdb jobs request (2,000 worked on 22.05)

_NOTHING_FOUND = 9003  # /slurmdb: "Nothing found with query", an empty answer
_AUTH_ERROR = 1007  # "Protocol authentication error"
_NO_ERRORS = re.compile(r'"errors"\s*:\s*\[\s*\]')
_TOKEN_HINT = "a fresh one comes from `scontrol token username=USER lifespan=SECONDS`"

# --------------------------------------------------------------------------- #SBATCH → job description

Convert = Callable[[str, str | None], Any]


def _text(option: str, value: str | None) -> str:
    if not value:
        raise SubmitFailed(f"#SBATCH --{option} needs a value", field="script")
    return value


def _whole(option: str, value: str | None) -> int:
    text = (value or "").strip()
    if not text.isdigit():
        raise SubmitFailed(f"#SBATCH --{option} must be a whole number, got {value!r}", field="script")
    return int(text)


def _mem_mb(option: str, value: str | None) -> int:
    try:
        return math.ceil(parse_mem_gb(value or "", field=f"--{option}") * 1024)
    except InvalidInput as exc:
        raise SubmitFailed(f"#SBATCH {exc.message}", field="script") from None


def _minutes(option: str, value: str | None) -> int:
    try:
        minutes = parse_time_limit(value or "", field=f"--{option}")
    except InvalidInput as exc:
        raise SubmitFailed(f"#SBATCH {exc.message}", field="script") from None
    return 0 if minutes is None else minutes  # 0: no limit, as in sbatch


def _on(option: str, value: str | None) -> bool:
    if value is not None:
        raise SubmitFailed(f"#SBATCH --{option} takes no value here, got {value!r}", field="script")
    return True


def _yes_no(option: str, value: str | None) -> bool:
    if value is None or value.lower() in ("yes", "y"):
        return True
    if value.lower() in ("no", "n"):
        return False
    raise SubmitFailed(f"#SBATCH --{option} must be yes or no, got {value!r}", field="script")


def _signal(option: str, value: str | None) -> str:
    text = _text(option, value)
    if re.match(r"^[A-Za-z]{1,2}:", text) and "B" in text.split(":", 1)[0].upper():
        raise SubmitFailed(
            f"#SBATCH --signal={text}: slurmrestd 22.05 (openapi v0.0.38) refuses B: (signal the batch "
            "shell), and without it the batch shell gets no signal; launch without the time-limit warning "
            "(signal_before_end_s=0) or use RUNYARD_EXECUTOR=slurm on a Slurm host",
            field="script",
        )
    return text


def _exclusive(option: str, value: str | None) -> str:
    return "exclusive" if value is None else value


def _nice(option: str, value: str | None) -> int:
    if value is None:
        return 100  # sbatch's --nice without a value
    try:
        return int(value)
    except ValueError:
        raise SubmitFailed(f"#SBATCH --nice must be a whole number, got {value!r}", field="script") from None


# sbatch's long option → (v0.0.38 job property, converter); each one checked on slurmrestd 22.05.8.
# Its parser also takes some keys its OpenAPI document leaves out (nodelist, no_requeue).
_OPTIONS: dict[str, tuple[str, Convert]] = {
    "job-name": ("name", _text),
    "partition": ("partition", _text),
    "account": ("account", _text),
    "qos": ("qos", _text),
    "nodes": ("nodes", _text),  # a string: "2" or "2-3" (the [min, max] list form is misread)
    "ntasks": ("tasks", _whole),
    "ntasks-per-node": ("tasks_per_node", _whole),
    "ntasks-per-core": ("tasks_per_core", _whole),
    "cpus-per-task": ("cpus_per_task", _whole),
    "threads-per-core": ("threads_per_core", _whole),
    "mem": ("memory_per_node", _mem_mb),
    "mem-per-cpu": ("memory_per_cpu", _mem_mb),
    "mem-per-gpu": ("memory_per_gpu", _mem_mb),
    "gres": ("gres", _text),  # squeue then shows tres_per_node "gres:gpu:N"
    "gpus-per-node": ("gpus_per_node", _text),  # the same; v0.0.38 has no tres_per_node key
    "gpus": ("gpus", _text),
    "cpus-per-gpu": ("cpus_per_gpu", _text),
    "time": ("time_limit", _minutes),
    "time-min": ("time_minimum", _minutes),
    "array": ("array", _text),
    "dependency": ("dependency", _text),
    "begin": ("begin_time", _text),  # v0.0.38 takes sbatch's words ("now+1hour") here
    "deadline": ("deadline", _text),
    "nodelist": ("nodelist", _text),  # not in the OpenAPI document, but taken (required_nodes is not)
    "kill-on-invalid-dep": ("kill_on_invalid_dependency", _yes_no),
    "signal": ("signal", _signal),
    "output": ("standard_output", _text),
    "error": ("standard_error", _text),
    "input": ("standard_input", _text),
    "open-mode": ("open_mode", _text),
    "hold": ("hold", _on),
    "exclusive": ("exclusive", _exclusive),
    "oversubscribe": ("oversubscribe", _on),
    "spread-job": ("spread_job", _on),
    "use-min-nodes": ("minimum_nodes", _on),
    "nice": ("nice", _nice),
    "priority": ("priority", _text),
    "constraint": ("constraints", _text),
    "distribution": ("distribution", _text),
    "reservation": ("reservation", _text),
    "licenses": ("licenses", _text),
    "comment": ("comment", _text),
    "wckey": ("wckey", _text),
    "mail-type": ("mail_type", _text),
    "mail-user": ("mail_user", _text),
}
_HANDLED = {"requeue", "no-requeue", "chdir"}  # read from the parsed header below
_NO_EFFECT = {"parsable", "quiet", "verbose"}  # change what sbatch prints, nothing about the job


def job_properties(
    script_text: str, workdir: str | None, env: Mapping[str, str] | None, *, home: str | None = None
) -> dict[str, Any]:
    """The v0.0.38 job description (``job`` of ``POST /slurm/v0.0.38/job/submit``) for a script
    whose ``#SBATCH`` header says what sbatch would be told. Pure.

    ``environment`` is ``env`` over a minimal ``PATH`` (and ``HOME`` when given): slurmrestd
    needs one and passes nothing of its own. The working directory is ``--chdir`` (relative to
    ``workdir``), else ``workdir``, else ``home``. Without ``--job-name`` the job is named
    ``sbatch``, as sbatch names a script read from stdin. An option with no v0.0.38 field raises
    ``SubmitFailed`` naming it; a malformed header raises ``InvalidInput(field="script")``.
    """
    header = parse_sbatch_script(script_text)
    props: dict[str, Any] = {"name": "sbatch"}
    for option, value in header.options.items():
        if option in _HANDLED or option in _NO_EFFECT:
            continue
        rule = _OPTIONS.get(option)
        if rule is None:
            flag = option if option.startswith("-") else f"--{option}"
            raise SubmitFailed(
                f"#SBATCH {flag} has no equivalent in slurmrestd's v0.0.38 job description: remove it "
                "or use RUNYARD_EXECUTOR=slurm on a Slurm host",
                field="script",
            )
        key, convert = rule
        props[key] = convert(option, value)
    if header.requeue is True:
        props["requeue"] = True
    elif header.requeue is False:
        props["no_requeue"] = True  # 22.05 ignores "requeue": false (the job stays requeueable)
    base = workdir or home
    if header.chdir:
        if not header.chdir.startswith("/") and base is None:
            raise SubmitFailed(f"#SBATCH --chdir={header.chdir} is relative and no workdir was given")
        cwd: str | None = header.chdir if header.chdir.startswith("/") else f"{base}/{header.chdir}"
    else:
        cwd = base
    if cwd is None:
        raise SubmitFailed("slurmrestd needs the job's working directory: pass workdir or set --chdir")
    props["current_working_directory"] = cwd
    environment = {"PATH": DEFAULT_PATH, **({"HOME": home} if home else {})}
    for name, val in (env or {}).items():
        if not isinstance(name, str) or not isinstance(val, str) or not name or "=" in name:
            raise InvalidInput(f"env names and values must be strings, got {name!r}", field="env")
        environment[name] = val
    props["environment"] = environment
    return props


# --------------------------------------------------------------------------- partitions


def _count(value: Any) -> int | None:
    """An int from 22.05's numbers (-1 or null: none) or later ``{"set", "infinite", "number"}``."""
    if isinstance(value, dict):
        if value.get("infinite") or value.get("set") is False:
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value) if value >= 0 else None


def _tres(text: Any) -> dict[str, str]:
    items = (item.partition("=") for item in str(text or "").split(","))
    return {key.strip(): value.strip() for key, sep, value in items if sep}


_MB_PER_UNIT = {"K": 1 / 1024, "M": 1.0, "G": 1024.0, "T": 1024.0**2}


def _megabytes(text: str | None) -> int | None:
    """``12000M`` / ``4G`` (a bare number is MB) in MB; None when absent or unreadable."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)", (text or "").strip().upper())
    return int(float(match.group(1)) * _MB_PER_UNIT[match.group(2) or "M"]) if match else None


def parse_rest_partitions(text: str) -> list[PartitionInfo]:
    """Every partition of ``GET /slurm/v0.0.38/partitions`` (its shape is not scontrol's text):
    times in minutes (-1 or null: no limit), ``flags`` holding ``default``, GPUs and memory
    from ``tres``. Not JSON, or a non-empty "errors" list, raises ``SlurmError``."""
    data = _json_or_none(text)
    if not isinstance(data, dict):
        raise SlurmError(f"slurmrestd's partitions answer is not a JSON object: {text.strip()[:200]!r}")
    errors = _errors(data)
    if errors:
        raise SlurmError(f"slurmrestd reported an error: {_error_text(errors)}")
    found = data.get("partitions")
    partitions: list[PartitionInfo] = []
    for part in found if isinstance(found, list) else []:
        if not isinstance(part, dict) or not part.get("name"):
            continue
        tres = _tres(part.get("tres"))
        state = part.get("state")
        if isinstance(state, list):  # later versions
            state = state[0] if state else None
        flags = part.get("flags")
        gpus = tres.get("gres/gpu", "")
        partitions.append(
            PartitionInfo(
                name=str(part["name"]),
                state=str(state or "UNKNOWN"),
                default=isinstance(flags, list) and "default" in [str(flag).lower() for flag in flags],
                max_time_min=_count(part.get("max_time_limit")),
                default_time_min=_count(part.get("default_time_limit")),
                nodes=str(part["nodes"]) if part.get("nodes") else None,
                total_nodes=_count(part.get("total_nodes")) or 0,
                total_cpus=_count(part.get("total_cpus")) or 0,
                gpus=int(gpus) if gpus.isdigit() else 0,
                memory_mb=_megabytes(tres.get("mem")),
            )
        )
    return partitions


# --------------------------------------------------------------------------- the client


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """slurmrestd never redirects; following one would send the token elsewhere."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _Token:
    """The JWT: fixed, or read from a file (``SLURM_JWT=`` prefix allowed, as ``scontrol token``
    prints it) and read again whenever the file changes."""

    def __init__(self, token: str | None, token_file: str | None) -> None:
        if bool(token) == bool(token_file):
            raise InvalidInput(
                "set exactly one of RUNYARD_SLURMRESTD_TOKEN and RUNYARD_SLURMRESTD_TOKEN_FILE",
                field="RUNYARD_SLURMRESTD_TOKEN",
            )
        self.path = Path(token_file).expanduser() if token_file else None
        self._value = (token or "").strip()
        self._stamp: tuple[int, int] | None = None

    @property
    def current(self) -> str:
        """The token last read (no file access)."""
        return self._value

    def value(self) -> str:
        if self.path is not None:
            self.reload()
        return self._value

    def reload(self) -> bool:
        """Read the file again when it changed; whether the token did."""
        if self.path is None:
            return False
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp == self._stamp:
                return False
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SlurmError(
                f"cannot read the slurmrestd token file {self.path}: {exc.strerror} "
                "(RUNYARD_SLURMRESTD_TOKEN_FILE)"
            ) from None
        value = text.removeprefix("SLURM_JWT=").strip()
        if not value or any(ch.isspace() for ch in value):
            raise SlurmError(f"the slurmrestd token file {self.path} holds no single token; {_TOKEN_HINT}")
        self._stamp = stamp
        changed = value != self._value
        self._value = value
        return changed


def _error_text(errors: list[dict[str, Any]]) -> str:
    """slurmrestd's own words: each error's description (or error), without repeats."""
    parts: list[str] = []
    for error in errors:
        description = str(error.get("description") or "").strip()
        message = str(error.get("error") or "").strip()
        text = description or message
        if description and message and message not in description and message != "Unspecified error":
            text = f"{description} ({message})"
        if text and text not in parts:
            parts.append(text)
    return "; ".join(parts) or "no error message"


def _number(error: dict[str, Any]) -> Any:
    """An error's number; 22.05 calls it error_number, error_code or errno depending on the call."""
    for key in ("error_number", "error_code", "errno"):
        if key in error:
            return error[key]
    return None


class RestSlurm:
    """Slurm through slurmrestd at ``url`` (e.g. ``http://127.0.0.1:6820``) as ``user``, with a
    JWT given as ``token`` or ``token_file`` (exactly one)."""

    kind = "slurm"
    batch_signals = False  # 22.05's REST API refuses --signal=B:… (see job_properties)

    def __init__(
        self,
        url: str,
        *,
        user: str,
        token: str | None = None,
        token_file: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        timeout_s: float = 30,
    ) -> None:
        parts = urllib.parse.urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise InvalidInput(
                f"RUNYARD_SLURMRESTD_URL must look like http://host:6820, got {url!r}",
                field="RUNYARD_SLURMRESTD_URL",
            )
        if not user or not isinstance(user, str):
            raise InvalidInput("RUNYARD_SLURMRESTD_USER must name a user", field="RUNYARD_SLURMRESTD_USER")
        if not re.fullmatch(r"v\d+\.\d+\.\d+", api_version):
            raise InvalidInput(f"api_version looks like v0.0.38, got {api_version!r}", field="api_version")
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, int | float) or not timeout_s > 0:
            raise InvalidInput(f"timeout_s must be a positive number, got {timeout_s!r}", field="timeout_s")
        self.url = url.rstrip("/")
        self.user = user
        self.api_version = api_version
        self.timeout_s = float(timeout_s)
        self._token = _Token(token, token_file)
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    # ------------------------------------------------------------------ the Executor protocol

    def submit(self, script: str, *, workdir: str | None = None, env: Mapping[str, str] | None = None) -> str:
        """Submit ``script`` with its ``#SBATCH`` header translated by ``job_properties``; the job
        id (an array's leader id). ``env`` goes into the job's environment, never the script."""
        if workdir is not None and not workdir.startswith("/"):
            raise InvalidInput(f"workdir must be an absolute path, got {workdir!r}", field="workdir")
        props = job_properties(script, workdir, env, home=self._home())
        path = f"/slurm/{self.api_version}/job/submit"
        status, data = self._call("POST", path, body={"job": props, "script": script}, refused=SubmitFailed)
        job_id = data.get("job_id") if isinstance(data, dict) else None
        if status == 200 and isinstance(job_id, int) and not isinstance(job_id, bool):
            return str(job_id)  # its "errors" may still hold notes, e.g. 2042 "held state"
        raise SubmitFailed(f"slurmrestd accepted the job but gave no job id (HTTP {status})")

    def queue(self) -> list[QueueJob]:
        """Every job slurmctld knows (``GET jobs``, the shape of ``squeue --json``)."""
        return parse_squeue_json(self._text("GET", f"/slurm/{self.api_version}/jobs"))

    def accounting(self, job_ids: Sequence[str]) -> list[AccountingJob]:
        """Accounting of these jobs (``123`` or ``123_4``; a leader id brings its tasks) in one
        ``GET /slurmdb/.../jobs?step=ID,ID`` (sacct's ``-j`` list) per ``MAX_IDS_PER_REQUEST``
        ids, with no time window; no ids, no request."""
        ids = list(dict.fromkeys(check_job_id(job_id) for job_id in job_ids))
        jobs: list[AccountingJob] = []
        for start in range(0, len(ids), MAX_IDS_PER_REQUEST):
            query = {"step": ",".join(ids[start : start + MAX_IDS_PER_REQUEST])}
            jobs += parse_sacct_json(self._text("GET", f"/slurmdb/{self.api_version}/jobs", query=query))
        return jobs

    def nodes(self) -> list[NodeInfo]:
        return parse_sinfo_json(self._text("GET", f"/slurm/{self.api_version}/nodes"))

    def partitions(self) -> list[PartitionInfo]:
        return parse_rest_partitions(self._text("GET", f"/slurm/{self.api_version}/partitions"))

    def cancel(self, job_id: str) -> None:
        """``DELETE job/{id}`` (an array task as ``123_4``); slurmrestd answers 200 for a job
        that already ended, as scancel would not."""
        self._text("DELETE", f"/slurm/{self.api_version}/job/{check_job_id(job_id)}")

    def requeue(self, job_id: str) -> None:
        check_job_id(job_id)
        raise SlurmError(
            f"slurmrestd's {self.api_version} API has no requeue: run `scontrol requeue {job_id}` on a "
            "Slurm host, or use RUNYARD_EXECUTOR=slurm there"
        )

    # ------------------------------------------------------------------ HTTP

    def _home(self) -> str | None:
        """The user's home directory by this host's user database, when it knows the user."""
        try:
            return pwd.getpwnam(self.user).pw_dir or None
        except KeyError:
            return None

    def _text(self, method: str, path: str, *, query: Mapping[str, str] | None = None) -> str:
        text: str = self._call(method, path, query=query, raw=True)[1]
        return text

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        refused: type[SlurmError] = SlurmError,
        raw: bool = False,
    ) -> tuple[int, Any]:
        """(status, the JSON answer, or its text when ``raw``). HTTP errors and slurmrestd's
        "errors" list (bar "nothing found", and notes beside a submitted job's id) raise
        ``refused`` with its text; a refused token is read again and the request tried once more."""
        what = f"{method} {path}"
        retried = False
        while True:
            status, text = self._send(method, path, query, body)
            ok = 200 <= status < 300
            # a large squeue answer is parsed once, by the caller, when it plainly has no errors
            data = None if raw and ok and _NO_ERRORS.search(text[:4096]) else _json_or_none(text)
            errors = _errors(data)
            denied = status == 401 or any(_number(e) == _AUTH_ERROR for e in errors)
            if denied and not retried and self._token.reload():
                retried = True
                continue
            break
        if denied:
            detail = _error_text(errors) if errors else text.strip()[:200]
            raise self._error(
                SlurmError,
                f"slurmrestd refused the token of user {self.user} on {what} (HTTP {status}: {detail}); "
                + _TOKEN_HINT,
            )
        if status == 200 and refused is SubmitFailed and isinstance(data, dict) and data.get("job_id"):
            return status, data  # a submitted job: its "errors" are notes (2042 "held state")
        if errors or not ok:
            if errors:
                detail = _error_text(errors)
            else:
                detail = "no error message" if data is not None else repr(text.strip()[:200])
            verb = "refused the job" if refused is SubmitFailed else "failed"
            message = f"slurmrestd {verb} ({what}, HTTP {status}): {detail}"
            if status == 404 and data is None:
                message += f" (does it serve openapi {self.api_version}? see its /openapi/v3)"
            elif status >= 500 and errors and all(_number(e) == -1 for e in errors):
                message += " (slurmrestd 22.05 also says only this when the token is invalid or expired)"
            raise self._error(refused, message)
        if data is None and not raw:
            raise self._error(SlurmError, f"slurmrestd answered {what} with no JSON: {text.strip()[:200]!r}")
        return status, (text if raw else data)

    def _error(self, cls: type[SlurmError], message: str) -> SlurmError:
        """``cls(message)``, with the token cut out should slurmrestd ever echo it."""
        token = self._token.current
        return cls(message.replace(token, "<token>") if token else message)

    def _send(
        self, method: str, path: str, query: Mapping[str, str] | None, body: dict[str, Any] | None
    ) -> tuple[int, str]:
        """One request, within ``timeout_s`` in all: (status, body text). Transport failures
        raise ``SlurmError`` naming the URL and the fix."""
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")  # "," as %2C
        headers = {
            "X-SLURM-USER-NAME": self.user,
            "X-SLURM-USER-TOKEN": self._token.value(),
            "Accept": "application/json",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        deadline = time.monotonic() + self.timeout_s
        what = f"{method} {self.url}{path}"
        late = f"slurmrestd did not answer {what} within {self.timeout_s:g} s"
        if path.endswith("/submit"):
            late += " (the job may have been submitted: look in the queue before submitting again)"
        chunks: list[bytes] = []
        try:
            try:
                response = self._opener.open(request, timeout=self.timeout_s)
            except urllib.error.HTTPError as exc:
                response = exc  # an error status still has slurmrestd's JSON body
            with response:
                status = int(response.getcode() or 0)
                read = getattr(response, "read1", response.read)  # read1: what has come, so the
                while chunk := read(1 << 16):  # deadline holds against a server that drips
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise TimeoutError
        except TimeoutError:
            raise SlurmError(late) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise SlurmError(late) from None
            reason = getattr(exc.reason, "strerror", None) or str(exc.reason)
            raise SlurmError(
                f"slurmrestd at {self.url} cannot be reached ({reason}): is it running? Check "
                "RUNYARD_SLURMRESTD_URL; for a local cluster: runyard dev-cluster up"
            ) from None
        except (HTTPException, OSError) as exc:
            raise SlurmError(f"slurmrestd broke off {what}: {type(exc).__name__}: {exc}") from None
        return status, b"".join(chunks).decode("utf-8", "replace")


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _errors(data: Any) -> list[dict[str, Any]]:
    """The "errors" of an answer, bar /slurmdb's "nothing found" (an empty answer)."""
    found = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, dict) and _number(e) != _NOTHING_FOUND]
