"""What every section of the bench shares: budgets, targets, the keys each section reports, small statistics,
progress reporting and how to start child processes. Light on purpose (no torch, no textual), so that the
probes run in child processes import only what they measure."""
from __future__ import annotations

import os
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from namestudio.data.errors import NamestudioError


class BenchError(NamestudioError, ValueError):
    """A bad option or setting of `namestudio bench` (one line)."""

# ---- budgets ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Budgets:
    tutorial_budget_s: float = 60.0  # training time given to the tutorial recipe
    rounds: int = 3                 # tutorial slices and namestudio runs take turns this many times
    ns_cap_s: float = 2.0           # training time of each namestudio run while they take turns
    cell_epochs: int = 3            # mylstm vs lstm: epochs of each
    cell_max_batches: int = 0       # cut each epoch to this many batches (0 = whole epochs)
    jit_variants: bool = True       # also time mylstm with a scripted and a compiled step
    help_runs: int = 9              # `namestudio --help` runs
    paint_runs: int = 5             # TUI first-paint runs
    tui_rounds: int = 2             # CLI and TUI training runs take turns this many times
    tui_train_s: float = 8.0        # seconds of training measured in each
    tui_presses: int = 30           # key presses timed in each TUI run
    gpu_epochs: int = 2             # epochs of each GPU configuration
    scale_names: int = 1_000_000    # names in the generated CSV of the scale section
    rank_steps: int = 120           # training steps of each 1- and 2-rank run (0 = no rank runs)
    quality: bool = True            # train the default classifier and generator and score them (issue 9)
    quality_max_steps: int = 0      # cut those runs to this many steps (0 = the default training)


PRESETS = {
    "full": Budgets(),
    "quick": Budgets(tutorial_budget_s=15.0, ns_cap_s=1.0, cell_epochs=1, jit_variants=False, help_runs=5,
                     paint_runs=3, tui_rounds=1, tui_train_s=4.0, tui_presses=16, gpu_epochs=1, rank_steps=80,
                     quality=False),
    # the test's plumbing run: a few seconds in all (NAMESTUDIO_BENCH_PRESET=tiny)
    "tiny": Budgets(tutorial_budget_s=0.6, rounds=2, ns_cap_s=0.3, cell_epochs=1, cell_max_batches=4,
                    jit_variants=False, help_runs=1, paint_runs=1, tui_rounds=1, tui_train_s=0.5, tui_presses=3,
                    gpu_epochs=1, scale_names=20_000, rank_steps=0, quality_max_steps=6),
}

TARGETS = {  # key: (comparison, target) on 2 CPU cores; the bench reports, it never fails on a miss
    "speedup_to_same_accuracy": (">=", 50.0),
    "mylstm_over_lstm_epoch_time": ("<=", 1.5),
    "tui_over_cli_throughput": (">=", 0.95),
    "tui_key_latency_ms_p95": ("<=", 50.0),
    "tui_key_latency_ms_max": ("<=", 100.0),
    "tui_rest_key_latency_ms_p95": ("<=", 30.0),
    "tui_two_runs_key_latency_ms_p95": ("<=", 50.0),     # issue 10: the same targets with 2 runs training
    "tui_two_runs_key_latency_ms_max": ("<=", 100.0),
    "tui_quit_seconds": ("<=", 1.0),
    "tui_rest_quit_seconds": ("<=", 1.0),
    "tui_tmux_key_latency_ms_p95": ("<=", 50.0),
    "tui_tmux_key_latency_ms_max": ("<=", 100.0),
    "tui_tmux_rest_key_latency_ms_p95": ("<=", 30.0),
    "tui_tmux_quit_seconds": ("<=", 1.0),
    "tui_tmux_rest_quit_seconds": ("<=", 1.0),
    "tui_step_to_screen_seconds_max": ("<=", 1.0),
    "tui_tmux_step_to_screen_seconds_max": ("<=", 1.0),
    "scale_data_cold_seconds": ("<=", 5.0),
    "scale_data_cold_peak_rss_mb": ("<=", 600.0),
    "cli_help_seconds": ("<=", 0.6),
    "tui_first_paint_seconds": ("<=", 2.0),
    "quality_test_accuracy": (">=", 0.86),              # issue 9, on the PyTorch names data
    "quality_test_balanced_accuracy": (">=", 0.65),
    "quality_test_macro_f1": (">=", 0.65),
    "quality_generator_test_nll": ("<=", 1.75),
}

# Sections in the order they run (``--skip`` takes these names) and the keys each reports (null when skipped).
SECTIONS = ("tutorial", "mylstm", "startup", "tui", "scale", "quality", "gpu")
SECTION_KEYS = {
    "tutorial": ["tutorial_names_per_s", "ns_names_per_s", "ns_over_tutorial_names_per_s", "tutorial_budget_s",
                 "tutorial_steps", "tutorial_val_acc_at_budget", "ns_seconds_to_tutorial_acc",
                 "speedup_to_same_accuracy", "tutorial_val_balanced_acc_at_budget",
                 "ns_seconds_to_tutorial_balanced_acc", "speedup_to_same_balanced_accuracy"],
    "mylstm": ["mylstm_over_lstm_epoch_time", "lstm_epoch_seconds", "mylstm_epoch_seconds",
               "mylstm_scripted_over_lstm_epoch_time", "mylstm_compiled_over_lstm_epoch_time",
               "mylstm_compile_warmup_seconds"],
    "startup": ["cli_help_seconds", "tui_first_paint_seconds"],
    "tui": ["tui_over_cli_throughput", "tui_names_per_s", "cli_names_per_s",
            "tui_key_latency_ms_p95", "tui_key_latency_ms_median", "tui_key_latency_ms_max",
            "tui_rest_key_latency_ms_p95", "tui_rest_key_latency_ms_median", "tui_rest_key_latency_ms_max",
            "tui_two_runs_key_latency_ms_p95", "tui_two_runs_key_latency_ms_median",
            "tui_two_runs_key_latency_ms_max",
            "tui_quit_seconds", "tui_rest_quit_seconds",
            "tui_tmux_key_latency_ms_p95", "tui_tmux_key_latency_ms_median", "tui_tmux_key_latency_ms_max",
            "tui_tmux_rest_key_latency_ms_p95", "tui_tmux_rest_key_latency_ms_median",
            "tui_tmux_rest_key_latency_ms_max",
            "floor_tmux_key_latency_ms_p95", "floor_tmux_key_latency_ms_median", "floor_tmux_key_latency_ms_max",
            "tui_tmux_quit_seconds", "tui_tmux_rest_quit_seconds",
            "tui_step_to_screen_seconds_median", "tui_step_to_screen_seconds_max",
            "tui_tmux_step_to_screen_seconds_median", "tui_tmux_step_to_screen_seconds_max"],
    "scale": ["scale_names", "scale_csv_mb", "scale_data_cold_seconds", "scale_data_cold_cpu_seconds",
              "scale_data_cold_peak_rss_mb", "scale_data_warm_seconds", "scale_data_warm_peak_rss_mb",
              "ranks1_names_per_s", "ranks2_names_per_s", "ranks2_over_ranks1"],
    "quality": ["quality_test_accuracy", "quality_test_balanced_accuracy", "quality_test_macro_f1",
                "quality_test_ece_before", "quality_test_ece_after", "quality_val_accuracy_network",
                "quality_val_accuracy_blend", "quality_classifier_train_seconds", "quality_generator_test_nll",
                "quality_generator_val_nll_network", "quality_generator_val_nll_mix",
                "quality_generator_train_seconds"],
    "gpu": ["gpu_lstm_names_per_s", "gpu_lstm_amp_names_per_s", "gpu_lstm_epoch_seconds",
            "gpu_lstm_amp_epoch_seconds", "gpu_generator_names_per_s", "gpu_generator_amp_names_per_s",
            "gpu_generator_epoch_seconds", "gpu_generator_amp_epoch_seconds"],
}
# A measurement that cannot run here reports its keys as null and says why in its "*_skipped" key (null when it ran).
SKIP_KEYS = {
    # the tutorial recipe learned nothing in its budget (the quick preset): no speed-up to claim
    "tutorial_speedup_skipped": ["ns_seconds_to_tutorial_acc", "speedup_to_same_accuracy"],
    "tutorial_balanced_speedup_skipped": ["ns_seconds_to_tutorial_balanced_acc", "speedup_to_same_balanced_accuracy"],
    "ranks_skipped": ["ranks1_names_per_s", "ranks2_names_per_s", "ranks2_over_ranks1"],   # the tiny preset
    "quality_skipped": [],            # the quick preset; filled in below (every quality key)
    "tui_tmux_skipped": [k for k in SECTION_KEYS["tui"] if "_tmux_" in k],   # tmux is not installed
    # the TUI never showed a step of the run that trains beside it (a TUI that does not follow runs)
    "tui_follow_skipped": [k for k in SECTION_KEYS["tui"] if k.startswith(("tui_", "tui_tmux_"))
                           and "_rest_" not in k],
}
SKIP_KEYS["quality_skipped"] = list(SECTION_KEYS["quality"])


# ---- small statistics -------------------------------------------------------------------
def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, q: float):
    """Nearest-rank percentile (q in 0..100)."""
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    rank = max(1, -(-len(values) * q // 100))
    return values[int(rank) - 1]


def ratio(a, b):
    return a / b if a is not None and b else None


def round_sig(x, digits: int = 4):
    if not isinstance(x, float):
        return x
    return float(f"{x:.{digits}g}")


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def sync(device) -> None:
    """Wait for queued GPU work, so that the clock measures it."""
    if device.type == "cuda":
        import torch
        torch.cuda.synchronize(device)


# ---- child processes --------------------------------------------------------------------
def namestudio_command() -> list[str]:
    """The installed console script next to this Python, else the PATH's, else the module."""
    near = Path(sys.executable).with_name("namestudio")
    if near.exists():
        return [str(near)]
    found = shutil.which("namestudio")
    return [found] if found else [sys.executable, "-m", "namestudio.tui.cli"]


def probe_command(module: str) -> list[str]:
    """A probe of this package, run as a module in a fresh Python (the same environment as the bench)."""
    return [sys.executable, "-m", f"namestudio.tui.bench.{module}"]


def child_env(**extra: str) -> dict:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


# ---- progress: Rich on a terminal, plain lines otherwise --------------------------------
class Reporter:
    def __init__(self, json_mode: bool):
        from rich.console import Console
        self.console = Console(stderr=json_mode, highlight=False)
        self.progress = None
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
            self.progress = Progress(TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=self.console)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def line(self, text: str) -> None:
        (self.progress.console if self.progress else self.console).print(text)

    def section(self, title: str, total: int) -> "Section":
        return Section(self, title, total)


class Section:
    def __init__(self, rep: Reporter, title: str, total: int):
        self.rep, self.title, self.total, self.done = rep, title, max(1, total), 0
        self.task = rep.progress.add_task(title, total=self.total, note="") if rep.progress else None
        if not rep.progress:
            rep.line(f"{title}: started")

    def step(self, note: str = "") -> None:
        self.done += 1
        if self.task is not None:
            self.rep.progress.update(self.task, advance=1, note=note)
        else:
            self.rep.line(f"{self.title} [{self.done}/{self.total}] {note}".rstrip())

    def finish(self, note: str = "") -> None:
        if self.task is not None:
            self.rep.progress.update(self.task, completed=self.total, note=note)
        else:
            self.rep.line(f"{self.title}: done {note}".rstrip())


# ---- what a section gets ------------------------------------------------------------------
@dataclass
class Context:
    budgets: Budgets
    device: object        # torch.device
    threads: int
    data_src: str
    dataset: object
    rep: Reporter

    def config(self, **kw):
        """namestudio's defaults (TrainConfig()), on the bench's data, device and threads."""
        from namestudio.engine.config import TrainConfig
        return TrainConfig(data=self.data_src, device=self.device.type, threads=self.threads, **kw)
