"""Every environment variable Runyard reads, declared once, plus the server's Settings.

``ENV_VARS`` is the single registry: docs/configuration.md lists each entry and a test fails
when code reads a variable that is not declared here or the docs miss one. The client side
resolves argument > environment variable > config file > default (``client_setting``).
Stdlib-only: the client imports this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runyard.errors import InvalidInput

__all__ = [
    "ENV_VARS",
    "EnvVar",
    "Settings",
    "client_setting",
    "config_file_path",
    "read_config_file",
    "write_config_file",
]


@dataclass(frozen=True, slots=True)
class EnvVar:
    name: str
    side: str  # "client", "server" or "both"
    default: str
    help: str


ENV_VARS: tuple[EnvVar, ...] = (
    # client
    EnvVar("RUNYARD_URL", "client", "http://127.0.0.1:8765", "Server URL the client and CLI talk to."),
    EnvVar("RUNYARD_API_KEY", "client", "", "API key sent as X-API-Key."),
    EnvVar("RUNYARD_PROJECT", "client", "default", "Project used by runyard.init() when none is given."),
    EnvVar(
        "RUNYARD_EXPERIMENT", "client", "default", "Experiment used by runyard.init() when none is given."
    ),
    EnvVar("RUNYARD_RUN_ID", "client", "", "Run id to log into (set by `runyard launch`; resumes that run)."),
    EnvVar("RUNYARD_MODE", "client", "online", "online, offline (journal only, sync later) or disabled."),
    EnvVar(
        "RUNYARD_SPOOL_DIR",
        "client",
        "~/.runyard/spool",
        "Where journals go when the server cannot be reached; put it on shared storage.",
    ),
    EnvVar(
        "RUNYARD_CONFIG",
        "client",
        "~/.config/runyard/config.toml",
        "Config file with url and api_key (written by `runyard server` for a local server).",
    ),
    EnvVar(
        "RUNYARD_MAX_BUFFER_POINTS",
        "client",
        "1000000",
        "Points the client holds in memory before spilling to the journal.",
    ),
    EnvVar("TRACKER_API", "client", "", "Seed-compatible alias of RUNYARD_URL."),
    EnvVar("TRACKER_API_KEY", "client", "", "Seed-compatible alias of RUNYARD_API_KEY."),
    EnvVar("EXPERIMENT_ID", "client", "", "Seed-compatible: log runs into this experiment id."),
    EnvVar(
        "RUNYARD_HTTP_TIMEOUT_S",
        "client",
        "10",
        "Seconds the client waits on one request before it counts the server as unreachable.",
    ),
    EnvVar(
        "RUNYARD_RETRY_MIN_S",
        "client",
        "0.5",
        "First back-off in seconds after the server could not be reached; doubles each time.",
    ),
    EnvVar(
        "RUNYARD_RETRY_MAX_S",
        "client",
        "10",
        "Longest back-off in seconds between attempts to reach the server again.",
    ),
    EnvVar(
        "RUNYARD_FINISH_TIMEOUT_S",
        "client",
        "30",
        "Longest run.finish() retries a reachable server before leaving the rest in the journal.",
    ),
    EnvVar(
        "RUNYARD_HANDLE_SIGNALS",
        "client",
        "1",
        "0 stops runyard.init() from handling SIGUSR1 (time-limit warning) and SIGTERM (run.should_stop).",
    ),
    EnvVar(
        "RUNYARD_REQUEUE",
        "client",
        "0",
        "1 (set by `runyard launch` for requeueable jobs): a run stopped by SIGUSR1 ends requeued.",
    ),
    EnvVar(
        "RUNYARD_MAX_RESTARTS",
        "client",
        "5",
        "Set by `runyard launch`: how often a job requeues itself near its time limit (then: timeout).",
    ),
    EnvVar(
        "RUNYARD_ARRAY_BASE_ID",
        "client",
        "",
        "Set by `runyard launch` for job arrays: task N logs into run uuid5(base id, N).",
    ),
    EnvVar(
        "RUNYARD_SWEEP_ID",
        "client",
        "",
        "Set by `runyard sweep` for an adaptive sweep's tasks: the sweep they ask for their trial.",
    ),
    EnvVar(
        "RUNYARD_SYSTEM_INTERVAL_S",
        "client",
        "10",
        "Seconds between system metric samples (CPU, RSS, GPUs) of a run; 0 turns them off.",
    ),
    EnvVar(
        "RUNYARD_CAPTURE_CONSOLE",
        "client",
        "1",
        "0 stops runyard.init() from sending what the script prints to stdout/stderr (each line with time, "
        "host and rank) to the run; output still goes where it went.",
    ),
    # server
    EnvVar(
        "RUNYARD_DATA_DIR",
        "server",
        "~/.local/share/runyard",
        "Server data directory (SQLite database, uploaded artifacts).",
    ),
    EnvVar(
        "RUNYARD_DATABASE_URL",
        "server",
        "",
        "SQLAlchemy URL; default sqlite:///$RUNYARD_DATA_DIR/runyard.db. postgresql+psycopg://… for groups.",
    ),
    EnvVar("RUNYARD_HOST", "server", "127.0.0.1", "Address the server listens on."),
    EnvVar("RUNYARD_PORT", "server", "8765", "Port the server listens on."),
    EnvVar("RUNYARD_MAX_BODY_MB", "server", "64", "Largest request body accepted, in MiB (413 above it)."),
    EnvVar("RUNYARD_MAX_ARTIFACT_MB", "server", "100", "Largest artifact upload accepted, in MiB."),
    EnvVar("RUNYARD_LOG_LEVEL", "server", "info", "Server log level."),
    EnvVar(
        "RUNYARD_LOG_ROOTS",
        "server",
        "",
        "Directories (separated by ':') under which the server may read runs' stdout/stderr files for "
        "`runyard logs`, e.g. /home:/scratch. Empty: any path a run recorded, except system directories "
        "and the server's data directory. Set it on shared servers.",
    ),
    EnvVar(
        "RUNYARD_EXECUTOR",
        "server",
        "auto",
        "Where launched jobs run: slurm (Slurm's commands on the server host), rest (slurmrestd, see "
        "RUNYARD_SLURMRESTD_URL), local (subprocesses, for a machine without Slurm), auto (slurm when "
        "sbatch is on PATH and `scontrol ping` finds the controller up, else local) or none.",
    ),
    EnvVar(
        "RUNYARD_SLURMRESTD_URL",
        "server",
        "",
        "With RUNYARD_EXECUTOR=rest: slurmrestd's address, e.g. http://127.0.0.1:6820 (openapi v0.0.38, "
        "Slurm 22.05, with JWT auth).",
    ),
    EnvVar(
        "RUNYARD_SLURMRESTD_USER",
        "server",
        "",
        "With RUNYARD_EXECUTOR=rest: the user slurmrestd acts as (X-SLURM-USER-NAME); default: the user "
        "the server runs as. Jobs run as this user.",
    ),
    EnvVar(
        "RUNYARD_SLURMRESTD_TOKEN",
        "server",
        "",
        "With RUNYARD_EXECUTOR=rest: the JWT (`scontrol token username=USER lifespan=SECONDS`). Set this "
        "or RUNYARD_SLURMRESTD_TOKEN_FILE, not both.",
    ),
    EnvVar(
        "RUNYARD_SLURMRESTD_TOKEN_FILE",
        "server",
        "",
        "With RUNYARD_EXECUTOR=rest: a file holding the JWT (`SLURM_JWT=` prefix allowed), read again "
        "whenever it changes, so a token can be rotated while the server runs.",
    ),
    EnvVar(
        "RUNYARD_SLURM_POLL_S",
        "server",
        "5",
        "Seconds between watcher cycles while jobs change; it backs off to RUNYARD_SLURM_POLL_MAX_S when "
        "nothing does.",
    ),
    EnvVar("RUNYARD_SLURM_POLL_MAX_S", "server", "60", "Longest pause between watcher cycles, in seconds."),
    EnvVar(
        "RUNYARD_SLURM_MAX_CALLS_PER_MIN",
        "server",
        "20",
        "Hard cap on Slurm commands (squeue, sacct) the watcher runs per minute, to protect slurmctld.",
    ),
    EnvVar(
        "RUNYARD_WEBHOOK_SECRET",
        "server",
        "",
        "Shared secret that signs Slurm epilog calls to /webhooks/slurm (default: generated once into "
        "<data dir>/webhook.secret).",
    ),
    EnvVar(
        "RUNYARD_LAUNCH_ALLOWED",
        "server",
        "admins",
        "Who may launch jobs through the server (which run as the server's Unix user): admins, or "
        "users (every user with an API key; for a server that runs as the researcher).",
    ),
    EnvVar(
        "RUNYARD_PUBLIC_URL",
        "server",
        "",
        "URL that jobs on the compute nodes use to reach this server (default: the URL the launch "
        "request came to, which may be 127.0.0.1 on the login node).",
    ),
    EnvVar(
        "RUNYARD_SESSION_HOURS",
        "server",
        "12",
        "Lifetime of a browser sign-in session, in hours; it slides: each use extends it by this much.",
    ),
    EnvVar(
        "RUNYARD_COOKIE_SECURE",
        "server",
        "auto",
        "When the session cookie gets the Secure attribute: auto (when the sign-in request came over "
        "https, as uvicorn sees it, X-Forwarded-Proto from a proxy on 127.0.0.1 included), always, or never.",
    ),
    EnvVar(
        "RUNYARD_JOB_PYTHON",
        "server",
        "",
        "Python interpreter that generated batch scripts use to report start and exit (default: the "
        "server's own; it must be reachable from the compute nodes).",
    ),
)
_BY_NAME = {v.name: v for v in ENV_VARS}


def env(name: str) -> str | None:
    """A declared variable's value from the environment (None when unset or empty)."""
    if name not in _BY_NAME:  # reading an undeclared variable is a programming error
        raise KeyError(f"environment variable {name} is not declared in runyard.config.ENV_VARS")
    value = os.environ.get(name)
    return value if value else None


def default(name: str) -> str:
    return _BY_NAME[name].default


def config_file_path() -> Path:
    return Path(env("RUNYARD_CONFIG") or default("RUNYARD_CONFIG")).expanduser()


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    """The client config file as a dict; {} when it does not exist."""
    import tomllib  # only when a config file is read: keeps the client's first init() quick

    path = path or config_file_path()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"config file {path} is not valid TOML: {exc}", field="config") from exc


def write_config_file(values: dict[str, str], path: Path | None = None) -> Path:
    """Merge ``values`` (flat strings) into the config file, readable by its owner only."""
    path = path or config_file_path()
    merged = {k: str(v) for k, v in read_config_file(path).items() if not isinstance(v, dict)}
    merged.update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{k} = {_toml_str(v)}\n" for k, v in sorted(merged.items())]
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.writelines(lines)
    os.replace(tmp, path)
    return path


def _toml_str(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def client_setting(
    argument: str | None, env_names: tuple[str, ...], file_key: str, fallback: str | None = None
) -> str | None:
    """argument > first set env var of ``env_names`` > config file ``file_key`` > default."""
    if argument:
        return argument
    for name in env_names:
        value = env(name)
        if value:
            return value
    value = read_config_file().get(file_key)
    if value:
        return str(value)
    if fallback is not None:
        return fallback
    return default(env_names[0]) or None


@dataclass(frozen=True, slots=True)
class Settings:
    """The server's validated settings; built once in the CLI entry point and passed down."""

    data_dir: Path
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8765
    max_body_bytes: int = 64 * 1024 * 1024
    max_artifact_bytes: int = 100 * 1024 * 1024
    log_level: str = "info"
    log_roots: tuple[Path, ...] = ()  # where run output files may be read from; () = anywhere but system dirs
    executor: str = "auto"
    slurm_poll_s: float = 5.0
    slurm_poll_max_s: float = 60.0
    slurm_max_calls_per_min: int = 20
    webhook_secret: str = ""
    job_python: str = ""
    launch_allowed: str = "admins"
    public_url: str = ""
    slurmrestd_url: str = ""
    slurmrestd_user: str = ""
    slurmrestd_token: str = field(default="", repr=False)
    slurmrestd_token_file: str = ""
    session_hours: float = 12.0
    cookie_secure: str = "auto"  # auto | always | never

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from RUNYARD_* variables; keyword overrides (CLI flags) win when not None."""
        o = {k: v for k, v in overrides.items() if v is not None}
        data_dir = Path(o.get("data_dir") or env("RUNYARD_DATA_DIR") or default("RUNYARD_DATA_DIR"))
        data_dir = data_dir.expanduser().resolve()
        database_url = o.get("database_url") or env("RUNYARD_DATABASE_URL")
        if not database_url:
            database_url = f"sqlite:///{data_dir / 'runyard.db'}"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            host=o.get("host") or env("RUNYARD_HOST") or default("RUNYARD_HOST"),
            port=_int(
                o.get("port") or env("RUNYARD_PORT") or default("RUNYARD_PORT"), "RUNYARD_PORT", 1, 65535
            ),
            max_body_bytes=_int(
                o.get("max_body_mb") or env("RUNYARD_MAX_BODY_MB") or default("RUNYARD_MAX_BODY_MB"),
                "RUNYARD_MAX_BODY_MB",
                1,
                4096,
            )
            * 1024
            * 1024,
            max_artifact_bytes=_int(
                o.get("max_artifact_mb")
                or env("RUNYARD_MAX_ARTIFACT_MB")
                or default("RUNYARD_MAX_ARTIFACT_MB"),
                "RUNYARD_MAX_ARTIFACT_MB",
                1,
                1 << 20,
            )
            * 1024
            * 1024,
            log_level=o.get("log_level") or env("RUNYARD_LOG_LEVEL") or default("RUNYARD_LOG_LEVEL"),
            log_roots=_paths(o.get("log_roots") or env("RUNYARD_LOG_ROOTS") or "", "RUNYARD_LOG_ROOTS"),
            executor=o.get("executor") or env("RUNYARD_EXECUTOR") or default("RUNYARD_EXECUTOR"),
            slurm_poll_s=_float(
                _setting(o, "slurm_poll_s", "RUNYARD_SLURM_POLL_S"), "RUNYARD_SLURM_POLL_S", 0.05
            ),
            slurm_poll_max_s=_float(
                _setting(o, "slurm_poll_max_s", "RUNYARD_SLURM_POLL_MAX_S"), "RUNYARD_SLURM_POLL_MAX_S", 0.05
            ),
            slurm_max_calls_per_min=_int(
                _setting(o, "slurm_max_calls_per_min", "RUNYARD_SLURM_MAX_CALLS_PER_MIN"),
                "RUNYARD_SLURM_MAX_CALLS_PER_MIN",
                1,
                100_000,
            ),
            webhook_secret=o.get("webhook_secret") or env("RUNYARD_WEBHOOK_SECRET") or "",
            job_python=o.get("job_python") or env("RUNYARD_JOB_PYTHON") or "",
            public_url=_url(o.get("public_url") or env("RUNYARD_PUBLIC_URL") or "", "RUNYARD_PUBLIC_URL"),
            launch_allowed=_choice(
                _setting(o, "launch_allowed", "RUNYARD_LAUNCH_ALLOWED"),
                "RUNYARD_LAUNCH_ALLOWED",
                ("admins", "users"),
            ),
            slurmrestd_url=o.get("slurmrestd_url") or env("RUNYARD_SLURMRESTD_URL") or "",
            slurmrestd_user=o.get("slurmrestd_user") or env("RUNYARD_SLURMRESTD_USER") or "",
            slurmrestd_token=o.get("slurmrestd_token") or env("RUNYARD_SLURMRESTD_TOKEN") or "",
            slurmrestd_token_file=o.get("slurmrestd_token_file")
            or env("RUNYARD_SLURMRESTD_TOKEN_FILE")
            or "",
            session_hours=_session_hours(_setting(o, "session_hours", "RUNYARD_SESSION_HOURS")),
            cookie_secure=_choice(
                _setting(o, "cookie_secure", "RUNYARD_COOKIE_SECURE"),
                "RUNYARD_COOKIE_SECURE",
                ("auto", "always", "never"),
            ),
        )


def _paths(value: str, name: str) -> tuple[Path, ...]:
    """``/home:/scratch`` → absolute, resolved directories; a relative one is refused."""
    paths = []
    for part in str(value).split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part.strip()).expanduser()
        if not path.is_absolute():
            raise InvalidInput(f"{name} must list absolute directories, got {part!r}", field=name)
        paths.append(path.resolve())
    return tuple(paths)


def _setting(overrides: dict[str, Any], key: str, name: str) -> Any:
    return overrides.get(key) or env(name) or default(name)


def _url(value: str, name: str) -> str:
    if value and not value.startswith(("http://", "https://")):
        raise InvalidInput(f"{name} must start with http:// or https://, got {value!r}", field=name)
    return value.rstrip("/")


def _choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise InvalidInput(f"{name} must be one of {', '.join(choices)}, got {value!r}", field=name)
    return text


def _float(value: Any, name: str, lo: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number, got {value!r}", field=name) from None
    if not number >= lo:
        raise InvalidInput(f"{name} must be at least {lo:g}, got {number:g}", field=name)
    return number


def _session_hours(value: Any) -> float:
    hours = _float(value, "RUNYARD_SESSION_HOURS", 0.01)
    if hours > 24 * 366:
        raise InvalidInput(
            f"RUNYARD_SESSION_HOURS must be at most {24 * 366} (a year), got {hours:g}",
            field="RUNYARD_SESSION_HOURS",
        )
    return hours


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an integer, got {value!r}", field=name) from None
    if not lo <= number <= hi:
        raise InvalidInput(f"{name} must be between {lo} and {hi}, got {number}", field=name)
    return number
