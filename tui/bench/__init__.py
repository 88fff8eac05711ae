"""`namestudio bench`: how fast namestudio is, with every contender measured side by side in one run.

One module per section (``--skip`` takes their names):

- ``tutorial`` (tutorial.py): namestudio's default classifier against the tutorial recipe (one name per SGD step,
  nn.LSTM over one-hot ASCII letters, as in the PyTorch char-RNN tutorial) on the same data, split and device.
- ``mylstm`` (cells.py): the hand-written LSTM against nn.LSTM, epoch time of forward+backward.
- ``startup`` (startup.py): ``namestudio --help`` and the TUI's first frame, in fresh processes.
- ``tui`` (tui.py): the TUI while a run trains: training names/s and key-press-to-screen latency.
- ``gpu`` (gpu.py): CUDA only: names/s and epoch time of the classifier and the generator, with and without AMP.

common.py holds the budgets, targets, statistics and reporting; runner.py runs the sections. Probes that must run
in a fresh process are modules too (paint_probe.py, train_probe.py, floor_app.py), started with ``python -m``.

Machines are noisy (other jobs share the cores), so the contenders of a section take turns in short slices and
every figure is a median. ``--json`` prints one JSON object as the last line of stdout.
"""
from __future__ import annotations

from .common import PRESETS, SECTION_KEYS, SECTIONS, TARGETS, Budgets, median, percentile  # noqa: F401


def run_bench(args) -> int:
    """The `namestudio bench` command (torch is imported only now, not by the probes that import this package)."""
    from .runner import run_bench as run
    return run(args)
