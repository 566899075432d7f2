"""``RestSlurm`` (slurmrestd, openapi v0.0.38): the pure #SBATCH translation, the parsers on
responses recorded from the dev cluster's slurmrestd 22.05.8 (``data/rest_*.json``), the HTTP
failure paths against a tiny local server, and the real slurmrestd of the dev cluster."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runyard.config import Settings
from runyard.errors import InvalidInput, SlurmError, SubmitFailed
from runyard.slurm import rest as rest_module
from runyard.slurm.executor import EXECUTOR_KINDS, open_executor
from runyard.slurm.parse import parse_partitions, parse_sacct_json, parse_sinfo_json, parse_squeue_json
from runyard.slurm.rest import DEFAULT_PATH, RestSlurm, job_properties, parse_rest_partitions
from runyard.slurm.runner import LocalSlurm
from tests.slurm.conftest import poll

DATA = Path(__file__).parent / "data"
TOKEN = "eyJhbGciOiJIUzI1NiJ9.test-token.sig"


def _data(name: str) -> str:
    return (DATA / name).read_text()


def _without_signal(name: str) -> str:
    """A recorded script minus its ``--signal=B:...`` line (which slurmrestd 22.05 cannot take)."""
    lines = _data(name).splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("#SBATCH --signal=B:"))


# --------------------------------------------------------------------------- job_properties (pure)


def test_full_script_translates_every_directive() -> None:
    props = job_properties(_without_signal("full.sbatch"), "/ignored", {"RUNYARD_API_KEY": "k"})
    assert props == {
        "name": "sweep-lr",
        "partition": "gpu",
        "account": "research",
        "qos": "normal",
        "nodes": "2",
        "tasks_per_node": 4,
        "cpus_per_task": 8,
        "gpus_per_node": "4",
        "memory_per_node": 64 * 1024,
        "time_limit": 2 * 1440 + 3 * 60 + 5,
        "no_requeue": True,
        "array": "0-9%2",
        "dependency": "afterok:12:13",
        "standard_output": "/scratch/runyard/logs/%x-%A_%a.out",
        "standard_error": "/scratch/runyard/logs/%x-%A_%a.err",
        "current_working_directory": "/home/alice/project",  # --chdir wins over workdir
        "environment": {"PATH": DEFAULT_PATH, "RUNYARD_API_KEY": "k"},
    }


def test_user_script_short_options_prefixes_and_last_value_win() -> None:
    text = _without_signal("launch_script.sbatch").replace("#SBATCH --exclusive --mail-type=END\n", "")
    props = job_properties(text, "/w", None, home="/home/alice")
    assert props["partition"] == "long"  # -p gpu, --part=debug, then --partition=long: the last
    assert props["nodes"] == "2" and props["tasks_per_node"] == 4 and props["cpus_per_task"] == 8
    assert props["gres"] == "gpu:a100:2"
    assert props["memory_per_node"] == 32 * 1024
    assert props["time_limit"] == 36 * 60  # -t 1-12:00
    assert props["array"] == "0-9%3" and props["dependency"] == "afterok:5"
    assert props["standard_output"] == "logs/%x-%A_%a.out"  # relative: Slurm resolves it in the cwd
    assert props["account"] == "research" and props["qos"] == "high"
    assert props["no_requeue"] is True and "requeue" not in props
    assert props["current_working_directory"] == "/scratch/work"
    assert props["environment"] == {"PATH": DEFAULT_PATH, "HOME": "/home/alice"}


def test_exclusive_and_mail_type_translate() -> None:
    props = job_properties("#!/bin/bash\n#SBATCH --exclusive --mail-type=END --hold --nice\n", "/w", None)
    assert props["exclusive"] == "exclusive" and props["mail_type"] == "END"
    assert props["hold"] is True and props["nice"] == 100


def test_quoted_values_and_memory_in_megabytes() -> None:
    props = job_properties(_data("quoting.sbatch"), "/w", None)
    assert props["name"] == "quote.test"
    assert props["memory_per_node"] == 1536 and props["time_limit"] == 90 and props["requeue"] is True
    assert props["standard_output"] == "/tmp/my logs/it's; $x/%x-%j.out"
    assert props["current_working_directory"] == "/tmp/work dir/`sub`"


def test_generated_scripts_translate_without_their_signal_line() -> None:
    props = job_properties(_without_signal("launch_command.sbatch"), "/elsewhere", {"X": "1"})
    assert props["name"] == "train" and props["partition"] == "debug" and props["time_limit"] == 90
    assert props["requeue"] is True and props["current_working_directory"] == "/w"
    array = job_properties(_without_signal("launch_array.sbatch"), "/w", None)
    assert array["array"] == "0-3%2" and array["no_requeue"] is True


def test_batch_shell_signal_is_refused_with_the_reason() -> None:
    for name in ("basic.sbatch", "full.sbatch", "launch_array.sbatch", "launch_script_bare.sbatch"):
        with pytest.raises(SubmitFailed) as info:
            job_properties(_data(name), "/w", None)
        assert "--signal=B:USR1@" in info.value.message and "signal_before_end_s=0" in info.value.message
    for spec in ("RB:USR1@60", "BR:USR1@60", "b:USR1@60"):
        with pytest.raises(SubmitFailed):
            job_properties(f"#!/bin/bash\n#SBATCH --signal={spec}\n", "/w", None)


@pytest.mark.parametrize("spec", ["USR1@60", "R:USR1@60", "10@30"])
def test_signals_slurmrestd_takes_pass_through(spec: str) -> None:
    assert job_properties(f"#!/bin/bash\n#SBATCH --signal={spec}\n", "/w", None)["signal"] == spec


@pytest.mark.parametrize(
    ("line", "flag"),
    [
        ("#SBATCH --exclude=n1", "--exclude"),
        ("#SBATCH -x n1", "--exclude"),
        ("#SBATCH --export=NONE", "--export"),
        ("#SBATCH --no-kill", "--no-kill"),
        ("#SBATCH --contiguous", "--contiguous"),
        ("#SBATCH -X", "-X"),
        ("#SBATCH --made-up-flag=1", "--made-up-flag"),
    ],
)
def test_unknown_flags_are_named_not_dropped(line: str, flag: str) -> None:
    with pytest.raises(SubmitFailed) as info:
        job_properties(f"#!/bin/bash\n#SBATCH --job-name=x\n{line}\necho hi\n", "/w", None)
    assert info.value.message.startswith(f"#SBATCH {flag} has no equivalent")
    assert info.value.field == "script"


def test_defaults_environment_and_working_directory() -> None:
    props = job_properties("#!/bin/bash\necho hi\n", "/w", {"PATH": "/opt/bin", "A": "b c"}, home="/h")
    assert props == {
        "name": "sbatch",  # what sbatch calls a script read from stdin
        "current_working_directory": "/w",
        "environment": {"PATH": "/opt/bin", "HOME": "/h", "A": "b c"},  # env wins
    }
    assert job_properties("#!/bin/bash\n", None, None, home="/h")["current_working_directory"] == "/h"
    relative = job_properties("#!/bin/bash\n#SBATCH -D sub\n", "/w", None)
    assert relative["current_working_directory"] == "/w/sub"
    with pytest.raises(SubmitFailed, match="working directory"):
        job_properties("#!/bin/bash\necho hi\n", None, None)


def test_values_are_checked() -> None:
    assert job_properties("#!/bin/bash\n#SBATCH --time=UNLIMITED\n", "/w", None)["time_limit"] == 0
    assert job_properties("#!/bin/bash\n#SBATCH --parsable --quiet\n", "/w", None)["name"] == "sbatch"
    with pytest.raises(SubmitFailed, match="--nice must be a whole number"):
        job_properties("#!/bin/bash\n#SBATCH --nice=lots\n", "/w", None)
    with pytest.raises(SubmitFailed, match="--mem-per-gpu"):
        job_properties("#!/bin/bash\n#SBATCH --mem-per-gpu=lots\n", "/w", None)
    with pytest.raises(InvalidInput, match="line 2"):  # a malformed header, as for sbatch
        job_properties("#!/bin/bash\n#SBATCH --mem=lots\n", "/w", None)


# --------------------------------------------------------------------------- parsers on recorded answers


def test_rest_partitions_match_scontrols_view_of_the_same_cluster() -> None:
    rest = parse_rest_partitions(_data("rest_partitions.json"))
    assert rest == parse_partitions(_data("scontrol_partitions.txt"))
    debug = rest[0]
    assert (debug.name, debug.default, debug.max_time_min, debug.default_time_min) == ("debug", True, 10, 5)
    assert rest[1].max_time_min is None  # -1: no limit
    assert (debug.gpus, debug.memory_mb, debug.total_cpus) == (12, 12000, 12)


def test_rest_partitions_later_shapes_and_errors() -> None:
    unlimited = {"set": True, "infinite": True, "number": 0}
    thirty = {"set": True, "infinite": False, "number": 30}
    later = {
        "partitions": [
            {"name": "p", "state": ["UP"], "max_time_limit": unlimited, "default_time_limit": thirty}
        ]
    }
    (part,) = parse_rest_partitions(json.dumps(later))
    assert (part.state, part.max_time_min, part.default_time_min, part.memory_mb) == ("UP", None, 30, None)
    with pytest.raises(SlurmError, match="Failed while looking for jobs"):
        parse_rest_partitions(_data("rest_jobs_bad_token.json"))
    with pytest.raises(SlurmError, match="not a JSON object"):
        parse_rest_partitions("Authentication failure")


def test_rest_answers_have_the_cli_json_shapes() -> None:
    jobs = {job.job_id: job for job in parse_squeue_json(_data("rest_jobs.json"))}
    held, array = jobs[290], jobs[291]
    assert (held.name, held.state, held.reason, held.array_job_id) == (
        "rest-held",
        "PENDING",
        "JobHeldUser",
        None,
    )
    assert array.display_id == "291_[0-3%2]" and array.gpus_per_node == 1 and array.time_limit_min == 7
    nodes = parse_sinfo_json(_data("rest_nodes.json"))
    assert {n.name for n in nodes} == {"n1", "n2", "n3"} and all(n.gpus_total == 4 for n in nodes)
    accounted = {job.job_id: job for job in parse_sacct_json(_data("rest_slurmdb_jobs.json"))}
    assert set(accounted) == {"226", "255_0", "255_1", "255_2"}  # a leader id brings its tasks
    assert accounted["255_1"].raw_job_id == 257 and accounted["226"].state == "COMPLETED"
    assert parse_sacct_json(_data("rest_slurmdb_nothing_found.json")) == []


# --------------------------------------------------------------------------- a tiny slurmrestd


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Answer = tuple[int, str]


@dataclass
class FakeRestd:
    """A local HTTP server answering with scripted (status, body) per "METHOD path"."""

    url: str
    answers: dict[str, Answer | Callable[[Seen], Answer]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def restd() -> Iterator[FakeRestd]:
    holder: list[FakeRestd] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            fake = holder[0]
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {key.lower(): value for key, value in self.headers.items()}
            seen = Seen(self.command, self.path, headers, json.loads(raw) if raw else None)
            fake.seen.append(seen)
            answer = fake.answers.get(
                f"{self.command} {self.path.split('?')[0]}", (404, "Unable find requested URL.")
            )
            status, body = answer(seen) if callable(answer) else answer
            if status == 0:  # hang until the test is done
                fake.release.wait(30)
                return
            if status == 302:
                self.send_response(302)
                self.send_header("Location", body)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(FakeRestd(url=f"http://127.0.0.1:{server.server_address[1]}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        holder[0].release.set()
        server.shutdown()
        server.server_close()


def _client(restd: FakeRestd, **kwargs: Any) -> RestSlurm:
    options: dict[str, Any] = {"user": "alice", "token": TOKEN, "timeout_s": 5, **kwargs}
    if "token_file" in kwargs:
        options.pop("token")
    return RestSlurm(restd.url, **options)


V = "/slurm/v0.0.38"


def test_reads_send_the_jwt_headers_and_parse(restd: FakeRestd) -> None:
    restd.answers = {
        f"GET {V}/jobs": (200, _data("rest_jobs.json")),
        f"GET {V}/nodes": (200, _data("rest_nodes.json")),
        f"GET {V}/partitions": (200, _data("rest_partitions.json")),
    }
    client = _client(restd)
    assert client.kind == "slurm"
    assert len(client.queue()) == 4 and len(client.nodes()) == 3 and len(client.partitions()) == 3
    for seen in restd.seen:
        assert seen.headers["x-slurm-user-name"] == "alice" and seen.headers["x-slurm-user-token"] == TOKEN


def test_accounting_is_one_request_for_many_ids(restd: FakeRestd, monkeypatch: pytest.MonkeyPatch) -> None:
    restd.answers = {"GET /slurmdb/v0.0.38/jobs": (200, _data("rest_slurmdb_jobs.json"))}
    client = _client(restd)
    assert client.accounting([]) == [] and restd.seen == []
    jobs = client.accounting(["255", "226", "255"])
    assert {job.job_id for job in jobs} == {"226", "255_0", "255_1", "255_2"}
    assert [s.path for s in restd.seen] == ["/slurmdb/v0.0.38/jobs?step=255%2C226"]  # a bare "," is refused
    monkeypatch.setattr(rest_module, "MAX_IDS_PER_REQUEST", 2)
    client.accounting(["1", "2_3", "4"])
    assert [s.path.split("=")[1] for s in restd.seen[1:]] == ["1%2C2_3", "4"]
    with pytest.raises(InvalidInput):
        client.accounting(["1;reboot"])
    assert len(restd.seen) == 3


def test_submit_posts_the_translated_header_and_script(restd: FakeRestd) -> None:
    restd.answers = {f"POST {V}/job/submit": (200, _data("rest_submit_held.json"))}
    script = "#!/bin/bash\n#SBATCH --job-name=t --hold\necho hi\n"
    job_id = _client(restd).submit(script, workdir="/w", env={"RUNYARD_API_KEY": "secret"})
    assert job_id == "290"  # its answer also holds 2042 "Job is in held state": a note, not a failure
    (seen,) = restd.seen
    assert seen.body["script"] == script
    assert seen.body["job"]["name"] == "t" and seen.body["job"]["hold"] is True
    assert seen.body["job"]["environment"]["RUNYARD_API_KEY"] == "secret"
    with pytest.raises(InvalidInput, match="absolute"):
        _client(restd).submit(script, workdir="relative")


@pytest.mark.parametrize(
    ("status", "name", "words"),
    [
        (400, "rest_submit_unknown_key.json", 'Unknown key "bogus_key"; Failure during parsing'),
        (400, "rest_submit_bad_signal.json", "Invalid SIGNAL specification"),
        (500, "rest_submit_bad_partition.json", "Invalid partition name specified"),
    ],
)
def test_submit_refusals_carry_slurmrestds_words(
    restd: FakeRestd, status: int, name: str, words: str
) -> None:
    restd.answers = {f"POST {V}/job/submit": (status, _data(name))}
    with pytest.raises(SubmitFailed) as info:
        _client(restd).submit("#!/bin/bash\necho hi\n", workdir="/w")
    assert words in info.value.message and f"HTTP {status}" in info.value.message
    assert TOKEN not in info.value.message


def test_cancel_and_requeue(restd: FakeRestd) -> None:
    restd.answers = {
        f"DELETE {V}/job/12_3": (200, _data("rest_cancel_ok.json")),
        f"DELETE {V}/job/999999": (500, _data("rest_cancel_invalid.json")),
    }
    client = _client(restd)
    client.cancel("12_3")
    with pytest.raises(SlurmError, match="Invalid job id specified"):
        client.cancel("999999")
    with pytest.raises(InvalidInput):
        client.cancel("12 13")
    with pytest.raises(SlurmError, match="has no requeue"):
        client.requeue("12")
    assert [s.method for s in restd.seen] == ["DELETE", "DELETE"]


def test_refused_token_is_named_and_never_shown(restd: FakeRestd) -> None:
    restd.answers = {
        f"GET {V}/nodes": (401, "Authentication failure"),
        "GET /slurmdb/v0.0.38/jobs": (200, _data("rest_slurmdb_bad_token.json")),
        f"GET {V}/jobs": (500, _data("rest_jobs_bad_token.json")),
    }
    client = _client(restd)
    for call, words in (
        (client.nodes, "refused the token of user alice"),
        (lambda: client.accounting(["226"]), "Protocol authentication error"),
        (client.queue, "invalid or expired"),
    ):
        with pytest.raises(SlurmError) as info:
            call()
        assert words in info.value.message and TOKEN not in info.value.message
    assert len(restd.seen) == 3  # a fixed token is not tried twice


def test_an_echoed_token_is_cut_out(restd: FakeRestd) -> None:
    body = json.dumps({"errors": [{"error": f"bad token {TOKEN}", "error_number": 2017}]})
    restd.answers = {f"GET {V}/jobs": (500, body)}
    with pytest.raises(SlurmError) as info:
        _client(restd).queue()
    assert TOKEN not in info.value.message and "bad token <token>" in info.value.message


def test_token_file_is_read_again_after_a_refusal(restd: FakeRestd, tmp_path: Path) -> None:
    token_file = tmp_path / "jwt"
    token_file.write_text("SLURM_JWT=old-token\n")  # as `scontrol token` prints it

    def nodes(seen: Seen) -> Answer:
        if seen.headers["x-slurm-user-token"] == "old-token":
            token_file.write_text("new-token-longer\n")  # rotated while the request was out
            return 401, "Authentication failure"
        return 200, _data("rest_nodes.json")

    restd.answers = {f"GET {V}/nodes": nodes}
    assert len(_client(restd, token_file=str(token_file)).nodes()) == 3
    assert [s.headers["x-slurm-user-token"] for s in restd.seen] == ["old-token", "new-token-longer"]


def test_token_file_change_is_picked_up_before_the_next_request(restd: FakeRestd, tmp_path: Path) -> None:
    token_file = tmp_path / "jwt"
    token_file.write_text("first")
    restd.answers = {f"GET {V}/nodes": (200, _data("rest_nodes.json"))}
    client = _client(restd, token_file=str(token_file))
    client.nodes()
    token_file.write_text("second-token")
    client.nodes()
    assert [s.headers["x-slurm-user-token"] for s in restd.seen] == ["first", "second-token"]
    token_file.write_text("")
    with pytest.raises(SlurmError, match="holds no single token") as info:
        client.nodes()
    assert "second-token" not in info.value.message
    token_file.unlink()
    with pytest.raises(SlurmError, match="cannot read the slurmrestd token file"):
        client.nodes()


def test_timeouts_name_the_limit(restd: FakeRestd) -> None:
    restd.answers = {f"GET {V}/jobs": (0, ""), f"POST {V}/job/submit": (0, "")}
    client = _client(restd, timeout_s=0.3)
    with pytest.raises(SlurmError, match=r"did not answer GET .*/jobs within 0.3 s"):
        client.queue()
    with pytest.raises(SlurmError, match="may have been submitted"):
        client.submit("#!/bin/bash\n", workdir="/w")


def test_a_server_that_drips_still_meets_the_deadline() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not stop.wait(0.05):  # a byte every 50 ms: no single read ever times out
                with contextlib.suppress(OSError):
                    conn.sendall(b" ")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        client = RestSlurm(
            f"http://127.0.0.1:{listener.getsockname()[1]}", user="a", token="t", timeout_s=0.5
        )
        with pytest.raises(SlurmError, match=r"within 0\.5 s"):
            client.queue()
    finally:
        stop.set()
        listener.close()


def test_unreachable_404_and_redirects(restd: FakeRestd) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(SlurmError, match=r"cannot be reached .*RUNYARD_SLURMRESTD_URL"):
        RestSlurm(f"http://127.0.0.1:{port}", user="a", token="t").nodes()
    with pytest.raises(SlurmError, match=r"HTTP 404.*does it serve openapi v0.0.40"):
        _client(restd, api_version="v0.0.40").nodes()
    restd.answers = {f"GET {V}/nodes": (302, f"http://127.0.0.1:{port}/steal")}
    with pytest.raises(SlurmError, match="HTTP 302"):  # never followed: the token stays here
        _client(restd).nodes()


def test_proxy_settings_are_not_used(restd: FakeRestd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    restd.answers = {f"GET {V}/nodes": (200, _data("rest_nodes.json"))}
    assert len(_client(restd).nodes()) == 3


def test_configuration_is_checked() -> None:
    for bad in ({"token": None}, {"token_file": "/x"}):  # neither, both
        with pytest.raises(InvalidInput, match="exactly one"):
            RestSlurm("http://h:6820", user="a", **{"token": "t", **bad})  # type: ignore[arg-type]
    for url in ("h:6820", "ftp://h", "http://h:6820/?x=1", ""):
        with pytest.raises(InvalidInput, match="RUNYARD_SLURMRESTD_URL"):
            RestSlurm(url, user="a", token="t")
    with pytest.raises(InvalidInput, match="api_version"):
        RestSlurm("http://h:6820", user="a", token="t", api_version="0.0.38")
    with pytest.raises(InvalidInput, match="timeout_s"):
        RestSlurm("http://h:6820", user="a", token="t", timeout_s=0)


def test_settings_and_open_executor(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert "rest" in EXECUTOR_KINDS
    monkeypatch.setenv("RUNYARD_EXECUTOR", "rest")
    monkeypatch.setenv("RUNYARD_SLURMRESTD_URL", "http://127.0.0.1:6820/")
    monkeypatch.setenv("RUNYARD_SLURMRESTD_USER", "alice")
    monkeypatch.setenv("RUNYARD_SLURMRESTD_TOKEN", TOKEN)
    settings = Settings.from_env(data_dir=str(tmp_path))
    assert TOKEN not in repr(settings)
    executor = open_executor(settings.executor, state_dir=tmp_path, settings=settings, timeout_s=7)
    assert isinstance(executor, RestSlurm)
    assert (executor.url, executor.user, executor.timeout_s) == ("http://127.0.0.1:6820", "alice", 7)
    with pytest.raises(InvalidInput, match="RUNYARD_SLURMRESTD_URL"):
        open_executor("rest", state_dir=tmp_path)
    monkeypatch.delenv("RUNYARD_SLURMRESTD_USER")
    monkeypatch.delenv("RUNYARD_SLURMRESTD_TOKEN")
    monkeypatch.setenv("RUNYARD_SLURMRESTD_TOKEN_FILE", str(tmp_path / "jwt"))
    settings = Settings.from_env(data_dir=str(tmp_path))
    executor = open_executor("rest", state_dir=tmp_path, settings=settings)
    assert isinstance(executor, RestSlurm) and executor.user  # the server's own user


# --------------------------------------------------------------------------- the dev cluster's slurmrestd

REST_URL = "http://127.0.0.1:6820"


@pytest.fixture
def real(dev_cluster: None, tmp_path: Path) -> Iterator[RestSlurm]:
    """A client of the dev cluster's slurmrestd with a fresh root token in a file; held jobs it
    leaves behind are cancelled."""
    scontrol = shutil.which("scontrol")
    assert scontrol is not None
    out = subprocess.run(
        [scontrol, "token", "username=root", "lifespan=600"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0 and out.stdout.startswith("SLURM_JWT="), out.stderr
    token_file = tmp_path / "jwt"
    token_file.write_text(out.stdout)
    token_file.chmod(0o600)
    client = RestSlurm(REST_URL, user="root", token_file=str(token_file), timeout_s=30)
    submitted: list[str] = []
    original = client.submit

    def submit(script: str, **kwargs: Any) -> str:
        job_id = original(script, **kwargs)
        submitted.append(job_id)
        return job_id

    client.submit = submit  # type: ignore[method-assign]
    try:
        yield client
    finally:
        for job_id in submitted:
            with contextlib.suppress(SlurmError):
                client.cancel(job_id)


def _queued(client: RestSlurm, job_id: str) -> Any:
    return next((job for job in client.queue() if str(job.job_id) == job_id), None)


def _final(client: RestSlurm, job_id: str, name: str) -> Any:
    """The job's accounting once it has ended (22.05's sacct briefly shows a placeholder record
    named "allocation": wait for the real name)."""
    for job in client.accounting([job_id]):
        if job.job_id == job_id and job.name == name and job.state not in ("PENDING", "RUNNING"):
            return job
    return None


def test_real_reads_match_the_cli(real: RestSlurm) -> None:
    nodes = real.nodes()
    assert {node.name for node in nodes} == {"n1", "n2", "n3"}
    assert all(node.gpus_total == 4 and node.cpus == 4 for node in nodes)
    assert real.partitions() == LocalSlurm().partitions()
    assert isinstance(real.queue(), list)


def test_real_submit_runs_and_is_accounted(real: RestSlurm, tmp_path: Path) -> None:
    out = tmp_path / "hi.out"
    script = f"#!/bin/bash\n#SBATCH --job-name=rest-hi\n#SBATCH --output={out}\necho hi\n"
    job_id = real.submit(script, workdir=str(tmp_path), env={"RUNYARD_TEST": "1"})
    assert job_id.isdigit()
    job = poll(lambda: _final(real, job_id, "rest-hi"), 60, f"job {job_id} in slurmdbd")
    assert (job.state, job.exit_code, job.partition) == ("COMPLETED", 0, "debug")
    assert out.read_text() == "hi\n"


def test_real_job_sees_its_environment_and_directory(real: RestSlurm, tmp_path: Path) -> None:
    out = tmp_path / "env.out"
    script = f'#!/bin/bash\n#SBATCH --job-name=rest-env -o {out}\necho "$PWD|$RUNYARD_TEST|$HOME|$PATH"\n'
    job_id = real.submit(script, workdir=str(tmp_path), env={"RUNYARD_TEST": "a b"})
    poll(lambda: _final(real, job_id, "rest-env"), 60, f"job {job_id} in slurmdbd")
    cwd, value, home, path = out.read_text().strip().split("|")
    assert (cwd, value, path) == (str(tmp_path), "a b", DEFAULT_PATH)
    assert home == os.path.expanduser("~root")


def test_real_held_job_carries_the_header_and_cancels(real: RestSlurm, tmp_path: Path) -> None:
    script = (
        "#!/bin/bash\n#SBATCH --job-name=rest-held --hold -p gpu --gres=gpu:2 -N1 --ntasks-per-node=2\n"
        "#SBATCH --mem=100M --time=3 --no-requeue\nsleep 600\n"
    )
    job_id = real.submit(script, workdir=str(tmp_path))
    job = poll(lambda: _queued(real, job_id), 30, f"job {job_id} in the queue")
    assert (job.name, job.state, job.reason, job.partition) == ("rest-held", "PENDING", "JobHeldUser", "gpu")
    assert (job.time_limit_min, job.tres_per_node, job.requeue) == (3, "gres:gpu:2", False)
    real.cancel(job_id)
    final = poll(lambda: _final(real, job_id, "rest-held"), 60, f"job {job_id} cancelled in slurmdbd")
    assert final.state == "CANCELLED"


def test_real_array_task_cancels_alone(real: RestSlurm, tmp_path: Path) -> None:
    script = "#!/bin/bash\n#SBATCH -J rest-arr --hold --array=0-1\nsleep 600\n"
    job_id = real.submit(script, workdir=str(tmp_path))
    leader = poll(lambda: _queued(real, job_id), 30, f"array {job_id} in the queue")
    assert leader.display_id == f"{job_id}_[0-1]"
    real.cancel(f"{job_id}_1")

    def only_task_0() -> bool:
        return any(job.display_id == f"{job_id}_[0]" for job in real.queue())

    poll(only_task_0, 30, f"task {job_id}_1 gone, {job_id}_0 still pending")


def test_real_refusals(real: RestSlurm, tmp_path: Path) -> None:
    with pytest.raises(SubmitFailed, match="Invalid partition name specified"):
        real.submit("#!/bin/bash\n#SBATCH -p no-such-partition\necho hi\n", workdir=str(tmp_path))
    with pytest.raises(SlurmError, match="Invalid job id specified"):
        real.cancel("999999999")
    with pytest.raises(SlurmError, match="has no requeue"):
        real.requeue("1")


def test_real_bad_token_then_rotated_file(dev_cluster: None, tmp_path: Path, real: RestSlurm) -> None:
    token_file = tmp_path / "rotating"
    token_file.write_text("SLURM_JWT=not-a-valid-token\n")
    client = RestSlurm(REST_URL, user="root", token_file=str(token_file), timeout_s=30)
    with pytest.raises(SlurmError) as info:
        client.accounting(["1"])  # /slurmdb says "Protocol authentication error" with HTTP 200
    assert "refused the token" in info.value.message and "not-a-valid-token" not in info.value.message
    with pytest.raises(SlurmError, match="invalid or expired"):
        client.nodes()  # /slurm says only "Unspecified error" with HTTP 500
    token_file.write_text((tmp_path / "jwt").read_text())  # the rotated token: picked up, no restart
    assert len(client.nodes()) == 3
