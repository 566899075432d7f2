"""Regenerate the docs that come from code: docs/configuration.md and docs/cli.md.

    .venv/bin/python scripts/gen_docs.py          # rewrite them
    .venv/bin/python scripts/gen_docs.py --check  # exit 1 when they are stale (the tests do this)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from runyard.cli.main import build_parser  # noqa: E402
from runyard.config import ENV_VARS  # noqa: E402


def configuration_md() -> str:
    out = [
        "# Configuration\n",
        "Generated from `runyard.config.ENV_VARS` by `scripts/gen_docs.py`; a test fails when it is stale.\n",
        "The client resolves each setting as: argument > environment variable > config file "
        "(`~/.config/runyard/config.toml`, keys `url` and `api_key`) > default. The server reads its "
        "settings once at start; command-line flags of `runyard server` override them.\n",
    ]
    for side, title in (("client", "Client (training scripts and CLI)"), ("server", "Server")):
        out.append(f"\n## {title}\n\n| variable | default | meaning |\n|---|---|---|\n")
        for v in ENV_VARS:
            if v.side in (side, "both"):
                default = f"`{v.default}`" if v.default else "—"
                out.append(f"| `{v.name}` | {default} | {v.help} |\n")
    return "".join(out)


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    found = []
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                found.append((name, sub))
    return found


def cli_md() -> str:
    os.environ["COLUMNS"] = "100"
    parser = build_parser()
    out = ["# CLI reference\n\nGenerated from `runyard --help` by `scripts/gen_docs.py`.\n",
           f"\n```\n{parser.format_help()}```\n"]

    def walk(prefix: str, p: argparse.ArgumentParser) -> None:
        for name, sub in _subparsers(p):
            full = f"{prefix} {name}"
            out.append(f"\n## `{full}`\n\n```\n{sub.format_help()}```\n")
            walk(full, sub)

    walk("runyard", parser)
    return "".join(out)


def main() -> int:
    check = "--check" in sys.argv
    stale = []
    for path, text in ((ROOT / "docs" / "configuration.md", configuration_md()), (ROOT / "docs" / "cli.md", cli_md())):
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)}; run: .venv/bin/python scripts/gen_docs.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
