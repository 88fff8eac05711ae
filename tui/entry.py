"""The installed `namestudio` command's entry point (pyproject.toml's [project.scripts]).

It imports nothing heavy itself: a Ctrl-C that lands while the command still imports its modules (the first
second or so) is caught here and said in one line, "namestudio: interrupted", exit 130, as `python -m
namestudio` says it. Pointed at namestudio.tui.cli:main, the script printed a KeyboardInterrupt traceback
from the middle of an import. namestudio.tui.cli:main stays callable as before.
"""
from __future__ import annotations

import sys


def main() -> None:
    try:
        from namestudio.tui.cli import run_command
    except KeyboardInterrupt:
        print("namestudio: interrupted", file=sys.stderr)
        sys.exit(130)
    run_command()
