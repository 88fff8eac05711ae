"""Run the TUI in this fresh process until its first frame is written, print ``painted`` and quit.

The parent times this process from its start to that line (see startup.py). Run with the recording driver::

    TEXTUAL_DRIVER=namestudio.tui.bench.driver:RecordingDriver python -m namestudio.tui.bench.paint_probe DATA CKPTS
"""
from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    data, checkpoints = argv
    from namestudio.tui.app import NameStudioApp

    from .driver import RecordingDriver

    app = NameStudioApp(data=data, checkpoints=checkpoints)
    painted = []

    def on_write(_at: float, text: str) -> None:
        if not painted and len(text) > 200:   # a frame, not a mode switch or a cursor move
            painted.append(True)
            os.write(1, b"painted\n")   # print() would go to the app's capture of stdout
            app.exit()

    RecordingDriver.listeners.append(on_write)
    app.run(size=(100, 30))
    return 0 if painted else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
