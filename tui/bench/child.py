"""A real training run for the tui section: `namestudio train` started as its own process the way the TUI starts
one (engine.process.launch_train: own session, nice 10), its step log read as it grows, and the process ended by
its id when the measurement is over."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

from namestudio.engine import runfolder as rf
from namestudio.engine.process import launch_train

from .common import median

# Runs on for as long as it is measured (no early stop, no end), and logs a step every 5 steps so that a few
# seconds hold enough of them. The CLI-alone run and the followed run use this very config.
RUN_OVERRIDES = {"epochs": 100_000, "patience": 0, "log_every": 5}


class TrainingChild:
    """``with TrainingChild(cfg, checkpoints) as run:`` a `namestudio train` child; a thread reads its steps.jsonl
    every 10 ms and notes for each record when it was written (the file's mtime at the first read that saw it)."""

    def __init__(self, cfg, checkpoints, nice: int = 10):
        self.cfg = replace(cfg, **RUN_OVERRIDES)
        self.checkpoints, self.nice = checkpoints, nice
        self.records: list[tuple[float, dict]] = []   # (time.time() it was written, record)
        self._stop = threading.Event()
        self._new = threading.Condition()

    def __enter__(self) -> "TrainingChild":
        self._thread = None
        self.launched = launch_train(self.cfg, self.checkpoints, nice=self.nice)
        try:   # a stop (Ctrl-C, SIGTERM) that lands in here: the child is ended too
            self.run_dir = self.launched.run_dir
            self._tail = rf.Tail(self.run_dir / rf.STEPS)
            self._thread = threading.Thread(target=self._follow, daemon=True, name="steps-follower")
            self._thread.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        popen = self.launched.popen
        if popen.poll() is None:
            popen.kill()   # the run is of no further use: it is ended, not stopped (no test metrics to wait for)
        popen.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _follow(self) -> None:
        path = self.run_dir / rf.STEPS
        while not self._stop.wait(0.01):
            new = self._tail.read_new()
            if new:
                try:
                    written = os.stat(path).st_mtime
                except OSError:
                    written = time.time()
                with self._new:
                    self.records += [(written, r) for r in new]
                    self._new.notify_all()

    @property
    def pid(self) -> int:
        return self.launched.pid

    def alive(self) -> bool:
        return self.launched.popen.poll() is None

    def wait_records(self, n: int, timeout: float) -> None:
        """Wait until the step log holds n records; a dead child is an error that quotes its log."""
        deadline = time.time() + timeout
        with self._new:
            while len(self.records) < n:
                if not self.alive():
                    raise RuntimeError(f"the training child ended: {' | '.join(rf.last_log_lines(self.run_dir, 3))}")
                if time.time() > deadline:
                    raise TimeoutError(f"the training child wrote {len(self.records)} of {n} steps in {timeout:g} s")
                self._new.wait(0.1)

    def count(self) -> int:
        with self._new:
            return len(self.records)

    def names_per_s(self, first: int, last: int | None = None):
        """Median names/s of the records first..last (indices into self.records), as the trainer logged them."""
        with self._new:
            got = self.records[first:last]
        return median([r.get("names_per_s") for _, r in got])
