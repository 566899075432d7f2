"""``runyard slurm epilog-script``: what a cluster admin installs so job ends reach Runyard at once."""

from __future__ import annotations

import argparse
import sys

from runyard.config import Settings, client_setting
from runyard.slurm.epilog import render_epilog

__all__ = ["add_slurm_commands"]


def _epilog_script(args: argparse.Namespace) -> int:
    url = client_setting(args.url, ("RUNYARD_URL",), "url", "http://127.0.0.1:8765")
    secret_file = args.secret_file
    if secret_file is None:
        secret_file = str(Settings.from_env(data_dir=args.data_dir).data_dir / "webhook.secret")
    sys.stdout.write(render_epilog(str(url), secret_file))
    return 0


def add_slurm_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "slurm",
        help="Slurm integration for cluster admins (epilog script)",
        description="Slurm integration for cluster admins.",
    )
    slurm_sub = p.add_subparsers(dest="slurm_command", required=True, metavar="SUBCOMMAND")
    e = slurm_sub.add_parser(
        "epilog-script",
        help="print the epilog that reports job ends to the server, signed with the webhook secret",
        description=(
            "Print a Python 3 epilog program (stdlib only) that posts each job's id, exit code and "
            "restart count to the server's /webhooks/slurm, signed with HMAC-SHA256 using the shared "
            "webhook secret. Save it (e.g. /etc/slurm/runyard-epilog.py, mode 0755), copy the secret "
            "file to the nodes (readable only by root / SlurmUser), and set Epilog= or "
            "EpilogSlurmctld= in slurm.conf. The watcher polls anyway; the epilog makes job ends "
            "visible at once. Unsigned or forged calls are refused by the server."
        ),
    )
    e.add_argument("--url", help="server URL the epilog posts to (default: RUNYARD_URL / client config)")
    e.add_argument(
        "--secret-file",
        help="where the nodes read the webhook secret "
        "(default: <data dir>/webhook.secret of this host's server)",
    )
    e.add_argument("--data-dir", help="the server's data dir (default: RUNYARD_DATA_DIR)")
    e.set_defaults(func=_epilog_script)
