"""`namestudio bench`: how fast namestudio is, with every contender measured side by side in one run.

One module per section (``--skip`` takes their names):

- ``tutorial`` (tutorial.py): namestudio's default classifier against the tutorial recipe (one name per SGD step,
  nn.LSTM over one-hot ASCII letters, as in the PyTorch char-RNN tutorial) on the same data, split and device.
- ``mylstm`` (cells.py): the hand-written LSTM against nn.LSTM, epoch time of forward+backward.
- ``startup`` (startup.py): ``namestudio --help`` and the TUI's first frame, in fresh processes.
- ``tui`` (tui.py): the TUI while a run trains: training names/s and key-press-to-screen latency.
- ``gpu`` (gpu.py): CUDA only: names/s and epoch time of the classifier and the generator, with and without AMP.

common.py holds the budgets, targets, statistics and reporting; runner.py runs the sections. What runs in a fresh
process is a module started with ``python -m``: paint_probe.py, tui_probe.py, floor_app.py (the floor for key
latency: a minimal Textual app with two tabs). child.py starts real `namestudio train` runs; tmux.py drives an app
from outside, in a real terminal; attach.py holds what the bench knows about the TUI's screen.

Machines are noisy (other jobs share the cores), so the contenders of a section take turns in short slices and
every figure is a median. ``--json`` prints one JSON object as the last line of stdout.
"""
from __future__ import annotations

from .common import PRESETS, SECTION_KEYS, SECTIONS, TARGETS, Budgets, median, percentile  # noqa: F401


def run_bench(args) -> int:
    """The `namestudio bench` command (torch is imported only now, not by the probes that import this package)."""
    from .runner import run_bench as run
    return run(args)
