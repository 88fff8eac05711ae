"""Measuring an app from outside, in a real terminal: tmux.

The app runs in a window of a private tmux server (its own socket, so a user's tmux is never touched). One
control-mode client (``tmux -C``) sends the keys, captures the screen as plain text, and hears every chunk of bytes
the app writes to its terminal (``%output`` lines) the moment tmux gets it. A key's latency is the time from sending
it to the output after which the screen first shows its effect; nothing inside the app is timed or touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from typing import Callable, Iterable

_COUNTER = iter(range(1_000_000))


def unavailable() -> str | None:
    """Why tmux cannot be used here, or None."""
    if shutil.which("tmux") is None:
        return "tmux is not installed (apt-get install tmux)"
    return None


class TmuxError(RuntimeError):
    pass


class Tmux:
    """``with Tmux(argv) as t:`` runs argv in a fresh tmux window of width x height."""

    def __init__(self, argv: list[str], *, width: int = 100, height: int = 30, env: dict | None = None,
                 cwd: str | None = None):
        self.argv, self.width, self.height, self.env, self.cwd = argv, width, height, env, cwd
        self.socket = f"namestudio-bench-{os.getpid()}-{next(_COUNTER)}"
        self._replies: dict[int, tuple[bool, list[str], tuple[float, float]]] = {}   # by command number
        self._sent = self._answered = 0   # commands written, replies read (tmux answers in order)
        self._changed = threading.Condition()
        self.outputs = 0                 # %output chunks heard so far
        self.last_output = (0.0, 0.0)    # (perf_counter, time.time) when the last one arrived
        self.exited_at: float | None = None   # perf_counter when the window's program ended (the client heard %exit)
        self.ctl = None

    # ---- life ----------------------------------------------------------------------------
    def __enter__(self) -> "Tmux":
        try:   # a stop (Ctrl-C, SIGTERM) that lands in here, once the server may have forked: it is killed too
            subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-s", "bench",
                            "-x", str(self.width), "-y", str(self.height), "--", *self.argv],
                           env=self.env, cwd=self.cwd, check=True, capture_output=True)
            self.started = time.perf_counter()
            self.ctl = subprocess.Popen(["tmux", "-L", self.socket, "-C", "attach", "-t", "bench"],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                        bufsize=0)
            self._reader = threading.Thread(target=self._read, daemon=True, name="tmux-control")
            self._reader.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        if self.ctl is not None:
            try:
                self.ctl.stdin.close()
            except OSError:
                pass
            try:
                self.ctl.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.ctl.kill()
                self.ctl.wait()

    def _read(self) -> None:
        block: list[str] | None = None
        mine, before = False, (0.0, 0.0)
        for raw in iter(self.ctl.stdout.readline, b""):
            now, wall = time.perf_counter(), time.time()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._changed:
                if block is not None:
                    if line.startswith(("%end ", "%error ")):
                        if mine:
                            self._replies[self._answered] = (line.startswith("%end "), block, before)
                            self._answered += 1
                        block = None
                    else:
                        block.append(line)
                elif line.startswith("%begin "):
                    block, mine = [], line.split()[-1] == "1"   # flags 1: a reply to this client's command
                    before = self.last_output   # tmux sends output and replies in the order they happened
                elif line.startswith("%output "):
                    self.outputs += 1
                    self.last_output = (now, wall)
                elif line.startswith("%exit"):
                    self.exited_at = now
                self._changed.notify_all()
        with self._changed:
            if self.exited_at is None:
                self.exited_at = time.perf_counter()
            self._changed.notify_all()

    # ---- commands --------------------------------------------------------------------------
    def command(self, cmd: str, timeout: float = 10.0) -> list[str]:
        return self._command(cmd, timeout)[0]

    def _command(self, cmd: str, timeout: float = 10.0) -> tuple[list[str], tuple[float, float]]:
        """The reply's lines, and when the last output before it arrived."""
        if self.exited_at is not None:
            raise TmuxError(f"the program in tmux has ended (tmux {cmd.split()[0]})")
        with self._changed:   # several threads may ask: each waits for the reply with its own number
            ticket = self._sent
            self._sent += 1
            self.ctl.stdin.write(cmd.encode() + b"\n")
            deadline = time.perf_counter() + timeout
            while ticket not in self._replies:
                left = deadline - time.perf_counter()
                if left <= 0 or self.exited_at is not None:
                    raise TmuxError(f"tmux did not answer {cmd!r}")
                self._changed.wait(left)
            ok, lines, before = self._replies.pop(ticket)
        if not ok:
            raise TmuxError(f"tmux {cmd!r}: {' '.join(lines)[:200]}")
        return lines, before

    def screen(self) -> str:
        return "\n".join(self.command("capture-pane -p -t bench"))

    def send(self, key: str) -> float:
        """Send one key (tmux's name for it: 3, C-q, Enter); returns the perf_counter time it was sent."""
        at = time.perf_counter()
        self.command(f"send-keys -t bench {key}")
        return at

    def pane_pid(self) -> int:
        return int(self.command("display-message -p -t bench '#{pane_pid}'")[0])

    # ---- waiting ---------------------------------------------------------------------------
    def wait_for(self, shows: Callable[[str], bool], timeout: float = 30.0) -> tuple[float, float] | None:
        """Wait until the screen ``shows`` what is wanted; returns (perf_counter, time.time) of the output chunk
        after which it did (or of the check itself if the screen showed it already), None on timeout."""
        deadline = time.perf_counter() + timeout
        while True:
            with self._changed:
                seen = self.outputs
            lines, before = self._command("capture-pane -p -t bench")
            if shows("\n".join(lines)):
                return before if before[0] else (time.perf_counter(), time.time())
            with self._changed:
                while self.outputs == seen and self.exited_at is None:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        return None
                    self._changed.wait(min(left, 0.05))
                if self.exited_at is not None:
                    return None
            if time.perf_counter() > deadline:
                return None

    def wait_exit(self, timeout: float = 30.0) -> float | None:
        """perf_counter time at which the window's program ended, None on timeout."""
        deadline = time.perf_counter() + timeout
        with self._changed:
            while self.exited_at is None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self.exited_at


def time_key_presses(t: Tmux, presses: Iterable[tuple[str, Callable[[str], bool]]], *, gap=(0.05, 0.25),
                     timeout: float = 30.0, rng=None) -> list[float]:
    """Send each key, wait for the screen to show its effect; latencies in ms (a press that never shows is an
    error, not a figure)."""
    import random
    rng = rng or random.Random(0)
    latencies = []
    for key, shows in presses:
        sent = t.send(key)
        got = t.wait_for(shows, timeout)
        if got is None:
            raise TmuxError(f"key {key!r}: the screen did not show its effect within {timeout:g} s")
        latencies.append(1000 * max(0.0, got[0] - sent))
        time.sleep(rng.uniform(*gap))
    return latencies
