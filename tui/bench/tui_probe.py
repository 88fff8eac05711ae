"""Key latency of the TUI, measured inside its own process (the bench's historic method), in a fresh process.

The app runs with the recording driver, so every frame is encoded as for a terminal and its write is timed. Keys go
in through Textual's Pilot. A press of 3 or 2 switches to the Evaluate or the Train pane; its latency is the time
from the key to the first frame written once that pane has a place on the screen. Then ctrl+q quits, and the
parent times from that press to the end of this process. Run by tui.py::

    TEXTUAL_DRIVER=namestudio.tui.bench.driver:RecordingDriver \\
        python -m namestudio.tui.bench.tui_probe DATA CHECKPOINTS PRESSES [WATCH_SECONDS [FOLLOW_TIMEOUT]]

With WATCH_SECONDS (a `namestudio train` child writes a run into CHECKPOINTS) it first shows the Train pane, waits
for a frame that shows a step of the run (else it says ``nofollow`` and quits), then notes for WATCH_SECONDS the time each frame that shows a new step
was written, and 2 s more for the last steps to show. Lines on stdout: ``watch``, ``grace``, ``keys``, ``done``,
``quit`` (each with its perf_counter time) as those phases start, and one JSON line before ``quit``. stdout is written with os.write: while the app runs, print() goes
to Textual's capture of stdout.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time

SWITCHES = [("3", "evaluate"), ("2", "train")]
GRACE_S = 2.0


def say(text: str) -> None:
    os.write(1, (text + "\n").encode())


def main(argv: list[str]) -> int:
    data, checkpoints, presses = argv[0], argv[1], int(argv[2])
    watch_s = float(argv[3]) if len(argv) > 3 else None
    follow_timeout = float(argv[4]) if len(argv) > 4 else 60.0
    from namestudio.tui.app import NameStudioApp

    from . import attach
    from .driver import RecordingDriver

    app = NameStudioApp(data=data, checkpoints=checkpoints)
    watch: dict = {"done": None, "at": None}
    shown: list[list[float]] = []      # [time.time(), step] of each frame that showed a later step
    seen = {"step": 0, "watching": False}

    def on_write(at: float, text: str) -> None:
        if watch["done"] is not None and watch["at"] is None and watch["done"]():
            watch["at"] = at
        step = attach.step_shown(text)
        if step is not None and step > seen["step"]:
            seen["step"] = step
            if seen["watching"]:
                shown.append([time.time(), step])

    RecordingDriver.listeners.append(on_write)
    latencies: list[float] = []
    rng = random.Random(0)

    async def wait_until(condition, timeout: float, what: str) -> None:
        deadline = time.perf_counter() + timeout
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the TUI did not {what} within {timeout:g} s")
            await asyncio.sleep(0.005)

    async def drive(pilot) -> None:
        await wait_until(lambda: attach.ready(app), 120, "start")
        if watch_s is not None:
            await pilot.press("2")
            try:
                await wait_until(lambda: seen["step"] > 0, follow_timeout, "show a step of the run")
            except TimeoutError:
                say("nofollow")
                await attach.quit(app, pilot)
                return
            say(f"watch {time.perf_counter()}")
            seen["watching"] = True
            await asyncio.sleep(watch_s)
            say(f"grace {time.perf_counter()}")   # steps written from now on are not timed; they may still show
            await asyncio.sleep(GRACE_S)
            seen["watching"] = False
        else:
            await asyncio.sleep(1.0)   # at rest: what start-up left to draw is drawn
        say(f"keys {time.perf_counter()}")
        for k in range(presses):
            key, pid = SWITCHES[k % 2]
            pane = app.query_one(f"TabPane#{pid}")
            watch["done"], watch["at"] = (lambda: pane.region.area > 0), None
            start = time.perf_counter()
            await pilot.press(key)   # the frame's time comes from the driver, whatever Pilot waits for after it
            await wait_until(lambda: watch["at"] is not None, 30, f"show the {pid} pane")
            latencies.append(1000 * (watch["at"] - start))
            watch["done"] = None
            await asyncio.sleep(rng.uniform(0.05, 0.25))
        say(f"done {time.perf_counter()}")
        say(json.dumps({"latencies_ms": latencies, "shown": shown}))
        say(f"quit {time.perf_counter()}")
        await attach.quit(app, pilot)

    app.run(size=(100, 30), auto_pilot=drive)
    return 0 if len(latencies) == presses else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
