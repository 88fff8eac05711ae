"""A terminal that is not there, for probes that time what the app draws.

The app renders every frame for it exactly as it would for a terminal (``is_headless`` is False, so the frame is
encoded to escape sequences), and each write is handed to the listeners with the time it happened. It is chosen the
way Textual documents, through the environment of the probe's process::

    TEXTUAL_DRIVER=namestudio.tui.bench.driver:RecordingDriver

so neither the app nor Textual is patched. It reads no input: probes press keys with Textual's Pilot.
"""
from __future__ import annotations

import time
from typing import Callable

from textual.drivers.headless_driver import HeadlessDriver

SPEC = f"{__name__}:RecordingDriver"


class RecordingDriver(HeadlessDriver):
    listeners: list[Callable[[float, str], None]] = []   # called with (perf_counter time, data) on each write
    writes = 0

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        now = time.perf_counter()
        RecordingDriver.writes += 1
        for listener in list(RecordingDriver.listeners):
            listener(now, data)
